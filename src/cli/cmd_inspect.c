/* diffclip inspect FILE: one line per tensor, "NAME DTYPE [d0,d1,...]", sorted by name;
 * with --model, what the diffusion-model loader inferred. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"

#define USAGE "inspect [--model " CLI_MODEL_USAGE "] FILE"

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

static int describe_model(const char *path, const cli_model_args *model_args)
{
    cli_compute compute = {"cpu", -1};
    dc_model *model = cli_load_model(path, &compute, model_args);
    if (!model)
        return CLI_EXIT_FAILURE;
    char text[4096];
    dc_status s = dc_model_describe(model, text, sizeof text);
    dc_model_free(model);
    if (s != DC_OK)
        return cli_library_error();
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

static int run_inspect(int argc, char **argv)
{
    int model = 0, npos = 0;
    cli_model_args model_args = CLI_MODEL_DEFAULTS;
    const char *file = NULL;
    const cli_option options[] = {
        {"model", CLI_FLAG, &model, 0},
        CLI_MODEL_OPTIONS(&model_args),
    };
    int status = cli_parse(argc, argv, options, sizeof options / sizeof *options, &file, 1,
                           &npos, USAGE);
    if (status)
        return status;
    if (npos != 1)
        return cli_command_usage_error(argv[0], USAGE, "which file?");
    if (!model && (model_args.config || model_args.image_size || model_args.head_channels))
        return cli_command_usage_error(argv[0], USAGE, "--config, --image-size and "
                                       "--head-channels go with --model");
    if (model)
        return describe_model(file, &model_args);
    dc_checkpoint *ckpt;
    if (dc_checkpoint_open(&ckpt, file) != DC_OK)
        return cli_library_error();
    size_t count = dc_checkpoint_count(ckpt);
    const char **names = malloc((count ? count : 1) * sizeof *names);
    if (!names) {
        dc_checkpoint_free(ckpt);
        fprintf(stderr, "diffclip: %s: out of memory\n", file);
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

const cli_command cli_cmd_inspect = {
    "inspect", "list the tensors of a checkpoint, or what a diffusion model is", USAGE,
    "Prints one line per tensor of FILE (torch.save zip or legacy, TorchScript, safetensors\n"
    "or .npy), sorted by name: NAME DTYPE [d0,d1,...]; an .npy array is named '-'.\n"
    "  --model             load FILE as a diffusion model and print what was inferred\n"
    "                      (family, image size and where it came from: config, weights or\n"
    "                      option, channels, multipliers, res blocks, attention, heads,\n"
    "                      noise schedule, var_type, the config's warnings)\n"
    CLI_MODEL_HELP
    "example: diffclip inspect --model celeba_hq.ckpt --config celeba.yml",
    run_inspect,
};
