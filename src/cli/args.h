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

#endif
