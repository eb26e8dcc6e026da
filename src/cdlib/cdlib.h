/* cdlib: the thin C shim over dlib (C++) that the face module uses: dlib's HOG frontal face
 * detector and its 68-landmark shape predictor. Every C++ exception is caught here and becomes
 * a status with a message; nothing above this folder includes a dlib header. */
#ifndef DC_SRC_CDLIB_CDLIB_H
#define DC_SRC_CDLIB_CDLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cd_face_model cd_face_model;

/* A detection rectangle, dlib's convention: right and bottom are inclusive. */
typedef struct cd_rect {
    long left, top, right, bottom;
} cd_rect;

/* The detector and a shape predictor deserialized from `data` (a whole .dat file, which the
 * caller has checked: dlib's deserializer trusts the sizes it reads). `label` names the file
 * in messages. DC_EFORMAT if dlib refuses it. */
int cd_face_model_new(const uint8_t *data, size_t size, const char *label, cd_face_model **out);
void cd_face_model_free(cd_face_model *model);
/* Landmarks the predictor places (68 for the iBUG 300-W model). */
size_t cd_face_model_parts(const cd_face_model *model);

/* Faces in the interleaved RGB image (width x height, rows packed) whose detection score
 * exceeds adjust_threshold: the image upsampled `upsample` times by pyramid_up (as dlib's
 * Python detector(img, upsample) does), the detections mapped back; in the detector's order
 * (most confident first). *rects is malloc'ed (NULL when none). */
int cd_detect_faces(cd_face_model *model, const uint8_t *rgb, int width, int height,
                    int upsample, double adjust_threshold, cd_rect **rects, size_t *count);
/* The predictor's landmarks for `rect` in the image: points[2 * i] = x, points[2 * i + 1] = y
 * for the model's parts (points holds 2 * parts). */
int cd_face_landmarks(const cd_face_model *model, const uint8_t *rgb, int width, int height,
                      const cd_rect *rect, int64_t *points);

#ifdef __cplusplus
}
#endif
#endif
