/* diffclip: the command-line tool, a client of the public API only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define USAGE "usage: diffclip COMMAND [OPTIONS]\n"

static void print_overview(FILE *out)
{
    fprintf(out, USAGE "\ncommands:\n");
    for (const cli_command *const *c = cli_commands; *c; c++)
        fprintf(out, "  %-12s %s\n", (*c)->name, (*c)->summary);
    fprintf(out, "\n'diffclip help COMMAND' describes one command; 'diffclip --version'.\n");
}

/* The message, then the usage line that ends every usage error (as the commands' do). */
static int unknown_command(const char *context, const char *name, const char *hint)
{
    cli_usage_error("%sunknown command '%s'%s", context, name, hint);
    fputs(USAGE, stderr);
    return CLI_EXIT_USAGE;
}

static int help(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const cli_command *c = cli_find_command(argv[1]);
    if (!c)
        return unknown_command("help: ", argv[1], "");
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
        printf("diffclip %s\n%s\n", dc_version(), dc_backend_info());
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0)
        return help(argc - 1, argv + 1);
    const cli_command *c = cli_find_command(argv[1]);
    if (!c)
        return unknown_command("", argv[1], " (see 'diffclip help')");
    return c->run(argc - 1, argv + 1);
}
