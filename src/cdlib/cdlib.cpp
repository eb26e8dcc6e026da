/* dlib behind a C boundary. The image is read in place through dlib's generic image
 * interface (a const view of the caller's pixels), so a large photo is not copied; only
 * the upsampled copy the detector scans is made, as dlib's Python binding makes it. */
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms/interpolation.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <streambuf>
#include <istream>
#include <vector>

#include "../core/error.h"
#include "cdlib.h"

/* A read-only RGB view in dlib's generic image interface (dlib/image_processing/
 * generic_image.h): the free functions are found by argument-dependent lookup. */
struct cd_rgb_view {
    const dlib::rgb_pixel *pixels;
    long rows, columns;
};
namespace dlib {
template <> struct image_traits<cd_rgb_view> {
    typedef rgb_pixel pixel_type;
};
}
static inline long num_rows(const cd_rgb_view &v) { return v.rows; }
static inline long num_columns(const cd_rgb_view &v) { return v.columns; }
static inline const void *image_data(const cd_rgb_view &v) { return v.pixels; }
static inline long width_step(const cd_rgb_view &v) { return v.columns * 3; }

static_assert(sizeof(dlib::rgb_pixel) == 3, "dlib::rgb_pixel must be 3 packed bytes");

struct cd_face_model {
    dlib::frontal_face_detector detector;
    dlib::shape_predictor predictor;
};

/* An istream over memory: dlib deserializes the bytes the caller checked, not a file that
 * might have changed since. */
namespace {
struct memory_buffer : std::streambuf {
    memory_buffer(const uint8_t *data, size_t size)
    {
        char *p = const_cast<char *>(reinterpret_cast<const char *>(data));
        setg(p, p, p + size);
    }
};

int from_exception(const char *what) noexcept
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return dci_err(DC_ENOMEM, "%s: out of memory", what);
    } catch (const dlib::serialization_error &e) {
        return dci_err(DC_EFORMAT, "%s: %s", what, e.what());
    } catch (const std::exception &e) {
        return dci_err(DC_EINTERNAL, "%s: dlib: %s", what, e.what());
    } catch (...) {
        return dci_err(DC_EINTERNAL, "%s: dlib: unknown exception", what);
    }
}

cd_rgb_view view_of(const uint8_t *rgb, int width, int height)
{
    return cd_rgb_view{reinterpret_cast<const dlib::rgb_pixel *>(rgb), height, width};
}
}  // namespace

extern "C" int cd_face_model_new(const uint8_t *data, size_t size, const char *label,
                                 cd_face_model **out)
{
    *out = nullptr;
    cd_face_model *model = nullptr;
    try {
        model = new cd_face_model;
        model->detector = dlib::get_frontal_face_detector();
        memory_buffer buffer(data, size);
        std::istream in(&buffer);
        dlib::deserialize(model->predictor, in);
        *out = model;
        return DC_OK;
    } catch (...) {
        delete model;
        return from_exception(label);
    }
}

extern "C" void cd_face_model_free(cd_face_model *model)
{
    delete model;
}

extern "C" size_t cd_face_model_parts(const cd_face_model *model)
{
    return model ? model->predictor.num_parts() : 0;
}

extern "C" int cd_detect_faces(cd_face_model *model, const uint8_t *rgb, int width, int height,
                               int upsample, double adjust_threshold, cd_rect **rects,
                               size_t *count)
{
    *rects = nullptr;
    *count = 0;
    try {
        cd_rgb_view img = view_of(rgb, width, height);
        std::vector<dlib::rectangle> found;
        if (upsample <= 0) {
            found = model->detector(img, adjust_threshold);
        } else {
            /* dlib's Python run_detector_with_upscale: pyramid_up with pyramid_down<2>. */
            dlib::pyramid_down<2> pyr;
            dlib::array2d<dlib::rgb_pixel> up;
            dlib::pyramid_up(img, up, pyr);
            for (int i = 1; i < upsample; i++)
                dlib::pyramid_up(up);
            found = model->detector(up, adjust_threshold);
            for (auto &r : found)
                r = pyr.rect_down(r, (unsigned)upsample);
        }
        if (found.empty())
            return DC_OK;
        cd_rect *list = static_cast<cd_rect *>(std::malloc(found.size() * sizeof(cd_rect)));
        if (!list)
            return dci_err(DC_ENOMEM, "face detection: out of memory");
        for (size_t i = 0; i < found.size(); i++)
            list[i] = cd_rect{found[i].left(), found[i].top(), found[i].right(),
                              found[i].bottom()};
        *rects = list;
        *count = found.size();
        return DC_OK;
    } catch (...) {
        return from_exception("face detection");
    }
}

extern "C" int cd_face_landmarks(const cd_face_model *model, const uint8_t *rgb, int width,
                                 int height, const cd_rect *rect, int64_t *points)
{
    try {
        cd_rgb_view img = view_of(rgb, width, height);
        dlib::full_object_detection shape =
            model->predictor(img, dlib::rectangle(rect->left, rect->top, rect->right,
                                                  rect->bottom));
        for (unsigned long i = 0; i < shape.num_parts(); i++) {
            points[2 * i] = shape.part(i).x();
            points[2 * i + 1] = shape.part(i).y();
        }
        return DC_OK;
    } catch (...) {
        return from_exception("face landmarks");
    }
}
