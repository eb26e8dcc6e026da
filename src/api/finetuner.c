/* dc_finetuner and fine-tuned models: argument and option checks and handles over
 * src/finetune (the trainer and the run of epochs, saving and resuming) and the UNet's
 * deltas (src/nn/unet_delta.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../finetune/group.h"
#include "../finetune/run.h"
#include "convert.h"
#include "handles.h"
#include "../core/options.h"
#include "tokenizer.h"

struct dc_finetuner {
    dc_model *base;
    dc_latent_cache *cache;
    dc_finetune_options options;     /* texts and indices point into the copies below */
    char **sources, **targets;
    size_t *indices;
    nn_unet *model;                  /* the trained copy of base's weights, float32 */
    df_schedule schedule;
    ft_trainer trainer;
    ft_run run;
    ct_dist *dist;                   /* the process group; NULL with world_size 1 */
};

DC_API dc_status dc_finetune_options_init(dc_finetune_options *options, unsigned version)
{
    return (dc_status)api_options_init(options, version, &api_finetune_options);
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
        dc_model_options o;
        DCI_TRY(api_options_read(&o, options, &api_model_options));
        if (o.dtype != DC_FLOAT32 && o.dtype != DC_FLOAT16 && o.dtype != DC_BFLOAT16)
            return dci_err(DC_EINVAL, "%s: a model computes in float32, float16 or bfloat16",
                           path);
        DCI_TRY(api_parse_device(o.device, "auto", &device));
        dtype = o.dtype;
    }
    dc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    int status = ft_read_weights(&m->net, m->fingerprint, base->net, base->fingerprint, path,
                                 device, dtype);
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
    return (dc_status)nn_unet_write_delta(model->net, base->net, base->fingerprint, path);
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
    if (o->recompute && o->grad_mode != DC_GRAD_FULL)
        return dci_err(DC_EINVAL, "fine-tuning: recomputation is for the full-gradient mode");
    if (o->dtype != DC_FLOAT32 && o->dtype != DC_BFLOAT16 && o->dtype != DC_FLOAT16)
        return dci_err(DC_EINVAL, "fine-tuning computes in float32, bfloat16 or float16 (got "
                       "%d)", (int)o->dtype);
    if (o->test_steps != 0 && o->test_steps < 2)
        return dci_err(DC_EINVAL, "fine-tuning: %d test steps (0 for inv_steps, or >= 2)",
                       o->test_steps);
    if (!(o->lr_gamma > 0) || !isfinite(o->lr_gamma))
        return dci_err(DC_EINVAL, "fine-tuning: the learning-rate factor must be > 0 (got %g)",
                       o->lr_gamma);
    if (o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
        return dci_err(DC_EINVAL, "fine-tuning: rank %d of world size %d", o->rank,
                       o->world_size);
    if (o->world_size > 1 && (o->master_port < 1 || o->master_port > 65535 ||
                              !(o->dist_timeout > 0)))
        return dci_err(DC_EINVAL, "fine-tuning: master port %d (1..65535) and timeout %g s "
                       "(> 0)", o->master_port, o->dist_timeout);
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
    ft->options.master_addr = NULL;  /* used by dc_finetuner_new only */
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
    DCI_TRY(api_options_read(&o, options, &api_finetune_options));
    DCI_TRY(check_options(&o, cache));
    dc_diffusion_options inversion = cache->inversion;
    inversion.t0 = o.t0;
    inversion.steps = o.inv_steps;
    DCI_TRY(api_latent_cache_check(cache, base, &inversion));
    dc_latent_cache *test_cache = o.test_cache ? o.test_cache : cache;
    if (o.test_cache && o.test_images > 0)
        DCI_TRY(api_latent_cache_check(o.test_cache, base, &inversion));
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
                       .learning_rate = o.learning_rate,
                       .recompute = o.recompute,
                       .dtype = o.dtype};
        status = ft_trainer_init(&ft->trainer, ft->model, api_clip_net(clip),
                                 dci_tokenizer_impl(tokenizer), api_idnet_net(idnet),
                                 &ft->schedule, &c);
    }
    /* The group is joined last: a rank whose own setup failed has then gone, and the others
     * learn it from the rendezvous. */
    size_t local_images = o.image_indices ? o.image_count : dc_latent_cache_count(cache);
    size_t group_images = local_images;
    if (status == DC_OK && o.world_size > 1)
        status = ct_dist_new(&ft->dist, o.rank, o.world_size,
                             o.master_addr ? o.master_addr : "127.0.0.1", o.master_port,
                             o.dist_timeout);
    if (status == DC_OK && ft->dist)
        status = ft_group_check(ft->dist, base->fingerprint, &ft->options, local_images,
                                &group_images);
    if (status != DC_OK) {
        dc_finetuner_free(ft);
        return (dc_status)status;
    }
    ft->run = (ft_run){.model = ft->model,
                       .base = base->net,
                       .base_fingerprint = base->fingerprint,
                       .cache = cache->file,
                       .channels = cache->channels,
                       .options = &ft->options,
                       .trainer = &ft->trainer,
                       .test_cache = test_cache->file,
                       .test_channels = test_cache->channels,
                       .epoch_reports = !options || options->version >= 2,
                       .dist = ft->dist,
                       .group_images = group_images};
    *out = ft;
    return DC_OK;
}

DC_API void dc_finetuner_free(dc_finetuner *ft)
{
    if (!ft)
        return;
    ft_trainer_free(&ft->trainer);
    ct_dist_free(ft->dist);
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
    return (dc_status)ft_write_weights(ft->model, ft->base->net, ft->base->fingerprint, path);
}

DC_API dc_status dc_finetuner_train(dc_finetuner *ft, size_t pair, const char *path)
{
    if (!ft || !path || !*path)
        return dci_err(DC_EINVAL, "dc_finetuner_train: NULL argument");
    if (pair >= ft->options.text_pairs)
        return dci_err(DC_EINVAL, "dc_finetuner_train: text pair %zu of %zu", pair,
                       ft->options.text_pairs);
    return (dc_status)ft_run_train(&ft->run, ft->sources[pair], ft->targets[pair], path);
}
