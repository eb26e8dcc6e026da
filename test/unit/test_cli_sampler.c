/* The mixing commands of the built CLI on the golden noise_combination models (A: the
 * ddpm_unet model, B: model_b.pt, 32 x 32): generate with several models against mixed.npy,
 * edit / transition / translate from PNG and JPEG inputs of another size (outputs of the
 * model's resolution; --grid 3 wide, the strip K wide; an array of N images into N files),
 * usage errors (2) and failures (1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"

typedef struct paths {
    char dir[1024], a[1200], b[1200], lat[1200], png[1200], jpg[1200];
} paths;

/* A 48 x 40 colour gradient: not square, not the models' size. */
static int write_inputs(paths *p)
{
    enum { W = 48, H = 40 };
    static uint8_t pixels[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *px = pixels + (y * W + x) * 3;
            px[0] = (uint8_t)(x * 5), px[1] = (uint8_t)(y * 6), px[2] = (uint8_t)((x + y) * 2);
        }
    dc_image img = {W, H, 3, pixels};
    path_join(p->png, sizeof p->png, test_tmpdir(), "face.png");
    path_join(p->jpg, sizeof p->jpg, test_tmpdir(), "photo.jpg");
    return dc_image_write(p->png, &img) == DC_OK && dc_image_write(p->jpg, &img) == DC_OK;
}

static int setup(paths *p)
{
    if (!golden_case("noise_combination", p->dir, sizeof p->dir))
        return 0;
    path_join(p->a, sizeof p->a, p->dir, "../ddpm_unet/model.pt");
    path_join(p->b, sizeof p->b, p->dir, "model_b.pt");
    path_join(p->lat, sizeof p->lat, p->dir, "lat.npy");
    if (!write_inputs(p)) {
        test_fail_at(__FILE__, __LINE__, "writing inputs: %s", dc_last_error());
        return 0;
    }
    return 1;
}

static int image_size(const char *path, int *w, int *h)
{
    dc_image img;
    if (dc_image_read(path, &img) != DC_OK)
        return 0;
    *w = img.width, *h = img.height;
    dc_image_free(&img);
    return 1;
}

/* Small runs: t0 300, 3 inversion and 2 generation steps. */
#define FAST "--t0 300 --inv-steps 3 --gen-steps 2 --device cpu"

TEST(generate_mixes_several_models_as_the_golden_case)
{
    paths p;
    char args[8192], out[8192], mix[1200], sched[1200], single[1200], weighted[1200];
    if (!setup(&p))
        return;
    path_join(mix, sizeof mix, test_tmpdir(), "mix.npy");
    path_join(sched, sizeof sched, test_tmpdir(), "sched.npy");
    path_join(single, sizeof single, test_tmpdir(), "single.npy");
    path_join(weighted, sizeof weighted, test_tmpdir(), "weighted.npy");
    snprintf(args, sizeof args, "generate --model '%s' --model '%s' --gamma 0.65,0.35 "
             "--latent '%s' --t0 300 --steps 4 --out '%s'", p.a, p.b, p.lat, mix);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    snprintf(args, sizeof args, "generate --model '%s' --model '%s' --schedule "
             "'{0: [0.65, 0.35], 300: [0.65, 0.35]}' --latent '%s' --t0 300 --steps 4 "
             "--out '%s'", p.a, p.b, p.lat, sched);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    dc_tensor ours, golden, other;
    char golden_path[1200];
    CHECK_OK(io_npy_read_file(mix, &ours));
    CHECK_OK(io_npy_read_file(path_join(golden_path, sizeof golden_path, p.dir, "mixed.npy"),
                              &golden));
    size_t n = 3 * 32 * 32;
    const float *row = (const float *)golden.data + n;          /* gamma 0.35 */
    CHECK(dc_tensor_numel(&ours) == (int64_t)n);
    CHECK(max_abs_diff(ours.data, row, n) <= golden_tolerance(row, n));
    CHECK_OK(io_npy_read_file(sched, &other));
    CHECK(memcmp(ours.data, other.data, n * sizeof(float)) == 0);
    dc_tensor_free(&other);
    /* Weights {0, 1}: model B alone, bit for bit. */
    snprintf(args, sizeof args, "generate --model '%s' --latent '%s' --t0 300 --steps 4 "
             "--out '%s'", p.b, p.lat, single);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    snprintf(args, sizeof args, "generate --model '%s' --model '%s' --gamma 0,1 --latent '%s' "
             "--t0 300 --steps 4 --out '%s'", p.a, p.b, p.lat, weighted);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    dc_tensor a, b;
    CHECK_OK(io_npy_read_file(single, &a));
    CHECK_OK(io_npy_read_file(weighted, &b));
    CHECK(memcmp(a.data, b.data, n * sizeof(float)) == 0);
    dc_tensor_free(&a), dc_tensor_free(&b);
    dc_tensor_free(&ours), dc_tensor_free(&golden);
}

TEST(edit_writes_images_of_the_model_resolution)
{
    paths p;
    char args[8192], out[8192], png_out[1200], grid_out[1200], dir[1200], file[1300];
    int w, h;
    if (!setup(&p))
        return;
    path_join(png_out, sizeof png_out, test_tmpdir(), "edit.png");
    path_join(grid_out, sizeof grid_out, test_tmpdir(), "grid.jpg");
    path_join(dir, sizeof dir, test_tmpdir(), "edits");
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --ratio 0.7 --image '%s' "
             FAST " -o '%s'", p.a, p.b, p.png, png_out);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(png_out, &w, &h) && w == 32 && h == 32);
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' --grid "
             FAST " -o '%s'", p.a, p.b, p.jpg, grid_out);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(grid_out, &w, &h) && w == 3 * 32 && h == 32);
    /* Two attributes, two inputs (one positional): a directory with one file per input. */
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s:0.4' --finetuned '%s:0.3' "
             "--image '%s' '%s' " FAST " -o '%s'", p.a, p.b, p.b, p.png, p.jpg, dir);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(path_join(file, sizeof file, dir, "face.png"), &w, &h) && w == 32);
    CHECK(image_size(path_join(file, sizeof file, dir, "photo.png"), &w, &h) && h == 32);
}

/* Pixels of a and b differ by at most `tolerance` (8-bit levels). */
static int images_close(const char *a, const char *b, int tolerance)
{
    dc_image x, y;
    if (dc_image_read(a, &x) != DC_OK)
        return 0;
    if (dc_image_read(b, &y) != DC_OK) {
        dc_image_free(&x);
        return 0;
    }
    int close = x.width == y.width && x.height == y.height && x.channels == y.channels;
    for (size_t i = 0; close && i < (size_t)x.width * (size_t)x.height * (size_t)x.channels; i++)
        close = abs(x.data[i] - y.data[i]) <= tolerance;
    dc_image_free(&x), dc_image_free(&y);
    return close;
}

/* An (N, 3, H, W) array edited into a directory: one file per image, <stem>_<i>.png, each
 * what that image edited alone gives; with --grid each is 3 wide, and a transition's K. */
TEST(an_array_of_images_gives_one_output_per_image)
{
    paths p;
    char args[8192], out[8192], batch[1200], single[1200], dir[1200], grids[1200],
        strips[1200], file[1300], alone[1300];
    int w, h;
    if (!setup(&p))
        return;
    path_join(batch, sizeof batch, test_tmpdir(), "three.npy");
    path_join(single, sizeof single, test_tmpdir(), "second.npy");
    path_join(dir, sizeof dir, test_tmpdir(), "batch_edits/");
    path_join(grids, sizeof grids, test_tmpdir(), "batch_grids/");
    path_join(strips, sizeof strips, test_tmpdir(), "batch_strips/");
    enum { N = 3, PER = 3 * 32 * 32 };
    static float pixels[N * PER];
    for (int i = 0; i < N * PER; i++)
        pixels[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
    dc_tensor t = {DC_FLOAT32, 4, {N, 3, 32, 32}, pixels};
    CHECK_OK(dc_npy_write(batch, &t));
    dc_tensor second = {DC_FLOAT32, 4, {1, 3, 32, 32}, pixels + PER};
    CHECK_OK(dc_npy_write(single, &second));
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' " FAST
             " -o '%s'", p.a, p.b, batch, dir);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    for (int i = 0; i < N; i++) {
        snprintf(file, sizeof file, "%sthree_%d.png", dir, i);
        CHECK(image_size(file, &w, &h) && w == 32 && h == 32);
    }
    path_join(alone, sizeof alone, test_tmpdir(), "second.png");
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' " FAST
             " -o '%s'", p.a, p.b, single, alone);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    snprintf(file, sizeof file, "%sthree_1.png", dir);
    CHECK(images_close(file, alone, 2));
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' --grid "
             "--preset fashion_ankle_boot " FAST " -o '%s'", p.a, p.b, batch, grids);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    snprintf(file, sizeof file, "%sthree_2.png", grids);
    CHECK(image_size(file, &w, &h) && w == 3 * 32 && h == 32);
    snprintf(args, sizeof args, "transition --model '%s' --finetuned '%s' --image '%s' "
             "--count 4 " FAST " -o '%s'", p.a, p.b, batch, strips);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    snprintf(file, sizeof file, "%sthree_2.png", strips);
    CHECK(image_size(file, &w, &h) && w == 4 * 32 && h == 32);
    snprintf(file, sizeof file, "%sthree_3.png", strips);
    CHECK(!image_size(file, &w, &h));
}

TEST(edit_through_a_cache_and_with_a_schedule)
{
    paths p;
    char args[8192], out[8192], cache[1200], first[1200], second[1200];
    if (!setup(&p))
        return;
    path_join(cache, sizeof cache, test_tmpdir(), "latents.dclat");
    path_join(first, sizeof first, test_tmpdir(), "first.npy");
    path_join(second, sizeof second, test_tmpdir(), "second.npy");
    for (int run = 0; run < 2; run++) {
        snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --schedule "
                 "'200:1;0:0.5' --cache '%s' --image '%s' " FAST " -o '%s'", p.a, p.b, cache,
                 p.png, run ? second : first);
        CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    }
    FILE *f = fopen(cache, "rb");
    CHECK(f != NULL);
    fclose(f);
    dc_tensor a, b;
    CHECK_OK(io_npy_read_file(first, &a));
    CHECK_OK(io_npy_read_file(second, &b));
    CHECK(a.ndim == 4 && a.shape[0] == 1 && a.shape[3] == 32);
    CHECK(dc_tensor_numel(&a) == dc_tensor_numel(&b) &&
          memcmp(a.data, b.data, (size_t)dc_tensor_numel(&a) * sizeof(float)) == 0);
    dc_tensor_free(&a), dc_tensor_free(&b);
}

TEST(transition_strip_is_count_images_wide)
{
    paths p;
    char args[8192], out[8192], strip[1200];
    int w, h;
    if (!setup(&p))
        return;
    path_join(strip, sizeof strip, test_tmpdir(), "strip.png");
    snprintf(args, sizeof args, "transition --model '%s' --finetuned '%s' --image '%s' "
             "--count 4 " FAST " -o '%s'", p.a, p.b, p.jpg, strip);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(strip, &w, &h) && w == 4 * 32 && h == 32);
}

TEST(translate_writes_the_translation_and_its_grid)
{
    paths p;
    char args[8192], out[8192], one[1200], grid[1200];
    int w, h;
    if (!setup(&p))
        return;
    path_join(one, sizeof one, test_tmpdir(), "translated.png");
    path_join(grid, sizeof grid, test_tmpdir(), "translated_grid.png");
    snprintf(args, sizeof args, "translate --model '%s' --finetuned '%s:0.8' --image '%s' "
             "--repeats 2 --seed 7 " FAST " -o '%s'", p.a, p.b, p.png, one);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(one, &w, &h) && w == 32 && h == 32);
    snprintf(args, sizeof args, "translate --model '%s' --finetuned '%s' --image '%s' "
             "--repeats 1 --grid " FAST " -o '%s'", p.a, p.b, p.jpg, grid);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(grid, &w, &h) && w == 3 * 32 && h == 32);
}

TEST(mixing_commands_refuse_bad_usage_with_status_2)
{
    paths p;
    char args[8192], out[8192];
    if (!setup(&p))
        return;
    CHECK(run_cli("edit --model a.pt --image x.png -o y.png", out, sizeof out, NULL, 0) == 2);
    CHECK(strstr(out, "--finetuned is required") && strstr(out, "usage: diffclip edit"));
    CHECK(run_cli("transition --model a.pt --finetuned b.pt --image x.png --count 1 -o s.png",
                  out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("translate --model a.pt --finetuned b.pt --image x.png --repeats 0 -o s.png",
                  out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("translate --model a.pt --finetuned b.pt --image x.png --cache c -o s.png",
                  out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("edit --model a.pt --finetuned b.pt:0.7 --finetuned c.pt:0.6 --image x.png "
                  "-o y.png", out, sizeof out, NULL, 0) == 2);
    CHECK(strstr(out, "more than 1") != NULL);
    CHECK(run_cli("edit --model a.pt --finetuned b.pt --ratio 0.5 --schedule '0:1' "
                  "--image x.png -o y.png", out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("edit --model a.pt --finetuned b.pt --schedule '300:1;0:0.3,0.7' "
                  "--image x.png -o y.png", out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("generate --model a.pt --model b.pt --latent l.npy -o o.npy", out,
                  sizeof out, NULL, 0) == 2);
    CHECK(strstr(out, "--gamma") != NULL);
    CHECK(run_cli("generate --model a.pt --model b.pt --gamma 1 --latent l.npy -o o.npy", out,
                  sizeof out, NULL, 0) == 2);
    CHECK(run_cli("generate --model a.pt --model b.pt --ramp '0:1,0' --latent l.npy -o o.npy",
                  out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("generate --model a.pt --model b.pt --schedule '300:1,0;0:0.5,0.5' "
                  "--gamma 0.5,0.5 --latent l.npy -o o.npy", out, sizeof out, NULL, 0) == 2);
    /* Weights that do not sum to 1 are a usage error too, naming the t. */
    snprintf(args, sizeof args, "generate --model '%s' --model '%s' --schedule "
             "'300:1,0;0:0.5,0.6' --latent '%s' --t0 300 --steps 4 -o o.npy", p.a, p.b, p.lat);
    CHECK(run_cli(args, out, sizeof out, NULL, 0) == 2);
    CHECK(strstr(out, "t >= 0") && strstr(out, "sum to 1.1"));
}

TEST(a_finetuned_model_of_another_architecture_is_a_failure)
{
    paths p;
    char args[8192], out[8192], adm[1200], dir[1024], dst[1200];
    if (!setup(&p) || !golden_case("adm_unet", dir, sizeof dir))
        return;
    path_join(adm, sizeof adm, dir, "model.pt");
    path_join(dst, sizeof dst, test_tmpdir(), "never.png");
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' " FAST
             " -o '%s'", p.a, adm, p.png, dst);
    CHECK(run_cli(args, out, sizeof out, NULL, 0) == 1);
    CHECKF(strstr(out, adm) && strstr(out, "base model"), "%s", out);
    snprintf(args, sizeof args, "edit --model '%s' --finetuned /nonexistent/ft.pth "
             "--image '%s' " FAST " -o '%s'", p.a, p.png, dst);
    CHECK(run_cli(args, out, sizeof out, NULL, 0) == 1);
    CHECK(strstr(out, "/nonexistent/ft.pth") != NULL);
    FILE *f = fopen(dst, "rb");
    CHECK(f == NULL);
}

TEST(a_delta_file_is_a_finetuned_model)
{
    paths p;
    char args[8192], out[8192], delta[1200], strip[1200];
    int w, h;
    if (!setup(&p))
        return;
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = "cpu";
    dc_model *a = NULL, *b = NULL;
    CHECK_OK(dc_model_load(&a, p.a, &o));
    CHECK_OK(dc_model_load(&b, p.b, &o));
    path_join(delta, sizeof delta, test_tmpdir(), "b.delta");
    dc_status st = dc_model_save_delta(b, a, delta);
    dc_model_free(a), dc_model_free(b);
    CHECK_OK(st);
    path_join(strip, sizeof strip, test_tmpdir(), "delta_strip.png");
    snprintf(args, sizeof args, "transition --model '%s' --finetuned '%s' --image '%s' "
             "--count 2 " FAST " -o '%s'", p.a, delta, p.png, strip);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(image_size(strip, &w, &h) && w == 2 * 32 && h == 32);
}
