/* The face aligner's public API on hostile input: predictor files that are truncated, of
 * another model, inconsistent or declaring huge counts (synthetic files in dlib's encoding,
 * and prefixes of Debian's), photos without faces, with many faces and very large ones,
 * bad arguments and landmarks that the alignment cannot use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ASTRONAUT "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"

/* ---- dlib's serialization (dlib/serialize.h), for synthetic predictor files ---- */
typedef struct buf {
    uint8_t data[1 << 16];
    size_t n;
} buf;

static void put_int(buf *b, int64_t v)
{
    uint8_t neg = 0, bytes[8];
    uint64_t u = (uint64_t)v;
    if (v < 0)
        neg = 0x80, u = (uint64_t)(-v);
    int n = 0;
    do
        bytes[n++] = (uint8_t)(u & 0xFF), u >>= 8;
    while (u);
    b->data[b->n++] = (uint8_t)(n | neg);
    memcpy(b->data + b->n, bytes, (size_t)n);
    b->n += (size_t)n;
}

static void put_float(buf *b, int64_t mantissa, int exponent)
{
    put_int(b, mantissa);
    put_int(b, exponent);
}

static void put_column(buf *b, int rows)
{
    put_int(b, -rows);
    put_int(b, -1);
    for (int i = 0; i < rows; i++)
        put_float(b, i % 7, -3);
}

/* A predictor of `parts` landmarks: one cascade level, one tree of one split reading
 * features split_a and split_b, `leaves` leaves, anchors {0, anchor} and two deltas. */
typedef struct shape {
    int parts, split_a, split_b, leaves, anchor;
    int64_t level_count;
} shape;

static const shape GOOD = {68, 0, 1, 2, 67, 1};

static void build(buf *b, shape s)
{
    b->n = 0;
    put_int(b, 1);                      /* version */
    put_column(b, 2 * s.parts);         /* initial shape */
    put_int(b, s.level_count);          /* forests */
    put_int(b, 1);                      /* trees */
    put_int(b, 1);                      /* splits */
    put_int(b, s.split_a);
    put_int(b, s.split_b);
    put_float(b, 1, -1);
    put_int(b, s.leaves);
    for (int i = 0; i < s.leaves; i++)
        put_column(b, 2 * s.parts);
    put_int(b, 1);                      /* anchor_idx */
    put_int(b, 2);
    put_int(b, 0);
    put_int(b, s.anchor);
    put_int(b, 1);                      /* deltas */
    put_int(b, 2);
    for (int i = 0; i < 4; i++)
        put_float(b, i, -4);
}

static const char *write_file(const char *name, const void *data, size_t size)
{
    static char path[1200];
    path_join(path, sizeof path, test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? path : NULL;
}

static int open_predictor(const char *path, dc_face_aligner **out)
{
    dc_face_aligner_options o;
    dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
    o.predictor_path = path;
    return dc_face_aligner_new(out, &o);
}

TEST(a_well_formed_synthetic_predictor_loads)
{
    static buf b;
    dc_face_aligner *a = NULL;
    build(&b, GOOD);
    const char *path = write_file("good.dat", b.data, b.n);
    CHECK(path);
    CHECK_OK(open_predictor(path, &a));
    dc_face_aligner_free(a);
}

TEST(truncated_and_inconsistent_predictors_are_format_errors)
{
    static buf b;
    dc_face_aligner *a = NULL;
    build(&b, GOOD);
    /* every prefix of the file */
    for (size_t n = 0; n < b.n; n += 1 + n / 16) {
        const char *path = write_file("cut.dat", b.data, n);
        CHECK(path);
        int st = open_predictor(path, &a);
        CHECKF(st == DC_EFORMAT && a == NULL, "%zu of %zu bytes: %d (%s)", n, b.n, st,
               dc_last_error());
    }
    static const struct {
        shape s;
        const char *message;
    } bad[] = {
        {{5, 0, 1, 2, 4, 1}, "a shape predictor of 5 landmarks, expected 68"},
        {{68, 0, 7, 2, 67, 1}, "a split reads feature 7 of 2"},
        {{68, 0, 1, 3, 67, 1}, "a tree with 1 splits has 3 leaves"},
        {{68, 0, 1, 2, 68, 1}, "anchor landmark 68 of 68"},
        {{68, 0, 1, 2, 67, (int64_t)1 << 60}, "truncated or corrupt"},
        {{68, 0, 1, 2, 67, 2}, "truncated or corrupt"},
        {{68, 0, 1, 2, 67, 0}, "0 cascade levels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        build(&b, bad[i].s);
        const char *path = write_file("bad.dat", b.data, b.n);
        CHECK(path);
        int st = open_predictor(path, &a);
        CHECKF(st == DC_EFORMAT && strstr(dc_last_error(), bad[i].message), "case %zu: %d (%s)",
               i, st, dc_last_error());
    }
    /* a float in dlib's old text form, and a vector count with the sign bit */
    build(&b, GOOD);
    b.data[4] = '1';
    CHECK_STATUS(open_predictor(write_file("text.dat", b.data, b.n), &a), DC_EFORMAT);
    CHECK_STATUS(open_predictor(write_file("empty.dat", "", 0), &a), DC_EFORMAT);
    CHECK_STATUS(open_predictor("/nonexistent/predictor.dat", &a), DC_EIO);
    CHECK_STATUS(open_predictor(ASTRONAUT, &a), DC_EFORMAT);
}

TEST(a_truncated_debian_predictor_is_a_format_error)
{
    if (access(DC_FACE_DEFAULT_PREDICTOR, R_OK) != 0) {
        test_skip("%s is missing (make deps)", DC_FACE_DEFAULT_PREDICTOR);
        return;
    }
    size_t size;
    unsigned char *data = test_read_file(DC_FACE_DEFAULT_PREDICTOR, &size);
    CHECK(data);
    dc_face_aligner *a = NULL;
    static const size_t cuts[] = {1, 1000, 1 << 20, 50u << 20};
    for (size_t i = 0; i < 4 && cuts[i] < size; i++) {
        const char *path = write_file("debian_cut.dat", data, cuts[i]);
        int st = path ? open_predictor(path, &a) : -100;
        if (st != DC_EFORMAT) {
            free(data);
            CHECKF(0, "cut at %zu: %d (%s)", cuts[i], st, dc_last_error());
        }
    }
    /* one byte changed in a split index: still refused or accepted, never a crash */
    data[size / 2] ^= 0x5A;
    const char *path = write_file("debian_flip.dat", data, size);
    free(data);
    CHECK(path);
    int st = open_predictor(path, &a);
    CHECKF(st == DC_OK || st == DC_EFORMAT, "%d (%s)", st, dc_last_error());
    dc_face_aligner_free(a);
}

static dc_face_aligner *debian_aligner(void)
{
    dc_face_aligner *a = NULL;
    if (access(DC_FACE_DEFAULT_PREDICTOR, R_OK) != 0 || access(ASTRONAUT, R_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            test_fail_at(__FILE__, __LINE__, "predictor or photo missing (make deps)");
        else
            test_skip("predictor or photo missing (make deps)");
        return NULL;
    }
    if (dc_face_aligner_new(&a, NULL) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "%s", dc_last_error());
    return a;
}

TEST(no_face_is_not_found_and_many_faces_are_all_listed)
{
    dc_face_aligner *a = debian_aligner();
    if (!a)
        return;
    dc_image photo, grey = {300, 200, 3, calloc(300 * 200, 3)}, out;
    dc_face *faces;
    size_t count;
    CHECK_OK(dc_image_read(ASTRONAUT, &photo));
    memset(grey.data, 128, 300 * 200 * 3);
    int st1 = dc_face_detect(a, &grey, &faces, &count);
    int st2 = dc_face_align(a, &grey, 256, &out, NULL);
    free(grey.data);
    CHECK(st1 == DC_OK && count == 0 && faces == NULL);
    CHECKF(st2 == DC_ENOTFOUND && strstr(dc_last_error(), "no face was found") && !out.data,
           "%d %s", st2, dc_last_error());
    CHECK(strcmp(dc_status_name(DC_ENOTFOUND), "DC_ENOTFOUND") == 0);

    /* six copies of the astronaut's head in a 3 x 2 grid */
    enum { T = 200 };
    dc_image grid = {3 * T, 2 * T, 3, malloc((size_t)6 * T * T * 3)};
    for (int y = 0; y < 2 * T; y++)
        for (int x = 0; x < 3 * T; x++)
            memcpy(grid.data + ((size_t)y * 3 * T + x) * 3,
                   photo.data + ((size_t)(y % T + 20) * 512 + (x % T + 120)) * 3, 3);
    dc_face last;
    st1 = dc_face_detect(a, &grid, &faces, &count);
    st2 = dc_face_align(a, &grid, 64, &out, &last);
    free(grid.data);
    int ok = st1 == DC_OK && count >= 4 && st2 == DC_OK &&
             memcmp(&last, &faces[count - 1], sizeof last) == 0;
    dc_faces_free(faces);
    dc_image_free(&out);
    dc_image_free(&photo);
    dc_face_aligner_free(a);
    CHECKF(ok, "%d %d, %zu faces", st1, st2, count);
}

TEST(a_very_large_photo_is_detected_on_a_downscaled_copy)
{
    dc_face_aligner *a = debian_aligner();
    if (!a)
        return;
    dc_image photo;
    CHECK_OK(dc_image_read(ASTRONAUT, &photo));
    /* 7200 x 6000 (43 Mpx): the astronaut enlarged 10 times (nearest) in a grey field */
    enum { W = 7200, H = 6000, F = 10 };
    dc_image big = {W, H, 3, malloc((size_t)W * H * 3)};
    CHECK(big.data);
    memset(big.data, 90, (size_t)W * H * 3);
    for (int y = 0; y < 512 * F; y++)
        for (int x = 0; x < 512 * F; x++)
            memcpy(big.data + ((size_t)(y + 500) * W + x + 1000) * 3,
                   photo.data + ((size_t)(y / F) * 512 + x / F) * 3, 3);
    dc_face *faces;
    size_t count;
    dc_image out;
    int st1 = dc_face_detect(a, &big, &faces, &count);
    int st2 = dc_face_align(a, &big, 256, &out, NULL);
    /* the main face lies near (1000 + 10 * 220, 500 + 10 * 120) */
    int found = 0;
    for (size_t i = 0; st1 == DC_OK && i < count; i++)
        found |= faces[i].left < 3200 && faces[i].right > 3200 && faces[i].top < 1700 &&
                 faces[i].bottom > 1700;
    dc_faces_free(faces);
    dc_image_free(&out);
    free(big.data);
    dc_image_free(&photo);
    dc_face_aligner_free(a);
    CHECKF(st1 == DC_OK && found && st2 == DC_OK, "%d %d %zu: %s", st1, st2, count,
           dc_last_error());
}

TEST(bad_arguments_are_refused)
{
    dc_face_aligner *a = NULL;
    dc_face_aligner_options o;
    dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
    CHECK(o.upsample == 0 && o.adjust_threshold == 1.0 && o.max_detect_pixels == 4000000);
    CHECK_STATUS(dc_face_aligner_new(NULL, NULL), DC_EINVAL);
    o.version = 0;
    CHECK_STATUS(dc_face_aligner_new(&a, &o), DC_EINVAL);
    o.version = DC_FACE_ALIGNER_OPTIONS_VERSION + 1;
    CHECK_STATUS(dc_face_aligner_new(&a, &o), DC_EINVAL);
    dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
    o.upsample = 3;
    CHECK_STATUS(dc_face_aligner_new(&a, &o), DC_EINVAL);
    o.upsample = 0;
    o.max_detect_pixels = -1;
    CHECK_STATUS(dc_face_aligner_new(&a, &o), DC_EINVAL);
    dc_face_aligner_free(NULL);
    dc_faces_free(NULL);

    uint8_t px[64 * 64 * 3] = {0};
    dc_image img = {64, 64, 3, px}, out;
    int64_t lm[DC_FACE_LANDMARK_VALUES] = {0};
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, 32, 0, &out), DC_EINVAL);   /* degenerate */
    CHECK(strstr(dc_last_error(), "degenerate"));
    for (int i = 0; i < DC_FACE_LANDMARK_COUNT; i++)
        lm[2 * i] = 20 + i % 20, lm[2 * i + 1] = 20 + i / 4;
    CHECK_OK(dc_face_align_landmarks(&img, lm, 32, 0, &out));
    CHECK(out.width == 32 && out.height == 32);
    dc_image_free(&out);
    CHECK_OK(dc_face_align_landmarks(&img, lm, 16, 48, &out));
    CHECK(out.width == 16);
    dc_image_free(&out);
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, 0, 0, &out), DC_EINVAL);
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, DC_FACE_MAX_ALIGN_SIZE + 1, 0, &out),
                 DC_EINVAL);
    CHECK_STATUS(dc_face_align_landmarks(NULL, lm, 32, 0, &out), DC_EINVAL);
    CHECK_STATUS(dc_face_align_landmarks(&img, NULL, 32, 0, &out), DC_EINVAL);
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, 32, 0, NULL), DC_EINVAL);
    dc_image grey = {64, 64, 1, px};
    CHECK_STATUS(dc_face_align_landmarks(&grey, lm, 32, 0, &out), DC_EINVAL);
    lm[0] = (int64_t)1 << 40;
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, 32, 0, &out), DC_EINVAL);
    /* the face far outside the image */
    for (int i = 0; i < DC_FACE_LANDMARK_COUNT; i++)
        lm[2 * i] = 100000 + i % 20, lm[2 * i + 1] = 20 + i / 4;
    CHECK_STATUS(dc_face_align_landmarks(&img, lm, 32, 0, &out), DC_EINVAL);
    /* a face of a million pixels on a tiny image needs a padded image over the limit */
    for (int i = 0; i < DC_FACE_LANDMARK_COUNT; i++)
        lm[2 * i] = 32 + (i % 20) * 20000, lm[2 * i + 1] = 32 + (i / 4) * 20000;
    int st = dc_face_align_landmarks(&img, lm, 4096, 0, &out);
    CHECKF(st == DC_ENOMEM || st == DC_EINVAL, "%d %s", st, dc_last_error());
    CHECK(out.data == NULL);
    CHECK_STATUS(dc_face_detect(NULL, &img, (dc_face *[]){NULL}, (size_t[]){0}), DC_EINVAL);
}
