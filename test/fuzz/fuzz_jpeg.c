/* JPEG decoding through io_image_read_buffer, then the resize to a tensor. Inputs without the
 * JPEG start marker are left to fuzz_png, so that each target explores one decoder.
 *
 * A few hundred bytes can declare a large progressive image (end-of-band runs cover thousands
 * of blocks per code) that takes seconds to decode whatever else the input holds; like
 * libjpeg-turbo's own fuzzers, this target skips frames over 2^20 pixels that the size limits
 * would let through, so that the time goes to inputs that differ. */
#include "fuzz.h"
#include "io/limits.h"

enum { MAX_DECODED_PIXELS = 1 << 20 };

/* 1 when some start-of-frame marker (0xFFC0-0xFFCF except DHT, JPG and DAC) declares a frame
 * over MAX_DECODED_PIXELS within the limits. Entropy-coded data never holds these byte pairs
 * (0xFF is stuffed there), so scanning all the bytes finds every frame. */
static int declares_large_frame(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 9 <= size; i++) {
        uint8_t marker = data[i + 1];
        if (data[i] != 0xff || marker < 0xc0 || marker > 0xcf || marker == 0xc4 ||
            marker == 0xc8 || marker == 0xcc)
            continue;
        uint64_t height = (uint64_t)data[i + 5] << 8 | data[i + 6];
        uint64_t width = (uint64_t)data[i + 7] << 8 | data[i + 8];
        if (width * height > MAX_DECODED_PIXELS && width <= IO_MAX_IMAGE_SIDE &&
            height <= IO_MAX_IMAGE_SIDE)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff &&
        !declares_large_frame(data, size))
        fuzz_decode_image(data, size);
    return 0;
}
