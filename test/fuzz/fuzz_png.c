/* PNG decoding through io_image_read_buffer, then the resize to a tensor. Inputs without the
 * PNG signature are left to fuzz_jpeg, so that each target explores one decoder. Chunk CRCs
 * are recomputed on a copy, so that mutated chunks reach the decoder instead of all failing
 * their CRC. */
#include <stdlib.h>
#include <zlib.h>

#include "fuzz.h"

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fix_chunk_crcs(uint8_t *png, size_t size)
{
    /* each chunk: u32 length, 4-byte type, data, u32 CRC of type and data */
    for (size_t pos = 8; pos + 12 <= size;) {
        uint32_t length = get_be32(png + pos);
        if (length > size - pos - 12)
            break;
        uint32_t crc = (uint32_t)crc32(0, png + pos + 4, length + 4);
        for (int i = 0; i < 4; i++)
            png[pos + 8 + length + i] = (uint8_t)(crc >> (24 - 8 * i));
        pos += 12 + (size_t)length;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size < sizeof signature || memcmp(data, signature, sizeof signature) != 0)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_chunk_crcs(copy, size);
    fuzz_decode_image(copy, size);
    free(copy);
    return 0;
}
