/* The tfjs weights-manifest reader (io_tfjs_read_buffers): the strict JSON manifest and the
 * decoding of its shards. The input layout is in fuzz.h. */
#include "fuzz.h"
#include "io/tfjs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nshards = (size_t)data[0] % FUZZ_TFJS_MAX_SHARDS + 1;
    const uint8_t *manifest = data + 1;
    const uint8_t *nul = memchr(manifest, '\0', size - 1);
    size_t manifest_size = nul ? (size_t)(nul - manifest) : size - 1;
    const uint8_t *bytes = nul ? nul + 1 : data + size;
    size_t total = (size_t)(data + size - bytes), part = total / nshards;
    io_mapped_file shards[FUZZ_TFJS_MAX_SHARDS];
    for (size_t i = 0; i < nshards; i++)
        shards[i] = (io_mapped_file){bytes + i * part, i + 1 < nshards ? part : total - i * part};
    io_tfjs_weights w;
    if (io_tfjs_read_buffers(manifest, manifest_size, "fuzz-weights_manifest.json", shards,
                             nshards, &w) == DC_OK) {
        for (size_t i = 0; i < w.count; i++) {
            fuzz_touch(w.tensors[i].name, strlen(w.tensors[i].name));
            fuzz_touch_tensor(&w.tensors[i].value);
        }
        io_tfjs_weights_free(&w);
    }
    return 0;
}
