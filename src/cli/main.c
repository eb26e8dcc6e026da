/* diffclip: the command-line tool, a client of the public API only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_overview(FILE *out)
{
    fprintf(out, "usage: diffclip COMMAND [OPTIONS]\n\ncommands:\n");
    for (const cli_command *const *c = cli_commands; *c; c++)
        fprintf(out, "  %-12s %s\n", (*c)->name, (*c)->summary);
    fprintf(out, "\n'diffclip help COMMAND' describes one command; 'diffclip --version'.\n");
}

static int help(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const cli_command *c = cli_find_command(argv[1]);
    if (!c)
        return cli_usage_error("help: unknown command '%s'", argv[1]);
    printf("usage: diffclip %s\n\n%s\n", c->usage, c->help);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("diffclip %s\n", dc_version());
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0)
        return help(argc - 1, argv + 1);
    const cli_command *c = cli_find_command(argv[1]);
    if (!c)
        return cli_usage_error("unknown command '%s' (see 'diffclip help')", argv[1]);
    return c->run(argc - 1, argv + 1);
}
