/* The published face alignment (DiffusionCLIP utils/align_utils.py align_face, the FFHQ
 * method; REFERENCE §11), step for step with the same arithmetic: numpy float64 for the
 * geometry, float32 for the padded image, scipy.ndimage.gaussian_filter's kernel, sums and
 * 'reflect' border, numpy's median, and Pillow 9.4's LANCZOS resize (io_image_resize) and
 * QUAD transform with BILINEAR sampling (libImaging/Geometry.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../io/image.h"
#include "face.h"

typedef struct vec2 {
    double x, y;
} vec2;

static vec2 v_add(vec2 a, vec2 b) { return (vec2){a.x + b.x, a.y + b.y}; }
static vec2 v_sub(vec2 a, vec2 b) { return (vec2){a.x - b.x, a.y - b.y}; }
static vec2 v_scale(vec2 a, double s) { return (vec2){a.x * s, a.y * s}; }

/* np.mean(lm[first:first + n], axis=0) */
static vec2 mean_points(const int64_t *lm, int first, int n)
{
    double sx = 0, sy = 0;
    for (int i = first; i < first + n; i++) {
        sx += (double)lm[2 * i];
        sy += (double)lm[2 * i + 1];
    }
    return (vec2){sx / n, sy / n};
}

/* The oriented quad (upper-left, lower-left, lower-right, upper-right) and its size. */
static int face_quad(const int64_t *lm, vec2 quad[4], double *qsize)
{
    for (int i = 0; i < 68; i++)
        if (lm[2 * i] < -FACE_MAX_COORDINATE || lm[2 * i] > FACE_MAX_COORDINATE ||
            lm[2 * i + 1] < -FACE_MAX_COORDINATE || lm[2 * i + 1] > FACE_MAX_COORDINATE)
            return dci_err(DC_EINVAL, "face align: landmark %d (%lld, %lld) is out of range", i,
                           (long long)lm[2 * i], (long long)lm[2 * i + 1]);
    vec2 eye_left = mean_points(lm, 36, 6), eye_right = mean_points(lm, 42, 6);
    vec2 eye_avg = v_scale(v_add(eye_left, eye_right), 0.5);
    vec2 eye_to_eye = v_sub(eye_right, eye_left);
    vec2 mouth_avg = {(double)(lm[96] + lm[108]) * 0.5, (double)(lm[97] + lm[109]) * 0.5};
    vec2 eye_to_mouth = v_sub(mouth_avg, eye_avg);

    /* x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1] */
    vec2 x = {eye_to_eye.x - -eye_to_mouth.y, eye_to_eye.y - eye_to_mouth.x};
    double norm = hypot(x.x, x.y);
    if (!(norm > 0))
        return dci_err(DC_EINVAL, "face align: the landmarks are degenerate (eyes and mouth "
                       "at one point)");
    x = (vec2){x.x / norm, x.y / norm};
    double a = hypot(eye_to_eye.x, eye_to_eye.y) * 2.0, b = hypot(eye_to_mouth.x, eye_to_mouth.y) * 1.8;
    x = v_scale(x, a > b ? a : b);
    vec2 y = {-x.y, x.x};
    vec2 c = v_add(eye_avg, v_scale(eye_to_mouth, 0.1));
    quad[0] = v_sub(v_sub(c, x), y);
    quad[1] = v_add(v_sub(c, x), y);
    quad[2] = v_add(v_add(c, x), y);
    quad[3] = v_sub(v_add(c, x), y);
    *qsize = hypot(x.x, x.y) * 2;
    return DC_OK;
}

/* (floor(min x), floor(min y), ceil(max x), ceil(max y)) of the quad */
static void quad_bounds(const vec2 quad[4], int64_t box[4])
{
    double x0 = quad[0].x, y0 = quad[0].y, x1 = quad[0].x, y1 = quad[0].y;
    for (int i = 1; i < 4; i++) {
        x0 = fmin(x0, quad[i].x);
        y0 = fmin(y0, quad[i].y);
        x1 = fmax(x1, quad[i].x);
        y1 = fmax(y1, quad[i].y);
    }
    box[0] = (int64_t)floor(x0);
    box[1] = (int64_t)floor(y0);
    box[2] = (int64_t)ceil(x1);
    box[3] = (int64_t)ceil(y1);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int crop_image(const dc_image *img, int x0, int y0, int x1, int y1, dc_image *out)
{
    int w = x1 - x0, h = y1 - y0;
    uint8_t *pixels = malloc((size_t)w * h * 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "face align: out of memory");
    for (int y = 0; y < h; y++)
        memcpy(pixels + (size_t)y * w * 3, img->data + ((size_t)(y0 + y) * img->width + x0) * 3,
               (size_t)w * 3);
    *out = (dc_image){.width = w, .height = h, .channels = 3, .data = pixels};
    return DC_OK;
}

/* numpy's pairwise summation (numpy/core/src/umath/loops_utils.h), for the kernel's sum */
static double pairwise_sum(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        memcpy(r, a, sizeof r);
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* scipy.ndimage's mode 'reflect' (the edge sample repeated), for any distance */
static int64_t reflect_index(int64_t i, int64_t n)
{
    int64_t period = 2 * n, m = i % period;
    if (m < 0)
        m += period;
    return m >= n ? period - 1 - m : m;
}

/* gaussian_filter1d along rows (axis 0) or columns (axis 1) of an h x w x 3 float32 image
 * into `out`: scipy's symmetric correlate1d, w0 x + sum over taps (outermost first) of
 * (x[-j] + x[+j]) w_j in double, stored as float32. */
static int gaussian_pass(const float *in, float *out, int64_t h, int64_t w, int axis,
                         const double *weights, int64_t radius)
{
    int64_t n = axis == 0 ? h : w, lines = axis == 0 ? w * 3 : h * 3;
    int64_t step = axis == 0 ? w * 3 : 3;
    double *line = malloc(sizeof(double) * (size_t)(n + 2 * radius));
    if (!line)
        return dci_err(DC_ENOMEM, "face align: out of memory");
    for (int64_t l = 0; l < lines; l++) {
        int64_t base = axis == 0 ? l : (l / 3) * w * 3 + l % 3;
        for (int64_t i = -radius; i < n + radius; i++)
            line[i + radius] = in[base + reflect_index(i, n) * step];
        const double *centre = line + radius;
        for (int64_t i = 0; i < n; i++) {
            double acc = centre[i] * weights[0];
            for (int64_t j = radius; j > 0; j--)
                acc += (centre[i - j] + centre[i + j]) * weights[j];
            out[base + i * step] = (float)acc;
        }
    }
    free(line);
    return DC_OK;
}

/* scipy.ndimage.gaussian_filter(img, [sigma, sigma, 0]) (truncate 4.0) into out */
static int gaussian_filter(const float *img, float *out, int64_t h, int64_t w, double sigma)
{
    int64_t radius = (int64_t)(4.0 * sigma + 0.5);
    double *kernel = malloc(sizeof(double) * (size_t)(2 * radius + 1));
    float *tmp = malloc(sizeof(float) * (size_t)(h * w * 3));
    if (!kernel || !tmp) {
        free(kernel);
        free(tmp);
        return dci_err(DC_ENOMEM, "face align: out of memory");
    }
    double k = -0.5 / (sigma * sigma);
    for (int64_t i = -radius; i <= radius; i++)
        kernel[i + radius] = exp(k * (double)(i * i));
    double sum = pairwise_sum(kernel, (size_t)(2 * radius + 1));
    for (int64_t i = 0; i <= 2 * radius; i++)
        kernel[i] /= sum;
    int st = gaussian_pass(img, tmp, h, w, 0, kernel + radius, radius);
    if (st == DC_OK)
        st = gaussian_pass(tmp, out, h, w, 1, kernel + radius, radius);
    free(kernel);
    free(tmp);
    return st;
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* np.median over the two spatial axes, per channel (float32; the mean of the two middle
 * values of an even count, in float32) */
static int channel_medians(const float *img, int64_t pixels, float median[3])
{
    float *values = malloc(sizeof(float) * (size_t)pixels);
    if (!values)
        return dci_err(DC_ENOMEM, "face align: out of memory");
    for (int c = 0; c < 3; c++) {
        for (int64_t i = 0; i < pixels; i++)
            values[i] = img[i * 3 + c];
        qsort(values, (size_t)pixels, sizeof(float), compare_floats);
        median[c] = pixels % 2 ? values[pixels / 2]
                               : (values[pixels / 2 - 1] + values[pixels / 2]) / 2.0f;
    }
    free(values);
    return DC_OK;
}

/* Reflect padding with the blurred, median-filled border; pad = (left, top, right, bottom). */
static int pad_image(const dc_image *img, const int64_t pad[4], double qsize, dc_image *out)
{
    int64_t w0 = img->width, h0 = img->height;
    int64_t w = w0 + pad[0] + pad[2], h = h0 + pad[1] + pad[3];
    if (w * h > FACE_MAX_PAD_PIXELS || w > 65536 || h > 65536)
        return dci_err(DC_ENOMEM, "face align: the padded image would be %lld x %lld pixels, "
                       "over the limit of %lld", (long long)w, (long long)h,
                       (long long)FACE_MAX_PAD_PIXELS);
    size_t n = (size_t)(w * h * 3);
    float *f = malloc(sizeof(float) * n), *blurred = malloc(sizeof(float) * n);
    uint8_t *pixels = malloc(n);
    float *mask = malloc(sizeof(float) * (size_t)(w * h));
    int st = DC_OK;
    if (!f || !blurred || !pixels || !mask) {
        st = dci_err(DC_ENOMEM, "face align: out of memory");
        goto done;
    }
    /* np.pad(..., 'reflect'): the edge sample is not repeated */
    for (int64_t y = 0; y < h; y++) {
        int64_t sy = y - pad[1];
        while (sy < 0 || sy >= h0)
            sy = sy < 0 ? -sy : 2 * (h0 - 1) - sy;
        for (int64_t x = 0; x < w; x++) {
            int64_t sx = x - pad[0];
            while (sx < 0 || sx >= w0)
                sx = sx < 0 ? -sx : 2 * (w0 - 1) - sx;
            for (int c = 0; c < 3; c++)
                f[(y * w + x) * 3 + c] = img->data[(sy * w0 + sx) * 3 + c];
        }
    }
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            float mx = fminf((float)x / (float)pad[0], (float)(w - 1 - x) / (float)pad[2]);
            float my = fminf((float)y / (float)pad[1], (float)(h - 1 - y) / (float)pad[3]);
            mask[y * w + x] = fmaxf(1.0f - mx, 1.0f - my);
        }
    st = gaussian_filter(f, blurred, h, w, qsize * 0.02);
    if (st != DC_OK)
        goto done;
    for (int64_t i = 0; i < w * h; i++) {
        float m = fminf(fmaxf(mask[i] * 3.0f + 1.0f, 0.0f), 1.0f);
        for (int c = 0; c < 3; c++)
            f[i * 3 + c] += (blurred[i * 3 + c] - f[i * 3 + c]) * m;
    }
    float median[3];
    st = channel_medians(f, w * h, median);
    if (st != DC_OK)
        goto done;
    for (int64_t i = 0; i < w * h; i++) {
        float m = fminf(fmaxf(mask[i], 0.0f), 1.0f);
        for (int c = 0; c < 3; c++) {
            float v = f[i * 3 + c] + (median[c] - f[i * 3 + c]) * m;
            v = rintf(v);
            pixels[i * 3 + c] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    *out = (dc_image){.width = (int)w, .height = (int)h, .channels = 3, .data = pixels};
    pixels = NULL;
done:
    free(f);
    free(blurred);
    free(pixels);
    free(mask);
    return st;
}

/* Pillow's bilinear_filter32RGB at (xin, yin); 0 outside the image (then filled black). */
static int bilinear_sample(const dc_image *im, double xin, double yin, uint8_t *out)
{
    if (xin < 0.0 || xin >= im->width || yin < 0.0 || yin >= im->height)
        return 0;
    xin -= 0.5;
    yin -= 0.5;
    int x = xin < 0.0 ? (int)floor(xin) : (int)xin;
    int y = yin < 0.0 ? (int)floor(yin) : (int)yin;
    double dx = xin - x, dy = yin - y;
    int x0 = x < 0 ? 0 : x < im->width ? x : im->width - 1;
    int x1 = x + 1 < 0 ? 0 : x + 1 < im->width ? x + 1 : im->width - 1;
    int yc = y < 0 ? 0 : y < im->height ? y : im->height - 1;
    const uint8_t *row = im->data + (size_t)yc * im->width * 3;
    const uint8_t *next = y + 1 >= 0 && y + 1 < im->height ? row + (size_t)im->width * 3 * (y + 1 - yc) : NULL;
    for (int b = 0; b < 3; b++) {
        double v1 = row[x0 * 3 + b] + (row[x1 * 3 + b] - row[x0 * 3 + b]) * dx;
        double v2 = next ? next[x0 * 3 + b] + (next[x1 * 3 + b] - next[x0 * 3 + b]) * dx : v1;
        v1 = v1 + (v2 - v1) * dy;
        out[b] = (uint8_t)v1;
    }
    return 1;
}

/* img.transform((size, size), QUAD, (quad + 0.5).flatten(), BILINEAR): Image.py's QUAD
 * coefficients and Geometry.c's quad_transform. */
static int quad_transform(const dc_image *img, const vec2 quad[4], int size, dc_image *out)
{
    uint8_t *pixels = calloc((size_t)size * size, 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "face align: out of memory");
    double nw_x = quad[0].x + 0.5, nw_y = quad[0].y + 0.5, sw_x = quad[1].x + 0.5,
           sw_y = quad[1].y + 0.5, se_x = quad[2].x + 0.5, se_y = quad[2].y + 0.5,
           ne_x = quad[3].x + 0.5, ne_y = quad[3].y + 0.5;
    double as = 1.0 / size, at = 1.0 / size;
    double a[8] = {nw_x, (ne_x - nw_x) * as, (sw_x - nw_x) * at,
                   (se_x - sw_x - ne_x + nw_x) * as * at,
                   nw_y, (ne_y - nw_y) * as, (sw_y - nw_y) * at,
                   (se_y - sw_y - ne_y + nw_y) * as * at};
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            double xin = x + 0.5, yin = y + 0.5;
            double xx = a[0] + a[1] * xin + a[2] * yin + a[3] * xin * yin;
            double yy = a[4] + a[5] * xin + a[6] * yin + a[7] * xin * yin;
            bilinear_sample(img, xx, yy, pixels + ((size_t)y * size + x) * 3);
        }
    *out = (dc_image){.width = size, .height = size, .channels = 3, .data = pixels};
    return DC_OK;
}

/* Replaces *cur by *next, freeing *cur unless it is the caller's image. */
static void advance(dc_image *cur, dc_image *next, const dc_image *input)
{
    if (cur->data != input->data)
        free(cur->data);
    *cur = *next;
}

int face_align(const dc_image *img, const int64_t *lm, int output_size, int transform_size,
               dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "face align: output is NULL");
    memset(out, 0, sizeof *out);
    if (!img || !img->data || !lm)
        return dci_err(DC_EINVAL, "face align: image or landmarks are NULL");
    if (img->channels != 3 || img->width <= 0 || img->height <= 0)
        return dci_err(DC_EINVAL, "face align: expected an RGB image");
    if (output_size < 1 || output_size > FACE_MAX_ALIGN_SIZE || transform_size < 1 ||
        transform_size > FACE_MAX_ALIGN_SIZE)
        return dci_err(DC_EINVAL, "face align: sizes %d and %d must be in 1..%d", output_size,
                       transform_size, FACE_MAX_ALIGN_SIZE);
    vec2 quad[4];
    double qsize = 0;
    DCI_TRY(face_quad(lm, quad, &qsize));

    dc_image cur = *img, next;
    int st = DC_OK;
    /* Shrink */
    int64_t shrink = (int64_t)floor(qsize / output_size * 0.5);
    if (shrink > 1) {
        int64_t rw = (int64_t)rint((double)cur.width / shrink);
        int64_t rh = (int64_t)rint((double)cur.height / shrink);
        if (rw < 1 || rh < 1)
            return dci_err(DC_EINVAL, "face align: the face is far larger than the %d x %d "
                           "image", img->width, img->height);
        DCI_TRY(io_image_resize(&cur, (int)rw, (int)rh, &next));
        advance(&cur, &next, img);
        for (int i = 0; i < 4; i++)
            quad[i] = (vec2){quad[i].x / (double)shrink, quad[i].y / (double)shrink};
        qsize /= shrink;
    }
    /* Crop */
    int64_t border = max64((int64_t)rint(qsize * 0.1), 3), box[4];
    quad_bounds(quad, box);
    int64_t crop[4] = {max64(box[0] - border, 0), max64(box[1] - border, 0),
                       min64(box[2] + border, cur.width), min64(box[3] + border, cur.height)};
    if (crop[2] - crop[0] < cur.width || crop[3] - crop[1] < cur.height) {
        if (crop[2] <= crop[0] || crop[3] <= crop[1]) {
            st = dci_err(DC_EINVAL, "face align: the face lies outside the image");
            goto fail;
        }
        st = crop_image(&cur, (int)crop[0], (int)crop[1], (int)crop[2], (int)crop[3], &next);
        if (st != DC_OK)
            goto fail;
        advance(&cur, &next, img);
        for (int i = 0; i < 4; i++)
            quad[i] = v_sub(quad[i], (vec2){(double)crop[0], (double)crop[1]});
    }
    /* Pad */
    quad_bounds(quad, box);
    int64_t pad[4] = {max64(-box[0] + border, 0), max64(-box[1] + border, 0),
                      max64(box[2] - cur.width + border, 0), max64(box[3] - cur.height + border, 0)};
    int64_t pad_max = max64(max64(pad[0], pad[1]), max64(pad[2], pad[3]));
    if (pad_max > border - 4) {
        int64_t least = (int64_t)rint(qsize * 0.3);
        for (int i = 0; i < 4; i++)
            pad[i] = max64(pad[i], least);
        /* numpy's reflect needs more than one sample; 0 pads make the mask 0 / 0 */
        if (cur.width < 2 || cur.height < 2 || least < 1) {
            st = dci_err(DC_EINVAL, "face align: the face is too small to pad (%d x %d)",
                         cur.width, cur.height);
            goto fail;
        }
        st = pad_image(&cur, pad, qsize, &next);
        if (st != DC_OK)
            goto fail;
        advance(&cur, &next, img);
        for (int i = 0; i < 4; i++)
            quad[i] = v_add(quad[i], (vec2){(double)pad[0], (double)pad[1]});
    }
    /* Transform */
    st = quad_transform(&cur, quad, transform_size, &next);
    if (st != DC_OK)
        goto fail;
    advance(&cur, &next, img);
    if (output_size < transform_size) {
        st = io_image_resize(&cur, output_size, output_size, &next);
        if (st != DC_OK)
            goto fail;
        advance(&cur, &next, img);
    }
    *out = cur;
    return DC_OK;
fail:
    if (cur.data != img->data)
        free(cur.data);
    return st;
}
