/* guided-diffusion's UNetModel as DiffusionCLIP builds it (models/improved_ddpm/unet.py;
 * REFERENCE §2.2): scale-shift norm, resampling res blocks, QKVAttentionLegacy. */
#include <math.h>
#include <stdlib.h>

#include "../core/error.h"
#include "unet_internal.h"

#define ADM_GN_EPS 1e-5
#define ADM_MAX_RES_BLOCKS 64
#define ADM_MAX_BLOCKS (NN_UNET_MAX_LEVELS * (ADM_MAX_RES_BLOCKS + 1) + 1)

enum adm_resample { ADM_KEEP = 0, ADM_DOWN = 1, ADM_UP = 2 };

typedef struct adm_resblock {
    unet_affine in_norm, in_conv, emb, out_norm, out_conv;
    unet_affine skip;                /* w NULL: identity */
    int resample;                    /* inside the block, on both branches */
    int64_t out_channels;
} adm_resblock;

typedef struct adm_attn {
    unet_affine norm, qkv, proj_out;
    int heads;
} adm_attn;

/* One TimestepEmbedSequential of input_blocks / output_blocks (block 0, the input conv, is
 * kept apart): [res block] [attention] [resampler: a res block, or a conv when
 * resblock_updown is off]. */
typedef struct adm_block {
    int has_res, has_attn;
    adm_resblock res;
    adm_attn attn;
    int resample;
    int resample_by_conv;
    adm_resblock resample_res;
    unet_affine resample_conv;
} adm_block;

typedef struct adm_net {
    int scale_shift;
    unet_affine time0, time2, conv_in, out_norm, out_conv;
    int n_input, n_output;           /* blocks after the input conv; output blocks */
    adm_block *input, *output;
    adm_resblock mid_res1, mid_res2;
    adm_attn mid_attn;
} adm_net;

void adm_unet_free_net(void *p)
{
    adm_net *net = p;
    free(net->input);
    free(net->output);
    free(net);
}

/* ---- building ---- */

typedef struct adm_shape {
    int64_t emb;                     /* time embedding width */
    int scale_shift;
    int head_channels, num_heads;    /* head_channels 0: num_heads fixed */
} adm_shape;

static int take_resblock(unet_loader *L, adm_resblock *b, const char *prefix, int64_t in,
                         int64_t out, const adm_shape *s, int resample)
{
    char name[UNET_NAME_MAX];
    b->resample = resample;
    b->out_channels = out;
    DCI_TRY(unet_take_norm(L, &b->in_norm, unet_name(name, "%s.in_layers.0", prefix), in));
    DCI_TRY(unet_take_conv(L, &b->in_conv, unet_name(name, "%s.in_layers.2", prefix), out, in,
                           3));
    DCI_TRY(unet_take_linear(L, &b->emb, unet_name(name, "%s.emb_layers.1", prefix),
                             s->scale_shift ? 2 * out : out, s->emb));
    DCI_TRY(unet_take_norm(L, &b->out_norm, unet_name(name, "%s.out_layers.0", prefix), out));
    DCI_TRY(unet_take_conv(L, &b->out_conv, unet_name(name, "%s.out_layers.3", prefix), out,
                           out, 3));
    if (in != out)
        DCI_TRY(unet_take_conv(L, &b->skip, unet_name(name, "%s.skip_connection", prefix), out,
                               in, 1));
    return DC_OK;
}

static int take_attn(unet_loader *L, adm_attn *a, const char *prefix, int64_t ch,
                     const adm_shape *s)
{
    char name[UNET_NAME_MAX];
    if (s->head_channels > 0) {
        if (ch % s->head_channels)
            return dci_err(DC_EFORMAT, "%s: '%s' has %lld channels, not a multiple of %d-channel "
                           "heads (set the head channels option)", L->label, prefix,
                           (long long)ch, s->head_channels);
        a->heads = (int)(ch / s->head_channels);
    } else {
        if (ch % s->num_heads)
            return dci_err(DC_EFORMAT, "%s: '%s' has %lld channels, which %d heads do not divide",
                           L->label, prefix, (long long)ch, s->num_heads);
        a->heads = s->num_heads;
    }
    DCI_TRY(unet_take_norm(L, &a->norm, unet_name(name, "%s.norm", prefix), ch));
    DCI_TRY(unet_take_conv1d(L, &a->qkv, unet_name(name, "%s.qkv", prefix), 3 * ch, ch));
    return unet_take_conv1d(L, &a->proj_out, unet_name(name, "%s.proj_out", prefix), ch, ch);
}

/* The resampler at submodule `sub` of block `prefix`. */
static int take_resampler(unet_loader *L, adm_block *blk, const char *prefix, int sub,
                          int64_t ch, const adm_shape *s, int resample, int by_conv)
{
    char name[UNET_NAME_MAX];
    blk->resample = resample;
    blk->resample_by_conv = by_conv;
    if (!by_conv)
        return take_resblock(L, &blk->resample_res, unet_name(name, "%s.%d", prefix, sub), ch,
                             ch, s, resample);
    /* Downsample(use_conv) is `op` (stride 2, padding 1); Upsample(use_conv) is `conv`. */
    return unet_take_conv(L, &blk->resample_conv,
                          unet_name(name, "%s.%d.%s", prefix, sub,
                                    resample == ADM_DOWN ? "op" : "conv"),
                          ch, ch, 3);
}

/* Mirrors UNetModel.__init__, with the skip channels on a stack (input_block_chans). */
static int build_net(unet_loader *L, adm_net *net, const nn_unet_info *info,
                     const adm_shape *s)
{
    char prefix[UNET_NAME_MAX], name[UNET_NAME_MAX];
    int levels = info->levels, nrb = info->num_res_blocks;
    int by_conv = !info->resblock_updown;
    int64_t chans[ADM_MAX_BLOCKS + 1];
    int nchans = 0;

    DCI_TRY(unet_take_linear(L, &net->time0, "time_embed.0", s->emb, info->base_channels));
    DCI_TRY(unet_take_linear(L, &net->time2, "time_embed.2", s->emb, s->emb));
    int64_t ch = info->level_channels[0];
    DCI_TRY(unet_take_conv(L, &net->conv_in, "input_blocks.0.0", ch, info->in_channels, 3));
    chans[nchans++] = ch;
    int k = 0;
    for (int l = 0; l < levels; l++) {
        for (int i = 0; i < nrb; i++, k++) {
            adm_block *blk = &net->input[k];
            unet_name(prefix, "input_blocks.%d", k + 1);
            blk->has_res = 1;
            DCI_TRY(take_resblock(L, &blk->res, unet_name(name, "%s.0", prefix), ch,
                                  info->level_channels[l], s, ADM_KEEP));
            ch = info->level_channels[l];
            if (info->attention[l]) {
                blk->has_attn = 1;
                DCI_TRY(take_attn(L, &blk->attn, unet_name(name, "%s.1", prefix), ch, s));
            }
            chans[nchans++] = ch;
        }
        if (l != levels - 1) {
            DCI_TRY(take_resampler(L, &net->input[k], unet_name(prefix, "input_blocks.%d", k + 1),
                                   0, ch, s, ADM_DOWN, by_conv));
            chans[nchans++] = ch;
            k++;
        }
    }
    DCI_TRY(take_resblock(L, &net->mid_res1, "middle_block.0", ch, ch, s, ADM_KEEP));
    DCI_TRY(take_attn(L, &net->mid_attn, "middle_block.1", ch, s));
    DCI_TRY(take_resblock(L, &net->mid_res2, "middle_block.2", ch, ch, s, ADM_KEEP));
    k = 0;
    for (int l = levels - 1; l >= 0; l--) {
        for (int i = 0; i <= nrb; i++, k++) {
            adm_block *blk = &net->output[k];
            unet_name(prefix, "output_blocks.%d", k);
            int64_t skip = chans[--nchans];
            blk->has_res = 1;
            DCI_TRY(take_resblock(L, &blk->res, unet_name(name, "%s.0", prefix), ch + skip,
                                  info->level_channels[l], s, ADM_KEEP));
            ch = info->level_channels[l];
            int sub = 1;
            if (info->attention[l]) {
                blk->has_attn = 1;
                DCI_TRY(take_attn(L, &blk->attn, unet_name(name, "%s.1", prefix), ch, s));
                sub = 2;
            }
            if (l && i == nrb)
                DCI_TRY(take_resampler(L, blk, prefix, sub, ch, s, ADM_UP, by_conv));
        }
    }
    DCI_TRY(unet_take_norm(L, &net->out_norm, "out.0", ch));
    DCI_TRY(unet_take_conv(L, &net->out_conv, "out.2", info->out_channels, ch, 3));
    if (info->has_label_emb) {
        /* Loaded so that the state dict round-trips; DiffusionCLIP never uses it. */
        ct_tensor *unused;
        int64_t classes;
        DCI_TRY(unet_dim(L, "label_emb.weight", 2, 0, &classes));
        int64_t shape[2] = {classes, s->emb};
        DCI_TRY(unet_take(L, &unused, "label_emb.weight", 2, shape));
    }
    return DC_OK;
}

/* Output block k upsamples when it has a resampler after its res block (and attention). */
static int output_block_upsamples(const unet_loader *L, int k)
{
    char name[UNET_NAME_MAX];
    return unet_has_prefix(L, unet_name(name, "output_blocks.%d.2.", k)) ||
           unet_has_prefix(L, unet_name(name, "output_blocks.%d.1.in_layers.", k)) ||
           unet_has_prefix(L, unet_name(name, "output_blocks.%d.1.conv.", k));
}

int adm_unet_build(unet_loader *L, const nn_unet_options *opts)
{
    nn_unet_info *info = &L->m->info;
    char name[UNET_NAME_MAX];
    int64_t emb, ch, ch0, in, out;
    DCI_TRY(unet_dim(L, "time_embed.0.weight", 2, 0, &emb));
    DCI_TRY(unet_dim(L, "time_embed.0.weight", 2, 1, &ch));
    DCI_TRY(unet_dim(L, "input_blocks.0.0.weight", 4, 0, &ch0));
    DCI_TRY(unet_dim(L, "input_blocks.0.0.weight", 4, 1, &in));
    DCI_TRY(unet_dim(L, "out.2.weight", 4, 0, &out));
    if (ch < 4 || ch > (1 << 16) || emb < 1 || emb > (1 << 18) || in < 1 || in > 64 ||
        out < 1 || out > 64)
        return dci_err(DC_EFORMAT,
                       "%s: implausible ADM UNet sizes (channels %lld, embedding %lld, in %lld, "
                       "out %lld)",
                       L->label, (long long)ch, (long long)emb, (long long)in, (long long)out);

    /* Levels and res blocks from the block counts: each level has num_res_blocks + 1 output
     * blocks, and every level but the first ends with an upsampling one. */
    int n_in, n_out, ups = 0;
    DCI_TRY(unet_count(L, "input_blocks.%d.", ADM_MAX_BLOCKS + 1, &n_in));
    DCI_TRY(unet_count(L, "output_blocks.%d.", ADM_MAX_BLOCKS, &n_out));
    for (int k = 0; k < n_out; k++)
        ups += output_block_upsamples(L, k);
    int levels = ups + 1;
    if (levels > NN_UNET_MAX_LEVELS || n_out % levels || n_out / levels < 2)
        return dci_err(DC_EFORMAT,
                       "%s: %d output blocks with %d upsamplers do not form a UNet of at most %d "
                       "levels with at least one res block each",
                       L->label, n_out, ups, NN_UNET_MAX_LEVELS);
    int nrb = n_out / levels - 1;
    if (n_in != 1 + levels * nrb + levels - 1)
        return dci_err(DC_EFORMAT,
                       "%s: %d input blocks, expected %d for %d levels of %d res blocks (first "
                       "missing: 'input_blocks.%d')",
                       L->label, n_in, 1 + levels * nrb + levels - 1, levels, nrb, n_in);

    adm_net *net = calloc(1, sizeof *net);
    if (!net)
        return dci_err(DC_ENOMEM, "%s: out of memory", L->label);
    L->m->net = net;
    net->n_input = n_in - 1;
    net->n_output = n_out;
    net->input = calloc((size_t)net->n_input + 1, sizeof *net->input);
    net->output = calloc((size_t)n_out, sizeof *net->output);
    if (!net->input || !net->output)
        return dci_err(DC_ENOMEM, "%s: out of memory", L->label);

    info->in_channels = (int)in;
    info->out_channels = (int)out;
    info->base_channels = (int)ch;
    info->time_embed_channels = (int)emb;
    info->levels = levels;
    info->num_res_blocks = nrb;
    for (int l = 0; l < levels; l++) {
        int first = 1 + l * (nrb + 1);            /* the level's first res block */
        int64_t c;
        DCI_TRY(unet_dim(L, unet_name(name, "input_blocks.%d.0.in_layers.2.weight", first), 4,
                         0, &c));
        if (c < 1 || c > (1 << 16))
            return dci_err(DC_EFORMAT, "%s: '%s' has %lld output channels", L->label, name,
                           (long long)c);
        info->level_channels[l] = (int)c;
        info->attention[l] = unet_has_prefix(L, unet_name(name, "input_blocks.%d.1.", first));
    }
    if (ch0 != info->level_channels[0])
        return dci_err(DC_EFORMAT, "%s: 'input_blocks.0.0.weight' has %lld output channels, "
                       "the first level %d", L->label, (long long)ch0, info->level_channels[0]);
    int64_t emb_out;
    DCI_TRY(unet_dim(L, "input_blocks.1.0.emb_layers.1.weight", 2, 0, &emb_out));
    info->scale_shift = emb_out == 2 * (int64_t)info->level_channels[0];
    info->resblock_updown =
        levels > 1 && !unet_has_prefix(L, unet_name(name, "input_blocks.%d.0.op.", 1 + nrb));
    info->has_label_emb = unet_find(L, "label_emb.weight") != NULL;
    if (opts && opts->head_channels == -1) {
        info->head_channels = 0;
        info->num_heads = opts->num_heads;
    } else {
        info->head_channels = opts && opts->head_channels > 0 ? opts->head_channels
                                                                : NN_UNET_DEFAULT_HEAD_CHANNELS;
    }
    net->scale_shift = info->scale_shift;
    adm_shape s = {.emb = emb,
                   .scale_shift = info->scale_shift,
                   .head_channels = info->head_channels,
                   .num_heads = info->num_heads};
    return build_net(L, net, info, &s);
}

/* ---- forward ---- */

static int resample(ct_tensor **out, const ct_tensor *x, int how)
{
    return how == ADM_UP ? ct_upsample_nearest2x(out, x) : ct_avg_pool2d(out, x, 2, 2);
}

static int resblock_forward(const adm_net *net, const adm_resblock *b, const ct_tensor *x,
                            const ct_tensor *emb_act, ct_tensor **out)
{
    ct_tensor *h, *e, *e4, *skip_in = (ct_tensor *)x, *skip;
    DCI_TRY(unet_gn_silu(&h, x, &b->in_norm, ADM_GN_EPS));
    if (b->resample) {
        DCI_TRY(resample(&h, h, b->resample));
        DCI_TRY(resample(&skip_in, x, b->resample));
    }
    DCI_TRY(unet_conv(&h, h, &b->in_conv, 1, 1));
    DCI_TRY(ct_linear(&e, emb_act, b->emb.w, b->emb.b));
    int64_t shape[4] = {ct_size(e, 0), ct_size(e, 1), 1, 1};
    DCI_TRY(ct_reshape(&e4, e, 4, shape));
    if (net->scale_shift) {
        ct_tensor *scale, *shift;
        DCI_TRY(ct_narrow(&scale, e4, 1, 0, b->out_channels));
        DCI_TRY(ct_narrow(&shift, e4, 1, b->out_channels, b->out_channels));
        DCI_TRY(unet_gn(&h, h, &b->out_norm, ADM_GN_EPS));
        DCI_TRY(ct_add_scalar(&scale, scale, 1.0));
        DCI_TRY(unet_mul(&h, h, scale));
        DCI_TRY(unet_add(&h, h, shift));
        DCI_TRY(unet_silu(&h, h));
    } else {
        DCI_TRY(unet_add(&h, h, e4));
        DCI_TRY(unet_gn_silu(&h, h, &b->out_norm, ADM_GN_EPS));
    }
    DCI_TRY(unet_conv(&h, h, &b->out_conv, 1, 1));
    skip = skip_in;
    if (b->skip.w)
        DCI_TRY(unet_conv(&skip, skip_in, &b->skip, 1, 0));
    return unet_add(out, h, skip);
}

/* AttentionBlock with QKVAttentionLegacy: the 3C qkv channels are per head [q, k, v], and
 * q and k are both scaled by ch^-1/4 before their product. */
static int attn_forward(const adm_attn *a, const ct_tensor *x, ct_tensor **out)
{
    int64_t n = ct_size(x, 0), c = ct_size(x, 1), hgt = ct_size(x, 2), wid = ct_size(x, 3);
    int64_t len = hgt * wid, ch = c / a->heads;
    int64_t flat[3] = {n, c, len}, heads[3] = {n * a->heads, 3 * ch, len};
    int64_t image[4] = {n, c, hgt, wid};
    double scale = 1.0 / sqrt(sqrt((double)ch));
    ct_tensor *xf, *qkv, *q, *k, *v, *w, *h;
    DCI_TRY(ct_reshape(&xf, x, 3, flat));
    DCI_TRY(unet_gn(&qkv, xf, &a->norm, ADM_GN_EPS));
    DCI_TRY(ct_conv1d(&qkv, qkv, a->qkv.w, a->qkv.b, 1, 0));
    DCI_TRY(ct_reshape(&qkv, qkv, 3, heads));
    DCI_TRY(ct_narrow(&q, qkv, 1, 0, ch));
    DCI_TRY(ct_narrow(&k, qkv, 1, ch, ch));
    DCI_TRY(ct_narrow(&v, qkv, 1, 2 * ch, ch));
    DCI_TRY(ct_mul_scalar(&q, q, scale));
    DCI_TRY(ct_mul_scalar(&k, k, scale));
    DCI_TRY(ct_transpose(&q, q, 1, 2));                 /* (b, t, ch) */
    DCI_TRY(ct_bmm(&w, q, k));                          /* (b, t, s) */
    if (ct_dtype(w) != DC_FLOAT32 && ct_dtype(w) != DC_FLOAT64) {
        /* The reference's softmax runs in float32 whatever the weights' type. */
        dc_dtype dtype = ct_dtype(w);
        DCI_TRY(ct_to(&w, w, DC_FLOAT32, ct_device(w)));
        DCI_TRY(ct_softmax(&w, w, 2));
        DCI_TRY(ct_to(&w, w, dtype, ct_device(w)));
    } else {
        DCI_TRY(ct_softmax(&w, w, 2));
    }
    DCI_TRY(ct_transpose(&w, w, 1, 2));                 /* (b, s, t) */
    DCI_TRY(ct_bmm(&h, v, w));                          /* (b, ch, t) */
    DCI_TRY(ct_reshape(&h, h, 3, flat));
    DCI_TRY(ct_conv1d(&h, h, a->proj_out.w, a->proj_out.b, 1, 0));
    DCI_TRY(unet_add(&h, h, xf));
    return ct_reshape(out, h, 4, image);
}

static int block_body(const adm_net *net, const adm_block *blk, const ct_tensor *x,
                      const ct_tensor *emb_act, ct_tensor **out)
{
    ct_tensor *h = (ct_tensor *)x;
    if (blk->has_res)
        DCI_TRY(resblock_forward(net, &blk->res, h, emb_act, &h));
    if (blk->has_attn)
        DCI_TRY(attn_forward(&blk->attn, h, &h));
    if (blk->resample && blk->resample_by_conv) {
        if (blk->resample == ADM_UP) {
            DCI_TRY(ct_upsample_nearest2x(&h, h));
            DCI_TRY(unet_conv(&h, h, &blk->resample_conv, 1, 1));
        } else {
            DCI_TRY(unet_conv(&h, h, &blk->resample_conv, 2, 1));
        }
    } else if (blk->resample) {
        DCI_TRY(resblock_forward(net, &blk->resample_res, h, emb_act, &h));
    }
    *out = h;
    return DC_OK;
}

/* One TimestepEmbedSequential in its own pool. */
static int block_forward(const adm_net *net, const adm_block *blk, const ct_tensor *x,
                         const ct_tensor *emb_act, ct_tensor **out)
{
    size_t mark = ct_pool_begin();
    ct_tensor *h = NULL;
    int status = block_body(net, blk, x, emb_act, &h);
    DCI_TRY(unet_pool_end(mark, status, &h));
    *out = h;
    return DC_OK;
}

static int time_embedding(const adm_net *net, const nn_unet *m, const ct_tensor *t,
                          ct_tensor **emb_act)
{
    ct_tensor *e;
    DCI_TRY(unet_timestep_embedding(&e, t, m->info.base_channels, NN_UNET_ADM));
    if (ct_dtype(e) != m->dtype)
        DCI_TRY(ct_to(&e, e, m->dtype, m->device));
    DCI_TRY(ct_linear(&e, e, net->time0.w, net->time0.b));
    DCI_TRY(ct_silu(&e, e));
    DCI_TRY(ct_linear(&e, e, net->time2.w, net->time2.b));
    /* Every res block's emb_layers starts with SiLU(emb): compute it once. */
    return ct_silu(emb_act, e);
}

int adm_unet_forward(const nn_unet *m, const ct_tensor *x, const ct_tensor *t,
                     ct_tensor **out)
{
    const adm_net *net = m->net;
    ct_tensor *skips[ADM_MAX_BLOCKS + 1];
    int nskips = 0;
    ct_tensor *emb, *h;

    DCI_TRY(time_embedding(net, m, t, &emb));
    DCI_TRY(unet_conv(&h, x, &net->conv_in, 1, 1));
    skips[nskips++] = h;
    for (int k = 0; k < net->n_input; k++) {
        DCI_TRY(block_forward(net, &net->input[k], h, emb, &h));
        skips[nskips++] = h;
    }
    adm_block middle = {.has_res = 1, .has_attn = 1, .res = net->mid_res1,
                        .attn = net->mid_attn, .resample = ADM_KEEP};
    adm_block middle_end = {.has_res = 1, .res = net->mid_res2};
    ct_tensor *mid;
    DCI_TRY(block_forward(net, &middle, h, emb, &mid));
    DCI_TRY(block_forward(net, &middle_end, mid, emb, &h));
    ct_free(mid);
    for (int k = 0; k < net->n_output; k++) {
        ct_tensor *pair[2] = {h, skips[--nskips]}, *cat;
        DCI_TRY(ct_cat(&cat, pair, 2, 1));
        /* Each skip is used once: drop handles early so that inference frees memory. */
        ct_free(pair[0]);
        ct_free(pair[1]);
        DCI_TRY(block_forward(net, &net->output[k], cat, emb, &h));
        ct_free(cat);
    }
    DCI_TRY(unet_gn_silu(&h, h, &net->out_norm, ADM_GN_EPS));
    return unet_conv(out, h, &net->out_conv, 1, 1);
}
