/* FaceRecognitionNet as face-api writes it (FaceRecognitionNet.ts, residualLayer.ts,
 * convLayer.ts, scaleLayer.ts), in NCHW: every op in the same order, with tfjs's paddings
 * ('valid' for the strided convolutions and pools, 'same' = 1 for the 3x3 convolutions). */
#include "face_descriptor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

/* normalize(x, meanRgb).div(255) */
static const float MEAN_RGB[3] = {122.782f, 117.001f, 104.298f};
#define INPUT_DIVISOR 255.0

/* convLayer: conv2d, add bias, scale (mul weights, add biases), optional ReLU. */
typedef struct fd_conv {
    ct_tensor *filters, *bias, *scale, *shift;   /* OIHW; the others (1, C, 1, 1) */
} fd_conv;

typedef struct fd_block {
    fd_conv conv1, conv2;
    int down;
} fd_block;

/* The residual layers in forward order: name, output channels, residualDown or residual. */
static const struct {
    const char *name;
    int channels, down;
} BLOCKS[] = {
    {"conv32_1", 32, 0},      {"conv32_2", 32, 0},      {"conv32_3", 32, 0},
    {"conv64_down", 64, 1},   {"conv64_1", 64, 0},      {"conv64_2", 64, 0},
    {"conv64_3", 64, 0},      {"conv128_down", 128, 1}, {"conv128_1", 128, 0},
    {"conv128_2", 128, 0},    {"conv256_down", 256, 1}, {"conv256_1", 256, 0},
    {"conv256_2", 256, 0},    {"conv256_down_out", 256, 1},
};
enum { BLOCK_COUNT = sizeof BLOCKS / sizeof BLOCKS[0], STEM_CHANNELS = 32, STEM_KERNEL = 7 };

struct nn_face_descriptor {
    int device;
    ct_tensor *mean;                 /* (1, 3, 1, 1) */
    fd_conv stem;                    /* conv32_down */
    fd_block blocks[BLOCK_COUNT];
    ct_tensor *fc;                   /* (256, 128): descriptor = pooled @ fc */
};

typedef struct fd_loader {
    const io_tfjs_weights *weights;
    const char *label;
    int device;
} fd_loader;

/* The float32 weight printf(fmt, ...) names, of shape `shape` (tfjs layout), as a device
 * tensor with its dims reordered by `perm` (NULL: as stored) and then reshaped to
 * `out_shape` (NULL: unchanged). */
static int load_weight(const fd_loader *ld, ct_tensor **out, int ndim, const int64_t *shape,
                       const int64_t *perm, int out_ndim, const int64_t *out_shape,
                       const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static int load_weight(const fd_loader *ld, ct_tensor **out, int ndim, const int64_t *shape,
                       const int64_t *perm, int out_ndim, const int64_t *out_shape,
                       const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const io_tensor *t = io_tfjs_find(ld->weights, name);
    if (!t)
        return dci_err(DC_EFORMAT, "%s: weight \"%s\" is missing", ld->label, name);
    int same = t->value.dtype == DC_FLOAT32 && t->value.ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->value.shape[d] == shape[d];
    if (!same) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "",
                     (long long)shape[d]);
        for (int d = 0; d < t->value.ndim && d < DC_MAX_DIMS; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "",
                     (long long)t->value.shape[d]);
        return dci_err(DC_EFORMAT, "%s: weight \"%s\" is %s [%s], expected float32 [%s]",
                       ld->label, name, dc_dtype_name(t->value.dtype), got, want);
    }
    ct_tensor *stored = NULL, *moved = NULL;
    int status = ct_from_host(&stored, t->value.data, DC_FLOAT32, ndim, shape, ld->device);
    if (status == DC_OK && perm)
        status = ct_permute(&moved, stored, ndim, perm);
    if (status == DC_OK && moved) {
        ct_free(stored);
        stored = NULL;
        status = ct_contiguous(&stored, moved);
    }
    ct_free(moved);
    moved = NULL;
    if (status == DC_OK && out_shape) {
        status = ct_reshape(&moved, stored, out_ndim, out_shape);
        ct_free(stored);
        stored = moved;
    }
    if (status != DC_OK) {
        ct_free(stored);
        return dci_err_prefix(status, ld->label);
    }
    *out = stored;
    return DC_OK;
}

static int load_conv(const fd_loader *ld, fd_conv *c, int kernel, int64_t in, int64_t out,
                     const char *prefix)
{
    static const int64_t HWIO_TO_OIHW[4] = {3, 2, 0, 1};
    const int64_t filters[4] = {kernel, kernel, in, out}, vector[1] = {out},
                  channel[4] = {1, out, 1, 1};
    DCI_TRY(load_weight(ld, &c->filters, 4, filters, HWIO_TO_OIHW, 0, NULL, "%s/conv/filters",
                        prefix));
    DCI_TRY(load_weight(ld, &c->bias, 1, vector, NULL, 4, channel, "%s/conv/bias", prefix));
    DCI_TRY(load_weight(ld, &c->scale, 1, vector, NULL, 4, channel, "%s/scale/weights", prefix));
    return load_weight(ld, &c->shift, 1, vector, NULL, 4, channel, "%s/scale/biases", prefix);
}

static void free_conv(fd_conv *c)
{
    ct_free(c->filters);
    ct_free(c->bias);
    ct_free(c->scale);
    ct_free(c->shift);
}

void nn_face_descriptor_free(nn_face_descriptor *net)
{
    if (!net)
        return;
    ct_free(net->mean);
    free_conv(&net->stem);
    for (int i = 0; i < BLOCK_COUNT; i++) {
        free_conv(&net->blocks[i].conv1);
        free_conv(&net->blocks[i].conv2);
    }
    ct_free(net->fc);
    free(net);
}

static int load_all(const fd_loader *ld, nn_face_descriptor *net)
{
    static const int64_t MEAN_SHAPE[4] = {1, 3, 1, 1};
    DCI_TRY(ct_from_host(&net->mean, MEAN_RGB, DC_FLOAT32, 4, MEAN_SHAPE, ld->device));
    DCI_TRY(load_conv(ld, &net->stem, STEM_KERNEL, 3, STEM_CHANNELS, "conv32_down"));
    int64_t in = STEM_CHANNELS;
    for (int i = 0; i < BLOCK_COUNT; i++) {
        fd_block *b = &net->blocks[i];
        char prefix[64];
        b->down = BLOCKS[i].down;
        snprintf(prefix, sizeof prefix, "%s/conv1", BLOCKS[i].name);
        DCI_TRY(load_conv(ld, &b->conv1, 3, in, BLOCKS[i].channels, prefix));
        snprintf(prefix, sizeof prefix, "%s/conv2", BLOCKS[i].name);
        DCI_TRY(load_conv(ld, &b->conv2, 3, BLOCKS[i].channels, BLOCKS[i].channels, prefix));
        in = BLOCKS[i].channels;
    }
    const int64_t fc[2] = {in, NN_FACE_DESCRIPTOR_DIM};
    return load_weight(ld, &net->fc, 2, fc, NULL, 0, NULL, "fc");
}

int nn_face_descriptor_load(nn_face_descriptor **out, const io_tfjs_weights *weights,
                            const char *label, int device)
{
    if (!out)
        return dci_err(DC_EINVAL, "face descriptor: output is NULL");
    *out = NULL;
    if (!label)
        label = "<face descriptor weights>";
    if (!weights)
        return dci_err(DC_EINVAL, "%s: weights are NULL", label);
    /* Weights made inside a pool would be freed when it ends. */
    size_t depth = ct_pool_begin();
    ct_pool_end(depth, NULL, 0);
    if (depth > 0)
        return dci_err(DC_EINVAL, "%s: load the face descriptor with no ctorch pool open", label);
    nn_face_descriptor *net = calloc(1, sizeof *net);
    if (!net)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    net->device = device;
    fd_loader ld = {.weights = weights, .label = label, .device = device};
    int status = load_all(&ld, net);
    if (status != DC_OK) {
        nn_face_descriptor_free(net);
        return status;
    }
    *out = net;
    return DC_OK;
}

int nn_face_descriptor_device(const nn_face_descriptor *net) { return net ? net->device : CT_CPU; }

/* ---- forward (every intermediate lives in the caller's pool) ---------------------------- */

static int conv_layer(ct_tensor **out, const fd_conv *c, const ct_tensor *x, int stride,
                      int padding, int relu)
{
    ct_tensor *y;
    DCI_TRY(ct_conv2d(&y, x, c->filters, NULL, stride, padding));
    DCI_TRY(ct_add(&y, y, c->bias));
    DCI_TRY(ct_mul(&y, y, c->scale));
    DCI_TRY(ct_add(&y, y, c->shift));
    if (relu)
        DCI_TRY(ct_relu(&y, y));
    *out = y;
    return DC_OK;
}

/* residual: conv, convNoRelu, + x, ReLU. residualDown: the first convolution is strided and
 * 'valid'; the shortcut is a 2x2 average pool, zero-extended to the new depth; when the
 * 'valid' convolution came out one smaller than the pool, the branch gets a zero row below
 * and a zero column on the right. */
static int residual(ct_tensor **out, const fd_block *b, const ct_tensor *x)
{
    ct_tensor *y, *shortcut;
    DCI_TRY(conv_layer(&y, &b->conv1, x, b->down ? 2 : 1, b->down ? 0 : 1, 1));
    DCI_TRY(conv_layer(&y, &b->conv2, y, 1, 1, 0));
    if (!b->down) {
        DCI_TRY(ct_add(&y, y, x));
        return ct_relu(out, y);
    }
    DCI_TRY(ct_avg_pool2d(&shortcut, x, 2, 2));
    if (ct_size(shortcut, 2) != ct_size(y, 2) || ct_size(shortcut, 3) != ct_size(y, 3))
        DCI_TRY(ct_pad2d(&y, y, 0, 1, 0, 1));
    if (ct_size(shortcut, 1) != ct_size(y, 1)) {
        ct_tensor *parts[2] = {shortcut, NULL};
        const int64_t shape[4] = {ct_size(shortcut, 0), ct_size(shortcut, 1),
                                  ct_size(shortcut, 2), ct_size(shortcut, 3)};
        DCI_TRY(ct_zeros(&parts[1], DC_FLOAT32, 4, shape, ct_device(shortcut)));
        DCI_TRY(ct_cat(&shortcut, parts, 2, 1));
    }
    DCI_TRY(ct_add(&y, shortcut, y));
    return ct_relu(out, y);
}

static int forward(ct_tensor **out, const nn_face_descriptor *net, const ct_tensor *x)
{
    ct_tensor *y, *divisor;
    DCI_TRY(ct_sub(&y, x, net->mean));
    DCI_TRY(ct_scalar(&divisor, INPUT_DIVISOR, DC_FLOAT32, net->device));
    DCI_TRY(ct_div(&y, y, divisor));
    DCI_TRY(conv_layer(&y, &net->stem, y, 2, 0, 1));
    DCI_TRY(ct_max_pool2d(&y, y, 3, 2, 0));
    for (int i = 0; i < BLOCK_COUNT; i++)
        DCI_TRY(residual(&y, &net->blocks[i], y));
    DCI_TRY(ct_flatten(&y, y, 2, 3));
    DCI_TRY(ct_mean_dim(&y, y, 2, 0));
    return ct_matmul(out, y, net->fc);
}

int nn_face_descriptor_forward(const nn_face_descriptor *net, const ct_tensor *x,
                               ct_tensor **out)
{
    if (!out)
        return dci_err(DC_EINVAL, "face descriptor: output is NULL");
    *out = NULL;
    if (!net || !x)
        return dci_err(DC_EINVAL, "face descriptor: %s is NULL", !net ? "network" : "input");
    if (ct_ndim(x) != 4 || ct_size(x, 1) != 3 || ct_size(x, 2) != NN_FACE_DESCRIPTOR_INPUT ||
        ct_size(x, 3) != NN_FACE_DESCRIPTOR_INPUT || ct_dtype(x) != DC_FLOAT32)
        return dci_err(DC_EINVAL, "face descriptor: input must be float32 (N, 3, %d, %d)",
                       NN_FACE_DESCRIPTOR_INPUT, NN_FACE_DESCRIPTOR_INPUT);
    if (ct_device(x) != net->device)
        return dci_err(DC_EINVAL, "face descriptor: input is on device %d, the network on %d",
                       ct_device(x), net->device);
    size_t mark = ct_pool_begin();
    ct_tensor *result = NULL;
    int status = forward(&result, net, x);
    ct_pool_end(mark, status == DC_OK ? &result : NULL, status == DC_OK ? 1 : 0);
    if (status == DC_OK)
        *out = result;
    return status;
}
