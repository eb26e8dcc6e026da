#include "generator.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

void df_generate_options_init(df_generate_options *o)
{
    memset(o, 0, sizeof *o);
    o->t0 = 500;
    o->n_steps = 40;
    o->sampler = DF_SAMPLER_DDIM;
    o->logvar = DF_LOGVAR_FIXEDSMALL;
}

int df_generate_pairs(const df_schedule *s, const df_generate_options *o, df_step_pair **pairs,
                      size_t *count)
{
    if (!s || !o || !pairs || !count)
        return dci_err(DC_EINVAL, "generation: NULL argument");
    *pairs = NULL;
    *count = 0;
    int T = s->num_timesteps;
    if (o->n_steps != 0 && (o->n_steps < 2 || o->n_steps > T))
        return dci_err(DC_EINVAL, "generation: %d steps (0 for every step, or 2..%d)",
                       o->n_steps, T);
    int t0_max = o->n_steps == 0 ? T : T - 1;
    if (o->t0 < 1 || o->t0 > t0_max)
        return dci_err(DC_EINVAL, "generation: t_0 %d is outside 1..%d", o->t0, t0_max);
    if (o->sampler == DF_SAMPLER_DDPM && o->n_steps != 0)
        return dci_err(DC_EINVAL, "generation: DDPM sampling needs every step (n_steps 0), "
                       "got %d steps", o->n_steps);

    size_t len = o->n_steps == 0 ? (size_t)o->t0 : (size_t)o->n_steps, n = 0;
    int *seq = malloc(len * sizeof *seq);
    df_step_pair *out = malloc(len * sizeof *out);
    int status = seq && out ? DC_OK : dci_err(DC_ENOMEM, "generation: out of memory");
    if (status == DC_OK)
        status = df_step_sequence(o->t0, o->n_steps, seq, len, &n);
    for (size_t i = 0; status == DC_OK && i < n; i++) {
        size_t k = n - 1 - i;
        out[i] = (df_step_pair){.t = seq[k], .t_next = k ? seq[k - 1] : -1};
    }
    free(seq);
    if (status != DC_OK) {
        free(out);
        return status;
    }
    *pairs = out;
    *count = n;
    return DC_OK;
}

int df_generate(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x_t,
                const df_generate_options *o, ct_tensor **x0)
{
    if (!s || !s->alphas_cumprod || !eps || !x_t || !o || !x0)
        return dci_err(DC_EINVAL, "generation: NULL argument");
    *x0 = NULL;
    df_step_pair *pairs;
    size_t count;
    DCI_TRY(df_generate_pairs(s, o, &pairs, &count));
    int status = df_maybe_seed(o->seeded, o->seed);
    if (status == DC_OK) {
        df_step_params p = {.sampler = o->sampler, .eta = o->eta, .logvar = o->logvar};
        status = df_run_steps(s, eps, ctx, x_t, pairs, count, &p, o->detach_each_step,
                              o->on_step, o->user, x0);
    }
    free(pairs);
    return status;
}
