/* Bad usage of the CLI, for every command `diffclip help` lists: no arguments, an unknown
 * option and an option without its value each exit with status 2 and print, on stderr, what
 * is wrong and a line starting "usage: diffclip COMMAND". So do no command, an unknown
 * command and `help` of an unknown command. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

enum { TEXT = 16384, MAX_COMMANDS = 64, NAME = 32 };

/* A line of `text` starting with `prefix`. */
static int has_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, prefix, n) == 0)
            return 1;
    }
    return 0;
}

/* The command names of `diffclip help`: the indented lines under "commands:". -1 without
 * a CLI to run (the test is then skipped, or failed under CI). */
static int list_commands(char names[MAX_COMMANDS][NAME])
{
    static char out[TEXT], err[TEXT];
    int code = run_cli("help", out, sizeof out, err, sizeof err);
    if (code != 0)
        return code < 0 ? -1 : 0;
    const char *line = strstr(out, "commands:\n");
    int count = 0;
    for (line = line ? strchr(line, '\n') + 1 : NULL; line && strncmp(line, "  ", 2) == 0;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (count == MAX_COMMANDS || sscanf(line, "%31s", names[count]) != 1)
            return 0;
        count++;
    }
    return count;
}

/* The first "--name VALUE" option of a usage line (brackets and parentheses ignored) into
 * `name`; 0 if there is none. */
static int first_valued_option(const char *usage, char *name, size_t size)
{
    char copy[2048];
    snprintf(copy, sizeof copy, "%s", usage);
    char *save = NULL, *previous = NULL;
    for (char *word = strtok_r(copy, " \n", &save); word; word = strtok_r(NULL, " \n", &save)) {
        word += strspn(word, "[(");
        if (previous && *word && *word != '-' && *word != '|' && *word != '.') {
            snprintf(name, size, "%s", previous);
            return 1;
        }
        previous = NULL;
        if (strncmp(word, "--", 2) == 0 && word[2]) {
            word[strcspn(word, "])=")] = '\0';
            previous = word;
        }
    }
    return 0;
}

static int usage_error(const char *args, const char *usage_prefix, const char *what,
                       char *err)
{
    static char out[TEXT];
    int code = run_cli(args, out, sizeof out, err, TEXT);
    if (code != 2 || !has_line(err, usage_prefix) || (what && !strstr(err, what)) || out[0]) {
        test_fail_at(__FILE__, __LINE__, "diffclip %s: exit %d, stdout '%.200s', stderr '%s'",
                     args, code, out, err);
        return 0;
    }
    return 1;
}

TEST(every_command_answers_bad_usage_with_exit_2_and_its_usage_line)
{
    char names[MAX_COMMANDS][NAME];
    int count = list_commands(names);
    if (count < 0)
        return;
    CHECKF(count >= 10, "only %d commands listed by diffclip help", count);
    static char out[TEXT], err[TEXT];
    for (int i = 0; i < count; i++) {
        char args[4096], prefix[2400], option[64], help_args[2400];
        snprintf(prefix, sizeof prefix, "usage: diffclip %s", names[i]);
        CHECK(usage_error(names[i], prefix, NULL, err));
        snprintf(args, sizeof args, "%s --no-such-option", names[i]);
        CHECK(usage_error(args, prefix, "--no-such-option", err));

        snprintf(help_args, sizeof help_args, "help %s", names[i]);
        CHECK(run_cli(help_args, out, sizeof out, err, sizeof err) == 0);
        CHECKF(has_line(out, prefix), "help %s: %s", names[i], out);
        CHECKF(first_valued_option(strstr(out, prefix), option, sizeof option),
               "%s: no option with a value in its usage", names[i]);
        snprintf(args, sizeof args, "%s %s", names[i], option);
        CHECK(usage_error(args, prefix, "needs a value", err));
    }
}

TEST(no_command_or_an_unknown_one_answers_with_exit_2_and_the_usage_line)
{
    static char err[TEXT];
    char names[MAX_COMMANDS][NAME];
    if (list_commands(names) < 0)
        return;
    CHECK(usage_error("", "usage: diffclip COMMAND", NULL, err));
    CHECK(usage_error("no-such-command", "usage: diffclip COMMAND", "no-such-command", err));
    CHECK(usage_error("--no-such-option", "usage: diffclip COMMAND", NULL, err));
    CHECK(usage_error("help no-such-command", "usage: diffclip COMMAND", "no-such-command",
                      err));
}
