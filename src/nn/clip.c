/* CLIP as clip/model.py computes it. The transformers run batch-first (N, L, W) instead of
 * CLIP's (L, N, W): the same arithmetic without the two transposes. */
#include "clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "params.h"

#define LAYER_NORM_EPS 1e-5

typedef struct clip_block {
    ct_tensor *ln1_w, *ln1_b, *in_w, *in_b, *out_w, *out_b;
    ct_tensor *ln2_w, *ln2_b, *fc_w, *fc_b, *proj_w, *proj_b;
} clip_block;

typedef struct clip_transformer {
    int64_t width, heads, layers;
    clip_block *blocks;
} clip_transformer;

typedef struct clip_bottleneck {
    int stride;
    ct_tensor *conv1, *conv2, *conv3, *down_conv; /* down_conv NULL: identity shortcut */
    nn_batch_norm bn1, bn2, bn3, down_bn;
} clip_bottleneck;

struct nn_clip {
    nn_clip_config config;
    int device;
    dc_dtype dtype;
    nn_weights weights;

    /* ViT */
    ct_tensor *conv1, *class_embedding, *vision_pos, *ln_pre_w, *ln_pre_b, *ln_post_w,
        *ln_post_b, *proj;
    clip_transformer vision;

    /* ModifiedResNet */
    ct_tensor *stem_conv[3];
    nn_batch_norm stem_bn[3];
    clip_bottleneck *stages[4];
    ct_tensor *pool_pos, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *c_w, *c_b;

    /* text */
    ct_tensor *token_embedding, *text_pos, *ln_final_w, *ln_final_b, *text_projection,
        *causal_mask;
    clip_transformer text;
};

/* ---------------------------------------------------------------------------------------
 * Hyper-parameters (build_model)
 * ------------------------------------------------------------------------------------- */

static int64_t dim_of(const dc_tensor *t, int dim) { return dim < t->ndim ? t->shape[dim] : -1; }

/* round(sqrt(n)) when that squares back to n, else -1. */
static int64_t exact_sqrt(int64_t n)
{
    if (n <= 0)
        return -1;
    int64_t r = (int64_t)llround(sqrt((double)n));
    return r * r == n ? r : -1;
}

/* build_model's head counts make 64-wide heads: width // 64. */
static int heads_for(int64_t width, const char *label, const char *what, int64_t *heads)
{
    *heads = width / 64;
    if (*heads < 1 || width % *heads != 0)
        return dci_err(DC_EFORMAT, "%s: %s width %lld gives no valid head count", label, what,
                       (long long)width);
    return DC_OK;
}

static int infer_vit(const io_state_dict *sd, const char *label, nn_clip_config *c)
{
    const dc_tensor *conv1 = nn_sd_find(sd, "visual.conv1.weight");
    const dc_tensor *pos = nn_sd_find(sd, "visual.positional_embedding");
    if (!conv1 || conv1->ndim != 4 || !pos || pos->ndim != 2)
        return dci_err(DC_EFORMAT, "%s: ViT CLIP without a 4-d visual.conv1.weight and a 2-d "
                                   "visual.positional_embedding", label);
    c->vision = NN_CLIP_VIT;
    c->vision_width = conv1->shape[0];
    c->patch = conv1->shape[3];
    c->vision_layers[0] = nn_sd_count(sd, "visual.transformer.resblocks.%d.attn.in_proj_weight");
    c->grid = exact_sqrt(pos->shape[0] - 1);
    if (c->vision_width < 1 || c->patch < 1 || c->grid < 1 || c->vision_layers[0] < 1)
        return dci_err(DC_EFORMAT, "%s: ViT CLIP with width %lld, patch %lld, %lld layers and "
                                   "%lld positions", label, (long long)c->vision_width,
                       (long long)c->patch, (long long)c->vision_layers[0],
                       (long long)pos->shape[0]);
    c->resolution = c->patch * c->grid;
    return heads_for(c->vision_width, label, "vision", &c->vision_heads);
}

static int infer_resnet(const io_state_dict *sd, const char *label, nn_clip_config *c)
{
    const dc_tensor *first = nn_sd_find(sd, "visual.layer1.0.conv1.weight");
    const dc_tensor *pos = nn_sd_find(sd, "visual.attnpool.positional_embedding");
    if (!first || first->ndim != 4 || !pos || pos->ndim != 2)
        return dci_err(DC_EFORMAT, "%s: neither visual.proj (ViT) nor visual.layer1.0.conv1 and "
                                   "visual.attnpool.positional_embedding (ResNet) found", label);
    c->vision = NN_CLIP_RESNET;
    c->vision_width = first->shape[0];
    static const char *const stage_fmt[4] = {
        "visual.layer1.%d.conv1.weight", "visual.layer2.%d.conv1.weight",
        "visual.layer3.%d.conv1.weight", "visual.layer4.%d.conv1.weight"};
    for (int s = 0; s < 4; s++)
        if ((c->vision_layers[s] = nn_sd_count(sd, stage_fmt[s])) < 1)
            return dci_err(DC_EFORMAT, "%s: ResNet CLIP without visual.layer%d.0", label, s + 1);
    c->grid = exact_sqrt(pos->shape[0] - 1);
    c->patch = 32;
    if (c->vision_width < 2 || c->vision_width % 2 || c->grid < 1)
        return dci_err(DC_EFORMAT, "%s: ResNet CLIP with width %lld and %lld pooled positions",
                       label, (long long)c->vision_width, (long long)pos->shape[0]);
    c->resolution = 32 * c->grid;
    /* heads = width * 32 // 64 over an embedding of width * 32 */
    return heads_for(c->vision_width * 32, label, "attention pool", &c->vision_heads);
}

static int infer_config(const io_state_dict *sd, const char *label, nn_clip_config *c)
{
    memset(c, 0, sizeof *c);
    DCI_TRY(nn_sd_find(sd, "visual.proj") ? infer_vit(sd, label, c) : infer_resnet(sd, label, c));
    const dc_tensor *proj = nn_sd_find(sd, "text_projection");
    const dc_tensor *pos = nn_sd_find(sd, "positional_embedding");
    const dc_tensor *tok = nn_sd_find(sd, "token_embedding.weight");
    const dc_tensor *ln = nn_sd_find(sd, "ln_final.weight");
    if (!proj || !pos || !tok || !ln)
        return dci_err(DC_EFORMAT, "%s: CLIP text tower incomplete (text_projection, "
                                   "positional_embedding, token_embedding.weight, "
                                   "ln_final.weight)", label);
    c->embed_dim = dim_of(proj, 1);
    c->context_length = dim_of(pos, 0);
    c->vocab_size = dim_of(tok, 0);
    c->text_width = dim_of(ln, 0);
    c->text_layers = nn_sd_count(sd, "transformer.resblocks.%d.attn.in_proj_weight");
    if (c->embed_dim < 1 || c->context_length < 1 || c->vocab_size < 1 || c->text_width < 1 ||
        c->text_layers < 1)
        return dci_err(DC_EFORMAT, "%s: CLIP text tower with embed dim %lld, context %lld, "
                                   "vocabulary %lld, width %lld, %lld layers", label,
                       (long long)c->embed_dim, (long long)c->context_length,
                       (long long)c->vocab_size, (long long)c->text_width,
                       (long long)c->text_layers);
    return heads_for(c->text_width, label, "text", &c->text_heads);
}

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

#define SHAPE NN_SHAPE
#define LOAD NN_LOAD

static int load_transformer(const nn_loader *ld, dc_dtype dtype, const char *prefix,
                            clip_transformer *tr)
{
    tr->blocks = calloc((size_t)tr->layers, sizeof *tr->blocks);
    if (!tr->blocks)
        return dci_err(DC_ENOMEM, "%s: out of memory for %lld blocks", ld->label,
                       (long long)tr->layers);
    int64_t d = tr->width;
    for (int i = 0; i < (int)tr->layers; i++) {
        clip_block *b = &tr->blocks[i];
        DCI_TRY(LOAD(ld, DC_FLOAT32, &b->ln1_w, (d), "%sresblocks.%d.ln_1.weight", prefix, i));
        DCI_TRY(LOAD(ld, DC_FLOAT32, &b->ln1_b, (d), "%sresblocks.%d.ln_1.bias", prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->in_w, (3 * d, d), "%sresblocks.%d.attn.in_proj_weight",
                     prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->in_b, (3 * d), "%sresblocks.%d.attn.in_proj_bias", prefix,
                     i));
        DCI_TRY(LOAD(ld, dtype, &b->out_w, (d, d), "%sresblocks.%d.attn.out_proj.weight",
                     prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->out_b, (d), "%sresblocks.%d.attn.out_proj.bias", prefix,
                     i));
        DCI_TRY(LOAD(ld, DC_FLOAT32, &b->ln2_w, (d), "%sresblocks.%d.ln_2.weight", prefix, i));
        DCI_TRY(LOAD(ld, DC_FLOAT32, &b->ln2_b, (d), "%sresblocks.%d.ln_2.bias", prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->fc_w, (4 * d, d), "%sresblocks.%d.mlp.c_fc.weight", prefix,
                     i));
        DCI_TRY(LOAD(ld, dtype, &b->fc_b, (4 * d), "%sresblocks.%d.mlp.c_fc.bias", prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->proj_w, (d, 4 * d), "%sresblocks.%d.mlp.c_proj.weight",
                     prefix, i));
        DCI_TRY(LOAD(ld, dtype, &b->proj_b, (d), "%sresblocks.%d.mlp.c_proj.bias", prefix, i));
    }
    return DC_OK;
}

static int load_vit(nn_clip *clip, const nn_loader *ld)
{
    const nn_clip_config *c = &clip->config;
    int64_t w = c->vision_width;
    dc_dtype dt = clip->dtype;
    DCI_TRY(LOAD(ld, dt, &clip->conv1, (w, 3, c->patch, c->patch), "visual.conv1.weight"));
    DCI_TRY(LOAD(ld, dt, &clip->class_embedding, (w), "visual.class_embedding"));
    DCI_TRY(LOAD(ld, dt, &clip->vision_pos, (c->grid * c->grid + 1, w),
                 "visual.positional_embedding"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_pre_w, (w), "visual.ln_pre.weight"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_pre_b, (w), "visual.ln_pre.bias"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_post_w, (w), "visual.ln_post.weight"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_post_b, (w), "visual.ln_post.bias"));
    DCI_TRY(LOAD(ld, dt, &clip->proj, (w, c->embed_dim), "visual.proj"));
    clip->vision = (clip_transformer){w, c->vision_heads, c->vision_layers[0], NULL};
    return load_transformer(ld, clip->dtype, "visual.transformer.", &clip->vision);
}

static int load_resnet(nn_clip *clip, const nn_loader *ld)
{
    const nn_clip_config *c = &clip->config;
    dc_dtype dt = clip->dtype;
    int64_t w = c->vision_width;
    const int64_t stem_in[3] = {3, w / 2, w / 2}, stem_out[3] = {w / 2, w / 2, w};
    for (int i = 0; i < 3; i++) {
        char name[32];
        DCI_TRY(LOAD(ld, dt, &clip->stem_conv[i], (stem_out[i], stem_in[i], 3, 3),
                     "visual.conv%d.weight", i + 1));
        snprintf(name, sizeof name, "visual.bn%d", i + 1);
        DCI_TRY(nn_load_batch_norm(ld, &clip->stem_bn[i], stem_out[i], name));
    }
    int64_t inplanes = w;
    for (int s = 0; s < 4; s++) {
        int64_t planes = w << s;
        clip->stages[s] = calloc((size_t)c->vision_layers[s], sizeof *clip->stages[s]);
        if (!clip->stages[s])
            return dci_err(DC_ENOMEM, "%s: out of memory for ResNet blocks", ld->label);
        for (int i = 0; i < (int)c->vision_layers[s]; i++) {
            clip_bottleneck *b = &clip->stages[s][i];
            char name[64];
            b->stride = (s > 0 && i == 0) ? 2 : 1;
            DCI_TRY(LOAD(ld, dt, &b->conv1, (planes, inplanes, 1, 1),
                         "visual.layer%d.%d.conv1.weight", s + 1, i));
            DCI_TRY(LOAD(ld, dt, &b->conv2, (planes, planes, 3, 3),
                         "visual.layer%d.%d.conv2.weight", s + 1, i));
            DCI_TRY(LOAD(ld, dt, &b->conv3, (4 * planes, planes, 1, 1),
                         "visual.layer%d.%d.conv3.weight", s + 1, i));
            for (int k = 0; k < 3; k++) {
                snprintf(name, sizeof name, "visual.layer%d.%d.bn%d", s + 1, i, k + 1);
                nn_batch_norm *bn = k == 0 ? &b->bn1 : k == 1 ? &b->bn2 : &b->bn3;
                DCI_TRY(nn_load_batch_norm(ld, bn, k == 2 ? 4 * planes : planes, name));
            }
            if (b->stride > 1 || inplanes != 4 * planes) {
                DCI_TRY(LOAD(ld, dt, &b->down_conv, (4 * planes, inplanes, 1, 1),
                             "visual.layer%d.%d.downsample.0.weight", s + 1, i));
                snprintf(name, sizeof name, "visual.layer%d.%d.downsample.1", s + 1, i);
                DCI_TRY(nn_load_batch_norm(ld, &b->down_bn, 4 * planes, name));
            }
            inplanes = 4 * planes;
        }
    }
    int64_t e = 32 * w;
    DCI_TRY(LOAD(ld, dt, &clip->pool_pos, (c->grid * c->grid + 1, e),
                 "visual.attnpool.positional_embedding"));
    DCI_TRY(LOAD(ld, dt, &clip->q_w, (e, e), "visual.attnpool.q_proj.weight"));
    DCI_TRY(LOAD(ld, dt, &clip->q_b, (e), "visual.attnpool.q_proj.bias"));
    DCI_TRY(LOAD(ld, dt, &clip->k_w, (e, e), "visual.attnpool.k_proj.weight"));
    DCI_TRY(LOAD(ld, dt, &clip->k_b, (e), "visual.attnpool.k_proj.bias"));
    DCI_TRY(LOAD(ld, dt, &clip->v_w, (e, e), "visual.attnpool.v_proj.weight"));
    DCI_TRY(LOAD(ld, dt, &clip->v_b, (e), "visual.attnpool.v_proj.bias"));
    DCI_TRY(LOAD(ld, dt, &clip->c_w, (c->embed_dim, e), "visual.attnpool.c_proj.weight"));
    return LOAD(ld, dt, &clip->c_b, (c->embed_dim), "visual.attnpool.c_proj.bias");
}

/* Additive mask: -inf above the diagonal, so position i attends to positions <= i. */
static int make_causal_mask(nn_clip *clip)
{
    int64_t n = clip->config.context_length;
    if ((uint64_t)n > 4096)
        return dci_err(DC_EFORMAT, "CLIP context length %lld is too long", (long long)n);
    float *mask = malloc((size_t)(n * n) * sizeof *mask);
    if (!mask)
        return dci_err(DC_ENOMEM, "out of memory for the causal mask");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            mask[i * n + j] = j > i ? -INFINITY : 0.0f;
    ct_tensor *host = NULL, *cast = NULL;
    int st = ct_from_host(&host, mask, DC_FLOAT32, 2, SHAPE(n, n), clip->device);
    free(mask);
    if (st == DC_OK && clip->dtype != DC_FLOAT32) {
        st = ct_to(&cast, host, clip->dtype, clip->device);
        ct_free(host);
        host = cast;
    }
    if (st != DC_OK) {
        ct_free(host);
        return st;
    }
    clip->causal_mask = host;
    return nn_weights_add(&clip->weights, host);
}

static int load_text(nn_clip *clip, const nn_loader *ld)
{
    const nn_clip_config *c = &clip->config;
    dc_dtype dt = clip->dtype;
    int64_t w = c->text_width;
    DCI_TRY(LOAD(ld, dt, &clip->token_embedding, (c->vocab_size, w), "token_embedding.weight"));
    DCI_TRY(LOAD(ld, dt, &clip->text_pos, (c->context_length, w), "positional_embedding"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_final_w, (w), "ln_final.weight"));
    DCI_TRY(LOAD(ld, DC_FLOAT32, &clip->ln_final_b, (w), "ln_final.bias"));
    DCI_TRY(LOAD(ld, dt, &clip->text_projection, (w, c->embed_dim), "text_projection"));
    clip->text = (clip_transformer){w, c->text_heads, c->text_layers, NULL};
    DCI_TRY(load_transformer(ld, dt, "transformer.", &clip->text));
    return make_causal_mask(clip);
}

int nn_clip_load(nn_clip **out, const io_state_dict *sd, const char *label, int device,
                 dc_dtype dtype)
{
    *out = NULL;
    DCI_TRY(nn_check_no_pool(label));
    if (dtype != DC_FLOAT32 && !(dtype == DC_FLOAT16 && device >= 0))
        return dci_err(DC_EINVAL, "%s: CLIP computes in float32, or float16 on CUDA", label);
    nn_clip *clip = calloc(1, sizeof *clip);
    if (!clip)
        return dci_err(DC_ENOMEM, "out of memory for a CLIP model");
    clip->device = device;
    clip->dtype = dtype;
    nn_loader ld = {sd, label, device, &clip->weights};
    int st = infer_config(sd, label, &clip->config);
    if (st == DC_OK)
        st = clip->config.vision == NN_CLIP_VIT ? load_vit(clip, &ld) : load_resnet(clip, &ld);
    if (st == DC_OK)
        st = load_text(clip, &ld);
    if (st != DC_OK) {
        nn_clip_free(clip);
        return st;
    }
    *out = clip;
    return DC_OK;
}

void nn_clip_free(nn_clip *clip)
{
    if (!clip)
        return;
    nn_weights_free(&clip->weights);
    free(clip->vision.blocks);
    free(clip->text.blocks);
    for (int s = 0; s < 4; s++)
        free(clip->stages[s]);
    free(clip);
}

const nn_clip_config *nn_clip_get_config(const nn_clip *clip) { return &clip->config; }

int nn_clip_device(const nn_clip *clip) { return clip->device; }

/* ---------------------------------------------------------------------------------------
 * Forward. Every function here runs inside a pool opened by its public caller, so
 * intermediate handles need no frees.
 * ------------------------------------------------------------------------------------- */

/* Normalisation in float32, cast back to x's dtype, as CLIP's LayerNorm subclass does (and
 * the mixed-precision batch norm of a float16 ResNet). */
static int layer_norm(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                      const ct_tensor *b)
{
    dc_dtype dtype = ct_dtype(x);
    if (dtype == DC_FLOAT32)
        return ct_layer_norm(out, x, w, b, LAYER_NORM_EPS);
    ct_tensor *x32, *y;
    DCI_TRY(ct_to(&x32, x, DC_FLOAT32, ct_device(x)));
    DCI_TRY(ct_layer_norm(&y, x32, w, b, LAYER_NORM_EPS));
    return ct_to(out, y, dtype, ct_device(x));
}

static int batch_norm(ct_tensor **out, const ct_tensor *x, const nn_batch_norm *bn)
{
    dc_dtype dtype = ct_dtype(x);
    if (dtype == DC_FLOAT32)
        return nn_batch_norm_forward(out, x, bn);
    ct_tensor *x32, *y;
    DCI_TRY(ct_to(&x32, x, DC_FLOAT32, ct_device(x)));
    DCI_TRY(nn_batch_norm_forward(&y, x32, bn));
    return ct_to(out, y, dtype, ct_device(x));
}

/* (N, L, H*D) -> (N, H, L, D) */
static int split_heads(ct_tensor **out, const ct_tensor *x, int64_t heads)
{
    ct_tensor *r;
    int64_t n = ct_size(x, 0), l = ct_size(x, 1), e = ct_size(x, 2);
    DCI_TRY(ct_reshape(&r, x, 4, SHAPE(n, l, heads, e / heads)));
    return ct_permute(out, r, 4, SHAPE(0, 2, 1, 3));
}

/* nn.MultiheadAttention after the input projections: q (N, Lq, E), k and v (N, L, E), with
 * q scaled by head_dim^-1/2 and an optional additive (Lq, L) mask -> (N, Lq, E). */
static int attention(ct_tensor **out, const ct_tensor *q, const ct_tensor *k,
                     const ct_tensor *v, int64_t heads, const ct_tensor *mask)
{
    int64_t n = ct_size(q, 0), lq = ct_size(q, 1), e = ct_size(q, 2);
    ct_tensor *qh, *kh, *vh, *qs, *kt, *scores, *masked, *probs, *ctx, *merged;
    DCI_TRY(split_heads(&qh, q, heads));
    DCI_TRY(split_heads(&kh, k, heads));
    DCI_TRY(split_heads(&vh, v, heads));
    DCI_TRY(ct_mul_scalar(&qs, qh, 1.0 / sqrt((double)(e / heads))));
    DCI_TRY(ct_transpose(&kt, kh, -2, -1));
    DCI_TRY(ct_matmul(&scores, qs, kt));
    if (mask) {
        DCI_TRY(ct_add(&masked, scores, mask));
        scores = masked;
    }
    DCI_TRY(ct_softmax(&probs, scores, -1));
    DCI_TRY(ct_matmul(&ctx, probs, vh));
    DCI_TRY(ct_permute(&merged, ctx, 4, SHAPE(0, 2, 1, 3)));
    return ct_reshape(out, merged, 3, SHAPE(n, lq, e));
}

/* x += attn(ln_1(x)); x += mlp(ln_2(x)) */
static int block_forward(ct_tensor **out, const clip_block *b, int64_t heads,
                         const ct_tensor *x, const ct_tensor *mask)
{
    int64_t d = ct_size(x, 2);
    ct_tensor *h, *qkv, *q, *k, *v, *a, *ao, *x1, *h2, *f, *g, *m;
    DCI_TRY(layer_norm(&h, x, b->ln1_w, b->ln1_b));
    DCI_TRY(ct_linear(&qkv, h, b->in_w, b->in_b));
    DCI_TRY(ct_narrow(&q, qkv, 2, 0, d));
    DCI_TRY(ct_narrow(&k, qkv, 2, d, d));
    DCI_TRY(ct_narrow(&v, qkv, 2, 2 * d, d));
    DCI_TRY(attention(&a, q, k, v, heads, mask));
    DCI_TRY(ct_linear(&ao, a, b->out_w, b->out_b));
    DCI_TRY(ct_add(&x1, x, ao));
    DCI_TRY(layer_norm(&h2, x1, b->ln2_w, b->ln2_b));
    DCI_TRY(ct_linear(&f, h2, b->fc_w, b->fc_b));
    DCI_TRY(ct_quick_gelu(&g, f));
    DCI_TRY(ct_linear(&m, g, b->proj_w, b->proj_b));
    return ct_add(out, x1, m);
}

/* One pool per block keeps no-grad memory to a block's activations. */
static int transformer_forward(ct_tensor **x, const clip_transformer *tr, const ct_tensor *mask)
{
    for (int64_t i = 0; i < tr->layers; i++) {
        ct_tensor *y = NULL;
        size_t mark = ct_pool_begin();
        int st = block_forward(&y, &tr->blocks[i], tr->heads, *x, mask);
        ct_pool_end(mark, &y, st == DC_OK);
        DCI_TRY(st);
        *x = y;
    }
    return DC_OK;
}

static int vit_forward(ct_tensor **out, const nn_clip *clip, const ct_tensor *x)
{
    const nn_clip_config *c = &clip->config;
    int64_t n = ct_size(x, 0), w = c->vision_width, tokens = c->grid * c->grid;
    ct_tensor *p, *flat, *seq, *cls, *cls_n, *all, *pos, *h, *cls_out, *cls_row, *normed;
    DCI_TRY(ct_conv2d(&p, x, clip->conv1, NULL, (int)c->patch, 0));
    DCI_TRY(ct_reshape(&flat, p, 3, SHAPE(n, w, tokens)));
    DCI_TRY(ct_permute(&seq, flat, 3, SHAPE(0, 2, 1)));
    DCI_TRY(ct_reshape(&cls, clip->class_embedding, 3, SHAPE(1, 1, w)));
    DCI_TRY(ct_expand(&cls_n, cls, 3, SHAPE(n, 1, w)));
    ct_tensor *parts[2] = {cls_n, seq};
    DCI_TRY(ct_cat(&all, parts, 2, 1));
    DCI_TRY(ct_add(&pos, all, clip->vision_pos));
    DCI_TRY(layer_norm(&h, pos, clip->ln_pre_w, clip->ln_pre_b));
    DCI_TRY(transformer_forward(&h, &clip->vision, NULL));
    DCI_TRY(ct_narrow(&cls_out, h, 1, 0, 1));
    DCI_TRY(ct_reshape(&cls_row, cls_out, 2, SHAPE(n, w)));
    DCI_TRY(layer_norm(&normed, cls_row, clip->ln_post_w, clip->ln_post_b));
    return ct_matmul(out, normed, clip->proj);
}

static int conv_bn(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                   const nn_batch_norm *bn, int padding, int relu)
{
    ct_tensor *c, *b;
    DCI_TRY(ct_conv2d(&c, x, w, NULL, 1, padding));
    if (!relu)
        return batch_norm(out, c, bn);
    DCI_TRY(batch_norm(&b, c, bn));
    return ct_relu(out, b);
}

static int bottleneck_forward(ct_tensor **out, const clip_bottleneck *b, const ct_tensor *x)
{
    ct_tensor *h1, *h2, *h3, *identity = (ct_tensor *)x, *sum;
    DCI_TRY(conv_bn(&h1, x, b->conv1, &b->bn1, 0, 1));
    DCI_TRY(conv_bn(&h2, h1, b->conv2, &b->bn2, 1, 1));
    if (b->stride > 1)
        DCI_TRY(ct_avg_pool2d(&h2, h2, b->stride, b->stride));
    DCI_TRY(conv_bn(&h3, h2, b->conv3, &b->bn3, 0, 0));
    if (b->down_conv) {
        ct_tensor *pooled = (ct_tensor *)x;
        if (b->stride > 1)
            DCI_TRY(ct_avg_pool2d(&pooled, x, b->stride, b->stride));
        DCI_TRY(conv_bn(&identity, pooled, b->down_conv, &b->down_bn, 0, 0));
    }
    DCI_TRY(ct_add(&sum, h3, identity));
    return ct_relu(out, sum);
}

/* AttentionPool2d: the mean token queries the flattened grid (plus itself). */
static int attention_pool(ct_tensor **out, const nn_clip *clip, const ct_tensor *x)
{
    int64_t n = ct_size(x, 0);
    ct_tensor *flat, *seq, *mean, *all, *pos, *first, *q, *k, *v, *a, *o;
    DCI_TRY(ct_flatten(&flat, x, 2, 3));
    DCI_TRY(ct_permute(&seq, flat, 3, SHAPE(0, 2, 1)));
    DCI_TRY(ct_mean_dim(&mean, seq, 1, 1));
    ct_tensor *parts[2] = {mean, seq};
    DCI_TRY(ct_cat(&all, parts, 2, 1));
    DCI_TRY(ct_add(&pos, all, clip->pool_pos));
    DCI_TRY(ct_narrow(&first, pos, 1, 0, 1));
    DCI_TRY(ct_linear(&q, first, clip->q_w, clip->q_b));
    DCI_TRY(ct_linear(&k, pos, clip->k_w, clip->k_b));
    DCI_TRY(ct_linear(&v, pos, clip->v_w, clip->v_b));
    DCI_TRY(attention(&a, q, k, v, clip->config.vision_heads, NULL));
    DCI_TRY(ct_linear(&o, a, clip->c_w, clip->c_b));
    return ct_reshape(out, o, 2, SHAPE(n, clip->config.embed_dim));
}

static int resnet_forward(ct_tensor **out, const nn_clip *clip, const ct_tensor *x)
{
    ct_tensor *h = (ct_tensor *)x, *c, *b;
    for (int i = 0; i < 3; i++) {
        DCI_TRY(ct_conv2d(&c, h, clip->stem_conv[i], NULL, i == 0 ? 2 : 1, 1));
        DCI_TRY(batch_norm(&b, c, &clip->stem_bn[i]));
        DCI_TRY(ct_relu(&h, b));
    }
    DCI_TRY(ct_avg_pool2d(&h, h, 2, 2));
    for (int s = 0; s < 4; s++)
        for (int64_t i = 0; i < clip->config.vision_layers[s]; i++) {
            ct_tensor *y = NULL;
            size_t mark = ct_pool_begin();
            int st = bottleneck_forward(&y, &clip->stages[s][i], h);
            ct_pool_end(mark, &y, st == DC_OK);
            DCI_TRY(st);
            h = y;
        }
    return attention_pool(out, clip, h);
}

static int is_float_dtype(dc_dtype d)
{
    return d == DC_FLOAT32 || d == DC_FLOAT16 || d == DC_BFLOAT16 || d == DC_FLOAT64;
}

static int encode_image(ct_tensor **out, const void *net, const ct_tensor *x)
{
    const nn_clip *clip = net;
    const nn_clip_config *c = &clip->config;
    if (ct_ndim(x) != 4 || ct_size(x, 1) != 3 || ct_size(x, 2) != c->resolution ||
        ct_size(x, 3) != c->resolution || ct_size(x, 0) < 1 || !is_float_dtype(ct_dtype(x)))
        return dci_err(DC_EINVAL, "CLIP encode_image: expected a floating-point (N, 3, %lld, "
                                  "%lld) tensor", (long long)c->resolution,
                       (long long)c->resolution);
    ct_tensor *xin, *f;
    DCI_TRY(ct_to(&xin, x, clip->dtype, clip->device));
    DCI_TRY(c->vision == NN_CLIP_VIT ? vit_forward(&f, clip, xin)
                                     : resnet_forward(&f, clip, xin));
    return ct_to(out, f, DC_FLOAT32, clip->device);
}

/* Token ids are checked on the host: an out-of-range id would index past the embedding. */
static int check_tokens(const nn_clip *clip, const ct_tensor *tokens)
{
    const nn_clip_config *c = &clip->config;
    dc_dtype dt = ct_dtype(tokens);
    if (ct_ndim(tokens) != 2 || ct_size(tokens, 1) != c->context_length ||
        ct_size(tokens, 0) < 1 || (dt != DC_INT64 && dt != DC_INT32))
        return dci_err(DC_EINVAL, "CLIP encode_text: expected int64 or int32 tokens (N, %lld)",
                       (long long)c->context_length);
    ct_tensor *host;
    DCI_TRY(ct_to(&host, tokens, DC_INT64, CT_CPU));
    size_t count = (size_t)ct_numel(host);
    int64_t *ids = malloc(count * sizeof *ids);
    if (!ids)
        return dci_err(DC_ENOMEM, "out of memory for %zu tokens", count);
    int st = ct_to_host(host, ids, count * sizeof *ids);
    for (size_t i = 0; st == DC_OK && i < count; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            st = dci_err(DC_EINVAL, "CLIP encode_text: token %lld outside the vocabulary of "
                                    "%lld", (long long)ids[i], (long long)c->vocab_size);
    free(ids);
    return st;
}

static int encode_text(ct_tensor **out, const void *net, const ct_tensor *tokens)
{
    const nn_clip *clip = net;
    const nn_clip_config *c = &clip->config;
    DCI_TRY(check_tokens(clip, tokens));
    int64_t n = ct_size(tokens, 0), l = c->context_length, w = c->text_width;
    ct_tensor *ids, *flat, *emb, *seq, *h, *normed, *eot, *rows, *f;
    DCI_TRY(ct_to(&ids, tokens, DC_INT64, clip->device));
    DCI_TRY(ct_reshape(&flat, ids, 1, SHAPE(n * l)));
    DCI_TRY(ct_index_select(&emb, clip->token_embedding, 0, flat));
    DCI_TRY(ct_reshape(&seq, emb, 3, SHAPE(n, l, w)));
    DCI_TRY(ct_add(&h, seq, clip->text_pos));
    DCI_TRY(transformer_forward(&h, &clip->text, clip->causal_mask));
    DCI_TRY(layer_norm(&normed, h, clip->ln_final_w, clip->ln_final_b));
    DCI_TRY(ct_argmax_dim(&eot, ids, -1, 0));
    DCI_TRY(ct_gather_rows(&rows, normed, eot));
    DCI_TRY(ct_matmul(&f, rows, clip->text_projection));
    return ct_to(out, f, DC_FLOAT32, clip->device);
}

int nn_clip_encode_image(const nn_clip *clip, const ct_tensor *x, ct_tensor **features)
{
    return nn_run_pooled(features, clip, x, encode_image);
}

int nn_clip_encode_text(const nn_clip *clip, const ct_tensor *tokens, ct_tensor **features)
{
    return nn_run_pooled(features, clip, tokens, encode_text);
}

/* ---------------------------------------------------------------------------------------
 * DiffusionCLIP preprocessing
 * ------------------------------------------------------------------------------------- */

const float nn_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float nn_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* torchvision's centre-crop offset int(round((size - crop) / 2.0)): Python rounds halves to
 * even. */
static int64_t crop_offset(int64_t size, int64_t crop)
{
    int64_t d = size - crop, half = d / 2;
    return (d % 2 == 0 || half % 2 == 0) ? half : half + 1;
}

static int preprocess(ct_tensor **out, const void *resolution, const ct_tensor *x)
{
    int64_t r = *(const int64_t *)resolution;
    int64_t h = ct_size(x, 2), w = ct_size(x, 3);
    /* torchvision Resize(r): the shorter side becomes r, the longer int(r * long / short). */
    int64_t short_side = h < w ? h : w, long_side = h < w ? w : h;
    int64_t long_new = (int64_t)((double)(r * long_side) / (double)short_side);
    int64_t nh = h <= w ? r : long_new, nw = h <= w ? long_new : r;
    ct_tensor *shifted, *unit, *resized, *rows, *crop, *mean, *std, *centred;
    DCI_TRY(ct_add_scalar(&shifted, x, 1.0));
    DCI_TRY(ct_mul_scalar(&unit, shifted, 0.5));
    resized = unit;
    if (nh != h || nw != w) /* torchvision returns the image untouched at its size */
        DCI_TRY(ct_resize_bicubic(&resized, unit, nh, nw));
    DCI_TRY(ct_narrow(&rows, resized, 2, crop_offset(nh, r), r));
    DCI_TRY(ct_narrow(&crop, rows, 3, crop_offset(nw, r), r));
    int device = ct_device(x);
    DCI_TRY(ct_from_host(&mean, nn_clip_mean, DC_FLOAT32, 4, SHAPE(1, 3, 1, 1), device));
    DCI_TRY(ct_from_host(&std, nn_clip_std, DC_FLOAT32, 4, SHAPE(1, 3, 1, 1), device));
    DCI_TRY(ct_sub(&centred, crop, mean));
    return ct_div(out, centred, std);
}

int nn_clip_preprocess_to(const ct_tensor *x, int64_t resolution, ct_tensor **out)
{
    *out = NULL;
    if (ct_ndim(x) != 4 || ct_size(x, 1) != 3 || ct_size(x, 0) < 1 || ct_size(x, 2) < 1 ||
        ct_size(x, 3) < 1 || ct_dtype(x) != DC_FLOAT32)
        return dci_err(DC_EINVAL, "CLIP preprocess: expected a float32 (N, 3, H, W) image");
    if (resolution < 1 || resolution > 16384)
        return dci_err(DC_EINVAL, "CLIP preprocess: resolution %lld out of range",
                       (long long)resolution);
    return nn_run_pooled(out, &resolution, x, preprocess);
}

int nn_clip_preprocess(const nn_clip *clip, const ct_tensor *x, ct_tensor **out)
{
    return nn_clip_preprocess_to(x, clip->config.resolution, out);
}
