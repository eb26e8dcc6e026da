#include "strip.h"

#include <stdlib.h>
#include <string.h>

dc_status client_compose_strip(const dc_tensor *const *tensors, int count, dc_image *out)
{
    int64_t images = 0, height = 0, width = 0;
    for (int i = 0; i < count; i++) {
        const dc_tensor *t = tensors[i];
        if (t->ndim != 4 || (i > 0 && (t->shape[2] != height || t->shape[3] != width)))
            return DC_EINVAL;
        height = t->shape[2];
        width = t->shape[3];
        images += t->shape[0];
    }
    dc_image strip = {.width = (int)(images * width), .height = (int)height, .channels = 3};
    strip.data = calloc((size_t)strip.width * (size_t)strip.height, 3);
    if (!strip.data)
        return DC_ENOMEM;
    dc_status s = DC_OK;
    int64_t column = 0;
    for (int i = 0; i < count && s == DC_OK; i++) {
        for (int64_t n = 0; n < tensors[i]->shape[0] && s == DC_OK; n++, column++) {
            dc_image one;
            s = dc_tensor_to_image(tensors[i], n, &one);
            if (s != DC_OK)
                break;
            for (int y = 0; y < one.height; y++)
                memcpy(strip.data + ((size_t)y * (size_t)strip.width + (size_t)(column * width)) * 3,
                       one.data + (size_t)y * (size_t)one.width * 3, (size_t)one.width * 3);
            dc_image_free(&one);
        }
    }
    if (s != DC_OK) {
        dc_image_free(&strip);
        return s;
    }
    *out = strip;
    return DC_OK;
}
