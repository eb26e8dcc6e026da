/* Noise combination (REFERENCE §3.2 (b), §3.6): the noise of M predictors mixed as
 * eps(x, t) = sum_i gamma_i(t) eps_i(x, t), with weights that are constant, piecewise in t
 * (the published hybrid config) or a linear ramp in t, and sum to 1 at every t. The mix is
 * itself a df_eps_fn, so that the encoder and the generator run it unchanged. */
#ifndef DC_SRC_DIFFUSION_COMBINE_H
#define DC_SRC_DIFFUSION_COMBINE_H

#include <stddef.h>

#include "step.h"

/* |sum of the weights - 1| allowed at any t. */
#define DF_WEIGHT_SUM_TOLERANCE 1e-6
/* Most models one mix takes, and most pieces of a piecewise schedule. */
#define DF_MAX_MODELS 64
#define DF_MAX_PIECES 1024

typedef enum df_weights_kind {
    DF_WEIGHTS_CONSTANT = 0,         /* one vector */
    DF_WEIGHTS_PIECEWISE = 1,        /* vector k at t >= thresholds[k], highest first */
    DF_WEIGHTS_RAMP = 2              /* linear in t between (t_a, vector 0), (t_b, vector 1) */
} df_weights_kind;

typedef struct df_weights {
    df_weights_kind kind;
    size_t count;                    /* weights per vector: the number of predictors */
    size_t vectors;                  /* constant 1, ramp 2, piecewise one per threshold */
    int *thresholds;                 /* piecewise: descending; ramp: t_a < t_b */
    double *values;                  /* vectors x count, row-major */
} df_weights;

/* Constructors check that every value is finite, that each vector sums to 1 within
 * DF_WEIGHT_SUM_TOLERANCE (the message names the t where it does not) and, for a piecewise
 * schedule, that thresholds are distinct and that one is <= 0 (generation ends at t = 0).
 * Thresholds may be given in any order; they are applied highest first. A ramp takes
 * vector `a` at t <= t_a, `b` at t >= t_b and (1 - s) a + s b with s = (t - t_a) / (t_b -
 * t_a) between (t_a may be above t_b: the ramp then runs the other way). *w is replaced only
 * on success; free it with df_weights_free. */
int df_weights_constant(df_weights *w, size_t count, const double *values);
int df_weights_piecewise(df_weights *w, size_t count, size_t pieces, const int *thresholds,
                         const double *values);
int df_weights_ramp(df_weights *w, size_t count, int t_a, const double *a, int t_b,
                    const double *b);
void df_weights_free(df_weights *w);             /* NULL and zeroed schedules are fine */
int df_weights_copy(df_weights *dst, const df_weights *src);

/* (1 - gamma) e_0 + gamma w: from predictor 0 alone (gamma 0) to `w` (gamma 1), each vector
 * (and so every t) blended, 0 <= gamma <= 1. */
int df_weights_blend(df_weights *dst, const df_weights *w, double gamma);

/* The weights at timestep t into out[count]; DC_EINVAL naming t when they do not sum to 1. */
int df_weights_at(const df_weights *w, int t, double *out);

typedef struct df_predictor {
    df_eps_fn fn;
    void *ctx;
} df_predictor;

/* The ctx of df_combine_eps. Every predictor gives the same number of channels. */
typedef struct df_combine {
    const df_predictor *predictors;
    size_t count;
    const df_weights *weights;       /* count weights per vector */
} df_combine;

/* A df_eps_fn: sum_i gamma_i(t) eps_i(x, t) in float32 on x's device, with the full
 * outputs weighted (a learned variance is mixed with the same weights, as published) and
 * predictors of weight 0 not evaluated. Predictors run one after another, each one's
 * activations freed before the next, so a mix needs one set of activations. t is the
 * step's timestep for the whole batch (its first entry is read). */
int df_combine_eps(void *ctx, const ct_tensor *x, const ct_tensor *t, ct_tensor **eps_out);

#endif
