/* Public face descriptor handle over io/tfjs, io/image and nn/face_descriptor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ctorch/ctorch.h"
#include "../io/image.h"
#include "../io/tfjs.h"
#include "../nn/face_descriptor.h"
#include "../core/error.h"

struct dc_face_descriptor {
    nn_face_descriptor *net;
};

DC_API dc_status dc_face_descriptor_load(dc_face_descriptor **out, const char *manifest_path,
                                         const char *weights_path, const char *device)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_face_descriptor_load: out is NULL");
    *out = NULL;
    if (!manifest_path)
        return dci_err(DC_EINVAL, "dc_face_descriptor_load: manifest path is NULL");
    int device_index;
    DCI_TRY(ct_parse_device(device ? device : "auto", &device_index));
    dc_face_descriptor *fd = calloc(1, sizeof *fd);
    if (!fd)
        return dci_err(DC_ENOMEM, "dc_face_descriptor_load: out of memory");
    io_tfjs_weights weights;
    int status = io_tfjs_read_files(manifest_path, weights_path, &weights);
    if (status == DC_OK) {
        status = nn_face_descriptor_load(&fd->net, &weights,
                                         weights_path ? weights_path : manifest_path,
                                         device_index);
        io_tfjs_weights_free(&weights);
    }
    if (status != DC_OK) {
        free(fd);
        return status;
    }
    *out = fd;
    return DC_OK;
}

DC_API void dc_face_descriptor_free(dc_face_descriptor *fd)
{
    if (!fd)
        return;
    nn_face_descriptor_free(fd->net);
    free(fd);
}

DC_API dc_status dc_face_crop(const dc_image *img, const dc_face_box *box, int size,
                              dc_image *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_face_crop: out is NULL");
    memset(out, 0, sizeof *out);
    if (!img)
        return dci_err(DC_EINVAL, "dc_face_crop: image is NULL");
    if (box)
        return io_image_crop_resize(img, box->x, box->y, box->size, size, out);
    int x, y, side;   /* io_image_crop_resize reports a bad image before using these */
    io_image_centre_square(img->width, img->height, &x, &y, &side);
    return io_image_crop_resize(img, x, y, side, size, out);
}

/* (1, 3, 150, 150) float32 in 0..255 from the interleaved 8-bit face. */
static int face_to_input(const dc_image *face, int device, ct_tensor **out)
{
    size_t plane = (size_t)face->width * face->height;
    float *data = malloc(plane * 3 * sizeof *data);
    if (!data)
        return dci_err(DC_ENOMEM, "dc_face_descriptor_compute: out of memory");
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            data[c * plane + i] = face->data[i * 3 + c];
    const int64_t shape[4] = {1, 3, face->height, face->width};
    int status = ct_from_host(out, data, DC_FLOAT32, 4, shape, device);
    free(data);
    return status;
}

DC_API dc_status dc_face_descriptor_compute(dc_face_descriptor *fd, const dc_image *img,
                                            const dc_face_box *box,
                                            float descriptor[DC_FACE_DESCRIPTOR_SIZE])
{
    if (!fd || !img || !descriptor)
        return dci_err(DC_EINVAL, "dc_face_descriptor_compute: %s is NULL",
                       !fd ? "network" : !img ? "image" : "descriptor");
    dc_image face;
    DCI_TRY(dc_face_crop(img, box, NN_FACE_DESCRIPTOR_INPUT, &face));
    ct_scope *scope = NULL;
    int status = ct_inference_mode_begin(&scope);
    size_t mark = ct_pool_begin();
    ct_tensor *x = NULL, *y = NULL;
    if (status == DC_OK)
        status = face_to_input(&face, nn_face_descriptor_device(fd->net), &x);
    if (status == DC_OK)
        status = nn_face_descriptor_forward(fd->net, x, &y);
    if (status == DC_OK)
        status = ct_to_host(y, descriptor, DC_FACE_DESCRIPTOR_SIZE * sizeof(float));
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(scope);
    dc_image_free(&face);
    return status;
}

DC_API dc_status dc_face_distance(const float a[DC_FACE_DESCRIPTOR_SIZE],
                                  const float b[DC_FACE_DESCRIPTOR_SIZE], double *distance)
{
    if (!a || !b || !distance)
        return dci_err(DC_EINVAL, "dc_face_distance: an argument is NULL");
    double sum = 0;
    for (int i = 0; i < DC_FACE_DESCRIPTOR_SIZE; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    *distance = sqrt(sum);
    return DC_OK;
}
