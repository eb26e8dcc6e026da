/* From a latent back to an image (REFERENCE §3.2, §3.3): reverse DDIM (with eta) or
 * Markovian DDPM sampling, with or without autograd. */
#ifndef DC_SRC_DIFFUSION_GENERATOR_H
#define DC_SRC_DIFFUSION_GENERATOR_H

#include <stdint.h>

#include "step.h"

typedef struct df_generate_options {
    int t0;                          /* the latent's timestep */
    /* >= 2: the pairs seq[k] -> seq[k-1] from k = n - 1 down, the last to -1 (n model
     * calls); 0: every timestep from t0 - 1 down to 0 ("no skip", the only setting that
     * DDPM sampling accepts). */
    int n_steps;
    df_sampler sampler;
    double eta;                      /* DDIM stochasticity (0: deterministic) */
    df_logvar logvar;                /* DDPM sampling */
    int seeded;                      /* ct_manual_seed(seed) before the first step */
    uint64_t seed;
    /* GPU-efficient fine-tuning: detach x after each step, so that the callback can
     * backpropagate a loss on each step's x0 through that step only. */
    int detach_each_step;
    df_step_fn on_step;              /* may be NULL */
    void *user;
} df_generate_options;

/* t0 500, 40 steps, DDIM, eta 0, fixedsmall, unseeded, no callback. */
void df_generate_options_init(df_generate_options *o);

/* The (t -> t_next) pairs df_generate runs for these options, checked as it checks them:
 * *pairs (malloc'd, the caller frees) holds *count of them. */
int df_generate_pairs(const df_schedule *s, const df_generate_options *o, df_step_pair **pairs,
                      size_t *count);

/* Generates from x_t (N, C, H, W) at o->t0 (t0 < T, or t0 <= T with every step). *x0 is a
 * new handle. Under grad mode the result carries the graph through every step. */
int df_generate(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x_t,
                const df_generate_options *o, ct_tensor **x0);

#endif
