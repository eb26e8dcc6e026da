/* Shared by the libFuzzer targets (fuzz_*.c) and make_seeds.c. A target feeds its input to one
 * reader, which must return a status for any bytes; what it returns must be as large as it
 * claims (fuzz_touch reads every byte, so ASan flags a short buffer). */
#ifndef DC_TEST_FUZZ_H
#define DC_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cache/latent_cache.h"
#include "diffclip.h"
#include "io/checkpoint.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_touch(const void *p, size_t size)
{
    const volatile uint8_t *bytes = p;
    uint8_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum ^= bytes[i];
    (void)sum;
}

static inline void fuzz_touch_tensor(const dc_tensor *t)
{
    fuzz_touch(t->data, (size_t)dc_tensor_numel(t) * dc_dtype_size(t->dtype));
}

static inline void fuzz_touch_state_dict(const io_state_dict *sd)
{
    for (size_t i = 0; i < sd->count; i++) {
        fuzz_touch(sd->tensors[i].name, strlen(sd->tensors[i].name));
        fuzz_touch_tensor(&sd->tensors[i].value);
    }
}

/* Decodes an image and, when small (bounding the time per input), resizes it to a tensor. */
static inline void fuzz_decode_image(const uint8_t *data, size_t size)
{
    dc_image img;
    if (io_image_read_buffer(data, size, "fuzz-image", &img) != DC_OK)
        return;
    fuzz_touch(img.data, (size_t)img.width * (size_t)img.height * (size_t)img.channels);
    if ((uint64_t)img.width * (uint64_t)img.height <= (1u << 16)) {
        dc_tensor t;
        if (io_image_to_tensor(&img, 24, &t) == DC_OK) {
            fuzz_touch_tensor(&t);
            dc_tensor_free(&t);
        }
    }
    dc_image_free(&img);
}

/* tfjs inputs: u8 shard count (1..4), the manifest, a NUL byte, then the shards' bytes cut
 * into that many nearly equal parts. make_seeds writes them so; fuzz_tfjs splits them. */
enum { FUZZ_TFJS_MAX_SHARDS = 4 };

/* The parameters of the latent caches that make_seeds writes and fuzz_latent_cache opens:
 * images small enough that every entry can be decompressed. */
static inline latent_cache_key fuzz_latent_key(void)
{
    latent_cache_key key = {.t0 = 400, .inv_steps = 8, .gen_steps = 4, .num_timesteps = 1000,
                            .beta_start = 1e-4, .beta_end = 0.02,
                            .channels = 3, .height = 4, .width = 5};
    memcpy(key.model_fingerprint, "fuzz-model", sizeof "fuzz-model");
    return key;
}

#endif
