/* TEMPORARY, to be deleted on merge: a minimal io_npy_read_buffer so that this branch links
 * before src/io/npy.c (owned by another branch) arrives. Only what checkpoint.c's .npy
 * branch needs: versions 1-3, little-endian dtypes of dc_dtype, C order. */
#include <stdlib.h>
#include <string.h>

#include "../api/error.h"
#include "bytes.h"
#include "limits.h"
#include "npy.h"

static const struct {
    const char *descr;
    dc_dtype dtype;
} npy_dtypes[] = {
    {"'<f4'", DC_FLOAT32}, {"'<f2'", DC_FLOAT16}, {"'<f8'", DC_FLOAT64}, {"'<i8'", DC_INT64},
    {"'<i4'", DC_INT32},   {"'|u1'", DC_UINT8},   {"'|b1'", DC_BOOL},
};

static const char *field(const char *header, const char *key)
{
    const char *p = strstr(header, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ')
        p++;
    return p;
}

int io_npy_read_buffer(const uint8_t *data, size_t size, const char *label, dc_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0 || data[6] < 1 || data[6] > 3)
        return dci_err(DC_EFORMAT, "%s: not an .npy file", label);
    size_t prefix = data[6] == 1 ? 10 : 12;
    if (size < prefix)
        return dci_err(DC_EFORMAT, "%s: truncated .npy header", label);
    size_t length = data[6] == 1 ? io_le16(data + 8) : io_le32(data + 8);
    if (length > size - prefix || length > IO_MAX_HEADER_BYTES)
        return dci_err(DC_EFORMAT, "%s: truncated .npy header", label);
    char *header = malloc(length + 1);
    if (!header)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    memcpy(header, data + prefix, length);
    header[length] = '\0';
    const char *descr = field(header, "'descr':"), *order = field(header, "'fortran_order':"),
               *shape = field(header, "'shape':");
    int found = 0;
    for (size_t i = 0; descr && i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++) {
        if (strncmp(descr, npy_dtypes[i].descr, strlen(npy_dtypes[i].descr)) == 0) {
            out->dtype = npy_dtypes[i].dtype;
            found = 1;
        }
    }
    int status = DC_OK;
    if (!found || !order || strncmp(order, "False", 5) != 0 || !shape || *shape != '(')
        status = dci_err(DC_EFORMAT, "%s: unsupported .npy header", label);
    uint64_t bytes = dc_dtype_size(out->dtype);
    for (const char *p = shape ? shape + 1 : ""; status == DC_OK && *p != ')';) {
        char *end;
        long long dim = strtoll(p, &end, 10);
        if (end == p || dim < 0 || out->ndim == DC_MAX_DIMS ||
            __builtin_mul_overflow(bytes, (uint64_t)dim, &bytes) || bytes > IO_MAX_TENSOR_BYTES) {
            status = dci_err(DC_EFORMAT, "%s: bad .npy shape", label);
            break;
        }
        out->shape[out->ndim++] = dim;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    free(header);
    if (status == DC_OK && bytes != size - prefix - length)
        status = dci_err(DC_EFORMAT, "%s: .npy data size does not match its shape", label);
    if (status == DC_OK && bytes && !(out->data = malloc((size_t)bytes)))
        status = dci_err(DC_ENOMEM, "%s: out of memory", label);
    if (status != DC_OK) {
        memset(out, 0, sizeof *out);
        return status;
    }
    if (bytes)
        memcpy(out->data, data + prefix + length, (size_t)bytes);
    return DC_OK;
}
