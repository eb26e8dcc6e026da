/* What the networks share: weights from a state dict (looked up by name, shape-checked
 * against the architecture before anything is allocated, copied to a device in a compute
 * dtype) and running a forward pass in its own ctorch pool. */
#ifndef DC_SRC_NN_PARAMS_H
#define DC_SRC_NN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "../ctorch/ctorch.h"
#include "../io/checkpoint.h"

#if defined(__GNUC__)
#define NN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NN_PRINTF(f, a)
#endif

/* The handles a network owns, freed together. */
typedef struct nn_weights {
    ct_tensor **items;
    size_t count, capacity;
} nn_weights;

/* Takes ownership of t (freeing it on failure). */
int nn_weights_add(nn_weights *w, ct_tensor *t);
void nn_weights_free(nn_weights *w);

typedef struct nn_loader {
    const io_state_dict *sd;
    const char *label;               /* the file, for error messages */
    int device;
    nn_weights *owner;               /* every loaded tensor is appended here */
} nn_loader;

/* DC_EINVAL when a ctorch pool is open on this thread: a network's weights must outlive
 * pools, so networks are loaded outside them. */
int nn_check_no_pool(const char *label);

/* The tensor called `name`, or NULL. */
const dc_tensor *nn_sd_find(const io_state_dict *sd, const char *name);
/* The tensor printf(fmt, ...) names, or NULL. */
const dc_tensor *nn_sd_findf(const io_state_dict *sd, const char *fmt, ...) NN_PRINTF(2, 3);
/* The number of consecutive indices i = 0, 1, ... for which printf(fmt, i) names a tensor
 * (fmt holds one %d). */
int nn_sd_count(const io_state_dict *sd, const char *fmt);

/* Loads the floating-point tensor named by printf(fmt, ...) onto ld->device as `dtype`
 * (float16 files become float32 and so on). Its shape must be `ndim` long and equal `shape`
 * (a negative entry accepts any size). DC_EFORMAT names a missing or misshapen tensor. */
int nn_load(const nn_loader *ld, dc_dtype dtype, ct_tensor **out, int ndim,
            const int64_t *shape, const char *fmt, ...) NN_PRINTF(6, 7);

/* NN_LOAD(ld, dtype, &t, (d0, d1), "name.%d", i): nn_load with the shape written inline. */
#define NN_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NN_NDIM(...) ((int)(sizeof NN_SHAPE(__VA_ARGS__) / sizeof(int64_t)))
#define NN_LOAD(ld, dtype, out, shape, ...) \
    nn_load(ld, dtype, out, NN_NDIM shape, NN_SHAPE shape, __VA_ARGS__)

/* Eval-mode BatchNorm (eps 1e-5) with its running statistics, all float32. */
typedef struct nn_batch_norm {
    ct_tensor *weight, *bias, *mean, *var;
} nn_batch_norm;

/* Loads `prefix`.weight, .bias, .running_mean, .running_var, each of `channels` values. */
int nn_load_batch_norm(const nn_loader *ld, nn_batch_norm *bn, int64_t channels,
                       const char *prefix);
int nn_batch_norm_forward(ct_tensor **out, const ct_tensor *x, const nn_batch_norm *bn);

/* Runs fn(&result, net, in) inside a pool that frees every intermediate handle and hands back
 * only the result (*out stays NULL on failure). */
int nn_run_pooled(ct_tensor **out, const void *net, const ct_tensor *in,
                  int (*fn)(ct_tensor **out, const void *net, const ct_tensor *in));

#endif
