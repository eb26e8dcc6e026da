/* The public forward DDIM encoder, reverse generator and stochastic forward over one model,
 * and the reconstruction measures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../diffusion/encoder.h"
#include "../diffusion/generator.h"
#include "convert.h"
#include "diffusion_options.h"
#include "../core/error.h"
#include "handles.h"
#include "../core/options.h"
#include "progress.h"

DC_API dc_status dc_diffusion_options_init(dc_diffusion_options *options, unsigned version)
{
    return (dc_status)api_options_init(options, version, &api_diffusion_options_layout);
}

int api_model_logvar(const dc_model *model)
{
    return model && model->var_type == DC_VAR_FIXEDLARGE ? DF_LOGVAR_FIXEDLARGE
                                                          : DF_LOGVAR_FIXEDSMALL;
}

int api_diffusion_options(const dc_diffusion_options *in, int generating, const dc_model *model,
                          dc_diffusion_options *out, df_schedule *schedule)
{
    DCI_TRY(api_options_read(out, in, &api_diffusion_options_layout));
    if (out->sampling != DC_SAMPLING_DDIM && out->sampling != DC_SAMPLING_DDPM)
        return dci_err(DC_EINVAL, "unknown sampling %d", (int)out->sampling);
    if (!generating && (out->eta != 0 || out->sampling != DC_SAMPLING_DDIM))
        return dci_err(DC_EINVAL, "inversion is deterministic DDIM: eta must be 0 (got %g)",
                       out->eta);
    if (!(out->eta >= 0) || !isfinite(out->eta))
        return dci_err(DC_EINVAL, "eta must be a finite number >= 0 (got %g)", out->eta);
    if (out->sampling == DC_SAMPLING_DDPM && out->steps != 0)
        return dci_err(DC_EINVAL, "DDPM sampling runs every timestep: steps must be 0");
    if (!generating && out->steps < 2)
        return dci_err(DC_EINVAL, "inversion needs at least 2 steps (got %d)", out->steps);
    if (generating && out->steps != 0 && out->steps < 2)
        return dci_err(DC_EINVAL, "generation needs at least 2 steps, or 0 for every timestep "
                       "(got %d)", out->steps);
    if (out->num_timesteps == 0)
        out->num_timesteps = model ? model->num_timesteps : DF_DEFAULT_TIMESTEPS;
    if (out->beta_start == 0)
        out->beta_start = model ? model->beta_start : DF_DEFAULT_BETA_START;
    if (out->beta_end == 0)
        out->beta_end = model ? model->beta_end : DF_DEFAULT_BETA_END;
    DCI_TRY(df_schedule_init_linear(schedule, out->beta_start, out->beta_end,
                                    out->num_timesteps));
    if (out->t0 < 1 || out->t0 >= out->num_timesteps) {
        df_schedule_free(schedule);
        return dci_err(DC_EINVAL, "t0 must be in 1..%d (got %d)", out->num_timesteps - 1,
                       out->t0);
    }
    return DC_OK;
}

/* ---- inversion and generation with one model ---- */

typedef struct sample_call {
    dc_model *model;
    const dc_tensor *in;
    dc_tensor *out;
    dc_diffusion_options options;
    df_schedule schedule;
    int generating;
} sample_call;

static int sample_run(void *args)
{
    sample_call *c = args;
    nn_unet *net = c->model->net;
    api_progress progress;
    api_progress_init(&progress, c->options.progress, c->options.progress_user,
                      c->generating ? "generate" : "invert");
    ct_tensor *x, *y, *y32;
    DCI_TRY(api_tensor_in(&x, c->in, c->generating ? "latent" : "x0", nn_unet_device(net)));
    if (c->generating) {
        df_generate_options g;
        df_generate_options_init(&g);
        g.t0 = c->options.t0;
        g.n_steps = c->options.steps;
        g.sampler = c->options.sampling == DC_SAMPLING_DDPM ? DF_SAMPLER_DDPM : DF_SAMPLER_DDIM;
        g.eta = c->options.eta;
        g.logvar = api_model_logvar(c->model);
        g.seeded = 1;
        g.seed = c->options.seed;
        g.on_step = api_progress_step;
        g.user = &progress;
        DCI_TRY(df_generate(&c->schedule, nn_unet_eps, net, x, &g, &y));
    } else {
        DCI_TRY(df_ddim_invert(&c->schedule, nn_unet_eps, net, x, c->options.t0,
                               c->options.steps, api_progress_step, &progress, &y));
    }
    DCI_TRY(ct_to(&y32, y, DC_FLOAT32, CT_CPU));
    return api_tensor_out(y32, c->out);
}

static dc_status sample(dc_model *model, const dc_tensor *in, const dc_diffusion_options *o,
                        dc_tensor *out, int generating)
{
    if (!model || !out)
        return dci_err(DC_EINVAL, "%s: NULL argument", generating ? "dc_generate" : "dc_invert");
    DCI_TRY(api_check_images(model, in, generating ? "latent" : "x0"));
    sample_call call = {.model = model, .in = in, .out = out, .generating = generating};
    DCI_TRY(api_diffusion_options(o, generating, model, &call.options, &call.schedule));
    int status = api_run_pooled(sample_run, &call, 0);
    df_schedule_free(&call.schedule);
    return (dc_status)status;
}

DC_API dc_status dc_invert(dc_model *model, const dc_tensor *x0,
                           const dc_diffusion_options *options, dc_tensor *latent)
{
    return sample(model, x0, options, latent, 0);
}

DC_API dc_status dc_generate(dc_model *model, const dc_tensor *latent,
                             const dc_diffusion_options *options, dc_tensor *out)
{
    return sample(model, latent, options, out, 1);
}

/* ---- stochastic forward ---- */

typedef struct noise_call {
    const dc_tensor *x0, *noise;
    dc_tensor *out;
    dc_diffusion_options options;
    df_schedule schedule;
} noise_call;

static int noise_run(void *args)
{
    noise_call *c = args;
    ct_tensor *x0, *noise = NULL, *xt;
    DCI_TRY(api_tensor_in(&x0, c->x0, "x0", CT_CPU));
    if (c->noise)
        DCI_TRY(api_tensor_in(&noise, c->noise, "noise", CT_CPU));
    DCI_TRY(df_ddpm_forward(&c->schedule, x0, c->options.t0, noise, 1, c->options.seed, &xt));
    return api_tensor_out(xt, c->out);
}

DC_API dc_status dc_add_noise(const dc_tensor *x0, const dc_tensor *noise,
                              const dc_diffusion_options *options, dc_tensor *xt)
{
    if (!x0 || !xt)
        return dci_err(DC_EINVAL, "dc_add_noise: NULL argument");
    /* The ranks are checked before the shapes are compared over them. */
    DCI_TRY(api_check_tensor(x0, "x0"));
    if (noise)
        DCI_TRY(api_check_tensor(noise, "noise"));
    if (x0->dtype != DC_FLOAT32 || x0->ndim < 1)
        return dci_err(DC_EINVAL, "x0 must be a float32 array");
    if (noise && (noise->dtype != DC_FLOAT32 || noise->ndim != x0->ndim ||
                  memcmp(noise->shape, x0->shape, (size_t)x0->ndim * sizeof x0->shape[0])))
        return dci_err(DC_EINVAL, "noise must be float32 with x0's shape");
    noise_call call = {.x0 = x0, .noise = noise, .out = xt};
    /* The stochastic forward may reach t0 = T (alpha-bar[T - 1]): validate as generation. */
    DCI_TRY(api_diffusion_options(options, 1, NULL, &call.options, &call.schedule));
    int status = api_run_pooled(noise_run, &call, 0);
    df_schedule_free(&call.schedule);
    return (dc_status)status;
}

/* ---- reconstruction measures ---- */

enum { SSIM_RADIUS = 5 };

/* Gaussian-weighted mean of an H x W plane over every full 11 x 11 window (separable). */
static void window_means(const double *plane, int64_t h, int64_t w, const double *g,
                         double *tmp, double *out)
{
    int64_t ow = w - 2 * SSIM_RADIUS, oh = h - 2 * SSIM_RADIUS;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < ow; x++) {
            double s = 0;
            for (int k = 0; k <= 2 * SSIM_RADIUS; k++)
                s += g[k] * plane[y * w + x + k];
            tmp[y * ow + x] = s;
        }
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            double s = 0;
            for (int k = 0; k <= 2 * SSIM_RADIUS; k++)
                s += g[k] * tmp[(y + k) * ow + x];
            out[y * ow + x] = s;
        }
}

/* SSIM of two planes in [0, 1], as skimage's structural_similarity with gaussian_weights,
 * sigma 1.5, use_sample_covariance False and data_range 1 (whose reflect-padded borders it
 * crops, leaving exactly the full windows). */
static double plane_ssim(const float *a, const float *b, int64_t h, int64_t w, double *work)
{
    double g[2 * SSIM_RADIUS + 1], sum = 0;
    for (int k = -SSIM_RADIUS; k <= SSIM_RADIUS; k++)
        sum += g[k + SSIM_RADIUS] = exp(-(double)(k * k) / (2 * 1.5 * 1.5));
    for (int k = 0; k <= 2 * SSIM_RADIUS; k++)
        g[k] /= sum;
    int64_t n = h * w, m = (h - 2 * SSIM_RADIUS) * (w - 2 * SSIM_RADIUS);
    double *pa = work, *pb = pa + n, *prod = pb + n, *tmp = prod + n;
    double *mu[5];
    for (int i = 0; i < 5; i++)
        mu[i] = tmp + n + i * m;
    for (int64_t i = 0; i < n; i++) {
        pa[i] = ((double)a[i] + 1) / 2;
        pb[i] = ((double)b[i] + 1) / 2;
    }
    window_means(pa, h, w, g, tmp, mu[0]);
    window_means(pb, h, w, g, tmp, mu[1]);
    for (int64_t i = 0; i < n; i++)
        prod[i] = pa[i] * pa[i];
    window_means(prod, h, w, g, tmp, mu[2]);
    for (int64_t i = 0; i < n; i++)
        prod[i] = pb[i] * pb[i];
    window_means(prod, h, w, g, tmp, mu[3]);
    for (int64_t i = 0; i < n; i++)
        prod[i] = pa[i] * pb[i];
    window_means(prod, h, w, g, tmp, mu[4]);
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
    double total = 0;
    for (int64_t i = 0; i < m; i++) {
        double ma = mu[0][i], mb = mu[1][i];
        double va = mu[2][i] - ma * ma, vb = mu[3][i] - mb * mb, cov = mu[4][i] - ma * mb;
        total += ((2 * ma * mb + c1) * (2 * cov + c2)) /
                 ((ma * ma + mb * mb + c1) * (va + vb + c2));
    }
    return total / (double)m;
}

DC_API dc_status dc_compare_images(const dc_tensor *a, const dc_tensor *b,
                                   dc_image_metrics *metrics)
{
    if (!a || !b || !metrics)
        return dci_err(DC_EINVAL, "dc_compare_images: NULL argument");
    DCI_TRY(api_check_tensor(a, "first image"));
    DCI_TRY(api_check_tensor(b, "second image"));
    if (a->dtype != DC_FLOAT32 || b->dtype != DC_FLOAT32 || a->ndim != 4 || b->ndim != 4 ||
        memcmp(a->shape, b->shape, 4 * sizeof a->shape[0]))
        return dci_err(DC_EINVAL, "images to compare must be float32 NCHW of the same shape");
    int64_t h = a->shape[2], w = a->shape[3], planes = a->shape[0] * a->shape[1];
    if (h <= 2 * SSIM_RADIUS || w <= 2 * SSIM_RADIUS || planes < 1)
        return dci_err(DC_EINVAL, "images to compare must be at least %dx%d",
                       2 * SSIM_RADIUS + 1, 2 * SSIM_RADIUS + 1);
    int64_t n = h * w;
    double *work = malloc((size_t)(4 * n + 5 * n) * sizeof *work);
    if (!work)
        return dci_err(DC_ENOMEM, "out of memory comparing images");
    const float *pa = a->data, *pb = b->data;
    double abs_sum = 0, sq_sum = 0, ssim_sum = 0;
    for (int64_t p = 0; p < planes; p++) {
        for (int64_t i = 0; i < n; i++) {
            double d = ((double)pa[p * n + i] - (double)pb[p * n + i]) / 2;
            abs_sum += fabs(d);
            sq_sum += d * d;
        }
        ssim_sum += plane_ssim(pa + p * n, pb + p * n, h, w, work);
    }
    free(work);
    double count = (double)(planes * n), mse = sq_sum / count;
    metrics->mae = abs_sum / count;
    metrics->psnr = mse > 0 ? 10 * log10(1 / mse) : INFINITY;
    metrics->ssim = ssim_sum / (double)planes;
    return DC_OK;
}
