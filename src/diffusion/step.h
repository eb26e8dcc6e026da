/* One denoising step of DiffusionCLIP's denoising_step (REFERENCE §3.2) and the loop over
 * (t -> t_next) pairs that the encoder and the generator share. The noise comes from a
 * callback, so that one model, a mix of models (noise combination) or a fine-tuned model
 * under autograd can drive the same maths. */
#ifndef DC_SRC_DIFFUSION_STEP_H
#define DC_SRC_DIFFUSION_STEP_H

#include <stddef.h>

#include "../ctorch/ctorch.h"
#include "schedule.h"

/* The noise predictor: x (N, C, H, W), t (N) float32 timesteps, both on x's device ->
 * *eps_out (N, >= C, H, W), a new handle whose first C channels are the noise (a learned
 * variance may follow). Returns a dc_status. Handles it creates land in the caller's pool. */
typedef int (*df_eps_fn)(void *ctx, const ct_tensor *x, const ct_tensor *t,
                         ct_tensor **eps_out);

typedef enum df_sampler {
    DF_SAMPLER_DDIM = 0,             /* both directions; eta > 0 only when generating */
    DF_SAMPLER_DDPM = 1              /* Markovian, unit steps only */
} df_sampler;

typedef enum df_logvar {
    DF_LOGVAR_FIXEDSMALL = 0,        /* the published models' var_type */
    DF_LOGVAR_FIXEDLARGE = 1,
    /* The second half of a 6-channel output used as a log-variance, as the reference does
     * for ADM (its bug: that output is an interpolation fraction, REFERENCE §9.4). */
    DF_LOGVAR_MODEL = 2
} df_logvar;

typedef struct df_step_params {
    df_sampler sampler;
    double eta;                      /* DDIM: 0 deterministic; > 0 needs at <= at_next */
    df_logvar logvar;                /* DDPM only */
} df_step_params;

/* x_t -> x_{t_next}; 0 <= t < T, -1 <= t_next < T (-1: the end, alpha-bar 1). Noise for
 * eta > 0 and for DDPM is drawn with ct_randn (one draw per step, as randn_like). *x0_pred,
 * when x0_pred is not NULL, receives the predicted x_0 of this step. Differentiable. */
int df_denoise_step(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x, int t,
                    int t_next, const df_step_params *p, ct_tensor **x_next,
                    ct_tensor **x0_pred);

/* What a step callback sees. x and x0 are valid during the call only (ct_clone or ct_detach
 * them to keep them); handles the callback creates land in its caller's pool, if any. */
typedef struct df_step_info {
    size_t step, steps;              /* 0-based index of this step, and the count */
    int t, t_next;
    const ct_tensor *x;              /* the new x, at t_next */
    const ct_tensor *x0;             /* the x_0 predicted at t */
} df_step_info;

/* Non-zero stops the run with DC_ECANCELLED. */
typedef int (*df_step_fn)(void *user, const df_step_info *info);

typedef struct df_step_pair {
    int t, t_next;
} df_step_pair;

/* Runs `count` steps from x; *out is a new handle. With `detach`, x is detached after each
 * step (gradient stops between steps; the callback still sees a differentiable x0). */
int df_run_steps(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x,
                 const df_step_pair *pairs, size_t count, const df_step_params *p, int detach,
                 df_step_fn on_step, void *user, ct_tensor **out);

/* ct_manual_seed(seed) when `seeded`. */
int df_maybe_seed(int seeded, uint64_t seed);

#endif
