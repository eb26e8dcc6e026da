/* What the commands that mix models share (generate, edit, transition, translate): weight
 * lists, piecewise schedules and ramps from the command line, MODEL[:WEIGHT] specs, and
 * loading fine-tuned models of a base model. */
#ifndef DC_SRC_CLI_MIX_H
#define DC_SRC_CLI_MIX_H

#include <stddef.h>

#include "args.h"
#include "diffclip.h"

enum { CLI_MAX_MODELS = 64, CLI_MAX_PIECES = 64 };

typedef enum cli_mix_kind {
    CLI_MIX_NONE = 0,                /* no weights given */
    CLI_MIX_CONSTANT,                /* one vector (threshold unused) */
    CLI_MIX_PIECEWISE,               /* by timestep threshold, as dc_sampler_set_piecewise */
    CLI_MIX_RAMP                     /* two (t, vector) points, as dc_sampler_set_ramp */
} cli_mix_kind;

/* Weight vectors of one length, by timestep threshold in the order given. */
typedef struct cli_mix {
    cli_mix_kind kind;
    size_t pieces, count;
    int thresholds[CLI_MAX_PIECES];
    double weights[CLI_MAX_PIECES * CLI_MAX_MODELS];    /* pieces x count */
} cli_mix;

/* "300:1,0;0:0.3,0.7" or the published Python form "{300: [1, 0], 0: [0.3, 0.7]}" (spaces
 * anywhere) into pieces. 0, or -1 with the reason in `why`. */
int cli_parse_schedule(const char *text, cli_mix *out, char *why, size_t why_size);

/* Makes every vector `models` long: as it is, or, when one shorter, with the remaining weight
 * 1 - sum put first (the original model's; 0 when within 1e-6). 0, or -1 with the reason. */
int cli_mix_complete(cli_mix *m, size_t models, char *why, size_t why_size);

/* At most one of --gamma G,G,... (constant), --schedule S (piecewise) and --ramp
 * "TA:w,..;TB:w,.." (NULL when not given) into *out for `models` models; with
 * `remainder_first` the vectors may leave out the first model, which takes 1 - sum. 0, or
 * CLI_EXIT_USAGE after printing the usage error. */
int cli_mix_parse(const char *command, const char *usage, const char *gamma,
                  const char *schedule, const char *ramp, size_t models, int remainder_first,
                  cli_mix *out);

/* Sets the weights of `m` (kind not NONE) on the sampler. 0; CLI_EXIT_USAGE when the library
 * refuses them (e.g. not summing to 1 at some t), CLI_EXIT_FAILURE on other failures. */
int cli_mix_apply(const char *command, const char *usage, dc_sampler *sampler,
                  const cli_mix *m);

/* "PATH:W" -> the path (written into buf) and *weight, *has_weight 1; "PATH" (no ':' followed
 * by a number) -> the path, *has_weight 0. -1 when the path does not fit in buf. */
int cli_split_weight(const char *spec, char *buf, size_t size, double *weight, int *has_weight);

/* Fine-tuned weights of `base` (a full state dict with its keys in any container, or a
 * .delta file made for it), on base's device. Prints the error and returns NULL on failure. */
dc_model *cli_load_finetuned(const char *path, const dc_model *base);

#endif
