/* The UNets on synthetic state dicts built here the way the Python constructors name and
 * shape their parameters (models/ddpm/diffusion.py Model, guided-diffusion UNetModel):
 * architecture inference, refusals that name the key, shapes, batch independence, autograd
 * and pools. Numerical agreement with the references is the golden tests' job. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctorch/ctorch.h"
#include "harness.h"
#include "nn/unet.h"
#include "unet_fixtures.h"

static const ddpm_config small_ddpm = {.ch = 32, .out_ch = 3, .levels = 2, .nrb = 1,
                                       .mult = {1, 2}, .attn = {0, 1}};
static const adm_config small_adm = {.mc = 32, .out_ch = 6, .levels = 2, .nrb = 1,
                                     .scale_shift = 1, .updown = 1, .mult = {1, 2},
                                     .attn = {0, 1}};

/* ---- helpers ---- */

static int64_t sd_params(const io_state_dict *sd)
{
    int64_t total = 0;
    for (size_t i = 0; i < sd->count; i++)
        total += dc_tensor_numel(&sd->tensors[i].value);
    return total;
}

static ct_tensor *input(int64_t n, int64_t h, int64_t w, uint64_t seed)
{
    sd_builder rng = {.rng = seed};
    int64_t shape[4] = {n, 3, h, w};
    float *v = malloc((size_t)(n * 3 * h * w) * sizeof *v);
    for (int64_t i = 0; i < n * 3 * h * w; i++)
        v[i] = (float)sd_uniform(&rng);
    ct_tensor *t = NULL;
    ct_from_host(&t, v, DC_FLOAT32, 4, shape, CT_CPU);
    free(v);
    return t;
}

static ct_tensor *timesteps(int64_t n, const float *values)
{
    ct_tensor *t = NULL;
    ct_from_host(&t, values, DC_FLOAT32, 1, &n, CT_CPU);
    return t;
}

static float *host(const ct_tensor *t)
{
    size_t n = (size_t)ct_numel(t);
    float *v = malloc(n * sizeof *v);
    if (ct_to_host(t, v, n * sizeof *v) != DC_OK) {
        free(v);
        return NULL;
    }
    return v;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Runs sample `index` of x alone and checks it equals that row of the batch output. */
static double single_vs_batch(nn_unet *m, ct_tensor *x, const float *tvals, int64_t index,
                              const float *batch_out)
{
    ct_tensor *xi = NULL, *ti = NULL, *yi = NULL;
    double worst = INFINITY;
    if (ct_narrow(&xi, x, 0, index, 1) == DC_OK && (ti = timesteps(1, &tvals[index])) &&
        nn_unet_forward(m, xi, ti, &yi) == DC_OK) {
        float *v = host(yi);
        size_t row = (size_t)ct_numel(yi);
        worst = max_abs_diff(v, batch_out + row * (size_t)index, row);
        free(v);
    }
    ct_free(xi);
    ct_free(ti);
    ct_free(yi);
    return worst;
}

/* ---- tests ---- */

TEST(ddpm_architecture_is_inferred)
{
    ddpm_config c = {.ch = 32, .out_ch = 3, .levels = 4, .nrb = 2, .mult = {1, 1, 2, 2},
                     .attn = {0, 0, 1, 0}};
    sd_builder b = {.rng = 1};
    build_ddpm(&b, &c);
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    const nn_unet_info *info = nn_unet_get_info(m);
    CHECK(info->kind == NN_UNET_DDPM);
    CHECK(info->in_channels == 3 && info->out_channels == 3 && !info->learn_sigma);
    CHECK(info->base_channels == 32 && info->time_embed_channels == 128);
    CHECK(info->levels == 4 && info->num_res_blocks == 2);
    CHECK(info->level_channels[0] == 32 && info->level_channels[3] == 64);
    CHECK(info->channel_mult[1] == 1.0 && info->channel_mult[2] == 2.0);
    CHECK(!info->attention[0] && !info->attention[1] && info->attention[2] && !info->attention[3]);
    CHECK(info->image_size == 64);
    CHECK(info->attention_count == 1 && info->attention_resolutions[0] == 16);
    CHECK(info->num_heads == 1);
    CHECK(info->param_count == sd_params(&b.sd));
    CHECK(info->tensor_count == b.sd.count && nn_unet_tensor_count(m) == b.sd.count);
    for (size_t i = 0; i < b.sd.count; i++)
        CHECK(strcmp(nn_unet_tensor_name(m, i), b.sd.tensors[i].name) == 0);
    CHECK(nn_unet_tensor_name(m, b.sd.count) == NULL && nn_unet_tensor(m, b.sd.count) == NULL);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(ddpm_forward_shapes_timesteps_and_batch_independence)
{
    sd_builder b = {.rng = 2};
    build_ddpm(&b, &small_ddpm);
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    const float tv[3] = {0.0f, 999.0f, 500.0f};
    ct_tensor *x = input(3, 16, 24, 7), *t = timesteps(3, tv), *y = NULL;
    size_t live = ct_live_handles();
    CHECK_OK(nn_unet_forward(m, x, t, &y));
    CHECK(ct_live_handles() == live + 1);         /* the block pools freed the rest */
    CHECK(ct_ndim(y) == 4 && ct_size(y, 0) == 3 && ct_size(y, 1) == 3 && ct_size(y, 2) == 16 &&
          ct_size(y, 3) == 24);
    float *v = host(y);
    CHECK(v && all_finite(v, (size_t)ct_numel(y)));
    /* Each sample depends on its own x and t only. */
    for (int64_t i = 0; i < 3; i++) {
        double err = single_vs_batch(m, x, tv, i, v);
        CHECKF(err <= 1e-5, "sample %lld differs alone by %g", (long long)i, err);
    }
    /* Different timesteps give different outputs. */
    CHECK(max_abs_diff(v, v + (size_t)ct_numel(y) / 3, (size_t)ct_numel(y) / 3) > 1e-3);
    free(v);
    ct_free(x);
    ct_free(t);
    ct_free(y);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(ddpm_learned_sigma_gives_six_channels)
{
    ddpm_config c = small_ddpm;
    c.out_ch = 6;
    sd_builder b = {.rng = 3};
    build_ddpm(&b, &c);
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    CHECK(nn_unet_get_info(m)->learn_sigma && nn_unet_get_info(m)->out_channels == 6);
    const float tv[1] = {10.0f};
    ct_tensor *x = input(1, 8, 8, 1), *t = timesteps(1, tv), *y = NULL;
    CHECK_OK(nn_unet_forward(m, x, t, &y));
    CHECK(ct_size(y, 1) == 6);
    ct_free(x);
    ct_free(t);
    ct_free(y);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(adm_architecture_is_inferred)
{
    adm_config c = {.mc = 64, .out_ch = 6, .levels = 3, .nrb = 2, .scale_shift = 1,
                    .updown = 1, .classes = 10, .mult = {1, 1, 2}, .attn = {1, 0, 1}};
    sd_builder b = {.rng = 4};
    build_adm(&b, &c);
    nn_unet_options o = {.head_channels = 32};
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, &o));
    const nn_unet_info *info = nn_unet_get_info(m);
    CHECK(info->kind == NN_UNET_ADM);
    CHECK(info->out_channels == 6 && info->learn_sigma);
    CHECK(info->base_channels == 64 && info->time_embed_channels == 256);
    CHECK(info->levels == 3 && info->num_res_blocks == 2);
    CHECK(info->level_channels[2] == 128 && info->channel_mult[2] == 2.0);
    CHECK(info->attention[0] && !info->attention[1] && info->attention[2]);
    CHECK(info->scale_shift && info->resblock_updown && info->has_label_emb);
    CHECK(info->head_channels == 32);
    /* channel_mult 1,1,2 is none of guided-diffusion's defaults: the size is not known */
    CHECK(info->image_size == 0 && info->attention_count == 0);
    CHECK(info->param_count == sd_params(&b.sd));
    /* label_emb is kept, under its name, for a state dict that round-trips. */
    int found = 0;
    for (size_t i = 0; i < nn_unet_tensor_count(m); i++)
        found += strcmp(nn_unet_tensor_name(m, i), "label_emb.weight") == 0;
    CHECK(found == 1);
    const float tv[2] = {0.0f, 999.0f};
    ct_tensor *x = input(2, 16, 16, 5), *t = timesteps(2, tv), *y = NULL;
    CHECK_OK(nn_unet_forward(m, x, t, &y));
    CHECK(ct_size(y, 0) == 2 && ct_size(y, 1) == 6 && ct_size(y, 2) == 16);
    float *v = host(y);
    CHECK(v && all_finite(v, (size_t)ct_numel(y)));
    double err = single_vs_batch(m, x, tv, 1, v);
    free(v);
    CHECKF(err <= 1e-5, "sample 1 differs alone by %g", err);
    ct_free(x);
    ct_free(t);
    ct_free(y);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(adm_without_scale_shift_or_resblock_resampling)
{
    adm_config c = {.mc = 32, .out_ch = 3, .levels = 3, .nrb = 1, .mult = {1, 2, 2},
                    .attn = {0, 1, 0}};
    sd_builder b = {.rng = 5};
    build_adm(&b, &c);
    nn_unet_options o = {.head_channels = -1, .num_heads = 2};
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, &o));
    const nn_unet_info *info = nn_unet_get_info(m);
    CHECK(!info->scale_shift && !info->resblock_updown && !info->has_label_emb);
    CHECK(!info->learn_sigma && info->num_heads == 2 && info->head_channels == 0);
    const float tv[1] = {250.0f};
    ct_tensor *x = input(1, 32, 32, 6), *t = timesteps(1, tv), *y = NULL;
    CHECK_OK(nn_unet_forward(m, x, t, &y));
    CHECK(ct_size(y, 1) == 3 && ct_size(y, 3) == 32);
    ct_free(x);
    ct_free(t);
    ct_free(y);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(head_count_must_divide_the_channels)
{
    sd_builder b = {.rng = 6};
    build_adm(&b, &small_adm);
    nn_unet_options o = {.head_channels = 48};
    nn_unet *m = NULL;
    CHECK_STATUS(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, &o), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "heads") != NULL && m == NULL);
    free_builder(&b);
}

TEST(input_sizes_and_timesteps_are_checked)
{
    sd_builder b = {.rng = 7};
    build_ddpm(&b, &small_ddpm);
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    const float tv[2] = {1.0f, 2.0f};
    ct_tensor *odd = input(1, 9, 8, 1), *x = input(2, 8, 8, 1), *t1 = timesteps(1, tv),
              *t2 = timesteps(2, tv), *y = NULL;
    CHECK_STATUS(nn_unet_forward(m, odd, t1, &y), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "multiples of 2") != NULL);
    CHECK_STATUS(nn_unet_forward(m, x, t1, &y), DC_EINVAL);     /* one t for two samples */
    CHECK_OK(nn_unet_forward(m, x, t2, &y));
    ct_free(odd);
    ct_free(x);
    ct_free(t1);
    ct_free(t2);
    ct_free(y);
    nn_unet_free(m);
    free_builder(&b);
}

/* Loads a modified DDPM state dict and expects DC_EFORMAT with `needle` in the message. */
static int refused_with(sd_builder *b, const char *needle)
{
    nn_unet *m = NULL;
    int status = nn_unet_load(&m, &b->sd, "bad.pt", CT_CPU, DC_FLOAT32, NULL);
    if (status != DC_EFORMAT || m != NULL) {
        nn_unet_free(m);
        return 0;
    }
    return strstr(dc_last_error(), needle) != NULL && strstr(dc_last_error(), "bad.pt") != NULL;
}

TEST(missing_unexpected_and_misshapen_keys_are_named)
{
    size_t live = ct_live_handles();
    sd_builder b = {.rng = 8};
    build_ddpm(&b, &small_ddpm);
    /* missing: drop the second-to-last tensor (conv_out.weight stays, norm_out.bias goes) */
    io_tensor saved = b.sd.tensors[b.sd.count - 3];
    CHECK(strcmp(saved.name, "norm_out.bias") == 0);
    b.sd.tensors[b.sd.count - 3] = b.sd.tensors[b.sd.count - 1];
    b.sd.count--;
    CHECK(refused_with(&b, "missing key 'norm_out.bias'"));
    b.sd.count++;
    b.sd.tensors[b.sd.count - 1] = b.sd.tensors[b.sd.count - 3];
    b.sd.tensors[b.sd.count - 3] = saved;
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "ok.pt", CT_CPU, DC_FLOAT32, NULL));
    nn_unet_free(m);

    /* unexpected */
    int64_t four = 4;
    add_tensor(&b, 0, 0.1, 1, &four, "down.0.extra.weight");
    CHECK(refused_with(&b, "unexpected key 'down.0.extra.weight'"));
    b.sd.count--;
    free(b.sd.tensors[b.sd.count].name);
    free(b.sd.tensors[b.sd.count].value.data);

    /* misshapen */
    for (size_t i = 0; i < b.sd.count; i++)
        if (strcmp(b.sd.tensors[i].name, "mid.attn_1.q.weight") == 0)
            b.sd.tensors[i].value.shape[3] = 3, b.sd.tensors[i].value.ndim = 4;
    CHECK(refused_with(&b, "'mid.attn_1.q.weight' has shape [64, 64, 1, 3]"));
    free_builder(&b);

    /* neither architecture */
    int64_t two = 2;
    add_tensor(&b, 0, 0.1, 1, &two, "encoder.weight");
    CHECK(refused_with(&b, "'encoder.weight'"));
    free_builder(&b);
    CHECK(ct_live_handles() == live);             /* refused loads free what they uploaded */
}

TEST(adm_missing_block_is_named)
{
    sd_builder b = {.rng = 9};
    build_adm(&b, &small_adm);
    /* Renaming the middle attention's qkv leaves one key missing and one unexpected. */
    for (size_t i = 0; i < b.sd.count; i++)
        if (strcmp(b.sd.tensors[i].name, "middle_block.1.qkv.bias") == 0)
            b.sd.tensors[i].name[13] = '7';
    nn_unet *m = NULL;
    nn_unet_options o = {.head_channels = 16};
    CHECK_STATUS(nn_unet_load(&m, &b.sd, "adm.pt", CT_CPU, DC_FLOAT32, &o), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "missing key 'middle_block.1.qkv.bias'") != NULL);
    free_builder(&b);
}

TEST(module_prefix_is_stripped)
{
    sd_builder b = {.rng = 10};
    build_ddpm(&b, &small_ddpm);
    for (size_t i = 0; i < b.sd.count; i++) {
        char *prefixed = malloc(strlen(b.sd.tensors[i].name) + 8);
        sprintf(prefixed, "module.%s", b.sd.tensors[i].name);
        free(b.sd.tensors[i].name);
        b.sd.tensors[i].name = prefixed;
    }
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "dp.pt", CT_CPU, DC_FLOAT32, NULL));
    CHECK(strcmp(nn_unet_tensor_name(m, 0), "temb.dense.0.weight") == 0);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(gradients_reach_the_weights)
{
    sd_builder b = {.rng = 11};
    build_adm(&b, &small_adm);
    nn_unet_options o = {.head_channels = 16};
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, &o));
    ct_tensor *bias = NULL, *first = nn_unet_tensor(m, 0);
    for (size_t i = 0; i < nn_unet_tensor_count(m); i++)
        if (strcmp(nn_unet_tensor_name(m, i), "out.2.bias") == 0)
            bias = nn_unet_tensor(m, i);
    CHECK(bias != NULL);
    CHECK_OK(ct_set_requires_grad(bias, 1));
    CHECK_OK(ct_set_requires_grad(first, 1));
    const float tv[2] = {3.0f, 871.0f};
    ct_tensor *x = input(2, 8, 8, 3), *t = timesteps(2, tv), *y = NULL, *loss = NULL, *g = NULL;
    CHECK_OK(nn_unet_forward(m, x, t, &y));
    CHECK_OK(ct_sum(&loss, y));
    CHECK_OK(ct_backward(loss));
    /* d sum(out) / d bias_c = N * H * W for every output channel. */
    CHECK_OK(ct_grad(&g, bias));
    CHECK(g != NULL && ct_numel(g) == 6);
    float gv[6];
    CHECK_OK(ct_to_host(g, gv, sizeof gv));
    for (int c = 0; c < 6; c++)
        CHECK_NEAR(gv[c], 128.0, 1e-3);
    ct_free(g);
    CHECK_OK(ct_grad(&g, first));                 /* through the time embedding */
    CHECK(g != NULL);
    double gmax;
    CHECK_OK(ct_max_abs(g, &gmax));
    CHECK(gmax > 0);
    ct_free(g);
    ct_free(x);
    ct_free(t);
    ct_free(y);
    ct_free(loss);
    nn_unet_free(m);
    free_builder(&b);
}

TEST(inference_mode_and_float64_agree_with_float32)
{
    sd_builder b = {.rng = 12};
    build_ddpm(&b, &small_ddpm);
    nn_unet *m32 = NULL, *m64 = NULL;
    CHECK_OK(nn_unet_load(&m32, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    CHECK_OK(nn_unet_load(&m64, &b.sd, "synthetic", CT_CPU, DC_FLOAT64, NULL));
    CHECK(nn_unet_dtype(m64) == DC_FLOAT64 && ct_dtype(nn_unet_tensor(m64, 0)) == DC_FLOAT64);
    const float tv[1] = {637.0f};
    ct_tensor *x = input(1, 8, 8, 9), *t = timesteps(1, tv), *y32 = NULL, *y64 = NULL;
    ct_scope *scope = NULL;
    CHECK_OK(ct_inference_mode_begin(&scope));
    int s1 = nn_unet_forward(m32, x, t, &y32);
    int s2 = nn_unet_forward(m64, x, t, &y64);
    ct_scope_end(scope);
    CHECK_OK(s1);
    CHECK_OK(s2);
    CHECK(ct_dtype(y64) == DC_FLOAT32);           /* returned in x's dtype */
    float *a = host(y32), *c = host(y64);
    size_t n = (size_t)ct_numel(y32);
    CHECKF(max_abs_diff(a, c, n) <= 1e-4, "float32 vs float64: %g", max_abs_diff(a, c, n));
    free(a);
    free(c);
    ct_free(x);
    ct_free(t);
    ct_free(y32);
    ct_free(y64);
    nn_unet_free(m32);
    nn_unet_free(m64);
    free_builder(&b);
}

TEST(bad_arguments_are_refused)
{
    sd_builder b = {.rng = 13};
    build_ddpm(&b, &small_ddpm);
    nn_unet *m = NULL;
    CHECK_STATUS(nn_unet_load(&m, &b.sd, "x", CT_CPU, DC_INT64, NULL), DC_EINVAL);
    CHECK_STATUS(nn_unet_load(NULL, &b.sd, "x", CT_CPU, DC_FLOAT32, NULL), DC_EINVAL);
    nn_unet_options o = {.head_channels = -1, .num_heads = 0};
    CHECK_STATUS(nn_unet_load(&m, &b.sd, "x", CT_CPU, DC_FLOAT32, &o), DC_EINVAL);
    CHECK_STATUS(nn_unet_forward(NULL, NULL, NULL, NULL), DC_EINVAL);
    size_t mark = ct_pool_begin();               /* the weights must outlive pools */
    int status = nn_unet_load(&m, &b.sd, "x", CT_CPU, DC_FLOAT32, NULL);
    ct_pool_end(mark, NULL, 0);
    CHECK_STATUS(status, DC_EINVAL);
    CHECK(strstr(dc_last_error(), "pool") != NULL);
    nn_unet_free(NULL);
    free_builder(&b);
}

/* Without a config: guided-diffusion's model_defaults channel multipliers name the image
 * size (64: 1,2,3,4); a DDPM UNet's single attention level is 16 x 16. */
TEST(image_size_from_the_weights)
{
    adm_config c = {.mc = 32, .out_ch = 6, .levels = 4, .nrb = 1, .scale_shift = 1,
                    .updown = 1, .mult = {1, 2, 3, 4}, .attn = {0, 0, 1, 0}};
    sd_builder b = {.rng = 5};
    build_adm(&b, &c);
    nn_unet_options o = {.head_channels = 32};
    nn_unet *m = NULL;
    CHECK_OK(nn_unet_load(&m, &b.sd, "synthetic", CT_CPU, DC_FLOAT32, &o));
    const nn_unet_info *info = nn_unet_get_info(m);
    int size = info->image_size, attn = info->attention_resolutions[0];
    nn_unet_free(m);
    free_builder(&b);
    CHECK(size == 64 && attn == 16);
    ddpm_config d = {.ch = 32, .out_ch = 3, .levels = 3, .nrb = 1, .mult = {1, 2, 2},
                     .attn = {0, 0, 1}};
    sd_builder db = {.rng = 6};
    build_ddpm(&db, &d);
    CHECK_OK(nn_unet_load(&m, &db.sd, "synthetic", CT_CPU, DC_FLOAT32, NULL));
    size = nn_unet_get_info(m)->image_size;
    nn_unet_free(m);
    /* an explicit size must suit the levels */
    nn_unet_options bad = {.image_size = 34};
    int status = nn_unet_load(&m, &db.sd, "synthetic", CT_CPU, DC_FLOAT32, &bad);
    free_builder(&db);
    CHECK(size == 64);
    CHECK(status == DC_EINVAL && strstr(dc_last_error(), "multiple of 4"));
}
