/* dc_model: a diffusion UNet loaded from a checkpoint. Handles of the same unchanged file
 * loaded with the same options share one set of weights. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert.h"
#include "../core/error.h"
#include "handles.h"
#include "../core/options.h"

DC_API dc_status dc_model_options_init(dc_model_options *options, unsigned version)
{
    return (dc_status)api_options_init(options, version, &api_model_options);
}

/* ---- weights shared between handles ---- */

/* What makes two loads the same: the file (device, inode, size, modification time) and the
 * options that shape the weights. */
typedef struct model_key {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int device;
    dc_dtype dtype;
    int image_size, head_channels;
} model_key;

struct api_shared_net {
    api_shared_net *next;
    model_key key;
    nn_unet *net;
    char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];
    size_t refs;
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static api_shared_net *shared_nets;

static int file_key(const char *path, model_key *key)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    key->dev = st.st_dev;
    key->ino = st.st_ino;
    key->size = st.st_size;
    key->mtime = st.st_mtim;
    return 1;
}

static int same_key(const model_key *a, const model_key *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->device == b->device && a->dtype == b->dtype && a->image_size == b->image_size &&
           a->head_channels == b->head_channels;
}

/* Gives m the weights of an earlier load with this key; whether there was one. */
static int share_existing(dc_model *m, const model_key *key)
{
    pthread_mutex_lock(&shared_lock);
    api_shared_net *s = shared_nets;
    while (s && !same_key(&s->key, key))
        s = s->next;
    if (s) {
        s->refs++;
        m->shared = s;
        m->net = s->net;
        memcpy(m->fingerprint, s->fingerprint, sizeof m->fingerprint);
    }
    pthread_mutex_unlock(&shared_lock);
    return s != NULL;
}

/* Makes m's freshly loaded weights available to later loads with this key. Without memory
 * for the entry, m keeps them to itself. */
static void offer_shared(dc_model *m, const model_key *key)
{
    api_shared_net *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->key = *key;
    s->net = m->net;
    memcpy(s->fingerprint, m->fingerprint, sizeof s->fingerprint);
    s->refs = 1;
    pthread_mutex_lock(&shared_lock);
    s->next = shared_nets;
    shared_nets = s;
    pthread_mutex_unlock(&shared_lock);
    m->shared = s;
}

/* Drops m's reference; the last one frees the weights. */
static void release_shared(api_shared_net *s)
{
    pthread_mutex_lock(&shared_lock);
    int last = --s->refs == 0;
    if (last) {
        api_shared_net **p = &shared_nets;
        while (*p != s)
            p = &(*p)->next;
        *p = s->next;
    }
    pthread_mutex_unlock(&shared_lock);
    if (last) {
        nn_unet_free(s->net);
        free(s);
    }
}

DC_API dc_status dc_model_load(dc_model **out, const char *path, const dc_model_options *options)
{
    if (!out || !path)
        return dci_err(DC_EINVAL, "dc_model_load: %s is NULL", out ? "path" : "out");
    *out = NULL;
    dc_model_options o;
    DCI_TRY(api_options_read(&o, options, &api_model_options));
    if (o.dtype != DC_FLOAT32 && o.dtype != DC_FLOAT16 && o.dtype != DC_BFLOAT16)
        return dci_err(DC_EINVAL, "%s: a model computes in float32, float16 or bfloat16", path);
    int device;
    DCI_TRY(api_parse_device(o.device, "auto", &device));
    if (o.dtype == DC_FLOAT16 && device == CT_CPU)
        return dci_err(DC_EINVAL, "%s: float16 needs a CUDA device (LibTorch has no float16 "
                       "convolution on the CPU); use bfloat16 there", path);

    dc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    model_key before = {.device = device, .dtype = o.dtype, .image_size = o.image_size,
                        .head_channels = o.head_channels};
    int known = file_key(path, &before);
    if (known && share_existing(m, &before)) {
        *out = m;
        return DC_OK;
    }
    io_state_dict sd = {0};
    int status = io_checkpoint_read_file(path, &sd);
    if (status == DC_OK)
        status = latent_cache_fingerprint_state_dict(&sd, m->fingerprint);
    if (status == DC_OK) {
        nn_unet_options unet_options = {.head_channels = o.head_channels,
                                        .image_size = o.image_size};
        status = nn_unet_load(&m->net, &sd, path, device, o.dtype, &unet_options);
    }
    io_state_dict_free(&sd);
    if (status != DC_OK) {
        dc_model_free(m);
        return (dc_status)status;
    }
    /* Shared only when the file did not change while it was read. */
    model_key after = before;
    if (known && file_key(path, &after) && same_key(&before, &after))
        offer_shared(m, &before);
    *out = m;
    return DC_OK;
}

DC_API void dc_model_free(dc_model *model)
{
    if (!model)
        return;
    if (model->shared)
        release_shared(model->shared);
    else
        nn_unet_free(model->net);
    free(model->path);
    free(model);
}

DC_API dc_status dc_model_get_info(const dc_model *model, dc_model_info *info)
{
    if (!model || !info)
        return dci_err(DC_EINVAL, "dc_model_get_info: NULL argument");
    const nn_unet_info *n = nn_unet_get_info(model->net);
    memset(info, 0, sizeof *info);
    info->family = n->kind == NN_UNET_ADM ? DC_MODEL_ADM : DC_MODEL_DDPM;
    info->image_size = n->image_size;
    info->in_channels = n->in_channels;
    info->out_channels = n->out_channels;
    info->base_channels = n->base_channels;
    info->levels = n->levels;
    for (int l = 0; l < n->levels && l < DC_MAX_LEVELS; l++) {
        info->channel_mult[l] = n->channel_mult[l];
        info->attention_levels[l] = n->attention[l];
    }
    info->num_res_blocks = n->num_res_blocks;
    info->head_channels = n->kind == NN_UNET_ADM && n->head_channels > 0 ? n->head_channels : 0;
    info->num_heads = info->head_channels ? 0 : n->num_heads;
    info->learn_sigma = n->learn_sigma;
    info->parameters = n->param_count;
    return DC_OK;
}

DC_API dc_status dc_model_describe(const dc_model *model, char *buf, size_t size)
{
    if (!model || !buf || size == 0)
        return dci_err(DC_EINVAL, "dc_model_describe: NULL argument");
    const nn_unet_info *n = nn_unet_get_info(model->net);
    size_t used = 0;
    buf[0] = '\0';
#define APPEND(...)                                                                        \
    do {                                                                                   \
        int w = snprintf(buf + used, size - used, __VA_ARGS__);                            \
        used = w < 0 ? used : (used + (size_t)w < size ? used + (size_t)w : size - 1);     \
    } while (0)
    APPEND("family %s\n", n->kind == NN_UNET_ADM ? "adm (guided-diffusion UNetModel)"
                                                 : "ddpm (DDPM simple UNet)");
    APPEND("image_size %d\nin_channels %d\nout_channels %d%s\nbase_channels %d\n",
           n->image_size, n->in_channels, n->out_channels,
           n->learn_sigma ? " (learned sigma: eps, then the variance output)" : "",
           n->base_channels);
    APPEND("channel_mult");
    for (int l = 0; l < n->levels; l++)
        APPEND("%s%g", l ? "," : " ", n->channel_mult[l]);
    APPEND("\nnum_res_blocks %d\nattention_resolutions", n->num_res_blocks);
    for (int i = 0; i < n->attention_count; i++)
        APPEND("%s%d", i ? "," : " ", n->attention_resolutions[i]);
    if (n->kind == NN_UNET_ADM) {
        if (n->head_channels > 0)
            APPEND("\nhead_channels %d", n->head_channels);
        else
            APPEND("\nnum_heads %d", n->num_heads);
        APPEND("\nscale_shift_norm %d\nresblock_updown %d\nlabel_emb %s", n->scale_shift,
               n->resblock_updown, n->has_label_emb ? "loaded, unused" : "none");
    }
    APPEND("\nparameters %lld\ntensors %zu\n", (long long)n->param_count, n->tensor_count);
#undef APPEND
    return DC_OK;
}

int api_check_images(const dc_model *model, const dc_tensor *x, const char *what)
{
    const nn_unet_info *n = nn_unet_get_info(model->net);
    int64_t factor = (int64_t)1 << (n->levels - 1);
    if (!x)
        return dci_err(DC_EINVAL, "%s is NULL", what);
    if (x->dtype != DC_FLOAT32 || x->ndim != 4 || x->shape[0] < 1 ||
        x->shape[1] != n->in_channels || x->shape[2] < factor || x->shape[3] < factor ||
        x->shape[2] % factor || x->shape[3] % factor)
        return dci_err(DC_EINVAL, "%s must be float32 (N, %d, H, W) with H and W multiples of "
                       "%lld (the model's resolution is %d)", what, n->in_channels,
                       (long long)factor, n->image_size);
    return DC_OK;
}

typedef struct eps_call {
    dc_model *model;
    const dc_tensor *x, *t;
    dc_tensor *out;
} eps_call;

static int eps_run(void *args)
{
    eps_call *c = args;
    int device = nn_unet_device(c->model->net);
    ct_tensor *x, *t, *eps, *eps32;
    DCI_TRY(api_tensor_in(&x, c->x, "x", device));
    DCI_TRY(api_tensor_in(&t, c->t, "t", device));
    DCI_TRY(nn_unet_forward(c->model->net, x, t, &eps));
    DCI_TRY(ct_to(&eps32, eps, DC_FLOAT32, CT_CPU));
    return api_tensor_out(eps32, c->out);
}

DC_API dc_status dc_model_eps(dc_model *model, const dc_tensor *x, const dc_tensor *t,
                              dc_tensor *out)
{
    if (!model || !out)
        return dci_err(DC_EINVAL, "dc_model_eps: NULL argument");
    DCI_TRY(api_check_images(model, x, "x"));
    if (!t || t->dtype != DC_FLOAT32 || t->ndim != 1 || t->shape[0] != x->shape[0] || !t->data)
        return dci_err(DC_EINVAL, "t must be float32 with one timestep per image (%lld)",
                       (long long)x->shape[0]);
    eps_call call = {model, x, t, out};
    return (dc_status)api_run_pooled(eps_run, &call, 0);
}
