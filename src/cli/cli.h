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

/* The commands, each in src/cli/cmd_NAME.c. */
extern const cli_command cli_cmd_inspect;
extern const cli_command cli_cmd_eps;
extern const cli_command cli_cmd_invert;
extern const cli_command cli_cmd_generate;
extern const cli_command cli_cmd_noise;
extern const cli_command cli_cmd_reconstruct;

/* "diffclip: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "diffclip: dc_last_error()" on stderr; returns CLI_EXIT_FAILURE. */
int cli_library_error(void);

/* Options every computing command takes. */
typedef struct cli_runtime {
    const char *device;              /* NULL: the library's default ("auto") */
    int threads;                     /* 0: the library's default (the core count) */
} cli_runtime;

/* The option-table entries of --device and --threads. */
#define CLI_RUNTIME_OPTIONS(rt) \
    {"device", CLI_STRING, &(rt).device, 0}, {"threads", CLI_INT, &(rt).threads, 0}
#define CLI_RUNTIME_HELP \
    "  --device D          cpu, cuda, cuda:N or auto (default auto)\n" \
    "  --threads N         CPU threads (default: the number of cores)\n"

/* Applies --threads; CLI_EXIT_OK or an exit status after printing the error. */
int cli_apply_runtime(const cli_runtime *rt);
/* Loads a diffusion model on rt->device; prints the error and returns NULL on failure. */
dc_model *cli_load_model(const char *path, const cli_runtime *rt, int head_channels);
/* A dc_progress_fn printing a one-line progress bar on a terminal (stderr), nothing
 * otherwise. `user` is unused. */
int cli_progress(void *user, const dc_progress *p);
/* Ends a progress line started by cli_progress. */
void cli_progress_done(void);

#endif
