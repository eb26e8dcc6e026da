/* The public face aligner: the predictor file checked (predictor_file.c) and handed to dlib
 * once (cdlib), detection with landmarks, and the published alignment (align.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../cdlib/cdlib.h"
#include "../io/file.h"
#include "../io/image.h"
#include "face.h"

/* Larger than any shape predictor dlib publishes (the 68-landmark one is 99.7 MB). */
#define FACE_MAX_PREDICTOR_BYTES ((size_t)1 << 30)

struct dc_face_aligner {
    cd_face_model *model;
    int upsample;
    double adjust_threshold;
    int64_t max_detect_pixels;
};

DC_API void dc_face_aligner_options_init(dc_face_aligner_options *options, unsigned version)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->version = version;
    options->predictor_path = NULL;
    options->upsample = 0;
    options->adjust_threshold = 1.0;
    options->max_detect_pixels = 4000000;
}

DC_API dc_status dc_face_aligner_new(dc_face_aligner **out,
                                     const dc_face_aligner_options *options)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_face_aligner_new: out is NULL");
    *out = NULL;
    dc_face_aligner_options o;
    dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
    if (options) {
        if (options->version == 0 || options->version > DC_FACE_ALIGNER_OPTIONS_VERSION)
            return dci_err(DC_EINVAL, "dc_face_aligner_options: version %u is not 1..%d",
                           options->version, DC_FACE_ALIGNER_OPTIONS_VERSION);
        o = *options;
    }
    if (o.upsample < 0 || o.upsample > 2)
        return dci_err(DC_EINVAL, "dc_face_aligner_new: upsample %d is not 0..2", o.upsample);
    if (!isfinite(o.adjust_threshold))
        return dci_err(DC_EINVAL, "dc_face_aligner_new: adjust_threshold is not finite");
    if (o.max_detect_pixels < 0)
        return dci_err(DC_EINVAL, "dc_face_aligner_new: max_detect_pixels is negative");
    const char *path = o.predictor_path ? o.predictor_path : DC_FACE_DEFAULT_PREDICTOR;
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int st = DC_OK;
    if (file.size > FACE_MAX_PREDICTOR_BYTES)
        st = dci_err(DC_EFORMAT, "%s: %zu bytes is too large for a shape predictor", path,
                     file.size);
    if (st == DC_OK)
        st = face_predictor_check(file.data, file.size, path, DC_FACE_LANDMARK_COUNT);
    dc_face_aligner *a = NULL;
    if (st == DC_OK && !(a = calloc(1, sizeof *a)))
        st = dci_err(DC_ENOMEM, "dc_face_aligner_new: out of memory");
    if (st == DC_OK)
        st = cd_face_model_new(file.data, file.size, path, &a->model);
    io_unmap_file(&file);
    if (st == DC_OK && cd_face_model_parts(a->model) != DC_FACE_LANDMARK_COUNT)
        st = dci_err(DC_EFORMAT, "%s: a predictor of %zu landmarks, expected %d", path,
                     cd_face_model_parts(a->model), DC_FACE_LANDMARK_COUNT);
    if (st != DC_OK) {
        dc_face_aligner_free(a);
        return (dc_status)st;
    }
    a->upsample = o.upsample;
    a->adjust_threshold = o.adjust_threshold;
    a->max_detect_pixels = o.max_detect_pixels;
    *out = a;
    return DC_OK;
}

DC_API void dc_face_aligner_free(dc_face_aligner *aligner)
{
    if (!aligner)
        return;
    cd_face_model_free(aligner->model);
    free(aligner);
}

DC_API void dc_faces_free(dc_face *faces) { free(faces); }

static int check_image(const dc_image *img, const char *fn)
{
    if (!img || !img->data)
        return dci_err(DC_EINVAL, "%s: image is NULL", fn);
    if (img->channels != 3 || img->width <= 0 || img->height <= 0)
        return dci_err(DC_EINVAL, "%s: image is %d x %d x %d, expected RGB", fn, img->width,
                       img->height, img->channels);
    return DC_OK;
}

/* Detection rectangles in full-image coordinates: on the image itself, or on a copy
 * downscaled to max_detect_pixels with the rectangles scaled back. */
static int detect_rects(dc_face_aligner *a, const dc_image *img, cd_rect **rects, size_t *count)
{
    int64_t pixels = (int64_t)img->width * img->height;
    if (a->max_detect_pixels == 0 || pixels <= a->max_detect_pixels)
        return cd_detect_faces(a->model, img->data, img->width, img->height, a->upsample,
                               a->adjust_threshold, rects, count);
    double scale = sqrt((double)a->max_detect_pixels / (double)pixels);
    int w = (int)(img->width * scale), h = (int)(img->height * scale);
    if (w < 1)
        w = 1;
    if (h < 1)
        h = 1;
    dc_image small;
    DCI_TRY(io_image_resize(img, w, h, &small));
    int st = cd_detect_faces(a->model, small.data, w, h, a->upsample, a->adjust_threshold,
                             rects, count);
    free(small.data);
    double sx = (double)img->width / w, sy = (double)img->height / h;
    for (size_t i = 0; st == DC_OK && i < *count; i++) {
        cd_rect *r = &(*rects)[i];
        *r = (cd_rect){(long)floor(r->left * sx), (long)floor(r->top * sy),
                       (long)ceil((r->right + 1) * sx) - 1, (long)ceil((r->bottom + 1) * sy) - 1};
    }
    return st;
}

DC_API dc_status dc_face_detect(dc_face_aligner *aligner, const dc_image *img, dc_face **faces,
                                size_t *count)
{
    if (!faces || !count)
        return dci_err(DC_EINVAL, "dc_face_detect: faces or count is NULL");
    *faces = NULL;
    *count = 0;
    if (!aligner)
        return dci_err(DC_EINVAL, "dc_face_detect: aligner is NULL");
    DCI_TRY(check_image(img, "dc_face_detect"));
    cd_rect *rects;
    size_t n;
    DCI_TRY(detect_rects(aligner, img, &rects, &n));
    if (n == 0)
        return DC_OK;
    dc_face *list = calloc(n, sizeof *list);
    if (!list) {
        free(rects);
        return dci_err(DC_ENOMEM, "dc_face_detect: out of memory for %zu faces", n);
    }
    int st = DC_OK;
    for (size_t i = 0; i < n && st == DC_OK; i++) {
        list[i].left = rects[i].left;
        list[i].top = rects[i].top;
        list[i].right = rects[i].right;
        list[i].bottom = rects[i].bottom;
        st = cd_face_landmarks(aligner->model, img->data, img->width, img->height, &rects[i],
                               list[i].points);
    }
    free(rects);
    if (st != DC_OK) {
        free(list);
        return (dc_status)st;
    }
    *faces = list;
    *count = n;
    return DC_OK;
}

DC_API dc_status dc_face_align(dc_face_aligner *aligner, const dc_image *img, int size,
                               dc_image *out, dc_face *face)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_face_align: out is NULL");
    memset(out, 0, sizeof *out);
    if (size < 1 || size > DC_FACE_MAX_ALIGN_SIZE)
        return dci_err(DC_EINVAL, "dc_face_align: size %d is not 1..%d", size,
                       DC_FACE_MAX_ALIGN_SIZE);
    dc_face *faces;
    size_t count;
    DCI_TRY(dc_face_detect(aligner, img, &faces, &count));
    if (count == 0)
        return dci_err(DC_ENOTFOUND, "no face was found in the %d x %d image", img->width,
                       img->height);
    /* the published get_landmark keeps the last detection */
    dc_face last = faces[count - 1];
    free(faces);
    if (face)
        *face = last;
    return (dc_status)face_align(img, last.points, size, size, out);
}

DC_API dc_status dc_face_align_landmarks(const dc_image *img,
                                         const int64_t points[DC_FACE_LANDMARK_VALUES],
                                         int output_size, int transform_size, dc_image *out)
{
    return (dc_status)face_align(img, points, output_size,
                                 transform_size == 0 ? output_size : transform_size, out);
}
