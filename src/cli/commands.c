/* The table of commands and the shared error printers. */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

const cli_command *const cli_commands[] = {
    &cli_cmd_inspect, &cli_cmd_eps,   &cli_cmd_invert,      &cli_cmd_generate,
    &cli_cmd_noise,   &cli_cmd_reconstruct, NULL,
};

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("diffclip: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_library_error(void)
{
    fprintf(stderr, "diffclip: %s\n", dc_last_error());
    return CLI_EXIT_FAILURE;
}
