/* PNG and JPEG through libpng and libjpeg-turbo, and the conversions between images and
 * NCHW float tensors in [-1, 1]. */
#ifndef DC_SRC_IO_IMAGE_H
#define DC_SRC_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

/* Any PNG (gray, gray+alpha, RGB, RGBA, palette, 16-bit) or JPEG (gray, RGB, CMYK refused
 * with a message) -> 8-bit RGB. */
int io_image_read_buffer(const uint8_t *data, size_t size, const char *label, dc_image *out);
int io_image_read_file(const char *path, dc_image *out);
/* By extension: .png or .jpg/.jpeg (quality 95); atomic replace. */
int io_image_write_file(const char *path, const dc_image *img);

/* The largest centred square of a width x height image, at torchvision CenterCrop's offsets. */
void io_image_centre_square(int width, int height, int *x, int *y, int *side);
/* The square of `side` pixels at (x, y) (inside the image) resized to size x size with the
 * same Pillow-exact Lanczos as io_image_to_tensor (copied when side == size). */
int io_image_crop_resize(const dc_image *img, int x, int y, int side, int size, dc_image *out);
/* Centre crop to a square, then resize to size x size: PIL's ANTIALIAS (Lanczos-3 with the
 * support scaled by the reduction factor) as DiffusionCLIP's `img.resize(..., ANTIALIAS)`;
 * output 1x3xHxW float32 in [-1, 1] computed as (v / 255 - 0.5) * 2. */
int io_image_to_tensor(const dc_image *img, int size, dc_tensor *out);
/* Pillow's Image.resize((width, height), LANCZOS) of the whole image (8-bit path), bit for
 * bit. */
int io_image_resize(const dc_image *img, int width, int height, dc_image *out);
typedef enum io_resample_filter { IO_FILTER_LANCZOS = 0, IO_FILTER_BICUBIC = 1 } io_resample_filter;

/* torchvision's Resize(size, filter) of the shorter side (the longer one to
 * int(size * long / short)) then CenterCrop(size), on a PIL image: Pillow's Image.resize with
 * that filter (8-bit path), bit for bit -> a size x size RGB image. */
int io_image_resize_crop(const dc_image *img, int size, io_resample_filter filter,
                         dc_image *out);
/* torchvision save_image: clamp((x + 1) / 2, 0, 1) * 255 + 0.5, truncated to uint8. */
int io_tensor_to_image(const dc_tensor *t, int64_t index, dc_image *out);

#endif
