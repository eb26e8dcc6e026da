/* CLIP, the IR-SE identity network and the DiffusionCLIP losses on synthetic state dicts:
 * architecture inference, shapes, invariances that catch wrong wiring, preprocessing
 * geometry, loss forms. Numerics against PyTorch are in test/golden. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/losses.h"
#include "harness.h"
#include "nn/clip.h"
#include "nn/idnet.h"
#include "clip_fixtures.h"

/* ---- a synthetic state dict ---- */

enum { CONTEXT = 12, VOCAB = 60 };

/* The small text tower the tests use (one layer). */
static clip_text_shape small_text(int64_t width)
{
    return (clip_text_shape){.width = width, .layers = 1, .vocab = VOCAB, .context = CONTEXT};
}

static io_state_dict vit_sd(int64_t width, int layers, int64_t patch, int64_t grid,
                            int64_t text_width, int64_t embed)
{
    const clip_text_shape text = small_text(text_width);
    return clip_vit_sd(width, layers, patch, grid, &text, embed, 42);
}

static void add_bn(sd_builder *b, int64_t c, const char *fmt, ...)
{
    char prefix[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    GAIN(b, c, "%s.weight", prefix);
    BIAS(b, c, "%s.bias", prefix);
    BIAS(b, c, "%s.running_mean", prefix);
    GAIN(b, c, "%s.running_var", prefix);
    add_tensor(b, 0, 0, 0, S(0), "%s.num_batches_tracked", prefix);
}

static io_state_dict resnet_sd(int64_t width, const int *layers, int64_t grid, int64_t embed)
{
    sd_builder b = {.rng = 7};
    const int64_t stem_in[3] = {3, width / 2, width / 2};
    const int64_t stem_out[3] = {width / 2, width / 2, width};
    for (int i = 0; i < 3; i++) {
        W(&b, (stem_out[i], stem_in[i], 3, 3), "visual.conv%d.weight", i + 1);
        add_bn(&b, stem_out[i], "visual.bn%d", i + 1);
    }
    int64_t inplanes = width;
    for (int s = 0; s < 4; s++) {
        int64_t planes = width << s;
        for (int i = 0; i < layers[s]; i++) {
            W(&b, (planes, inplanes, 1, 1), "visual.layer%d.%d.conv1.weight", s + 1, i);
            add_bn(&b, planes, "visual.layer%d.%d.bn1", s + 1, i);
            W(&b, (planes, planes, 3, 3), "visual.layer%d.%d.conv2.weight", s + 1, i);
            add_bn(&b, planes, "visual.layer%d.%d.bn2", s + 1, i);
            W(&b, (4 * planes, planes, 1, 1), "visual.layer%d.%d.conv3.weight", s + 1, i);
            add_bn(&b, 4 * planes, "visual.layer%d.%d.bn3", s + 1, i);
            if (i == 0) {
                W(&b, (4 * planes, inplanes, 1, 1), "visual.layer%d.0.downsample.0.weight",
                  s + 1);
                add_bn(&b, 4 * planes, "visual.layer%d.0.downsample.1", s + 1);
            }
            inplanes = 4 * planes;
        }
    }
    int64_t e = 32 * width;
    add_tensor(&b, 0, 0.1, 2, S(grid * grid + 1, e), "visual.attnpool.positional_embedding");
    const char *proj[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        W(&b, (e, e), "visual.attnpool.%s_proj.weight", proj[i]);
        BIAS(&b, e, "visual.attnpool.%s_proj.bias", proj[i]);
    }
    W(&b, (embed, e), "visual.attnpool.c_proj.weight");
    BIAS(&b, embed, "visual.attnpool.c_proj.bias");
    const clip_text_shape text = small_text(64);
    add_text(&b, &text, embed);
    return b.sd;
}

/* ---- helpers ---- */

static ct_tensor *random_tensor(int ndim, const int64_t *shape, double scale, uint64_t seed)
{
    sd_builder rng = {.rng = seed};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(scale * sd_uniform(&rng));
    ct_tensor *t = NULL;
    ct_from_host(&t, v, DC_FLOAT32, ndim, shape, CT_CPU);
    free(v);
    return t;
}

static float *host_floats(const ct_tensor *t)
{
    size_t n = (size_t)ct_numel(t);
    float *v = malloc(n * sizeof *v);
    if (ct_to_host(t, v, n * sizeof *v) != DC_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* max |a - b| of two float32 tensors of equal size */
static double tensor_diff(const ct_tensor *a, const ct_tensor *b)
{
    if (ct_numel(a) != ct_numel(b))
        return INFINITY;
    float *x = host_floats(a), *y = host_floats(b);
    double d = x && y ? max_abs_diff(x, y, (size_t)ct_numel(a)) : INFINITY;
    free(x);
    free(y);
    return d;
}

/* Image features of the batch equal those of each image alone: catches any mixing of the
 * batch and sequence dimensions. */
static void check_batch_independent(const nn_clip *clip)
{
    int64_t r = nn_clip_get_config(clip)->resolution;
    ct_tensor *x = random_tensor(4, S(2, 3, r, r), 1.0, 3), *all = NULL, *one = NULL,
              *first = NULL, *row = NULL;
    CHECK_OK(nn_clip_encode_image(clip, x, &all));
    CHECK(ct_ndim(all) == 2 && ct_size(all, 0) == 2 &&
          ct_size(all, 1) == nn_clip_get_config(clip)->embed_dim);
    CHECK_OK(ct_narrow(&first, x, 0, 1, 1));
    CHECK_OK(nn_clip_encode_image(clip, first, &one));
    CHECK_OK(ct_narrow(&row, all, 0, 1, 1));
    CHECK(tensor_diff(one, row) < 1e-5);
    double m;
    CHECK_OK(ct_max_abs(all, &m));
    CHECK(m > 1e-3 && isfinite(m));
    ct_free(x), ct_free(all), ct_free(one), ct_free(first), ct_free(row);
}

/* ---- CLIP architecture ---- */

TEST(vit_hyper_parameters_are_inferred)
{
    io_state_dict sd = vit_sd(128, 2, 16, 3, 192, 24);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "vit.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    const nn_clip_config *c = nn_clip_get_config(clip);
    CHECK(c->vision == NN_CLIP_VIT);
    CHECK(c->vision_width == 128 && c->vision_heads == 2 && c->vision_layers[0] == 2);
    CHECK(c->patch == 16 && c->grid == 3 && c->resolution == 48);
    CHECK(c->embed_dim == 24 && c->context_length == CONTEXT && c->vocab_size == VOCAB);
    CHECK(c->text_width == 192 && c->text_heads == 3 && c->text_layers == 1);
    check_batch_independent(clip);
    nn_clip_free(clip);
}

TEST(vit_with_other_shapes_runs)
{
    io_state_dict sd = vit_sd(192, 1, 8, 2, 64, 16);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "vit.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    CHECK(nn_clip_get_config(clip)->vision_heads == 3);
    CHECK(nn_clip_get_config(clip)->resolution == 16);
    check_batch_independent(clip);
    nn_clip_free(clip);
}

TEST(modified_resnet_hyper_parameters_are_inferred)
{
    const int layers[4] = {2, 1, 1, 1};
    io_state_dict sd = resnet_sd(8, layers, 2, 20);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "rn.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    const nn_clip_config *c = nn_clip_get_config(clip);
    CHECK(c->vision == NN_CLIP_RESNET);
    CHECK(c->vision_width == 8 && c->vision_heads == 4);
    CHECK(c->vision_layers[0] == 2 && c->vision_layers[1] == 1 && c->vision_layers[3] == 1);
    CHECK(c->resolution == 64 && c->embed_dim == 20);
    check_batch_independent(clip);
    nn_clip_free(clip);
}

TEST(malformed_clip_state_dicts_are_refused)
{
    io_state_dict sd = vit_sd(128, 1, 16, 2, 64, 8);
    nn_clip *clip = NULL;
    /* a misshapen weight */
    for (size_t i = 0; i < sd.count; i++)
        if (strcmp(sd.tensors[i].name, "visual.transformer.resblocks.0.mlp.c_fc.weight") == 0)
            sd.tensors[i].value.shape[0] = 3;
    CHECK_STATUS(nn_clip_load(&clip, &sd, "bad.pt", CT_CPU, DC_FLOAT32), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "c_fc.weight") && strstr(dc_last_error(), "bad.pt"));
    CHECK(clip == NULL);
    /* a missing one */
    for (size_t i = 0; i < sd.count; i++) {
        if (strcmp(sd.tensors[i].name, "visual.transformer.resblocks.0.mlp.c_fc.weight") == 0)
            sd.tensors[i].value.shape[0] = 4 * 128;
        if (strcmp(sd.tensors[i].name, "ln_final.bias") == 0)
            sd.tensors[i].name[0] = 'x';
    }
    CHECK_STATUS(nn_clip_load(&clip, &sd, "bad.pt", CT_CPU, DC_FLOAT32), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "ln_final.bias"));
    io_state_dict_free(&sd);
    /* a width that gives no heads (CLIP's heads = width / 64) */
    sd = vit_sd(32, 1, 16, 2, 64, 8);
    CHECK_STATUS(nn_clip_load(&clip, &sd, "narrow.pt", CT_CPU, DC_FLOAT32), DC_EFORMAT);
    io_state_dict_free(&sd);
    /* not CLIP at all */
    sd_builder b = {.rng = 1};
    add_tensor(&b, 0, 1, 1, S(4), "conv.weight");
    CHECK_STATUS(nn_clip_load(&clip, &b.sd, "other.pt", CT_CPU, DC_FLOAT32), DC_EFORMAT);
    io_state_dict_free(&b.sd);
}

/* ---- text tower ---- */

static ct_tensor *tokens_tensor(const int64_t *rows, int n)
{
    ct_tensor *t = NULL;
    ct_from_host(&t, rows, DC_INT64, 2, S(n, CONTEXT), CT_CPU);
    return t;
}

TEST(text_features_follow_the_causal_mask_and_end_token)
{
    io_state_dict sd = vit_sd(64, 1, 16, 2, 128, 16);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "vit.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    /* The highest id (VOCAB - 1 plays the end token) marks the feature position. Tokens after
     * it cannot matter under the causal mask; tokens before it do. */
    const int64_t base[CONTEXT] = {VOCAB - 2, 5, 9, VOCAB - 1, 0, 0, 0, 0, 0, 0, 0, 0};
    int64_t rows[3][CONTEXT];
    for (int r = 0; r < 3; r++)
        memcpy(rows[r], base, sizeof base);
    rows[1][6] = 17;      /* after the end token */
    rows[2][1] = 6;       /* before it */
    ct_tensor *tokens = tokens_tensor(&rows[0][0], 3), *f = NULL, *a = NULL, *b = NULL,
              *c = NULL;
    CHECK_OK(nn_clip_encode_text(clip, tokens, &f));
    CHECK(ct_ndim(f) == 2 && ct_size(f, 0) == 3 && ct_size(f, 1) == 16);
    CHECK_OK(ct_narrow(&a, f, 0, 0, 1));
    CHECK_OK(ct_narrow(&b, f, 0, 1, 1));
    CHECK_OK(ct_narrow(&c, f, 0, 2, 1));
    CHECK(tensor_diff(a, b) < 1e-6);
    CHECK(tensor_diff(a, c) > 1e-4);
    ct_free(tokens), ct_free(f), ct_free(a), ct_free(b), ct_free(c);

    int64_t bad[CONTEXT] = {VOCAB, 1};
    tokens = tokens_tensor(bad, 1);
    CHECK_STATUS(nn_clip_encode_text(clip, tokens, &f), DC_EINVAL);
    ct_free(tokens);
    bad[0] = -1;
    tokens = tokens_tensor(bad, 1);
    CHECK_STATUS(nn_clip_encode_text(clip, tokens, &f), DC_EINVAL);
    ct_free(tokens);
    nn_clip_free(clip);
}

/* ---- preprocessing ---- */

static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double std[3] = {0.26862954, 0.26130258, 0.27577711};

/* A (1, 3, h, w) image whose value is column / 100 (channel 0) and constant v elsewhere. */
static ct_tensor *column_ramp(int64_t h, int64_t w, float v)
{
    float *px = malloc((size_t)(3 * h * w) * sizeof *px);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                px[(c * h + y) * w + x] = c == 0 ? (float)x / 100.0f : v;
    ct_tensor *t = NULL;
    ct_from_host(&t, px, DC_FLOAT32, 4, S(1, 3, h, w), CT_CPU);
    free(px);
    return t;
}

TEST(preprocessing_crops_as_torchvision)
{
    /* No resize when the shorter side already has the size: then only the centre crop acts,
     * with Python's round-half-to-even offsets: (21-16)/2 = 2.5 -> 2, (23-16)/2 = 3.5 -> 4. */
    const int64_t widths[3] = {22, 21, 23}, offsets[3] = {3, 2, 4};
    for (int i = 0; i < 3; i++) {
        ct_tensor *x = column_ramp(16, widths[i], 0.25f), *y = NULL;
        CHECK_OK(nn_clip_preprocess_to(x, 16, &y));
        CHECK(ct_ndim(y) == 4 && ct_size(y, 2) == 16 && ct_size(y, 3) == 16);
        float *v = host_floats(y);
        CHECK(v);
        double first = ((offsets[i] / 100.0 + 1) / 2 - mean[0]) / std[0];
        double last = (((offsets[i] + 15) / 100.0 + 1) / 2 - mean[0]) / std[0];
        CHECK_NEAR(v[0], first, 1e-5);
        CHECK_NEAR(v[15], last, 1e-5);
        CHECK_NEAR(v[2 * 256 + 77], ((0.25 + 1) / 2 - mean[2]) / std[2], 1e-5);
        free(v);
        ct_free(x), ct_free(y);
    }
}

TEST(preprocessing_resizes_the_shorter_side)
{
    /* 30 rows x 20 columns to 16: torchvision sizes it int(16 * 30 / 20) = 24 rows x 16
     * columns, then crops the middle 16 rows. A constant image stays constant through bicubic
     * resizing. */
    ct_tensor *x = column_ramp(30, 20, -0.5f), *y = NULL;
    CHECK_OK(nn_clip_preprocess_to(x, 16, &y));
    CHECK(ct_size(y, 0) == 1 && ct_size(y, 1) == 3 && ct_size(y, 2) == 16 &&
          ct_size(y, 3) == 16);
    float *v = host_floats(y);
    CHECK(v);
    CHECK_NEAR(v[256 + 100], ((-0.5 + 1) / 2 - mean[1]) / std[1], 1e-5);
    /* Resizing 20 -> 16 columns keeps the ramp's centre (column 9.5 of the source). */
    double centre = (v[7] + v[8]) / 2 * std[0] + mean[0];
    CHECK_NEAR(centre, (9.5 / 100 + 1) / 2, 2e-4);
    free(v);
    /* Differentiable w.r.t. the image. */
    ct_tensor *leaf = NULL, *z = NULL, *s = NULL, *g = NULL;
    CHECK_OK(ct_clone(&leaf, x));
    CHECK_OK(ct_set_requires_grad(leaf, 1));
    CHECK_OK(nn_clip_preprocess_to(leaf, 16, &z));
    CHECK_OK(ct_sum(&s, z));
    CHECK_OK(ct_backward(s));
    CHECK_OK(ct_grad(&g, leaf));
    CHECK(g != NULL);
    double m;
    CHECK_OK(ct_max_abs(g, &m));
    CHECK(m > 0);
    ct_free(x), ct_free(y), ct_free(leaf), ct_free(z), ct_free(s), ct_free(g);
}

/* ---- losses ---- */

static double scalar(const ct_tensor *t)
{
    double v = NAN;
    ct_item(t, &v);
    return v;
}

TEST(clip_loss_forms)
{
    ct_tensor *l = NULL, *a = NULL, *b = NULL;
    CHECK_OK(ct_scalar(&l, 0.5, DC_FLOAT32, CT_CPU));
    CHECK_OK(ft_clip_loss_form_apply(FT_CLIP_LOSS_LOG, l, &a));
    CHECK_OK(ft_clip_loss_form_apply(FT_CLIP_LOSS_DIRECTION, l, &b));
    CHECK_NEAR(scalar(a), -log(0.75), 1e-6);
    CHECK_NEAR(scalar(b), 0.5, 1e-7);
    ct_tensor *refused = NULL;
    CHECK_STATUS(ft_clip_loss_form_apply((ft_clip_loss_form)7, l, &refused), DC_EINVAL);
    CHECK(refused == NULL);
    ct_free(l), ct_free(a), ct_free(b);
}

/* With the text direction set to the images' own normalised feature difference the loss is
 * 0; reversed it is 2; with identical images d = 0 and cos = 0, so 1. */
TEST(directional_loss_measures_the_angle_to_the_text_direction)
{
    io_state_dict sd = vit_sd(64, 1, 16, 2, 64, 8);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "vit.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    ct_tensor *x_src = random_tensor(4, S(1, 3, 40, 40), 1.0, 11);
    ct_tensor *x_gen = random_tensor(4, S(1, 3, 40, 40), 1.0, 12);
    ct_tensor *p_src = NULL, *p_gen = NULL, *f_src = NULL, *f_gen = NULL;
    CHECK_OK(nn_clip_preprocess(clip, x_src, &p_src));
    CHECK_OK(nn_clip_preprocess(clip, x_gen, &p_gen));
    CHECK_OK(nn_clip_encode_image(clip, p_src, &f_src));
    CHECK_OK(nn_clip_encode_image(clip, p_gen, &f_gen));
    float *a = host_floats(f_src), *b = host_floats(f_gen), dir[8], rev[8];
    double na = 0, nb = 0, nd = 0;
    for (int i = 0; i < 8; i++)
        na += a[i] * a[i], nb += b[i] * b[i];
    for (int i = 0; i < 8; i++) {
        dir[i] = (float)(b[i] / sqrt(nb) - a[i] / sqrt(na));
        nd += dir[i] * dir[i];
    }
    for (int i = 0; i < 8; i++)
        rev[i] = -(dir[i] /= (float)sqrt(nd));
    free(a), free(b);
    ct_tensor *d = NULL, *r = NULL, *l = NULL, *lr = NULL, *same = NULL;
    CHECK_OK(ct_from_host(&d, dir, DC_FLOAT32, 2, S(1, 8), CT_CPU));
    CHECK_OK(ct_from_host(&r, rev, DC_FLOAT32, 2, S(1, 8), CT_CPU));
    CHECK_OK(ft_clip_direction_loss(clip, x_src, x_gen, d, &l));
    CHECK_OK(ft_clip_direction_loss(clip, x_src, x_gen, r, &lr));
    CHECK_OK(ft_clip_direction_loss(clip, x_src, x_src, d, &same));
    CHECK_NEAR(scalar(l), 0.0, 1e-5);
    CHECK_NEAR(scalar(lr), 2.0, 1e-5);
    CHECK_NEAR(scalar(same), 1.0, 1e-6);
    ct_tensor *wrong = NULL, *refused = NULL;
    CHECK_OK(ct_zeros(&wrong, DC_FLOAT32, 2, S(1, 7), CT_CPU));
    CHECK_STATUS(ft_clip_direction_loss(clip, x_src, x_gen, wrong, &refused), DC_EINVAL);
    CHECK(refused == NULL);
    ct_free(wrong);
    ct_free(x_src), ct_free(x_gen), ct_free(p_src), ct_free(p_gen), ct_free(f_src);
    ct_free(f_gen), ct_free(d), ct_free(r), ct_free(l), ct_free(lr), ct_free(same);
    nn_clip_free(clip);
}

TEST(l1_loss_is_the_mean_absolute_difference)
{
    const float a[4] = {1, -2, 3, 0.5f}, b[4] = {0, 0, 4, 0.5f};
    ct_tensor *x = NULL, *y = NULL, *l = NULL;
    CHECK_OK(ct_from_host(&x, a, DC_FLOAT32, 2, S(2, 2), CT_CPU));
    CHECK_OK(ct_from_host(&y, b, DC_FLOAT32, 2, S(2, 2), CT_CPU));
    CHECK_OK(ft_l1_loss(x, y, &l));
    CHECK_NEAR(scalar(l), 1.0, 1e-7);
    ct_free(x), ct_free(y), ct_free(l);
}

TEST(templates_match_the_clip_data_file)
{
    CHECK(ft_imagenet_template_count == 79);
    CHECK(strcmp(ft_imagenet_templates[0], "a bad photo of a {}.") == 0);
    char path[1024];
    if (!clip_data_path("imagenet_templates.txt", path, sizeof path))
        return;
    FILE *f = fopen(path, "r");
    CHECK(f);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        CHECKF(n < ft_imagenet_template_count && strcmp(line, ft_imagenet_templates[n]) == 0,
               "template %zu differs: %s", n, line);
        n++;
    }
    fclose(f);
    CHECK(n == ft_imagenet_template_count);
}

/* ---- identity network ---- */

static io_state_dict irse_sd(const int *units, int64_t c0)
{
    sd_builder b = {.rng = 5};
    W(&b, (c0, 3, 3, 3), "input_layer.0.weight");
    add_bn(&b, c0, "input_layer.1");
    add_tensor(&b, 0.25, 0.05, 1, S(c0), "input_layer.2.weight");
    int64_t in = c0;
    int k = 0;
    for (int s = 0; s < 4; s++) {
        int64_t d = c0 << s;
        for (int i = 0; i < units[s]; i++, k++) {
            add_bn(&b, in, "body.%d.res_layer.0", k);
            W(&b, (d, in, 3, 3), "body.%d.res_layer.1.weight", k);
            add_tensor(&b, 0.25, 0.05, 1, S(d), "body.%d.res_layer.2.weight", k);
            W(&b, (d, d, 3, 3), "body.%d.res_layer.3.weight", k);
            add_bn(&b, d, "body.%d.res_layer.4", k);
            W(&b, (d / 4, d, 1, 1), "body.%d.res_layer.5.fc1.weight", k);
            W(&b, (d, d / 4, 1, 1), "body.%d.res_layer.5.fc2.weight", k);
            if (in != d) {
                W(&b, (d, in, 1, 1), "body.%d.shortcut_layer.0.weight", k);
                add_bn(&b, d, "body.%d.shortcut_layer.1", k);
            }
            in = d;
        }
    }
    add_bn(&b, in, "output_layer.0");
    W(&b, (32, in * 7 * 7), "output_layer.3.weight");
    BIAS(&b, 32, "output_layer.3.bias");
    add_bn(&b, 32, "output_layer.4");
    return b.sd;
}

TEST(idnet_units_and_input_size_are_inferred)
{
    const int units[4] = {2, 1, 2, 1};
    io_state_dict sd = irse_sd(units, 8);
    nn_idnet *net = NULL;
    int st = nn_idnet_load(&net, &sd, "irse.pth", CT_CPU);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    CHECK(nn_idnet_input_size(net) == 112 && nn_idnet_feature_dim(net) == 32);
    ct_tensor *x = random_tensor(4, S(2, 3, 112, 112), 1.0, 9), *f = NULL, *n = NULL;
    CHECK_OK(nn_idnet_forward(net, x, &f));
    CHECK(ct_ndim(f) == 2 && ct_size(f, 0) == 2 && ct_size(f, 1) == 32);
    CHECK_OK(ct_norm_dim(&n, f, 1, 0));
    float *norms = host_floats(n);
    CHECK(norms);
    CHECK_NEAR(norms[0], 1.0, 1e-5);
    CHECK_NEAR(norms[1], 1.0, 1e-5);
    free(norms);
    ct_free(x);
    x = random_tensor(4, S(1, 3, 64, 64), 1.0, 9);
    ct_tensor *refused = NULL;
    CHECK_STATUS(nn_idnet_forward(net, x, &refused), DC_EINVAL);
    CHECK(refused == NULL);
    ct_free(x), ct_free(f), ct_free(n);
    nn_idnet_free(net);
}

TEST(id_loss_is_zero_for_identical_faces_and_has_a_gradient)
{
    const int units[4] = {1, 1, 1, 1};
    io_state_dict sd = irse_sd(units, 8);
    nn_idnet *net = NULL;
    int st = nn_idnet_load(&net, &sd, "irse.pth", CT_CPU);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    /* 128 x 128 faces: the crop box scales to [18:112, 16:110] before pooling to 112. */
    ct_tensor *x0 = random_tensor(4, S(2, 3, 128, 128), 1.0, 21);
    ct_tensor *x1 = random_tensor(4, S(2, 3, 128, 128), 1.0, 22);
    ct_tensor *same = NULL, *leaf = NULL, *loss = NULL, *g = NULL, *per = NULL;
    CHECK_OK(ft_id_loss(net, x0, x0, &same));
    CHECK_NEAR(scalar(same), 0.0, 1e-5);
    CHECK_OK(ft_id_loss_per_sample(net, x0, x1, &per));
    CHECK(ct_ndim(per) == 1 && ct_size(per, 0) == 2);
    CHECK_OK(ct_clone(&leaf, x1));
    CHECK_OK(ct_set_requires_grad(leaf, 1));
    CHECK_OK(ft_id_loss(net, x0, leaf, &loss));
    CHECK(scalar(loss) > 1e-4 && scalar(loss) <= 2);
    CHECK_OK(ct_backward(loss));
    CHECK_OK(ct_grad(&g, leaf));
    CHECK(g != NULL);
    double m;
    CHECK_OK(ct_max_abs(g, &m));
    CHECK(m > 0);
    ct_free(x0), ct_free(x1), ct_free(same), ct_free(leaf), ct_free(loss), ct_free(g);
    ct_free(per);
    nn_idnet_free(net);
}

TEST(malformed_idnet_state_dicts_are_refused)
{
    const int units[4] = {1, 1, 1, 1};
    io_state_dict sd = irse_sd(units, 8);
    for (size_t i = 0; i < sd.count; i++)
        if (strcmp(sd.tensors[i].name, "body.2.shortcut_layer.0.weight") == 0)
            sd.tensors[i].name[0] = 'x';
    nn_idnet *net = NULL;
    CHECK_STATUS(nn_idnet_load(&net, &sd, "irse.pth", CT_CPU), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "body.2"));
    io_state_dict_free(&sd);
    sd_builder b = {.rng = 1};
    add_tensor(&b, 0, 1, 1, S(4), "conv.weight");
    CHECK_STATUS(nn_idnet_load(&net, &b.sd, "other.pt", CT_CPU), DC_EFORMAT);
    io_state_dict_free(&b.sd);
}

/* ---- handle hygiene and the public API ---- */

TEST(forward_passes_and_losses_leave_no_handles)
{
    io_state_dict sd = vit_sd(64, 1, 16, 2, 64, 8);
    nn_clip *clip = NULL;
    int st = nn_clip_load(&clip, &sd, "vit.pt", CT_CPU, DC_FLOAT32);
    io_state_dict_free(&sd);
    CHECK_OK(st);
    ct_tensor *x = random_tensor(4, S(1, 3, 40, 40), 1.0, 31);
    ct_tensor *y = random_tensor(4, S(1, 3, 40, 40), 1.0, 32);
    ct_tensor *d = random_tensor(2, S(1, 8), 1.0, 33);
    size_t before = ct_live_handles();
    ct_tensor *l = NULL, *pre = NULL, *bad = NULL;
    CHECK_OK(ft_clip_direction_loss(clip, x, y, d, &l));
    ct_free(l);
    CHECK_OK(nn_clip_preprocess(clip, x, &pre));
    ct_free(pre);
    CHECK_OK(ct_zeros(&bad, DC_FLOAT32, 4, S(1, 3, 31, 32), CT_CPU));
    CHECK_STATUS(nn_clip_encode_image(clip, bad, &l), DC_EINVAL);
    CHECK(l == NULL);
    ct_free(bad);
    CHECK(ct_live_handles() == before);
    size_t pool = ct_pool_begin();
    io_state_dict again = vit_sd(64, 1, 16, 2, 64, 8);
    nn_clip *inside = NULL;
    CHECK_STATUS(nn_clip_load(&inside, &again, "vit.pt", CT_CPU, DC_FLOAT32), DC_EINVAL);
    ct_pool_end(pool, NULL, 0);
    io_state_dict_free(&again);
    ct_free(x), ct_free(y), ct_free(d);
    nn_clip_free(clip);
}

static const char *write_checkpoint(const io_state_dict *sd, const char *file, char *path,
                                    size_t size)
{
    dc_named_tensor *named = calloc(sd->count, sizeof *named);
    for (size_t i = 0; i < sd->count; i++)
        named[i] = (dc_named_tensor){sd->tensors[i].name, sd->tensors[i].value};
    path_join(path, size, test_tmpdir(), file);
    int st = io_checkpoint_write_torch(path, named, sd->count);
    free(named);
    return st == DC_OK ? path : NULL;
}

TEST(public_clip_handle_with_a_resnet_checkpoint)
{
    const int layers[4] = {1, 1, 1, 1};
    io_state_dict sd = resnet_sd(8, layers, 1, 12);
    char path[1024];
    const char *file = write_checkpoint(&sd, "rn.pt", path, sizeof path);
    io_state_dict_free(&sd);
    CHECK(file);
    dc_clip *clip = NULL;
    dc_clip_options o;
    dc_clip_options_init(&o, DC_CLIP_OPTIONS_VERSION);
    o.half = 1;
    CHECK_STATUS(dc_clip_load(&clip, file, &o), DC_EINVAL); /* float16 needs CUDA */
    o.half = 0;
    o.version = 99;
    CHECK_STATUS(dc_clip_load(&clip, file, &o), DC_EINVAL);
    CHECK_STATUS(dc_clip_load(&clip, "/nonexistent/clip.pt", NULL), DC_EIO);
    CHECK(clip == NULL);
    CHECK_OK(dc_clip_load(&clip, file, NULL));
    CHECK(dc_clip_input_size(clip) == 32 && dc_clip_embed_dim(clip) == 12);

    float *px = calloc(2 * 3 * 32 * 32, sizeof *px);
    for (int i = 0; i < 2 * 3 * 32 * 32; i++)
        px[i] = (float)sin(i * 0.37);
    dc_tensor x = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 32, 32}, .data = px};
    dc_tensor f = {0};
    CHECK_OK(dc_clip_encode_image(clip, &x, &f));
    CHECK(f.dtype == DC_FLOAT32 && f.ndim == 2 && f.shape[0] == 2 && f.shape[1] == 12);
    dc_tensor_free(&f);
    x.shape[2] = 31;
    CHECK_STATUS(dc_clip_encode_image(clip, &x, &f), DC_EINVAL);
    x.data = NULL;
    CHECK_STATUS(dc_clip_encode_image(clip, &x, &f), DC_EINVAL);
    free(px);

    int64_t ids[2 * CONTEXT] = {VOCAB - 2, 4, VOCAB - 1};
    ids[CONTEXT] = VOCAB - 1;
    dc_tensor tokens = {.dtype = DC_INT64, .ndim = 2, .shape = {2, CONTEXT}, .data = ids};
    CHECK_OK(dc_clip_encode_text(clip, &tokens, &f));
    CHECK(f.ndim == 2 && f.shape[0] == 2 && f.shape[1] == 12);
    dc_tensor_free(&f);
    tokens.shape[1] = CONTEXT - 1;
    CHECK_STATUS(dc_clip_encode_text(clip, &tokens, &f), DC_EINVAL);
    dc_clip_free(clip);
    dc_clip_free(NULL);
}

TEST(public_idnet_handle_checks_its_arguments)
{
    const int units[4] = {1, 1, 1, 1};
    io_state_dict sd = irse_sd(units, 8);
    char path[1024];
    const char *file = write_checkpoint(&sd, "irse.pth", path, sizeof path);
    io_state_dict_free(&sd);
    CHECK(file);
    dc_idnet *net = NULL;
    dc_idnet_options o;
    dc_idnet_options_init(&o, DC_IDNET_OPTIONS_VERSION);
    o.device = "tpu";
    CHECK(dc_idnet_load(&net, file, &o) != DC_OK);
    CHECK_OK(dc_idnet_load(&net, file, NULL));
    float *px = calloc(3 * 64 * 64, sizeof *px);
    dc_tensor x = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 64, 64}, .data = px};
    dc_tensor f = {0};
    CHECK_OK(dc_idnet_features(net, &x, &f));
    CHECK(f.ndim == 2 && f.shape[0] == 1 && f.shape[1] == 32);
    dc_tensor_free(&f);
    double loss = -1;
    CHECK_OK(dc_idnet_id_loss(net, &x, &x, &loss, NULL, NULL));
    CHECK_NEAR(loss, 0.0, 1e-5);
    dc_tensor other = x;
    other.shape[0] = 2;
    float *px2 = calloc(2 * 3 * 64 * 64, sizeof *px2);
    other.data = px2;
    CHECK_STATUS(dc_idnet_id_loss(net, &x, &other, &loss, NULL, NULL), DC_EINVAL);
    CHECK_STATUS(dc_idnet_id_loss(net, &x, &x, NULL, NULL, NULL), DC_EINVAL);
    free(px), free(px2);
    dc_idnet_free(net);
}
