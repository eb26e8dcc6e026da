/* The dc_dtype, dc_tensor and dc_image helpers that every layer uses. */
#include <stdlib.h>
#include <string.h>

#include "diffclip.h"

DC_API const char *dc_dtype_name(dc_dtype dtype)
{
    switch (dtype) {
    case DC_FLOAT32: return "float32";
    case DC_FLOAT16: return "float16";
    case DC_BFLOAT16: return "bfloat16";
    case DC_FLOAT64: return "float64";
    case DC_INT64: return "int64";
    case DC_INT32: return "int32";
    case DC_UINT8: return "uint8";
    case DC_BOOL: return "bool";
    }
    return NULL;
}

DC_API size_t dc_dtype_size(dc_dtype dtype)
{
    switch (dtype) {
    case DC_FLOAT64:
    case DC_INT64: return 8;
    case DC_FLOAT32:
    case DC_INT32: return 4;
    case DC_FLOAT16:
    case DC_BFLOAT16: return 2;
    case DC_UINT8:
    case DC_BOOL: return 1;
    }
    return 0;
}

DC_API int64_t dc_tensor_numel(const dc_tensor *t)
{
    if (!t || t->ndim < 0 || t->ndim > DC_MAX_DIMS)
        return 0;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

DC_API void dc_tensor_free(dc_tensor *t)
{
    if (!t)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

DC_API void dc_image_free(dc_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}
