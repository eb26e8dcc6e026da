/* The public model, encoder, generator, stochastic forward and latent cache reproduce the
 * golden ddpm_unet and adm_unet cases. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"

static int read_golden(const char *dir, const char *file, dc_tensor *out)
{
    char path[1200];
    return io_npy_read_file(path_join(path, sizeof path, dir, file), out);
}

/* max|ours - golden| <= 1e-4 (1 + max|golden|), with the error in the failure message. */
#define CHECK_GOLDEN(ours, dir, file)                                                     \
    do {                                                                                  \
        dc_tensor golden_;                                                                \
        CHECK_OK(read_golden(dir, file, &golden_));                                       \
        size_t n_ = (size_t)dc_tensor_numel(&golden_);                                    \
        int same_shape_ = (ours)->ndim == golden_.ndim &&                                 \
                          memcmp((ours)->shape, golden_.shape,                            \
                                 sizeof golden_.shape[0] * (size_t)golden_.ndim) == 0;    \
        double err_ = same_shape_ ? max_abs_diff((ours)->data, golden_.data, n_) : 1e30;  \
        double tol_ = golden_tolerance(golden_.data, n_);                                 \
        dc_tensor_free(&golden_);                                                         \
        CHECKF(err_ <= tol_, "%s: max error %.3g > %.3g", file, err_, tol_);              \
    } while (0)

static dc_model *load(const char *dir, const char *file, int head_channels)
{
    char path[1200];
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = test_device_name();
    o.head_channels = head_channels;
    dc_model *m = NULL;
    if (dc_model_load(&m, path_join(path, sizeof path, dir, file), &o) != DC_OK)
        return NULL;
    return m;
}

static int count_steps(void *user, const dc_progress *p)
{
    int *calls = user;
    ++*calls;
    return p->step < 1 || p->step > p->steps;
}

static void check_case(const char *name, const char *eps_file, int t0, int head_channels)
{
    char dir[1024];
    if (!golden_case(name, dir, sizeof dir))
        return;
    dc_model *m = load(dir, "model.pt", head_channels);
    CHECKF(m != NULL, "%s", dc_last_error());
    dc_tensor x, t, x0, eps, lat, rec;
    CHECK_OK(read_golden(dir, "x.npy", &x));
    CHECK_OK(read_golden(dir, "t.npy", &t));
    CHECK_OK(read_golden(dir, "x0.npy", &x0));
    CHECK_OK(dc_model_eps(m, &x, &t, &eps));
    CHECK_GOLDEN(&eps, dir, eps_file);

    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    int calls = 0;
    o.t0 = t0;
    o.steps = 8;
    o.progress = count_steps;
    o.progress_user = &calls;
    CHECK_OK(dc_invert(m, &x0, &o, &lat));
    CHECK(calls == 7);
    CHECK_GOLDEN(&lat, dir, "lat.npy");
    o.steps = 4;
    CHECK_OK(dc_generate(m, &lat, &o, &rec));
    CHECK(calls == 11);
    CHECK_GOLDEN(&rec, dir, "rec.npy");

    dc_image_metrics metrics;
    CHECK_OK(dc_compare_images(&rec, &x0, &metrics));
    CHECK(metrics.mae > 0 && metrics.psnr > 0 && metrics.ssim <= 1);
    dc_tensor_free(&x), dc_tensor_free(&t), dc_tensor_free(&x0);
    dc_tensor_free(&eps), dc_tensor_free(&lat), dc_tensor_free(&rec);
    dc_model_free(m);
}

TEST(public_api_reproduces_ddpm_golden) { check_case("ddpm_unet", "eps.npy", 300, 0); }

TEST(public_api_reproduces_adm_golden) { check_case("adm_unet", "out.npy", 400, 16); }

TEST(public_add_noise_reproduces_golden)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    dc_tensor x0, noise, xt;
    CHECK_OK(read_golden(dir, "x0.npy", &x0));
    CHECK_OK(read_golden(dir, "noise.npy", &noise));
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 300;
    CHECK_OK(dc_add_noise(&x0, &noise, &o, &xt));
    CHECK_GOLDEN(&xt, dir, "xt_ddpm.npy");
    dc_tensor_free(&x0), dc_tensor_free(&noise), dc_tensor_free(&xt);
}

TEST(inversion_refuses_eta_and_bad_steps)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    dc_model *m = load(dir, "model.pt", 0);
    CHECK(m != NULL);
    dc_tensor x0, out;
    CHECK_OK(read_golden(dir, "x0.npy", &x0));
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.eta = 0.5;
    CHECK_STATUS(dc_invert(m, &x0, &o, &out), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "eta") != NULL);
    o.eta = 0;
    o.steps = 1;
    CHECK_STATUS(dc_invert(m, &x0, &o, &out), DC_EINVAL);
    o.steps = 8;
    o.t0 = 1000;
    CHECK_STATUS(dc_invert(m, &x0, &o, &out), DC_EINVAL);
    o.t0 = 300;
    o.version = 99;
    CHECK_STATUS(dc_invert(m, &x0, &o, &out), DC_EINVAL);
    dc_tensor_free(&x0);
    dc_model_free(m);
}

TEST(latent_cache_reuses_inversions_and_refuses_other_parameters)
{
    char dir[1024], path[1200];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    path_join(path, sizeof path, test_tmpdir(), "golden.dclat");
    dc_model *m = load(dir, "model.pt", 0);
    CHECK(m != NULL);
    dc_tensor x0, one, lat;
    CHECK_OK(read_golden(dir, "x0.npy", &x0));
    one = x0;
    one.shape[0] = 1;
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 300;
    o.steps = 8;
    dc_latent_cache *c;
    CHECK_OK(dc_latent_cache_open(&c, path, m, &o, 4));
    size_t index;
    CHECK_OK(dc_latent_cache_add(c, &one, &index));
    CHECK(index == 0 && dc_latent_cache_count(c) == 1);
    CHECK_OK(dc_latent_cache_add(c, &one, &index));
    CHECK(index == 0 && dc_latent_cache_count(c) == 1);
    CHECK_OK(dc_latent_cache_get(c, 0, NULL, NULL, &lat));
    dc_latent_cache_free(c);

    /* lat.npy is the inversion of every image of x0.npy: the first one is ours. */
    dc_tensor golden;
    CHECK_OK(read_golden(dir, "lat.npy", &golden));
    size_t n = (size_t)dc_tensor_numel(&lat);
    double err = max_abs_diff(lat.data, golden.data, n);
    CHECKF(err <= golden_tolerance(golden.data, n), "cached latent error %.3g", err);
    dc_tensor_free(&golden);

    CHECK_OK(dc_latent_cache_open(&c, path, m, &o, 4));
    CHECK(dc_latent_cache_count(c) == 1);
    dc_latent_cache_free(c);
    o.steps = 9;
    CHECK_STATUS(dc_latent_cache_open(&c, path, m, &o, 4), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "inv_steps") != NULL);
    dc_model *b = NULL;
    char other[1200];
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = test_device_name();
    CHECK_OK(dc_model_load(&b, path_join(other, sizeof other, dir,
                                         "../noise_combination/model_b.pt"), &mo));
    o.steps = 8;
    CHECK_STATUS(dc_latent_cache_open(&c, path, b, &o, 4), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "another model") != NULL);
    dc_model_free(b);
    dc_tensor_free(&x0), dc_tensor_free(&lat);
    dc_model_free(m);
}

TEST(model_load_names_missing_file)
{
    dc_model *m = NULL;
    CHECK_STATUS(dc_model_load(&m, "/nonexistent/celeba_hq.ckpt", NULL), DC_EIO);
    CHECK(strstr(dc_last_error(), "/nonexistent/celeba_hq.ckpt") != NULL);
    CHECK(m == NULL);
}
