/* The public dc_clip and dc_idnet handles over src/nn/clip, src/nn/idnet and
 * src/finetune/losses. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../ctorch/ctorch.h"
#include "../finetune/losses.h"
#include "../io/checkpoint.h"
#include "../io/image.h"
#include "../nn/clip.h"
#include "../nn/idnet.h"
#include "convert.h"
#include "handles.h"
#include "tokenizer.h"

struct dc_clip {
    nn_clip *net;
    dc_clip_loss_form loss_form;
    ft_text_direction direction;
};

struct dc_idnet {
    nn_idnet *net;
};

const nn_clip *api_clip_net(const dc_clip *clip) { return clip ? clip->net : NULL; }
const nn_idnet *api_idnet_net(const dc_idnet *net) { return net ? net->net : NULL; }

/* ---- loading ---- */

DC_API void dc_clip_options_init(dc_clip_options *options, unsigned version)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->version = version;
    options->device = "cpu";
    options->loss_form = DC_CLIP_LOSS_LOG;
}

DC_API dc_status dc_clip_load(dc_clip **out, const char *path, const dc_clip_options *options)
{
    if (!out || !path)
        return dci_err(DC_EINVAL, "dc_clip_load: NULL argument");
    *out = NULL;
    dc_clip_options o;
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    if (options) {
        DCI_TRY(api_check_version(options->version, DC_CLIP_OPTIONS_VERSION,
                                  "dc_clip_options"));
        o = *options;
    }
    if (o.loss_form != DC_CLIP_LOSS_LOG && o.loss_form != DC_CLIP_LOSS_DIRECTION)
        return dci_err(DC_EINVAL, "dc_clip_load: unknown loss form %d", (int)o.loss_form);
    int device;
    DCI_TRY(api_parse_device(o.device, "cpu", &device));
    if (o.half && device < 0)
        return dci_err(DC_EINVAL, "dc_clip_load: float16 CLIP needs a CUDA device");
    dc_clip *clip = calloc(1, sizeof *clip);
    if (!clip)
        return dci_err(DC_ENOMEM, "out of memory for a CLIP handle");
    clip->loss_form = (dc_clip_loss_form)o.loss_form;
    io_state_dict sd = {0};
    int st = io_checkpoint_read_file(path, &sd);
    if (st == DC_OK)
        st = nn_clip_load(&clip->net, &sd, path, device, o.half ? DC_FLOAT16 : DC_FLOAT32);
    io_state_dict_free(&sd);
    if (st != DC_OK) {
        dc_clip_free(clip);
        return (dc_status)st;
    }
    *out = clip;
    return DC_OK;
}

DC_API void dc_clip_free(dc_clip *clip)
{
    if (!clip)
        return;
    ft_text_direction_clear(&clip->direction);
    nn_clip_free(clip->net);
    free(clip);
}

DC_API int dc_clip_input_size(const dc_clip *clip)
{
    return clip ? (int)nn_clip_get_config(clip->net)->resolution : 0;
}

DC_API int dc_clip_embed_dim(const dc_clip *clip)
{
    return clip ? (int)nn_clip_get_config(clip->net)->embed_dim : 0;
}

/* ---- CLIP forward passes ---- */

typedef struct clip_call {
    dc_clip *clip;
    const dc_tensor *in;
    dc_tensor *out;
    int (*fn)(const nn_clip *, const ct_tensor *, ct_tensor **);
} clip_call;

static int clip_call_run(void *args)
{
    clip_call *c = args;
    ct_tensor *x, *y;
    DCI_TRY(api_tensor_in(&x, c->in, "CLIP input", CT_CPU));
    DCI_TRY(c->fn(c->clip->net, x, &y));
    return api_tensor_out(y, c->out);
}

static dc_status clip_forward(dc_clip *clip, const dc_tensor *in, dc_tensor *out,
                              int (*fn)(const nn_clip *, const ct_tensor *, ct_tensor **))
{
    if (!clip || !in || !out)
        return dci_err(DC_EINVAL, "CLIP: NULL argument");
    clip_call call = {clip, in, out, fn};
    return (dc_status)api_run_pooled(clip_call_run, &call, 0);
}

DC_API dc_status dc_clip_preprocess(dc_clip *clip, const dc_tensor *x, dc_tensor *out)
{
    return clip_forward(clip, x, out, nn_clip_preprocess);
}

DC_API dc_status dc_clip_preprocess_image(const dc_clip *clip, const dc_image *img,
                                          dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_clip_preprocess_image: output is NULL");
    memset(out, 0, sizeof *out);
    if (!clip || !img)
        return dci_err(DC_EINVAL, "dc_clip_preprocess_image: NULL argument");
    int size = dc_clip_input_size(clip);
    dc_image crop;
    DCI_TRY(io_image_resize_crop(img, size, IO_FILTER_BICUBIC, &crop));
    size_t plane = (size_t)size * (size_t)size;
    float *data = malloc(plane * 3 * sizeof *data);
    if (!data) {
        dc_image_free(&crop);
        return dci_err(DC_ENOMEM, "dc_clip_preprocess_image: out of memory");
    }
    /* ToTensor then Normalize, in float32 as torchvision computes them */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = ((float)v / 255.0f - nn_clip_mean[c]) / nn_clip_std[c];
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            data[(size_t)c * plane + i] = lut[c][crop.data[i * 3 + c]];
    dc_image_free(&crop);
    *out = (dc_tensor){.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, size, size},
                       .data = data};
    return DC_OK;
}

DC_API dc_status dc_clip_encode_image(dc_clip *clip, const dc_tensor *x, dc_tensor *features)
{
    return clip_forward(clip, x, features, nn_clip_encode_image);
}

DC_API dc_status dc_clip_encode_text(dc_clip *clip, const dc_tensor *tokens,
                                     dc_tensor *features)
{
    return clip_forward(clip, tokens, features, nn_clip_encode_text);
}

/* ---- losses ---- */

/* Backpropagates `loss` into the leaf x and copies d loss / d x out. */
static int backward_into(const ct_tensor *loss, const ct_tensor *x, dc_tensor *grad)
{
    ct_tensor *g;
    DCI_TRY(ct_backward(loss));
    DCI_TRY(ct_grad(&g, x));
    if (!g)
        return dci_err(DC_EINTERNAL, "the loss does not depend on the image");
    return api_tensor_out(g, grad);
}

typedef struct clip_loss_call {
    dc_clip *clip;
    nn_tokenizer *tokenizer;
    const char *source, *target;
    const dc_tensor *x_src, *x_trg;
    double *losses;
    dc_tensor *grad;
} clip_loss_call;

static int clip_loss_run(void *args)
{
    clip_loss_call *c = args;
    ct_tensor *direction, *x_src, *x_trg, *l_dir, *l_log, *objective;
    DCI_TRY(ft_text_direction_get(&c->clip->direction, c->clip->net, c->tokenizer, c->source,
                                  c->target, &direction));
    DCI_TRY(api_tensor_in(&x_src, c->x_src, "CLIP loss source images", CT_CPU));
    DCI_TRY(api_tensor_in(&x_trg, c->x_trg, "CLIP loss edited images", CT_CPU));
    if (c->grad)
        DCI_TRY(ct_set_requires_grad(x_trg, 1));
    DCI_TRY(ft_clip_direction_loss(c->clip->net, x_src, x_trg, direction, &l_dir));
    DCI_TRY(ft_clip_loss_form_apply(FT_CLIP_LOSS_LOG, l_dir, &l_log));
    DCI_TRY(ct_item(l_dir, &c->losses[0]));
    DCI_TRY(ct_item(l_log, &c->losses[1]));
    if (!c->grad)
        return DC_OK;
    objective = c->clip->loss_form == DC_CLIP_LOSS_LOG ? l_log : l_dir;
    return backward_into(objective, x_trg, c->grad);
}

DC_API dc_status dc_clip_loss(dc_clip *clip, dc_tokenizer *tokenizer, const char *source,
                              const char *target, const dc_tensor *x_src,
                              const dc_tensor *x_trg, double losses[2], dc_tensor *grad)
{
    if (!clip || !tokenizer || !source || !target || !x_src || !x_trg || !losses)
        return dci_err(DC_EINVAL, "dc_clip_loss: NULL argument");
    clip_loss_call call = {clip, dci_tokenizer_impl(tokenizer), source, target, x_src, x_trg,
                           losses, grad};
    return (dc_status)api_run_pooled(clip_loss_run, &call, 1);
}

/* ---- identity network ---- */

DC_API void dc_idnet_options_init(dc_idnet_options *options, unsigned version)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->version = version;
    options->device = "cpu";
}

DC_API dc_status dc_idnet_load(dc_idnet **out, const char *path,
                               const dc_idnet_options *options)
{
    if (!out || !path)
        return dci_err(DC_EINVAL, "dc_idnet_load: NULL argument");
    *out = NULL;
    if (options)
        DCI_TRY(api_check_version(options->version, DC_IDNET_OPTIONS_VERSION,
                                  "dc_idnet_options"));
    int device;
    DCI_TRY(api_parse_device(options ? options->device : NULL, "cpu", &device));
    dc_idnet *net = calloc(1, sizeof *net);
    if (!net)
        return dci_err(DC_ENOMEM, "out of memory for an identity network handle");
    io_state_dict sd = {0};
    int st = io_checkpoint_read_file(path, &sd);
    if (st == DC_OK)
        st = nn_idnet_load(&net->net, &sd, path, device);
    io_state_dict_free(&sd);
    if (st != DC_OK) {
        dc_idnet_free(net);
        return (dc_status)st;
    }
    *out = net;
    return DC_OK;
}

DC_API void dc_idnet_free(dc_idnet *net)
{
    if (!net)
        return;
    nn_idnet_free(net->net);
    free(net);
}

/* The network code checks the layout of its inputs, not their dtype. */
static int check_float_images(const dc_tensor *x, const char *what)
{
    DCI_TRY(api_check_tensor(x, what));
    if (x->dtype != DC_FLOAT32)
        return dci_err(DC_EINVAL, "%s must be float32 images, not %s", what,
                       dc_dtype_name(x->dtype) ? dc_dtype_name(x->dtype) : "an unknown dtype");
    return DC_OK;
}

typedef struct idnet_call {
    dc_idnet *net;
    const dc_tensor *x0, *x_hat;
    double *loss;
    dc_tensor *features, *per_sample, *grad;
} idnet_call;

static int idnet_features_run(void *args)
{
    idnet_call *c = args;
    ct_tensor *x, *f;
    DCI_TRY(api_tensor_in(&x, c->x0, "identity network input", CT_CPU));
    DCI_TRY(ft_id_features(c->net->net, x, &f));
    return api_tensor_out(f, c->features);
}

DC_API dc_status dc_idnet_features(dc_idnet *net, const dc_tensor *x, dc_tensor *features)
{
    if (!net || !x || !features)
        return dci_err(DC_EINVAL, "dc_idnet_features: NULL argument");
    DCI_TRY(check_float_images(x, "identity network input"));
    idnet_call call = {.net = net, .x0 = x, .features = features};
    return (dc_status)api_run_pooled(idnet_features_run, &call, 0);
}

static int idnet_loss_run(void *args)
{
    idnet_call *c = args;
    ct_tensor *x0, *x_hat, *per_sample, *mean;
    DCI_TRY(api_tensor_in(&x0, c->x0, "identity loss source images", CT_CPU));
    DCI_TRY(api_tensor_in(&x_hat, c->x_hat, "identity loss edited images", CT_CPU));
    if (c->grad)
        DCI_TRY(ct_set_requires_grad(x_hat, 1));
    DCI_TRY(ft_id_loss_per_sample(c->net->net, x0, x_hat, &per_sample));
    DCI_TRY(ct_mean(&mean, per_sample));
    DCI_TRY(ct_item(mean, c->loss));
    if (c->per_sample)
        DCI_TRY(api_tensor_out(per_sample, c->per_sample));
    if (!c->grad)
        return DC_OK;
    int st = backward_into(mean, x_hat, c->grad);
    if (st != DC_OK && c->per_sample)
        dc_tensor_free(c->per_sample);
    return st;
}

DC_API dc_status dc_idnet_id_loss(dc_idnet *net, const dc_tensor *x0, const dc_tensor *x_hat,
                                  double *loss, dc_tensor *per_sample, dc_tensor *grad)
{
    if (!net || !x0 || !x_hat || !loss)
        return dci_err(DC_EINVAL, "dc_idnet_id_loss: NULL argument");
    DCI_TRY(check_float_images(x0, "identity loss source images"));
    DCI_TRY(check_float_images(x_hat, "identity loss edited images"));
    if (x0->ndim != x_hat->ndim ||
        memcmp(x0->shape, x_hat->shape, (size_t)x0->ndim * sizeof x0->shape[0]) != 0)
        return dci_err(DC_EINVAL, "identity loss: the source and edited images differ in shape");
    idnet_call call = {net, x0, x_hat, loss, NULL, per_sample, grad};
    return (dc_status)api_run_pooled(idnet_loss_run, &call, 1);
}
