/* From an image to a latent (REFERENCE §3.3): deterministic DDIM inversion, and the
 * stochastic DDPM forward of SDEdit-style editing. */
#ifndef DC_SRC_DIFFUSION_ENCODER_H
#define DC_SRC_DIFFUSION_ENCODER_H

#include <stdint.h>

#include "step.h"

/* DDIM inversion (eta 0) of x0 (N, C, H, W) to timestep t0 (1 <= t0 < T) in n_steps >= 2
 * steps: the n_steps - 1 pairs seq[k-1] -> seq[k], the model evaluated at the smaller t; the
 * latent lives at index t0. on_step may be NULL. *x_lat is a new handle. */
int df_ddim_invert(const df_schedule *s, df_eps_fn eps, void *ctx, const ct_tensor *x0, int t0,
                   int n_steps, df_step_fn on_step, void *user, ct_tensor **x_lat);

/* x_t = sqrt(abar[t0 - 1]) x0 + sqrt(1 - abar[t0 - 1]) noise, 1 <= t0 <= T (note the index
 * t0 - 1, one below the inversion's). `noise` has x0's shape; NULL draws it with ct_randn,
 * after ct_manual_seed(seed) when `seeded`. */
int df_ddpm_forward(const df_schedule *s, const ct_tensor *x0, int t0, const ct_tensor *noise,
                    int seeded, uint64_t seed, ct_tensor **x_t);

#endif
