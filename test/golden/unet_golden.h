/* Shared by the UNet conformance tests: golden .npy arrays as tensors, comparison with the
 * case tolerance (the achieved error is printed), and the UNet as a diffusion noise
 * predictor. Included by one test file each; everything is static. */
#ifndef DC_TEST_GOLDEN_UNET_GOLDEN_H
#define DC_TEST_GOLDEN_UNET_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctorch/ctorch.h"
#include "diffusion/encoder.h"
#include "diffusion/generator.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "nn/unet.h"

/* dir/file read as a float32 tensor; NULL on failure (with dc_last_error set). */
static ct_tensor *golden_tensor(const char *dir, const char *file)
{
    char path[1024];
    io_state_dict sd = {0};
    ct_tensor *t = NULL;
    if (io_checkpoint_read_file(path_join(path, sizeof path, dir, file), &sd) == DC_OK &&
        sd.count == 1 && sd.tensors[0].value.dtype == DC_FLOAT32)
        ct_from_host(&t, sd.tensors[0].value.data, DC_FLOAT32, sd.tensors[0].value.ndim,
                     sd.tensors[0].value.shape, test_device());
    io_state_dict_free(&sd);
    return t;
}

static int load_golden_unet(const char *dir, const char *file, const nn_unet_options *opts,
                            nn_unet **out)
{
    char path[1024];
    io_state_dict sd = {0};
    int status = io_checkpoint_read_file(path_join(path, sizeof path, dir, file), &sd);
    if (status == DC_OK)
        status = nn_unet_load(out, &sd, file, test_device(), test_unet_dtype(), opts);
    io_state_dict_free(&sd);
    return status;
}

/* Whether `ours` is within 1e-4 * (1 + max|golden|) of dir/file; prints the error. */
static int matches_golden(const char *label, const ct_tensor *ours, const char *dir,
                          const char *file)
{
    ct_tensor *golden = golden_tensor(dir, file);
    int ok = 0;
    if (!golden) {
        printf("  %s: cannot read %s: %s\n", label, file, dc_last_error());
    } else if (ct_numel(golden) != ct_numel(ours)) {
        printf("  %s: %lld values, golden %lld\n", label, (long long)ct_numel(ours),
               (long long)ct_numel(golden));
    } else {
        size_t n = (size_t)ct_numel(golden);
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        if (a && b && ct_to_host(ours, a, n * sizeof *a) == DC_OK &&
            ct_to_host(golden, b, n * sizeof *b) == DC_OK) {
            double err = max_abs_diff(a, b, n), tol = golden_tolerance(b, n);
            ok = err <= tol;
            printf("  %-22s max|ours - golden| = %.3g (tolerance %.3g) %s\n", label, err, tol,
                   ok ? "ok" : "TOO LARGE");
        }
        free(a);
        free(b);
    }
    ct_free(golden);
    return ok;
}

static int unet_noise(void *model, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    return nn_unet_forward(model, x, t, out);
}

/* The model on the case's x and t, DDIM inversion of x0 and generation from the golden
 * latent, as the case's README describes. Returns the number of mismatches. */
static int check_unet_case(const char *dir, const char *label, nn_unet *m, const char *out_file,
                           int t0, int n_inv, int n_gen)
{
    char what[128];
    int failures = 0;
    df_schedule s;
    if (df_schedule_init_default(&s) != DC_OK)
        return 1;
    ct_tensor *x = golden_tensor(dir, "x.npy"), *t = golden_tensor(dir, "t.npy");
    ct_tensor *x0 = golden_tensor(dir, "x0.npy"), *lat = golden_tensor(dir, "lat.npy");
    ct_tensor *y = NULL, *our_lat = NULL, *rec = NULL;
    ct_scope *scope = NULL;
    if (!x || !t || !x0 || !lat || ct_inference_mode_begin(&scope) != DC_OK) {
        printf("  %s: cannot read the case: %s\n", label, dc_last_error());
        failures++;
    } else {
        df_generate_options o;
        df_generate_options_init(&o);
        o.t0 = t0;
        o.n_steps = n_gen;
        snprintf(what, sizeof what, "%s %s", label, out_file);
        failures += nn_unet_forward(m, x, t, &y) != DC_OK || !matches_golden(what, y, dir, out_file);
        snprintf(what, sizeof what, "%s lat.npy", label);
        failures += df_ddim_invert(&s, unet_noise, m, x0, t0, n_inv, NULL, NULL, &our_lat) != DC_OK ||
                    !matches_golden(what, our_lat, dir, "lat.npy");
        snprintf(what, sizeof what, "%s rec.npy", label);
        failures += df_generate(&s, unet_noise, m, lat, &o, &rec) != DC_OK ||
                    !matches_golden(what, rec, dir, "rec.npy");
        ct_scope_end(scope);
    }
    ct_free(x);
    ct_free(t);
    ct_free(x0);
    ct_free(lat);
    ct_free(y);
    ct_free(our_lat);
    ct_free(rec);
    df_schedule_free(&s);
    return failures;
}

#endif
