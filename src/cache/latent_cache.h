/* The latent cache: per image (x0, x_rec, x_lat) for one model and one set of inversion
 * parameters, in one file (docs/formats.md). Pure C: arrays are host float32. The published
 * code keys its caches only by dataset/t0/counts and silently reuses stale ones; this cache
 * refuses to open when the model or a parameter differs. */
#ifndef DC_SRC_CACHE_LATENT_CACHE_H
#define DC_SRC_CACHE_LATENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../io/checkpoint.h"
#include "diffclip.h"

#define LATENT_CACHE_FINGERPRINT_SIZE 40

typedef struct latent_cache_key {
    char model_fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];  /* NUL-terminated */
    int32_t t0;
    int32_t inv_steps;
    int32_t gen_steps;
    int32_t num_timesteps;
    double beta_start;
    double beta_end;
    int32_t channels;                /* of each image: 1 x channels x height x width */
    int32_t height;                  /* both 0: any size, the file's or the first append's */
    int32_t width;
} latent_cache_key;

typedef struct latent_cache latent_cache;

/* Opens `path` if it exists (DC_EFORMAT if it is damaged; DC_EINVAL naming the first field
 * that differs from `key`), else starts an empty cache that the first append creates. */
int latent_cache_open(latent_cache **out, const char *path, const latent_cache_key *key);
/* As latent_cache_open for a file whose bytes are `data`: `path` names it in messages and is
 * where appends write. */
int latent_cache_parse_buffer(latent_cache **out, const uint8_t *data, size_t size,
                              const char *path, const latent_cache_key *key);
void latent_cache_free(latent_cache *cache);
/* Fixes the image size of a cache opened with size 0 x 0 that has none yet; otherwise
 * checks that height x width is the cache's (DC_EINVAL naming both). */
int latent_cache_set_size(latent_cache *cache, int32_t height, int32_t width);
/* The cache's image size (0 x 0 while it has none). */
void latent_cache_size(const latent_cache *cache, int32_t *height, int32_t *width);
size_t latent_cache_count(const latent_cache *cache);
/* The entry whose x0 equals `x0` exactly (1 x C x H x W float32 values); DC_OK with
 * *found = 0 when there is none. */
int latent_cache_find(const latent_cache *cache, const float *x0, size_t *index, int *found);
/* Decompresses entry `index` into caller buffers of C*H*W floats each (any may be NULL). */
int latent_cache_get(const latent_cache *cache, size_t index, float *x0, float *x_rec,
                     float *x_lat);
/* Adds an entry and rewrites the file atomically (a crash leaves the old file). */
int latent_cache_append(latent_cache *cache, const float *x0, const float *x_rec,
                        const float *x_lat);

/* The fingerprint of a set of named tensors: names, dtypes, shapes and data, as hex. */
void latent_cache_fingerprint(const dc_named_tensor *tensors, size_t count,
                              char out[LATENT_CACHE_FINGERPRINT_SIZE]);
/* The fingerprint of a state dict's tensors (a model's, for its caches and deltas). */
int latent_cache_fingerprint_state_dict(const io_state_dict *sd,
                                        char out[LATENT_CACHE_FINGERPRINT_SIZE]);

#endif
