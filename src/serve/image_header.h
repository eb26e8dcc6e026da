#ifndef DC_SRC_SERVE_IMAGE_HEADER_H
#define DC_SRC_SERVE_IMAGE_HEADER_H

#include <stddef.h>
#include <stdint.h>

/* The width and height a PNG (IHDR) or JPEG (first start-of-frame) header gives: 0, or -1
 * if the data is neither or the header is malformed or truncated. */
int sv_image_header_size(const unsigned char *data, size_t n, int *width, int *height);

#endif
