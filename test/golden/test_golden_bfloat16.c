/* A bfloat16 model against the float32 golden cases: the UNet output, the DDIM inversion and
 * the generation from the golden latent, through the public API. Prints each largest
 * difference (docs/performance.md reports them) and checks it against a bound that
 * bfloat16's 8-bit significand allows but a wrong computation would not meet. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"

/* max|ours - golden| <= BF16_BOUND * (1 + max|golden|). */
#define BF16_BOUND 0.05

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : -v[i] > m ? -v[i] : m;
    return m;
}

/* Compares `ours` with dir/file, prints the difference; 1 when within the bound. */
static int within_bound(const char *name, const dc_tensor *ours, const char *dir,
                        const char *file)
{
    char path[1200];
    dc_tensor golden;
    if (io_npy_read_file(path_join(path, sizeof path, dir, file), &golden) != DC_OK)
        return 0;
    size_t n = (size_t)dc_tensor_numel(&golden);
    int same = (size_t)dc_tensor_numel(ours) == n;
    double err = same ? max_abs_diff(ours->data, golden.data, n) : 1e30;
    double scale = max_abs(golden.data, n);
    printf("  %s %-8s bfloat16: max|ours - golden| = %.3g (max|golden| %.3g, bound %.3g)\n",
           name, file, err, scale, BF16_BOUND * (1 + scale));
    dc_tensor_free(&golden);
    return err <= BF16_BOUND * (1 + scale);
}

static void check_case(const char *name, const char *eps_file, int t0, int head_channels)
{
    char dir[1024], path[1200];
    if (!golden_case(name, dir, sizeof dir))
        return;
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = test_device_name();
    mo.dtype = DC_BFLOAT16;
    mo.head_channels = head_channels;
    dc_model *m = NULL;
    CHECK_OK(dc_model_load(&m, path_join(path, sizeof path, dir, "model.pt"), &mo));
    dc_tensor x, t, x0, lat, eps, inv, rec;
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "x.npy"), &x));
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "t.npy"), &t));
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "x0.npy"), &x0));
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "lat.npy"), &lat));
    CHECK_OK(dc_model_eps(m, &x, &t, &eps));
    CHECK(within_bound(name, &eps, dir, eps_file));
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = t0;
    o.steps = 8;
    CHECK_OK(dc_invert(m, &x0, &o, &inv));
    CHECK(within_bound(name, &inv, dir, "lat.npy"));
    o.steps = 4;
    CHECK_OK(dc_generate(m, &lat, &o, &rec));
    CHECK(within_bound(name, &rec, dir, "rec.npy"));
    dc_tensor_free(&x), dc_tensor_free(&t), dc_tensor_free(&x0), dc_tensor_free(&lat);
    dc_tensor_free(&eps), dc_tensor_free(&inv), dc_tensor_free(&rec);
    dc_model_free(m);
}

TEST(bfloat16_ddpm_is_near_golden) { check_case("ddpm_unet", "eps.npy", 300, 0); }

TEST(bfloat16_adm_is_near_golden) { check_case("adm_unet", "out.npy", 400, 16); }
