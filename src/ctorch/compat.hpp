/* The differences between the LibTorch versions ctorch builds against (Debian 12's 1.13,
 * Debian 13's 2.6, the official and pip 2.x), in one place. Everything else in ctorch is
 * written once against the API all of them share. */
#ifndef DC_SRC_CTORCH_COMPAT_HPP
#define DC_SRC_CTORCH_COMPAT_HPP

#include <ATen/Context.h>
#include <c10/core/Allocator.h>
#include <torch/csrc/api/include/torch/version.h>

#include <cstddef>
#include <cstring>

#define CT_TORCH_AT_LEAST(major, minor) \
    (TORCH_VERSION_MAJOR > (major) ||   \
     (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace ctorch {

/* c10::Allocator as the version defines it: allocate is const up to 2.2 and not from 2.3
 * on, where copy_data (the copy behind Allocator::clone) became pure virtual. A host
 * allocator derives from this and implements do_allocate. */
class host_allocator : public c10::Allocator {
public:
#if CT_TORCH_AT_LEAST(2, 3)
    c10::DataPtr allocate(size_t n) override { return do_allocate(n); }
    /* Without `override`: 2.3 to 2.6 (compiled) declare the three-argument form; a later
     * form with a trailing sync flag (pytorch/pytorch#148408, read, not compiled) is covered by
     * the second. Host memory copies the same either way. */
    void copy_data(void *dest, const void *src, std::size_t count) const
    {
        std::memcpy(dest, src, count);
    }
    void copy_data(void *dest, const void *src, std::size_t count, bool) const
    {
        std::memcpy(dest, src, count);
    }
#else
    c10::DataPtr allocate(size_t n) const override { return do_allocate(n); }
#endif

protected:
    virtual c10::DataPtr do_allocate(size_t n) const = 0;
};

/* The allocators' running totals as c10::reportMemoryUsageToProfiler passes them: int64_t in
 * 1.13, size_t in 2.x. Taken from the function's own type, so that a memory reporter's
 * override matches whatever version declares it. */
template <class F>
struct third_parameter;
template <class R, class A, class B, class C, class... Rest>
struct third_parameter<R (*)(A, B, C, Rest...)> {
    using type = C;
};
using allocator_total = third_parameter<decltype(&c10::reportMemoryUsageToProfiler)>::type;

/* TF32 in cuBLAS matmuls and cuDNN convolutions (float32 inputs, 10-bit mantissa products). */
inline void set_tf32(bool allowed)
{
    at::globalContext().setAllowTF32CuBLAS(allowed);
    at::globalContext().setAllowTF32CuDNN(allowed);
}

/* c10d's TCPStore: from 2.2 on its options name a libuv backend (the default from 2.4),
 * which a LibTorch built without libuv refuses; the classic socket backend exists in every
 * version. Found by the member's presence rather than by version number. */
template <class O>
auto store_backend_compat(O &options, int) -> decltype(options.useLibUV = false, void())
{
    options.useLibUV = false;
}
template <class O>
void store_backend_compat(O &, long)
{
}
template <class O>
void store_options_compat(O &options)
{
    store_backend_compat(options, 0);
}

} // namespace ctorch

#endif
