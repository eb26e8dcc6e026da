/* Images <-> NCHW float tensors, bit-exact with the Python pipelines DiffusionCLIP and CLIP
 * use: torchvision's CenterCrop offsets and Resize sizes, Pillow's Image.resize(..., LANCZOS
 * or BICUBIC) (libImaging/Resample.c, 8-bit path) and torchvision's save_image rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "image.h"
#include "limits.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Pillow's fixed-point weights: 8 bits of pixel, 2 bits of headroom for the filter's gain. */
enum { PRECISION_BITS = 32 - 8 - 2 };

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

/* Pillow's bicubic_filter: Keys' cubic convolution with a = -0.5. */
static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct resample_filter {
    double (*fn)(double);
    double support;
} resample_filter;

static const resample_filter FILTERS[] = {
    [IO_FILTER_LANCZOS] = {lanczos, 3.0},
    [IO_FILTER_BICUBIC] = {bicubic, 2.0},
};

/* Per output index: the first input index, the number of taps and `taps` fixed-point
 * weights. Pillow's precompute_coeffs and normalize_coeffs_8bpc, step for step, for the
 * output indices first .. first + count - 1 of a resize from in_size to out_size. */
typedef struct resample_kernel {
    int taps;       /* stride of `weights` */
    int *first;
    int *count;
    int32_t *weights;
} resample_kernel;

static void kernel_free(resample_kernel *k)
{
    free(k->first);
    free(k->count);
    free(k->weights);
}

static int kernel_init(resample_kernel *k, const resample_filter *f, int in_size, int out_size,
                       int first, int count)
{
    double scale = (double)in_size / out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filter_scale;
    k->taps = (int)ceil(support) * 2 + 1;
    k->first = malloc(sizeof(int) * (size_t)count);
    k->count = malloc(sizeof(int) * (size_t)count);
    k->weights = malloc(sizeof(int32_t) * (size_t)count * (size_t)k->taps);
    double *w = malloc(sizeof(double) * (size_t)k->taps);
    if (!k->first || !k->count || !k->weights || !w) {
        kernel_free(k);
        free(w);
        return dci_err(DC_ENOMEM, "resize: out of memory");
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filter_scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = f->fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *fixed = k->weights + (size_t)i * k->taps;
        for (int x = 0; x < k->taps; x++) {
            double v = 0.0;
            if (x < xmax)
                v = ww != 0.0 ? w[x] / ww : w[x];
            fixed[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        k->first[i] = xmin;
        k->count[i] = xmax;
    }
    free(w);
    return DC_OK;
}

/* Pillow's clip8: the accumulator started at one half, so the shift rounds. */
static uint8_t clip8(int64_t acc)
{
    if (acc < 0)
        return 0;
    acc >>= PRECISION_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* One pass along rows (step 3 bytes) or columns (step = row stride): output sample i of a
 * line is the weighted sum of the input samples first[i] .. first[i] + count[i] - 1. */
static void resample_line(const resample_kernel *k, int out_size, const uint8_t *in,
                          size_t in_step, uint8_t *out, size_t out_step)
{
    for (int i = 0; i < out_size; i++) {
        const int32_t *w = k->weights + (size_t)i * k->taps;
        const uint8_t *src = in + (size_t)k->first[i] * in_step;
        for (int c = 0; c < 3; c++) {
            int64_t acc = 1 << (PRECISION_BITS - 1);
            for (int t = 0; t < k->count[i]; t++)
                acc += (int64_t)src[(size_t)t * in_step + c] * w[t];
            out[(size_t)i * out_step + c] = clip8(acc);
        }
    }
}

/* The window (left, top, out_w x out_h) of Pillow's ImagingResample of an in_w x in_h RGB
 * image to full_w x full_h: horizontal pass into an 8-bit image, then vertical pass, each
 * skipped when it keeps the size. A window of the resized image is exactly its crop: every
 * output sample depends on its own kernel only. */
static int resample_window(const uint8_t *in, size_t in_stride, int in_w, int in_h,
                           int full_w, int full_h, int left, int top, int out_w, int out_h,
                           const resample_filter *f, uint8_t *out)
{
    size_t out_stride = (size_t)out_w * 3;
    const uint8_t *rows = in + (size_t)left * 3;   /* out_w wide, in_h tall */
    size_t rows_stride = in_stride;
    uint8_t *wide = NULL;
    resample_kernel k;
    if (in_w != full_w) {
        wide = malloc(out_stride * (size_t)in_h);
        if (!wide)
            return dci_err(DC_ENOMEM, "resize: out of memory");
        int st = kernel_init(&k, f, in_w, full_w, left, out_w);
        if (st != DC_OK) {
            free(wide);
            return st;
        }
        for (int y = 0; y < in_h; y++)
            resample_line(&k, out_w, in + (size_t)y * in_stride, 3, wide + (size_t)y * out_stride,
                          3);
        kernel_free(&k);
        rows = wide;
        rows_stride = out_stride;
    }
    int st = DC_OK;
    if (in_h != full_h) {
        st = kernel_init(&k, f, in_h, full_h, top, out_h);
        if (st == DC_OK) {
            for (int x = 0; x < out_w; x++)
                resample_line(&k, out_h, rows + (size_t)x * 3, rows_stride, out + (size_t)x * 3,
                              out_stride);
            kernel_free(&k);
        }
    } else {
        for (int y = 0; y < out_h; y++)
            memcpy(out + (size_t)y * out_stride, rows + (size_t)(top + y) * rows_stride,
                   out_stride);
    }
    free(wide);
    return st;
}

/* torchvision's center_crop: int(round((w - s) / 2.0)) with Python's half-to-even round. */
static int centre_offset(int excess)
{
    int half = excess / 2;
    return excess % 2 == 0 ? half : half + (half & 1);
}

void io_image_centre_square(int width, int height, int *x, int *y, int *side)
{
    *side = width < height ? width : height;
    *x = centre_offset(width - *side);
    *y = centre_offset(height - *side);
}

static int check_image(const dc_image *img, const char *what)
{
    if (!img || !img->data)
        return dci_err(DC_EINVAL, "%s: image is NULL", what);
    if (img->channels != 3 || img->width <= 0 || img->height <= 0 ||
        img->width > IO_MAX_IMAGE_SIDE || img->height > IO_MAX_IMAGE_SIDE)
        return dci_err(DC_EINVAL, "%s: image is %d x %d x %d, expected RGB of 1..%d per side",
                       what, img->width, img->height, img->channels, IO_MAX_IMAGE_SIDE);
    return DC_OK;
}

static int check_size(int size, const char *what)
{
    if (size <= 0 || size > IO_MAX_IMAGE_SIDE)
        return dci_err(DC_EINVAL, "%s: size %d is out of range 1..%d", what, size,
                       IO_MAX_IMAGE_SIDE);
    return DC_OK;
}

/* The size x size window at (left, top) of the in_w x in_h pixels at `in` resized to
 * full_w x full_h, as a new image in *out. */
static int resample_square(const uint8_t *in, size_t in_stride, int in_w, int in_h,
                           int full_w, int full_h, int left, int top, int size,
                           const resample_filter *f, const char *what, dc_image *out)
{
    uint8_t *pixels = malloc((size_t)size * size * 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "%s: out of memory", what);
    int status = resample_window(in, in_stride, in_w, in_h, full_w, full_h, left, top, size,
                                 size, f, pixels);
    if (status != DC_OK) {
        free(pixels);
        return status;
    }
    *out = (dc_image){.width = size, .height = size, .channels = 3, .data = pixels};
    return DC_OK;
}

int io_image_crop_resize(const dc_image *img, int x, int y, int side, int size, dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "crop_resize: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_image(img, "crop_resize"));
    DCI_TRY(check_size(size, "crop_resize"));
    if (x < 0 || y < 0 || side <= 0 || side > img->width - x || side > img->height - y)
        return dci_err(DC_EINVAL, "crop_resize: box (%d, %d) side %d is not inside the %d x %d "
                       "image", x, y, side, img->width, img->height);
    size_t in_stride = (size_t)img->width * 3;
    return resample_square(img->data + (size_t)y * in_stride + (size_t)x * 3, in_stride, side,
                           side, size, size, 0, 0, size, &FILTERS[IO_FILTER_LANCZOS],
                           "crop_resize", out);
}

int io_image_resize_crop(const dc_image *img, int size, io_resample_filter filter,
                         dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "resize_crop: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_image(img, "resize_crop"));
    DCI_TRY(check_size(size, "resize_crop"));
    if (filter != IO_FILTER_LANCZOS && filter != IO_FILTER_BICUBIC)
        return dci_err(DC_EINVAL, "resize_crop: unknown filter %d", (int)filter);
    /* torchvision's _compute_resized_output_size: int(size * long / short), exact in double */
    int w = img->width, h = img->height, full_w = size, full_h = size;
    if (w <= h)
        full_h = (int)((double)size * h / w);
    else
        full_w = (int)((double)size * w / h);
    return resample_square(img->data, (size_t)w * 3, w, h, full_w, full_h,
                           centre_offset(full_w - size), centre_offset(full_h - size), size,
                           &FILTERS[filter], "resize_crop", out);
}

int io_image_resize(const dc_image *img, int width, int height, dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "resize: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_image(img, "resize"));
    DCI_TRY(check_size(width, "resize"));
    DCI_TRY(check_size(height, "resize"));
    uint8_t *pixels = malloc((size_t)width * height * 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "resize: out of memory");
    int status = resample_window(img->data, (size_t)img->width * 3, img->width, img->height,
                                 width, height, 0, 0, width, height,
                                 &FILTERS[IO_FILTER_LANCZOS], pixels);
    if (status != DC_OK) {
        free(pixels);
        return status;
    }
    *out = (dc_image){.width = width, .height = height, .channels = 3, .data = pixels};
    return DC_OK;
}

int io_image_to_tensor(const dc_image *img, int size, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "image_to_tensor: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_image(img, "image_to_tensor"));
    DCI_TRY(check_size(size, "image_to_tensor"));

    int x, y, side;
    io_image_centre_square(img->width, img->height, &x, &y, &side);
    dc_image resized;
    DCI_TRY(io_image_crop_resize(img, x, y, side, size, &resized));
    size_t plane = (size_t)size * size;
    float *data = malloc(sizeof(float) * plane * 3);
    if (!data) {
        free(resized.data);
        return dci_err(DC_ENOMEM, "image_to_tensor: out of memory");
    }
    /* As DiffusionCLIP: np.array(img) / 255 in float64, cast to float32, then (x - 0.5) * 2. */
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = ((float)(v / 255.0) - 0.5f) * 2.0f;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            data[c * plane + i] = lut[resized.data[i * 3 + c]];
    free(resized.data);
    *out = (dc_tensor){.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, size, size}, .data = data};
    return DC_OK;
}

/* save_image((x + 1) * 0.5): x.mul(255).add_(0.5).clamp_(0, 255).to(uint8), in float32. */
static uint8_t to_byte(float x)
{
    float v = (x + 1.0f) * 0.5f;
    v = v * 255.0f;
    v = v + 0.5f;
    if (!(v >= 0.0f))   /* also NaN, which becomes 0 on x86 in PyTorch */
        return 0;
    return v > 255.0f ? 255 : (uint8_t)v;
}

int io_tensor_to_image(const dc_tensor *t, int64_t index, dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "tensor_to_image: output is NULL");
    memset(out, 0, sizeof *out);
    if (!t || !t->data)
        return dci_err(DC_EINVAL, "tensor_to_image: tensor is NULL");
    if (t->dtype != DC_FLOAT32 || t->ndim != 4 || t->shape[1] != 3)
        return dci_err(DC_EINVAL, "tensor_to_image: expected a float32 N x 3 x H x W tensor");
    int64_t n = t->shape[0], h = t->shape[2], w = t->shape[3];
    if (h <= 0 || w <= 0 || h > IO_MAX_IMAGE_SIDE || w > IO_MAX_IMAGE_SIDE ||
        (uint64_t)(h * w) > IO_MAX_IMAGE_PIXELS)
        return dci_err(DC_EINVAL, "tensor_to_image: image size %lld x %lld is out of range",
                       (long long)h, (long long)w);
    if (index < 0 || index >= n)
        return dci_err(DC_EINVAL, "tensor_to_image: index %lld is out of range 0..%lld",
                       (long long)index, (long long)n - 1);
    size_t plane = (size_t)(h * w);
    uint8_t *pixels = malloc(plane * 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "tensor_to_image: out of memory");
    const float *src = (const float *)t->data + (size_t)index * 3 * plane;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            pixels[i * 3 + c] = to_byte(src[c * plane + i]);
    *out = (dc_image){.width = (int)w, .height = (int)h, .channels = 3, .data = pixels};
    return DC_OK;
}
