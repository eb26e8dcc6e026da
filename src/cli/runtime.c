/* What the diffusion commands share: model loading and the progress display. */
#include <stdio.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

dc_model *cli_load_model(const char *path, const cli_compute *compute, int head_channels)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = compute->device;
    o.head_channels = head_channels;
    dc_model *model = NULL;
    if (dc_model_load(&model, path, &o) != DC_OK) {
        cli_library_error();
        return NULL;
    }
    return model;
}

static int progress_shown;

int cli_progress(void *user, const dc_progress *p)
{
    (void)user;
    if (!isatty(STDERR_FILENO))
        return 0;
    enum { WIDTH = 30 };
    int filled = p->steps > 0 ? WIDTH * p->step / p->steps : 0;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r%-11s image %d/%d [%s] step %d/%d  %.1f s/image, %.0f s left ",
            p->stage, p->image, p->images, bar, p->step, p->steps, p->seconds_per_image,
            p->eta_seconds);
    progress_shown = 1;
    return 0;
}

void cli_progress_done(void)
{
    if (progress_shown)
        fputc('\n', stderr);
    progress_shown = 0;
}
