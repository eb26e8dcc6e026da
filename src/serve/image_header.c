/* The width and height a PNG or JPEG file's header gives, read before decoding so that an
 * upload's size is bounded without decoding it. Hostile input: every read is checked against
 * the length (test/fuzz/fuzz_image_header.c). */
#include <limits.h>
#include <string.h>

#include "image_header.h"

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int sv_image_header_size(const unsigned char *d, size_t n, int *width, int *height)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 24 && memcmp(d, png, 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
        uint32_t w = be32(d + 16), h = be32(d + 20);
        if (w == 0 || h == 0 || w > INT_MAX || h > INT_MAX)
            return -1;
        *width = (int)w;
        *height = (int)h;
        return 0;
    }
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return -1;
    /* JPEG: walk the marker segments to the first start-of-frame. */
    size_t i = 2;
    while (i + 4 <= n) {
        if (d[i] != 0xFF)
            return -1;
        unsigned marker = d[i + 1];
        if (marker == 0xFF) {            /* fill byte */
            i++;
            continue;
        }
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {
            i += 2;
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)   /* end of image, or scan before a frame */
            return -1;
        unsigned length = be16(d + i + 2);
        if (length < 2)
            return -1;
        int sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                  marker != 0xCC;
        if (sof) {
            if (length < 7 || i + 9 > n)
                return -1;
            unsigned h = be16(d + i + 5), w = be16(d + i + 7);
            if (w == 0 || h == 0)            /* h 0 (DNL) is not supported by the decoder */
                return -1;
            *width = (int)w;
            *height = (int)h;
            return 0;
        }
        i += 2 + (size_t)length;
    }
    return -1;
}
