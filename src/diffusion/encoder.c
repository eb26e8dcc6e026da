#include "encoder.h"

#include <math.h>
#include <stdlib.h>

#include "../core/error.h"

int df_ddim_invert(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x0, int t0,
                   int n_steps, df_step_fn on_step, void *user, ct_tensor **x_lat)
{
    if (!s || !s->alphas_cumprod || !eps || !x0 || !x_lat)
        return dci_err(DC_EINVAL, "inversion: NULL argument");
    *x_lat = NULL;
    if (t0 < 1 || t0 >= s->num_timesteps)
        return dci_err(DC_EINVAL, "inversion: t_0 %d is outside 1..%d", t0,
                       s->num_timesteps - 1);
    if (n_steps < 2)
        return dci_err(DC_EINVAL, "inversion: %d steps (at least 2)", n_steps);
    if (n_steps > s->num_timesteps)
        return dci_err(DC_EINVAL, "inversion: %d steps for %d timesteps", n_steps,
                       s->num_timesteps);
    int *seq = malloc((size_t)n_steps * sizeof *seq);
    df_step_pair *pairs = malloc((size_t)n_steps * sizeof *pairs);
    size_t count = 0;
    int status = seq && pairs ? DC_OK : dci_err(DC_ENOMEM, "inversion: out of memory");
    if (status == DC_OK)
        status = df_step_sequence(t0, n_steps, seq, (size_t)n_steps, &count);
    if (status == DC_OK) {
        for (size_t k = 1; k < count; k++)
            pairs[k - 1] = (df_step_pair){.t = seq[k - 1], .t_next = seq[k]};
        df_step_params p = {.sampler = DF_SAMPLER_DDIM, .eta = 0.0};
        status = df_run_steps(s, eps, ctx, x0, pairs, count - 1, &p, 0, on_step, user, x_lat);
    }
    free(seq);
    free(pairs);
    return status;
}

static int same_shape(const ct_tensor *a, const ct_tensor *b)
{
    if (ct_ndim(a) != ct_ndim(b))
        return 0;
    for (int d = 0; d < ct_ndim(a); d++)
        if (ct_size(a, d) != ct_size(b, d))
            return 0;
    return 1;
}

int df_ddpm_forward(const df_schedule *s, const ct_tensor *x0, int t0, const ct_tensor *noise,
                    int seeded, uint64_t seed, ct_tensor **x_t)
{
    if (!s || !s->alphas_cumprod || !x0 || !x_t)
        return dci_err(DC_EINVAL, "stochastic forward: NULL argument");
    *x_t = NULL;
    if (t0 < 1 || t0 > s->num_timesteps)
        return dci_err(DC_EINVAL, "stochastic forward: t_0 %d is outside 1..%d", t0,
                       s->num_timesteps);
    if (noise && !same_shape(noise, x0))
        return dci_err(DC_EINVAL, "stochastic forward: the noise and x0 shapes differ");
    float at = df_alpha_bar(s, t0 - 1);
    size_t mark = ct_pool_begin();
    ct_tensor *z = (ct_tensor *)noise, *a = NULL, *b = NULL, *sum = NULL;
    int status = DC_OK;
    if (!z) {
        int64_t shape[DC_MAX_DIMS];
        int ndim = ct_ndim(x0);
        for (int d = 0; d < ndim && d < DC_MAX_DIMS; d++)
            shape[d] = ct_size(x0, d);
        status = df_maybe_seed(seeded, seed);
        if (status == DC_OK)
            status = ct_randn(&z, ct_dtype(x0), ndim, shape, ct_device(x0));
    }
    if (status == DC_OK)
        status = ct_mul_scalar(&a, x0, (double)sqrtf(at));
    if (status == DC_OK)
        status = ct_mul_scalar(&b, z, (double)sqrtf(1.0f - at));
    if (status == DC_OK)
        status = ct_add(&sum, a, b);
    ct_pool_end(mark, &sum, status == DC_OK ? 1 : 0);
    if (status == DC_OK)
        *x_t = sum;
    return status;
}
