/* dc_latent_cache: the public cache of inversions over src/cache/latent_cache.c. */
#include <stdlib.h>
#include <string.h>

#include "../diffusion/encoder.h"
#include "../diffusion/generator.h"
#include "convert.h"
#include "diffusion_options.h"
#include "../core/error.h"
#include "handles.h"
#include "progress.h"

DC_API dc_status dc_latent_cache_open(dc_latent_cache **out, const char *path, dc_model *model,
                                      const dc_diffusion_options *inversion, int gen_steps)
{
    if (!out || !path || !model)
        return dci_err(DC_EINVAL, "dc_latent_cache_open: NULL argument");
    *out = NULL;
    if (gen_steps < 2)
        return dci_err(DC_EINVAL, "%s: reconstruction needs at least 2 steps (got %d)", path,
                       gen_steps);
    dc_latent_cache *c = calloc(1, sizeof *c);
    if (!c)
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    int status = api_diffusion_options(inversion, 0, model, &c->inversion, &c->schedule);
    if (status != DC_OK) {
        free(c);
        return (dc_status)status;
    }
    const nn_unet_info *info = nn_unet_get_info(model->net);
    c->model = model;
    c->gen_steps = gen_steps;
    c->channels = info->in_channels;
    /* The size is the file's, or the first image's: arrays of any size the UNet takes. */
    latent_cache_key key = {.t0 = c->inversion.t0,
                            .inv_steps = c->inversion.steps,
                            .gen_steps = gen_steps,
                            .num_timesteps = c->inversion.num_timesteps,
                            .beta_start = c->inversion.beta_start,
                            .beta_end = c->inversion.beta_end,
                            .channels = (int32_t)c->channels};
    memcpy(key.model_fingerprint, model->fingerprint, sizeof key.model_fingerprint);
    status = latent_cache_open(&c->file, path, &key);
    if (status != DC_OK) {
        dc_latent_cache_free(c);
        return (dc_status)status;
    }
    *out = c;
    return DC_OK;
}

DC_API void dc_latent_cache_free(dc_latent_cache *cache)
{
    if (!cache)
        return;
    latent_cache_free(cache->file);
    df_schedule_free(&cache->schedule);
    free(cache);
}

DC_API size_t dc_latent_cache_count(const dc_latent_cache *cache)
{
    return cache ? latent_cache_count(cache->file) : 0;
}

typedef struct add_call {
    dc_latent_cache *cache;
    const dc_tensor *x0;
} add_call;

static int add_run(void *args)
{
    add_call *a = args;
    dc_latent_cache *c = a->cache;
    nn_unet *net = c->model->net;
    api_progress progress;
    api_progress_init(&progress, c->inversion.progress, c->inversion.progress_user, "invert");
    ct_tensor *x0, *lat, *rec, *lat_host, *rec_host;
    DCI_TRY(api_tensor_in(&x0, a->x0, "x0", nn_unet_device(net)));
    DCI_TRY(df_ddim_invert(&c->schedule, nn_unet_eps, net, x0, c->inversion.t0,
                           c->inversion.steps, api_progress_step, &progress, &lat));
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = c->inversion.t0;
    g.n_steps = c->gen_steps;
    g.on_step = api_progress_step;
    g.user = &progress;
    progress.report.stage = "reconstruct";
    DCI_TRY(df_generate(&c->schedule, nn_unet_eps, net, lat, &g, &rec));
    DCI_TRY(ct_to(&lat_host, lat, DC_FLOAT32, CT_CPU));
    DCI_TRY(ct_to(&rec_host, rec, DC_FLOAT32, CT_CPU));
    size_t n = (size_t)(c->channels * a->x0->shape[2] * a->x0->shape[3]);
    float *buffers = malloc(2 * n * sizeof *buffers);
    if (!buffers)
        return dci_err(DC_ENOMEM, "out of memory");
    int status = ct_to_host(rec_host, buffers, n * sizeof *buffers);
    if (status == DC_OK)
        status = ct_to_host(lat_host, buffers + n, n * sizeof *buffers);
    if (status == DC_OK)
        status = latent_cache_append(c->file, a->x0->data, buffers, buffers + n);
    free(buffers);
    return status;
}

DC_API dc_status dc_latent_cache_add(dc_latent_cache *cache, const dc_tensor *x0, size_t *index)
{
    if (!cache || !index)
        return dci_err(DC_EINVAL, "dc_latent_cache_add: NULL argument");
    DCI_TRY(api_check_images(cache->model, x0, "x0"));
    if (x0->shape[0] != 1)
        return dci_err(DC_EINVAL, "x0 must be one image (1, %lld, H, W), not %lld",
                       (long long)cache->channels, (long long)x0->shape[0]);
    int32_t height, width;
    latent_cache_size(cache->file, &height, &width);
    if (height && (x0->shape[2] != height || x0->shape[3] != width))
        return dci_err(DC_EINVAL, "x0 is %lldx%lld; this latent cache holds %dx%d images (one "
                       "cache per image size)", (long long)x0->shape[2],
                       (long long)x0->shape[3], (int)height, (int)width);
    int found = 0;
    if (!height)
        DCI_TRY(latent_cache_set_size(cache->file, (int32_t)x0->shape[2], (int32_t)x0->shape[3]));
    else
        DCI_TRY(latent_cache_find(cache->file, x0->data, index, &found));
    if (found)
        return DC_OK;
    add_call call = {cache, x0};
    DCI_TRY(api_run_pooled(add_run, &call, 0));
    *index = latent_cache_count(cache->file) - 1;
    return DC_OK;
}

DC_API dc_status dc_latent_cache_get(const dc_latent_cache *cache, size_t index, dc_tensor *x0,
                                     dc_tensor *x_rec, dc_tensor *x_lat)
{
    if (!cache)
        return dci_err(DC_EINVAL, "dc_latent_cache_get: NULL argument");
    dc_tensor *outputs[3] = {x0, x_rec, x_lat};
    float *data[3] = {NULL, NULL, NULL};
    int32_t height, width;
    latent_cache_size(cache->file, &height, &width);
    size_t n = (size_t)cache->channels * (size_t)height * (size_t)width;
    if (index >= latent_cache_count(cache->file))
        return dci_err(DC_EINVAL, "latent cache entry %zu does not exist", index);
    for (int k = 0; k < 3; k++)
        if (outputs[k] && !(data[k] = malloc(n * sizeof(float)))) {
            for (int j = 0; j < k; j++)
                free(data[j]);
            return dci_err(DC_ENOMEM, "out of memory");
        }
    int status = latent_cache_get(cache->file, index, data[0], data[1], data[2]);
    for (int k = 0; k < 3; k++) {
        if (!outputs[k])
            continue;
        if (status != DC_OK) {
            free(data[k]);
            continue;
        }
        dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 4,
                       .shape = {1, cache->channels, height, width}, .data = data[k]};
        *outputs[k] = t;
    }
    return (dc_status)status;
}

int api_latent_cache_check(const dc_latent_cache *cache, const dc_model *model,
                           const dc_diffusion_options *inversion)
{
    const dc_diffusion_options *c = &cache->inversion;
    if (memcmp(cache->model->fingerprint, model->fingerprint, sizeof model->fingerprint))
        return dci_err(DC_EINVAL, "the latent cache was made with another model (%s, not %s)",
                       cache->model->path, model->path);
    if (c->t0 != inversion->t0 || c->steps != inversion->steps)
        return dci_err(DC_EINVAL, "the latent cache inverts to t0 %d in %d steps, not t0 %d in "
                       "%d steps", c->t0, c->steps, inversion->t0, inversion->steps);
    if (c->num_timesteps != inversion->num_timesteps || c->beta_start != inversion->beta_start ||
        c->beta_end != inversion->beta_end)
        return dci_err(DC_EINVAL, "the latent cache was made with another noise schedule");
    return DC_OK;
}
