#include "inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int cli_has_extension(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && strcasecmp(path + n - e, ext) == 0;
}

dc_status cli_read_image_or_array(const char *path, int size, dc_tensor *out)
{
    if (cli_has_extension(path, ".npy"))
        return dc_npy_read(path, out);
    dc_image img;
    dc_status s = dc_image_read(path, &img);
    if (s != DC_OK)
        return s;
    s = dc_image_to_tensor(&img, size, out);
    dc_image_free(&img);
    return s;
}

int cli_check_photo_size(const char *path, int size)
{
    if (size > 0 || cli_has_extension(path, ".npy"))
        return 0;
    fprintf(stderr, "diffclip: %s: a photo is resized to the model's image size, which its "
            "weights do not tell: give --image-size N or --config FILE (the model's YAML "
            "config); an .npy array is taken at its own size\n", path);
    return CLI_EXIT_USAGE;
}

static void print_shape(FILE *out, const dc_tensor *t)
{
    fputc('(', out);
    for (int d = 0; d < t->ndim; d++)
        fprintf(out, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    fputc(')', out);
}

int cli_read_images(const char *path, int size, const dc_tensor *like, cli_align *al,
                    dc_tensor *out)
{
    memset(out, 0, sizeof *out);
    int status = cli_check_photo_size(path, size);
    if (status)
        return status;
    if (cli_read_photo(path, size, al, out) != DC_OK)
        return cli_file_error(path);
    int ok = out->dtype == DC_FLOAT32 && out->ndim == 4 && out->shape[0] > 0 &&
             out->shape[1] == 3 && out->shape[2] > 0 && out->shape[3] > 0;
    for (int d = 0; ok && like && d < 4; d++)
        ok = out->shape[d] == like->shape[d];
    if (ok)
        return 0;
    fprintf(stderr, "diffclip: %s: expected float32 images ", path);
    if (like)
        print_shape(stderr, like);
    else
        fputs("(N, 3, H, W)", stderr);
    fprintf(stderr, ", got %s ", dc_dtype_name(out->dtype) ? dc_dtype_name(out->dtype) : "?");
    print_shape(stderr, out);
    fputc('\n', stderr);
    dc_tensor_free(out);
    return CLI_EXIT_FAILURE;
}

dc_status cli_write_strip(const char *path, const dc_tensor *const *tensors, int count)
{
    int64_t images = 0, height = 0, width = 0;
    for (int i = 0; i < count; i++) {
        const dc_tensor *t = tensors[i];
        if (t->ndim != 4 || (i > 0 && (t->shape[2] != height || t->shape[3] != width))) {
            fprintf(stderr, "diffclip: %s: images of different shapes cannot share a strip\n",
                    path);
            return DC_EINVAL;
        }
        height = t->shape[2];
        width = t->shape[3];
        images += t->shape[0];
    }
    dc_image strip = {.width = (int)(images * width), .height = (int)height, .channels = 3};
    strip.data = calloc((size_t)strip.width * (size_t)strip.height * 3, 1);
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
    if (s == DC_OK)
        s = dc_image_write(path, &strip);
    dc_image_free(&strip);
    return s;
}

dc_status cli_write_image_or_array(const char *path, const dc_tensor *t)
{
    if (cli_has_extension(path, ".npy"))
        return dc_npy_write(path, t);
    return cli_write_strip(path, &t, 1);
}
