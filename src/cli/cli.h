#ifndef DC_SRC_CLI_CLI_H
#define DC_SRC_CLI_CLI_H

#include "diffclip.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;                  /* after "diffclip " */
    const char *help;
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} cli_command;

/* Every command, NULL-terminated, in the order `diffclip help` lists them. */
extern const cli_command *const cli_commands[];
/* The command called `name`, or NULL. */
const cli_command *cli_find_command(const char *name);

/* The commands: inspect in cmd_inspect.c; eps, invert, generate, noise, reconstruct in
 * cmd_diffusion.c; finetune in cmd_finetune.c; edit, transition, translate in
 * cmd_sampler.c; the CLIP commands' descriptions in commands.c, their code in
 * cmd_tokenize.c, cmd_clip.c (clip-image, clip-text, clip-loss, clip-score), cmd_id_loss.c;
 * align in cmd_align.c; serve in cmd_serve.c (over src/serve). */
extern const cli_command cli_cmd_inspect, cli_cmd_eps, cli_cmd_invert, cli_cmd_generate,
    cli_cmd_noise, cli_cmd_reconstruct, cli_cmd_finetune, cli_cmd_edit, cli_cmd_transition,
    cli_cmd_translate, cli_cmd_tokenize, cli_cmd_clip_image, cli_cmd_clip_text,
    cli_cmd_clip_loss, cli_cmd_clip_score, cli_cmd_id_loss, cli_cmd_align, cli_cmd_serve;
int cli_run_tokenize(int argc, char **argv);
int cli_run_clip_image(int argc, char **argv);
int cli_run_clip_text(int argc, char **argv);
int cli_run_clip_loss(int argc, char **argv);
int cli_run_clip_score(int argc, char **argv);
int cli_run_id_loss(int argc, char **argv);

/* "diffclip: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "diffclip: dc_last_error()" on stderr; returns CLI_EXIT_FAILURE. */
int cli_library_error(void);
/* "diffclip: PATH: dc_last_error()" (the path once, if the message starts with it) on
 * stderr, for a failure caused by the content of the file PATH; returns CLI_EXIT_FAILURE. */
int cli_file_error(const char *path);

struct cli_compute;
struct cli_model_args;
/* Loads a diffusion model on compute->device with --config, --image-size and
 * --head-channels; prints the config's warnings, or the error and returns NULL. */
dc_model *cli_load_model(const char *path, const struct cli_compute *compute,
                         const struct cli_model_args *args);
/* The model's image size (0 when unknown). */
int cli_model_image_size(const dc_model *model);
/* A dc_progress_fn printing a one-line progress bar on a terminal (stderr), nothing
 * otherwise. `user` is unused. */
int cli_progress(void *user, const dc_progress *p);
/* Fills bar (width + 1 chars) with a bar of step/steps done, for a progress line written
 * with "\r" on stderr, and returns it; cli_progress_done then ends that line. */
const char *cli_progress_bar(char *bar, int width, int step, int steps);
/* Ends a progress line started by cli_progress or drawn with cli_progress_bar. */
void cli_progress_done(void);

#endif
