/* ctorch core: the exception boundary, threads, devices, pools, creation and host transfer,
 * metadata, autograd and grad-mode scopes. Ops are in ops.cpp, Adam in adam.cpp. */
#include "internal.hpp"

#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <ATen/Parallel.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace ctorch {

/* ---- the exception boundary ---- */

failure::failure(int status, const char *fmt, ...) : status(status)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    message = buf;
}

static bool contains(const std::string &text, const char *needle)
{
    return text.find(needle) != std::string::npos;
}

/* LibTorch reports everything through c10::Error; the message tells what kind it is. */
static int classify(const std::string &message)
{
    if (contains(message, "CUDA out of memory"))
        return DC_EDEVICE;
    if (contains(message, "out of memory") || contains(message, "not enough memory"))
        return DC_ENOMEM;
    for (const char *word : {"CUDA", "cuda", "cuDNN", "cudnn", "CUBLAS", "cublas", "NCCL"})
        if (contains(message, word))
            return DC_EDEVICE;
    return DC_EINTERNAL;
}

static int report(const char *fn, int status, std::string message)
{
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    return dci_err(status, "%s: %s", fn, message.c_str());
}

int status_from_exception(const char *fn) noexcept
{
    try {
        try {
            throw;
        } catch (const failure &e) {
            return report(fn, e.status, e.message);
        } catch (const c10::OutOfMemoryError &e) {
            /* The GPU's memory is the device's problem, the host's an allocation failure. */
            std::string message = e.what_without_backtrace();
            return report(fn, contains(message, "CUDA") ? DC_EDEVICE : DC_ENOMEM,
                          std::move(message));
        } catch (const c10::Error &e) {
            std::string message = e.what_without_backtrace();
            return report(fn, classify(message), std::move(message));
        } catch (const std::bad_alloc &) {
            return dci_err(DC_ENOMEM, "%s: out of memory", fn);
        } catch (const std::exception &e) {
            std::string message = e.what();
            return report(fn, classify(message), std::move(message));
        } catch (...) {
            return dci_err(DC_EINTERNAL, "%s: unknown C++ exception", fn);
        }
    } catch (...) {
        /* Building the message itself failed (no memory for the string). */
        return dci_err(DC_ENOMEM, "%s: out of memory while reporting an error", fn);
    }
}

int null_argument(const char *fn, const char *name) noexcept
{
    return dci_err(DC_EINVAL, "%s: %s is NULL", fn, name);
}

at::IntArrayRef int_array(int n, const int64_t *values, const char *what)
{
    if (n < 0 || n > CT_MAX_NDIM)
        throw failure(DC_EINVAL, "%s has %d entries (0 to %d allowed)", what, n, CT_MAX_NDIM);
    if (n > 0 && !values)
        throw failure(DC_EINVAL, "%s is NULL", what);
    return at::IntArrayRef(values, static_cast<size_t>(n));
}

/* ---- threads ---- */

static int online_cores()
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 && n <= INT_MAX ? static_cast<int>(n) : 1;
}

/* DIFFCLIP_NUM_THREADS when it is a positive integer, else the core count. */
static int default_threads()
{
    const char *env = getenv("DIFFCLIP_NUM_THREADS");
    if (env && *env) {
        char *end = nullptr;
        errno = 0;
        long n = strtol(env, &end, 10);
        if (errno == 0 && *end == '\0' && n >= 1 && n <= 65536)
            return static_cast<int>(n);
    }
    return online_cores();
}

static std::once_flag threads_once;
static std::atomic<int> wanted_threads{0};
/* OpenMP keeps the count per thread: each thread applies a changed value on its next call. */
static thread_local int applied_threads = 0;

void ensure_threads()
{
    std::call_once(threads_once, [] {
        wanted_threads.store(default_threads());
        install_cpu_allocator();
        share_blas_threads();
    });
    int n = wanted_threads.load(std::memory_order_relaxed);
    if (applied_threads != n) {
        at::set_num_threads(n);
        applied_threads = n;
    }
}

/* ---- pools ---- */

/* Handles recorded by this thread's open pools, oldest first; ct_free leaves a NULL so that
 * the marks stay valid. */
static thread_local std::vector<ct_tensor *> pooled;
static thread_local std::vector<size_t> pool_marks;
static std::atomic<size_t> live_handles{0};

ct_tensor *wrap(at::Tensor t)
{
    std::unique_ptr<ct_tensor> handle(new ct_tensor{std::move(t)});
    if (!pool_marks.empty())
        pooled.push_back(handle.get());
    live_handles.fetch_add(1, std::memory_order_relaxed);
    return handle.release();
}

static void destroy(ct_tensor *t)
{
    delete t;
    live_handles.fetch_sub(1, std::memory_order_relaxed);
}

/* ---- dtypes and devices ---- */

at::ScalarType scalar_type(dc_dtype dtype)
{
    switch (dtype) {
    case DC_FLOAT32: return at::kFloat;
    case DC_FLOAT16: return at::kHalf;
    case DC_BFLOAT16: return at::kBFloat16;
    case DC_FLOAT64: return at::kDouble;
    case DC_INT64: return at::kLong;
    case DC_INT32: return at::kInt;
    case DC_UINT8: return at::kByte;
    case DC_BOOL: return at::kBool;
    }
    throw failure(DC_EINVAL, "unknown dtype %d", static_cast<int>(dtype));
}

static bool dtype_of(at::ScalarType type, dc_dtype *out)
{
    switch (type) {
    case at::kFloat: *out = DC_FLOAT32; return true;
    case at::kHalf: *out = DC_FLOAT16; return true;
    case at::kBFloat16: *out = DC_BFLOAT16; return true;
    case at::kDouble: *out = DC_FLOAT64; return true;
    case at::kLong: *out = DC_INT64; return true;
    case at::kInt: *out = DC_INT32; return true;
    case at::kByte: *out = DC_UINT8; return true;
    case at::kBool: *out = DC_BOOL; return true;
    default: return false;
    }
}

int cuda_device_count()
{
    if (!at::globalContext().hasCUDA())
        return 0;
    return std::max(0, static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()));
}

at::Device torch_device(int device)
{
    if (device == CT_CPU)
        return at::Device(at::kCPU);
    if (device < 0)
        throw failure(DC_EINVAL, "device %d is neither CT_CPU (-1) nor a CUDA index", device);
    if (!cuda_backend_loaded())
        throw failure(DC_EDEVICE,
                      "CUDA device %d requested, but this build's LibTorch has no CUDA backend "
                      "(a CPU-only LibTorch: build with make LIBTORCH=dir, docs/cuda.md)",
                      device);
    int count = cuda_device_count();
    if (count == 0)
        throw failure(DC_EDEVICE,
                      "CUDA device %d requested, but LibTorch's CUDA backend finds no CUDA "
                      "device (no GPU, or no driver: nvidia-smi should list one)",
                      device);
    if (device >= count)
        throw failure(DC_EDEVICE, "CUDA device %d requested but only %d device(s) exist", device,
                      count);
    cuda_device_used();
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device));
}

static at::TensorOptions options(dc_dtype dtype, int device)
{
    return at::TensorOptions().dtype(scalar_type(dtype)).device(torch_device(device));
}

/* Sizes of a new tensor: non-negative, with a byte count that fits in size_t (shapes may
 * come from files). */
static at::IntArrayRef new_shape(int ndim, const int64_t *shape, dc_dtype dtype)
{
    at::IntArrayRef sizes = int_array(ndim, shape, "shape");
    size_t bytes = c10::elementSize(scalar_type(dtype));
    for (int64_t n : sizes) {
        if (n < 0)
            throw failure(DC_EINVAL, "negative size %lld in shape", static_cast<long long>(n));
        if (__builtin_mul_overflow(bytes, static_cast<size_t>(n), &bytes) ||
            bytes > static_cast<size_t>(INT64_MAX))
            throw failure(DC_ENOMEM, "shape is too large");
    }
    return sizes;
}

} // namespace ctorch

using namespace ctorch;

/* ---- runtime ---- */

extern "C" int ct_set_num_threads(int n)
{
    return guarded(__func__, [&] {
        wanted_threads.store(n > 0 ? n : online_cores());
        ensure_threads();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_get_num_threads(void)
{
    int n = 1;
    guarded(__func__, [&] {
        n = at::get_num_threads();
        return static_cast<int>(DC_OK);
    });
    return n;
}

extern "C" int ct_cuda_available(void)
{
    int count = 0;
    guarded(__func__, [&] {
        count = cuda_device_count();
        return static_cast<int>(DC_OK);
    });
    return count > 0;
}

extern "C" int ct_parse_device(const char *name, int *device)
{
    CT_REQUIRE(name);
    CT_REQUIRE(device);
    return guarded(__func__, [&] {
        if (strcmp(name, "cpu") == 0) {
            *device = CT_CPU;
        } else if (strcmp(name, "auto") == 0) {
            *device = cuda_device_count() > 0 ? 0 : CT_CPU;
        } else if (strcmp(name, "cuda") == 0) {
            torch_device(0);
            *device = 0;
        } else if (strncmp(name, "cuda:", 5) == 0 && name[5] >= '0' && name[5] <= '9') {
            char *end = nullptr;
            errno = 0;
            long index = strtol(name + 5, &end, 10);
            if (errno != 0 || *end != '\0' || index > INT_MAX)
                throw failure(DC_EINVAL, "bad device name \"%s\"", name);
            torch_device(static_cast<int>(index));
            *device = static_cast<int>(index);
        } else {
            throw failure(DC_EINVAL, "unknown device \"%s\" (cpu, cuda, cuda:N or auto)", name);
        }
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_manual_seed(uint64_t seed)
{
    return guarded(__func__, [&] {
        at::manual_seed(seed);
        return static_cast<int>(DC_OK);
    });
}

static at::Generator default_generator(int device)
{
    return at::globalContext().defaultGenerator(torch_device(device));
}

extern "C" int ct_rng_state(ct_tensor **out, int device)
{
    return produce(__func__, out, {}, [&] {
        at::Generator gen = default_generator(device);
        std::lock_guard<std::mutex> lock(gen.mutex());
        return gen.get_state();
    });
}

extern "C" int ct_rng_set_state(int device, const ct_tensor *state)
{
    CT_REQUIRE(state);
    return guarded(__func__, [&] {
        at::Generator gen = default_generator(device);
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state->t);
        return static_cast<int>(DC_OK);
    });
}

extern "C" size_t ct_live_handles(void) { return live_handles.load(); }

/* ---- pools ---- */

/* A pool's mark is its depth, an index into pool_marks, so that ending a pool also closes
 * any inner pool an error path left open, and ending a closed pool does nothing. */
extern "C" size_t ct_pool_begin(void)
{
    size_t depth = pool_marks.size();
    try {
        pool_marks.push_back(pooled.size());
    } catch (...) {
        /* Without the mark, handles stay owned by the enclosing pool or the caller. */
        status_from_exception(__func__);
    }
    return depth;
}

extern "C" void ct_pool_end(size_t mark, ct_tensor *const *keep, size_t nkeep)
{
    if (mark >= pool_marks.size())
        return;
    size_t start = pool_marks[mark];
    pool_marks.resize(mark);

    /* Kept handles are compacted in place at the front of the range, so no allocation. */
    size_t kept = start;
    for (size_t i = start; i < pooled.size(); i++) {
        ct_tensor *h = pooled[i];
        if (!h)
            continue;
        if (keep && std::find(keep, keep + nkeep, h) != keep + nkeep)
            pooled[kept++] = h;
        else
            destroy(h);
    }
    /* Kept handles move to the enclosing pool, or to the caller when this was the last.
     * The vacated slots are cleared so that a stale copy of a handle left in the vector's
     * spare capacity cannot hide the handle's leak from LeakSanitizer. */
    size_t size = pool_marks.empty() ? start : kept;
    std::fill(pooled.begin() + size, pooled.end(), nullptr);
    pooled.resize(size);
}

/* ---- creation, host transfer, metadata ---- */

extern "C" void ct_free(ct_tensor *t)
{
    if (!t)
        return;
    auto it = std::find(pooled.rbegin(), pooled.rend(), t);
    if (it != pooled.rend())
        *it = nullptr;
    destroy(t);
}

extern "C" int ct_from_host(ct_tensor **out, const void *data, dc_dtype dtype, int ndim,
                            const int64_t *shape, int device)
{
    return produce(__func__, out, {}, [&] {
        at::ScalarType type = scalar_type(dtype);
        at::IntArrayRef sizes = new_shape(ndim, shape, dtype);
        at::Device target = torch_device(device);
        at::Tensor host = at::empty(sizes, at::TensorOptions().dtype(type));
        size_t bytes = host.nbytes();
        if (bytes > 0) {
            if (!data)
                throw failure(DC_EINVAL, "data is NULL");
            memcpy(host.data_ptr(), data, bytes);
        }
        return target.is_cpu() ? host : host.to(target);
    });
}

extern "C" int ct_to_host(const ct_tensor *t, void *dst, size_t dst_bytes)
{
    CT_REQUIRE(t);
    return guarded(__func__, [&] {
        at::Tensor c = t->t.detach().contiguous();
        if (!c.is_cpu())
            c = c.to(at::kCPU);
        size_t bytes = c.nbytes();
        if (bytes != dst_bytes)
            throw failure(DC_EINVAL, "destination holds %zu bytes, tensor has %zu", dst_bytes,
                          bytes);
        if (bytes > 0) {
            if (!dst)
                throw failure(DC_EINVAL, "dst is NULL");
            memcpy(dst, c.data_ptr(), bytes);
        }
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_zeros(ct_tensor **out, dc_dtype dtype, int ndim, const int64_t *shape, int device)
{
    return produce(__func__, out, {}, [&] {
        return at::zeros(new_shape(ndim, shape, dtype), options(dtype, device));
    });
}

extern "C" int ct_full(ct_tensor **out, double value, dc_dtype dtype, int ndim,
                       const int64_t *shape, int device)
{
    return produce(__func__, out, {}, [&] {
        return at::full(new_shape(ndim, shape, dtype), value, options(dtype, device));
    });
}

extern "C" int ct_randn(ct_tensor **out, dc_dtype dtype, int ndim, const int64_t *shape, int device)
{
    return produce(__func__, out, {}, [&] {
        return at::randn(new_shape(ndim, shape, dtype), options(dtype, device));
    });
}

extern "C" int ct_scalar(ct_tensor **out, double value, dc_dtype dtype, int device)
{
    return produce(__func__, out, {},
                   [&] { return at::scalar_tensor(value, options(dtype, device)); });
}

extern "C" int ct_clone(ct_tensor **out, const ct_tensor *t)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.clone(); });
}

extern "C" int ct_to(ct_tensor **out, const ct_tensor *t, dc_dtype dtype, int device)
{
    return produce(__func__, out, {CT_ARG(t)},
                   [&] { return t->t.to(torch_device(device), scalar_type(dtype)); });
}

extern "C" int ct_contiguous(ct_tensor **out, const ct_tensor *t)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.contiguous(); });
}

extern "C" int ct_to_channels_last(ct_tensor **out, const ct_tensor *t)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] {
        if (t->t.dim() != 4)
            throw failure(DC_EINVAL, "channels-last needs a 4-d tensor, got %lld dims",
                          static_cast<long long>(t->t.dim()));
        return t->t.contiguous(at::MemoryFormat::ChannelsLast);
    });
}

extern "C" int ct_ndim(const ct_tensor *t)
{
    if (!t)
        return null_argument(__func__, "t"), -1;
    return static_cast<int>(t->t.dim());
}

extern "C" int64_t ct_size(const ct_tensor *t, int dim)
{
    if (!t)
        return null_argument(__func__, "t"), -1;
    int64_t ndim = t->t.dim();
    int64_t d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim)
        return dci_err(DC_EINVAL, "%s: dim %d out of range for %lld dims", __func__, dim,
                       static_cast<long long>(ndim)),
               -1;
    return t->t.size(d);
}

extern "C" int ct_has_shape(const ct_tensor *t, int ndim, const int64_t *shape)
{
    return t && ndim >= 0 && t->t.sizes() == at::IntArrayRef(shape, static_cast<size_t>(ndim));
}

extern "C" int ct_same_shape(const ct_tensor *a, const ct_tensor *b)
{
    return a && b && a->t.sizes() == b->t.sizes();
}

extern "C" int64_t ct_numel(const ct_tensor *t)
{
    if (!t)
        return null_argument(__func__, "t"), -1;
    return t->t.numel();
}

extern "C" dc_dtype ct_dtype(const ct_tensor *t)
{
    dc_dtype dtype;
    if (!t)
        return null_argument(__func__, "t"), static_cast<dc_dtype>(-1);
    if (!dtype_of(t->t.scalar_type(), &dtype))
        return dci_err(DC_EINVAL, "%s: LibTorch dtype %s has no dc_dtype", __func__,
                       c10::toString(t->t.scalar_type())),
               static_cast<dc_dtype>(-1);
    return dtype;
}

extern "C" int ct_device(const ct_tensor *t)
{
    if (!t || !t->t.is_cuda())
        return CT_CPU;
    return t->t.get_device();
}

extern "C" int ct_item(const ct_tensor *t, double *out)
{
    CT_REQUIRE(t);
    CT_REQUIRE(out);
    return guarded(__func__, [&] {
        if (t->t.numel() != 1)
            throw failure(DC_EINVAL, "tensor has %lld elements, not 1",
                          static_cast<long long>(t->t.numel()));
        *out = t->t.item<double>();
        return static_cast<int>(DC_OK);
    });
}

/* ---- autograd ---- */

extern "C" int ct_set_requires_grad(ct_tensor *t, int requires_grad)
{
    CT_REQUIRE(t);
    return guarded(__func__, [&] {
        t->t.set_requires_grad(requires_grad != 0);
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_requires_grad(const ct_tensor *t) { return t && t->t.requires_grad(); }

extern "C" int ct_backward(const ct_tensor *loss)
{
    CT_REQUIRE(loss);
    return guarded(__func__, [&] {
        if (loss->t.numel() != 1)
            throw failure(DC_EINVAL, "loss has %lld elements, not 1",
                          static_cast<long long>(loss->t.numel()));
        if (!loss->t.requires_grad())
            throw failure(DC_EINVAL, "loss does not require grad (built under no-grad, or "
                                     "from tensors that do not require grad)");
        loss->t.backward();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_backward_with(const ct_tensor *out, const ct_tensor *grad)
{
    CT_REQUIRE(out);
    CT_REQUIRE(grad);
    return guarded(__func__, [&] {
        if (!out->t.requires_grad())
            throw failure(DC_EINVAL, "the output does not require grad");
        if (out->t.sizes() != grad->t.sizes())
            throw failure(DC_EINVAL, "the gradient's shape differs from the output's");
        out->t.backward(grad->t);
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_grad(ct_tensor **out, const ct_tensor *t)
{
    CT_REQUIRE(out);
    *out = nullptr;
    CT_REQUIRE(t);
    return guarded(__func__, [&] {
        /* Only leaves accumulate gradients (reading a non-leaf's would also warn). */
        if (!t->t.is_leaf())
            return static_cast<int>(DC_OK);
        const at::Tensor &grad = t->t.grad();
        if (grad.defined())
            *out = wrap(grad);
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_clear_grad(ct_tensor *t)
{
    CT_REQUIRE(t);
    return guarded(__func__, [&] {
        t->t.mutable_grad().reset();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_set_grad(ct_tensor *t, const ct_tensor *grad, double scale)
{
    CT_REQUIRE(t);
    CT_REQUIRE(grad);
    return guarded(__func__, [&] {
        if (t->t.sizes() != grad->t.sizes())
            throw failure(DC_EINVAL, "the gradient's shape differs from the tensor's");
        c10::NoGradGuard no_grad;
        at::Tensor g = grad->t.to(t->t.options(), /*non_blocking=*/false, /*copy=*/true);
        if (scale != 1.0)
            g.mul_(scale);
        t->t.mutable_grad() = g;
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_detach(ct_tensor **out, const ct_tensor *t)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.detach(); });
}

struct ct_scope {
    std::optional<c10::AutoGradMode> grad_mode;
    std::optional<c10::InferenceMode> inference_mode;
};

extern "C" int ct_grad_mode_begin(ct_scope **scope, int enabled)
{
    CT_REQUIRE(scope);
    *scope = nullptr;
    return guarded(__func__, [&] {
        std::unique_ptr<ct_scope> s(new ct_scope);
        s->grad_mode.emplace(enabled != 0);
        *scope = s.release();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_inference_mode_begin(ct_scope **scope)
{
    CT_REQUIRE(scope);
    *scope = nullptr;
    return guarded(__func__, [&] {
        std::unique_ptr<ct_scope> s(new ct_scope);
        s->inference_mode.emplace();
        *scope = s.release();
        return static_cast<int>(DC_OK);
    });
}

extern "C" void ct_scope_end(ct_scope *scope) { delete scope; }

extern "C" int ct_grad_enabled(void) { return c10::GradMode::is_enabled(); }

/* ---- in place, outside autograd ---- */

/* Runs `op` on existing tensors with autograd off: these updates are never differentiated. */
template <class F>
static int in_place(const char *fn, F &&op) noexcept
{
    return guarded(fn, [&] {
        c10::NoGradGuard no_grad;
        op();
        return static_cast<int>(DC_OK);
    });
}

extern "C" int ct_copy_(ct_tensor *dst, const ct_tensor *src)
{
    CT_REQUIRE(dst);
    CT_REQUIRE(src);
    return in_place(__func__, [&] { dst->t.copy_(src->t); });
}

extern "C" int ct_mul_scalar_(ct_tensor *t, double s)
{
    CT_REQUIRE(t);
    return in_place(__func__, [&] { t->t.mul_(s); });
}

extern "C" int ct_add_(ct_tensor *t, const ct_tensor *other, double alpha)
{
    CT_REQUIRE(t);
    CT_REQUIRE(other);
    return in_place(__func__, [&] { t->t.add_(other->t, alpha); });
}

extern "C" int ct_mul_(ct_tensor *t, const ct_tensor *other)
{
    CT_REQUIRE(t);
    CT_REQUIRE(other);
    return in_place(__func__, [&] { t->t.mul_(other->t); });
}

extern "C" int ct_silu_(ct_tensor *t)
{
    CT_REQUIRE(t);
    return in_place(__func__, [&] { at::silu_(t->t); });
}
