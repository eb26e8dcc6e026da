/* Option parsing shared by every command: "--name VALUE", "--name=VALUE", flags, repeated
 * options, positional arguments and "--" to end options. */
#ifndef DC_SRC_CLI_ARGS_H
#define DC_SRC_CLI_ARGS_H

#include <stddef.h>

typedef enum cli_option_type {
    CLI_STRING,     /* const char ** */
    CLI_INT,        /* int * */
    CLI_DOUBLE,     /* double * */
    CLI_FLAG,       /* int *, set to 1 */
    CLI_LIST        /* cli_list *, each occurrence appended */
} cli_option_type;

enum { CLI_LIST_CAPACITY = 64 };

typedef struct cli_list {
    const char *items[CLI_LIST_CAPACITY];
    int count;
} cli_list;

typedef struct cli_option {
    const char *name;              /* without the leading "--" */
    cli_option_type type;
    void *target;
    char short_name;               /* 0, or e.g. 'o' for "-o" */
} cli_option;

/* Parses argv[1..argc-1] (argv[0] is the command name). Positional arguments are stored in
 * `positional` (at most max_positional). On a usage error prints "diffclip: CMD: what" and
 * "usage: diffclip USAGE" on stderr and returns CLI_EXIT_USAGE; else 0. */
int cli_parse(int argc, char **argv, const cli_option *options, size_t count,
              const char **positional, int max_positional, int *positional_count,
              const char *usage);

/* A usage error for a command after parsing (missing option, bad value). */
int cli_command_usage_error(const char *command, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The usage error "--NAME is required" for the first of the NULL-terminated `required`
 * names whose option (a CLI_STRING) was not given; 0 when all were. */
int cli_check_required(const char *command, const char *usage, const cli_option *options,
                       size_t count, const char *const *required);

/* --device and --threads, which every command that computes takes. */
typedef struct cli_compute {
    const char *device;
    int threads;                   /* -1 when not given: the library's default */
} cli_compute;

#define CLI_COMPUTE_DEFAULTS {"auto", -1}
#define CLI_COMPUTE_OPTIONS(compute)                                                       \
    {"device", CLI_STRING, &(compute)->device, 0},                                         \
    {"threads", CLI_INT, &(compute)->threads, 0}
#define CLI_COMPUTE_HELP                                                                   \
    "  --device D        cpu, cuda, cuda:N or auto (default auto: CUDA when available)\n" \
    "  --threads N       CPU threads (default: $DIFFCLIP_NUM_THREADS, else one per core)\n"

/* --config, --image-size and --head-channels, which every command loading a diffusion
 * model takes. */
typedef struct cli_model_args {
    const char *config;            /* NULL: none */
    int image_size;                /* 0: the config's, else what the weights tell */
    int head_channels;             /* 0: 64 */
} cli_model_args;

#define CLI_MODEL_DEFAULTS {NULL, 0, 0}
#define CLI_MODEL_OPTIONS(m)                                                               \
    {"config", CLI_STRING, &(m)->config, 0},                                               \
    {"image-size", CLI_INT, &(m)->image_size, 0},                                          \
    {"head-channels", CLI_INT, &(m)->head_channels, 0}
#define CLI_MODEL_USAGE "[--config FILE] [--image-size N] [--head-channels N]"
#define CLI_MODEL_HELP                                                                     \
    "  --config FILE       the model's published YAML config (celeba.yml, ...): image\n"   \
    "                      size, model section checked against the weights, var_type,\n"   \
    "                      noise schedule\n"                                                \
    "  --image-size N      the size the model was trained at (photos are resized to it);\n" \
    "                      default: the config's, else what the weights tell\n"            \
    "  --head-channels N   ADM channels per attention head (default 64, as published)\n"

/* Checks --device and --threads (a usage error otherwise; CUDA asked for without CUDA is
 * a failure) and applies --threads. */
int cli_compute_apply(const char *command, const char *usage, const cli_compute *compute);

#endif
