/* Images <-> NCHW float tensors, bit-exact with the Python pipeline DiffusionCLIP uses:
 * torchvision's CenterCrop offsets, Pillow's Image.resize(..., LANCZOS) (libImaging/Resample.c,
 * 8-bit path) and torchvision's save_image rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../api/error.h"
#include "image.h"
#include "limits.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Pillow's fixed-point weights: 8 bits of pixel, 2 bits of headroom for the filter's gain. */
enum { PRECISION_BITS = 32 - 8 - 2, LANCZOS_SUPPORT = 3 };

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

/* Per output index: the first input index, the number of taps and `taps` fixed-point
 * weights. Pillow's precompute_coeffs and normalize_coeffs_8bpc, step for step. */
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

static int kernel_init(resample_kernel *k, int in_size, int out_size)
{
    double scale = (double)in_size / out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = LANCZOS_SUPPORT * filter_scale;
    k->taps = (int)ceil(support) * 2 + 1;
    k->first = malloc(sizeof(int) * (size_t)out_size);
    k->count = malloc(sizeof(int) * (size_t)out_size);
    k->weights = malloc(sizeof(int32_t) * (size_t)out_size * (size_t)k->taps);
    double *w = malloc(sizeof(double) * (size_t)k->taps);
    if (!k->first || !k->count || !k->weights || !w) {
        kernel_free(k);
        free(w);
        return dci_err(DC_ENOMEM, "resize: out of memory");
    }
    for (int xx = 0; xx < out_size; xx++) {
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
            w[x] = lanczos((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *fixed = k->weights + (size_t)xx * k->taps;
        for (int x = 0; x < k->taps; x++) {
            double v = 0.0;
            if (x < xmax)
                v = ww != 0.0 ? w[x] / ww : w[x];
            fixed[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        k->first[xx] = xmin;
        k->count[xx] = xmax;
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

/* Pillow's ImagingResample for a square crop to size x size: horizontal pass into an 8-bit
 * image, then vertical pass; both skipped when the size does not change. */
static int resample_square(const uint8_t *in, size_t in_stride, int side, int size,
                           uint8_t *out)
{
    size_t out_stride = (size_t)size * 3;
    if (side == size) {
        for (int y = 0; y < size; y++)
            memcpy(out + (size_t)y * out_stride, in + (size_t)y * in_stride, out_stride);
        return DC_OK;
    }
    resample_kernel k;
    DCI_TRY(kernel_init(&k, side, size));
    uint8_t *wide = malloc(out_stride * (size_t)side);   /* size wide, side tall */
    if (!wide) {
        kernel_free(&k);
        return dci_err(DC_ENOMEM, "resize: out of memory");
    }
    for (int y = 0; y < side; y++)
        resample_line(&k, size, in + (size_t)y * in_stride, 3, wide + (size_t)y * out_stride, 3);
    for (int x = 0; x < size; x++)
        resample_line(&k, size, wide + (size_t)x * 3, out_stride, out + (size_t)x * 3,
                      out_stride);
    free(wide);
    kernel_free(&k);
    return DC_OK;
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

static int check_rgb_image(const char *what, const dc_image *img)
{
    if (!img || !img->data)
        return dci_err(DC_EINVAL, "%s: image is NULL", what);
    if (img->channels != 3 || img->width <= 0 || img->height <= 0 ||
        img->width > IO_MAX_IMAGE_SIDE || img->height > IO_MAX_IMAGE_SIDE)
        return dci_err(DC_EINVAL, "%s: image is %d x %d x %d, expected RGB of 1..%d per side",
                       what, img->width, img->height, img->channels, IO_MAX_IMAGE_SIDE);
    return DC_OK;
}

int io_image_crop_resize(const dc_image *img, int x, int y, int side, int size, dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "crop_resize: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_rgb_image("crop_resize", img));
    if (size <= 0 || size > IO_MAX_IMAGE_SIDE)
        return dci_err(DC_EINVAL, "crop_resize: size %d is out of range 1..%d", size,
                       IO_MAX_IMAGE_SIDE);
    if (x < 0 || y < 0 || side <= 0 || side > img->width - x || side > img->height - y)
        return dci_err(DC_EINVAL, "crop_resize: box (%d, %d) side %d is not inside the %d x %d "
                       "image", x, y, side, img->width, img->height);
    uint8_t *pixels = malloc((size_t)size * size * 3);
    if (!pixels)
        return dci_err(DC_ENOMEM, "crop_resize: out of memory");
    size_t in_stride = (size_t)img->width * 3;
    int status = resample_square(img->data + (size_t)y * in_stride + (size_t)x * 3, in_stride,
                                 side, size, pixels);
    if (status != DC_OK) {
        free(pixels);
        return status;
    }
    *out = (dc_image){.width = size, .height = size, .channels = 3, .data = pixels};
    return DC_OK;
}

int io_image_to_tensor(const dc_image *img, int size, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "image_to_tensor: output is NULL");
    memset(out, 0, sizeof *out);
    DCI_TRY(check_rgb_image("image_to_tensor", img));
    if (size <= 0 || size > IO_MAX_IMAGE_SIDE)
        return dci_err(DC_EINVAL, "image_to_tensor: size %d is out of range 1..%d", size,
                       IO_MAX_IMAGE_SIDE);

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
