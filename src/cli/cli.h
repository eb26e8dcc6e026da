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
/* The command called `name`, or NULL. */
const cli_command *cli_find_command(const char *name);

/* The commands, each in src/cli/cmd_NAME.c. */
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_tokenize(int argc, char **argv);
/* clip-image, clip-text, clip-loss, clip-score: src/cli/cmd_clip.c */
int cli_cmd_clip_image(int argc, char **argv);
int cli_cmd_clip_text(int argc, char **argv);
int cli_cmd_clip_loss(int argc, char **argv);
int cli_cmd_clip_score(int argc, char **argv);
int cli_cmd_id_loss(int argc, char **argv);

/* "diffclip: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "diffclip: dc_last_error()" on stderr; returns CLI_EXIT_FAILURE. */
int cli_library_error(void);
/* "diffclip: PATH: dc_last_error()" (the path once, if the message starts with it) on
 * stderr, for a failure caused by the content of the file PATH; returns CLI_EXIT_FAILURE. */
int cli_file_error(const char *path);

#endif
