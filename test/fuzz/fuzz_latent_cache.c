/* The latent cache file (latent_cache_parse_buffer), then every look-up on what it accepted.
 * The header CRC is recomputed on a copy so that mutations of the header fields reach the
 * checks behind it instead of all stopping at the CRC. */
#include <stdlib.h>
#include <zlib.h>

#include "fuzz.h"

enum { HEADER_CRC_OFFSET = 104, MAX_ENTRIES_READ = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (size >= HEADER_CRC_OFFSET + 4) {
        uint32_t crc = (uint32_t)crc32(0, copy, HEADER_CRC_OFFSET);
        for (int i = 0; i < 4; i++)
            copy[HEADER_CRC_OFFSET + i] = (uint8_t)(crc >> (8 * i));
    }
    latent_cache_key key = fuzz_latent_key();
    latent_cache *cache;
    if (latent_cache_parse_buffer(&cache, copy, size, "fuzz.cache", &key) == DC_OK) {
        size_t n = (size_t)key.channels * (size_t)key.height * (size_t)key.width;
        float *x0 = malloc(n * sizeof *x0), *x_rec = malloc(n * sizeof *x_rec),
              *x_lat = malloc(n * sizeof *x_lat);
        size_t count = latent_cache_count(cache);
        for (size_t i = 0; x0 && x_rec && x_lat && i < count && i < MAX_ENTRIES_READ; i++) {
            if (latent_cache_get(cache, i, x0, x_rec, x_lat) != DC_OK)
                continue;
            size_t index;
            int found;
            /* Entry i has this x0, so a look-up that succeeds finds it or an earlier twin. */
            if (latent_cache_find(cache, x0, &index, &found) == DC_OK && (!found || index > i))
                abort();
        }
        free(x0);
        free(x_rec);
        free(x_lat);
        latent_cache_free(cache);
    }
    free(copy);
    return 0;
}
