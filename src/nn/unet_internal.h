/* Shared by unet.c (loading, dispatch) and the two architectures (ddpm_unet.c, adm_unet.c):
 * the loader that hands out checked weights by name, and layer helpers. */
#ifndef DC_SRC_NN_UNET_INTERNAL_H
#define DC_SRC_NN_UNET_INTERNAL_H

#include "unet.h"

#define UNET_GROUPS 32
#define UNET_NAME_MAX 256

/* Weight and bias of a conv, linear or group norm (bias may be NULL where a layer has none). */
typedef struct unet_affine {
    ct_tensor *w, *b;
} unet_affine;

/* One state-dict name resolved to the model's tensor array. */
typedef struct unet_key {
    const char *name;                /* without the "module." prefix */
    size_t index;                    /* position in the state dict */
} unet_key;

typedef struct unet_loader {
    const io_state_dict *sd;
    const char *label;
    nn_unet *m;
    unet_key *sorted;                /* names sorted for bsearch */
    unsigned char *used;             /* per state-dict entry */
} unet_loader;

struct nn_unet {
    nn_unet_info info;
    int device;
    dc_dtype dtype;
    size_t count;
    char **names;
    ct_tensor **tensors;
    void *net;                       /* ddpm_net or adm_net */
};

/* ---- loader ---- */
/* The state-dict tensor called `name`, or NULL. */
const dc_tensor *unet_find(const unet_loader *L, const char *name);
/* Whether some key starts with `prefix` (e.g. "input_blocks.3.1."). */
int unet_has_prefix(const unet_loader *L, const char *prefix);
/* The dimension `dim` of tensor `name`, which must exist with `ndim` dimensions; DC_EFORMAT
 * naming the key otherwise. */
int unet_dim(const unet_loader *L, const char *name, int ndim, int dim, int64_t *out);
/* Takes `name` (marks it used, uploads it) after checking its shape. */
int unet_take(unet_loader *L, ct_tensor **out, const char *name, int ndim,
              const int64_t *shape);
/* prefix.weight and prefix.bias of the usual layers. */
int unet_take_norm(unet_loader *L, unet_affine *a, const char *prefix, int64_t channels);
int unet_take_linear(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                     int64_t in);
int unet_take_conv(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                   int64_t in, int kernel);
int unet_take_conv1d(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                     int64_t in);
/* snprintf into a name buffer of UNET_NAME_MAX. */
const char *unet_name(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Counts the consecutive indices i = 0, 1, ... for which some key starts with `fmt` % i (fmt
 * holds one %d), up to `max`; DC_EFORMAT when there are more. */
int unet_count(const unet_loader *L, const char *fmt, int max, int *count);

/* ---- layers (new handles in the current pool) ---- */
/* GroupNorm (32 groups), and GroupNorm then SiLU, computed in float32 for any x dtype. */
int unet_gn(ct_tensor **out, const ct_tensor *x, const unet_affine *a, double eps);
int unet_gn_silu(ct_tensor **out, const ct_tensor *x, const unet_affine *a, double eps);
/* silu(fresh), fresh + other, fresh * other, where `fresh` is an intermediate result that
 * nothing else uses: outside autograd it is updated in place and becomes *out. */
int unet_silu(ct_tensor **out, ct_tensor *fresh);
int unet_add(ct_tensor **out, ct_tensor *fresh, const ct_tensor *other);
int unet_mul(ct_tensor **out, ct_tensor *fresh, const ct_tensor *other);
int unet_conv(ct_tensor **out, const ct_tensor *x, const unet_affine *a, int stride,
              int padding);
/* Sinusoidal embedding of t (N) float32 -> (N, dim): the DDPM form ([sin, cos], frequency
 * divisor half - 1) or the ADM form ([cos, sin], divisor half). */
int unet_timestep_embedding(ct_tensor **out, const ct_tensor *t, int dim, nn_unet_kind kind);
/* Ends the pool opened at `mark`, keeping *result when status is DC_OK; returns status. */
int unet_pool_end(size_t mark, int status, ct_tensor **result);

/* ---- architectures ---- */
int ddpm_unet_build(unet_loader *L, const nn_unet_options *opts);
int ddpm_unet_forward(const nn_unet *m, const ct_tensor *x, const ct_tensor *t,
                      ct_tensor **out);
void ddpm_unet_free_net(void *net);
int adm_unet_build(unet_loader *L, const nn_unet_options *opts);
int adm_unet_forward(const nn_unet *m, const ct_tensor *x, const ct_tensor *t,
                     ct_tensor **out);
void adm_unet_free_net(void *net);

#endif
