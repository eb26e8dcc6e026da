/* The size sniffer diffclip serve runs on uploads before decoding them
 * (src/serve/image_header.c): any bytes give a status, and a size only when both sides are
 * positive. Seeded with the PNG and JPEG seeds. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "serve/image_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so that ASan sees any read past the end. */
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    int width = 0, height = 0;
    if (sv_image_header_size(copy, size, &width, &height) == 0 && (width <= 0 || height <= 0))
        abort();
    free(copy);
    return 0;
}
