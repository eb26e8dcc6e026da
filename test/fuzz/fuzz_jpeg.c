/* JPEG decoding through io_image_read_buffer, then the resize to a tensor. Inputs without the
 * JPEG start marker are left to fuzz_png, so that each target explores one decoder. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        fuzz_decode_image(data, size);
    return 0;
}
