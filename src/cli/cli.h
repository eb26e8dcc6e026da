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

extern const cli_command cli_commands[];

/* The commands, each in src/cli/cmd_NAME.c. */
int cli_cmd_inspect(int argc, char **argv);

/* "diffclip: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "diffclip: dc_last_error()" on stderr; returns CLI_EXIT_FAILURE. */
int cli_library_error(void);

#endif
