/* dc_sampler: generation with the noise of several models mixed (src/diffusion/combine.h),
 * and the editing modes over it: edit, continuous transition, unseen-domain translation. */
#include <stdlib.h>
#include <string.h>

#include "../diffusion/combine.h"
#include "../diffusion/encoder.h"
#include "../diffusion/generator.h"
#include "convert.h"
#include "diffusion_options.h"
#include "../core/error.h"
#include "handles.h"
#include "../core/options.h"
#include "progress.h"

struct dc_sampler {
    dc_model **models;
    df_predictor *predictors;        /* nn_unet_eps over each model's network */
    size_t count;
    df_weights weights;
};

static const char *family_name(nn_unet_kind kind) { return kind == NN_UNET_ADM ? "ADM" : "DDPM"; }

/* Model i must be interchangeable with model 0 inside one sampling loop. */
static int check_compatible(const dc_model *first, const dc_model *other, size_t i)
{
    const nn_unet_info *a = nn_unet_get_info(first->net), *b = nn_unet_get_info(other->net);
    if (a->kind != b->kind || a->image_size != b->image_size ||
        a->in_channels != b->in_channels || a->out_channels != b->out_channels)
        return dci_err(DC_EINVAL, "sampler: model %zu (%s) is a %s model of %dx%d with %d -> %d "
                       "channels, model 0 (%s) a %s model of %dx%d with %d -> %d channels: "
                       "mixed models need the same family, resolution and output layout",
                       i, other->path, family_name(b->kind), b->image_size, b->image_size,
                       b->in_channels, b->out_channels, first->path, family_name(a->kind),
                       a->image_size, a->image_size, a->in_channels, a->out_channels);
    return DC_OK;
}

DC_API dc_status dc_sampler_new(dc_sampler **out, dc_model *const *models, size_t count)
{
    if (!out || !models)
        return dci_err(DC_EINVAL, "dc_sampler_new: NULL argument");
    *out = NULL;
    if (count < 1 || count > DF_MAX_MODELS)
        return dci_err(DC_EINVAL, "dc_sampler_new: %zu models (1..%d)", count, DF_MAX_MODELS);
    for (size_t i = 0; i < count; i++) {
        if (!models[i])
            return dci_err(DC_EINVAL, "dc_sampler_new: model %zu is NULL", i);
        DCI_TRY(check_compatible(models[0], models[i], i));
    }
    dc_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->models = malloc(count * sizeof *s->models);
        s->predictors = malloc(count * sizeof *s->predictors);
    }
    if (!s || !s->models || !s->predictors) {
        dc_sampler_free(s);
        return dci_err(DC_ENOMEM, "dc_sampler_new: out of memory");
    }
    s->count = count;
    for (size_t i = 0; i < count; i++) {
        s->models[i] = models[i];
        s->predictors[i] = (df_predictor){.fn = nn_unet_eps, .ctx = models[i]->net};
    }
    double *first_alone = calloc(count, sizeof *first_alone);
    int status = first_alone ? DC_OK : dci_err(DC_ENOMEM, "dc_sampler_new: out of memory");
    if (status == DC_OK) {
        first_alone[0] = 1;
        status = df_weights_constant(&s->weights, count, first_alone);
    }
    free(first_alone);
    if (status != DC_OK) {
        dc_sampler_free(s);
        return (dc_status)status;
    }
    *out = s;
    return DC_OK;
}

DC_API void dc_sampler_free(dc_sampler *sampler)
{
    if (!sampler)
        return;
    df_weights_free(&sampler->weights);
    free(sampler->models);
    free(sampler->predictors);
    free(sampler);
}

DC_API size_t dc_sampler_count(const dc_sampler *sampler) { return sampler ? sampler->count : 0; }

DC_API dc_status dc_sampler_set_weights(dc_sampler *sampler, const double *weights)
{
    if (!sampler || !weights)
        return dci_err(DC_EINVAL, "dc_sampler_set_weights: NULL argument");
    return (dc_status)df_weights_constant(&sampler->weights, sampler->count, weights);
}

DC_API dc_status dc_sampler_set_piecewise(dc_sampler *sampler, const int *thresholds,
                                          const double *weights, size_t pieces)
{
    if (!sampler || !thresholds || !weights)
        return dci_err(DC_EINVAL, "dc_sampler_set_piecewise: NULL argument");
    return (dc_status)df_weights_piecewise(&sampler->weights, sampler->count, pieces,
                                           thresholds, weights);
}

DC_API dc_status dc_sampler_set_ramp(dc_sampler *sampler, int t_a, const double *a, int t_b,
                                     const double *b)
{
    if (!sampler || !a || !b)
        return dci_err(DC_EINVAL, "dc_sampler_set_ramp: NULL argument");
    return (dc_status)df_weights_ramp(&sampler->weights, sampler->count, t_a, a, t_b, b);
}

DC_API dc_status dc_sampler_weights_at(const dc_sampler *sampler, int t, double *weights)
{
    if (!sampler || !weights)
        return dci_err(DC_EINVAL, "dc_sampler_weights_at: NULL argument");
    return (dc_status)df_weights_at(&sampler->weights, t, weights);
}

/* ---- generation with a mix ---- */

typedef struct mix_call {
    dc_sampler *sampler;
    const df_weights *weights;
    const dc_tensor *latent;
    const dc_diffusion_options *options;    /* validated */
    const df_schedule *schedule;
    api_progress *progress;
    dc_tensor *out;
} mix_call;

static int mix_run(void *args)
{
    mix_call *c = args;
    df_combine combine = {.predictors = c->sampler->predictors,
                          .count = c->sampler->count,
                          .weights = c->weights};
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = c->options->t0;
    g.n_steps = c->options->steps;
    g.sampler = c->options->sampling == DC_SAMPLING_DDPM ? DF_SAMPLER_DDPM : DF_SAMPLER_DDIM;
    g.eta = c->options->eta;
    g.logvar = api_model_logvar(c->sampler->models[0]);
    g.seeded = 1;
    g.seed = c->options->seed;
    g.on_step = api_progress_step;
    g.user = c->progress;
    ct_tensor *x, *y, *y32;
    DCI_TRY(api_tensor_in(&x, c->latent, "latent", nn_unet_device(c->sampler->models[0]->net)));
    DCI_TRY(df_generate(c->schedule, df_combine_eps, &combine, x, &g, &y));
    DCI_TRY(ct_to(&y32, y, DC_FLOAT32, CT_CPU));
    return api_tensor_out(y32, c->out);
}

static int generate_mix(dc_sampler *s, const df_weights *weights, const dc_tensor *latent,
                        const dc_diffusion_options *options, const df_schedule *schedule,
                        api_progress *progress, dc_tensor *out)
{
    mix_call call = {s, weights, latent, options, schedule, progress, out};
    return api_run_pooled(mix_run, &call, 0);
}

DC_API dc_status dc_sampler_generate(dc_sampler *sampler, const dc_tensor *latent,
                                     const dc_diffusion_options *options, dc_tensor *out)
{
    if (!sampler || !out)
        return dci_err(DC_EINVAL, "dc_sampler_generate: NULL argument");
    DCI_TRY(api_check_images(sampler->models[0], latent, "latent"));
    dc_diffusion_options o;
    df_schedule schedule;
    DCI_TRY(api_diffusion_options(options, 1, sampler->models[0], &o, &schedule));
    api_progress progress;
    api_progress_init(&progress, o.progress, o.progress_user, "generate");
    int status = generate_mix(sampler, &sampler->weights, latent, &o, &schedule, &progress, out);
    df_schedule_free(&schedule);
    return (dc_status)status;
}

/* ---- editing ---- */

DC_API dc_status dc_edit_options_init(dc_edit_options *options, unsigned version)
{
    return (dc_status)api_options_init(options, version, &api_edit_options);
}

/* The validated options of one edit: inversion and generation as dc_diffusion_options. */
typedef struct edit_plan {
    dc_edit_options o;
    dc_diffusion_options inversion, generation;
    df_schedule schedule;
} edit_plan;

static void diffusion_options_for(const dc_edit_options *e, int steps, double eta,
                                  dc_diffusion_options *d)
{
    dc_diffusion_options_init(d, DC_DIFFUSION_OPTIONS_VERSION);
    d->t0 = e->t0;
    d->steps = steps;
    d->eta = eta;
    d->seed = e->seed;
    d->num_timesteps = e->num_timesteps;
    d->beta_start = e->beta_start;
    d->beta_end = e->beta_end;
    d->progress = e->progress;
    d->progress_user = e->progress_user;
}

/* Checks the arguments of an edit; on success p->schedule must be freed. */
static int edit_prepare(dc_sampler *s, const dc_tensor *x0, const dc_edit_options *options,
                        const char *what, edit_plan *p)
{
    if (!s)
        return dci_err(DC_EINVAL, "%s: NULL sampler", what);
    DCI_TRY(api_options_read(&p->o, options, &api_edit_options));
    if (p->o.repeats < 1)
        return dci_err(DC_EINVAL, "%s: repeats must be >= 1 (got %d)", what, p->o.repeats);
    if (p->o.projection_steps < 2)
        return dci_err(DC_EINVAL, "%s: projection steps must be >= 2 (got %d)", what,
                       p->o.projection_steps);
    DCI_TRY(api_check_images(s->models[0], x0, "x0"));
    dc_diffusion_options in;
    diffusion_options_for(&p->o, p->o.inv_steps, 0, &in);
    DCI_TRY(api_diffusion_options(&in, 0, s->models[0], &p->inversion, &p->schedule));
    df_schedule_free(&p->schedule);
    diffusion_options_for(&p->o, p->o.gen_steps, p->o.eta, &in);
    return api_diffusion_options(&in, 1, s->models[0], &p->generation, &p->schedule);
}

/* One image of a batch, as a view (no copy). */
static dc_tensor image_view(const dc_tensor *batch, int64_t n)
{
    dc_tensor one = *batch;
    size_t floats = (size_t)(batch->shape[1] * batch->shape[2] * batch->shape[3]);
    one.shape[0] = 1;
    one.data = (float *)batch->data + (size_t)n * floats;
    return one;
}

/* The latents of x0 at t0 by model 0's DDIM inversion, through the cache when there is one. */
static int invert_latents(dc_sampler *s, const dc_tensor *x0, const edit_plan *p,
                          dc_tensor *latents)
{
    dc_latent_cache *cache = p->o.cache;
    if (!cache)
        return dc_invert(s->models[0], x0, &p->inversion, latents);
    DCI_TRY(api_latent_cache_check(cache, s->models[0], &p->inversion));
    size_t floats = (size_t)(x0->shape[1] * x0->shape[2] * x0->shape[3]);
    dc_tensor all = *x0;
    all.data = malloc((size_t)x0->shape[0] * floats * sizeof(float));
    if (!all.data)
        return dci_err(DC_ENOMEM, "out of memory for %lld latents", (long long)x0->shape[0]);
    int status = DC_OK;
    for (int64_t n = 0; n < x0->shape[0] && status == DC_OK; n++) {
        dc_tensor one = image_view(x0, n), lat = {0};
        size_t index;
        status = dc_latent_cache_add(cache, &one, &index);
        if (status == DC_OK)
            status = dc_latent_cache_get(cache, index, NULL, NULL, &lat);
        if (status == DC_OK)
            memcpy((float *)all.data + (size_t)n * floats, lat.data, floats * sizeof(float));
        dc_tensor_free(&lat);
    }
    if (status != DC_OK) {
        free(all.data);
        return status;
    }
    *latents = all;
    return DC_OK;
}

DC_API dc_status dc_sampler_edit(dc_sampler *sampler, const dc_tensor *x0,
                                 const dc_edit_options *options, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_sampler_edit: NULL argument");
    edit_plan p;
    DCI_TRY(edit_prepare(sampler, x0, options, "dc_sampler_edit", &p));
    dc_tensor latents = {0};
    int status = invert_latents(sampler, x0, &p, &latents);
    if (status == DC_OK) {
        api_progress progress;
        api_progress_init(&progress, p.o.progress, p.o.progress_user, "generate");
        status = generate_mix(sampler, &sampler->weights, &latents, &p.generation, &p.schedule,
                              &progress, out);
    }
    dc_tensor_free(&latents);
    df_schedule_free(&p.schedule);
    return (dc_status)status;
}

/* Generations for gamma = k / (count - 1) into rows n * count + k of `all`. */
static int transition_frames(dc_sampler *s, const dc_tensor *latents, int count,
                             const edit_plan *p, dc_tensor *all)
{
    int64_t images = latents->shape[0];
    size_t floats = (size_t)(latents->shape[1] * latents->shape[2] * latents->shape[3]);
    api_progress progress;
    api_progress_init(&progress, p->o.progress, p->o.progress_user, "generate");
    progress.report.images = count;
    df_weights blended = {0};
    int status = DC_OK;
    for (int k = 0; k < count && status == DC_OK; k++) {
        dc_tensor frame = {0};
        progress.report.image = k + 1;
        status = df_weights_blend(&blended, &s->weights, (double)k / (count - 1));
        if (status == DC_OK)
            status = generate_mix(s, &blended, latents, &p->generation, &p->schedule, &progress,
                                  &frame);
        for (int64_t n = 0; status == DC_OK && n < images; n++)
            memcpy((float *)all->data + ((size_t)(n * count + k)) * floats,
                   (const float *)frame.data + (size_t)n * floats, floats * sizeof(float));
        dc_tensor_free(&frame);
    }
    df_weights_free(&blended);
    return status;
}

DC_API dc_status dc_sampler_transition(dc_sampler *sampler, const dc_tensor *x0, int count,
                                       const dc_edit_options *options, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_sampler_transition: NULL argument");
    if (count < 2 || count > 4096)
        return dci_err(DC_EINVAL, "dc_sampler_transition: %d images (2..4096: gamma 0 and 1 "
                       "are always among them)", count);
    edit_plan p;
    DCI_TRY(edit_prepare(sampler, x0, options, "dc_sampler_transition", &p));
    size_t floats = (size_t)(x0->shape[1] * x0->shape[2] * x0->shape[3]);
    dc_tensor all = *x0, latents = {0};
    all.shape[0] = x0->shape[0] * count;
    all.data = malloc((size_t)all.shape[0] * floats * sizeof(float));
    int status = all.data ? invert_latents(sampler, x0, &p, &latents)
                          : dci_err(DC_ENOMEM, "out of memory for %d transition images", count);
    if (status == DC_OK)
        status = transition_frames(sampler, &latents, count, &p, &all);
    dc_tensor_free(&latents);
    df_schedule_free(&p.schedule);
    if (status != DC_OK) {
        free(all.data);
        return (dc_status)status;
    }
    *out = all;
    return DC_OK;
}

/* ---- translation ---- */

typedef struct project_call {
    dc_sampler *sampler;
    const dc_tensor *x0;
    const edit_plan *plan;
    dc_tensor *out;
} project_call;

/* SDEdit-style projection into model 0's domain, repeated. */
static int project_run(void *args)
{
    project_call *c = args;
    const dc_edit_options *o = &c->plan->o;
    nn_unet *net = c->sampler->models[0]->net;
    api_progress progress;
    api_progress_init(&progress, o->progress, o->progress_user, "project");
    progress.report.images = o->repeats;
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = o->t0;
    g.n_steps = o->projection_steps;
    g.on_step = api_progress_step;
    g.user = &progress;
    ct_tensor *x, *x32;
    DCI_TRY(api_tensor_in(&x, c->x0, "x0", nn_unet_device(net)));
    for (int r = 0; r < o->repeats; r++) {
        progress.report.image = r + 1;
        size_t mark = ct_pool_begin();
        ct_tensor *noised = NULL, *denoised = NULL;
        /* Seeded once, before the first draw, as the published run seeds once. */
        int status = df_ddpm_forward(&c->plan->schedule, x, o->t0, NULL, r == 0, o->seed,
                                     &noised);
        if (status == DC_OK)
            status = df_generate(&c->plan->schedule, nn_unet_eps, net, noised, &g, &denoised);
        ct_pool_end(mark, &denoised, status == DC_OK ? 1 : 0);
        if (status != DC_OK)
            return status;
        ct_free(x);
        x = denoised;
    }
    DCI_TRY(ct_to(&x32, x, DC_FLOAT32, CT_CPU));
    return api_tensor_out(x32, c->out);
}

DC_API dc_status dc_sampler_translate(dc_sampler *sampler, const dc_tensor *x0,
                                      const dc_edit_options *options, dc_tensor *out,
                                      dc_tensor *projected)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_sampler_translate: NULL argument");
    edit_plan p;
    DCI_TRY(edit_prepare(sampler, x0, options, "dc_sampler_translate", &p));
    p.o.cache = NULL;
    dc_tensor projection = {0}, latents = {0};
    project_call call = {sampler, x0, &p, &projection};
    int status = api_run_pooled(project_run, &call, 0);
    if (status == DC_OK)
        status = invert_latents(sampler, &projection, &p, &latents);
    if (status == DC_OK) {
        api_progress progress;
        api_progress_init(&progress, p.o.progress, p.o.progress_user, "generate");
        status = generate_mix(sampler, &sampler->weights, &latents, &p.generation, &p.schedule,
                              &progress, out);
    }
    dc_tensor_free(&latents);
    df_schedule_free(&p.schedule);
    if (status == DC_OK && projected)
        *projected = projection;
    else
        dc_tensor_free(&projection);
    return (dc_status)status;
}
