/* The sampler on the golden noise_combination case: DDIM generation with eps = (1 - g) eps_A +
 * g eps_B (rows of mixed.npy), gamma 0 and 1 bit for bit equal to one model alone, three
 * models, schedules, and the editing modes over the mix. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"

typedef struct fixture {
    dc_model *a, *b;
    dc_tensor lat, mixed;
} fixture;

static void fixture_free(fixture *f)
{
    dc_model_free(f->a), dc_model_free(f->b);
    dc_tensor_free(&f->lat), dc_tensor_free(&f->mixed);
}

static dc_model *load(const char *path)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = test_device_name();
    dc_model *m = NULL;
    return dc_model_load(&m, path, &o) == DC_OK ? m : NULL;
}

/* 0 when the case is missing (the test is then skipped or failed by golden_case). */
static int fixture_open(fixture *f)
{
    char dir[1024], path[1200];
    memset(f, 0, sizeof *f);
    if (!golden_case("noise_combination", dir, sizeof dir))
        return 0;
    f->a = load(path_join(path, sizeof path, dir, "../ddpm_unet/model.pt"));
    f->b = load(path_join(path, sizeof path, dir, "model_b.pt"));
    if (!f->a || !f->b ||
        io_npy_read_file(path_join(path, sizeof path, dir, "lat.npy"), &f->lat) != DC_OK ||
        io_npy_read_file(path_join(path, sizeof path, dir, "mixed.npy"), &f->mixed) != DC_OK) {
        test_fail_at(__FILE__, __LINE__, "noise_combination: %s", dc_last_error());
        fixture_free(f);
        return 0;
    }
    return 1;
}

static void generation_options(dc_diffusion_options *o)
{
    dc_diffusion_options_init(o, DC_DIFFUSION_OPTIONS_VERSION);
    o->t0 = 300;
    o->steps = 4;
}

/* Row k of mixed.npy (3, 1, 3, 32, 32). */
static const float *golden_row(const fixture *f, int k)
{
    return (const float *)f->mixed.data + (size_t)k * 3 * 32 * 32;
}

static int same_bits(const dc_tensor *a, const dc_tensor *b)
{
    return dc_tensor_numel(a) == dc_tensor_numel(b) &&
           memcmp(a->data, b->data, (size_t)dc_tensor_numel(a) * sizeof(float)) == 0;
}

static const double gammas[3] = {0.0, 0.35, 1.0};

TEST(mixed_generation_matches_golden_rows)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    CHECK(f.mixed.ndim == 5 && f.mixed.shape[0] == 3);
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    CHECK(dc_sampler_count(s) == 2);
    dc_diffusion_options o;
    generation_options(&o);
    for (int k = 0; k < 3; k++) {
        double w[2] = {1 - gammas[k], gammas[k]};
        CHECK_OK(dc_sampler_set_weights(s, w));
        dc_tensor out;
        CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &out));
        size_t n = 3 * 32 * 32;
        CHECK(dc_tensor_numel(&out) == (int64_t)n);
        double err = max_abs_diff(out.data, golden_row(&f, k), n);
        double tol = golden_tolerance(golden_row(&f, k), n);
        printf("noise_combination gamma %.2f: max error %.3g (tolerance %.3g)\n", gammas[k],
               err, tol);
        dc_tensor_free(&out);
        CHECKF(err <= tol, "gamma %g: max error %.3g > %.3g", gammas[k], err, tol);
    }
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(gamma_0_and_1_equal_one_model_bit_for_bit)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    dc_diffusion_options o;
    generation_options(&o);
    dc_tensor alone_a, alone_b, mix0, mix1;
    CHECK_OK(dc_generate(f.a, &f.lat, &o, &alone_a));
    CHECK_OK(dc_generate(f.b, &f.lat, &o, &alone_b));
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){1, 0}));
    CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &mix0));
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0, 1}));
    CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &mix1));
    CHECK(same_bits(&mix0, &alone_a));
    CHECK(same_bits(&mix1, &alone_b));
    CHECK(!same_bits(&alone_a, &alone_b));
    dc_tensor_free(&alone_a), dc_tensor_free(&alone_b);
    dc_tensor_free(&mix0), dc_tensor_free(&mix1);
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(three_models_and_schedules_reproduce_the_mix)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    /* A twice: 0.4 + 0.25 of A and 0.35 of B is the golden gamma 0.35 up to rounding. */
    dc_model *models[3] = {f.a, f.b, f.a};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 3));
    dc_diffusion_options o;
    generation_options(&o);
    size_t n = 3 * 32 * 32;
    double tol = golden_tolerance(golden_row(&f, 1), n);
    dc_tensor out;
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0.4, 0.35, 0.25}));
    CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &out));
    double err = max_abs_diff(out.data, golden_row(&f, 1), n);
    dc_tensor_free(&out);
    CHECKF(err <= tol, "M = 3: max error %.3g > %.3g", err, tol);
    /* The same weights as a piecewise schedule given lowest threshold first, and as a ramp
     * between equal vectors. */
    const double rows[6] = {0.4, 0.35, 0.25, 0.4, 0.35, 0.25};
    CHECK_OK(dc_sampler_set_piecewise(s, (const int[]){0, 300}, rows, 2));
    CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &out));
    err = max_abs_diff(out.data, golden_row(&f, 1), n);
    dc_tensor_free(&out);
    CHECKF(err <= tol, "piecewise: max error %.3g > %.3g", err, tol);
    CHECK_OK(dc_sampler_set_ramp(s, 0, rows, 1000, rows + 3));
    CHECK_OK(dc_sampler_generate(s, &f.lat, &o, &out));
    err = max_abs_diff(out.data, golden_row(&f, 1), n);
    dc_tensor_free(&out);
    CHECKF(err <= tol, "ramp: max error %.3g > %.3g", err, tol);
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(weights_not_summing_to_one_are_refused_naming_t)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    double w[2];
    CHECK_OK(dc_sampler_weights_at(s, 500, w));
    CHECK(w[0] == 1 && w[1] == 0);                    /* a new sampler: model 0 alone */
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0.25, 0.75}));
    CHECK_STATUS(dc_sampler_set_weights(s, (const double[]){0.5, 0.6}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "sum to 1.1") && strstr(dc_last_error(), "every t"));
    CHECK_STATUS(dc_sampler_set_piecewise(s, (const int[]){0, 300},
                                          (const double[]){0.3, 0.7, 1, 0.5}, 2), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t >= 300") != NULL);
    CHECK_STATUS(dc_sampler_set_ramp(s, 100, (const double[]){1, 0}, 700,
                                     (const double[]){0.2, 0.7}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t = 700") != NULL);
    CHECK_STATUS(dc_sampler_set_weights(s, (const double[]){NAN, 1}), DC_EINVAL);
    CHECK_OK(dc_sampler_weights_at(s, 10, w));
    CHECK(w[0] == 0.25 && w[1] == 0.75);              /* the refused weights left no trace */
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(models_of_another_layout_are_refused)
{
    char dir[1024], path[1200];
    fixture f;
    if (!fixture_open(&f) || !golden_case("adm_unet", dir, sizeof dir))
        return;
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = test_device_name();
    o.head_channels = 16;
    dc_model *adm = NULL;
    CHECK_OK(dc_model_load(&adm, path_join(path, sizeof path, dir, "model.pt"), &o));
    dc_model *models[2] = {f.a, adm};
    dc_sampler *s = NULL;
    CHECK_STATUS(dc_sampler_new(&s, models, 2), DC_EINVAL);
    CHECK(s == NULL && strstr(dc_last_error(), "model 1") && strstr(dc_last_error(), "family"));
    dc_model_free(adm);
    fixture_free(&f);
}

/* x0: the golden generation of model A, an image in [-1, 1] of the models' size. */
static int make_image(const fixture *f, dc_tensor *x0)
{
    dc_diffusion_options o;
    generation_options(&o);
    return dc_generate(f->a, &f->lat, &o, x0);
}

static void edit_options(dc_edit_options *e)
{
    dc_edit_options_init(e, DC_EDIT_OPTIONS_VERSION);
    e->t0 = 300;
    e->inv_steps = 6;
    e->gen_steps = 4;
    e->repeats = 2;
}

TEST(transition_ends_are_reconstruction_and_edit)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0, 1}));
    dc_tensor x0, lat, rec, edit, strip;
    CHECK_OK(make_image(&f, &x0));
    dc_edit_options e;
    edit_options(&e);
    dc_diffusion_options o;
    generation_options(&o);
    o.steps = 6;
    CHECK_OK(dc_invert(f.a, &x0, &o, &lat));
    o.steps = 4;
    CHECK_OK(dc_generate(f.a, &lat, &o, &rec));
    CHECK_OK(dc_sampler_edit(s, &x0, &e, &edit));
    CHECK_OK(dc_sampler_transition(s, &x0, 3, &e, &strip));
    CHECK(strip.ndim == 4 && strip.shape[0] == 3 && strip.shape[2] == 32);
    size_t n = 3 * 32 * 32;
    CHECK(memcmp(strip.data, rec.data, n * sizeof(float)) == 0);
    CHECK(memcmp((float *)strip.data + 2 * n, edit.data, n * sizeof(float)) == 0);
    CHECK(max_abs_diff((float *)strip.data + n, edit.data, n) > 1e-3);
    CHECK_STATUS(dc_sampler_transition(s, &x0, 1, &e, &strip), DC_EINVAL);
    dc_tensor_free(&x0), dc_tensor_free(&lat), dc_tensor_free(&rec);
    dc_tensor_free(&edit), dc_tensor_free(&strip);
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(edit_through_a_latent_cache_equals_edit_without)
{
    char path[1200];
    fixture f;
    if (!fixture_open(&f))
        return;
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0.5, 0.5}));
    dc_tensor x0, direct, cached;
    CHECK_OK(make_image(&f, &x0));
    dc_edit_options e;
    edit_options(&e);
    CHECK_OK(dc_sampler_edit(s, &x0, &e, &direct));
    dc_diffusion_options inv;
    generation_options(&inv);
    inv.steps = 6;
    dc_latent_cache *cache;
    CHECK_OK(dc_latent_cache_open(&cache, path_join(path, sizeof path, test_tmpdir(),
                                                    "edit.dclat"), f.a, &inv, 4));
    e.cache = cache;
    CHECK_OK(dc_sampler_edit(s, &x0, &e, &cached));
    CHECK(dc_latent_cache_count(cache) == 1);
    CHECK(same_bits(&direct, &cached));
    dc_tensor_free(&cached);
    e.inv_steps = 8;                                  /* not what the cache holds */
    CHECK_STATUS(dc_sampler_edit(s, &x0, &e, &cached), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "cache") != NULL);
    dc_latent_cache_free(cache);
    dc_tensor_free(&x0), dc_tensor_free(&direct);
    dc_sampler_free(s);
    fixture_free(&f);
}

TEST(translate_projects_then_edits)
{
    fixture f;
    if (!fixture_open(&f))
        return;
    dc_model *models[2] = {f.a, f.b};
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    CHECK_OK(dc_sampler_set_weights(s, (const double[]){0.3, 0.7}));
    dc_tensor x0, out, projected, again, edit;
    CHECK_OK(make_image(&f, &x0));
    dc_edit_options e;
    edit_options(&e);
    CHECK_OK(dc_sampler_translate(s, &x0, &e, &out, &projected));
    CHECK(out.ndim == 4 && out.shape[0] == 1 && out.shape[3] == 32);
    CHECK(projected.ndim == 4 && projected.shape[2] == 32);
    /* Seeded: the same run gives the same bits; the edit of the projection is the output. */
    CHECK_OK(dc_sampler_translate(s, &x0, &e, &again, NULL));
    CHECK(same_bits(&out, &again));
    CHECK_OK(dc_sampler_edit(s, &projected, &e, &edit));
    CHECK(same_bits(&out, &edit));
    CHECK(max_abs_diff(projected.data, x0.data, 3 * 32 * 32) > 1e-3);
    e.repeats = 0;
    CHECK_STATUS(dc_sampler_translate(s, &x0, &e, &again, NULL), DC_EINVAL);
    dc_tensor_free(&x0), dc_tensor_free(&out), dc_tensor_free(&projected);
    dc_tensor_free(&again), dc_tensor_free(&edit);
    dc_sampler_free(s);
    fixture_free(&f);
}
