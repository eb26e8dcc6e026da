/* dc_model: a diffusion UNet loaded from a checkpoint. Handles of the same unchanged file
 * loaded with the same options share one set of weights. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/model_config.h"
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

/* ---- the config ---- */

/* Appends a line to the model's warnings (fmt takes two strings). */
static int warn(dc_model *m, const char *fmt, const char *a, const char *b)
{
    size_t old = m->warnings ? strlen(m->warnings) : 0;
    int n = snprintf(NULL, 0, fmt, a, b);
    char *text = n < 0 ? NULL : realloc(m->warnings, old + (size_t)n + 1);
    if (!text)
        return dci_err(DC_ENOMEM, "out of memory");
    snprintf(text + old, (size_t)n + 1, fmt, a, b);
    m->warnings = text;
    return DC_OK;
}

static int contradiction(const char *config, const char *key, const char *file_value,
                         const char *weights_value)
{
    return dci_err(DC_EFORMAT, "%s: %s is %s, but the weights have %s", config, key, file_value,
                   weights_value);
}

static void list_text(char *out, size_t size, const double *values, int count)
{
    size_t used = 0;
    out[0] = '\0';
    used += (size_t)snprintf(out, size, "[");
    for (int i = 0; i < count && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%g", i ? ", " : "", values[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* The DDPM model section against the architecture read from the weights (ADM models are
 * built from guided-diffusion's own settings: the published code ignores the section). */
static int check_model_section(const io_model_config *c, const char *path,
                               const nn_unet_info *n, int image_size)
{
    char a[160], b[160];
#define SAME_INT(bit, key, file, weights)                                                  \
    if ((c->present & (bit)) && (file) != (weights)) {                                     \
        snprintf(a, sizeof a, "%d", (file));                                              \
        snprintf(b, sizeof b, "%d", (weights));                                           \
        return contradiction(path, key, a, b);                                             \
    }
    SAME_INT(IO_CONFIG_IN_CHANNELS, "model.in_channels", c->in_channels, n->in_channels)
    SAME_INT(IO_CONFIG_OUT_CH, "model.out_ch", c->out_ch, n->out_channels)
    SAME_INT(IO_CONFIG_CH, "model.ch", c->ch, n->base_channels)
    SAME_INT(IO_CONFIG_NUM_RES_BLOCKS, "model.num_res_blocks", c->num_res_blocks,
             n->num_res_blocks)
#undef SAME_INT
    if (c->present & IO_CONFIG_CH_MULT) {
        int same = c->ch_mult_count == n->levels;
        for (int l = 0; same && l < n->levels; l++)
            same = c->ch_mult[l] == n->channel_mult[l];
        if (!same) {
            list_text(a, sizeof a, c->ch_mult, c->ch_mult_count);
            list_text(b, sizeof b, n->channel_mult, n->levels);
            return contradiction(path, "model.ch_mult", a, b);
        }
    }
    if ((c->present & IO_CONFIG_ATTN) && image_size > 0) {
        /* As the published DDPM: a level has attention when its resolution is listed. */
        double listed[IO_CONFIG_MAX_LIST], weights[NN_UNET_MAX_LEVELS];
        int nweights = 0, same = 1;
        for (int l = 0; l < n->levels; l++) {
            int wanted = 0;
            for (int i = 0; i < c->attn_count; i++)
                wanted |= c->attn_resolutions[i] == image_size >> l;
            same &= wanted == n->attention[l];
            if (n->attention[l])
                weights[nweights++] = image_size >> l;
        }
        if (!same) {
            for (int i = 0; i < c->attn_count; i++)
                listed[i] = c->attn_resolutions[i];
            list_text(a, sizeof a, listed, c->attn_count);
            list_text(b, sizeof b, weights, nweights);
            snprintf(b + strlen(b), sizeof b - strlen(b), " at image size %d", image_size);
            return contradiction(path, "model.attn_resolutions", a, b);
        }
    }
    /* Without resampling convolutions the published DDPM has no downsample/upsample conv
     * weights; this library requires them (the loader refuses weights without). */
    if ((c->present & IO_CONFIG_RESAMP_WITH_CONV) && !c->resamp_with_conv)
        return contradiction(path, "model.resamp_with_conv", "false",
                             "resampling convolutions (down.N.downsample.conv)");
    return DC_OK;
}

/* What the config says beyond the architecture: the schedule, var_type, warnings. */
static int apply_config(dc_model *m, const io_model_config *c, const char *path)
{
    if (c->present & IO_CONFIG_VAR_TYPE) {
        if (strcmp(c->var_type, "fixedsmall") == 0)
            m->var_type = DC_VAR_FIXEDSMALL;
        else if (strcmp(c->var_type, "fixedlarge") == 0)
            m->var_type = DC_VAR_FIXEDLARGE;
        else
            return dci_err(DC_EFORMAT, "%s: model.var_type '%s' is not fixedsmall or "
                           "fixedlarge", path, c->var_type);
    }
    if (c->present & IO_CONFIG_BETA_START)
        m->beta_start = c->beta_start;
    if (c->present & IO_CONFIG_BETA_END)
        m->beta_end = c->beta_end;
    if (c->present & IO_CONFIG_TIMESTEPS)
        m->num_timesteps = c->num_timesteps;
    df_schedule check;
    int status = df_schedule_init_linear(&check, m->beta_start, m->beta_end, m->num_timesteps);
    if (status != DC_OK)
        return dci_err_prefix(status, path);
    df_schedule_free(&check);
    if ((c->present & IO_CONFIG_BETA_SCHEDULE) && strcmp(c->beta_schedule, "linear") != 0)
        DCI_TRY(warn(m, "%s: diffusion.beta_schedule is '%s'; the betas are linear, as the "
                     "published get_beta_schedule makes them whatever it says\n", path,
                     c->beta_schedule));
    if ((c->present & IO_CONFIG_DROPOUT) && c->dropout != 0) {
        char value[32];
        snprintf(value, sizeof value, "%g", c->dropout);
        DCI_TRY(warn(m, "%s: model.dropout %s is not applied: this library samples and "
                     "fine-tunes without dropout\n", path, value));
    }
    return DC_OK;
}

/* The image size asked for (option, else config) and where it came from. */
static int requested_size(const dc_model_options *o, const io_model_config *c, const char *path,
                          int *size, dc_size_source *source)
{
    if (o->image_size < 0)
        return dci_err(DC_EINVAL, "%s: image size %d is negative", path, o->image_size);
    int from_config = c && (c->present & IO_CONFIG_IMAGE_SIZE) ? c->image_size : 0;
    if (o->image_size > 0 && from_config && o->image_size != from_config)
        return dci_err(DC_EINVAL, "%s: image size %d contradicts the config's data.image_size "
                       "%d (%s)", path, o->image_size, from_config, o->config_path);
    *size = o->image_size > 0 ? o->image_size : from_config;
    *source = o->image_size > 0 ? DC_SIZE_OPTION : from_config ? DC_SIZE_CONFIG : DC_SIZE_UNKNOWN;
    return DC_OK;
}

static int setup_model(dc_model *m, const dc_model_options *o, const io_model_config *config,
                       dc_size_source source)
{
    m->var_type = DC_VAR_FIXEDSMALL;
    m->num_timesteps = DF_DEFAULT_TIMESTEPS;
    m->beta_start = DF_DEFAULT_BETA_START;
    m->beta_end = DF_DEFAULT_BETA_END;
    if (!(m->warnings = strdup("")))
        return dci_err(DC_ENOMEM, "out of memory");
    const nn_unet_info *n = nn_unet_get_info(m->net);
    m->size_source = source != DC_SIZE_UNKNOWN ? source
                                                : n->image_size ? DC_SIZE_WEIGHTS : DC_SIZE_UNKNOWN;
    if (!config)
        return DC_OK;
    if (!(m->config_path = strdup(o->config_path)))
        return dci_err(DC_ENOMEM, "out of memory");
    if (n->kind == NN_UNET_DDPM)
        DCI_TRY(check_model_section(config, o->config_path, n, n->image_size));
    else if (config->present & (IO_CONFIG_CH | IO_CONFIG_CH_MULT | IO_CONFIG_NUM_RES_BLOCKS))
        DCI_TRY(warn(m, "%s: the model section is not used for this %s model (as published: "
                     "i_DDPM builds it from guided-diffusion's settings)\n", o->config_path,
                     "ADM"));
    return apply_config(m, config, o->config_path);
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
    io_model_config config;
    if (o.config_path)
        DCI_TRY(io_model_config_read_file(o.config_path, &config));
    int image_size = 0;
    dc_size_source source = DC_SIZE_UNKNOWN;
    DCI_TRY(requested_size(&o, o.config_path ? &config : NULL, path, &image_size, &source));

    dc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    model_key before = {.device = device, .dtype = o.dtype, .image_size = image_size,
                        .head_channels = o.head_channels};
    int known = file_key(path, &before);
    int status = DC_OK;
    if (!(known && share_existing(m, &before))) {
        io_state_dict sd = {0};
        status = io_checkpoint_read_file(path, &sd);
        if (status == DC_OK)
            status = latent_cache_fingerprint_state_dict(&sd, m->fingerprint);
        if (status == DC_OK) {
            nn_unet_options unet_options = {.head_channels = o.head_channels,
                                            .image_size = image_size};
            status = nn_unet_load(&m->net, &sd, path, device, o.dtype, &unet_options);
        }
        io_state_dict_free(&sd);
        /* Shared only when the file did not change while it was read. */
        model_key after = before;
        if (status == DC_OK && known && file_key(path, &after) && same_key(&before, &after))
            offer_shared(m, &before);
    }
    if (status == DC_OK)
        status = setup_model(m, &o, o.config_path ? &config : NULL, source);
    if (status != DC_OK) {
        dc_model_free(m);
        return (dc_status)status;
    }
    *out = m;
    return DC_OK;
}

int api_model_copy_config(dc_model *m, const dc_model *base)
{
    m->size_source = base->size_source;
    m->var_type = base->var_type;
    m->num_timesteps = base->num_timesteps;
    m->beta_start = base->beta_start;
    m->beta_end = base->beta_end;
    if (!(m->warnings = strdup(base->warnings ? base->warnings : "")) ||
        (base->config_path && !(m->config_path = strdup(base->config_path))))
        return dci_err(DC_ENOMEM, "out of memory");
    return DC_OK;
}

DC_API dc_status dc_model_get_config(const dc_model *model, dc_model_config *config)
{
    if (!model || !config)
        return dci_err(DC_EINVAL, "dc_model_get_config: NULL argument");
    dc_model_config c = {.version = DC_MODEL_CONFIG_VERSION,
                         .image_size = nn_unet_get_info(model->net)->image_size,
                         .image_size_source = model->size_source,
                         .config_path = model->config_path,
                         .var_type = model->var_type,
                         .num_timesteps = model->num_timesteps,
                         .beta_start = model->beta_start,
                         .beta_end = model->beta_end,
                         .warnings = model->warnings ? model->warnings : ""};
    return (dc_status)api_options_write(config, &c, &api_model_config_layout);
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
    free(model->config_path);
    free(model->warnings);
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
    if (n->image_size)
        APPEND("image_size %d (%s)\n", n->image_size,
               model->size_source == DC_SIZE_CONFIG   ? "from the config's data.image_size"
               : model->size_source == DC_SIZE_OPTION ? "from the image-size option"
               : n->kind == NN_UNET_ADM ? "from the weights: guided-diffusion's channel_mult "
                                          "for this size"
                                        : "from the weights: attention at 16x16");
    else
        APPEND("image_size unknown (the weights do not tell it: give the image-size option or "
               "the model's config; arrays of any multiple of %d are taken as they are)\n",
               1 << (n->levels - 1));
    APPEND("in_channels %d\nout_channels %d%s\nbase_channels %d\n",
           n->in_channels, n->out_channels,
           n->learn_sigma ? " (learned sigma: eps, then the variance output)" : "",
           n->base_channels);
    APPEND("channel_mult");
    for (int l = 0; l < n->levels; l++)
        APPEND("%s%g", l ? "," : " ", n->channel_mult[l]);
    APPEND("\nnum_res_blocks %d", n->num_res_blocks);
    if (n->image_size) {
        APPEND("\nattention_resolutions");
        for (int i = 0; i < n->attention_count; i++)
            APPEND("%s%d", i ? "," : " ", n->attention_resolutions[i]);
    } else {
        /* Without the size, where attention is can only be said by level. */
        APPEND("\nattention_levels");
        for (int l = 0, first = 1; l < n->levels; l++)
            if (n->attention[l]) {
                APPEND("%s%d", first ? " " : ",", l);
                first = 0;
            }
    }
    if (n->kind == NN_UNET_ADM) {
        if (n->head_channels > 0)
            APPEND("\nhead_channels %d", n->head_channels);
        else
            APPEND("\nnum_heads %d", n->num_heads);
        APPEND("\nscale_shift_norm %d\nresblock_updown %d\nlabel_emb %s", n->scale_shift,
               n->resblock_updown, n->has_label_emb ? "loaded, unused" : "none");
    }
    APPEND("\nparameters %lld\ntensors %zu\n", (long long)n->param_count, n->tensor_count);
    APPEND("config %s\nschedule linear, beta %g .. %g, %d timesteps\nvar_type %s\n",
           model->config_path ? model->config_path : "none", model->beta_start, model->beta_end,
           model->num_timesteps, model->var_type == DC_VAR_FIXEDLARGE ? "fixedlarge" : "fixedsmall");
    for (const char *line = model->warnings; line && *line;) {
        const char *end = strchr(line, '\n');
        int length = end ? (int)(end - line) : (int)strlen(line);
        APPEND("warning: %.*s\n", length, line);
        line += length + (end != NULL);
    }
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
                       "%lld (this UNet has %d levels)", what, n->in_channels, (long long)factor,
                       n->levels);
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
