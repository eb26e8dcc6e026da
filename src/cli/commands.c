/* The table of commands and the shared error printers. */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

const cli_command cli_commands[] = {
    {"inspect", "list the tensors of a checkpoint", "inspect FILE",
     "Prints one line per tensor of FILE (torch.save zip or legacy, TorchScript, safetensors\n"
     "or .npy), sorted by name: NAME DTYPE [d0,d1,...]. An .npy array is named '-'.",
     cli_cmd_inspect},
    {NULL, NULL, NULL, NULL, NULL},
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
