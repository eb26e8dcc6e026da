/* Face alignment against the published code (golden/face_align): dlib's landmarks exactly,
 * and the aligned faces of the published align_face within 2 of 255 at most and 0.5 on
 * average, both from our detection and from the golden landmarks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const struct {
    const char *name, *photo;
} CASES[] = {
    {"astronaut", "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"},
    {"grace_hopper", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"},
};

/* The aligner over Debian's predictor, or NULL after skipping (failing under CI). */
static dc_face_aligner *debian_aligner(void)
{
    if (access(DC_FACE_DEFAULT_PREDICTOR, R_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            test_fail_at(__FILE__, __LINE__, "%s is missing (make deps installs libdlib-data)",
                         DC_FACE_DEFAULT_PREDICTOR);
        else
            test_skip("%s is missing (make deps installs libdlib-data)",
                      DC_FACE_DEFAULT_PREDICTOR);
        return NULL;
    }
    dc_face_aligner *a = NULL;
    if (dc_face_aligner_new(&a, NULL) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "dc_face_aligner_new: %s", dc_last_error());
    return a;
}

/* max and mean absolute difference of two images of one size */
static int image_diff(const dc_image *a, const dc_image *b, double *max, double *mean)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return -1;
    size_t n = (size_t)a->width * a->height * a->channels;
    double sum = 0;
    *max = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a->data[i] - b->data[i]);
        sum += d;
        if (d > *max)
            *max = d;
    }
    *mean = sum / n;
    return 0;
}

TEST(golden_face_align)
{
    char dir[4096], path[4096];
    if (!golden_case("face_align", dir, sizeof dir))
        return;
    dc_face_aligner *aligner = debian_aligner();
    if (!aligner)
        return;
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        dc_image photo = {0}, golden = {0}, aligned = {0}, from_golden = {0};
        dc_tensor lm = {0};
        dc_face face;
        char name[256];
        snprintf(name, sizeof name, "%s_landmarks.npy", CASES[c].name);
        int ok = dc_image_read(CASES[c].photo, &photo) == DC_OK &&
                 dc_npy_read(path_join(path, sizeof path, dir, name), &lm) == DC_OK;
        snprintf(name, sizeof name, "%s_aligned.png", CASES[c].name);
        ok = ok && dc_image_read(path_join(path, sizeof path, dir, name), &golden) == DC_OK;
        if (!ok) {
            dc_image_free(&photo);
            dc_tensor_free(&lm);
            dc_face_aligner_free(aligner);
            CHECKF(0, "%s: %s", CASES[c].name, dc_last_error());
        }
        int st = dc_face_align(aligner, &photo, 256, &aligned, &face);
        int st2 = lm.dtype == DC_INT64 && lm.ndim == 2 && lm.shape[0] == 68 && lm.shape[1] == 2
                      ? dc_face_align_landmarks(&photo, lm.data, 256, 0,
                                                &from_golden)
                      : DC_EFORMAT;
        int same = st == DC_OK && memcmp(face.points, lm.data, sizeof face.points) == 0;
        double max1 = 1e9, mean1 = 1e9, max2 = 1e9, mean2 = 1e9;
        if (st == DC_OK)
            image_diff(&aligned, &golden, &max1, &mean1);
        if (st2 == DC_OK)
            image_diff(&from_golden, &golden, &max2, &mean2);
        printf("  %s: aligned vs published max %.0f mean %.4f; from the golden landmarks "
               "max %.0f mean %.4f\n", CASES[c].name, max1, mean1, max2, mean2);
        if (st == DC_OK && !same)
            for (int i = 0; i < 68; i++)
                if (face.points[2 * i] != ((int64_t *)lm.data)[2 * i] ||
                    face.points[2 * i + 1] != ((int64_t *)lm.data)[2 * i + 1])
                    printf("  landmark %d: (%lld, %lld), published (%lld, %lld)\n", i,
                           (long long)face.points[2 * i], (long long)face.points[2 * i + 1],
                           (long long)((int64_t *)lm.data)[2 * i],
                           (long long)((int64_t *)lm.data)[2 * i + 1]);
        dc_image_free(&photo);
        dc_image_free(&golden);
        dc_image_free(&aligned);
        dc_image_free(&from_golden);
        dc_tensor_free(&lm);
        if (st != DC_OK || st2 != DC_OK || !same || max1 > 2 || mean1 > 0.5 || max2 > 2 ||
            mean2 > 0.5) {
            dc_face_aligner_free(aligner);
            CHECKF(0, "%s: status %d/%d (%s), landmarks %s, max %.0f/%.0f, mean %.3f/%.3f",
                   CASES[c].name, st, st2, dc_last_error(), same ? "equal" : "differ", max1,
                   max2, mean1, mean2);
        }
    }
    dc_face_aligner_free(aligner);
}
