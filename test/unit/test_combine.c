/* Noise combination with analytic predictors eps_i(x, t) = k_i x that count their calls and
 * record their timesteps: weight schedules (constant, piecewise in any order, switching at
 * t >= threshold, ramps), the sum-to-1 check naming t, predictors of weight 0 not evaluated,
 * M = 3, learned-variance channels mixed with the same weights, no leaked handles. */
#include <math.h>
#include <string.h>

#include "ctorch/ctorch.h"
#include "diffusion/combine.h"
#include "diffusion/generator.h"
#include "harness.h"

typedef struct counting_eps {
    double k;
    double logvar;                   /* with `sigma`: a constant second half */
    int sigma;
    int calls;
    int t[64];
} counting_eps;

static int counting_fn(void *ctx, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    counting_eps *e = ctx;
    ct_tensor *first;
    double tv;
    int status = ct_narrow(&first, t, 0, 0, 1);
    if (status == DC_OK)
        status = ct_item(first, &tv);
    ct_free(first);
    if (status != DC_OK)
        return status;
    if (e->calls < 64)
        e->t[e->calls] = (int)tv;
    e->calls++;
    if (!e->sigma)
        return ct_mul_scalar(out, x, e->k);
    int64_t shape[4] = {ct_size(x, 0), ct_size(x, 1), ct_size(x, 2), ct_size(x, 3)};
    ct_tensor *parts[2] = {NULL, NULL};
    status = ct_mul_scalar(&parts[0], x, e->k);
    if (status == DC_OK)
        status = ct_full(&parts[1], e->logvar, DC_FLOAT32, 4, shape, ct_device(x));
    if (status == DC_OK)
        status = ct_cat(out, parts, 2, 1);
    ct_free(parts[0]);
    ct_free(parts[1]);
    return status;
}

static ct_tensor *make_x(void)
{
    int64_t shape[4] = {2, 3, 4, 4};
    float v[96];
    for (int i = 0; i < 96; i++)
        v[i] = (float)((i % 13) - 6) / 6.0f;
    ct_tensor *x = NULL;
    ct_from_host(&x, v, DC_FLOAT32, 4, shape, CT_CPU);
    return x;
}

static ct_tensor *make_t(int t)
{
    int64_t n = 2;
    ct_tensor *tt = NULL;
    ct_full(&tt, t, DC_FLOAT32, 1, &n, CT_CPU);
    return tt;
}

/* The factor of one DDIM step (eta 0) with eps = k x. */
static double ddim_factor(const df_schedule *s, int t, int t_next, double k)
{
    double at = df_alpha_bar(s, t), an = df_alpha_bar(s, t_next);
    return sqrt(an) * (1 - k * sqrt(1 - at)) / sqrt(at) + sqrt(1 - an) * k;
}

/* max |out - factor x| / max |factor x| */
static double relative_error(const ct_tensor *out, const ct_tensor *x, double factor)
{
    float a[96], b[96];
    if (ct_numel(out) != 96 || ct_to_host(out, a, sizeof a) || ct_to_host(x, b, sizeof b))
        return INFINITY;
    double worst = 0, scale = 0;
    for (int i = 0; i < 96; i++) {
        worst = fmax(worst, fabs(a[i] - factor * b[i]));
        scale = fmax(scale, fabs(factor * b[i]));
    }
    return worst / scale;
}

TEST(piecewise_weights_apply_the_highest_threshold_reached)
{
    df_weights ordered = {0}, shuffled = {0};
    const double rows[6] = {1, 0, 0.5, 0.5, 0.3, 0.7};
    CHECK_OK(df_weights_piecewise(&ordered, 2, 3, (const int[]){600, 300, 0}, rows));
    const double shuffled_rows[6] = {0.3, 0.7, 1, 0, 0.5, 0.5};
    CHECK_OK(df_weights_piecewise(&shuffled, 2, 3, (const int[]){0, 600, 300}, shuffled_rows));
    static const int ts[] = {999, 600, 599, 301, 300, 299, 1, 0};
    static const double expect_first[] = {1, 1, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double a[2], b[2];
        CHECK_OK(df_weights_at(&ordered, ts[i], a));
        CHECK_OK(df_weights_at(&shuffled, ts[i], b));
        CHECKF(a[0] == expect_first[i] && a[0] + a[1] == 1, "t %d: %g", ts[i], a[0]);
        CHECK(a[0] == b[0] && a[1] == b[1]);
    }
    df_weights_free(&ordered);
    df_weights_free(&shuffled);
}

TEST(piecewise_schedules_are_checked)
{
    df_weights w = {0};
    CHECK_STATUS(df_weights_piecewise(&w, 2, 2, (const int[]){300, 300},
                                      (const double[]){1, 0, 0, 1}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "300 is given twice") != NULL);
    CHECK_STATUS(df_weights_piecewise(&w, 2, 2, (const int[]){300, 100},
                                      (const double[]){1, 0, 0, 1}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t < 100") != NULL);
    CHECK_STATUS(df_weights_piecewise(&w, 2, 2, (const int[]){300, 0},
                                      (const double[]){1, 0, 0.3, 0.6}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t >= 0 sum to 0.9") != NULL);
    CHECK(w.values == NULL);
    CHECK_STATUS(df_weights_constant(&w, 0, (const double[]){1}), DC_EINVAL);
    CHECK_STATUS(df_weights_constant(&w, 2, (const double[]){INFINITY, 0}), DC_EINVAL);
}

TEST(ramp_is_linear_between_its_ends_and_constant_outside)
{
    df_weights w = {0};
    CHECK_OK(df_weights_ramp(&w, 2, 100, (const double[]){1, 0}, 500,
                             (const double[]){0.2, 0.8}));
    double v[2];
    CHECK_OK(df_weights_at(&w, 0, v));
    CHECK(v[0] == 1 && v[1] == 0);
    CHECK_OK(df_weights_at(&w, 100, v));
    CHECK(v[0] == 1 && v[1] == 0);
    CHECK_OK(df_weights_at(&w, 300, v));
    CHECK_NEAR(v[0], 0.6, 1e-15);
    CHECK_NEAR(v[1], 0.4, 1e-15);
    CHECK_OK(df_weights_at(&w, 500, v));
    CHECK(v[0] == 0.2 && v[1] == 0.8);
    CHECK_OK(df_weights_at(&w, 900, v));
    CHECK(v[0] == 0.2 && v[1] == 0.8);
    /* Given the other way round: the same ramp. */
    df_weights back = {0};
    CHECK_OK(df_weights_ramp(&back, 2, 500, (const double[]){0.2, 0.8}, 100,
                             (const double[]){1, 0}));
    CHECK_OK(df_weights_at(&back, 200, v));
    CHECK_NEAR(v[0], 0.8, 1e-15);
    CHECK_STATUS(df_weights_ramp(&back, 2, 100, (const double[]){1, 0}, 100,
                                 (const double[]){0, 1}), DC_EINVAL);
    df_weights_free(&w);
    df_weights_free(&back);
}

TEST(weights_that_do_not_sum_to_one_at_t_are_refused_naming_t)
{
    /* Built by hand past the constructors' checks: df_weights_at checks every t itself. */
    double values[2] = {0.5, 0.5 + 1e-5};
    int thresholds[1] = {0};
    df_weights w = {.kind = DF_WEIGHTS_PIECEWISE, .count = 2, .vectors = 1,
                    .thresholds = thresholds, .values = values};
    double v[2];
    CHECK_STATUS(df_weights_at(&w, 137, v), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t 137") && strstr(dc_last_error(), "not 1"));
    values[1] = 0.5 + 5e-7;                           /* within the tolerance */
    CHECK_OK(df_weights_at(&w, 137, v));
    df_weights c = {0};
    CHECK_STATUS(df_weights_ramp(&c, 2, 0, (const double[]){1, 0}, 800,
                                 (const double[]){0.5, 0.4}), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t = 800") != NULL);
}

TEST(blend_goes_from_model_0_alone_to_the_weights)
{
    df_weights w = {0}, b = {0};
    CHECK_OK(df_weights_piecewise(&w, 3, 2, (const int[]){300, 0},
                                  (const double[]){0, 1, 0, 0, 0.3, 0.7}));
    double v[3];
    CHECK_OK(df_weights_blend(&b, &w, 0));
    CHECK_OK(df_weights_at(&b, 400, v));
    CHECK(v[0] == 1 && v[1] == 0 && v[2] == 0);
    CHECK_OK(df_weights_blend(&b, &w, 1));
    CHECK_OK(df_weights_at(&b, 100, v));
    CHECK(v[0] == 0 && v[1] == 0.3 && v[2] == 0.7);
    CHECK_OK(df_weights_blend(&b, &w, 0.25));
    CHECK_OK(df_weights_at(&b, 400, v));
    CHECK(v[0] == 0.75 && v[1] == 0.25 && v[2] == 0);
    CHECK_STATUS(df_weights_blend(&b, &w, 1.5), DC_EINVAL);
    df_weights_free(&w);
    df_weights_free(&b);
}

TEST(a_predictor_of_weight_0_is_not_evaluated)
{
    counting_eps e[2] = {{.k = 0.2}, {.k = -0.4}};
    df_predictor p[2] = {{counting_fn, &e[0]}, {counting_fn, &e[1]}};
    df_weights w = {0};
    CHECK_OK(df_weights_constant(&w, 2, (const double[]){1, 0}));
    df_combine c = {p, 2, &w};
    ct_tensor *x = make_x(), *t = make_t(250), *eps = NULL;
    size_t live = ct_live_handles();
    CHECK_OK(df_combine_eps(&c, x, t, &eps));
    CHECK(ct_live_handles() == live + 1);              /* only the result */
    CHECK(e[0].calls == 1 && e[1].calls == 0);
    /* Weight 1 alone is the predictor's output, bit for bit. */
    ct_tensor *alone = NULL;
    float a[96], b[96];
    CHECK_OK(ct_mul_scalar(&alone, x, 0.2));
    CHECK_OK(ct_to_host(eps, a, sizeof a));
    CHECK_OK(ct_to_host(alone, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    ct_free(alone);
    ct_free(eps);
    CHECK_OK(df_weights_constant(&w, 2, (const double[]){0, 1}));
    CHECK_OK(df_combine_eps(&c, x, t, &eps));
    CHECK(e[0].calls == 1 && e[1].calls == 1);
    ct_free(eps);
    ct_free(x);
    ct_free(t);
    df_weights_free(&w);
}

TEST(generation_switches_models_at_the_threshold)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    counting_eps e[2] = {{.k = 0.3}, {.k = -0.2}};
    df_predictor p[2] = {{counting_fn, &e[0]}, {counting_fn, &e[1]}};
    df_weights w = {0};
    /* {200: [0, 1], 0: [1, 0]}: model 1 at t >= 200, model 0 below. */
    CHECK_OK(df_weights_piecewise(&w, 2, 2, (const int[]){0, 200},
                                  (const double[]){1, 0, 0, 1}));
    df_combine c = {p, 2, &w};
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 300;
    o.n_steps = 4;                                    /* 300 -> 200 -> 100 -> 0 -> -1 */
    ct_tensor *x = make_x(), *out = NULL;
    CHECK_OK(df_generate(&s, df_combine_eps, &c, x, &o, &out));
    CHECK(e[1].calls == 2 && e[1].t[0] == 300 && e[1].t[1] == 200);
    CHECK(e[0].calls == 2 && e[0].t[0] == 100 && e[0].t[1] == 0);
    double factor = ddim_factor(&s, 300, 200, -0.2) * ddim_factor(&s, 200, 100, -0.2) *
                    ddim_factor(&s, 100, 0, 0.3) * ddim_factor(&s, 0, -1, 0.3);
    double err = relative_error(out, x, factor);
    CHECKF(err < 1e-5, "relative error %g", err);
    ct_free(out);
    ct_free(x);
    df_weights_free(&w);
    df_schedule_free(&s);
}

TEST(three_predictors_mix_linearly)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    counting_eps e[3] = {{.k = 0.3}, {.k = -0.2}, {.k = 0.5}};
    df_predictor p[3] = {{counting_fn, &e[0]}, {counting_fn, &e[1]}, {counting_fn, &e[2]}};
    df_weights w = {0};
    const double g[3] = {0.2, 0.5, 0.3};
    CHECK_OK(df_weights_constant(&w, 3, g));
    df_combine c = {p, 3, &w};
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 500;
    o.n_steps = 6;
    ct_tensor *x = make_x(), *out = NULL;
    CHECK_OK(df_generate(&s, df_combine_eps, &c, x, &o, &out));
    CHECK(e[0].calls == 6 && e[1].calls == 6 && e[2].calls == 6);
    double k = g[0] * 0.3 + g[1] * -0.2 + g[2] * 0.5, factor = 1;
    static const int seq[6] = {0, 100, 200, 300, 400, 500};
    for (int i = 5; i >= 0; i--)
        factor *= ddim_factor(&s, seq[i], i ? seq[i - 1] : -1, k);
    double err = relative_error(out, x, factor);
    CHECKF(err < 1e-5, "relative error %g", err);
    ct_free(out);
    ct_free(x);
    df_weights_free(&w);
    df_schedule_free(&s);
}

TEST(learned_variance_is_mixed_with_the_same_weights)
{
    counting_eps e[2] = {{.k = 0.5, .sigma = 1, .logvar = -2}, {.k = 1, .sigma = 1, .logvar = 4}};
    df_predictor p[2] = {{counting_fn, &e[0]}, {counting_fn, &e[1]}};
    df_weights w = {0};
    CHECK_OK(df_weights_constant(&w, 2, (const double[]){0.75, 0.25}));
    df_combine c = {p, 2, &w};
    ct_tensor *x = make_x(), *t = make_t(40), *eps = NULL, *half = NULL;
    CHECK_OK(df_combine_eps(&c, x, t, &eps));
    CHECK(ct_size(eps, 1) == 6);
    CHECK_OK(ct_narrow(&half, eps, 1, 3, 3));
    float v[96];
    CHECK_OK(ct_to_host(half, v, sizeof v));
    CHECK(v[0] == 0.75f * -2 + 0.25f * 4 && v[95] == v[0]);
    ct_free(half);
    CHECK_OK(ct_narrow(&half, eps, 1, 0, 3));
    CHECK(relative_error(half, x, 0.75 * 0.5 + 0.25) < 1e-6);
    ct_free(half);
    ct_free(eps);
    /* A predictor with another layout cannot join the mix. */
    e[1].sigma = 0;
    CHECK_STATUS(df_combine_eps(&c, x, t, &eps), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "channels") != NULL);
    ct_free(x);
    ct_free(t);
    df_weights_free(&w);
}
