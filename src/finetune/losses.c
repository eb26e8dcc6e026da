#include "losses.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../nn/params.h"

#define DIRECTION_NORM_EPS 1e-7 /* d /= ||d|| + 1e-7 (StyleGAN-NADA) */
#define COSINE_EPS 1e-8         /* nn.CosineSimilarity default */

/* ---------------------------------------------------------------------------------------
 * Text direction
 * ------------------------------------------------------------------------------------- */

/* template.format(text) for templates holding one "{}" (the generator checks that). */
static char *format_template(const char *tmpl, const char *text)
{
    const char *hole = strstr(tmpl, "{}");
    size_t head = hole ? (size_t)(hole - tmpl) : strlen(tmpl);
    const char *tail = hole ? hole + 2 : "";
    size_t n = head + strlen(text) + strlen(tail) + 1;
    char *s = malloc(n);
    if (s) {
        memcpy(s, tmpl, head);
        strcpy(s + head, hole ? text : "");
        strcat(s, tail);
    }
    return s;
}

static void free_prompts(char **prompts, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(prompts[i]);
    free(prompts);
}

/* encode_text of every template filled with `text`, each row L2-normalised (K, D). */
static int template_features(ct_tensor **out, const nn_clip *clip, nn_tokenizer *tokenizer,
                             const char *text)
{
    size_t k = ft_imagenet_template_count;
    int64_t context = nn_clip_get_config(clip)->context_length;
    char **prompts = calloc(k, sizeof *prompts);
    int64_t *tokens = malloc(k * (size_t)context * sizeof *tokens);
    int st = prompts && tokens ? DC_OK : dci_err(DC_ENOMEM, "out of memory for prompts");
    for (size_t i = 0; st == DC_OK && i < k; i++)
        if (!(prompts[i] = format_template(ft_imagenet_templates[i], text)))
            st = dci_err(DC_ENOMEM, "out of memory for a prompt");
    if (st == DC_OK && context > INT32_MAX)
        st = dci_err(DC_EINVAL, "CLIP context length %lld too long", (long long)context);
    if (st == DC_OK) /* clip.tokenize without truncation: an over-long prompt is an error */
        st = nn_tokenize(tokenizer, (const char *const *)prompts, k, (int)context, 0, tokens);
    ct_tensor *ids = NULL, *features, *norm;
    if (st == DC_OK)
        st = ct_from_host(&ids, tokens, DC_INT64, 2, NN_SHAPE((int64_t)k, context), CT_CPU);
    free_prompts(prompts, prompts ? k : 0);
    free(tokens);
    DCI_TRY(st);
    DCI_TRY(nn_clip_encode_text(clip, ids, &features));
    DCI_TRY(ct_norm_dim(&norm, features, -1, 1));
    return ct_div(out, features, norm);
}

static int compute_direction(ct_tensor **out, const nn_clip *clip,
                             nn_tokenizer *tokenizer, const char *source,
                             const char *target)
{
    ct_tensor *src, *trg, *diff, *mean, *norm;
    DCI_TRY(template_features(&src, clip, tokenizer, source));
    DCI_TRY(template_features(&trg, clip, tokenizer, target));
    DCI_TRY(ct_sub(&diff, trg, src));
    DCI_TRY(ct_mean_dim(&mean, diff, 0, 1));
    DCI_TRY(ct_norm_dim(&norm, mean, -1, 1));
    return ct_div(out, mean, norm);
}

void ft_text_direction_clear(ft_text_direction *cache)
{
    if (!cache)
        return;
    free(cache->source);
    free(cache->target);
    free(cache->direction);
    memset(cache, 0, sizeof *cache);
}

static int cache_fill(ft_text_direction *cache, const nn_clip *clip,
                      nn_tokenizer *tokenizer, const char *source, const char *target)
{
    ft_text_direction_clear(cache);
    int64_t dim = nn_clip_get_config(clip)->embed_dim;
    cache->source = strdup(source);
    cache->target = strdup(target);
    cache->direction = malloc((size_t)dim * sizeof *cache->direction);
    if (!cache->source || !cache->target || !cache->direction)
        return dci_err(DC_ENOMEM, "out of memory for a text direction");
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    ct_tensor *direction = NULL;
    size_t mark = ct_pool_begin();
    int st = compute_direction(&direction, clip, tokenizer, source, target);
    if (st == DC_OK)
        st = ct_to_host(direction, cache->direction, (size_t)dim * sizeof *cache->direction);
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(no_grad);
    DCI_TRY(st);
    cache->clip = clip;
    cache->dim = dim;
    return DC_OK;
}

int ft_text_direction_get(ft_text_direction *cache, const nn_clip *clip,
                          nn_tokenizer *tokenizer, const char *source,
                          const char *target, ct_tensor **direction)
{
    *direction = NULL;
    if (!cache || !clip || !tokenizer || !source || !target)
        return dci_err(DC_EINVAL, "text direction: NULL argument");
    int hit = cache->clip == clip && cache->direction && strcmp(cache->source, source) == 0 &&
              strcmp(cache->target, target) == 0;
    if (!hit) {
        int st = cache_fill(cache, clip, tokenizer, source, target);
        if (st != DC_OK) {
            ft_text_direction_clear(cache);
            return st;
        }
    }
    return ct_from_host(direction, cache->direction, DC_FLOAT32, 2, NN_SHAPE(1, cache->dim),
                        nn_clip_device(clip));
}

/* ---------------------------------------------------------------------------------------
 * Directional CLIP loss
 * ------------------------------------------------------------------------------------- */

/* encode_image(preprocess(x)), L2-normalised rows */
static int image_features(ct_tensor **out, const nn_clip *clip, const ct_tensor *x)
{
    ct_tensor *pre, *features, *norm;
    DCI_TRY(nn_clip_preprocess(clip, x, &pre));
    DCI_TRY(nn_clip_encode_image(clip, pre, &features));
    DCI_TRY(ct_norm_dim(&norm, features, -1, 1));
    return ct_div(out, features, norm);
}

static int source_features(ct_tensor **out, const nn_clip *clip, const ct_tensor *x_src)
{
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    int st = image_features(out, clip, x_src);
    ct_scope_end(no_grad);
    return st;
}

typedef struct direction_loss_args {
    const nn_clip *clip;
    const ct_tensor *x_src, *direction;
} direction_loss_args;

static int direction_loss(ct_tensor **out, const void *args, const ct_tensor *x_gen)
{
    const direction_loss_args *a = args;
    ct_tensor *e_src, *e_gen, *d, *norm, *norm_eps, *unit, *cos, *neg, *one_minus;
    DCI_TRY(source_features(&e_src, a->clip, a->x_src));
    DCI_TRY(image_features(&e_gen, a->clip, x_gen));
    DCI_TRY(ct_sub(&d, e_gen, e_src));
    DCI_TRY(ct_norm_dim(&norm, d, -1, 1));
    DCI_TRY(ct_add_scalar(&norm_eps, norm, DIRECTION_NORM_EPS));
    DCI_TRY(ct_div(&unit, d, norm_eps));
    DCI_TRY(ct_cosine_similarity(&cos, unit, a->direction, 1, COSINE_EPS));
    DCI_TRY(ct_neg(&neg, cos));
    DCI_TRY(ct_add_scalar(&one_minus, neg, 1.0));
    return ct_mean(out, one_minus);
}

int ft_clip_direction_loss(const nn_clip *clip, const ct_tensor *x_src, const ct_tensor *x_gen,
                           const ct_tensor *direction, ct_tensor **l_dir)
{
    *l_dir = NULL;
    int64_t dim = nn_clip_get_config(clip)->embed_dim;
    if (ct_ndim(direction) != 2 || ct_size(direction, 0) != 1 || ct_size(direction, 1) != dim)
        return dci_err(DC_EINVAL, "CLIP loss: the text direction must be (1, %lld)",
                       (long long)dim);
    if (ct_ndim(x_src) != 4 || ct_ndim(x_gen) != 4 || ct_size(x_src, 0) != ct_size(x_gen, 0))
        return dci_err(DC_EINVAL, "CLIP loss: source and generated images must be (N, 3, H, "
                                  "W) batches of the same size");
    direction_loss_args args = {clip, x_src, direction};
    return nn_run_pooled(l_dir, &args, x_gen, direction_loss);
}

static int log_form(ct_tensor **out, const void *unused, const ct_tensor *l_dir)
{
    ct_tensor *neg, *two_minus, *half, *log;
    DCI_TRY(ct_neg(&neg, l_dir));
    DCI_TRY(ct_add_scalar(&two_minus, neg, 2.0));
    DCI_TRY(ct_mul_scalar(&half, two_minus, 0.5));
    DCI_TRY(ct_log(&log, half));
    return ct_neg(out, log);
}

int ft_clip_loss_form_apply(ft_clip_loss_form form, const ct_tensor *l_dir, ct_tensor **loss)
{
    switch (form) {
    case FT_CLIP_LOSS_LOG: return nn_run_pooled(loss, NULL, l_dir, log_form);
    case FT_CLIP_LOSS_DIRECTION: return ct_clone(loss, l_dir);
    }
    *loss = NULL;
    return dci_err(DC_EINVAL, "CLIP loss: unknown form %d", (int)form);
}

/* ---------------------------------------------------------------------------------------
 * L1 and identity
 * ------------------------------------------------------------------------------------- */

static int l1(ct_tensor **out, const void *x0, const ct_tensor *x)
{
    ct_tensor *d, *a;
    DCI_TRY(ct_sub(&d, x0, x));
    DCI_TRY(ct_abs(&a, d));
    return ct_mean(out, a);
}

int ft_l1_loss(const ct_tensor *x0, const ct_tensor *x, ct_tensor **loss)
{
    return nn_run_pooled(loss, x0, x, l1);
}

/* IDLoss crops x[:, :, 35:223, 32:220], the face of a 256 x 256 aligned image. Other sizes get
 * the same box scaled by size / 256 and rounded to the nearest pixel, rows by the height and
 * columns by the width (512: [70:446, 64:440]). */
static int64_t crop_edge(int64_t at_256, int64_t size) { return (at_256 * size + 128) / 256; }

static int id_features(ct_tensor **out, const void *net, const ct_tensor *x)
{
    int64_t h = ct_size(x, 2), w = ct_size(x, 3), side = nn_idnet_input_size(net);
    int64_t top = crop_edge(35, h), bottom = crop_edge(223, h);
    int64_t left = crop_edge(32, w), right = crop_edge(220, w);
    ct_tensor *rows, *face, *pooled;
    DCI_TRY(ct_narrow(&rows, x, 2, top, bottom - top));
    DCI_TRY(ct_narrow(&face, rows, 3, left, right - left));
    DCI_TRY(ct_adaptive_avg_pool2d(&pooled, face, side, side));
    return nn_idnet_forward(net, pooled, out);
}

int ft_id_features(const nn_idnet *net, const ct_tensor *x, ct_tensor **features)
{
    *features = NULL;
    if (ct_ndim(x) != 4 || ct_size(x, 1) != 3 || ct_size(x, 2) < 8 || ct_size(x, 3) < 8)
        return dci_err(DC_EINVAL, "identity loss: expected (N, 3, H, W) images, H, W >= 8");
    return nn_run_pooled(features, net, x, id_features);
}

typedef struct id_loss_args {
    const nn_idnet *net;
    const ct_tensor *x0;
} id_loss_args;

static int id_loss_per_sample(ct_tensor **out, const void *args, const ct_tensor *x_hat)
{
    const id_loss_args *a = args;
    ct_tensor *f0 = NULL, *f_hat, *prod, *dot, *neg;
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    int st = ft_id_features(a->net, a->x0, &f0);
    ct_scope_end(no_grad);
    DCI_TRY(st);
    DCI_TRY(ft_id_features(a->net, x_hat, &f_hat));
    DCI_TRY(ct_mul(&prod, f_hat, f0));
    DCI_TRY(ct_sum_dim(&dot, prod, 1, 0));
    DCI_TRY(ct_neg(&neg, dot));
    return ct_add_scalar(out, neg, 1.0);
}

int ft_id_loss_per_sample(const nn_idnet *net, const ct_tensor *x0, const ct_tensor *x_hat,
                          ct_tensor **losses)
{
    *losses = NULL;
    if (ct_ndim(x0) != 4 || ct_ndim(x_hat) != 4 || ct_size(x0, 0) != ct_size(x_hat, 0))
        return dci_err(DC_EINVAL, "identity loss: source and generated images must be "
                                  "batches of the same size");
    id_loss_args args = {net, x0};
    return nn_run_pooled(losses, &args, x_hat, id_loss_per_sample);
}

static int id_loss_mean(ct_tensor **out, const void *args, const ct_tensor *x_hat)
{
    const id_loss_args *a = args;
    ct_tensor *losses;
    DCI_TRY(ft_id_loss_per_sample(a->net, a->x0, x_hat, &losses));
    return ct_mean(out, losses);
}

int ft_id_loss(const nn_idnet *net, const ct_tensor *x0, const ct_tensor *x_hat,
               ct_tensor **loss)
{
    id_loss_args args = {net, x0};
    return nn_run_pooled(loss, &args, x_hat, id_loss_mean);
}
