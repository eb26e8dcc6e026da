/* The diffusion noise schedule and timestep sequences (REFERENCE §3.1, §3.3), on the host.
 * Pure C: the samplers turn these numbers into per-step scalars. */
#ifndef DC_SRC_DIFFUSION_SCHEDULE_H
#define DC_SRC_DIFFUSION_SCHEDULE_H

#include <stddef.h>

#define DF_DEFAULT_BETA_START 1e-4
#define DF_DEFAULT_BETA_END 0.02
#define DF_DEFAULT_TIMESTEPS 1000
#define DF_MAX_TIMESTEPS 100000

typedef struct df_schedule {
    int num_timesteps;           /* T: timesteps are 0..T-1 */
    float *betas;                /* T values: np.linspace in float64, cast to float32 */
    /* alpha-bar_t = prod_{i<=t} (1 - beta_i): the float32 factors (1 - beta_i) multiplied in
     * a float64 accumulator and rounded to float32 at each t, which is what torch's CPU
     * cumprod does for float32 (bit-identical to the golden cases). */
    float *alphas_cumprod;
    /* log-variances of the Markovian (DDPM) sampler, float64 maths cast to float32:
     * fixedsmall = log(max(posterior variance, 1e-20)), fixedlarge = log([post_var[1],
     * beta_1..beta_{T-1}]). */
    float *logvar_fixedsmall;
    float *logvar_fixedlarge;
} df_schedule;

/* Linear betas from beta_start to beta_end over T steps (0 < start <= end < 1, 2 <= T <=
 * DF_MAX_TIMESTEPS). Free with df_schedule_free. */
int df_schedule_init_linear(df_schedule *s, double beta_start, double beta_end, int T);
/* The defaults every published model uses: 1e-4, 0.02, 1000. */
int df_schedule_init_default(df_schedule *s);
void df_schedule_free(df_schedule *s);             /* NULL and zeroed schedules are fine */

/* alpha-bar at timestep t, 0 <= t < T; t = -1 gives 1 (the end of generation). The caller
 * has validated t. */
float df_alpha_bar(const df_schedule *s, int t);

/* The timestep sequence of REFERENCE §3.3 for `n` steps to t0:
 *   n >= 2: seq[i] = (int)(i * (1.0 / (n - 1)) * t0) in double, seq[n-1] = t0 (np.linspace);
 *   n == 0: every step, seq = 0..t0-1 ("no skip").
 * Writes the count to *count and, when seq is not NULL, the steps to seq (capacity `cap`).
 * DC_EINVAL for n == 1, n < 0, t0 < 0 (or t0 < 1 for n == 0), or a too small buffer. */
int df_step_sequence(int t0, int n, int *seq, size_t cap, size_t *count);

#endif
