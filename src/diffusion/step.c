#include "step.h"

#include <math.h>

#include "../core/error.h"

int df_maybe_seed(int seeded, uint64_t seed) { return seeded ? ct_manual_seed(seed) : DC_OK; }

static int check_step(const df_schedule *s, const ct_tensor *x, int t, int t_next,
                      const df_step_params *p)
{
    int T = s->num_timesteps;
    if (t < 0 || t >= T || t_next < -1 || t_next >= T)
        return dci_err(DC_EINVAL, "diffusion step %d -> %d: timesteps must be in 0..%d (-1 ends)",
                       t, t_next, T - 1);
    if (p->sampler != DF_SAMPLER_DDIM && p->sampler != DF_SAMPLER_DDPM)
        return dci_err(DC_EINVAL, "diffusion step: unknown sampler %d", (int)p->sampler);
    if (p->sampler == DF_SAMPLER_DDPM && (unsigned)p->logvar > DF_LOGVAR_MODEL)
        return dci_err(DC_EINVAL, "diffusion step: unknown log-variance %d", (int)p->logvar);
    if (!isfinite(p->eta) || p->eta < 0)
        return dci_err(DC_EINVAL, "diffusion step: eta must be finite and >= 0 (got %g)", p->eta);
    if (p->sampler == DF_SAMPLER_DDIM && p->eta > 0 && df_alpha_bar(s, t) > df_alpha_bar(s, t_next))
        return dci_err(DC_EINVAL,
                       "diffusion step %d -> %d: eta > 0 is only possible when generating "
                       "(inversion needs eta = 0)",
                       t, t_next);
    if (p->sampler == DF_SAMPLER_DDPM && t_next != t - 1)
        return dci_err(DC_EINVAL,
                       "diffusion step %d -> %d: DDPM sampling needs unit steps (0 steps: every "
                       "timestep)",
                       t, t_next);
    if (ct_ndim(x) != 4)
        return dci_err(DC_EINVAL, "diffusion step: x must be (N, C, H, W), got %d dimensions",
                       ct_ndim(x));
    return DC_OK;
}

static int predict_noise(df_eps_fn eps, void *ctx, const ct_tensor *x, int t, int need_logvar,
                         ct_tensor **et, ct_tensor **logvar)
{
    int64_t n = ct_size(x, 0), c = ct_size(x, 1);
    ct_tensor *tt, *out;
    DCI_TRY(ct_full(&tt, (double)t, DC_FLOAT32, 1, &n, ct_device(x)));
    DCI_TRY(eps(ctx, x, tt, &out));
    if (!out || ct_ndim(out) != 4 || ct_size(out, 0) != n || ct_size(out, 2) != ct_size(x, 2) ||
        ct_size(out, 3) != ct_size(x, 3) || ct_size(out, 1) < (need_logvar ? 2 * c : c))
        return dci_err(DC_EINVAL,
                       "diffusion step: the noise predictor must return (N, >= %lld, H, W) for "
                       "x of (N, %lld, H, W)",
                       (long long)(need_logvar ? 2 * c : c), (long long)c);
    if (need_logvar)
        DCI_TRY(ct_narrow(logvar, out, 1, c, c));
    if (ct_size(out, 1) == c) {
        *et = out;
        return DC_OK;
    }
    return ct_narrow(et, out, 1, 0, c);
}

static int draw_noise_like(const ct_tensor *x, ct_tensor **z)
{
    int64_t shape[4] = {ct_size(x, 0), ct_size(x, 1), ct_size(x, 2), ct_size(x, 3)};
    return ct_randn(z, ct_dtype(x), 4, shape, ct_device(x));
}

/* (x - et * sqrt(1 - at)) / sqrt(at), in the reference's float32 operations. */
static int predict_x0(const ct_tensor *x, const ct_tensor *et, float at, ct_tensor **x0)
{
    ct_tensor *scaled, *diff, *denominator;
    DCI_TRY(ct_mul_scalar(&scaled, et, (double)sqrtf(1.0f - at)));
    DCI_TRY(ct_sub(&diff, x, scaled));
    DCI_TRY(ct_scalar(&denominator, (double)sqrtf(at), DC_FLOAT32, ct_device(x)));
    return ct_div(x0, diff, denominator);
}

static int ddim_step(const ct_tensor *x, const ct_tensor *et, const ct_tensor *x0, float at,
                     float at_next, double eta, ct_tensor **x_next)
{
    ct_tensor *a, *b;
    DCI_TRY(ct_mul_scalar(&a, x0, (double)sqrtf(at_next)));
    if (eta == 0) {
        DCI_TRY(ct_mul_scalar(&b, et, (double)sqrtf(1.0f - at_next)));
        return ct_add(x_next, a, b);
    }
    float c1 = (float)eta * sqrtf((1.0f - at / at_next) * (1.0f - at_next) / (1.0f - at));
    float c2 = sqrtf((1.0f - at_next) - c1 * c1);
    ct_tensor *z, *sum, *noise;
    DCI_TRY(ct_mul_scalar(&b, et, (double)c2));
    DCI_TRY(ct_add(&sum, a, b));
    DCI_TRY(draw_noise_like(x, &z));
    DCI_TRY(ct_mul_scalar(&noise, z, (double)c1));
    return ct_add(x_next, sum, noise);
}

static int ddpm_step(const df_schedule *s, const ct_tensor *x, const ct_tensor *et,
                     const ct_tensor *model_logvar, int t, df_logvar kind, ct_tensor **x_next)
{
    float bt = s->betas[t], at = s->alphas_cumprod[t];
    float weight = bt / sqrtf(1.0f - at);
    float mask = t == 0 ? 0.0f : 1.0f;
    ct_tensor *scaled, *diff, *mean, *z, *noise;
    DCI_TRY(ct_mul_scalar(&scaled, et, (double)weight));
    DCI_TRY(ct_sub(&diff, x, scaled));
    DCI_TRY(ct_mul_scalar(&mean, diff, (double)(1.0f / sqrtf(1.0f - bt))));
    DCI_TRY(draw_noise_like(x, &z));             /* drawn at t = 0 too, as randn_like */
    if (kind == DF_LOGVAR_MODEL) {
        ct_tensor *half, *std;
        DCI_TRY(ct_mul_scalar(&half, model_logvar, 0.5));
        DCI_TRY(ct_exp(&std, half));
        DCI_TRY(ct_mul_scalar(&std, std, (double)mask));
        DCI_TRY(ct_mul(&noise, std, z));
    } else {
        float logvar = kind == DF_LOGVAR_FIXEDLARGE ? s->logvar_fixedlarge[t]
                                                    : s->logvar_fixedsmall[t];
        DCI_TRY(ct_mul_scalar(&noise, z, (double)(mask * expf(0.5f * logvar))));
    }
    return ct_add(x_next, mean, noise);
}

int df_denoise_step(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x, int t,
                    int t_next, const df_step_params *p, ct_tensor **x_next,
                    ct_tensor **x0_pred)
{
    if (!s || !s->alphas_cumprod || !eps || !x || !p || !x_next)
        return dci_err(DC_EINVAL, "diffusion step: NULL argument");
    *x_next = NULL;
    if (x0_pred)
        *x0_pred = NULL;
    DCI_TRY(check_step(s, x, t, t_next, p));
    int need_logvar = p->sampler == DF_SAMPLER_DDPM && p->logvar == DF_LOGVAR_MODEL;
    ct_tensor *et, *logvar = NULL, *x0 = NULL;
    DCI_TRY(predict_noise(eps, ctx, x, t, need_logvar, &et, &logvar));
    float at = df_alpha_bar(s, t), at_next = df_alpha_bar(s, t_next);
    if (p->sampler == DF_SAMPLER_DDIM || x0_pred)
        DCI_TRY(predict_x0(x, et, at, &x0));
    if (p->sampler == DF_SAMPLER_DDIM)
        DCI_TRY(ddim_step(x, et, x0, at, at_next, p->eta, x_next));
    else
        DCI_TRY(ddpm_step(s, x, et, logvar, t, p->logvar, x_next));
    if (x0_pred)
        *x0_pred = x0;
    return DC_OK;
}

int df_run_steps(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x,
                 const df_step_pair *pairs, size_t count, const df_step_params *p, int detach,
                 df_step_fn on_step, void *user, ct_tensor **out)
{
    if (!s || !eps || !x || !pairs || !p || !out)
        return dci_err(DC_EINVAL, "diffusion: NULL argument");
    *out = NULL;
    const ct_tensor *current = x;
    ct_tensor *owned = NULL;             /* the previous step's result; x is the caller's */
    for (size_t k = 0; k < count; k++) {
        /* A pool per step keeps only the new x (and x0 for the callback). */
        size_t mark = ct_pool_begin();
        ct_tensor *keep[2] = {NULL, NULL};
        int status = df_denoise_step(s, eps, ctx, current, pairs[k].t, pairs[k].t_next, p,
                                     &keep[0], on_step ? &keep[1] : NULL);
        if (status == DC_OK && detach)
            status = ct_detach(&keep[0], keep[0]);
        ct_pool_end(mark, keep, status == DC_OK ? (on_step ? 2 : 1) : 0);
        ct_free(owned);
        if (status != DC_OK)
            return status;
        owned = keep[0];
        current = owned;
        if (on_step) {
            df_step_info info = {.step = k, .steps = count, .t = pairs[k].t,
                                 .t_next = pairs[k].t_next, .x = keep[0], .x0 = keep[1]};
            int stop = on_step(user, &info);
            ct_free(keep[1]);
            if (stop) {
                ct_free(owned);
                return dci_err(DC_ECANCELLED, "diffusion: cancelled by the step callback at "
                               "step %zu of %zu (t %d)", k + 1, count, pairs[k].t);
            }
        }
    }
    *out = owned;
    return DC_OK;
}
