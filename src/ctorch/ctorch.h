/*
 * ctorch: the thin C shim over LibTorch. The only C++ in the library is its implementation
 * (ctorch.cpp); nothing above it includes a LibTorch header.
 *
 * Conventions
 * - Every fallible function returns a dc_status (DC_OK = 0) and writes its result through an
 *   out-pointer; a C++ exception becomes DC_EINTERNAL (DC_EDEVICE for CUDA problems, the
 *   GPU running out of memory included; DC_ENOMEM for host allocation failures) with its
 *   message in dc_last_error(). The tensors of a failed call are freed as the exception
 *   unwinds: handles made before stay valid.
 * - A ct_tensor owns one at::Tensor. Results are new handles; inputs are never modified
 *   except by functions whose name ends in `_`.
 * - Pools: while a pool is open on this thread (ct_pool_begin), every tensor handle created
 *   on this thread is recorded in it, and ct_pool_end frees all handles recorded since the
 *   mark except those listed as kept, which move to the enclosing pool (or, for the
 *   outermost pool, become owned by the caller). Networks open a pool per block and need no
 *   individual frees; on an error path the caller's ct_pool_end frees everything.
 *   Handles created with no pool open are owned by the caller (ct_free).
 * - Devices are ints: CT_CPU (-1) or a CUDA index >= 0.
 * - Unless stated, ops are differentiable (autograd records them when grad mode is on).
 */
#ifndef DC_SRC_CTORCH_CTORCH_H
#define DC_SRC_CTORCH_CTORCH_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor ct_tensor;

enum { CT_CPU = -1 };

/* ---- runtime ---- */
/* Before the first tensor is made, ctorch sets the thread count to its default
 * (DIFFCLIP_NUM_THREADS or the core count) and installs a caching CPU allocator for LibTorch:
 * freed blocks of 16 MiB or more are kept (up to DIFFCLIP_CPU_CACHE_MB, default 1024; 0 keeps
 * LibTorch's allocator) for the next request of the same size, so that repeated model calls
 * reuse their memory instead of faulting in fresh pages. */
/* n <= 0: number of online cores. */
int ct_set_num_threads(int n);
int ct_get_num_threads(void);
int ct_cuda_available(void);
/* 1 when LibTorch's CUDA backend is loaded (a CUDA build), whether or not a GPU is present. */
int ct_cuda_backend(void);
/* The first use of a CUDA device turns cuDNN autotuning on (the UNets repeat their shapes)
 * and applies DIFFCLIP_CUDA_TF32 (1: TF32 in cuBLAS and cuDNN, 0: none, unset: LibTorch's
 * defaults). The CUDA caching allocator's peak allocated and reserved bytes on a device
 * since the process began or the last reset (torch.cuda.max_memory_allocated and
 * max_memory_reserved), as seen by threads that used the device through ctorch. */
/* "LibTorch V, CUDA backend registered, N CUDA device(s)" or "LibTorch V, CPU only (no CUDA
 * backend)"; computed once. */
const char *ct_backend_info(void);
int ct_cuda_memory_peak(int device, int64_t *peak_allocated, int64_t *peak_reserved);
int ct_cuda_memory_reset_peak(int device);
/* Waits for the work queued on a CUDA device (timing); nothing to wait for on CT_CPU. */
int ct_synchronize(int device);
/* "cpu", "cuda", "cuda:N", "auto" (CUDA 0 when available, else CPU). */
int ct_parse_device(const char *name, int *device);
/* Seeds the global CPU and CUDA generators (ct_randn). */
int ct_manual_seed(uint64_t seed);
/* A copy of the state of `device`'s default generator (a uint8 tensor on the CPU), and its
 * restoration: recomputation replays a step's noise draws. */
int ct_rng_state(ct_tensor **out, int device);
int ct_rng_set_state(int device, const ct_tensor *state);

/* Floating-point operations (2 per multiply-add) of the forward conv, linear, matmul and bmm
 * calls made on this thread since the last reset: what the benchmarks report as GFLOP/s.
 * Backward passes are not counted. */
uint64_t ct_flop_count(void);
void ct_flop_count_reset(void);

/* ---- pools ---- */
/* The mark identifies the pool (its nesting depth). Ending a pool also ends any inner pool
 * left open (an error path); ending a pool that is already ended does nothing. Handles are
 * pooled on the thread that made them: free or keep them on that thread. */
size_t ct_pool_begin(void);
void ct_pool_end(size_t mark, ct_tensor *const *keep, size_t nkeep);
/* Number of tensor handles alive in the process (debugging and leak tests). */
size_t ct_live_handles(void);

/* ---- creation, host transfer, metadata ---- */
void ct_free(ct_tensor *t);                   /* NULL is fine; also removes it from a pool */
int ct_from_host(ct_tensor **out, const void *data, dc_dtype dtype, int ndim,
                 const int64_t *shape, int device);             /* copies */
/* Copies t (any layout/device) to `dst`, which holds exactly numel * dtype size bytes of
 * t's dtype. */
int ct_to_host(const ct_tensor *t, void *dst, size_t dst_bytes);
int ct_zeros(ct_tensor **out, dc_dtype dtype, int ndim, const int64_t *shape, int device);
int ct_full(ct_tensor **out, double value, dc_dtype dtype, int ndim, const int64_t *shape,
            int device);
int ct_randn(ct_tensor **out, dc_dtype dtype, int ndim, const int64_t *shape, int device);
int ct_scalar(ct_tensor **out, double value, dc_dtype dtype, int device);
int ct_clone(ct_tensor **out, const ct_tensor *t);              /* differentiable copy */
int ct_to(ct_tensor **out, const ct_tensor *t, dc_dtype dtype, int device);
int ct_contiguous(ct_tensor **out, const ct_tensor *t);
/* Channels-last memory format for 4-d tensors (values unchanged). */
int ct_to_channels_last(ct_tensor **out, const ct_tensor *t);

/* Metadata of a NULL tensor (or a bad dim) is -1 (ct_dtype: (dc_dtype)-1) with a message;
 * ct_device(NULL) is CT_CPU. */
int ct_ndim(const ct_tensor *t);
int64_t ct_size(const ct_tensor *t, int dim);                   /* dim may be negative */
/* Whether t has ndim dimensions of sizes shape[0..ndim), and whether a and b have one shape. */
int ct_has_shape(const ct_tensor *t, int ndim, const int64_t *shape);
int ct_same_shape(const ct_tensor *a, const ct_tensor *b);
int64_t ct_numel(const ct_tensor *t);
dc_dtype ct_dtype(const ct_tensor *t);
int ct_device(const ct_tensor *t);
/* The value of a one-element tensor. */
int ct_item(const ct_tensor *t, double *out);

/* ---- autograd ---- */
int ct_set_requires_grad(ct_tensor *t, int requires_grad);
int ct_requires_grad(const ct_tensor *t);
/* Backpropagates a one-element tensor; gradients accumulate into leaves. */
int ct_backward(const ct_tensor *loss);
/* Backpropagates `grad` (out's shape) from a non-scalar `out`: a vector-Jacobian product,
 * gradients accumulated into the leaves as ct_backward does. */
int ct_backward_with(const ct_tensor *out, const ct_tensor *grad);
/* The accumulated gradient of a leaf; *out = NULL (DC_OK) when it has none. */
int ct_grad(ct_tensor **out, const ct_tensor *t);
/* Drops the gradient (sets it to None, as optimizer.zero_grad(set_to_none=True)). */
int ct_clear_grad(ct_tensor *t);
/* t's gradient becomes a copy of `grad` in t's dtype, multiplied by `scale` (mixed
 * precision: a reduced-precision copy's gradient onto float32 master weights). */
int ct_set_grad(ct_tensor *t, const ct_tensor *grad, double scale);
int ct_detach(ct_tensor **out, const ct_tensor *t);

/* Scopes, strictly nested per thread: ct_grad_mode_begin(0) is torch.no_grad();
 * ct_inference_mode_begin is c10::InferenceMode (faster; its tensors never need grad). */
typedef struct ct_scope ct_scope;
int ct_grad_mode_begin(ct_scope **scope, int enabled);
int ct_inference_mode_begin(ct_scope **scope);
void ct_scope_end(ct_scope *scope);                             /* NULL is fine */
int ct_grad_enabled(void);

/* ---- elementwise (broadcasting) ---- */
int ct_add(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_sub(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_mul(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_div(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_add_scalar(ct_tensor **out, const ct_tensor *a, double s);
int ct_mul_scalar(ct_tensor **out, const ct_tensor *a, double s);
/* alpha * a + beta * b */
int ct_axpby(ct_tensor **out, double alpha, const ct_tensor *a, double beta,
             const ct_tensor *b);
int ct_neg(ct_tensor **out, const ct_tensor *a);
int ct_exp(ct_tensor **out, const ct_tensor *a);
int ct_log(ct_tensor **out, const ct_tensor *a);
int ct_sqrt(ct_tensor **out, const ct_tensor *a);
int ct_abs(ct_tensor **out, const ct_tensor *a);
int ct_sin(ct_tensor **out, const ct_tensor *a);
int ct_cos(ct_tensor **out, const ct_tensor *a);
int ct_pow_scalar(ct_tensor **out, const ct_tensor *a, double exponent);
int ct_clamp(ct_tensor **out, const ct_tensor *a, double lo, double hi);
int ct_sigmoid(ct_tensor **out, const ct_tensor *a);
int ct_relu(ct_tensor **out, const ct_tensor *a);
int ct_silu(ct_tensor **out, const ct_tensor *a);               /* x * sigmoid(x) */
int ct_gelu(ct_tensor **out, const ct_tensor *a);               /* exact (erf) GELU */
int ct_quick_gelu(ct_tensor **out, const ct_tensor *a);         /* x * sigmoid(1.702 x) */
int ct_prelu(ct_tensor **out, const ct_tensor *x, const ct_tensor *weight);

/* ---- reductions ---- */
int ct_sum(ct_tensor **out, const ct_tensor *a);                /* all elements -> scalar */
int ct_mean(ct_tensor **out, const ct_tensor *a);
int ct_sum_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim);
int ct_mean_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim);
/* L2 norm along dim. */
int ct_norm_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim);
int ct_argmax_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim); /* int64 */
int ct_max_abs(const ct_tensor *a, double *out);                /* not differentiable */

/* ---- shapes ---- */
int ct_reshape(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *shape);
int ct_permute(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *dims);
int ct_transpose(ct_tensor **out, const ct_tensor *t, int dim0, int dim1);
int ct_unsqueeze(ct_tensor **out, const ct_tensor *t, int dim);
int ct_flatten(ct_tensor **out, const ct_tensor *t, int start_dim, int end_dim);
int ct_cat(ct_tensor **out, ct_tensor *const *tensors, size_t count, int dim);
int ct_narrow(ct_tensor **out, const ct_tensor *t, int dim, int64_t start, int64_t length);
/* index: int64 1-d tensor. */
int ct_index_select(ct_tensor **out, const ct_tensor *t, int dim, const ct_tensor *index);
/* For each row b of t (B, L, ...), the element at position index[b] of dim 1 -> (B, ...). */
int ct_gather_rows(ct_tensor **out, const ct_tensor *t, const ct_tensor *index);
int ct_expand(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *shape);

/* ---- neural-network ops (NCHW) ---- */
/* Zero padding of the last two dims: left, right, top, bottom (F.pad(x, (l, r, t, b))). */
int ct_pad2d(ct_tensor **out, const ct_tensor *x, int left, int right, int top, int bottom);
int ct_conv2d(ct_tensor **out, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
              int stride, int padding);                          /* b may be NULL */
int ct_conv1d(ct_tensor **out, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
              int stride, int padding);
int ct_linear(ct_tensor **out, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b);
int ct_matmul(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_bmm(ct_tensor **out, const ct_tensor *a, const ct_tensor *b);
int ct_softmax(ct_tensor **out, const ct_tensor *x, int dim);   /* computed in x's dtype */
int ct_group_norm(ct_tensor **out, const ct_tensor *x, int groups, const ct_tensor *w,
                  const ct_tensor *b, double eps);
/* Over the last dim. */
int ct_layer_norm(ct_tensor **out, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
                  double eps);
/* Inference-mode batch norm with running statistics (N,C[,H,W]). */
int ct_batch_norm(ct_tensor **out, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
                  const ct_tensor *running_mean, const ct_tensor *running_var, double eps);
int ct_upsample_nearest2x(ct_tensor **out, const ct_tensor *x);
/* F.interpolate(mode="bicubic", align_corners=False), no antialias. */
int ct_resize_bicubic(ct_tensor **out, const ct_tensor *x, int64_t height, int64_t width);
int ct_avg_pool2d(ct_tensor **out, const ct_tensor *x, int kernel, int stride);
int ct_max_pool2d(ct_tensor **out, const ct_tensor *x, int kernel, int stride, int padding);
int ct_adaptive_avg_pool2d(ct_tensor **out, const ct_tensor *x, int64_t height, int64_t width);
/* F.cosine_similarity(a, b, dim, eps). */
int ct_cosine_similarity(ct_tensor **out, const ct_tensor *a, const ct_tensor *b, int dim,
                         double eps);

/* ---- in place, outside autograd ---- */
int ct_copy_(ct_tensor *dst, const ct_tensor *src);
int ct_mul_scalar_(ct_tensor *t, double s);
int ct_add_(ct_tensor *t, const ct_tensor *other, double alpha);  /* t += alpha * other */
int ct_mul_(ct_tensor *t, const ct_tensor *other);                /* t *= other */
int ct_silu_(ct_tensor *t);

/* ---- Adam, as torch.optim.Adam (single-tensor path, amsgrad off) ---- */
typedef struct ct_adam ct_adam;
int ct_adam_new(ct_adam **out, ct_tensor *const *params, size_t count, double lr,
                double beta1, double beta2, double eps, double weight_decay);
void ct_adam_free(ct_adam *adam);
/* Params without a gradient are skipped, as PyTorch does. */
int ct_adam_step(ct_adam *adam);
void ct_adam_set_lr(ct_adam *adam, double lr);
double ct_adam_lr(const ct_adam *adam);
int ct_adam_zero_grad(ct_adam *adam);                           /* set_to_none */

/* ---- data parallelism (c10d: a TCPStore on rank 0 and a Gloo process group) ---- */
typedef struct ct_dist ct_dist;
/* Joins the group of `world` processes whose rank 0 listens at master_addr:master_port (rank 0
 * hosts the store there). Every wait on another rank, joining included, ends after
 * timeout_seconds. DC_EIO when the group cannot be formed (a rank that never comes, a port in
 * use, an unreachable address). */
int ct_dist_new(ct_dist **out, int rank, int world, const char *master_addr, int master_port,
                double timeout_seconds);
void ct_dist_free(ct_dist *d);                                  /* NULL is fine */
int ct_dist_rank(const ct_dist *d);                             /* NULL: 0 */
int ct_dist_world(const ct_dist *d);                            /* NULL: 1 */
/* The collectives below are called by every rank in the same order. A rank that is lost or
 * does not answer within the timeout ends them with DC_EIO and a message naming it where it
 * is known. */
/* values summed across ranks, in place. */
int ct_dist_allreduce_f64(ct_dist *d, double *values, size_t n);
/* Rank 0's n bytes to every rank. */
int ct_dist_broadcast_bytes(ct_dist *d, void *data, size_t n);
/* Rank 0's values of the tensors, in place on every rank (no autograd). */
int ct_dist_broadcast_(ct_dist *d, ct_tensor *const *tensors, size_t n);
/* The gradients of params replaced by the sum over ranks of scale * gradient (a missing
 * gradient counts as zeros and is created). */
int ct_dist_allreduce_grads(ct_dist *d, ct_tensor *const *params, size_t n, double scale);

#ifdef __cplusplus
}
#endif
#endif
