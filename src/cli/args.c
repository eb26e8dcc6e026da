#include "args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_command_usage_error(const char *command, const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "diffclip: %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: diffclip %s\n", usage);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

static const cli_option *find_long(const cli_option *options, size_t count, const char *name,
                                   size_t length)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(options[i].name) == length && strncmp(options[i].name, name, length) == 0)
            return &options[i];
    return NULL;
}

static const cli_option *find_short(const cli_option *options, size_t count, char name)
{
    for (size_t i = 0; i < count; i++)
        if (options[i].short_name && options[i].short_name == name)
            return &options[i];
    return NULL;
}

static int store(const char *command, const char *usage, const cli_option *o, const char *value)
{
    char *end;
    switch (o->type) {
    case CLI_STRING:
        *(const char **)o->target = value;
        return 0;
    case CLI_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < INT_MIN || v > INT_MAX)
            return cli_command_usage_error(command, usage, "--%s wants an integer, not '%s'",
                                           o->name, value);
        *(int *)o->target = (int)v;
        return 0;
    }
    case CLI_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return cli_command_usage_error(command, usage, "--%s wants a number, not '%s'",
                                           o->name, value);
        *(double *)o->target = v;
        return 0;
    }
    case CLI_LIST: {
        cli_list *list = o->target;
        if (list->count >= CLI_LIST_CAPACITY)
            return cli_command_usage_error(command, usage, "--%s given too often", o->name);
        list->items[list->count++] = value;
        return 0;
    }
    case CLI_FLAG:
        break;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const cli_option *options, size_t count,
              const char **positional, int max_positional, int *positional_count,
              const char *usage)
{
    const char *command = argv[0];
    int npos = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const cli_option *o = NULL;
        const char *inline_value = NULL;
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t length = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(options, count, name, length);
            if (!o)
                return cli_command_usage_error(command, usage, "unknown option '%s'", arg);
            inline_value = eq ? eq + 1 : NULL;
        } else if (!options_done && arg[0] == '-' && arg[1] && !arg[2] &&
                   !(arg[1] >= '0' && arg[1] <= '9')) {
            o = find_short(options, count, arg[1]);
            if (!o)
                return cli_command_usage_error(command, usage, "unknown option '%s'", arg);
        }
        if (!o) {
            if (npos >= max_positional)
                return cli_command_usage_error(command, usage, "unexpected argument '%s'",
                                               arg);
            positional[npos++] = arg;
            continue;
        }
        if (o->type == CLI_FLAG) {
            if (inline_value)
                return cli_command_usage_error(command, usage, "--%s takes no value",
                                               o->name);
            *(int *)o->target = 1;
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= argc)
                return cli_command_usage_error(command, usage, "%s needs a value", arg);
            inline_value = argv[++i];
        }
        int status = store(command, usage, o, inline_value);
        if (status)
            return status;
    }
    if (positional_count)
        *positional_count = npos;
    return 0;
}

int cli_check_required(const char *command, const char *usage, const cli_option *options,
                       size_t count, const char *const *required)
{
    for (const char *const *name = required; *name; name++)
        for (size_t i = 0; i < count; i++)
            if (options[i].type == CLI_STRING && strcmp(options[i].name, *name) == 0 &&
                !*(const char **)options[i].target)
                return cli_command_usage_error(command, usage, "--%s is required", *name);
    return 0;
}

/* The device names the library takes: cpu, auto, cuda, cuda:N. */
static int valid_device(const char *name)
{
    if (strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0 || strcmp(name, "cuda") == 0)
        return 1;
    if (strncmp(name, "cuda:", 5) != 0 || !name[5])
        return 0;
    return strspn(name + 5, "0123456789") == strlen(name + 5);
}

int cli_compute_apply(const char *command, const char *usage, const cli_compute *compute)
{
    if (!valid_device(compute->device))
        return cli_command_usage_error(command, usage,
                                       "--device wants cpu, cuda, cuda:N or auto, not '%s'",
                                       compute->device);
    if (dc_device_check(compute->device) != DC_OK) {
        fprintf(stderr, "diffclip: %s: --device %s: %s\n", command, compute->device,
                dc_last_error());
        return CLI_EXIT_FAILURE;
    }
    if (compute->threads == -1)
        return 0;
    if (compute->threads < 1)
        return cli_command_usage_error(command, usage, "--threads wants a count >= 1, not %d",
                                       compute->threads);
    if (dc_set_num_threads(compute->threads) != DC_OK)
        return cli_library_error();
    return 0;
}
