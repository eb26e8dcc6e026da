#include "inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../client/strip.h"
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
    dc_image strip;
    dc_status s = client_compose_strip(tensors, count, &strip);
    if (s == DC_EINVAL)
        fprintf(stderr, "diffclip: %s: images of different shapes cannot share a strip\n", path);
    if (s != DC_OK)
        return s;
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
