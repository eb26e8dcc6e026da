#include "progress.h"

#include <string.h>

#include "../core/clock.h"

void api_progress_init(api_progress *p, dc_progress_fn fn, void *user, const char *stage)
{
    memset(p, 0, sizeof *p);
    p->fn = fn;
    p->user = user;
    p->report.version = DC_PROGRESS_VERSION;
    p->report.stage = stage;
    p->report.image = p->report.images = 1;
    p->started = dci_now();
}

int api_progress_emit(api_progress *p)
{
    if (!p->fn)
        return 0;
    dc_progress *r = &p->report;
    double elapsed = dci_now() - p->started;
    /* Work is counted in steps over all images and epochs of the operation. */
    double epochs = r->epochs > 0 ? r->epochs : 1, epoch = r->epoch > 0 ? r->epoch - 1 : 0;
    double steps = r->steps > 0 ? r->steps : 1;
    double done = (epoch * r->images + (r->image - 1)) * steps + r->step;
    double total = epochs * r->images * steps;
    double images_done = done / steps;
    r->seconds_per_image = images_done > 0 ? elapsed / images_done : 0;
    r->eta_seconds = done > 0 ? elapsed * (total - done) / done : 0;
    return p->fn(p->user, r);
}

int api_progress_step(void *user, const df_step_info *info)
{
    api_progress *p = user;
    p->report.step = (int)info->step + 1;
    p->report.steps = (int)info->steps;
    return api_progress_emit(p);
}
