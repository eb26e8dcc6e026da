/* diffclip inspect FILE: one line per tensor, "NAME DTYPE [d0,d1,...]", sorted by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_tensor(const char *name, const dc_tensor *t)
{
    printf("%s %s [", name, dc_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
    printf("]\n");
}

int cli_cmd_inspect(int argc, char **argv)
{
    if (argc != 2)
        return cli_usage_error("usage: diffclip inspect FILE");
    dc_checkpoint *ckpt;
    if (dc_checkpoint_open(&ckpt, argv[1]) != DC_OK)
        return cli_library_error();
    size_t count = dc_checkpoint_count(ckpt);
    const char **names = malloc((count ? count : 1) * sizeof *names);
    if (!names) {
        dc_checkpoint_free(ckpt);
        fprintf(stderr, "diffclip: %s: out of memory\n", argv[1]);
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < count; i++)
        names[i] = dc_checkpoint_name(ckpt, i);
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        size_t index;
        dc_tensor t;
        if (dc_checkpoint_find(ckpt, names[i], &index) == DC_OK &&
            dc_checkpoint_tensor(ckpt, index, &t) == DC_OK)
            print_tensor(names[i], &t);
    }
    free(names);
    dc_checkpoint_free(ckpt);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "diffclip: cannot write the listing\n");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
