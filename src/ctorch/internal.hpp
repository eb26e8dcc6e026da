/* Shared by the ctorch translation units: the handle type, the exception boundary and the
 * argument checks. C++ only; never included above ctorch. */
#ifndef DC_SRC_CTORCH_INTERNAL_HPP
#define DC_SRC_CTORCH_INTERNAL_HPP

#include <ATen/ATen.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "../core/error.h"
#include "ctorch.h"

struct ct_tensor {
    at::Tensor t;
};

namespace ctorch {

/* Most dims an int-array argument (shape, permutation) may have. */
constexpr int CT_MAX_NDIM = 64;

/* A failure detected by ctorch itself: its status and message (without the function name,
 * which the boundary adds). */
struct failure {
    int status;
    std::string message;
    failure(int status, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
};

/* Applies the process-wide thread count to the calling thread (OpenMP keeps it per thread)
 * after setting the default and installing the CPU allocator once. Called at every entry
 * that may run tensor work. */
void ensure_threads();

/* Hands OpenBLAS's parallel jobs to LibTorch's thread pool where OpenBLAS allows it
 * (blas_threads.cpp). */
void share_blas_threads();

/* Installs the caching CPU allocator (allocator.cpp) unless DIFFCLIP_CPU_CACHE_MB is 0. */
void install_cpu_allocator();

/* Whether LibTorch's CUDA backend is loaded (cuda.cpp), and the first-use settings of a CUDA
 * device and this thread's memory reporter (called by torch_device for every CUDA device). */
bool cuda_backend_loaded();
void cuda_device_used();
int cuda_device_count();

/* Converts the exception in flight into a status and a message naming `fn`. */
int status_from_exception(const char *fn) noexcept;

/* Runs `body` (returning a status) with the thread count initialised and every exception
 * turned into a status. */
template <class F>
int guarded(const char *fn, F &&body) noexcept
{
    try {
        ensure_threads();
        return body();
    } catch (...) {
        return status_from_exception(fn);
    }
}

/* A new handle owning `t`, recorded in this thread's open pool if any. May throw. */
ct_tensor *wrap(at::Tensor t);

/* Conversions that throw `failure` on bad input. */
at::IntArrayRef int_array(int n, const int64_t *values, const char *what);
at::ScalarType scalar_type(dc_dtype dtype);
at::Device torch_device(int device);

int null_argument(const char *fn, const char *name) noexcept;

/* A pointer argument and its name, checked for NULL by produce. */
struct argument {
    const void *pointer;
    const char *name;
};
#define CT_ARG(p) (ctorch::argument{(p), #p})

/* Stores the tensor `compute()` returns as a new handle in *out, which is NULL on any
 * failure, including a NULL argument among `args`. */
template <class F>
int produce(const char *fn, ct_tensor **out, std::initializer_list<argument> args,
            F &&compute) noexcept
{
    if (!out)
        return dci_err(DC_EINVAL, "%s: out is NULL", fn);
    *out = nullptr;
    for (const argument &arg : args)
        if (!arg.pointer)
            return null_argument(fn, arg.name);
    return guarded(fn, [&] {
        *out = wrap(compute());
        return static_cast<int>(DC_OK);
    });
}

/* Optional tensor arguments (bias, weight) as the at:: ops take them. */
inline c10::optional<at::Tensor> optional_tensor(const ct_tensor *t)
{
    return t ? c10::optional<at::Tensor>(t->t) : c10::optional<at::Tensor>();
}

} // namespace ctorch

/* Returns DC_EINVAL from the enclosing ct_ function when a pointer argument is NULL. */
#define CT_REQUIRE(p)                                   \
    do {                                                \
        if (!(p))                                       \
            return ctorch::null_argument(__func__, #p); \
    } while (0)

#endif
