/* Validation of dc_diffusion_options shared by the encoder, generator, cache and sampler. */
#ifndef DC_SRC_API_DIFFUSION_OPTIONS_H
#define DC_SRC_API_DIFFUSION_OPTIONS_H

#include "../diffusion/schedule.h"
#include "diffclip.h"

/* Copies `in` (NULL: defaults) to `out` after checking its version and values for inversion
 * (generating 0: DDIM, eta 0, steps >= 2) or generation (steps 0 or >= 2), fills a schedule
 * left at 0 with `model`'s (NULL: the published 1000, 1e-4, 0.02), and builds the schedule
 * (free it with df_schedule_free). */
int api_diffusion_options(const dc_diffusion_options *in, int generating, const dc_model *model,
                          dc_diffusion_options *out, df_schedule *schedule);
/* The DDPM log-variance of `model`'s var_type. */
int api_model_logvar(const dc_model *model);

#endif
