/* Every public function of include/diffclip.h called with bad arguments: NULL pointers, zero
 * sizes, mismatched shapes, out-of-range timesteps, step counts and enum values, option
 * structs of an unknown version, weights that do not sum to 1. Each call must return the
 * documented status with a message (cleared before the call, so that a stale one does not
 * count), never crash; free functions and NULL-tolerant accessors must accept NULL. A freed
 * handle is not detectable in C (the header says so) and is not tested. Real handles come
 * from the tiny golden models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"

/* `expr` fails with `status` and says why. */
#define EXPECT(expr, status)                                                              \
    do {                                                                                  \
        dci_err_clear();                                                                  \
        CHECK_STATUS(expr, status);                                                       \
        CHECKF(dc_last_error()[0] != '\0', "%s: no error message", #expr);                \
    } while (0)

enum { SIDE = 32, MAX_FLOATS = 2 * 4 * SIDE * SIDE };

/* Zeros, enough for two 4-channel 32 x 32 images of any dtype (8 bytes at most). */
static float zeros[2 * MAX_FLOATS];

static dc_tensor images(int64_t n, int64_t c, int64_t h, int64_t w)
{
    return (dc_tensor){.dtype = DC_FLOAT32, .ndim = 4, .shape = {n, c, h, w}, .data = zeros};
}

static dc_tensor vector(int64_t n, float *data)
{
    return (dc_tensor){.dtype = DC_FLOAT32, .ndim = 1, .shape = {n}, .data = data};
}

static dc_model *load_golden_model(const char *name, int head_channels)
{
    char dir[1024], path[1200];
    if (!golden_case(name, dir, sizeof dir))
        return NULL;
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = "cpu";
    o.head_channels = head_channels;
    dc_model *m = NULL;
    if (dc_model_load(&m, path_join(path, sizeof path, dir, "model.pt"), &o) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "loading %s: %s", name, dc_last_error());
    return m;
}

/* ---- status, version, runtime, dtypes ---- */

TEST(status_names_version_and_runtime)
{
    CHECK(strcmp(dc_status_name((dc_status)42), "DC_UNKNOWN") == 0);
    CHECK(strcmp(dc_status_name(DC_ECANCELLED), "DC_ECANCELLED") == 0);
    CHECK(dc_version() != NULL && dc_last_error() != NULL);
    dci_err_clear();
    CHECK(strcmp(dc_last_error(), "") == 0);
    int threads = dc_get_num_threads();
    CHECK(threads >= 1);
    CHECK_OK(dc_set_num_threads(0));                 /* <= 0: the number of cores */
    CHECK_OK(dc_set_num_threads(-7));
    CHECK(dc_get_num_threads() >= 1);
    CHECK_OK(dc_set_num_threads(threads));
    CHECK(dc_get_num_threads() == threads);
    int cuda = dc_cuda_available();
    CHECK(cuda == 0 || cuda == 1);
}

TEST(dtypes_out_of_range_and_tensor_helpers)
{
    CHECK(dc_dtype_name((dc_dtype)-1) == NULL && dc_dtype_name((dc_dtype)8) == NULL);
    CHECK(dc_dtype_size((dc_dtype)-1) == 0 && dc_dtype_size((dc_dtype)999) == 0);
    CHECK(dc_tensor_numel(NULL) == 0);
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = DC_MAX_DIMS + 1};
    CHECK(dc_tensor_numel(&t) == 0);
    t.ndim = -1;
    CHECK(dc_tensor_numel(&t) == 0);
    t.ndim = 2;
    t.shape[0] = 0, t.shape[1] = 5;
    CHECK(dc_tensor_numel(&t) == 0);
    dc_tensor_free(NULL);
    dc_tensor empty = {0};
    dc_tensor_free(&empty);
    CHECK(empty.data == NULL);
}

/* ---- arrays and images ---- */

TEST(npy_arguments)
{
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "a.npy");
    dc_tensor t = vector(4, zeros), back;
    EXPECT(dc_npy_read(NULL, &back), DC_EINVAL);
    EXPECT(dc_npy_read(path, NULL), DC_EINVAL);
    EXPECT(dc_npy_read(path, &back), DC_EIO);        /* not written yet */
    EXPECT(dc_npy_write(NULL, &t), DC_EINVAL);
    EXPECT(dc_npy_write(path, NULL), DC_EINVAL);
    dc_tensor bad = t;
    bad.dtype = (dc_dtype)99;
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    bad.dtype = DC_BFLOAT16;                          /* .npy has no bfloat16 */
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    bad = t;
    bad.ndim = DC_MAX_DIMS + 1;
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    bad.ndim = -1;
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    bad = t;
    bad.shape[0] = -4;
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    bad = t;
    bad.data = NULL;
    EXPECT(dc_npy_write(path, &bad), DC_EINVAL);
    /* An empty array needs no data and round-trips. */
    bad.shape[0] = 0;
    CHECK_OK(dc_npy_write(path, &bad));
    CHECK_OK(dc_npy_read(path, &back));
    CHECK(back.ndim == 1 && back.shape[0] == 0 && back.dtype == DC_FLOAT32);
    dc_tensor_free(&back);
}

TEST(image_arguments)
{
    char png[512], bmp[512];
    path_join(png, sizeof png, test_tmpdir(), "i.png");
    path_join(bmp, sizeof bmp, test_tmpdir(), "i.bmp");
    uint8_t pixels[4 * 4 * 4] = {0};
    dc_image img = {.width = 4, .height = 4, .channels = 3, .data = pixels}, out;
    dc_tensor t;
    EXPECT(dc_image_read(NULL, &out), DC_EINVAL);
    EXPECT(dc_image_read(png, NULL), DC_EINVAL);
    EXPECT(dc_image_read(png, &out), DC_EIO);
    EXPECT(dc_image_write(NULL, &img), DC_EINVAL);
    EXPECT(dc_image_write(png, NULL), DC_EINVAL);
    EXPECT(dc_image_write(bmp, &img), DC_EINVAL);     /* unknown extension */
    dc_image bad = img;
    bad.channels = 4;
    EXPECT(dc_image_write(png, &bad), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&bad, 8, &t), DC_EINVAL);
    bad = img;
    bad.width = 0;
    EXPECT(dc_image_write(png, &bad), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&bad, 8, &t), DC_EINVAL);
    bad = img;
    bad.data = NULL;
    EXPECT(dc_image_write(png, &bad), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&bad, 8, &t), DC_EINVAL);
    dc_image_free(NULL);

    EXPECT(dc_image_to_tensor(NULL, 8, &t), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&img, 8, NULL), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&img, 0, &t), DC_EINVAL);
    EXPECT(dc_image_to_tensor(&img, -1, &t), DC_EINVAL);
    CHECK_OK(dc_image_to_tensor(&img, 8, &t));
    CHECK(t.ndim == 4 && t.shape[1] == 3 && t.shape[2] == 8 && t.shape[3] == 8);

    EXPECT(dc_tensor_to_image(NULL, 0, &out), DC_EINVAL);
    EXPECT(dc_tensor_to_image(&t, 0, NULL), DC_EINVAL);
    EXPECT(dc_tensor_to_image(&t, 1, &out), DC_EINVAL);   /* one image only */
    EXPECT(dc_tensor_to_image(&t, -1, &out), DC_EINVAL);
    dc_tensor four = images(1, 4, 8, 8), flat = images(1, 3, 8, 8), none = images(1, 3, 0, 8);
    EXPECT(dc_tensor_to_image(&four, 0, &out), DC_EINVAL);
    EXPECT(dc_tensor_to_image(&none, 0, &out), DC_EINVAL);
    flat.ndim = 3;
    EXPECT(dc_tensor_to_image(&flat, 0, &out), DC_EINVAL);
    flat.ndim = 4;
    flat.dtype = DC_FLOAT64;
    EXPECT(dc_tensor_to_image(&flat, 0, &out), DC_EINVAL);
    flat.dtype = (dc_dtype)99;
    EXPECT(dc_tensor_to_image(&flat, 0, &out), DC_EINVAL);
    CHECK_OK(dc_tensor_to_image(&t, 0, &out));
    CHECK(out.width == 8 && out.height == 8 && out.channels == 3);
    dc_image_free(&out);
    dc_tensor_free(&t);
}

/* ---- checkpoints ---- */

/* The format by extension is chosen in any case, as dc_finetuner_save and images do. */
TEST(checkpoint_write_takes_the_extension_in_any_case)
{
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "w.SAFETENSORS");
    float w[2] = {1, 2};
    dc_named_tensor one = {"w", vector(2, w)};
    CHECK_OK(dc_checkpoint_write(path, DC_FORMAT_AUTO, &one, 1));
    dc_checkpoint *c = NULL;
    CHECK_OK(dc_checkpoint_open(&c, path));
    CHECK(dc_checkpoint_container(c) == DC_CONTAINER_SAFETENSORS);
    dc_checkpoint_free(c);
}

TEST(checkpoint_arguments)
{
    char path[512], missing[512];
    path_join(path, sizeof path, test_tmpdir(), "c.pt");
    path_join(missing, sizeof missing, test_tmpdir(), "missing.pt");
    float w[2] = {1, 2};
    dc_named_tensor one = {"w", vector(2, w)}, two[2] = {one, one};
    EXPECT(dc_checkpoint_write(NULL, DC_FORMAT_AUTO, &one, 1), DC_EINVAL);
    EXPECT(dc_checkpoint_write(path, (dc_checkpoint_format)99, &one, 1), DC_EINVAL);
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, NULL, 1), DC_EINVAL);
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_SAFETENSORS, two, 2), DC_EINVAL);  /* twice "w" */
    dc_named_tensor bad = one;
    bad.name = NULL;
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, &bad, 1), DC_EINVAL);
    bad = one;
    bad.tensor.dtype = (dc_dtype)99;
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, &bad, 1), DC_EINVAL);
    bad = one;
    bad.tensor.ndim = DC_MAX_DIMS + 1;
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_SAFETENSORS, &bad, 1), DC_EINVAL);
    bad = one;
    bad.tensor.data = NULL;
    EXPECT(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, &bad, 1), DC_EINVAL);
    /* zero tensors: an empty state dict */
    CHECK_OK(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, NULL, 0));
    dc_checkpoint *c = NULL;
    CHECK_OK(dc_checkpoint_open(&c, path));
    CHECK(dc_checkpoint_count(c) == 0 && dc_checkpoint_name(c, 0) == NULL);
    dc_checkpoint_free(c);
    CHECK_OK(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, &one, 1));

    EXPECT(dc_checkpoint_open(NULL, path), DC_EINVAL);
    EXPECT(dc_checkpoint_open(&c, NULL), DC_EINVAL);
    CHECK(c == NULL);
    EXPECT(dc_checkpoint_open(&c, missing), DC_EIO);
    CHECK(c == NULL);
    dc_checkpoint_free(NULL);
    CHECK(dc_checkpoint_count(NULL) == 0);
    CHECK(dc_checkpoint_name(NULL, 0) == NULL);
    CHECK(dc_checkpoint_container(NULL) == DC_CONTAINER_TORCH_ZIP);

    CHECK_OK(dc_checkpoint_open(&c, path));
    dc_tensor view;
    size_t index = 77;
    CHECK(dc_checkpoint_name(c, 1) == NULL);
    EXPECT(dc_checkpoint_tensor(NULL, 0, &view), DC_EINVAL);
    EXPECT(dc_checkpoint_tensor(c, 0, NULL), DC_EINVAL);
    EXPECT(dc_checkpoint_tensor(c, 1, &view), DC_EINVAL);
    EXPECT(dc_checkpoint_tensor(c, (size_t)-1, &view), DC_EINVAL);
    EXPECT(dc_checkpoint_find(NULL, "w", &index), DC_EINVAL);
    EXPECT(dc_checkpoint_find(c, NULL, &index), DC_EINVAL);
    EXPECT(dc_checkpoint_find(c, "w", NULL), DC_EINVAL);
    EXPECT(dc_checkpoint_find(c, "v", &index), DC_EINVAL);
    CHECK(index == 77);
    CHECK_OK(dc_checkpoint_find(c, "w", &index));
    CHECK(index == 0);
    dc_checkpoint_free(c);
}

/* ---- diffusion models ---- */

TEST(model_load_arguments)
{
    char missing[512];
    path_join(missing, sizeof missing, test_tmpdir(), "missing.pt");
    dc_model *m = NULL;
    EXPECT(dc_model_options_init(NULL, DC_MODEL_OPTIONS_VERSION), DC_EINVAL);
    dc_model_free(NULL);
    EXPECT(dc_model_load(NULL, missing, NULL), DC_EINVAL);
    EXPECT(dc_model_load(&m, NULL, NULL), DC_EINVAL);
    EXPECT(dc_model_load(&m, missing, NULL), DC_EIO);
    CHECK(m == NULL);
    /* options are checked before the file is read */
    dc_model_options o;
    EXPECT(dc_model_options_init(&o, 0), DC_EINVAL);   /* nothing written */
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.version = 0;
    EXPECT(dc_model_load(&m, missing, &o), DC_EINVAL);
    EXPECT(dc_model_options_init(&o, 999), DC_EINVAL);   /* nothing written */
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.version = 999;
    EXPECT(dc_model_load(&m, missing, &o), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "version") != NULL);
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.dtype = (dc_dtype)99;
    EXPECT(dc_model_load(&m, missing, &o), DC_EINVAL);
    o.dtype = DC_INT64;
    EXPECT(dc_model_load(&m, missing, &o), DC_EINVAL);
    o.dtype = DC_FLOAT32;
    o.device = "tpu";
    EXPECT(dc_model_load(&m, missing, &o), DC_EINVAL);
    if (!dc_cuda_available()) {
        o.device = "cuda:0";
        EXPECT(dc_model_load(&m, missing, &o), DC_EDEVICE);
    }
    CHECK(m == NULL);
}

TEST(model_info_describe_and_eps_arguments)
{
    dc_model *m = load_golden_model("ddpm_unet", 0);
    if (!m)
        return;
    dc_model_info info;
    char buf[16];
    EXPECT(dc_model_get_info(NULL, &info), DC_EINVAL);
    EXPECT(dc_model_get_info(m, NULL), DC_EINVAL);
    EXPECT(dc_model_describe(NULL, buf, sizeof buf), DC_EINVAL);
    EXPECT(dc_model_describe(m, NULL, sizeof buf), DC_EINVAL);
    EXPECT(dc_model_describe(m, buf, 0), DC_EINVAL);
    CHECK_OK(dc_model_describe(m, buf, sizeof buf));  /* cut to the buffer */
    CHECK(strlen(buf) == sizeof buf - 1);
    CHECK_OK(dc_model_describe(m, buf, 1));
    CHECK(buf[0] == '\0');

    float ts[2] = {0, 637};
    dc_tensor x = images(2, 3, SIDE, SIDE), t = vector(2, ts), out;
    EXPECT(dc_model_eps(NULL, &x, &t, &out), DC_EINVAL);
    EXPECT(dc_model_eps(m, NULL, &t, &out), DC_EINVAL);
    EXPECT(dc_model_eps(m, &x, NULL, &out), DC_EINVAL);
    EXPECT(dc_model_eps(m, &x, &t, NULL), DC_EINVAL);
    dc_tensor bad = images(2, 4, SIDE, SIDE);         /* 4 channels */
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad = images(2, 3, 30, 30);                       /* not a multiple of 4 */
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad = images(0, 3, SIDE, SIDE);                   /* no image */
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad = images(2, 3, SIDE, SIDE);
    bad.ndim = 3;
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad.ndim = 4;
    bad.dtype = (dc_dtype)99;
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad.dtype = DC_FLOAT64;
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    bad.dtype = DC_FLOAT32;
    bad.data = NULL;
    EXPECT(dc_model_eps(m, &bad, &t, &out), DC_EINVAL);
    dc_tensor bad_t = vector(1, ts);                  /* one timestep for two images */
    EXPECT(dc_model_eps(m, &x, &bad_t, &out), DC_EINVAL);
    bad_t = vector(2, ts);
    bad_t.dtype = DC_INT64;
    EXPECT(dc_model_eps(m, &x, &bad_t, &out), DC_EINVAL);
    bad_t = vector(2, NULL);
    EXPECT(dc_model_eps(m, &x, &bad_t, &out), DC_EINVAL);
    bad_t = (dc_tensor){.dtype = DC_FLOAT32, .ndim = 2, .shape = {2, 1}, .data = ts};
    EXPECT(dc_model_eps(m, &x, &bad_t, &out), DC_EINVAL);
    CHECK_OK(dc_model_eps(m, &x, &t, &out));
    CHECK(out.ndim == 4 && out.shape[0] == 2 && out.shape[1] == 3);
    dc_tensor_free(&out);
    dc_model_free(m);
}

/* ---- inversion, generation, stochastic forward, metrics ---- */

/* Options valid for both directions: t0 300, 4 steps. */
static dc_diffusion_options quick_options(void)
{
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 300;
    o.steps = 4;
    return o;
}

/* Every refused dc_diffusion_options, for a function that takes them (generating: the
 * generation rules, else the inversion rules). */
typedef dc_status (*options_fn)(void *ctx, const dc_diffusion_options *o);

static void check_refused_options(options_fn fn, void *ctx, int generating)
{
    dc_diffusion_options o = quick_options();
    o.version = 0;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.version = 999;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.t0 = 1000;                                      /* t0 >= T */
    EXPECT(fn(ctx, &o), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t0") != NULL);
    o.t0 = 5000;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.t0 = 0;                                         /* t0 < 1 */
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.t0 = -1;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.steps = 1;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.steps = -3;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    if (!generating) {
        o.steps = 0;                                  /* generation only: every timestep */
        EXPECT(fn(ctx, &o), DC_EINVAL);
        o = quick_options();
        o.eta = 0.5;
        EXPECT(fn(ctx, &o), DC_EINVAL);
        o.eta = 0;
        o.sampling = DC_SAMPLING_DDPM;
        o.steps = 0;
        EXPECT(fn(ctx, &o), DC_EINVAL);
    }
    o = quick_options();
    o.sampling = (dc_sampling)7;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.sampling = DC_SAMPLING_DDPM;                    /* DDPM runs every step: steps must be 0 */
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.eta = -1;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.eta = NAN;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.num_timesteps = 1;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.num_timesteps = -5;                             /* 0 is the model's */
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.beta_start = -1e-4;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.beta_start = 0.03;                              /* above beta_end */
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o = quick_options();
    o.beta_end = 1;
    EXPECT(fn(ctx, &o), DC_EINVAL);
    o.beta_end = NAN;
    EXPECT(fn(ctx, &o), DC_EINVAL);
}

typedef struct diffusion_ctx {
    dc_model *model;
    dc_tensor in, out;
} diffusion_ctx;

static dc_status invert_with(void *ctx, const dc_diffusion_options *o)
{
    diffusion_ctx *c = ctx;
    return dc_invert(c->model, &c->in, o, &c->out);
}

static dc_status generate_with(void *ctx, const dc_diffusion_options *o)
{
    diffusion_ctx *c = ctx;
    return dc_generate(c->model, &c->in, o, &c->out);
}

static dc_status add_noise_with(void *ctx, const dc_diffusion_options *o)
{
    diffusion_ctx *c = ctx;
    return dc_add_noise(&c->in, NULL, o, &c->out);
}

TEST(invert_and_generate_arguments)
{
    dc_model *m = load_golden_model("ddpm_unet", 0);
    if (!m)
        return;
    dc_diffusion_options o = quick_options();
    dc_tensor x = images(1, 3, SIDE, SIDE), out = {0};
    EXPECT(dc_invert(NULL, &x, &o, &out), DC_EINVAL);
    EXPECT(dc_invert(m, NULL, &o, &out), DC_EINVAL);
    EXPECT(dc_invert(m, &x, &o, NULL), DC_EINVAL);
    EXPECT(dc_generate(NULL, &x, &o, &out), DC_EINVAL);
    EXPECT(dc_generate(m, NULL, &o, &out), DC_EINVAL);
    EXPECT(dc_generate(m, &x, &o, NULL), DC_EINVAL);
    dc_tensor four = images(1, 4, SIDE, SIDE), odd = images(1, 3, 30, 30),
              none = images(0, 3, SIDE, SIDE), no_data = images(1, 3, SIDE, SIDE);
    no_data.data = NULL;
    const dc_tensor *bad[] = {&four, &odd, &none, &no_data};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(dc_invert(m, bad[i], &o, &out), DC_EINVAL);
        EXPECT(dc_generate(m, bad[i], &o, &out), DC_EINVAL);
    }
    diffusion_ctx ctx = {m, x, {0}};
    check_refused_options(invert_with, &ctx, 0);
    if (test_failed())
        return;
    check_refused_options(generate_with, &ctx, 1);
    if (test_failed())
        return;
    CHECK(ctx.out.data == NULL);                      /* no result on failure */
    /* the boundaries are accepted: t0 = T - 1 with the fewest steps */
    o.t0 = 999;
    o.steps = 2;
    CHECK_OK(dc_invert(m, &x, &o, &out));
    dc_tensor_free(&out);
    o.t0 = 1;
    CHECK_OK(dc_generate(m, &x, &o, &out));
    dc_tensor_free(&out);
    dc_model_free(m);
}

TEST(add_noise_and_compare_images_arguments)
{
    dc_diffusion_options o = quick_options();
    dc_tensor x = images(1, 3, 16, 16), out = {0};
    EXPECT(dc_add_noise(NULL, NULL, &o, &out), DC_EINVAL);
    EXPECT(dc_add_noise(&x, NULL, &o, NULL), DC_EINVAL);
    dc_tensor noise = images(1, 3, 16, 8);
    EXPECT(dc_add_noise(&x, &noise, &o, &out), DC_EINVAL);
    noise = images(1, 3, 16, 16);
    noise.dtype = DC_FLOAT64;
    EXPECT(dc_add_noise(&x, &noise, &o, &out), DC_EINVAL);
    noise.dtype = DC_FLOAT32;
    noise.ndim = 3;
    EXPECT(dc_add_noise(&x, &noise, &o, &out), DC_EINVAL);
    dc_tensor bad = x;
    bad.dtype = DC_INT64;
    EXPECT(dc_add_noise(&bad, NULL, &o, &out), DC_EINVAL);
    bad = x;
    bad.ndim = 0;
    EXPECT(dc_add_noise(&bad, NULL, &o, &out), DC_EINVAL);
    bad.ndim = 64;                                    /* and a noise of the same bad rank */
    noise = bad;
    EXPECT(dc_add_noise(&bad, &noise, &o, &out), DC_EINVAL);
    bad = x;
    bad.data = NULL;
    EXPECT(dc_add_noise(&bad, NULL, &o, &out), DC_EINVAL);
    bad = x;
    bad.shape[2] = -16;
    EXPECT(dc_add_noise(&bad, NULL, &o, &out), DC_EINVAL);
    diffusion_ctx ctx = {NULL, x, {0}};
    check_refused_options(add_noise_with, &ctx, 1);
    if (test_failed())
        return;
    CHECK(ctx.out.data == NULL);
    CHECK_OK(dc_add_noise(&x, NULL, &o, &out));
    dc_tensor_free(&out);

    dc_image_metrics metrics;
    dc_tensor a = images(1, 3, 16, 16), b = images(1, 3, 16, 16);
    EXPECT(dc_compare_images(NULL, &b, &metrics), DC_EINVAL);
    EXPECT(dc_compare_images(&a, NULL, &metrics), DC_EINVAL);
    EXPECT(dc_compare_images(&a, &b, NULL), DC_EINVAL);
    b = images(1, 3, 16, 12);
    EXPECT(dc_compare_images(&a, &b, &metrics), DC_EINVAL);
    b = images(1, 3, 8, 8);                           /* smaller than the SSIM window */
    EXPECT(dc_compare_images(&b, &b, &metrics), DC_EINVAL);
    b = images(0, 3, 16, 16);
    EXPECT(dc_compare_images(&b, &b, &metrics), DC_EINVAL);
    b = images(1, 3, 16, 16);
    b.dtype = DC_FLOAT64;
    EXPECT(dc_compare_images(&a, &b, &metrics), DC_EINVAL);
    b.dtype = DC_FLOAT32;
    b.ndim = 3;
    EXPECT(dc_compare_images(&a, &b, &metrics), DC_EINVAL);
    b.ndim = 4;
    b.data = NULL;
    EXPECT(dc_compare_images(&a, &b, &metrics), DC_EINVAL);
    CHECK_OK(dc_compare_images(&a, &a, &metrics));
    CHECK(metrics.mae == 0 && isinf(metrics.psnr) && fabs(metrics.ssim - 1) < 1e-9);
}

/* ---- latent cache ---- */

TEST(latent_cache_arguments)
{
    dc_model *m = load_golden_model("ddpm_unet", 0);
    if (!m)
        return;
    char path[512], garbage[512], nowhere[512];
    path_join(path, sizeof path, test_tmpdir(), "args.dclat");
    path_join(garbage, sizeof garbage, test_tmpdir(), "garbage.dclat");
    path_join(nowhere, sizeof nowhere, test_tmpdir(), "no/such/dir/x.dclat");
    FILE *f = fopen(garbage, "wb");
    CHECK(f != NULL);
    fputs("not a latent cache, but long enough to hold a header of one at least", f);
    fclose(f);

    dc_diffusion_options o = quick_options();
    dc_latent_cache *c = NULL;
    dc_latent_cache_free(NULL);
    CHECK(dc_latent_cache_count(NULL) == 0);
    EXPECT(dc_latent_cache_open(NULL, path, m, &o, 2), DC_EINVAL);
    EXPECT(dc_latent_cache_open(&c, NULL, m, &o, 2), DC_EINVAL);
    EXPECT(dc_latent_cache_open(&c, path, NULL, &o, 2), DC_EINVAL);
    EXPECT(dc_latent_cache_open(&c, path, m, &o, 1), DC_EINVAL);
    EXPECT(dc_latent_cache_open(&c, path, m, &o, 0), DC_EINVAL);
    dc_diffusion_options bad = o;
    bad.version = 0;
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    bad.version = 999;
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    bad = o;
    bad.t0 = 1000;
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    bad.t0 = 0;
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    bad = o;
    bad.steps = 1;
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    bad = o;
    bad.eta = 0.5;                                    /* the inversion is deterministic */
    EXPECT(dc_latent_cache_open(&c, path, m, &bad, 2), DC_EINVAL);
    EXPECT(dc_latent_cache_open(&c, garbage, m, &o, 2), DC_EFORMAT);
    CHECK(c == NULL);

    CHECK_OK(dc_latent_cache_open(&c, path, m, &o, 2));
    size_t index = 99;
    dc_tensor x0 = images(1, 3, SIDE, SIDE), got = {0};
    EXPECT(dc_latent_cache_add(NULL, &x0, &index), DC_EINVAL);
    EXPECT(dc_latent_cache_add(c, NULL, &index), DC_EINVAL);
    EXPECT(dc_latent_cache_add(c, &x0, NULL), DC_EINVAL);
    dc_tensor wrong[] = {images(2, 3, SIDE, SIDE), images(1, 3, 15, 15),
                         images(1, 4, SIDE, SIDE), images(0, 3, SIDE, SIDE), x0, x0};
    wrong[4].data = NULL;
    wrong[5].dtype = DC_FLOAT64;
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        EXPECT(dc_latent_cache_add(c, &wrong[i], &index), DC_EINVAL);
    CHECK(index == 99 && dc_latent_cache_count(c) == 0);
    EXPECT(dc_latent_cache_get(NULL, 0, &got, NULL, NULL), DC_EINVAL);
    EXPECT(dc_latent_cache_get(c, 0, &got, NULL, NULL), DC_EINVAL);   /* empty */
    CHECK(got.data == NULL);
    CHECK_OK(dc_latent_cache_add(c, &x0, &index));
    CHECK(index == 0);
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)   /* now with an entry to compare */
        EXPECT(dc_latent_cache_add(c, &wrong[i], &index), DC_EINVAL);
    CHECK(index == 0 && dc_latent_cache_count(c) == 1);
    EXPECT(dc_latent_cache_get(c, 1, &got, &got, &got), DC_EINVAL);
    CHECK(got.data == NULL);
    CHECK_OK(dc_latent_cache_get(c, 0, NULL, NULL, NULL));
    dc_latent_cache_free(c);

    /* A new cache is created by its first add: a missing folder fails there, named. */
    CHECK_OK(dc_latent_cache_open(&c, nowhere, m, &o, 2));
    EXPECT(dc_latent_cache_add(c, &x0, &index), DC_EIO);
    CHECK(strstr(dc_last_error(), "no/such/dir") != NULL);
    CHECK(dc_latent_cache_count(c) == 0);
    dc_latent_cache_free(c);
    dc_model_free(m);
}

/* ---- sampler ---- */

TEST(sampler_arguments)
{
    dc_model *m = load_golden_model("ddpm_unet", 0);
    if (!m)
        return;
    dc_model *adm = load_golden_model("adm_unet", 16);
    if (!adm) {
        dc_model_free(m);
        return;
    }
    dc_sampler *s = NULL;
    dc_model *pair[2] = {m, m}, *with_null[2] = {m, NULL}, *mixed[2] = {m, adm};
    dc_model *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = m;
    dc_sampler_free(NULL);
    CHECK(dc_sampler_count(NULL) == 0);
    EXPECT(dc_sampler_new(NULL, pair, 2), DC_EINVAL);
    EXPECT(dc_sampler_new(&s, NULL, 2), DC_EINVAL);
    EXPECT(dc_sampler_new(&s, pair, 0), DC_EINVAL);
    EXPECT(dc_sampler_new(&s, many, 65), DC_EINVAL);
    EXPECT(dc_sampler_new(&s, with_null, 2), DC_EINVAL);
    EXPECT(dc_sampler_new(&s, mixed, 2), DC_EINVAL);  /* another family and output layout */
    CHECK(s == NULL);
    CHECK_OK(dc_sampler_new(&s, many, 64));
    dc_sampler_free(s);
    CHECK_OK(dc_sampler_new(&s, pair, 2));
    CHECK(dc_sampler_count(s) == 2);

    double w[2];
    const double half[2] = {0.5, 0.5}, short_of_one[2] = {0.5, 0.4}, nan_w[2] = {NAN, 1},
                 inf_w[2] = {INFINITY, -INFINITY}, extrapolated[2] = {1.5, -0.5};
    EXPECT(dc_sampler_weights_at(NULL, 0, w), DC_EINVAL);
    EXPECT(dc_sampler_weights_at(s, 0, NULL), DC_EINVAL);
    EXPECT(dc_sampler_set_weights(NULL, half), DC_EINVAL);
    EXPECT(dc_sampler_set_weights(s, NULL), DC_EINVAL);
    EXPECT(dc_sampler_set_weights(s, short_of_one), DC_EINVAL);
    EXPECT(dc_sampler_set_weights(s, nan_w), DC_EINVAL);
    EXPECT(dc_sampler_set_weights(s, inf_w), DC_EINVAL);
    CHECK_OK(dc_sampler_weights_at(s, 500, w));       /* refused: model 0 alone still */
    CHECK(w[0] == 1 && w[1] == 0);
    CHECK_OK(dc_sampler_set_weights(s, extrapolated));

    const int thresholds[2] = {300, 0}, twice[2] = {300, 300}, positive[2] = {300, 100};
    const double rows[4] = {1, 0, 0.3, 0.7}, bad_rows[4] = {1, 0, 0.3, 0.6};
    EXPECT(dc_sampler_set_piecewise(NULL, thresholds, rows, 2), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, NULL, rows, 2), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, thresholds, NULL, 2), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, thresholds, rows, 0), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, thresholds, rows, 1025), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, twice, rows, 2), DC_EINVAL);
    EXPECT(dc_sampler_set_piecewise(s, positive, rows, 2), DC_EINVAL);  /* nothing below 100 */
    EXPECT(dc_sampler_set_piecewise(s, thresholds, bad_rows, 2), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "sum") != NULL);
    CHECK_OK(dc_sampler_weights_at(s, 500, w));       /* the constant weights stay */
    CHECK(w[0] == 1.5 && w[1] == -0.5);

    EXPECT(dc_sampler_set_ramp(NULL, 0, half, 999, half), DC_EINVAL);
    EXPECT(dc_sampler_set_ramp(s, 0, NULL, 999, half), DC_EINVAL);
    EXPECT(dc_sampler_set_ramp(s, 0, half, 999, NULL), DC_EINVAL);
    EXPECT(dc_sampler_set_ramp(s, 400, half, 400, extrapolated), DC_EINVAL);
    EXPECT(dc_sampler_set_ramp(s, 0, short_of_one, 999, half), DC_EINVAL);
    EXPECT(dc_sampler_set_ramp(s, 0, half, 999, nan_w), DC_EINVAL);
    CHECK_OK(dc_sampler_weights_at(s, 500, w));
    CHECK(w[0] == 1.5 && w[1] == -0.5);

    dc_diffusion_options o = quick_options();
    dc_tensor lat = images(1, 3, SIDE, SIDE), out = {0};
    EXPECT(dc_sampler_generate(NULL, &lat, &o, &out), DC_EINVAL);
    EXPECT(dc_sampler_generate(s, NULL, &o, &out), DC_EINVAL);
    EXPECT(dc_sampler_generate(s, &lat, &o, NULL), DC_EINVAL);
    dc_tensor four = images(1, 4, SIDE, SIDE), odd = images(1, 3, 30, 30);
    EXPECT(dc_sampler_generate(s, &four, &o, &out), DC_EINVAL);
    EXPECT(dc_sampler_generate(s, &odd, &o, &out), DC_EINVAL);
    o.t0 = 1000;
    EXPECT(dc_sampler_generate(s, &lat, &o, &out), DC_EINVAL);
    o = quick_options();
    o.steps = 1;
    EXPECT(dc_sampler_generate(s, &lat, &o, &out), DC_EINVAL);
    o = quick_options();
    o.version = 0;
    EXPECT(dc_sampler_generate(s, &lat, &o, &out), DC_EINVAL);
    CHECK(out.data == NULL);
    dc_sampler_free(s);
    dc_model_free(adm);
    dc_model_free(m);
}

static dc_edit_options quick_edit(void)
{
    dc_edit_options e;
    dc_edit_options_init(&e, DC_EDIT_OPTIONS_VERSION);
    e.t0 = 300;
    e.inv_steps = 3;
    e.gen_steps = 2;
    e.repeats = 1;
    e.projection_steps = 2;
    return e;
}

TEST(edit_transition_translate_arguments)
{
    dc_model *m = load_golden_model("ddpm_unet", 0);
    if (!m)
        return;
    EXPECT(dc_edit_options_init(NULL, DC_EDIT_OPTIONS_VERSION), DC_EINVAL);
    dc_sampler *s = NULL;
    CHECK_OK(dc_sampler_new(&s, &m, 1));
    dc_tensor x0 = images(1, 3, SIDE, SIDE), out = {0}, projected = {0};
    dc_edit_options e = quick_edit();
    EXPECT(dc_sampler_edit(NULL, &x0, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_edit(s, NULL, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_edit(s, &x0, &e, NULL), DC_EINVAL);
    EXPECT(dc_sampler_transition(NULL, &x0, 2, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_transition(s, NULL, 2, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_transition(s, &x0, 2, &e, NULL), DC_EINVAL);
    EXPECT(dc_sampler_transition(s, &x0, 1, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_transition(s, &x0, 0, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_transition(s, &x0, 4097, &e, &out), DC_EINVAL);
    EXPECT(dc_sampler_translate(NULL, &x0, &e, &out, &projected), DC_EINVAL);
    EXPECT(dc_sampler_translate(s, NULL, &e, &out, &projected), DC_EINVAL);
    EXPECT(dc_sampler_translate(s, &x0, &e, NULL, &projected), DC_EINVAL);

    /* Each refused option, through all three modes. */
    dc_edit_options bad[16];
    int n = 0;
    bad[n] = quick_edit(), bad[n++].version = 0;
    bad[n] = quick_edit(), bad[n++].version = 999;
    bad[n] = quick_edit(), bad[n++].t0 = 1000;       /* t0 >= T */
    bad[n] = quick_edit(), bad[n++].t0 = 0;
    bad[n] = quick_edit(), bad[n++].inv_steps = 1;
    bad[n] = quick_edit(), bad[n++].gen_steps = 1;
    bad[n] = quick_edit(), bad[n++].gen_steps = -1;
    bad[n] = quick_edit(), bad[n++].eta = -0.5;
    bad[n] = quick_edit(), bad[n++].repeats = 0;
    bad[n] = quick_edit(), bad[n++].projection_steps = 1;
    bad[n] = quick_edit(), bad[n++].num_timesteps = 1;
    bad[n] = quick_edit(), bad[n++].beta_start = -1;
    for (int i = 0; i < n; i++) {
        EXPECT(dc_sampler_edit(s, &x0, &bad[i], &out), DC_EINVAL);
        EXPECT(dc_sampler_transition(s, &x0, 2, &bad[i], &out), DC_EINVAL);
        EXPECT(dc_sampler_translate(s, &x0, &bad[i], &out, &projected), DC_EINVAL);
    }
    dc_tensor wrong[] = {images(1, 4, SIDE, SIDE), images(1, 3, 30, 30), images(0, 3, SIDE, SIDE)};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        EXPECT(dc_sampler_edit(s, &wrong[i], &e, &out), DC_EINVAL);
        EXPECT(dc_sampler_transition(s, &wrong[i], 2, &e, &out), DC_EINVAL);
        EXPECT(dc_sampler_translate(s, &wrong[i], &e, &out, &projected), DC_EINVAL);
    }
    CHECK(out.data == NULL && projected.data == NULL);

    /* A cache made with another t0 or number of inversion steps is refused. */
    char path[512];
    dc_diffusion_options inversion = quick_options();
    inversion.steps = e.inv_steps;
    dc_latent_cache *cache;
    CHECK_OK(dc_latent_cache_open(&cache, path_join(path, sizeof path, test_tmpdir(),
                                                    "edit.dclat"),
                                  m, &inversion, 2));
    e.cache = cache;
    e.t0 = 200;
    EXPECT(dc_sampler_edit(s, &x0, &e, &out), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t0") != NULL);
    e.t0 = 300;
    e.inv_steps = 4;
    EXPECT(dc_sampler_transition(s, &x0, 2, &e, &out), DC_EINVAL);
    CHECK(dc_latent_cache_count(cache) == 0);
    /* translate ignores the cache; projected may be NULL */
    CHECK_OK(dc_sampler_translate(s, &x0, &e, &out, NULL));
    dc_tensor_free(&out);
    dc_latent_cache_free(cache);
    dc_sampler_free(s);
    dc_model_free(m);
}

/* ---- tokenizer, CLIP, identity network ---- */

static dc_tokenizer *load_tokenizer(void)
{
    char vocab[1024];
    if (!clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return NULL;
    dc_tokenizer *tok = NULL;
    if (dc_tokenizer_new(&tok, vocab) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "tokenizer: %s", dc_last_error());
    return tok;
}

TEST(tokenizer_arguments)
{
    char missing[512];
    path_join(missing, sizeof missing, test_tmpdir(), "missing.txt.gz");
    dc_tokenizer *tok = NULL;
    dc_tokenizer_free(NULL);
    EXPECT(dc_tokenizer_new(NULL, missing), DC_EINVAL);
    EXPECT(dc_tokenizer_new(&tok, NULL), DC_EINVAL);
    EXPECT(dc_tokenizer_new(&tok, missing), DC_EIO);
    CHECK(tok == NULL);
    dc_tensor out;
    const char *texts[2] = {"a face", NULL};
    EXPECT(dc_tokenize(NULL, texts, 1, 77, 0, &out), DC_EINVAL);
    CHECK(out.data == NULL);                          /* zeroed on failure */
    if (!(tok = load_tokenizer()))
        return;
    EXPECT(dc_tokenize(tok, texts, 1, 77, 0, NULL), DC_EINVAL);
    EXPECT(dc_tokenize(tok, NULL, 1, 77, 0, &out), DC_EINVAL);
    EXPECT(dc_tokenize(tok, texts, 2, 77, 0, &out), DC_EINVAL);   /* text 1 is NULL */
    EXPECT(dc_tokenize(tok, texts, 1, 0, 0, &out), DC_EINVAL);
    EXPECT(dc_tokenize(tok, texts, 1, -77, 0, &out), DC_EINVAL);
    EXPECT(dc_tokenize(tok, texts, (size_t)-1, 77, 0, &out), DC_ENOMEM);
    const char *invalid[1] = {"caf\xc3"};
    EXPECT(dc_tokenize(tok, invalid, 1, 77, 0, &out), DC_EINVAL);
    EXPECT(dc_tokenize(tok, texts, 1, 3, 0, &out), DC_EINVAL);    /* too long for 3 tokens */
    CHECK(strstr(dc_last_error(), "text 0") != NULL);
    CHECK_OK(dc_tokenize(tok, texts, 1, 3, 1, &out));
    CHECK(out.shape[0] == 1 && out.shape[1] == 3 && ((int64_t *)out.data)[2] == 49407);
    dc_tensor_free(&out);
    CHECK_OK(dc_tokenize(tok, NULL, 0, 77, 0, &out));             /* no text: [0, 77] */
    CHECK(out.dtype == DC_INT64 && out.ndim == 2 && out.shape[0] == 0 && out.shape[1] == 77);
    dc_tensor_free(&out);
    dc_tokenizer_free(tok);
}

TEST(clip_arguments)
{
    char dir[1024], path[1200], missing[512];
    path_join(missing, sizeof missing, test_tmpdir(), "missing.pt");
    dc_clip *clip = NULL;
    dc_clip_options o;
    EXPECT(dc_clip_options_init(NULL, DC_CLIP_OPTIONS_VERSION), DC_EINVAL);
    dc_clip_free(NULL);
    CHECK(dc_clip_input_size(NULL) == 0 && dc_clip_embed_dim(NULL) == 0);
    EXPECT(dc_clip_load(NULL, missing, NULL), DC_EINVAL);
    EXPECT(dc_clip_load(&clip, NULL, NULL), DC_EINVAL);
    EXPECT(dc_clip_load(&clip, missing, NULL), DC_EIO);
    EXPECT(dc_clip_options_init(&o, 0), DC_EINVAL);   /* nothing written */
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    o.version = 0;
    EXPECT(dc_clip_load(&clip, missing, &o), DC_EINVAL);
    EXPECT(dc_clip_options_init(&o, 999), DC_EINVAL);   /* nothing written */
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    o.version = 999;
    EXPECT(dc_clip_load(&clip, missing, &o), DC_EINVAL);
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    o.loss_form = (dc_clip_loss_form)9;
    EXPECT(dc_clip_load(&clip, missing, &o), DC_EINVAL);
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    o.half = 1;                                       /* float16 needs CUDA */
    EXPECT(dc_clip_load(&clip, missing, &o), DC_EINVAL);
    o.half = 0;
    o.device = "gpu";
    EXPECT(dc_clip_load(&clip, missing, &o), DC_EINVAL);
    if (!dc_cuda_available()) {
        o.device = "cuda";
        EXPECT(dc_clip_load(&clip, missing, &o), DC_EDEVICE);
    }
    CHECK(clip == NULL);

    if (!golden_case("clip_vit", dir, sizeof dir))
        return;
    dc_tokenizer *tok = load_tokenizer();
    if (!tok)
        return;
    CHECK_OK(dc_clip_load(&clip, path_join(path, sizeof path, dir, "clip_state_dict.pt"), NULL));
    int size = dc_clip_input_size(clip);
    CHECK(size == 224 && dc_clip_embed_dim(clip) == 32);

    dc_tensor x = images(2, 3, SIDE, SIDE), out = {0};
    EXPECT(dc_clip_preprocess(NULL, &x, &out), DC_EINVAL);
    EXPECT(dc_clip_preprocess(clip, NULL, &out), DC_EINVAL);
    EXPECT(dc_clip_preprocess(clip, &x, NULL), DC_EINVAL);
    dc_tensor wrong[] = {images(2, 4, SIDE, SIDE), images(0, 3, SIDE, SIDE),
                         images(2, 3, 0, SIDE), x, x, x, x, x, x};
    wrong[3].ndim = 2;
    wrong[4].dtype = DC_INT64;
    wrong[5].dtype = DC_FLOAT64;
    wrong[6].dtype = DC_UINT8;
    wrong[7].dtype = (dc_dtype)99;
    wrong[8].data = NULL;
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        EXPECT(dc_clip_preprocess(clip, &wrong[i], &out), DC_EINVAL);
        EXPECT(dc_clip_encode_image(clip, &wrong[i], &out), DC_EINVAL);
    }
    dc_tensor small = images(1, 3, SIDE, SIDE);       /* encode_image takes 224 x 224 */
    EXPECT(dc_clip_encode_image(clip, &small, &out), DC_EINVAL);
    EXPECT(dc_clip_encode_image(NULL, &small, &out), DC_EINVAL);
    EXPECT(dc_clip_encode_image(clip, NULL, &out), DC_EINVAL);

    uint8_t pixels[8 * 8 * 3] = {0};
    dc_image img = {.width = 8, .height = 8, .channels = 3, .data = pixels}, bad_img = img;
    bad_img.height = 0;
    EXPECT(dc_clip_preprocess_image(NULL, &img, &out), DC_EINVAL);
    EXPECT(dc_clip_preprocess_image(clip, NULL, &out), DC_EINVAL);
    EXPECT(dc_clip_preprocess_image(clip, &img, NULL), DC_EINVAL);
    EXPECT(dc_clip_preprocess_image(clip, &bad_img, &out), DC_EINVAL);
    CHECK(out.data == NULL);

    const char *texts[1] = {"a face"};
    dc_tensor tokens, short_tokens;
    CHECK_OK(dc_tokenize(tok, texts, 1, 77, 0, &tokens));
    CHECK_OK(dc_tokenize(tok, texts, 1, 10, 0, &short_tokens));
    EXPECT(dc_clip_encode_text(NULL, &tokens, &out), DC_EINVAL);
    EXPECT(dc_clip_encode_text(clip, NULL, &out), DC_EINVAL);
    EXPECT(dc_clip_encode_text(clip, &tokens, NULL), DC_EINVAL);
    EXPECT(dc_clip_encode_text(clip, &short_tokens, &out), DC_EINVAL);  /* context 77 */
    dc_tensor float_tokens = images(1, 1, 1, 77);
    float_tokens.ndim = 2;
    float_tokens.shape[1] = 77;
    EXPECT(dc_clip_encode_text(clip, &float_tokens, &out), DC_EINVAL);
    int64_t *ids = tokens.data;
    int64_t saved = ids[1];
    ids[1] = 49408;                                   /* past the vocabulary */
    EXPECT(dc_clip_encode_text(clip, &tokens, &out), DC_EINVAL);
    ids[1] = -1;
    EXPECT(dc_clip_encode_text(clip, &tokens, &out), DC_EINVAL);
    ids[1] = saved;
    CHECK_OK(dc_clip_encode_text(clip, &tokens, &out));
    CHECK(out.ndim == 2 && out.shape[0] == 1 && out.shape[1] == 32);
    dc_tensor_free(&out);
    dc_tensor_free(&tokens);
    dc_tensor_free(&short_tokens);

    double losses[2];
    dc_tensor a = images(2, 3, SIDE, SIDE), b = images(1, 3, SIDE, SIDE), grad = {0};
    EXPECT(dc_clip_loss(NULL, tok, "face", "angry face", &a, &a, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, NULL, "face", "angry face", &a, &a, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, NULL, "angry face", &a, &a, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, "face", NULL, &a, &a, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, "face", "angry face", NULL, &a, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, "face", "angry face", &a, NULL, losses, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, "face", "angry face", &a, &a, NULL, &grad), DC_EINVAL);
    EXPECT(dc_clip_loss(clip, tok, "face", "angry face", &a, &b, losses, &grad), DC_EINVAL);
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        EXPECT(dc_clip_loss(clip, tok, "face", "angry face", &wrong[i], &wrong[i], losses, NULL),
               DC_EINVAL);
    const char *invalid = "caf\xc3";
    EXPECT(dc_clip_loss(clip, tok, invalid, "angry face", &a, &a, losses, NULL), DC_EINVAL);
    CHECK(grad.data == NULL);
    dc_clip_free(clip);
    dc_tokenizer_free(tok);
}

TEST(idnet_arguments)
{
    char dir[1024], path[1200], missing[512];
    path_join(missing, sizeof missing, test_tmpdir(), "missing.pth");
    dc_idnet *net = NULL;
    dc_idnet_options o;
    EXPECT(dc_idnet_options_init(NULL, DC_IDNET_OPTIONS_VERSION), DC_EINVAL);
    dc_idnet_free(NULL);
    EXPECT(dc_idnet_load(NULL, missing, NULL), DC_EINVAL);
    EXPECT(dc_idnet_load(&net, NULL, NULL), DC_EINVAL);
    EXPECT(dc_idnet_load(&net, missing, NULL), DC_EIO);
    EXPECT(dc_idnet_options_init(&o, 0), DC_EINVAL);   /* nothing written */
    dc_idnet_options_init(&o, DC_IDNET_OPTIONS_VERSION);
    o.version = 0;
    EXPECT(dc_idnet_load(&net, missing, &o), DC_EINVAL);
    EXPECT(dc_idnet_options_init(&o, 999), DC_EINVAL);   /* nothing written */
    dc_idnet_options_init(&o, DC_IDNET_OPTIONS_VERSION);
    o.version = 999;
    EXPECT(dc_idnet_load(&net, missing, &o), DC_EINVAL);
    dc_idnet_options_init(&o, DC_IDNET_OPTIONS_VERSION);
    o.device = "quantum";
    EXPECT(dc_idnet_load(&net, missing, &o), DC_EINVAL);
    CHECK(net == NULL);

    if (!golden_case("arcface_irse", dir, sizeof dir))
        return;
    CHECK_OK(dc_idnet_load(&net, path_join(path, sizeof path, dir, "irse_fp16.pt"), NULL));
    dc_tensor x = images(1, 3, SIDE, SIDE), out = {0}, per_sample = {0}, grad = {0};
    double loss = -1;
    EXPECT(dc_idnet_features(NULL, &x, &out), DC_EINVAL);
    EXPECT(dc_idnet_features(net, NULL, &out), DC_EINVAL);
    EXPECT(dc_idnet_features(net, &x, NULL), DC_EINVAL);
    dc_tensor wrong[] = {images(1, 4, SIDE, SIDE), images(0, 3, SIDE, SIDE),
                         images(1, 3, 1, 1), x, x, x, x, x};
    wrong[3].ndim = 3;
    wrong[4].dtype = DC_UINT8;
    wrong[5].dtype = DC_FLOAT64;
    wrong[6].dtype = (dc_dtype)99;
    wrong[7].data = NULL;
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        EXPECT(dc_idnet_features(net, &wrong[i], &out), DC_EINVAL);
        EXPECT(dc_idnet_id_loss(net, &wrong[i], &wrong[i], &loss, NULL, NULL), DC_EINVAL);
    }
    dc_tensor two = images(2, 3, SIDE, SIDE);
    EXPECT(dc_idnet_id_loss(NULL, &x, &x, &loss, &per_sample, &grad), DC_EINVAL);
    EXPECT(dc_idnet_id_loss(net, NULL, &x, &loss, &per_sample, &grad), DC_EINVAL);
    EXPECT(dc_idnet_id_loss(net, &x, NULL, &loss, &per_sample, &grad), DC_EINVAL);
    EXPECT(dc_idnet_id_loss(net, &x, &x, NULL, &per_sample, &grad), DC_EINVAL);
    EXPECT(dc_idnet_id_loss(net, &x, &two, &loss, &per_sample, &grad), DC_EINVAL);
    dc_tensor smaller = images(1, 3, 16, 16);
    EXPECT(dc_idnet_id_loss(net, &x, &smaller, &loss, &per_sample, &grad), DC_EINVAL);
    CHECK(out.data == NULL && per_sample.data == NULL && grad.data == NULL);
    CHECK_OK(dc_idnet_id_loss(net, &x, &x, &loss, NULL, NULL));   /* outputs may be NULL */
    CHECK(fabs(loss) < 1e-5);
    dc_idnet_free(net);
}

/* ---- fine-tuning ---- */

TEST(presets_arguments)
{
    dc_finetune_options o;
    EXPECT(dc_finetune_options_init(NULL, DC_FINETUNE_OPTIONS_VERSION), DC_EINVAL);
    dc_finetune_options_init(&o, DC_FINETUNE_OPTIONS_VERSION);
    CHECK(dc_dataset_preset_at((size_t)-1) == NULL && dc_edit_preset_at(100000) == NULL);
    CHECK(dc_dataset_preset_find(NULL) == NULL && dc_dataset_preset_find("mnist") == NULL);
    CHECK(dc_edit_preset_find(NULL) == NULL && dc_edit_preset_find("") == NULL);
    EXPECT(dc_finetune_options_apply_preset(NULL, "celeba"), DC_EINVAL);
    EXPECT(dc_finetune_options_apply_preset(&o, NULL), DC_EINVAL);
    EXPECT(dc_finetune_options_apply_preset(&o, "mnist"), DC_EINVAL);
    CHECK(o.t0 == 500 && o.text_pairs == 0);          /* untouched */
}

#include "finetune_fixture.h"

TEST(finetuner_arguments)
{
    ft_fixture f;
    if (!fixture_init(&f, "args_ft.dclat"))
        return;
    char out_path[512], delta[512], adm_path[1300];
    path_join(out_path, sizeof out_path, test_tmpdir(), "ft.pt");
    path_join(delta, sizeof delta, test_tmpdir(), "ft.delta");
    snprintf(adm_path, sizeof adm_path, "%s/adm_unet/model.pt", f.golden);
    dc_finetuner *ft = NULL;
    const dc_finetune_options *good = &f.options;
    EXPECT(dc_finetuner_new(NULL, f.base, f.clip, f.tokenizer, NULL, f.cache, good), DC_EINVAL);
    EXPECT(dc_finetuner_new(&ft, NULL, f.clip, f.tokenizer, NULL, f.cache, good), DC_EINVAL);
    EXPECT(dc_finetuner_new(&ft, f.base, NULL, f.tokenizer, NULL, f.cache, good), DC_EINVAL);
    EXPECT(dc_finetuner_new(&ft, f.base, f.clip, NULL, NULL, f.cache, good), DC_EINVAL);
    EXPECT(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, NULL, good), DC_EINVAL);
    CHECK(ft == NULL);

    static const char *const empty[] = {""};
    static const size_t past_the_cache[] = {0, 2};
    dc_finetune_options bad[32];
    int n = 0;
    bad[n] = *good, bad[n++].version = 0;
    bad[n] = *good, bad[n++].version = 999;
    bad[n] = *good, bad[n++].text_pairs = 0;
    bad[n] = *good, bad[n++].source_texts = NULL;
    bad[n] = *good, bad[n++].target_texts = empty;
    bad[n] = *good, bad[n++].t0 = 200;               /* not the cache's */
    bad[n] = *good, bad[n++].t0 = 1000;
    bad[n] = *good, bad[n++].inv_steps = 5;          /* not the cache's */
    bad[n] = *good, bad[n++].train_steps = 1;
    bad[n] = *good, bad[n++].train_steps = 0;
    bad[n] = *good, bad[n++].epochs = 0;
    bad[n] = *good, bad[n++].images = 0;
    bad[n] = *good, bad[n++].batch_size = 0;
    bad[n] = *good, bad[n++].loss_form = (dc_clip_loss_form)5;
    bad[n] = *good, bad[n++].grad_mode = (dc_grad_mode)5;
    bad[n] = *good, bad[n++].lr_gamma = 0;
    bad[n] = *good, bad[n++].lr_gamma = NAN;
    bad[n] = *good, bad[n++].learning_rate = -1;
    bad[n] = *good, bad[n++].learning_rate = NAN;
    bad[n] = *good, bad[n++].eta = -1;
    bad[n] = *good, bad[n++].id_weight = 1;          /* needs an identity network */
    bad[n] = *good, bad[n++].clip_weight = INFINITY;
    bad[n] = *good, bad[n].image_indices = past_the_cache, bad[n++].image_count = 2;
    bad[n] = *good, bad[n++].world_size = 0;
    bad[n] = *good, bad[n++].rank = -1;
    bad[n] = *good, bad[n].world_size = 2, bad[n++].rank = 2;
    bad[n] = *good, bad[n].world_size = 2, bad[n++].master_port = 0;
    bad[n] = *good, bad[n].world_size = 2, bad[n++].master_port = 65536;
    bad[n] = *good, bad[n].world_size = 2, bad[n++].dist_timeout = 0;
    bad[n] = *good, bad[n].world_size = 2, bad[n++].dist_timeout = NAN;
    for (int i = 0; i < n; i++) {
        dci_err_clear();
        int status = dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &bad[i]);
        CHECKF(status == DC_EINVAL && ft == NULL && dc_last_error()[0],
               "bad options %d: status %d (%s)", i, status, dc_last_error());
    }

    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, good));
    dc_finetuner_free(NULL);
    EXPECT(dc_finetuner_train(NULL, 0, out_path), DC_EINVAL);
    EXPECT(dc_finetuner_train(ft, 1, out_path), DC_EINVAL);   /* one text pair */
    EXPECT(dc_finetuner_train(ft, 0, NULL), DC_EINVAL);
    EXPECT(dc_finetuner_train(ft, 0, ""), DC_EINVAL);
    EXPECT(dc_finetuner_save(NULL, out_path), DC_EINVAL);
    EXPECT(dc_finetuner_save(ft, NULL), DC_EINVAL);
    CHECK_OK(dc_finetuner_save(ft, delta));

    dc_model *tuned = NULL, *adm = NULL;
    dc_model_options mo;
    EXPECT(dc_model_load_finetuned(NULL, f.base, delta, NULL), DC_EINVAL);
    EXPECT(dc_model_load_finetuned(&tuned, NULL, delta, NULL), DC_EINVAL);
    EXPECT(dc_model_load_finetuned(&tuned, f.base, NULL, NULL), DC_EINVAL);
    EXPECT(dc_model_options_init(&mo, 0), DC_EINVAL);   /* nothing written */
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.version = 0;
    EXPECT(dc_model_load_finetuned(&tuned, f.base, delta, &mo), DC_EINVAL);
    EXPECT(dc_model_options_init(&mo, 999), DC_EINVAL);   /* nothing written */
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.version = 999;
    EXPECT(dc_model_load_finetuned(&tuned, f.base, delta, &mo), DC_EINVAL);
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.dtype = (dc_dtype)42;
    EXPECT(dc_model_load_finetuned(&tuned, f.base, delta, &mo), DC_EINVAL);
    mo.dtype = DC_FLOAT32;
    mo.device = "tpu";
    EXPECT(dc_model_load_finetuned(&tuned, f.base, delta, &mo), DC_EINVAL);
    EXPECT(dc_model_load_finetuned(&tuned, f.base, "/nonexistent/ft.delta", NULL), DC_EIO);
    /* weights of another architecture */
    EXPECT(dc_model_load_finetuned(&tuned, f.base, adm_path, NULL), DC_EFORMAT);
    CHECK(tuned == NULL);
    CHECK_OK(dc_model_load_finetuned(&tuned, f.base, delta, NULL));

    EXPECT(dc_model_save_delta(NULL, f.base, delta), DC_EINVAL);
    EXPECT(dc_model_save_delta(tuned, NULL, delta), DC_EINVAL);
    EXPECT(dc_model_save_delta(tuned, f.base, NULL), DC_EINVAL);
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    mo.head_channels = 16;
    CHECK_OK(dc_model_load(&adm, adm_path, &mo));
    dc_model *other = NULL;
    EXPECT(dc_model_load_finetuned(&other, adm, delta, NULL), DC_EINVAL);  /* another base */
    CHECK(other == NULL && strstr(dc_last_error(), "another base") != NULL);
    EXPECT(dc_model_save_delta(adm, f.base, delta), DC_EINVAL);
    dc_model_free(adm);
    dc_model_free(tuned);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

/* ---- face descriptor ---- */

TEST(face_descriptor_arguments)
{
    char manifest[512];
    path_join(manifest, sizeof manifest, test_tmpdir(), "missing-manifest.json");
    dc_face_descriptor *fd = NULL;
    dc_face_descriptor_free(NULL);
    dc_face_descriptor_options cpu = DC_FACE_DESCRIPTOR_OPTIONS_INIT, abacus = cpu, future = cpu;
    cpu.device = "cpu";
    abacus.device = "abacus";
    future.version = DC_FACE_DESCRIPTOR_OPTIONS_VERSION + 1;
    EXPECT(dc_face_descriptor_options_init(NULL, DC_FACE_DESCRIPTOR_OPTIONS_VERSION), DC_EINVAL);
    EXPECT(dc_face_descriptor_load(NULL, manifest, NULL, &cpu), DC_EINVAL);
    EXPECT(dc_face_descriptor_load(&fd, NULL, NULL, &cpu), DC_EINVAL);
    EXPECT(dc_face_descriptor_load(&fd, manifest, NULL, &abacus), DC_EINVAL);
    EXPECT(dc_face_descriptor_load(&fd, manifest, NULL, &future), DC_EINVAL);
    EXPECT(dc_face_descriptor_load(&fd, manifest, NULL, &cpu), DC_EIO);
    CHECK(fd == NULL);

    uint8_t pixels[16 * 12 * 3] = {0};
    dc_image img = {.width = 16, .height = 12, .channels = 3, .data = pixels}, out;
    dc_face_box box = {2, 2, 8}, outside = {10, 6, 8}, negative = {-1, 0, 4}, empty = {0, 0, 0};
    EXPECT(dc_face_crop(NULL, &box, 8, &out), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &box, 8, NULL), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &box, 0, &out), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &box, -8, &out), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &outside, 8, &out), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &negative, 8, &out), DC_EINVAL);
    EXPECT(dc_face_crop(&img, &empty, 8, &out), DC_EINVAL);
    dc_image bad = img;
    bad.channels = 1;
    EXPECT(dc_face_crop(&bad, NULL, 8, &out), DC_EINVAL);
    bad = img;
    bad.data = NULL;
    EXPECT(dc_face_crop(&bad, NULL, 8, &out), DC_EINVAL);
    CHECK(out.data == NULL);
    CHECK_OK(dc_face_crop(&img, NULL, 8, &out));      /* the centred 12 x 12 square */
    CHECK(out.width == 8 && out.height == 8);
    dc_image_free(&out);

    float a[DC_FACE_DESCRIPTOR_SIZE] = {0}, b[DC_FACE_DESCRIPTOR_SIZE] = {0};
    double distance = -1;
    b[0] = 3, b[1] = 4;
    EXPECT(dc_face_descriptor_compute(NULL, &img, NULL, a), DC_EINVAL);
    EXPECT(dc_face_distance(NULL, b, &distance), DC_EINVAL);
    EXPECT(dc_face_distance(a, NULL, &distance), DC_EINVAL);
    EXPECT(dc_face_distance(a, b, NULL), DC_EINVAL);
    CHECK_OK(dc_face_distance(a, b, &distance));
    CHECK(distance == 5);
}
