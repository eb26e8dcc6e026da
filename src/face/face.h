/* The face module: detection and landmarks through cdlib, and the published FFHQ-style
 * alignment (DiffusionCLIP utils/align_utils.py align_face) in C. */
#ifndef DC_SRC_FACE_FACE_H
#define DC_SRC_FACE_FACE_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

/* Largest output (and transform) size the alignment takes, and most pixels its padded
 * working image may have (float32 RGB: 12 bytes each). */
#define FACE_MAX_ALIGN_SIZE DC_FACE_MAX_ALIGN_SIZE
#define FACE_MAX_PAD_PIXELS ((int64_t)64 << 20)
/* Landmark coordinates beyond this are refused (the maths stays exact in doubles). */
#define FACE_MAX_COORDINATE ((int64_t)1 << 30)

/* align_face on `img` with the 68 iBUG landmarks (x, y pairs) into a new output_size square;
 * transform_size is the quad transform's size, then resized to output_size when larger
 * (the published code's two sizes). */
int face_align(const dc_image *img, const int64_t *landmarks, int output_size,
               int transform_size, dc_image *out);

/* Checks the structure of a dlib shape predictor file of `parts` landmarks (in memory) so
 * that dlib's deserializer and predictor can be trusted with it; DC_EFORMAT naming the
 * fault otherwise. */
int face_predictor_check(const uint8_t *data, size_t size, const char *label, int parts);

#endif
