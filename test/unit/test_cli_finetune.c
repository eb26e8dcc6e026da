/* diffclip finetune on the tiny golden models: PNG and JPEG inputs of other sizes, presets
 * with explicit overrides, one log line per image, resume, usage errors. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* A w x h test card with a colour gradient (not square: it gets centre-cropped). */
static int write_card(const char *path, int w, int h)
{
    dc_image img = {.width = w, .height = h, .channels = 3, .data = malloc((size_t)w * h * 3)};
    if (!img.data)
        return DC_ENOMEM;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.data + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / w);
            p[1] = (uint8_t)(255 * y / h);
            p[2] = (uint8_t)((x * y) & 255);
        }
    dc_status s = dc_image_write(path, &img);
    free(img.data);
    return s;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void common_args(char *buf, size_t size, const char *golden, const char *clip_dir)
{
    snprintf(buf, size,
             "finetune --model '%s/ddpm_unet/model.pt' --clip '%s/clip_vit/clip_state_dict.pt' "
             "--vocab '%s/bpe_simple_vocab_16e6.txt.gz' --device cpu --threads 1",
             golden, golden, clip_dir);
}

TEST(cli_finetune_trains_from_png_and_jpeg_and_resumes)
{
    char golden[1024], vocab[1024], clip_dir[1024];
    if (!golden_case("ddpm_unet", golden, sizeof golden) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    *strrchr(golden, '/') = '\0';
    snprintf(clip_dir, sizeof clip_dir, "%s", vocab);
    *strrchr(clip_dir, '/') = '\0';
    char png[1200], jpg[1200], out_path[1200], cache[1200], base[4096], args[8192],
        edit_args[8192];
    const char *tmp = test_tmpdir();
    CHECK_OK(write_card(path_join(png, sizeof png, tmp, "card.png"), 48, 40));
    CHECK_OK(write_card(path_join(jpg, sizeof jpg, tmp, "photo.jpg"), 40, 56));
    path_join(out_path, sizeof out_path, tmp, "angry.delta");
    path_join(cache, sizeof cache, tmp, "angry.dclat");
    common_args(base, sizeof base, golden, clip_dir);
    /* The preset gives the texts and its settings; the explicit numbers override them. */
    snprintf(args, sizeof args,
             "%s --images '%s' '%s' --preset angry --t0 300 --inv-steps 4 --train-steps 2 "
             "--epochs 2 --lr 1e-3 --out '%s'", base, png, jpg, out_path);
    static char out[65536], err[65536];
    CHECKF(run_cli(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(out, out_path) != NULL);
    CHECKF(count_lines(err, " image ") == 4, "%s", err);      /* 2 epochs x 2 images */
    CHECK(strstr(err, "epoch 2/2 image 2/2: loss ") != NULL);
    /* The epoch reports, with the default test images' grid beside the output. */
    CHECKF(count_lines(err, " done: mean loss ") == 2, "%s", err);
    char grid[1300];
    path_join(grid, sizeof grid, tmp, "angry.epoch2.test.png");
    CHECKF(strstr(err, grid) != NULL && access(grid, F_OK) == 0, "%s", err);
    CHECK(strstr(err, "'face' -> 'angry face'") != NULL);
    CHECK(access(cache, F_OK) == 0);

    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    char model_path[1200];
    dc_model *m = NULL, *tuned = NULL;
    CHECK_OK(dc_model_load(&m, path_join(model_path, sizeof model_path, golden,
                                         "ddpm_unet/model.pt"), &mo));
    CHECK_OK(dc_model_load_finetuned(&tuned, m, out_path, NULL));
    dc_model_free(tuned);
    dc_model_free(m);

    /* Editing with the fine-tuned delta gives images of the model's resolution. */
    char edits[1200], edited[1300];
    path_join(edits, sizeof edits, tmp, "edits");
    snprintf(edit_args, sizeof edit_args, "edit --model '%s' --finetuned '%s' --image '%s' "
             "--image '%s' --t0 300 --inv-steps 4 --gen-steps 4 -o '%s' --device cpu "
             "--threads 1", model_path, out_path, png, jpg, edits);
    CHECKF(run_cli(edit_args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    DIR *d = opendir(edits);
    CHECK(d != NULL);
    int images = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        dc_image img;
        CHECK_OK(dc_image_read(path_join(edited, sizeof edited, edits, e->d_name), &img));
        CHECKF(img.width == 32 && img.height == 32, "%s: %dx%d", e->d_name, img.width,
               img.height);
        dc_image_free(&img);
        images++;
    }
    closedir(d);
    CHECK(images == 2);

    /* A finished run resumes to nothing; the images are found in the cache. */
    snprintf(args + strlen(args), sizeof args - strlen(args), " --resume");
    CHECKF(run_cli(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    CHECKF(count_lines(err, "epoch ") == 0 && count_lines(err, "in the cache") == 2, "%s",
           err);
}

TEST(cli_finetune_usage_and_file_errors)
{
    char golden[1024], vocab[1024], clip_dir[1024];
    if (!golden_case("ddpm_unet", golden, sizeof golden) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    *strrchr(golden, '/') = '\0';
    snprintf(clip_dir, sizeof clip_dir, "%s", vocab);
    *strrchr(clip_dir, '/') = '\0';
    char base[4096], args[8192], out[8192], err[8192], x0[1200], ft[1200];
    common_args(base, sizeof base, golden, clip_dir);
    path_join(x0, sizeof x0, golden, "finetune_step/x0.npy");
    path_join(ft, sizeof ft, test_tmpdir(), "e.pt");
    const struct {
        const char *extra, *message;
        int status;
    } cases[] = {
        {"--src face --trg 'angry face'", "--images is required", 2},
        {"--images X --src face", "as many --src as --trg", 2},
        {"--images X", "give --src and --trg", 2},
        {"--images X --preset nope", "no preset called 'nope'", 2},
        {"--images X --preset angry --grad-mode fast", "--grad-mode", 2},
        {"--images X --preset angry --id-w 0.5", "--id-w needs --arcface", 2},
        {"--images /no/such.png --preset angry", "/no/such.png", 1},
        {"--images X --preset angry --t0 300 --inv-steps 4 --epochs 0", "epochs", 1},
        {"--images X --preset angry --dtype half", "--dtype is float32, bfloat16 or float16", 2},
        {"--images X --preset angry --grad-mode per-step --recompute", "--recompute", 2},
        {"--images X --preset angry --tests -1", "--tests must be >= 0", 2},
        {"--images X --preset angry --t0 300 --inv-steps 4 --dtype float16",
         "float16 needs a CUDA device", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[2048];
        const char *x = strstr(cases[i].extra, "X");
        if (x)
            snprintf(extra, sizeof extra, "%.*s'%s'%s", (int)(x - cases[i].extra),
                     cases[i].extra, x0, x + 1);
        else
            snprintf(extra, sizeof extra, "%s", cases[i].extra);
        snprintf(args, sizeof args, "%s %s --out '%s'", base, extra, ft);
        int status = run_cli(args, out, sizeof out, err, sizeof err);
        CHECKF(status == cases[i].status && strstr(err, cases[i].message),
               "case %zu: status %d: %s", i, status, err);
    }
    CHECK(access(ft, F_OK) != 0);
}
