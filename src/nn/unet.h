/* The two diffusion UNets of DiffusionCLIP (REFERENCE §2.1, §2.2), written against ctorch:
 * - NN_UNET_DDPM: the DDPM "simple" UNet of CelebA-HQ / LSUN (keys temb.*, down.*, mid.*,
 *   up.*), GroupNorm eps 1e-6, sin-first timestep embedding;
 * - NN_UNET_ADM: guided-diffusion's UNetModel of AFHQ / ImageNet (keys time_embed.*,
 *   input_blocks.*, middle_block.*, output_blocks.*, out.*), GroupNorm eps 1e-5, cos-first
 *   embedding, scale-shift norm, legacy per-head [q, k, v] attention.
 * The architecture is inferred from the state dict's names and shapes; every tensor of the
 * state dict must be used and every expected one present with the expected shape.
 *
 * Weights live in one array in state-dict order with the state dict's names ("module."
 * prefixes removed), so that a fine-tuner can train them and save a state dict with the base
 * model's keys. A model is used by one thread at a time. */
#ifndef DC_SRC_NN_UNET_H
#define DC_SRC_NN_UNET_H

#include <stddef.h>
#include <stdint.h>

#include "../ctorch/ctorch.h"
#include "../io/checkpoint.h"

#define NN_UNET_MAX_LEVELS 12
#define NN_UNET_DEFAULT_HEAD_CHANNELS 64

typedef struct nn_unet nn_unet;

typedef enum nn_unet_kind { NN_UNET_DDPM = 0, NN_UNET_ADM = 1 } nn_unet_kind;

typedef struct nn_unet_info {
    nn_unet_kind kind;
    int in_channels;                 /* 3 */
    int out_channels;                /* 3, or 6 with a learned variance */
    int base_channels;               /* the timestep embedding width ("ch", "model_channels") */
    int time_embed_channels;         /* 4 * base_channels */
    int levels;                      /* resolutions; levels - 1 downsamplings */
    int level_channels[NN_UNET_MAX_LEVELS];
    double channel_mult[NN_UNET_MAX_LEVELS];   /* level_channels / base_channels */
    int num_res_blocks;              /* per level on the way down (one more on the way up) */
    int attention[NN_UNET_MAX_LEVELS];         /* 1 where the level has attention blocks */
    int attention_resolutions[NN_UNET_MAX_LEVELS]; /* image_size >> level, for those levels */
    int attention_count;             /* entries of attention_resolutions (0 without a size) */
    int head_channels;               /* ADM: channels per head, or 0 with fixed num_heads */
    int num_heads;                   /* ADM with head_channels 0; DDPM: 1 */
    int learn_sigma;                 /* out_channels == 2 * in_channels */
    int scale_shift;                 /* ADM use_scale_shift_norm */
    int resblock_updown;             /* ADM: resampling inside res blocks (else convs) */
    int has_label_emb;               /* ADM class embedding: loaded, unused (as the reference) */
    /* The size it was trained at (the network is convolutional: inputs may have any multiple
     * of 2^(levels-1)); 0 when neither the options nor the weights tell. */
    int image_size;
    int64_t param_count;             /* scalars over all tensors */
    size_t tensor_count;
} nn_unet_info;

/* What shapes cannot tell. Zero-initialise for the defaults. */
typedef struct nn_unet_options {
    /* ADM channels per attention head: 0 means 64 (every published config); -1 means a fixed
     * head count `num_heads` (guided-diffusion's num_head_channels = -1). */
    int head_channels;
    int num_heads;
    /* Nominal image size (a multiple of 2^(levels-1)); 0: what the weights tell
     * (nn_unet_weights_image_size), possibly nothing. */
    int image_size;
} nn_unet_options;

/* The image size the architecture determines, or 0: a DDPM UNet with exactly one attention
 * level l trained at 16 << l (attention at 16 x 16, as every published DDPM config); an ADM
 * UNet whose channel multipliers are guided-diffusion's model_defaults for 512, 256, 128
 * or 64. */
int nn_unet_weights_image_size(const nn_unet_info *info);
/* DC_OK when `size` is a positive multiple of 2^(levels-1) (at most 16384); DC_EINVAL naming
 * label otherwise. */
int nn_unet_check_image_size(const nn_unet_info *info, int size, const char *label);

/* Builds a UNet from `sd` on `device` with weights converted to `dtype` (a floating type).
 * `label` names the file in error messages; opts may be NULL. DC_EFORMAT names the first
 * missing, unexpected or misshapen key. The weights outlive any pool, so a call made while
 * a ctorch pool is open is refused (DC_EINVAL). */
int nn_unet_load(nn_unet **out, const io_state_dict *sd, const char *label, int device,
                 dc_dtype dtype, const nn_unet_options *opts);
void nn_unet_free(nn_unet *m);                       /* NULL is fine */

const nn_unet_info *nn_unet_get_info(const nn_unet *m);
int nn_unet_device(const nn_unet *m);
dc_dtype nn_unet_dtype(const nn_unet *m);

/* Weights in state-dict order (every key of the loaded state dict, label_emb included). The
 * tensors belong to the model; a caller may set requires_grad on them or update them in
 * place (ct_copy_, ct_add_, Adam). */
size_t nn_unet_tensor_count(const nn_unet *m);
const char *nn_unet_tensor_name(const nn_unet *m, size_t i);     /* NULL out of range */
ct_tensor *nn_unet_tensor(const nn_unet *m, size_t i);           /* NULL out of range */

/* Host copies of the weights in state-dict order (names as nn_unet_tensor_name, data in the
 * model's dtype); free with io_state_dict_free. */
int nn_unet_export(const nn_unet *m, io_state_dict *out);
/* Builds a UNet from `sd` with the architecture options of `like` (head layout, nominal
 * size), then checks that it has exactly like's tensors (names and shapes, any order):
 * DC_EFORMAT naming the first difference. For fine-tuned weights of a base model. */
int nn_unet_load_like(nn_unet **out, const io_state_dict *sd, const char *label,
                      const nn_unet *like, int device, dc_dtype dtype);
/* An independent copy of m's weights on `device` in `dtype` (no graph, no gradients). */
int nn_unet_clone(nn_unet **out, const nn_unet *m, int device, dc_dtype dtype);

/* Weight deltas (src/nn/unet_delta.c, the format of docs/formats.md in io/delta): writes
 * model - base (one architecture) as float16 to `path`, naming the base by `base_id`;
 * DC_EINVAL when the models differ in names or shapes or a change exceeds float16. Call it
 * outside a ctorch pool. */
int nn_unet_write_delta(const nn_unet *model, const nn_unet *base, const char *base_id,
                        const char *path);
/* base's weights plus the float16 deltas of sd, on `device` in `dtype`; DC_EFORMAT when sd
 * lacks a tensor of base or has another count or shape. */
int nn_unet_apply_delta(nn_unet **out, const nn_unet *base, const io_state_dict *sd,
                        const char *path, int device, dc_dtype dtype);

/* out = model(x, t): x (N, in_channels, H, W) with H and W multiples of 2^(levels-1), t (N)
 * the integer timesteps as floats. Returns every output channel in x's dtype. x and t are
 * moved to the model's device and dtype when needed. Differentiable: under grad mode the
 * result carries the graph back to the weights (and to x). */
int nn_unet_forward(nn_unet *m, const ct_tensor *x, const ct_tensor *t, ct_tensor **out);
/* The same with a void * model, the shape of a diffusion noise predictor (df_eps_fn). */
int nn_unet_eps(void *model, const ct_tensor *x, const ct_tensor *t, ct_tensor **out);

#endif
