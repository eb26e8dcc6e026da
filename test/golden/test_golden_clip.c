/* Conformance of CLIP (ViT), DiffusionCLIP's preprocessing, text direction and directional
 * loss against ../shared/golden/clip_vit (PyTorch 1.13, float32). Tolerances from case.json:
 * features and losses max|ours - golden| <= 1e-4 (1 + max|golden|), gradients relative L2
 * <= 1e-3. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/losses.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/npy.h"
#include "nn/clip.h"
#include "nn/tokenizer.h"

/* strings.json[0] and [1], the source and target texts of the case */
#define SOURCE_TEXT "face"
#define TARGET_TEXT "angry face"

static int read_npy(const char *dir, const char *file, dc_tensor *t)
{
    char path[1024];
    return io_npy_read_file(path_join(path, sizeof path, dir, file), t);
}

static int load_clip(const char *dir, const char *file, nn_clip **clip)
{
    char path[1024];
    io_state_dict sd = {0};
    int st = io_checkpoint_read_file(path_join(path, sizeof path, dir, file), &sd);
    if (st == DC_OK)
        st = nn_clip_load(clip, &sd, path, test_device(), DC_FLOAT32);
    io_state_dict_free(&sd);
    return st;
}

static int to_ct(const dc_tensor *t, ct_tensor **out)
{
    return ct_from_host(out, t->data, t->dtype, t->ndim, t->shape, test_device());
}

/* Fails the test (returning 0) unless `got` is within the case tolerance of `golden`
 * (relative L2 <= rel_l2 when rel_l2 > 0); prints the error reached. */
static int close_to(const char *what, const ct_tensor *got, const dc_tensor *golden,
                    double rel_l2)
{
    if (!got || !ct_has_shape(got, golden->ndim, golden->shape)) {
        test_fail_at(__FILE__, __LINE__, "%s: shape differs from the golden array", what);
        return 0;
    }
    size_t n = (size_t)dc_tensor_numel(golden);
    float *v = malloc(n * sizeof *v);
    if (!v || ct_to_host(got, v, n * sizeof *v) != DC_OK) {
        free(v);
        test_fail_at(__FILE__, __LINE__, "%s: cannot read the result", what);
        return 0;
    }
    const float *g = golden->data;
    double err = rel_l2 > 0 ? relative_l2(v, g, n) : max_abs_diff(v, g, n);
    double tol = rel_l2 > 0 ? rel_l2 : golden_tolerance(g, n);
    free(v);
    printf("  %s: %s %.3g (tolerance %.3g)\n", what, rel_l2 > 0 ? "relative L2" : "max error",
           err, tol);
    if (!(err <= tol)) {
        test_fail_at(__FILE__, __LINE__, "%s: error %.3g over %.3g", what, err, tol);
        return 0;
    }
    return 1;
}

static void features_case(const char *container)
{
    char dir[1024];
    if (!golden_case("clip_vit", dir, sizeof dir))
        return;
    nn_clip *clip = NULL;
    CHECK_OK(load_clip(dir, container, &clip));
    const nn_clip_config *c = nn_clip_get_config(clip);
    CHECK(c->vision == NN_CLIP_VIT && c->vision_width == 64 && c->vision_layers[0] == 2 &&
          c->patch == 32 && c->resolution == 224 && c->embed_dim == 32 &&
          c->text_width == 64 && c->text_layers == 2 && c->vocab_size == 49408);
    dc_tensor image = {0}, tokens = {0}, want_image = {0}, want_text = {0};
    ct_tensor *x = NULL, *t = NULL, *fi = NULL, *ft = NULL;
    CHECK_OK(read_npy(dir, "image.npy", &image));
    CHECK_OK(read_npy(dir, "tokens.npy", &tokens));
    CHECK_OK(read_npy(dir, "image_features.npy", &want_image));
    CHECK_OK(read_npy(dir, "text_features.npy", &want_text));
    CHECK_OK(to_ct(&image, &x));
    CHECK_OK(to_ct(&tokens, &t));
    CHECK_OK(nn_clip_encode_image(clip, x, &fi));
    CHECK_OK(nn_clip_encode_text(clip, t, &ft));
    if (close_to("image_features", fi, &want_image, 0))
        close_to("text_features", ft, &want_text, 0);
    ct_free(x), ct_free(t), ct_free(fi), ct_free(ft);
    dc_tensor_free(&image), dc_tensor_free(&tokens);
    dc_tensor_free(&want_image), dc_tensor_free(&want_text);
    nn_clip_free(clip);
}

TEST(clip_vit_features_from_state_dict) { features_case("clip_state_dict.pt"); }

TEST(clip_vit_features_from_torchscript) { features_case("clip_torchscript.pt"); }

TEST(clip_vit_preprocessing)
{
    char dir[1024];
    if (!golden_case("clip_vit", dir, sizeof dir))
        return;
    dc_tensor x_src = {0}, want = {0};
    ct_tensor *x = NULL, *pre = NULL;
    CHECK_OK(read_npy(dir, "x_src.npy", &x_src));
    CHECK_OK(read_npy(dir, "preprocessed.npy", &want));
    CHECK_OK(to_ct(&x_src, &x));
    CHECK_OK(nn_clip_preprocess_to(x, 224, &pre));
    close_to("preprocessed", pre, &want, 0);
    ct_free(x), ct_free(pre);
    dc_tensor_free(&x_src), dc_tensor_free(&want);
}

TEST(clip_vit_text_direction)
{
    char dir[1024], vocab[1024];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    nn_clip *clip = NULL;
    nn_tokenizer *tok = NULL;
    CHECK_OK(load_clip(dir, "clip_state_dict.pt", &clip));
    CHECK_OK(nn_tokenizer_load(&tok, vocab));
    dc_tensor want = {0};
    CHECK_OK(read_npy(dir, "text_direction.npy", &want));
    ft_text_direction cache = {0};
    ct_tensor *d = NULL, *again = NULL;
    CHECK_OK(ft_text_direction_get(&cache, clip, tok, SOURCE_TEXT, TARGET_TEXT, &d));
    close_to("text_direction", d, &want, 0);
    /* The second request is served from the cache. */
    char *cached_source = cache.source;
    CHECK_OK(ft_text_direction_get(&cache, clip, tok, SOURCE_TEXT, TARGET_TEXT, &again));
    CHECK(cache.source == cached_source);
    ft_text_direction_clear(&cache);
    ct_free(d), ct_free(again);
    dc_tensor_free(&want);
    nn_tokenizer_free(tok);
    nn_clip_free(clip);
}

/* L_dir and -log((2 - L_dir)/2) for x_src -> x_trg and the gradient of the latter, with the
 * golden text direction (so that this runs without the vocabulary). */
TEST(clip_vit_directional_loss_and_gradient)
{
    char dir[1024];
    if (!golden_case("clip_vit", dir, sizeof dir))
        return;
    nn_clip *clip = NULL;
    CHECK_OK(load_clip(dir, "clip_torchscript.pt", &clip));
    dc_tensor x_src = {0}, x_trg = {0}, direction = {0}, want_loss = {0}, want_grad = {0};
    CHECK_OK(read_npy(dir, "x_src.npy", &x_src));
    CHECK_OK(read_npy(dir, "x_trg.npy", &x_trg));
    CHECK_OK(read_npy(dir, "text_direction.npy", &direction));
    CHECK_OK(read_npy(dir, "loss.npy", &want_loss));
    CHECK_OK(read_npy(dir, "grad_x_trg.npy", &want_grad));
    ct_tensor *src = NULL, *trg = NULL, *d = NULL, *l_dir = NULL, *l_log = NULL, *losses = NULL,
              *grad = NULL;
    CHECK_OK(to_ct(&x_src, &src));
    CHECK_OK(to_ct(&x_trg, &trg));
    CHECK_OK(to_ct(&direction, &d));
    CHECK_OK(ct_set_requires_grad(trg, 1));
    CHECK_OK(ft_clip_direction_loss(clip, src, trg, d, &l_dir));
    CHECK_OK(ft_clip_loss_form_apply(FT_CLIP_LOSS_LOG, l_dir, &l_log));
    ct_tensor *pair[2] = {NULL, NULL};
    CHECK_OK(ct_reshape(&pair[0], l_dir, 1, (const int64_t[]){1}));
    CHECK_OK(ct_reshape(&pair[1], l_log, 1, (const int64_t[]){1}));
    CHECK_OK(ct_cat(&losses, pair, 2, 0));
    CHECK_OK(ct_backward(l_log));
    CHECK_OK(ct_grad(&grad, trg));
    if (close_to("loss [L_dir, -log((2-L)/2)]", losses, &want_loss, 0))
        close_to("grad_x_trg", grad, &want_grad, 1e-3);
    ct_free(src), ct_free(trg), ct_free(d), ct_free(l_dir), ct_free(l_log), ct_free(losses);
    ct_free(grad), ct_free(pair[0]), ct_free(pair[1]);
    dc_tensor_free(&x_src), dc_tensor_free(&x_trg), dc_tensor_free(&direction);
    dc_tensor_free(&want_loss), dc_tensor_free(&want_grad);
    nn_clip_free(clip);
}

/* The same through the public API, text direction included. */
TEST(clip_vit_public_api_loss)
{
    char dir[1024], vocab[1024], path[1024];
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    dc_clip *clip = NULL;
    dc_tokenizer *tok = NULL;
    dc_clip_options options;
    dc_clip_options_init(&options, DC_CLIP_OPTIONS_VERSION);
    CHECK_OK(dc_clip_load(&clip, path_join(path, sizeof path, dir, "clip_torchscript.pt"),
                          &options));
    CHECK(dc_clip_input_size(clip) == 224 && dc_clip_embed_dim(clip) == 32);
    dc_tensor image = {0}, want_image = {0}, features = {0};
    CHECK_OK(read_npy(dir, "image.npy", &image));
    CHECK_OK(read_npy(dir, "image_features.npy", &want_image));
    CHECK_OK(dc_clip_encode_image(clip, &image, &features));
    CHECK(dc_tensor_numel(&features) == dc_tensor_numel(&want_image));
    size_t n = (size_t)dc_tensor_numel(&features);
    CHECK(max_abs_diff(features.data, want_image.data, n) <=
          golden_tolerance(want_image.data, n));
    dc_tensor_free(&image), dc_tensor_free(&want_image), dc_tensor_free(&features);
    CHECK_OK(dc_tokenizer_new(&tok, vocab));
    dc_tensor x_src = {0}, x_trg = {0}, want_loss = {0}, want_grad = {0}, grad = {0};
    CHECK_OK(read_npy(dir, "x_src.npy", &x_src));
    CHECK_OK(read_npy(dir, "x_trg.npy", &x_trg));
    CHECK_OK(read_npy(dir, "loss.npy", &want_loss));
    CHECK_OK(read_npy(dir, "grad_x_trg.npy", &want_grad));
    double losses[2];
    CHECK_OK(dc_clip_loss(clip, tok, SOURCE_TEXT, TARGET_TEXT, &x_src, &x_trg, losses, &grad));
    const float *wl = want_loss.data;
    double tol = golden_tolerance(wl, 2);
    printf("  public loss: errors %.3g, %.3g (tolerance %.3g)\n", fabs(losses[0] - wl[0]),
           fabs(losses[1] - wl[1]), tol);
    CHECK_NEAR(losses[0], wl[0], tol);
    CHECK_NEAR(losses[1], wl[1], tol);
    CHECK(grad.ndim == 4 && dc_tensor_numel(&grad) == dc_tensor_numel(&want_grad));
    double rel = relative_l2(grad.data, want_grad.data, (size_t)dc_tensor_numel(&grad));
    printf("  public grad_x_trg: relative L2 %.3g (tolerance 1e-3)\n", rel);
    CHECK(rel <= 1e-3);
    /* The paper's form: same L_dir, gradient scaled by (2 - L). */
    dc_tensor_free(&grad);
    dc_clip_free(clip);
    clip = NULL;
    options.loss_form = DC_CLIP_LOSS_DIRECTION;
    CHECK_OK(dc_clip_load(&clip, path, &options));
    CHECK_OK(dc_clip_loss(clip, tok, SOURCE_TEXT, TARGET_TEXT, &x_src, &x_trg, losses, &grad));
    float *scaled = malloc((size_t)dc_tensor_numel(&grad) * sizeof *scaled);
    CHECK(scaled);
    for (int64_t i = 0; i < dc_tensor_numel(&grad); i++)
        scaled[i] = ((float *)want_grad.data)[i] * (float)(2 - wl[0]);
    rel = relative_l2(grad.data, scaled, (size_t)dc_tensor_numel(&grad));
    free(scaled);
    CHECK(rel <= 1e-3);
    CHECK_STATUS(dc_clip_loss(clip, tok, SOURCE_TEXT, TARGET_TEXT, &x_src, NULL, losses, NULL),
                 DC_EINVAL);
    dc_tensor_free(&x_src), dc_tensor_free(&x_trg), dc_tensor_free(&want_loss);
    dc_tensor_free(&want_grad), dc_tensor_free(&grad);
    dc_tokenizer_free(tok);
    dc_clip_free(clip);
}
