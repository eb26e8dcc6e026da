/* dc_finetuner (epochs, images, the learning-rate schedule, saving and resuming over
 * src/finetune/finetuner), the weights-delta format and fine-tuned model loading. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../finetune/finetuner.h"
#include "../io/delta.h"
#include "../io/file.h"
#include "convert.h"
#include "../core/error.h"
#include "handles.h"
#include "progress.h"
#include "tokenizer.h"

_Static_assert(IO_DELTA_BASE_ID_SIZE == LATENT_CACHE_FINGERPRINT_SIZE,
               "a delta names its base model by the model's fingerprint");

#define FLOAT16_MAX 65504.0

struct dc_finetuner {
    dc_model *base;
    dc_latent_cache *cache;
    dc_finetune_options options;     /* texts and indices point into the copies below */
    char **sources, **targets;
    size_t *indices;
    nn_unet *model;                  /* the trained copy of base's weights, float32 */
    df_schedule schedule;
    ft_trainer trainer;
    /* the run in progress */
    dc_progress report;
    double started;
    long long steps_done, steps_total;
};

DC_API void dc_finetune_options_init(dc_finetune_options *options, unsigned version)
{
    if (!options)
        return;
    memset(options, 0, sizeof *options);
    options->version = version;
    options->t0 = 500;
    options->inv_steps = 40;
    options->train_steps = 6;
    options->learning_rate = 8e-6;
    options->lr_gamma = 1.3;
    options->epochs = 5;
    options->images = 50;
    options->batch_size = 1;
    options->clip_weight = 3;
    options->l1_weight = 1;
    options->loss_form = DC_CLIP_LOSS_LOG;
    options->grad_mode = DC_GRAD_FULL;
    options->seed = 1234;
}

/* ---- file names and formats ---- */

static int has_extension(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && strcasecmp(path + n - e, ext) == 0;
}

/* `path` with ".epochE" before the extension of its file name (or at its end). */
static char *epoch_path(const char *path, int epoch)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t head = dot && dot != name ? (size_t)(dot - path) : strlen(path);
    size_t n = strlen(path) + 32;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s.epoch%d%s", (int)head, path, epoch, path + head);
    return out;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int remove_file(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return dci_err(DC_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return DC_OK;
}

/* The tensor of m called `name`; m's index `hint` first (models of one architecture list
 * their tensors in the same order). */
static size_t find_unet_tensor(const nn_unet *m, size_t hint, const char *name)
{
    size_t n = nn_unet_tensor_count(m);
    if (hint < n && strcmp(nn_unet_tensor_name(m, hint), name) == 0)
        return hint;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nn_unet_tensor_name(m, i), name) == 0)
            return i;
    return n;
}

static size_t find_sd_tensor(const io_state_dict *sd, size_t hint, const char *name)
{
    if (hint < sd->count && strcmp(sd->tensors[hint].name, name) == 0)
        return hint;
    for (size_t i = 0; i < sd->count; i++)
        if (strcmp(sd->tensors[i].name, name) == 0)
            return i;
    return sd->count;
}

static int same_shape(const ct_tensor *t, const dc_tensor *d)
{
    if (ct_ndim(t) != d->ndim)
        return 0;
    for (int i = 0; i < d->ndim; i++)
        if (ct_size(t, i) != d->shape[i])
            return 0;
    return 1;
}

/* ---- writing weights ---- */

typedef struct delta_call {
    const nn_unet *model, *base;
    const char *path;
    dc_named_tensor *named;
} delta_call;

/* model - base per tensor, as float16 host arrays in named[] (freed by the caller). */
static int delta_run(void *args)
{
    delta_call *c = args;
    size_t count = nn_unet_tensor_count(c->model);
    if (count != nn_unet_tensor_count(c->base))
        return dci_err(DC_EINVAL, "%s: the models have %zu and %zu tensors", c->path, count,
                       nn_unet_tensor_count(c->base));
    for (size_t i = 0; i < count; i++) {
        const char *name = nn_unet_tensor_name(c->model, i);
        size_t j = find_unet_tensor(c->base, i, name);
        if (j == count)
            return dci_err(DC_EINVAL, "%s: the base model has no tensor '%s'", c->path, name);
        const ct_tensor *w = nn_unet_tensor(c->model, i), *b = nn_unet_tensor(c->base, j);
        dc_tensor *t = &c->named[i].tensor;
        t->dtype = DC_FLOAT16;
        t->ndim = ct_ndim(w);
        for (int d = 0; d < t->ndim; d++)
            t->shape[d] = ct_size(w, d);
        if (!same_shape(b, t))
            return dci_err(DC_EINVAL, "%s: tensor '%s' has another shape in the base model",
                           c->path, name);
        c->named[i].name = name;
        size_t mark = ct_pool_begin();
        ct_tensor *w32, *b32, *d, *half;
        double largest = 0;
        int st = ct_to(&w32, w, DC_FLOAT32, ct_device(w));
        if (st == DC_OK)
            st = ct_to(&b32, b, DC_FLOAT32, ct_device(w));
        if (st == DC_OK)
            st = ct_sub(&d, w32, b32);
        if (st == DC_OK)
            st = ct_max_abs(d, &largest);
        if (st == DC_OK && !(largest <= FLOAT16_MAX))
            st = dci_err(DC_EINVAL, "%s: tensor '%s' changed by %g, beyond float16: save a full "
                         "state dict instead", c->path, name, largest);
        if (st == DC_OK)
            st = ct_to(&half, d, DC_FLOAT16, CT_CPU);
        size_t bytes = (size_t)ct_numel(w) * 2;
        if (st == DC_OK && !(t->data = malloc(bytes ? bytes : 1)))
            st = dci_err(DC_ENOMEM, "%s: out of memory", c->path);
        if (st == DC_OK)
            st = ct_to_host(half, t->data, bytes);
        ct_pool_end(mark, NULL, 0);
        DCI_TRY(st);
    }
    return DC_OK;
}

static int write_delta(const nn_unet *model, const dc_model *base, const char *path)
{
    size_t count = nn_unet_tensor_count(model);
    delta_call c = {model, base->net, path, calloc(count ? count : 1, sizeof *c.named)};
    if (!c.named)
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    int status = api_run_pooled(delta_run, &c, 0);
    if (status == DC_OK)
        status = io_delta_write(path, base->fingerprint, c.named, count);
    for (size_t i = 0; i < count; i++)
        free(c.named[i].tensor.data);
    free(c.named);
    return status;
}

/* A state dict with the model's names (no "module." prefix, as the published code saves
 * model.module.state_dict()), or a delta from base, by the extension of path. */
static int write_weights(const nn_unet *model, const dc_model *base, const char *path)
{
    if (has_extension(path, ".delta"))
        return write_delta(model, base, path);
    io_state_dict sd;
    DCI_TRY(nn_unet_export(model, &sd));
    dc_named_tensor *named = malloc((sd.count ? sd.count : 1) * sizeof *named);
    int status = named ? DC_OK : dci_err(DC_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; status == DC_OK && i < sd.count; i++) {
        named[i].name = sd.tensors[i].name;
        named[i].tensor = sd.tensors[i].value;
    }
    if (status == DC_OK)
        status = has_extension(path, ".safetensors")
                     ? io_checkpoint_write_safetensors(path, named, sd.count)
                     : io_checkpoint_write_torch(path, named, sd.count);
    free(named);
    io_state_dict_free(&sd);
    return status;
}

/* ---- reading fine-tuned weights ---- */

/* base's weights plus the float16 deltas of sd, on `device` in `dtype`. */
static int apply_delta(nn_unet **out, const nn_unet *base, const io_state_dict *sd,
                       const char *path, int device, dc_dtype dtype)
{
    size_t count = nn_unet_tensor_count(base);
    if (sd->count != count)
        return dci_err(DC_EFORMAT, "%s: %zu tensors, the base model has %zu", path, sd->count,
                       count);
    nn_unet *m;
    DCI_TRY(nn_unet_clone(&m, base, device, dtype));
    int status = DC_OK;
    for (size_t i = 0; status == DC_OK && i < count; i++) {
        const char *name = nn_unet_tensor_name(m, i);
        size_t j = find_sd_tensor(sd, i, name);
        const dc_tensor *d = j < sd->count ? &sd->tensors[j].value : NULL;
        if (!d)
            status = dci_err(DC_EFORMAT, "%s: no delta for tensor '%s'", path, name);
        else if (!same_shape(nn_unet_tensor(m, i), d))
            status = dci_err(DC_EFORMAT, "%s: the delta of '%s' has another shape than the "
                             "base model's", path, name);
        ct_tensor *delta = NULL;
        if (status == DC_OK)
            status = ct_from_host(&delta, d->data, DC_FLOAT16, d->ndim, d->shape, device);
        if (status == DC_OK)
            status = ct_add_(nn_unet_tensor(m, i), delta, 1.0);
        ct_free(delta);
    }
    if (status != DC_OK) {
        nn_unet_free(m);
        return status;
    }
    *out = m;
    return DC_OK;
}

/* Fine-tuned weights of base from a delta or a state dict; the fingerprint of what the file
 * holds. */
static int read_finetuned(nn_unet **out, char *fingerprint, const dc_model *base,
                          const char *path, int device, dc_dtype dtype)
{
    *out = NULL;
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    io_state_dict sd;
    int status;
    if (io_delta_detect(file.data, file.size)) {
        char base_id[IO_DELTA_BASE_ID_SIZE];
        status = io_delta_read_buffer(file.data, file.size, path, base_id, &sd);
        if (status == DC_OK && strcmp(base_id, base->fingerprint) != 0)
            status = dci_err(DC_EINVAL, "%s: a delta for another base model (made for %s, "
                             "this base is %s)", path, base_id, base->fingerprint);
        if (status == DC_OK)
            status = apply_delta(out, base->net, &sd, path, device, dtype);
    } else {
        status = io_checkpoint_read_buffer(file.data, file.size, path, &sd);
        if (status == DC_OK)
            status = nn_unet_load_like(out, &sd, path, base->net, device, dtype);
    }
    io_unmap_file(&file);
    if (status == DC_OK)
        status = api_fingerprint_state_dict(&sd, fingerprint);
    io_state_dict_free(&sd);
    if (status != DC_OK) {
        nn_unet_free(*out);
        *out = NULL;
    }
    return status;
}

DC_API dc_status dc_model_load_finetuned(dc_model **out, const dc_model *base,
                                         const char *path, const dc_model_options *options)
{
    if (!out || !base || !path)
        return dci_err(DC_EINVAL, "dc_model_load_finetuned: NULL argument");
    *out = NULL;
    int device = nn_unet_device(base->net);
    dc_dtype dtype = nn_unet_dtype(base->net);
    if (options) {
        DCI_TRY(api_check_version(options->version, DC_MODEL_OPTIONS_VERSION,
                                  "dc_model_options"));
        if (options->dtype != DC_FLOAT32 && options->dtype != DC_FLOAT16 &&
            options->dtype != DC_BFLOAT16)
            return dci_err(DC_EINVAL, "%s: a model computes in float32, float16 or bfloat16",
                           path);
        DCI_TRY(api_parse_device(options->device, "auto", &device));
        dtype = options->dtype;
    }
    dc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    int status = read_finetuned(&m->net, m->fingerprint, base, path, device, dtype);
    if (status == DC_OK)
        status = api_model_copy_config(m, base);
    if (status != DC_OK) {
        dc_model_free(m);
        return (dc_status)status;
    }
    *out = m;
    return DC_OK;
}

DC_API dc_status dc_model_save_delta(const dc_model *model, const dc_model *base,
                                     const char *path)
{
    if (!model || !base || !path)
        return dci_err(DC_EINVAL, "dc_model_save_delta: NULL argument");
    return (dc_status)write_delta(model->net, base, path);
}

/* ---- the fine-tuner ---- */

static int check_options(const dc_finetune_options *o, const dc_latent_cache *cache)
{
    if (o->text_pairs < 1 || !o->source_texts || !o->target_texts)
        return dci_err(DC_EINVAL, "fine-tuning needs at least one source and target text");
    for (size_t i = 0; i < o->text_pairs; i++)
        if (!o->source_texts[i] || !o->target_texts[i] || !*o->source_texts[i] ||
            !*o->target_texts[i])
            return dci_err(DC_EINVAL, "fine-tuning: text pair %zu has an empty text", i);
    if (o->epochs < 1 || o->images < 1 || o->batch_size < 1)
        return dci_err(DC_EINVAL, "fine-tuning needs epochs, images and batch size >= 1 (got "
                       "%d, %d, %d)", o->epochs, o->images, o->batch_size);
    if (o->loss_form != DC_CLIP_LOSS_LOG && o->loss_form != DC_CLIP_LOSS_DIRECTION)
        return dci_err(DC_EINVAL, "fine-tuning: unknown CLIP loss form %d", (int)o->loss_form);
    if (o->grad_mode != DC_GRAD_FULL && o->grad_mode != DC_GRAD_PER_STEP)
        return dci_err(DC_EINVAL, "fine-tuning: unknown gradient mode %d", (int)o->grad_mode);
    if (!(o->lr_gamma > 0) || !isfinite(o->lr_gamma))
        return dci_err(DC_EINVAL, "fine-tuning: the learning-rate factor must be > 0 (got %g)",
                       o->lr_gamma);
    for (size_t i = 0; o->image_indices && i < o->image_count; i++)
        if (o->image_indices[i] >= dc_latent_cache_count(cache))
            return dci_err(DC_EINVAL, "fine-tuning: image index %zu, the cache holds %zu",
                           o->image_indices[i], dc_latent_cache_count(cache));
    return DC_OK;
}

/* Copies the texts and indices the options point to. */
static int copy_options(dc_finetuner *ft, const dc_finetune_options *o)
{
    ft->options = *o;
    ft->sources = calloc(o->text_pairs, sizeof *ft->sources);
    ft->targets = calloc(o->text_pairs, sizeof *ft->targets);
    if (!ft->sources || !ft->targets)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    for (size_t i = 0; i < o->text_pairs; i++)
        if (!(ft->sources[i] = strdup(o->source_texts[i])) ||
            !(ft->targets[i] = strdup(o->target_texts[i])))
            return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    ft->options.source_texts = (const char *const *)ft->sources;
    ft->options.target_texts = (const char *const *)ft->targets;
    if (o->image_indices && o->image_count) {
        if (!(ft->indices = malloc(o->image_count * sizeof *ft->indices)))
            return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
        memcpy(ft->indices, o->image_indices, o->image_count * sizeof *ft->indices);
        ft->options.image_indices = ft->indices;
    } else {
        ft->options.image_indices = NULL;
        ft->options.image_count = 0;
    }
    return DC_OK;
}

DC_API dc_status dc_finetuner_new(dc_finetuner **out, dc_model *base, dc_clip *clip,
                                  dc_tokenizer *tokenizer, dc_idnet *idnet,
                                  dc_latent_cache *cache, const dc_finetune_options *options)
{
    if (!out || !base || !clip || !tokenizer || !cache)
        return dci_err(DC_EINVAL, "dc_finetuner_new: NULL argument");
    *out = NULL;
    dc_finetune_options o;
    dc_finetune_options_init(&o, DC_FINETUNE_OPTIONS_VERSION);
    if (options) {
        DCI_TRY(api_check_version(options->version, DC_FINETUNE_OPTIONS_VERSION,
                                  "dc_finetune_options"));
        o = *options;
    }
    DCI_TRY(check_options(&o, cache));
    dc_diffusion_options inversion = cache->inversion;
    inversion.t0 = o.t0;
    inversion.steps = o.inv_steps;
    DCI_TRY(api_latent_cache_check(cache, base, &inversion));
    dc_finetuner *ft = calloc(1, sizeof *ft);
    if (!ft)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    ft->base = base;
    ft->cache = cache;
    int status = copy_options(ft, &o);
    if (status == DC_OK)
        status = df_schedule_init_linear(&ft->schedule, cache->inversion.beta_start,
                                         cache->inversion.beta_end,
                                         cache->inversion.num_timesteps);
    if (status == DC_OK)
        status = nn_unet_clone(&ft->model, base->net, nn_unet_device(base->net), DC_FLOAT32);
    if (status == DC_OK) {
        ft_config c = {.t0 = o.t0,
                       .steps = o.train_steps,
                       .eta = o.eta,
                       .clip_weight = o.clip_weight,
                       .l1_weight = o.l1_weight,
                       .id_weight = o.id_weight,
                       .loss_form = o.loss_form == DC_CLIP_LOSS_LOG ? FT_CLIP_LOSS_LOG
                                                                    : FT_CLIP_LOSS_DIRECTION,
                       .grad_mode = o.grad_mode == DC_GRAD_FULL ? FT_GRAD_FULL
                                                                : FT_GRAD_PER_STEP,
                       .learning_rate = o.learning_rate};
        status = ft_trainer_init(&ft->trainer, ft->model, api_clip_net(clip),
                                 dci_tokenizer_impl(tokenizer), api_idnet_net(idnet),
                                 &ft->schedule, &c);
    }
    if (status != DC_OK) {
        dc_finetuner_free(ft);
        return (dc_status)status;
    }
    *out = ft;
    return DC_OK;
}

DC_API void dc_finetuner_free(dc_finetuner *ft)
{
    if (!ft)
        return;
    ft_trainer_free(&ft->trainer);
    nn_unet_free(ft->model);
    df_schedule_free(&ft->schedule);
    for (size_t i = 0; ft->sources && i < ft->options.text_pairs; i++)
        free(ft->sources[i]);
    for (size_t i = 0; ft->targets && i < ft->options.text_pairs; i++)
        free(ft->targets[i]);
    free(ft->sources);
    free(ft->targets);
    free(ft->indices);
    free(ft);
}

DC_API dc_status dc_finetuner_save(dc_finetuner *ft, const char *path)
{
    if (!ft || !path)
        return dci_err(DC_EINVAL, "dc_finetuner_save: NULL argument");
    return (dc_status)write_weights(ft->model, ft->base, path);
}

/* ---- training ---- */

/* Copies every weight of `from` into the trained model. */
static int set_weights(dc_finetuner *ft, const nn_unet *from)
{
    for (size_t i = 0; i < nn_unet_tensor_count(ft->model); i++)
        DCI_TRY(ct_copy_(nn_unet_tensor(ft->model, i), nn_unet_tensor(from, i)));
    return DC_OK;
}

static int load_weights(dc_finetuner *ft, const char *path)
{
    nn_unet *saved;
    char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];
    DCI_TRY(read_finetuned(&saved, fingerprint, ft->base, path, nn_unet_device(ft->model),
                           DC_FLOAT32));
    int status = set_weights(ft, saved);
    nn_unet_free(saved);
    return status;
}

static int report_step(void *user, const ft_step_report *r)
{
    dc_finetuner *ft = user;
    dc_progress *p = &ft->report;
    if (r->optimised) {
        p->loss_clip = r->loss_clip;
        p->loss_l1 = r->loss_l1;
        p->loss_id = r->loss_id;
        p->loss_total = r->loss_total;
        p->grad_norm = r->grad_norm;
    }
    p->step = (int)r->step + 1;
    p->steps = (int)r->steps;
    ft->steps_done++;
    double elapsed = api_now() - ft->started;
    p->seconds_per_image = elapsed * (double)r->steps / (double)ft->steps_done;
    p->eta_seconds = elapsed * (double)(ft->steps_total - ft->steps_done) /
                     (double)ft->steps_done;
    return ft->options.progress ? ft->options.progress(ft->options.progress_user, p) : 0;
}

/* The cache entries of images first..first+count-1 of the epoch as (count, C, H, W). */
static int load_batch(dc_finetuner *ft, size_t first, size_t count, ct_tensor **x0,
                      ct_tensor **x_lat)
{
    int32_t h, w;
    latent_cache_size(ft->cache->file, &h, &w);
    int64_t c = ft->cache->channels;
    size_t per_image = (size_t)c * (size_t)h * (size_t)w;
    float *buffers = malloc(2 * count * per_image * sizeof *buffers);
    if (!buffers)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory for a batch");
    float *x0s = buffers, *lats = buffers + count * per_image;
    int status = DC_OK;
    for (size_t k = 0; status == DC_OK && k < count; k++) {
        size_t i = first + k;
        size_t entry = ft->options.image_indices ? ft->options.image_indices[i] : i;
        status = latent_cache_get(ft->cache->file, entry, x0s + k * per_image, NULL,
                                  lats + k * per_image);
    }
    int64_t shape[4] = {(int64_t)count, c, h, w};
    int device = nn_unet_device(ft->model);
    if (status == DC_OK)
        status = ct_from_host(x0, x0s, DC_FLOAT32, 4, shape, device);
    if (status == DC_OK)
        status = ct_from_host(x_lat, lats, DC_FLOAT32, 4, shape, device);
    free(buffers);
    return status;
}

static int train_epoch(dc_finetuner *ft, size_t images)
{
    size_t batch = (size_t)ft->options.batch_size;
    for (size_t first = 0; first < images; first += batch) {
        size_t count = images - first < batch ? images - first : batch;
        ft->report.image = (int)(first / batch) + 1;
        size_t mark = ct_pool_begin();
        ct_tensor *x0 = NULL, *x_lat = NULL;
        int status = load_batch(ft, first, count, &x0, &x_lat);
        if (status == DC_OK)
            status = ft_trainer_step(&ft->trainer, x0, x_lat);
        ct_pool_end(mark, NULL, 0);
        DCI_TRY(status);
    }
    return DC_OK;
}

/* After epoch `done` (1-based): the epoch file, or `path` after the last epoch; then the
 * previous epoch's file goes. */
static int save_epoch(dc_finetuner *ft, const char *path, int done)
{
    int last = done == ft->options.epochs;
    char *saved = last ? NULL : epoch_path(path, done);
    char *previous = done > 1 ? epoch_path(path, done - 1) : NULL;
    int status = (!last && !saved) || (done > 1 && !previous)
                     ? dci_err(DC_ENOMEM, "fine-tuning: out of memory")
                     : write_weights(ft->model, ft->base, last ? path : saved);
    if (status == DC_OK && previous)
        status = remove_file(previous);
    free(saved);
    free(previous);
    return status;
}

/* The epochs from `start` on, saving after each. */
static int train_epochs(dc_finetuner *ft, int start, const char *path)
{
    const dc_finetune_options *o = &ft->options;
    size_t available = o->image_indices ? o->image_count : dc_latent_cache_count(ft->cache);
    size_t images = available < (size_t)o->images ? available : (size_t)o->images;
    if (images == 0)
        return dci_err(DC_EINVAL, "fine-tuning: the latent cache holds no training image");
    size_t batches = (images + (size_t)o->batch_size - 1) / (size_t)o->batch_size;
    double lr = o->learning_rate * pow(o->lr_gamma, start);
    ft->report.images = (int)batches;
    ft->started = api_now();
    ft->steps_done = 0;
    ft->steps_total = (long long)(o->epochs - start) * (long long)batches * o->train_steps;
    DCI_TRY(ct_manual_seed(o->seed));
    for (int epoch = start; epoch < o->epochs; epoch++, lr *= o->lr_gamma) {
        ft_trainer_set_lr(&ft->trainer, lr);
        ft->report.epoch = epoch + 1;
        ft->report.learning_rate = lr;
        DCI_TRY(train_epoch(ft, images));
        DCI_TRY(save_epoch(ft, path, epoch + 1));
    }
    return DC_OK;
}

/* With `resume`: the final file, or the latest epoch file, that a previous run left. */
static int resume_point(dc_finetuner *ft, const char *path, int *start)
{
    *start = 0;
    if (file_exists(path)) {
        DCI_TRY(load_weights(ft, path));
        *start = ft->options.epochs;
        return DC_OK;
    }
    for (int epoch = ft->options.epochs - 1; epoch >= 1 && *start == 0; epoch--) {
        char *saved = epoch_path(path, epoch);
        if (!saved)
            return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
        int status = DC_OK;
        if (file_exists(saved)) {
            status = load_weights(ft, saved);
            *start = epoch;
        }
        free(saved);
        DCI_TRY(status);
    }
    return DC_OK;
}

DC_API dc_status dc_finetuner_train(dc_finetuner *ft, size_t pair, const char *path)
{
    if (!ft || !path || !*path)
        return dci_err(DC_EINVAL, "dc_finetuner_train: NULL argument");
    if (pair >= ft->options.text_pairs)
        return dci_err(DC_EINVAL, "dc_finetuner_train: text pair %zu of %zu", pair,
                       ft->options.text_pairs);
    memset(&ft->report, 0, sizeof ft->report);
    ft->report.version = DC_PROGRESS_VERSION;
    ft->report.stage = "finetune";
    ft->report.epochs = ft->options.epochs;
    ft->trainer.on_step = report_step;
    ft->trainer.user = ft;
    DCI_TRY(set_weights(ft, ft->base->net));
    DCI_TRY(ft_trainer_begin(&ft->trainer, ft->sources[pair], ft->targets[pair]));
    int start = 0;
    if (ft->options.resume)
        DCI_TRY(resume_point(ft, path, &start));
    if (start >= ft->options.epochs)
        return DC_OK;
    return (dc_status)train_epochs(ft, start, path);
}
