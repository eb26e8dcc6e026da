/* The structs behind the public diffusion handles, shared by the src/api files that use
 * them (model, diffusion, latent cache, fine-tuner, sampler). */
#ifndef DC_SRC_API_HANDLES_H
#define DC_SRC_API_HANDLES_H

#include "../cache/latent_cache.h"
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
};

/* Checks that x is (N, in_channels, H, W) float32 with H and W usable by the model. */
int api_check_images(const dc_model *model, const dc_tensor *x, const char *what);

#endif
