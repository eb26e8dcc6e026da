/* The encoder and generator driven by an analytic noise predictor eps(x, t) = k x, for which
 * every DDIM step multiplies x by a known factor: the step sequences, the alpha-bar indices
 * (t0 for inversion, t0 - 1 for the stochastic forward, 1 after the last step), callbacks,
 * cancellation, seeding, autograd and the argument checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctorch/ctorch.h"
#include "diffusion/encoder.h"
#include "diffusion/generator.h"
#include "harness.h"

#define K 0.3

typedef struct linear_eps {
    double k;
    int channels;                    /* 3, or 6 with a constant "log-variance" after eps */
    double logvar;
    int calls;
    int t[1024];
} linear_eps;

static int eps_fn(void *ctx, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    linear_eps *e = ctx;
    double tv;
    ct_tensor *first;
    int status = ct_narrow(&first, t, 0, 0, 1);
    if (status == DC_OK)
        status = ct_item(first, &tv);
    ct_free(first);
    if (status != DC_OK)
        return status;
    if (e->calls < 1024)
        e->t[e->calls] = (int)tv;
    e->calls++;
    if (e->channels == 3)
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

/* The factor by which one DDIM step (eta 0) with eps = k x multiplies x. */
static double ddim_factor(const df_schedule *s, int t, int t_next, double k)
{
    double at = df_alpha_bar(s, t), an = df_alpha_bar(s, t_next);
    return sqrt(an) * (1 - k * sqrt(1 - at)) / sqrt(at) + sqrt(1 - an) * k;
}

static ct_tensor *make_x(float value_scale, int64_t n)
{
    int64_t shape[4] = {n, 3, 4, 4};
    float v[2 * 3 * 4 * 4];
    for (int i = 0; i < (int)(n * 48); i++)
        v[i] = value_scale * (float)((i % 11) - 5) / 5.0f;
    ct_tensor *x = NULL;
    ct_from_host(&x, v, DC_FLOAT32, 4, shape, CT_CPU);
    return x;
}

/* max |out - factor * x| relative to max |factor * x|. */
static double scaled_error(const ct_tensor *out, const ct_tensor *x, double factor)
{
    float a[96], b[96];
    size_t n = (size_t)ct_numel(x);
    if (ct_numel(out) != ct_numel(x) || ct_to_host(out, a, n * 4) || ct_to_host(x, b, n * 4))
        return INFINITY;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(a[i] - factor * b[i]));
        scale = fmax(scale, fabs(factor * b[i]));
    }
    return worst / (scale > 0 ? scale : 1);
}

TEST(inversion_runs_n_minus_1_steps_at_the_smaller_t)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(1.0f, 2), *lat = NULL;
    size_t live = ct_live_handles();
    CHECK_OK(df_ddim_invert(&s, eps_fn, &e, x, 300, 8, NULL, NULL, &lat));
    CHECK(ct_live_handles() == live + 1);
    static const int seq[8] = {0, 42, 85, 128, 171, 214, 257, 300};
    CHECK(e.calls == 7);
    double factor = 1;
    for (int k = 1; k < 8; k++) {
        CHECK(e.t[k - 1] == seq[k - 1]);
        factor *= ddim_factor(&s, seq[k - 1], seq[k], K);
    }
    double err = scaled_error(lat, x, factor);
    CHECKF(err < 1e-5, "relative error %g", err);
    ct_free(lat);
    ct_free(x);
    df_schedule_free(&s);
}

TEST(generation_runs_n_steps_down_to_minus_one)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(2.0f, 1), *out = NULL;
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 500;
    o.n_steps = 6;
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    static const int seq[6] = {0, 100, 200, 300, 400, 500};
    CHECK(e.calls == 6);
    double factor = 1;
    for (int i = 0; i < 6; i++) {
        int k = 5 - i;
        CHECK(e.t[i] == seq[k]);
        factor *= ddim_factor(&s, seq[k], k ? seq[k - 1] : -1, K);
    }
    double err = scaled_error(out, x, factor);
    CHECKF(err < 1e-5, "relative error %g", err);
    ct_free(out);

    /* No skip: every timestep from t0 - 1. */
    e.calls = 0;
    o.t0 = 5;
    o.n_steps = 0;
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    CHECK(e.calls == 5 && e.t[0] == 4 && e.t[4] == 0);
    ct_free(out);
    ct_free(x);
    df_schedule_free(&s);
}

typedef struct recorder {
    const df_schedule *s;
    int steps_seen, stop_at, bad, x_grad, x0_grad;
} recorder;

static int record_step(void *user, const df_step_info *info)
{
    recorder *r = user;
    if (info->step != (size_t)r->steps_seen || info->steps != 4 || !info->x || !info->x0)
        r->bad = 1;
    r->x_grad += ct_requires_grad(info->x);
    r->x0_grad += ct_requires_grad(info->x0);
    r->steps_seen++;
    return r->steps_seen == r->stop_at;
}

TEST(step_callback_sees_every_step_and_can_cancel)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(1.0f, 1), *out = NULL;
    recorder r = {.s = &s};
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 300;
    o.n_steps = 4;
    o.on_step = record_step;
    o.user = &r;
    size_t live = ct_live_handles();
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    CHECK(r.steps_seen == 4 && !r.bad);
    ct_free(out);
    CHECK(ct_live_handles() == live);

    r = (recorder){.s = &s, .stop_at = 2};
    CHECK_STATUS(df_generate(&s, eps_fn, &e, x, &o, &out), DC_ECANCELLED);
    CHECK(out == NULL && r.steps_seen == 2);
    CHECK(ct_live_handles() == live);              /* nothing leaks on cancellation */

    r = (recorder){.s = &s, .stop_at = 1};
    CHECK_STATUS(df_ddim_invert(&s, eps_fn, &e, x, 300, 5, record_step, &r, &out),
                 DC_ECANCELLED);
    CHECK(ct_live_handles() == live);
    ct_free(x);
    df_schedule_free(&s);
}

TEST(gradient_flows_through_every_generation_step)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(1.0f, 1), *out = NULL, *loss = NULL, *g = NULL;
    CHECK_OK(ct_set_requires_grad(x, 1));
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 300;
    o.n_steps = 4;
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    CHECK_OK(ct_sum(&loss, out));
    CHECK_OK(ct_backward(loss));
    CHECK_OK(ct_grad(&g, x));
    CHECK(g != NULL);
    double factor = ddim_factor(&s, 300, 200, K) * ddim_factor(&s, 200, 100, K) *
                    ddim_factor(&s, 100, 0, K) * ddim_factor(&s, 0, -1, K);
    float gv[48];
    CHECK_OK(ct_to_host(g, gv, sizeof gv));
    for (int i = 0; i < 48; i++)
        CHECK_NEAR(gv[i], factor, 1e-5 * fabs(factor));
    ct_free(g);
    ct_free(loss);
    ct_free(out);

    /* Every step's x and x0 hang on x_T's graph... */
    recorder r = {.s = &s};
    o.on_step = record_step;
    o.user = &r;
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    CHECK(r.steps_seen == 4 && r.x_grad == 4 && r.x0_grad == 4);
    ct_free(out);
    /* ...unless x is detached after each step: then only the first x0 reaches x_T (this
     * predictor has no weights of its own). */
    r = (recorder){.s = &s};
    o.detach_each_step = 1;
    CHECK_OK(df_generate(&s, eps_fn, &e, x, &o, &out));
    CHECK(r.steps_seen == 4 && r.x_grad == 0 && r.x0_grad == 1);
    CHECK(!ct_requires_grad(out));
    ct_free(out);
    ct_free(x);
    df_schedule_free(&s);
}

TEST(stochastic_forward_uses_alpha_bar_at_t0_minus_1)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    ct_tensor *x = make_x(1.0f, 2), *noise = make_x(-0.5f, 2), *xt = NULL;
    CHECK_OK(df_ddpm_forward(&s, x, 300, noise, 0, 0, &xt));
    float a[96], xv[96], nv[96];
    CHECK_OK(ct_to_host(xt, a, sizeof a));
    CHECK_OK(ct_to_host(x, xv, sizeof xv));
    CHECK_OK(ct_to_host(noise, nv, sizeof nv));
    float ab = s.alphas_cumprod[299];
    for (int i = 0; i < 96; i++)
        CHECK(a[i] == xv[i] * sqrtf(ab) + nv[i] * sqrtf(1.0f - ab));
    ct_free(xt);

    /* Seeded noise is reproducible. */
    ct_tensor *r1 = NULL, *r2 = NULL, *r3 = NULL;
    CHECK_OK(df_ddpm_forward(&s, x, 1000, NULL, 1, 42, &r1));
    CHECK_OK(df_ddpm_forward(&s, x, 1000, NULL, 1, 42, &r2));
    CHECK_OK(df_ddpm_forward(&s, x, 1000, NULL, 1, 43, &r3));
    float b1[96], b2[96], b3[96];
    CHECK_OK(ct_to_host(r1, b1, sizeof b1));
    CHECK_OK(ct_to_host(r2, b2, sizeof b2));
    CHECK_OK(ct_to_host(r3, b3, sizeof b3));
    CHECK(memcmp(b1, b2, sizeof b1) == 0 && memcmp(b1, b3, sizeof b1) != 0);
    CHECK_STATUS(df_ddpm_forward(&s, x, 0, noise, 0, 0, &xt), DC_EINVAL);
    CHECK_STATUS(df_ddpm_forward(&s, x, 1001, noise, 0, 0, &xt), DC_EINVAL);
    ct_tensor *small = NULL;
    CHECK_OK(ct_narrow(&small, noise, 0, 0, 1));
    CHECK_STATUS(df_ddpm_forward(&s, x, 300, small, 0, 0, &xt), DC_EINVAL);
    ct_free(small);
    ct_free(r1);
    ct_free(r2);
    ct_free(r3);
    ct_free(x);
    ct_free(noise);
    df_schedule_free(&s);
}

static int generate_host(const df_schedule *s, linear_eps *e, const ct_tensor *x,
                         const df_generate_options *o, float *dst)
{
    ct_tensor *out = NULL;
    int status = df_generate(s, eps_fn, e, x, o, &out);
    if (status == DC_OK)
        status = ct_to_host(out, dst, (size_t)ct_numel(out) * sizeof(float));
    ct_free(out);
    return status;
}

TEST(eta_and_ddpm_sampling_are_seeded)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(1.0f, 1);
    float det[48], a[48], b[48], c[48];
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 300;
    o.n_steps = 4;
    CHECK_OK(generate_host(&s, &e, x, &o, det));
    o.eta = 0.7;
    o.seeded = 1;
    o.seed = 5;
    CHECK_OK(generate_host(&s, &e, x, &o, a));
    CHECK_OK(generate_host(&s, &e, x, &o, b));
    CHECK(memcmp(a, b, sizeof a) == 0 && max_abs_diff(a, det, 48) > 1e-3);

    df_generate_options_init(&o);
    o.t0 = 20;
    o.n_steps = 0;
    o.sampler = DF_SAMPLER_DDPM;
    o.seeded = 1;
    o.seed = 7;
    CHECK_OK(generate_host(&s, &e, x, &o, a));
    CHECK_OK(generate_host(&s, &e, x, &o, b));
    o.logvar = DF_LOGVAR_FIXEDLARGE;
    CHECK_OK(generate_host(&s, &e, x, &o, c));
    CHECK(memcmp(a, b, sizeof a) == 0 && max_abs_diff(a, c, 48) > 1e-4);
    CHECK(e.t[e.calls - 1] == 0);
    ct_free(x);
    df_schedule_free(&s);
}

TEST(ddpm_step_with_the_models_log_variance)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    /* A vanishing model variance leaves the posterior mean (x - b/sqrt(1-a) eps)/sqrt(1-b). */
    linear_eps e = {.k = K, .channels = 6, .logvar = -200.0};
    ct_tensor *x = make_x(1.0f, 1), *next = NULL;
    /* A step leaves its intermediates to the caller's pool, as the sampling loops open one. */
    size_t mark = ct_pool_begin();
    df_step_params p = {.sampler = DF_SAMPLER_DDPM, .logvar = DF_LOGVAR_MODEL};
    CHECK_OK(df_denoise_step(&s, eps_fn, &e, x, 10, 9, &p, &next, NULL));
    double b = s.betas[10], a = s.alphas_cumprod[10];
    double factor = (1 - b / sqrt(1 - a) * K) / sqrt(1 - b);
    CHECKF(scaled_error(next, x, factor) < 1e-6, "error %g", scaled_error(next, x, factor));
    ct_free(next);
    e.logvar = 0.0;                                   /* unit variance: noise is added */
    CHECK_OK(df_denoise_step(&s, eps_fn, &e, x, 10, 9, &p, &next, NULL));
    CHECK(scaled_error(next, x, factor) > 1e-2);
    ct_free(next);
    /* At t = 0 no noise is added whatever the variance. */
    CHECK_OK(df_denoise_step(&s, eps_fn, &e, x, 0, -1, &p, &next, NULL));
    b = s.betas[0], a = s.alphas_cumprod[0];
    factor = (1 - b / sqrt(1 - a) * K) / sqrt(1 - b);
    CHECK(scaled_error(next, x, factor) < 1e-6);
    ct_free(next);
    /* Only the first half of a 6-channel output is the noise. */
    df_step_params ddim = {.sampler = DF_SAMPLER_DDIM};
    CHECK_OK(df_denoise_step(&s, eps_fn, &e, x, 100, 0, &ddim, &next, NULL));
    CHECK(scaled_error(next, x, ddim_factor(&s, 100, 0, K)) < 1e-5);
    ct_pool_end(mark, NULL, 0);
    ct_free(x);
    df_schedule_free(&s);
}

TEST(bad_sampling_arguments_are_refused)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    linear_eps e = {.k = K, .channels = 3};
    ct_tensor *x = make_x(1.0f, 1), *out = NULL;
    df_step_params invert_eta = {.sampler = DF_SAMPLER_DDIM, .eta = 0.5};
    CHECK_STATUS(df_denoise_step(&s, eps_fn, &e, x, 10, 20, &invert_eta, &out, NULL), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "eta") != NULL);
    df_step_params nan_eta = {.sampler = DF_SAMPLER_DDIM, .eta = NAN};
    CHECK_STATUS(df_denoise_step(&s, eps_fn, &e, x, 20, 10, &nan_eta, &out, NULL), DC_EINVAL);
    df_step_params ddim = {.sampler = DF_SAMPLER_DDIM};
    CHECK_STATUS(df_denoise_step(&s, eps_fn, &e, x, 1000, 10, &ddim, &out, NULL), DC_EINVAL);
    CHECK_STATUS(df_denoise_step(&s, eps_fn, &e, x, 10, -2, &ddim, &out, NULL), DC_EINVAL);

    CHECK_STATUS(df_ddim_invert(&s, eps_fn, &e, x, 1000, 8, NULL, NULL, &out), DC_EINVAL);
    CHECK_STATUS(df_ddim_invert(&s, eps_fn, &e, x, 300, 1, NULL, NULL, &out), DC_EINVAL);
    CHECK_STATUS(df_ddim_invert(&s, eps_fn, &e, x, 300, 0, NULL, NULL, &out), DC_EINVAL);
    CHECK_STATUS(df_ddim_invert(&s, eps_fn, &e, x, 0, 8, NULL, NULL, &out), DC_EINVAL);

    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = 1000;
    CHECK_STATUS(df_generate(&s, eps_fn, &e, x, &o, &out), DC_EINVAL);
    o.t0 = 1001;
    o.n_steps = 0;
    CHECK_STATUS(df_generate(&s, eps_fn, &e, x, &o, &out), DC_EINVAL);
    o.t0 = 300;
    o.n_steps = 1;
    CHECK_STATUS(df_generate(&s, eps_fn, &e, x, &o, &out), DC_EINVAL);
    o.n_steps = 4;
    o.sampler = DF_SAMPLER_DDPM;
    CHECK_STATUS(df_generate(&s, eps_fn, &e, x, &o, &out), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "every step") != NULL);

    /* A predictor with too few channels. */
    linear_eps narrow = {.k = K, .channels = 3};
    df_step_params model_var = {.sampler = DF_SAMPLER_DDPM, .logvar = DF_LOGVAR_MODEL};
    size_t mark = ct_pool_begin();                    /* for the step's intermediates */
    CHECK_STATUS(df_denoise_step(&s, eps_fn, &narrow, x, 5, 4, &model_var, &out, NULL),
                 DC_EINVAL);
    ct_pool_end(mark, NULL, 0);
    CHECK(out == NULL);
    ct_free(x);
    df_schedule_free(&s);
}
