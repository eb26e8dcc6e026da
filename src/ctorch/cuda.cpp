/* CUDA: whether LibTorch's CUDA backend is loaded, the settings a CUDA device gets when it is
 * first used (cuDNN autotuning, TF32 from DIFFCLIP_CUDA_TF32) and the CUDA caching
 * allocator's peaks. Compiles against every LibTorch, CUDA or not, and needs no CUDA header:
 * the peaks come through c10's memory-reporting hook (the one the profiler uses), to which
 * the CUDA caching allocator reports its running totals at every allocation and free. */
#include "compat.hpp"
#include "internal.hpp"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace ctorch {
namespace {

constexpr int MAX_DEVICES = 64;

struct device_peaks {
    std::atomic<int64_t> allocated{0}, reserved{0}, peak_allocated{0}, peak_reserved{0};
};
device_peaks peaks[MAX_DEVICES];

void raise_to(std::atomic<int64_t> &peak, int64_t value)
{
    int64_t seen = peak.load(std::memory_order_relaxed);
    while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
}

/* Receives the CUDA allocator's totals. memoryProfilingEnabled() is false so that the CPU
 * allocators, which report only when profiling is on, keep their fast path. */
class cuda_memory_reporter final : public c10::MemoryReportingInfoBase {
public:
    void reportMemoryUsage(void *, int64_t, allocator_total allocated, allocator_total reserved,
                           c10::Device device) override
    {
        if (device.type() != c10::DeviceType::CUDA || device.index() < 0 ||
            device.index() >= MAX_DEVICES)
            return;
        device_peaks &p = peaks[device.index()];
        p.allocated.store(static_cast<int64_t>(allocated), std::memory_order_relaxed);
        p.reserved.store(static_cast<int64_t>(reserved), std::memory_order_relaxed);
        raise_to(p.peak_allocated, static_cast<int64_t>(allocated));
        raise_to(p.peak_reserved, static_cast<int64_t>(reserved));
    }
    bool memoryProfilingEnabled() const override { return false; }
};

/* Autograd's device threads inherit the debug info of the thread that called backward. */
thread_local bool reporter_installed = false;

/* DIFFCLIP_CUDA_TF32: 1 allows TF32 in cuBLAS and cuDNN, 0 forbids it (float32 as exact as on
 * the CPU); unset keeps LibTorch's defaults (cuDNN convolutions TF32, cuBLAS matmuls not). */
void apply_tf32_setting()
{
    const char *env = getenv("DIFFCLIP_CUDA_TF32");
    if (env && strcmp(env, "0") == 0)
        set_tf32(false);
    else if (env && strcmp(env, "1") == 0)
        set_tf32(true);
}

} // namespace

bool cuda_backend_loaded()
{
    if (!c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA))
        return false;
    auto op = c10::Dispatcher::singleton().findSchema({"aten::empty", "memory_format"});
    return op && op->hasKernelForDispatchKey(c10::DispatchKey::CUDA);
}

void cuda_device_used()
{
    static std::once_flag once;
    std::call_once(once, [] {
        /* The UNets run the same shapes at every step: autotuning pays after the first. */
        at::globalContext().setBenchmarkCuDNN(true);
        apply_tf32_setting();
    });
    if (!reporter_installed) {
        c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE,
                                         std::make_shared<cuda_memory_reporter>());
        reporter_installed = true;
    }
}

} // namespace ctorch

using namespace ctorch;

extern "C" int ct_cuda_backend(void)
{
    int loaded = 0;
    guarded(__func__, [&] {
        loaded = cuda_backend_loaded();
        return static_cast<int>(DC_OK);
    });
    return loaded;
}

extern "C" const char *ct_backend_info(void)
{
    static char info[128] = "LibTorch " TORCH_VERSION;
    static std::once_flag once;
    std::call_once(once, [] {
        guarded(__func__, [] {
            size_t used = strlen(info);
            if (cuda_backend_loaded())
                snprintf(info + used, sizeof info - used,
                         ", CUDA backend registered, %d CUDA device(s)", cuda_device_count());
            else
                snprintf(info + used, sizeof info - used, ", CPU only (no CUDA backend)");
            return static_cast<int>(DC_OK);
        });
    });
    return info;
}

extern "C" int ct_cuda_memory_peak(int device, int64_t *peak_allocated, int64_t *peak_reserved)
{
    CT_REQUIRE(peak_allocated);
    CT_REQUIRE(peak_reserved);
    return guarded(__func__, [&] {
        torch_device(device);
        if (device == CT_CPU || device >= MAX_DEVICES)
            throw failure(DC_EINVAL, "device %d is not a CUDA device this library tracks", device);
        *peak_allocated = peaks[device].peak_allocated.load();
        *peak_reserved = peaks[device].peak_reserved.load();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_cuda_memory_reset_peak(int device)
{
    return guarded(__func__, [&] {
        torch_device(device);
        if (device == CT_CPU || device >= MAX_DEVICES)
            throw failure(DC_EINVAL, "device %d is not a CUDA device this library tracks", device);
        device_peaks &p = peaks[device];
        p.peak_allocated.store(p.allocated.load());
        p.peak_reserved.store(p.reserved.load());
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_synchronize(int device)
{
    return guarded(__func__, [&] {
        if (device != CT_CPU) {
            torch_device(device);
            at::detail::getCUDAHooks().deviceSynchronize(static_cast<c10::DeviceIndex>(device));
        }
        return static_cast<int>(DC_OK);
    });
}
