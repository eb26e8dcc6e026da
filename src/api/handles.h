/* The structs behind the public diffusion handles, shared by the src/api files that use
 * them (model, diffusion, latent cache, fine-tuner, sampler). */
#ifndef DC_SRC_API_HANDLES_H
#define DC_SRC_API_HANDLES_H

#include "../cache/latent_cache.h"
#include "../diffusion/schedule.h"
#include "../io/checkpoint.h"
#include "../nn/clip.h"
#include "../nn/idnet.h"
#include "../nn/unet.h"
#include "diffclip.h"

typedef struct api_shared_net api_shared_net;

struct dc_model {
    /* The weights, read only: they may be shared with other handles (`shared`, NULL when
     * this handle owns them alone). */
    nn_unet *net;
    api_shared_net *shared;
    char *path;
    /* Identifies the weights for latent caches (names, shapes and data of the file). */
    char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];
    /* What the config (or its absence) decided; the image size is net's. */
    dc_size_source size_source;
    char *config_path;           /* NULL without a config */
    dc_var_type var_type;
    int num_timesteps;
    double beta_start, beta_end;
    char *warnings;              /* never NULL once loaded */
};

/* Gives `m` (fine-tuned weights of `base`) base's config and schedule. */
int api_model_copy_config(dc_model *m, const dc_model *base);

struct dc_latent_cache {
    latent_cache *file;
    dc_model *model;
    dc_diffusion_options inversion;
    int gen_steps;
    df_schedule schedule;
    int64_t channels;            /* the image size is the file's (latent_cache_size) */
};

/* The networks behind the public CLIP and identity handles (src/api/clip.c). */
const nn_clip *api_clip_net(const dc_clip *clip);
const nn_idnet *api_idnet_net(const dc_idnet *net);

/* Checks that x is (N, in_channels, H, W) float32 with H and W usable by the model. */
int api_check_images(const dc_model *model, const dc_tensor *x, const char *what);

/* DC_OK when `cache` inverts as `model` (the same weights) with `inversion`'s t0, steps and
 * schedule would; DC_EINVAL naming the first difference otherwise. */
int api_latent_cache_check(const dc_latent_cache *cache, const dc_model *model,
                           const dc_diffusion_options *inversion);

#endif
