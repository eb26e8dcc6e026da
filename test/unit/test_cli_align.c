/* diffclip align and --align on the editing commands, with Debian's predictor and photos
 * (libdlib-data, python3-skimage, python-matplotlib-data): the aligned face and landmarks the
 * library gives, exit 1 with "no face was found", usage errors, a bad predictor; and edit
 * --align on a real portrait running the whole edit on the aligned face (the tiny golden
 * ddpm_unet / noise_combination models, 32 x 32): the --grid's first panel is the aligned
 * face, with --no-align the photo as given; no face: the photo as given, with a warning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ASTRONAUT "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
#define COFFEE "/usr/lib/python3/dist-packages/skimage/data/coffee.png"

static int have_predictor(void)
{
    if (access(DC_FACE_DEFAULT_PREDICTOR, R_OK) == 0 && access(ASTRONAUT, R_OK) == 0 &&
        access(COFFEE, R_OK) == 0)
        return 1;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        test_fail_at(__FILE__, __LINE__, "the predictor or photos are missing (make deps)");
    else
        test_skip("the predictor or the photos are missing (make deps)");
    return 0;
}

/* The library's aligned face of `path` at `size`, with its landmarks. */
static int library_align(const char *path, int size, dc_image *out, dc_face *face)
{
    dc_image img;
    dc_face_aligner *a = NULL;
    if (dc_image_read(path, &img) != DC_OK)
        return 0;
    int ok = dc_face_aligner_new(&a, NULL) == DC_OK &&
             dc_face_align(a, &img, size, out, face) == DC_OK;
    dc_face_aligner_free(a);
    dc_image_free(&img);
    return ok;
}

static int same_pixels(const dc_image *a, const dc_image *b, int x0, int tol)
{
    for (int y = 0; y < b->height; y++)
        for (int x = 0; x < b->width * 3; x++) {
            int d = a->data[(size_t)y * a->width * 3 + (size_t)x0 * 3 + x] -
                    b->data[(size_t)y * b->width * 3 + x];
            if (d > tol || d < -tol)
                return 0;
        }
    return 1;
}

TEST(align_writes_the_aligned_face_and_its_landmarks)
{
    if (!have_predictor())
        return;
    char args[4096], out[8192], png[1200], npy[1200];
    path_join(png, sizeof png, test_tmpdir(), "aligned.png");
    path_join(npy, sizeof npy, test_tmpdir(), "landmarks.npy");
    snprintf(args, sizeof args, "align --image '%s' -o '%s' --size 128 --landmarks-out '%s'",
             ASTRONAUT, png, npy);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    dc_image want, got;
    dc_face face;
    dc_tensor lm;
    CHECK(library_align(ASTRONAUT, 128, &want, &face));
    CHECK_OK(dc_image_read(png, &got));
    int equal = got.width == 128 && got.height == 128 &&
                memcmp(got.data, want.data, (size_t)128 * 128 * 3) == 0;
    dc_image_free(&got);
    dc_image_free(&want);
    CHECK(equal);
    CHECK_OK(dc_npy_read(npy, &lm));
    equal = lm.dtype == DC_INT64 && lm.ndim == 2 && lm.shape[0] == 68 && lm.shape[1] == 2 &&
            memcmp(lm.data, face.points, sizeof face.points) == 0;
    dc_tensor_free(&lm);
    CHECK(equal);
}

TEST(align_without_a_face_fails_with_status_1)
{
    if (!have_predictor())
        return;
    char args[4096], out[4096], err[4096], png[1200];
    path_join(png, sizeof png, test_tmpdir(), "none.png");
    snprintf(args, sizeof args, "align --image '%s' -o '%s'", COFFEE, png);
    CHECK(run_cli(args, out, sizeof out, err, sizeof err) == 1);
    CHECKF(strstr(err, "no face was found") != NULL, "%s", err);
    CHECK(access(png, F_OK) != 0);
}

TEST(align_refuses_bad_usage_and_a_bad_predictor)
{
    if (!have_predictor())
        return;
    char args[4096], out[4096], err[4096], png[1200], bad[1200];
    path_join(png, sizeof png, test_tmpdir(), "x.png");
    CHECK(run_cli("align -o x.png", out, sizeof out, NULL, 0) == 2);
    snprintf(args, sizeof args, "align --image '%s' -o '%s' --size 0", ASTRONAUT, png);
    CHECK(run_cli(args, out, sizeof out, NULL, 0) == 2);
    snprintf(args, sizeof args, "align --image '%s' -o '%s' --size 5000", ASTRONAUT, png);
    CHECK(run_cli(args, out, sizeof out, NULL, 0) == 2);
    /* an image is no shape predictor */
    path_join(bad, sizeof bad, test_tmpdir(), "bad.dat");
    snprintf(args, sizeof args, "cp '%s' '%s'", ASTRONAUT, bad);
    CHECK(system(args) == 0);
    snprintf(args, sizeof args, "align --image '%s' -o '%s' --predictor '%s'", ASTRONAUT, png,
             bad);
    CHECK(run_cli(args, out, sizeof out, err, sizeof err) == 1);
    CHECKF(strstr(err, "not a dlib shape predictor") != NULL, "%s", err);
    snprintf(args, sizeof args, "align --image '%s' -o '%s' --predictor /nonexistent.dat",
             ASTRONAUT, png);
    CHECK(run_cli(args, out, sizeof out, err, sizeof err) == 1);
    CHECKF(strstr(err, "/nonexistent.dat") != NULL, "%s", err);
}

/* edit --grid of a photo with the tiny models: original | reconstruction | edit */
static int edit_grid(const char *photo, const char *flags, dc_image *grid, char *err,
                     size_t err_size)
{
    char dir[1024], a[1200], b[1200], args[8192], out[8192], png[1200];
    if (!golden_case("noise_combination", dir, sizeof dir))
        return -1;
    path_join(a, sizeof a, dir, "../ddpm_unet/model.pt");
    path_join(b, sizeof b, dir, "model_b.pt");
    path_join(png, sizeof png, test_tmpdir(), "grid.png");
    snprintf(args, sizeof args, "edit --model '%s' --finetuned '%s' --image '%s' --grid %s "
             "--t0 300 --inv-steps 3 --gen-steps 2 --device cpu -o '%s'", a, b, photo, flags,
             png);
    int rc = run_cli(args, out, sizeof out, err, err_size);
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "edit -> %d: %s%s", rc, out, err);
        return 0;
    }
    return dc_image_read(png, grid) == DC_OK;
}

TEST(edit_align_runs_the_whole_edit_on_the_aligned_face)
{
    if (!have_predictor())
        return;
    dc_image aligned, plain, grid;
    dc_face face;
    dc_tensor t;
    char err[8192];
    CHECK(library_align(ASTRONAUT, 32, &aligned, &face));
    CHECK_OK(dc_image_read(ASTRONAUT, &plain));
    CHECK_OK(dc_image_to_tensor(&plain, 32, &t));
    dc_image_free(&plain);
    CHECK_OK(dc_tensor_to_image(&t, 0, &plain));
    dc_tensor_free(&t);
    static const char *const flags[] = {"--align", "--preset celeba", "--preset pixar",
                                        "--no-align", "--preset celeba --no-align"};
    for (int i = 0; i < 5; i++) {
        int st = edit_grid(ASTRONAUT, flags[i], &grid, err, sizeof err);
        if (st < 0)
            break;
        CHECK(st == 1);
        int want_aligned = i < 3;
        int ok = grid.width == 96 && grid.height == 32 &&
                 same_pixels(&grid, want_aligned ? &aligned : &plain, 0, 1) &&
                 !same_pixels(&grid, want_aligned ? &plain : &aligned, 0, 1);
        dc_image_free(&grid);
        if (!ok) {
            dc_image_free(&aligned);
            dc_image_free(&plain);
            CHECKF(0, "edit %s: the first panel is not the %s photo", flags[i],
                   want_aligned ? "aligned" : "plain");
        }
    }
    dc_image_free(&aligned);
    dc_image_free(&plain);
    /* no face: the photo as given, with a warning */
    int st = edit_grid(COFFEE, "--align", &grid, err, sizeof err);
    if (st < 0)
        return;
    CHECK(st == 1);
    dc_image_free(&grid);
    CHECKF(strstr(err, "no face was found; using the photo as given") != NULL, "%s", err);
    CHECK(run_cli("edit --model m --finetuned f --image x.png --align --no-align -o o.png",
                  err, sizeof err, NULL, 0) == 2);
}
