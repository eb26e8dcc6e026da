#include "schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

/* i * step + start exactly as numpy evaluates it: the product is rounded before the sum
 * (the volatile keeps a compiler from fusing them into one FMA, which rounds once). */
static double linspace_at(double start, double step, int i)
{
    volatile double product = (double)i * step;
    return product + start;
}

int df_schedule_init_linear(df_schedule *s, double beta_start, double beta_end, int T)
{
    if (!s)
        return dci_err(DC_EINVAL, "schedule: NULL argument");
    memset(s, 0, sizeof *s);
    if (!(isfinite(beta_start) && isfinite(beta_end) && beta_start > 0 &&
          beta_start <= beta_end && beta_end < 1))
        return dci_err(DC_EINVAL, "schedule: betas must satisfy 0 < start (%g) <= end (%g) < 1",
                       beta_start, beta_end);
    if (T < 2 || T > DF_MAX_TIMESTEPS)
        return dci_err(DC_EINVAL, "schedule: %d timesteps (expected 2..%d)", T,
                       DF_MAX_TIMESTEPS);

    size_t n = (size_t)T;
    double *betas64 = malloc(n * sizeof *betas64);
    double *post_var = malloc(n * sizeof *post_var);
    s->betas = malloc(n * sizeof *s->betas);
    s->alphas_cumprod = malloc(n * sizeof *s->alphas_cumprod);
    s->logvar_fixedsmall = malloc(n * sizeof *s->logvar_fixedsmall);
    s->logvar_fixedlarge = malloc(n * sizeof *s->logvar_fixedlarge);
    if (!betas64 || !post_var || !s->betas || !s->alphas_cumprod || !s->logvar_fixedsmall ||
        !s->logvar_fixedlarge) {
        free(betas64);
        free(post_var);
        df_schedule_free(s);
        return dci_err(DC_ENOMEM, "schedule: out of memory for %d timesteps", T);
    }
    s->num_timesteps = T;

    double step = (beta_end - beta_start) / (double)(T - 1);
    for (int i = 0; i < T; i++)
        betas64[i] = linspace_at(beta_start, step, i);
    betas64[T - 1] = beta_end;                      /* np.linspace sets the endpoint exactly */

    /* The UNet-side alpha-bar: float32 betas, float32 (1 - beta), float64 accumulator. */
    double acc32 = 1.0;
    /* The numpy-side alpha-bar of the log-variances: everything in float64. */
    double acc64 = 1.0, prev64 = 1.0;
    for (int i = 0; i < T; i++) {
        s->betas[i] = (float)betas64[i];
        float one_minus = 1.0f - s->betas[i];
        acc32 *= (double)one_minus;
        s->alphas_cumprod[i] = (float)acc32;

        acc64 *= 1.0 - betas64[i];
        post_var[i] = betas64[i] * (1.0 - prev64) / (1.0 - acc64);
        prev64 = acc64;
    }
    for (int i = 0; i < T; i++) {
        s->logvar_fixedsmall[i] = (float)log(fmax(post_var[i], 1e-20));
        s->logvar_fixedlarge[i] = (float)log(i == 0 ? post_var[1] : betas64[i]);
    }
    free(betas64);
    free(post_var);
    return DC_OK;
}

int df_schedule_init_default(df_schedule *s)
{
    return df_schedule_init_linear(s, DF_DEFAULT_BETA_START, DF_DEFAULT_BETA_END,
                                   DF_DEFAULT_TIMESTEPS);
}

void df_schedule_free(df_schedule *s)
{
    if (!s)
        return;
    free(s->betas);
    free(s->alphas_cumprod);
    free(s->logvar_fixedsmall);
    free(s->logvar_fixedlarge);
    memset(s, 0, sizeof *s);
}

float df_alpha_bar(const df_schedule *s, int t) { return t < 0 ? 1.0f : s->alphas_cumprod[t]; }

int df_step_sequence(int t0, int n, int *seq, size_t cap, size_t *count)
{
    if (!count)
        return dci_err(DC_EINVAL, "step sequence: NULL count");
    *count = 0;
    if (n < 0 || n == 1)
        return dci_err(DC_EINVAL, "step sequence: %d steps (expected 0 for every step, or >= 2)",
                       n);
    if (t0 < 1)
        return dci_err(DC_EINVAL, "step sequence: t_0 is %d (expected >= 1)", t0);
    size_t len = n == 0 ? (size_t)t0 : (size_t)n;
    if (seq && cap < len)
        return dci_err(DC_EINVAL, "step sequence: %zu steps do not fit in %zu", len, cap);
    if (seq) {
        if (n == 0) {
            for (int i = 0; i < t0; i++)
                seq[i] = i;
        } else {
            double unit = 1.0 / (double)(n - 1);     /* np.linspace(0, 1, n) */
            for (int i = 0; i < n - 1; i++)
                seq[i] = (int)((double)i * unit * (double)t0);
            seq[n - 1] = t0;
        }
    }
    *count = len;
    return DC_OK;
}
