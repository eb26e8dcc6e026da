/* What the diffusion commands share: model loading and the progress display. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

dc_model *cli_load_model(const char *path, const cli_compute *compute,
                         const cli_model_args *args)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = compute->device;
    o.head_channels = args->head_channels;
    o.image_size = args->image_size;
    o.config_path = args->config;
    dc_model *model = NULL;
    if (dc_model_load(&model, path, &o) != DC_OK) {
        cli_library_error();
        return NULL;
    }
    dc_model_config c = {.version = DC_MODEL_CONFIG_VERSION};
    if (dc_model_get_config(model, &c) == DC_OK)
        for (const char *line = c.warnings; line && *line;) {
            const char *end = strchr(line, '\n');
            int length = end ? (int)(end - line) : (int)strlen(line);
            fprintf(stderr, "diffclip: warning: %.*s\n", length, line);
            line += length + (end != NULL);
        }
    return model;
}

int cli_model_image_size(const dc_model *model)
{
    dc_model_info info;
    return dc_model_get_info(model, &info) == DC_OK ? info.image_size : 0;
}

static int progress_shown;

const char *cli_progress_bar(char *bar, int width, int step, int steps)
{
    int filled = steps > 0 ? width * step / steps : 0;
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    progress_shown = 1;
    return bar;
}

int cli_progress(void *user, const dc_progress *p)
{
    (void)user;
    if (!isatty(STDERR_FILENO))
        return 0;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    fprintf(stderr, "\r%-11s image %d/%d [%s] step %d/%d  %.1f s/image, %.0f s left ",
            p->stage, p->image, p->images, cli_progress_bar(bar, WIDTH, p->step, p->steps),
            p->step, p->steps, p->seconds_per_image, p->eta_seconds);
    return 0;
}

void cli_progress_done(void)
{
    if (progress_shown)
        fputc('\n', stderr);
    progress_shown = 0;
}
