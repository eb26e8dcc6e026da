/* The CLIP commands of the built CLI (DC_CLI, set by make test) against the golden cases
 * clip_vit and arcface_irse: tokenize exactly, features and losses within
 * 1e-4 * (1 + max|golden|), the gradient within relative L2 1e-3; clip-score's output; exit
 * statuses and messages of usage errors (2) and failures (1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/file.h"
#include "io/json.h"
#include "io/npy.h"

typedef struct cli_run {
    int status;                 /* exit status (128 + signal when one ended the CLI) */
    char out[8192], err[4096];  /* stdout and stderr, NUL-terminated, truncated */
} cli_run;

/* Runs "$DC_CLI args..." (args NULL-terminated) with stdout and stderr captured. 0 when the
 * CLI cannot be run (the test is then skipped or failed). */
static int spawn_cli(cli_run *r, const char *const *args)
{
    r->status = run_cli_argv(args, r->out, sizeof r->out, r->err, sizeof r->err);
    return r->status >= 0;
}

#define RUN(r, ...) spawn_cli(r, (const char *const[]){__VA_ARGS__, NULL})

/* A run that must succeed. */
#define RUN_OK(r, ...)                                                                     \
    do {                                                                                   \
        if (!RUN(r, __VA_ARGS__))                                                          \
            return;                                                                        \
        CHECKF((r)->status == 0, "exit %d: %s", (r)->status, (r)->err);                    \
    } while (0)

static const char *tmp(const char *file, char *buf, size_t size)
{
    return path_join(buf, size, test_tmpdir(), file);
}

/* The arrays at `path` (ours) and dir/file (golden) have the same numel and max|a - b| is
 * within the case tolerance; prints the error. */
static int close_to_golden(const char *path, const char *dir, const char *file)
{
    char golden[1024];
    dc_tensor got = {0}, want = {0};
    int ok = io_npy_read_file(path, &got) == DC_OK &&
             io_npy_read_file(path_join(golden, sizeof golden, dir, file), &want) == DC_OK &&
             got.dtype == DC_FLOAT32 && want.dtype == DC_FLOAT32 && got.ndim == want.ndim &&
             dc_tensor_numel(&got) == dc_tensor_numel(&want);
    for (int d = 0; ok && d < got.ndim; d++)
        ok = got.shape[d] == want.shape[d];
    if (!ok) {
        test_fail_at(__FILE__, __LINE__, "%s: unreadable or not float32 of %s's shape", path,
                     file);
    } else {
        size_t n = (size_t)dc_tensor_numel(&want);
        double err = max_abs_diff(got.data, want.data, n);
        double tol = golden_tolerance(want.data, n);
        printf("  %s: max error %.3g (tolerance %.3g)\n", file, err, tol);
        if (!(err <= tol)) {
            test_fail_at(__FILE__, __LINE__, "%s: error %.3g over %.3g", file, err, tol);
            ok = 0;
        }
    }
    dc_tensor_free(&got);
    dc_tensor_free(&want);
    return ok;
}

/* The JSON array of strings in dir/strings.json (count <= cap), malloc'd. */
static int read_strings(const char *dir, char **texts, int cap, int *count)
{
    char path[1024];
    io_mapped_file f;
    int st = io_map_file(path_join(path, sizeof path, dir, "strings.json"), &f);
    if (st != DC_OK)
        return st;
    io_json j;
    io_json_init(&j, f.data, f.size, path);
    size_t n = 0;
    int done = 0;
    *count = 0;
    st = io_json_array_begin(&j);
    while (st == DC_OK && !(st = io_json_array_next(&j, &n, &done)) && !done && *count < cap)
        st = io_json_string(&j, &texts[(*count)++]);
    io_unmap_file(&f);
    return st == DC_OK && done ? DC_OK : DC_EFORMAT;
}

TEST(tokenize_matches_the_golden_tokens_exactly)
{
    char dir[1024], vocab[1024], out[1024], golden[1024];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    char *texts[16] = {0};
    int count = 0;
    CHECK_OK(read_strings(dir, texts, 16, &count));
    CHECK(count == 8);
    cli_run r;
    tmp("tokens.npy", out, sizeof out);
    int ran = RUN(&r, "tokenize", "--vocab", vocab, "--out", out, "--", texts[0], texts[1],
                  texts[2], texts[3], texts[4], texts[5], texts[6], texts[7]);
    for (int i = 0; i < count; i++)
        free(texts[i]);
    if (!ran)
        return;
    CHECKF(r.status == 0, "exit %d: %s", r.status, r.err);
    dc_tensor got = {0}, want = {0};
    CHECK_OK(io_npy_read_file(out, &got));
    CHECK_OK(io_npy_read_file(path_join(golden, sizeof golden, dir, "tokens.npy"), &want));
    int same = got.dtype == DC_INT64 && got.ndim == 2 && got.shape[0] == 8 &&
               got.shape[1] == 77 && want.dtype == DC_INT64 &&
               dc_tensor_numel(&want) == 8 * 77 &&
               memcmp(got.data, want.data, 8 * 77 * sizeof(int64_t)) == 0;
    dc_tensor_free(&got);
    dc_tensor_free(&want);
    CHECK(same);
}

TEST(clip_image_and_clip_text_match_the_golden_features)
{
    char dir[1024], clip[1024], x[1024], tokens[1024], out[1024];
    if (!golden_case("clip_vit", dir, sizeof dir))
        return;
    cli_run r;
    path_join(clip, sizeof clip, dir, "clip_torchscript.pt");
    path_join(x, sizeof x, dir, "image.npy");
    RUN_OK(&r, "clip-image", "--clip", clip, "--x", x, "--out",
           tmp("image_features.npy", out, sizeof out), "--device", "cpu", "--threads", "1");
    CHECK(close_to_golden(out, dir, "image_features.npy"));
    path_join(clip, sizeof clip, dir, "clip_state_dict.pt");
    path_join(tokens, sizeof tokens, dir, "tokens.npy");
    RUN_OK(&r, "clip-text", "--clip", clip, "--tokens", tokens, "--out",
           tmp("text_features.npy", out, sizeof out));
    CHECK(close_to_golden(out, dir, "text_features.npy"));
}

static float *read_floats(const char *path, int64_t numel)
{
    dc_tensor t = {0};
    if (io_npy_read_file(path, &t) != DC_OK || t.dtype != DC_FLOAT32 ||
        dc_tensor_numel(&t) != numel) {
        dc_tensor_free(&t);
        return NULL;
    }
    return t.data;
}

TEST(clip_loss_and_its_gradient_match_the_golden_case)
{
    char dir[1024], vocab[1024], clip[1024], x_src[1024], x_trg[1024], golden[1024];
    char loss[1024], grad[1024], grad_dir[1024];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    path_join(clip, sizeof clip, dir, "clip_torchscript.pt");
    path_join(x_src, sizeof x_src, dir, "x_src.npy");
    path_join(x_trg, sizeof x_trg, dir, "x_trg.npy");
    tmp("loss.npy", loss, sizeof loss);
    tmp("grad.npy", grad, sizeof grad);
    tmp("grad_direction.npy", grad_dir, sizeof grad_dir);
    cli_run r;
    RUN_OK(&r, "clip-loss", "--clip", clip, "--vocab", vocab, "--src", "face", "--trg",
           "angry face", "--x-src", x_src, "--x-trg", x_trg, "--out", loss, "--grad-out", grad);
    CHECK(close_to_golden(loss, dir, "loss.npy"));

    dc_tensor want = {0};
    CHECK_OK(io_npy_read_file(path_join(golden, sizeof golden, dir, "grad_x_trg.npy"), &want));
    int64_t n = dc_tensor_numel(&want);
    float *got = read_floats(grad, n);
    double rel = got ? relative_l2(got, want.data, (size_t)n) : 1e30;
    printf("  grad_x_trg.npy: relative L2 error %.3g (tolerance 1e-3)\n", rel);
    dc_tensor_free(&want);
    CHECKF(rel <= 1e-3, "gradient relative L2 error %.3g", rel);

    /* The paper's form: d L_dir = (2 - L_dir) d(-log((2 - L_dir) / 2)). */
    RUN_OK(&r, "clip-loss", "--clip", clip, "--vocab", vocab, "--src", "face", "--trg",
           "angry face", "--x-src", x_src, "--x-trg", x_trg, "--out", loss, "--grad-out",
           grad_dir, "--loss-form", "direction");
    float *l = read_floats(loss, 2), *g = read_floats(grad_dir, n);
    int ok = l && g;
    if (ok)
        for (int64_t i = 0; i < n; i++)
            got[i] *= 2.0f - l[0];
    double rel_dir = ok ? relative_l2(got, g, (size_t)n) : 1e30;
    free(got), free(l), free(g);
    CHECKF(rel_dir <= 1e-5, "direction-form gradient off by relative L2 %.3g", rel_dir);
}

TEST(id_loss_matches_the_golden_case)
{
    char dir[1024], net[1024], x[1024], x_hat[1024], loss[1024], f[1024], f_hat[1024];
    if (!golden_case("arcface_irse", dir, sizeof dir))
        return;
    path_join(net, sizeof net, dir, "irse_fp16.pt");
    path_join(x, sizeof x, dir, "x.npy");
    path_join(x_hat, sizeof x_hat, dir, "x_hat.npy");
    cli_run r;
    RUN_OK(&r, "id-loss", "--arcface", net, "--x", x, "--x-hat", x_hat, "--out",
           tmp("id_loss.npy", loss, sizeof loss), "--features-out",
           tmp("features.npy", f, sizeof f), "--hat-features-out",
           tmp("features_hat.npy", f_hat, sizeof f_hat), "--device", "cpu");
    CHECK(close_to_golden(loss, dir, "id_loss.npy"));
    CHECK(close_to_golden(f, dir, "features.npy"));
    CHECK(close_to_golden(f_hat, dir, "features_hat.npy"));
}

/* An image whose three channels are ramps, so that it is neither flat nor square. */
static int write_photo(const char *path)
{
    dc_image img = {.width = 300, .height = 250, .channels = 3};
    img.data = malloc((size_t)img.width * img.height * 3);
    if (!img.data)
        return DC_ENOMEM;
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
            uint8_t *p = img.data + ((size_t)y * img.width + x) * 3;
            p[0] = (uint8_t)(x * 255 / img.width);
            p[1] = (uint8_t)(y * 255 / img.height);
            p[2] = (uint8_t)((x + y) % 256);
        }
    int st = dc_image_write(path, &img);
    dc_image_free(&img);
    return st;
}

TEST(clip_score_prints_one_line_per_text)
{
    char dir[1024], vocab[1024], clip[1024], photo[1024];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    path_join(clip, sizeof clip, dir, "clip_torchscript.pt");
    CHECK_OK(write_photo(tmp("photo.png", photo, sizeof photo)));
    const char *texts[3] = {"a photo of a cat", "an angry face", "-a text after --"};
    cli_run r;
    RUN_OK(&r, "clip-score", "--clip", clip, "--vocab", vocab, "--image", photo, texts[0],
           texts[1], "--", texts[2]);

    /* The same scores through the library: CLIP's photo preprocessing, both encoders. */
    dc_clip *model = NULL;
    dc_tokenizer *tok = NULL;
    dc_image img = {0};
    dc_tensor x = {0}, fi = {0}, tokens = {0}, ft = {0};
    CHECK_OK(dc_clip_load(&model, clip, NULL));
    int st = dc_tokenizer_new(&tok, vocab);
    if (st == DC_OK)
        st = dc_image_read(photo, &img);
    if (st == DC_OK)
        st = dc_clip_preprocess_image(model, &img, &x);
    if (st == DC_OK)
        st = dc_clip_encode_image(model, &x, &fi);
    if (st == DC_OK)
        st = dc_tokenize(tok, texts, 3, 77, 0, &tokens);
    if (st == DC_OK)
        st = dc_clip_encode_text(model, &tokens, &ft);
    int64_t d = dc_clip_embed_dim(model);
    int shape_ok = st == DC_OK && x.ndim == 4 && x.shape[0] == 1 && x.shape[1] == 3 &&
                   x.shape[2] == 224 && x.shape[3] == 224;
    double expected[3] = {0};
    for (int i = 0; st == DC_OK && i < 3; i++) {
        const float *a = fi.data, *b = (const float *)ft.data + i * d;
        double dot = 0, aa = 0, bb = 0;
        for (int64_t k = 0; k < d; k++)
            dot += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
        expected[i] = dot / sqrt(aa * bb);
    }
    dc_tensor_free(&x), dc_tensor_free(&fi), dc_tensor_free(&tokens), dc_tensor_free(&ft);
    dc_image_free(&img);
    dc_tokenizer_free(tok);
    dc_clip_free(model);
    CHECK_OK(st);
    CHECK(shape_ok);

    char *line = r.out;
    for (int i = 0; i < 3; i++) {
        char *end = strchr(line, '\n'), *tab = strchr(line, '\t');
        CHECKF(end && tab && tab < end, "line %d of the output is not SCORE<TAB>TEXT: %s", i,
               r.out);
        *end = *tab = '\0';
        char *rest;
        double score = strtod(line, &rest);
        CHECKF(rest == tab, "line %d: '%s' is not a number", i, line);
        CHECKF(strcmp(tab + 1, texts[i]) == 0, "line %d names '%s', not '%s'", i, tab + 1,
               texts[i]);
        CHECK_NEAR(score, expected[i], 1e-5);
        line = end + 1;
    }
    CHECKF(*line == '\0', "more output than one line per text: %s", line);
}

/* A run that must fail with `status` and print `needle` on stderr. */
static int fails_with(const char *const *args, int status, const char *needle)
{
    cli_run r;
    if (!spawn_cli(&r, args))
        return 0;
    if (r.status != status || !strstr(r.err, needle)) {
        test_fail_at(__FILE__, __LINE__, "%s: exit %d (expected %d), stderr without '%s': %s",
                     args[0], r.status, status, needle, r.err);
        return 0;
    }
    return 1;
}

#define FAILS_WITH(status, needle, ...)                                                    \
    CHECK(fails_with((const char *const[]){__VA_ARGS__, NULL}, status, needle))

TEST(usage_errors_exit_2_with_a_usage_line)
{
    FAILS_WITH(2, "--out is required", "clip-image", "--clip", "c.pt", "--x", "x.npy");
    FAILS_WITH(2, "usage: diffclip clip-image", "clip-image", "--clip", "c.pt", "--x", "x.npy");
    FAILS_WITH(2, "unknown option '--bogus'", "clip-text", "--bogus", "1");
    FAILS_WITH(2, "--device wants", "clip-text", "--clip", "c", "--tokens", "t", "--out", "o",
               "--device", "gpu");
    FAILS_WITH(2, "--threads wants", "id-loss", "--arcface", "a", "--x", "x", "--x-hat", "y",
               "--out", "o", "--threads", "0");
    FAILS_WITH(2, "--threads wants an integer", "clip-image", "--threads", "many");
    FAILS_WITH(2, "no TEXT given", "tokenize", "--vocab", "v", "--out", "t.npy");
    FAILS_WITH(2, "no TEXT given", "clip-score", "--clip", "c", "--vocab", "v", "--image", "i");
    FAILS_WITH(2, "--loss-form wants", "clip-loss", "--clip", "c", "--vocab", "v", "--src", "a",
               "--trg", "b", "--x-src", "a.npy", "--x-trg", "b.npy", "--out", "l.npy",
               "--loss-form", "cosine");
    FAILS_WITH(2, "unexpected argument 'extra'", "clip-image", "extra");
}

TEST(missing_files_exit_1_naming_the_file)
{
    char dir[1024], vocab[1024], clip[1024], missing[1024], out[1024], msg[1100];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    path_join(clip, sizeof clip, dir, "clip_torchscript.pt");
    tmp("no_such_file.npy", missing, sizeof missing);
    tmp("out.npy", out, sizeof out);
    snprintf(msg, sizeof msg, "diffclip: %s: ", missing);
    FAILS_WITH(1, msg, "clip-image", "--clip", clip, "--x", missing, "--out", out);
    FAILS_WITH(1, msg, "clip-image", "--clip", missing, "--x", missing, "--out", out);
    FAILS_WITH(1, msg, "tokenize", "--vocab", missing, "--out", out, "face");
    FAILS_WITH(1, msg, "clip-score", "--clip", clip, "--vocab", vocab, "--image", missing, "x");
    FAILS_WITH(1, msg, "id-loss", "--arcface", missing, "--x", "x", "--x-hat", "y", "--out",
               out);
    /* An input of the wrong shape names the file too. */
    char image[1024], tokens[1024];
    path_join(image, sizeof image, dir, "image.npy");
    path_join(tokens, sizeof tokens, dir, "tokens.npy");
    snprintf(msg, sizeof msg, "diffclip: %s: ", tokens);
    FAILS_WITH(1, msg, "clip-image", "--clip", clip, "--x", tokens, "--out", out);
    snprintf(msg, sizeof msg, "diffclip: %s: expected float32 images", image);
    char x_src[1024];
    path_join(x_src, sizeof x_src, dir, "x_src.npy");
    FAILS_WITH(1, msg, "clip-loss", "--clip", clip, "--vocab", vocab, "--src", "a", "--trg",
               "b", "--x-src", x_src, "--x-trg", image, "--out", out);
}

TEST(every_clip_command_has_help_with_options_and_an_example)
{
    static const char *const commands[] = {"tokenize", "clip-image", "clip-text", "clip-loss",
                                           "clip-score", "id-loss"};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        cli_run r;
        RUN_OK(&r, "help", commands[i]);
        CHECKF(strstr(r.out, "usage: diffclip ") && strstr(r.out, "options:") &&
               strstr(r.out, "example:\n  diffclip "),
               "help %s lacks usage, options or an example", commands[i]);
        if (strcmp(commands[i], "tokenize") != 0)
            CHECKF(strstr(r.out, "--device") && strstr(r.out, "--threads") &&
                   strstr(r.out, "default"), "help %s lacks --device/--threads", commands[i]);
    }
}
