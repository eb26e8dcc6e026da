/* diffclip id-loss: DiffusionCLIP's identity loss with the IR-SE network. */
#include <stdio.h>

#include "args.h"
#include "cli.h"
#include "inputs.h"

enum { DEFAULT_IMAGE_SIZE = 256 };

/* f(images) into `path`. */
static int write_features(dc_idnet *net, const dc_tensor *images, const char *path)
{
    dc_tensor features = {0};
    int status = 0;
    if (dc_idnet_features(net, images, &features) != DC_OK)
        status = cli_library_error();
    else if (dc_npy_write(path, &features) != DC_OK)
        status = cli_file_error(path);
    dc_tensor_free(&features);
    return status;
}

int cli_run_id_loss(int argc, char **argv)
{
    const char *usage = cli_find_command(argv[0])->usage;
    const char *arcface = NULL, *x = NULL, *x_hat = NULL, *out = NULL;
    const char *features_out = NULL, *hat_features_out = NULL;
    int size = DEFAULT_IMAGE_SIZE;
    cli_compute compute = CLI_COMPUTE_DEFAULTS;
    const cli_option options[] = {
        {"arcface", CLI_STRING, &arcface, 0},
        {"x", CLI_STRING, &x, 0},
        {"x-hat", CLI_STRING, &x_hat, 0},
        {"size", CLI_INT, &size, 0},
        {"out", CLI_STRING, &out, 0},
        {"features-out", CLI_STRING, &features_out, 0},
        {"hat-features-out", CLI_STRING, &hat_features_out, 0},
        CLI_COMPUTE_OPTIONS(&compute),
    };
    static const char *const required[] = {"arcface", "x", "x-hat", "out", NULL};
    size_t count = sizeof options / sizeof *options;
    int status = cli_parse(argc, argv, options, count, NULL, 0, NULL, usage);
    if (status == 0)
        status = cli_check_required(argv[0], usage, options, count, required);
    if (status == 0 && size < 1)
        status = cli_command_usage_error(argv[0], usage, "--size wants a side >= 1, not %d",
                                         size);
    if (status == 0)
        status = cli_compute_apply(argv[0], usage, &compute);
    if (status)
        return status;

    dc_idnet_options net_options;
    dc_idnet_options_init(&net_options, DC_IDNET_OPTIONS_VERSION);
    net_options.device = compute.device;
    dc_idnet *net = NULL;
    dc_tensor images = {0}, edits = {0}, per_sample = {0};
    double mean;
    if (dc_idnet_load(&net, arcface, &net_options) != DC_OK)
        status = cli_file_error(arcface);
    if (status == 0)
        status = cli_read_images(x, size, NULL, NULL, &images);
    if (status == 0)
        status = cli_read_images(x_hat, size, &images, NULL, &edits);
    if (status == 0 && dc_idnet_id_loss(net, &images, &edits, &mean, &per_sample, NULL) != DC_OK)
        status = cli_library_error();
    if (status == 0 && dc_npy_write(out, &per_sample) != DC_OK)
        status = cli_file_error(out);
    if (status == 0 && features_out)
        status = write_features(net, &images, features_out);
    if (status == 0 && hat_features_out)
        status = write_features(net, &edits, hat_features_out);
    dc_tensor_free(&per_sample);
    dc_tensor_free(&edits);
    dc_tensor_free(&images);
    dc_idnet_free(net);
    return status;
}
