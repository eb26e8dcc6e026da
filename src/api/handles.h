/* The structs behind the public diffusion handles, shared by the src/api files that use
 * them (model, diffusion, latent cache, fine-tuner, sampler). */
#ifndef DC_SRC_API_HANDLES_H
#define DC_SRC_API_HANDLES_H

#include "../cache/latent_cache.h"
#include "../nn/unet.h"
#include "diffclip.h"

struct dc_model {
    nn_unet *net;
    char *path;
    /* Identifies the weights for latent caches (names, shapes and data of the file). */
    char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];
};

/* Checks that x is (N, in_channels, H, W) float32 with H and W usable by the model. */
int api_check_images(const dc_model *model, const dc_tensor *x, const char *what);

/* DC_OK when `cache` inverts as `model` (the same weights) with `inversion`'s t0, steps and
 * schedule would; DC_EINVAL naming the first difference otherwise. */
int api_latent_cache_check(const dc_latent_cache *cache, const dc_model *model,
                           const dc_diffusion_options *inversion);

#endif
