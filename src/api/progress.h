/* Turning the diffusion loop's per-step callbacks into the public dc_progress reports. */
#ifndef DC_SRC_API_PROGRESS_H
#define DC_SRC_API_PROGRESS_H

#include "../diffusion/step.h"
#include "diffclip.h"

typedef struct api_progress {
    dc_progress_fn fn;               /* NULL: no reports */
    void *user;
    dc_progress report;              /* the fields a caller fills (stage, image, epoch...) */
    double started;                  /* monotonic seconds when the operation began */
} api_progress;

void api_progress_init(api_progress *p, dc_progress_fn fn, void *user, const char *stage);
/* Fills the timing fields (seconds per image so far, ETA from the images and steps left)
 * and calls the user's function; non-zero means cancel. */
int api_progress_emit(api_progress *p);
/* A df_step_fn over an api_progress: reports step info->step + 1 of info->steps. */
int api_progress_step(void *user, const df_step_info *info);

#endif
