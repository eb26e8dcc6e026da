/* The CLIP commands: clip-image, clip-text, clip-loss and clip-score. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "inputs.h"

enum { CONTEXT_LENGTH = 77, DEFAULT_IMAGE_SIZE = 256 };

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* What every CLIP command takes besides its own options. */
typedef struct clip_args {
    const char *clip;
    int half;
    cli_compute compute;
} clip_args;

#define CLIP_ARGS_DEFAULTS {NULL, 0, CLI_COMPUTE_DEFAULTS}
#define CLIP_OPTIONS(a)                                                                    \
    {"clip", CLI_STRING, &(a)->clip, 0}, {"half", CLI_FLAG, &(a)->half, 0},                \
    CLI_COMPUTE_OPTIONS(&(a)->compute)

static int load_clip(const clip_args *a, dc_clip_loss_form form, dc_clip **clip)
{
    dc_clip_options options;
    dc_clip_options_init(&options, DC_CLIP_OPTIONS_VERSION);
    options.device = a->compute.device;
    options.half = a->half;
    options.loss_form = form;
    if (dc_clip_load(clip, a->clip, &options) != DC_OK)
        return cli_file_error(a->clip);
    return 0;
}

/* Parses the options, checks the required ones and applies the compute options. */
static int parse(int argc, char **argv, const cli_option *options, size_t count,
                 const char **positional, int max_positional, int *positional_count,
                 const char *const *required, const clip_args *a)
{
    const char *usage = cli_find_command(argv[0])->usage;
    int status = cli_parse(argc, argv, options, count, positional, max_positional,
                           positional_count, usage);
    if (status == 0)
        status = cli_check_required(argv[0], usage, options, count, required);
    return status ? status : cli_compute_apply(argv[0], usage, &a->compute);
}

/* One forward pass over the array in `in_path` into `out_path`. */
static int encode(const clip_args *a, const char *in_path, const char *out_path,
                  dc_status (*fn)(dc_clip *, const dc_tensor *, dc_tensor *))
{
    dc_clip *clip = NULL;
    dc_tensor in = {0}, features = {0};
    int status = load_clip(a, DC_CLIP_LOSS_LOG, &clip);
    if (status == 0 && dc_npy_read(in_path, &in) != DC_OK)
        status = cli_file_error(in_path);
    if (status == 0 && fn(clip, &in, &features) != DC_OK)
        status = cli_file_error(in_path);
    if (status == 0 && dc_npy_write(out_path, &features) != DC_OK)
        status = cli_file_error(out_path);
    dc_tensor_free(&features);
    dc_tensor_free(&in);
    dc_clip_free(clip);
    return status;
}

int cli_run_clip_image(int argc, char **argv)
{
    clip_args a = CLIP_ARGS_DEFAULTS;
    const char *x = NULL, *out = NULL;
    const cli_option options[] = {CLIP_OPTIONS(&a), {"x", CLI_STRING, &x, 0},
                                  {"out", CLI_STRING, &out, 0}};
    static const char *const required[] = {"clip", "x", "out", NULL};
    int status = parse(argc, argv, options, COUNT(options), NULL, 0, NULL, required, &a);
    return status ? status : encode(&a, x, out, dc_clip_encode_image);
}

int cli_run_clip_text(int argc, char **argv)
{
    clip_args a = CLIP_ARGS_DEFAULTS;
    const char *tokens = NULL, *out = NULL;
    const cli_option options[] = {CLIP_OPTIONS(&a), {"tokens", CLI_STRING, &tokens, 0},
                                  {"out", CLI_STRING, &out, 0}};
    static const char *const required[] = {"clip", "tokens", "out", NULL};
    int status = parse(argc, argv, options, COUNT(options), NULL, 0, NULL, required, &a);
    return status ? status : encode(&a, tokens, out, dc_clip_encode_text);
}

int cli_run_clip_loss(int argc, char **argv)
{
    clip_args a = CLIP_ARGS_DEFAULTS;
    const char *vocab = NULL, *src = NULL, *trg = NULL, *x_src = NULL, *x_trg = NULL;
    const char *out = NULL, *grad_out = NULL, *form = "log";
    int size = DEFAULT_IMAGE_SIZE;
    const cli_option options[] = {
        CLIP_OPTIONS(&a),
        {"vocab", CLI_STRING, &vocab, 0},
        {"src", CLI_STRING, &src, 0},
        {"trg", CLI_STRING, &trg, 0},
        {"x-src", CLI_STRING, &x_src, 0},
        {"x-trg", CLI_STRING, &x_trg, 0},
        {"size", CLI_INT, &size, 0},
        {"out", CLI_STRING, &out, 0},
        {"grad-out", CLI_STRING, &grad_out, 0},
        {"loss-form", CLI_STRING, &form, 0},
    };
    static const char *const required[] = {"clip", "vocab", "src", "trg", "x-src", "x-trg",
                                           "out", NULL};
    int status = parse(argc, argv, options, COUNT(options), NULL, 0, NULL, required, &a);
    if (status)
        return status;
    const char *usage = cli_find_command(argv[0])->usage;
    int direction = strcmp(form, "direction") == 0;
    if (!direction && strcmp(form, "log") != 0)
        return cli_command_usage_error(argv[0], usage,
                                       "--loss-form wants log or direction, not '%s'", form);
    if (size < 1)
        return cli_command_usage_error(argv[0], usage, "--size wants a side >= 1, not %d",
                                       size);

    dc_clip *clip = NULL;
    dc_tokenizer *tok = NULL;
    dc_tensor images_src = {0}, images_trg = {0}, grad = {0};
    double losses[2];
    status = load_clip(&a, direction ? DC_CLIP_LOSS_DIRECTION : DC_CLIP_LOSS_LOG, &clip);
    if (status == 0 && dc_tokenizer_new(&tok, vocab) != DC_OK)
        status = cli_file_error(vocab);
    if (status == 0)
        status = cli_read_images(x_src, size, NULL, NULL, &images_src);
    if (status == 0)
        status = cli_read_images(x_trg, size, &images_src, NULL, &images_trg);
    if (status == 0 && dc_clip_loss(clip, tok, src, trg, &images_src, &images_trg, losses,
                                    grad_out ? &grad : NULL) != DC_OK)
        status = cli_library_error();
    if (status == 0) {
        float values[2] = {(float)losses[0], (float)losses[1]};
        dc_tensor l = {.dtype = DC_FLOAT32, .ndim = 1, .shape = {2}, .data = values};
        if (dc_npy_write(out, &l) != DC_OK)
            status = cli_file_error(out);
    }
    if (status == 0 && grad_out && dc_npy_write(grad_out, &grad) != DC_OK)
        status = cli_file_error(grad_out);
    dc_tensor_free(&grad);
    dc_tensor_free(&images_trg);
    dc_tensor_free(&images_src);
    dc_tokenizer_free(tok);
    dc_clip_free(clip);
    return status;
}

/* Cosine similarity of row `row` of `rows` (float32 [N, D]) with `v` (float32 [D]). */
static double cosine(const dc_tensor *rows, int64_t row, const float *v)
{
    int64_t d = rows->shape[1];
    const float *r = (const float *)rows->data + row * d;
    double dot = 0, rr = 0, vv = 0;
    for (int64_t i = 0; i < d; i++) {
        dot += (double)r[i] * v[i];
        rr += (double)r[i] * r[i];
        vv += (double)v[i] * v[i];
    }
    return dot / sqrt(rr * vv);
}

static int score(const clip_args *a, const char *vocab, const char *image_path, int truncate,
                 const char **texts, int count)
{
    dc_clip *clip = NULL;
    dc_tokenizer *tok = NULL;
    dc_image img = {0};
    dc_tensor x = {0}, image_features = {0}, tokens = {0}, text_features = {0};
    int status = load_clip(a, DC_CLIP_LOSS_LOG, &clip);
    if (status == 0 && dc_tokenizer_new(&tok, vocab) != DC_OK)
        status = cli_file_error(vocab);
    if (status == 0 && (dc_image_read(image_path, &img) != DC_OK ||
                        dc_clip_preprocess_image(clip, &img, &x) != DC_OK))
        status = cli_file_error(image_path);
    if (status == 0 && (dc_clip_encode_image(clip, &x, &image_features) != DC_OK ||
                        dc_tokenize(tok, texts, (size_t)count, CONTEXT_LENGTH, truncate,
                                    &tokens) != DC_OK ||
                        dc_clip_encode_text(clip, &tokens, &text_features) != DC_OK))
        status = cli_library_error();
    for (int i = 0; status == 0 && i < count; i++)
        printf("%.6f\t%s\n", cosine(&text_features, i, image_features.data), texts[i]);
    if (status == 0 && fflush(stdout) != 0) {
        fprintf(stderr, "diffclip: cannot write the scores\n");
        status = CLI_EXIT_FAILURE;
    }
    dc_tensor_free(&text_features);
    dc_tensor_free(&tokens);
    dc_tensor_free(&image_features);
    dc_tensor_free(&x);
    dc_image_free(&img);
    dc_tokenizer_free(tok);
    dc_clip_free(clip);
    return status;
}

int cli_run_clip_score(int argc, char **argv)
{
    clip_args a = CLIP_ARGS_DEFAULTS;
    const char *vocab = NULL, *image = NULL;
    int truncate = 0;
    const cli_option options[] = {
        CLIP_OPTIONS(&a),
        {"vocab", CLI_STRING, &vocab, 0},
        {"image", CLI_STRING, &image, 0},
        {"truncate", CLI_FLAG, &truncate, 0},
    };
    static const char *const required[] = {"clip", "vocab", "image", NULL};
    const char **texts = malloc((size_t)argc * sizeof *texts);
    if (!texts) {
        fprintf(stderr, "diffclip: clip-score: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int count = 0;
    int status = parse(argc, argv, options, COUNT(options), texts, argc, &count, required, &a);
    if (status == 0 && count == 0)
        status = cli_command_usage_error(argv[0], cli_find_command(argv[0])->usage,
                                         "no TEXT given");
    if (status == 0)
        status = score(&a, vocab, image, truncate, texts, count);
    free(texts);
    return status;
}
