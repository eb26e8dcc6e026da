/* diffclip serve: the HTTP API and web page of src/serve. */
#include <stdio.h>
#include <string.h>

#include "../serve/serve.h"
#include "align.h"
#include "args.h"
#include "cli.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define SERVE_USAGE                                                                        \
    "serve --model BASE " CLI_MODEL_USAGE " --finetuned-dir DIR [--host 127.0.0.1] "      \
    "[--port 8080] "                                                                       \
    "[--clip C --vocab V [--arcface A]] [--predictor FILE] [--max-upload MB] "             \
    "[--max-image-side N] "                                                                \
    "[--queue N] [--latent-cache N] [--max-loaded N] [--device D] [--threads N]"

static int run_serve(int argc, char **argv)
{
    serve_config c = {.host = "127.0.0.1", .port = 8080, .max_image_side = 4096, .queue = 4,
                      .latent_cache = 32, .max_loaded = 8};
    cli_compute compute = CLI_COMPUTE_DEFAULTS;
    cli_model_args model = CLI_MODEL_DEFAULTS;
    int max_upload_mb = 32;
    const cli_option options[] = {
        {"model", CLI_STRING, &c.model_path, 0},
        {"finetuned-dir", CLI_STRING, &c.finetuned_dir, 0},
        {"host", CLI_STRING, &c.host, 0},
        {"port", CLI_INT, &c.port, 0},
        {"clip", CLI_STRING, &c.clip_path, 0},
        {"vocab", CLI_STRING, &c.vocab_path, 0},
        {"arcface", CLI_STRING, &c.arcface_path, 0},
        {"predictor", CLI_STRING, &c.predictor_path, 0},
        {"max-upload", CLI_INT, &max_upload_mb, 0},
        {"max-image-side", CLI_INT, &c.max_image_side, 0},
        {"queue", CLI_INT, &c.queue, 0},
        {"latent-cache", CLI_INT, &c.latent_cache, 0},
        {"max-loaded", CLI_INT, &c.max_loaded, 0},
        CLI_MODEL_OPTIONS(&model),
        CLI_COMPUTE_OPTIONS(&compute),
    };
    static const char *const required[] = {"model", "finetuned-dir", NULL};
    const char *cmd = argv[0];
    int status = cli_parse(argc, argv, options, COUNT(options), NULL, 0, NULL, SERVE_USAGE);
    if (!status)
        status = cli_check_required(cmd, SERVE_USAGE, options, COUNT(options), required);
    if (status)
        return status;
    if (c.port < 0 || c.port > 65535)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--port wants 0..65535, not %d", c.port);
    if (max_upload_mb < 1 || max_upload_mb > 4096)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--max-upload wants 1..4096 (MB), "
                                       "not %d", max_upload_mb);
    if (c.max_image_side < 16 || c.max_image_side > 16384)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--max-image-side wants 16..16384, "
                                       "not %d", c.max_image_side);
    if (c.queue < 0 || c.queue > 1000)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--queue wants 0..1000, not %d",
                                       c.queue);
    if (c.latent_cache < 1 || c.latent_cache > 100000 || c.max_loaded < 1 ||
        c.max_loaded > 1000)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--latent-cache wants 1..100000 and "
                                       "--max-loaded 1..1000");
    if (!c.clip_path != !c.vocab_path)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--clip and --vocab go together");
    if (c.arcface_path && !c.clip_path)
        return cli_command_usage_error(cmd, SERVE_USAGE, "--arcface needs --clip and --vocab");
    if ((status = cli_compute_apply(cmd, SERVE_USAGE, &compute)))
        return status;
    c.device = compute.device;
    c.config_path = model.config;
    c.image_size = model.image_size;
    c.head_channels = model.head_channels;
    c.max_upload = (size_t)max_upload_mb << 20;
    return serve_run(&c) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

const cli_command cli_cmd_serve = {
    "serve", "an HTTP API and a web page for editing photos with fine-tuned models",
    SERVE_USAGE,
    "Loads BASE once and serves, until SIGINT or SIGTERM, a web page at / and the JSON API\n"
    "of docs/serve.md: GET /api/models, POST /api/edit and /api/transition (a photo edited\n"
    "with a mix of the fine-tuned models of DIR, as PNG), POST /api/finetune (a fine-tuning\n"
    "job writing DIR/NAME), GET and DELETE /api/jobs/ID. Fine-tuned models are the files of\n"
    "DIR (.pt, .pth, .ckpt, .bin, .safetensors state dicts or .delta files made for BASE), by\n"
    "name, loaded on first use. One request uses the models at a time; the latents of\n"
    "uploaded photos are kept in memory, so a new mix of the same photo only generates.\n"
    "Prints 'listening on http://HOST:PORT/' once it accepts connections.\n"
    "\n"
    "options:\n"
    "  --model BASE          the diffusion model; required\n"
    CLI_MODEL_HELP
    "  --finetuned-dir DIR   the fine-tuned models; fine-tuning jobs write here; required\n"
    "  --host H              numeric address to bind (default 127.0.0.1: this machine only)\n"
    "  --port N              (default 8080; 0: a free port, printed)\n"
    "  --clip C --vocab V    CLIP weights and vocabulary, for POST /api/finetune\n"
    "  --arcface A           the identity network, for fine-tuning with id_w > 0\n"
    "  --predictor FILE      dlib's 68-landmark shape predictor, for align=1 (default\n"
    "                        /usr/share/dlib/shape_predictor_68_face_landmarks.dat)\n"
    "  --max-upload MB       bound of a request body (default 32; 413 past it)\n"
    "  --max-image-side N    bound of an uploaded image's width and height (default 4096)\n"
    "  --queue N             requests that may wait for the model (default 4; 503 past it)\n"
    "  --latent-cache N      inverted photos kept in memory (default 32)\n"
    "  --max-loaded N        fine-tuned models kept loaded (default 8)\n"
    CLI_COMPUTE_HELP
    "\n"
    "example:\n"
    "  diffclip serve --model celeba_hq.ckpt --finetuned-dir models/ \\\n"
    "      --clip ViT-B-16.pt --vocab bpe_simple_vocab_16e6.txt.gz\n"
    "  then open http://127.0.0.1:8080/",
    run_serve,
};
