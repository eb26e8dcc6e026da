/* Public .npy and image functions: argument checks over src/io. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../io/image.h"
#include "../io/npy.h"
#include "../core/error.h"

/* IEEE binary16 -> binary32, exact (subnormals, infinities and NaN payloads kept). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | mantissa << 13;
    } else if (exponent != 0) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else {
        float magnitude = ldexpf((float)mantissa, -24);   /* zero or subnormal */
        memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int float16_to_float32(dc_tensor *t, const char *path)
{
    size_t n = (size_t)dc_tensor_numel(t);
    float *data = malloc(n ? n * sizeof(float) : 1);
    if (!data)
        return dci_err(DC_ENOMEM, "%s: out of memory converting float16 to float32", path);
    const uint16_t *half = t->data;
    for (size_t i = 0; i < n; i++)
        data[i] = half_to_float(half[i]);
    free(t->data);
    t->data = data;
    t->dtype = DC_FLOAT32;
    return DC_OK;
}

DC_API dc_status dc_npy_read(const char *path, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_npy_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return dci_err(DC_EINVAL, "dc_npy_read: path is NULL");
    DCI_TRY(io_npy_read_file(path, out));
    if (out->dtype == DC_FLOAT16) {
        int status = float16_to_float32(out, path);
        if (status != DC_OK) {
            dc_tensor_free(out);
            return status;
        }
    }
    return DC_OK;
}

DC_API dc_status dc_npy_write(const char *path, const dc_tensor *t)
{
    if (!path || !t)
        return dci_err(DC_EINVAL, "dc_npy_write: %s is NULL", !path ? "path" : "tensor");
    return io_npy_write_file(path, t);
}

DC_API dc_status dc_image_read(const char *path, dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_image_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return dci_err(DC_EINVAL, "dc_image_read: path is NULL");
    return io_image_read_file(path, out);
}

DC_API dc_status dc_image_write(const char *path, const dc_image *img)
{
    if (!path || !img)
        return dci_err(DC_EINVAL, "dc_image_write: %s is NULL", !path ? "path" : "image");
    return io_image_write_file(path, img);
}

DC_API dc_status dc_image_to_tensor(const dc_image *img, int size, dc_tensor *out)
{
    return io_image_to_tensor(img, size, out);
}

DC_API dc_status dc_tensor_to_image(const dc_tensor *t, int64_t index, dc_image *out)
{
    return io_tensor_to_image(t, index, out);
}
