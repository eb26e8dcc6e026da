/* Reading the arrays and images commands take, and writing their results. */
#ifndef DC_SRC_CLI_INPUTS_H
#define DC_SRC_CLI_INPUTS_H

#include "align.h"
#include "diffclip.h"

/* 1 if `path` ends in `ext` (".npy"), case-insensitively. */
int cli_has_extension(const char *path, const char *ext);
/* An .npy file as it is, or an image file (PNG/JPEG) centre-cropped and resized to
 * size x size as a 1x3xHxW tensor in [-1, 1]. */
dc_status cli_read_image_or_array(const char *path, int size, dc_tensor *out);
/* 0 when `path` is an .npy array (taken at its own size) or `size` is known (> 0); else
 * prints that a photo needs the model's image size (--image-size or --config) and returns
 * CLI_EXIT_USAGE. */
int cli_check_photo_size(const char *path, int size);
/* Images for a loss or an edit: as cli_read_photo (al may be NULL: never aligned), then checked to be float32 (N, 3, H, W),
 * of `like`'s shape unless like is NULL. On failure prints "diffclip: PATH: what is wrong"
 * and returns CLI_EXIT_FAILURE (*out is then empty); else 0. */
int cli_read_images(const char *path, int size, const dc_tensor *like, cli_align *al,
                    dc_tensor *out);
/* An .npy file, or an image file holding the N images of an NCHW tensor in [-1, 1] side by
 * side (N x W wide). */
dc_status cli_write_image_or_array(const char *path, const dc_tensor *t);
/* The images of several NCHW tensors with the same H and W, side by side in order, as one
 * image file. */
dc_status cli_write_strip(const char *path, const dc_tensor *const *tensors, int count);

#endif
