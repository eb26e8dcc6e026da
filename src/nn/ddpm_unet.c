/* The DDPM "simple" UNet (models/ddpm/diffusion.py; REFERENCE §2.1). */
#include <math.h>
#include <stdlib.h>

#include "../core/error.h"
#include "unet_internal.h"

#define DDPM_GN_EPS 1e-6
#define DDPM_MAX_RES_BLOCKS 64

typedef struct ddpm_resblock {
    unet_affine norm1, conv1, temb_proj, norm2, conv2;
    unet_affine nin_shortcut;        /* w NULL when in == out */
} ddpm_resblock;

typedef struct ddpm_attn {
    unet_affine norm, q, k, v, proj_out;
} ddpm_attn;

typedef struct ddpm_level {
    ddpm_resblock *down;             /* num_res_blocks */
    ddpm_attn *down_attn;            /* num_res_blocks, when the level has attention */
    unet_affine downsample;          /* w NULL at the last level */
    ddpm_resblock *up;               /* num_res_blocks + 1 */
    ddpm_attn *up_attn;
    unet_affine upsample;            /* w NULL at level 0 */
} ddpm_level;

typedef struct ddpm_net {
    int levels, num_res_blocks;
    int attention[NN_UNET_MAX_LEVELS];
    unet_affine temb0, temb1, conv_in, norm_out, conv_out;
    ddpm_level level[NN_UNET_MAX_LEVELS];
    ddpm_resblock mid_block1, mid_block2;
    ddpm_attn mid_attn;
} ddpm_net;

void ddpm_unet_free_net(void *p)
{
    ddpm_net *net = p;
    for (int l = 0; l < NN_UNET_MAX_LEVELS; l++) {
        free(net->level[l].down);
        free(net->level[l].down_attn);
        free(net->level[l].up);
        free(net->level[l].up_attn);
    }
    free(net);
}

/* ---- building ---- */

static int take_resblock(unet_loader *L, ddpm_resblock *b, const char *prefix, int64_t in,
                         int64_t out, int64_t temb)
{
    char name[UNET_NAME_MAX];
    DCI_TRY(unet_take_norm(L, &b->norm1, unet_name(name, "%s.norm1", prefix), in));
    DCI_TRY(unet_take_conv(L, &b->conv1, unet_name(name, "%s.conv1", prefix), out, in, 3));
    DCI_TRY(unet_take_linear(L, &b->temb_proj, unet_name(name, "%s.temb_proj", prefix), out,
                             temb));
    DCI_TRY(unet_take_norm(L, &b->norm2, unet_name(name, "%s.norm2", prefix), out));
    DCI_TRY(unet_take_conv(L, &b->conv2, unet_name(name, "%s.conv2", prefix), out, out, 3));
    if (in != out)
        DCI_TRY(unet_take_conv(L, &b->nin_shortcut,
                               unet_name(name, "%s.nin_shortcut", prefix), out, in, 1));
    return DC_OK;
}

static int take_attn(unet_loader *L, ddpm_attn *a, const char *prefix, int64_t ch)
{
    char name[UNET_NAME_MAX];
    DCI_TRY(unet_take_norm(L, &a->norm, unet_name(name, "%s.norm", prefix), ch));
    DCI_TRY(unet_take_conv(L, &a->q, unet_name(name, "%s.q", prefix), ch, ch, 1));
    DCI_TRY(unet_take_conv(L, &a->k, unet_name(name, "%s.k", prefix), ch, ch, 1));
    DCI_TRY(unet_take_conv(L, &a->v, unet_name(name, "%s.v", prefix), ch, ch, 1));
    return unet_take_conv(L, &a->proj_out, unet_name(name, "%s.proj_out", prefix), ch, ch, 1);
}

static int alloc_level(ddpm_level *lv, int nrb, int attention)
{
    lv->down = calloc((size_t)nrb, sizeof *lv->down);
    lv->up = calloc((size_t)nrb + 1, sizeof *lv->up);
    if (attention) {
        lv->down_attn = calloc((size_t)nrb, sizeof *lv->down_attn);
        lv->up_attn = calloc((size_t)nrb + 1, sizeof *lv->up_attn);
    }
    if (!lv->down || !lv->up || (attention && (!lv->down_attn || !lv->up_attn)))
        return dci_err(DC_ENOMEM, "unet: out of memory");
    return DC_OK;
}

/* Mirrors Model.__init__: the same channel bookkeeping, with the skip channels kept on a
 * stack as forward() keeps the skip tensors. */
static int build_net(unet_loader *L, ddpm_net *net, nn_unet_info *info)
{
    char name[UNET_NAME_MAX];
    int64_t temb = info->time_embed_channels, ch = info->base_channels;
    int64_t skips[1 + NN_UNET_MAX_LEVELS * (DDPM_MAX_RES_BLOCKS + 1)];
    int nskips = 0;
    int levels = net->levels, nrb = net->num_res_blocks;

    DCI_TRY(unet_take_linear(L, &net->temb0, "temb.dense.0", temb, ch));
    DCI_TRY(unet_take_linear(L, &net->temb1, "temb.dense.1", temb, temb));
    DCI_TRY(unet_take_conv(L, &net->conv_in, "conv_in", ch, info->in_channels, 3));
    skips[nskips++] = ch;
    int64_t block_in = ch;
    for (int l = 0; l < levels; l++) {
        ddpm_level *lv = &net->level[l];
        DCI_TRY(alloc_level(lv, nrb, net->attention[l]));
        int64_t block_out = info->level_channels[l];
        for (int b = 0; b < nrb; b++) {
            DCI_TRY(take_resblock(L, &lv->down[b], unet_name(name, "down.%d.block.%d", l, b),
                                  block_in, block_out, temb));
            block_in = block_out;
            if (net->attention[l])
                DCI_TRY(take_attn(L, &lv->down_attn[b], unet_name(name, "down.%d.attn.%d", l, b),
                                  block_in));
            skips[nskips++] = block_in;
        }
        if (l != levels - 1) {
            DCI_TRY(unet_take_conv(L, &lv->downsample,
                                   unet_name(name, "down.%d.downsample.conv", l), block_in,
                                   block_in, 3));
            skips[nskips++] = block_in;
        }
    }
    DCI_TRY(take_resblock(L, &net->mid_block1, "mid.block_1", block_in, block_in, temb));
    DCI_TRY(take_attn(L, &net->mid_attn, "mid.attn_1", block_in));
    DCI_TRY(take_resblock(L, &net->mid_block2, "mid.block_2", block_in, block_in, temb));
    for (int l = levels - 1; l >= 0; l--) {
        ddpm_level *lv = &net->level[l];
        int64_t block_out = info->level_channels[l];
        for (int b = 0; b <= nrb; b++) {
            int64_t skip = skips[--nskips];
            DCI_TRY(take_resblock(L, &lv->up[b], unet_name(name, "up.%d.block.%d", l, b),
                                  block_in + skip, block_out, temb));
            block_in = block_out;
            if (net->attention[l])
                DCI_TRY(take_attn(L, &lv->up_attn[b], unet_name(name, "up.%d.attn.%d", l, b),
                                  block_in));
        }
        if (l != 0)
            DCI_TRY(unet_take_conv(L, &lv->upsample, unet_name(name, "up.%d.upsample.conv", l),
                                   block_in, block_in, 3));
    }
    DCI_TRY(unet_take_norm(L, &net->norm_out, "norm_out", block_in));
    return unet_take_conv(L, &net->conv_out, "conv_out", info->out_channels, block_in, 3);
}

int ddpm_unet_build(unet_loader *L, const nn_unet_options *opts)
{
    (void)opts;                      /* one attention head; nothing else to choose */
    nn_unet_info *info = &L->m->info;
    char name[UNET_NAME_MAX];
    int64_t temb, ch, in, out;
    DCI_TRY(unet_dim(L, "temb.dense.0.weight", 2, 0, &temb));
    DCI_TRY(unet_dim(L, "temb.dense.0.weight", 2, 1, &ch));
    DCI_TRY(unet_dim(L, "conv_in.weight", 4, 1, &in));
    DCI_TRY(unet_dim(L, "conv_out.weight", 4, 0, &out));
    if (ch < 4 || ch > (1 << 16) || temb < 1 || temb > (1 << 18) || in < 1 || in > 64 ||
        out < 1 || out > 64)
        return dci_err(DC_EFORMAT,
                       "%s: implausible DDPM UNet sizes (ch %lld, temb %lld, in %lld, out %lld)",
                       L->label, (long long)ch, (long long)temb, (long long)in,
                       (long long)out);
    int levels, nrb;
    DCI_TRY(unet_count(L, "down.%d.block.0.conv1.weight", NN_UNET_MAX_LEVELS, &levels));
    if (levels == 0)
        return dci_err(DC_EFORMAT, "%s: missing key 'down.0.block.0.conv1.weight' (DDPM UNet)",
                       L->label);
    DCI_TRY(unet_count(L, "down.0.block.%d.conv1.weight", DDPM_MAX_RES_BLOCKS, &nrb));

    ddpm_net *net = calloc(1, sizeof *net);
    if (!net)
        return dci_err(DC_ENOMEM, "%s: out of memory", L->label);
    L->m->net = net;
    net->levels = levels;
    net->num_res_blocks = nrb;
    info->in_channels = (int)in;
    info->out_channels = (int)out;
    info->base_channels = (int)ch;
    info->time_embed_channels = (int)temb;
    info->levels = levels;
    info->num_res_blocks = nrb;
    info->num_heads = 1;
    for (int l = 0; l < levels; l++) {
        int64_t c;
        DCI_TRY(unet_dim(L, unet_name(name, "down.%d.block.0.conv1.weight", l), 4, 0, &c));
        if (c < 1 || c > (1 << 16))
            return dci_err(DC_EFORMAT, "%s: '%s' has %lld output channels", L->label, name,
                           (long long)c);
        info->level_channels[l] = (int)c;
        net->attention[l] = info->attention[l] =
            unet_find(L, unet_name(name, "down.%d.attn.0.q.weight", l)) != NULL;
    }
    return build_net(L, net, info);
}

/* ---- forward ---- */

static int resblock_forward(const ddpm_resblock *b, const ct_tensor *x,
                            const ct_tensor *temb_act, ct_tensor **out)
{
    ct_tensor *h, *proj, *proj4, *skip;
    DCI_TRY(unet_gn_silu(&h, x, &b->norm1, DDPM_GN_EPS));
    DCI_TRY(unet_conv(&h, h, &b->conv1, 1, 1));
    DCI_TRY(ct_linear(&proj, temb_act, b->temb_proj.w, b->temb_proj.b));
    int64_t shape[4] = {ct_size(proj, 0), ct_size(proj, 1), 1, 1};
    DCI_TRY(ct_reshape(&proj4, proj, 4, shape));
    DCI_TRY(unet_add(&h, h, proj4));
    DCI_TRY(unet_gn_silu(&h, h, &b->norm2, DDPM_GN_EPS));
    DCI_TRY(unet_conv(&h, h, &b->conv2, 1, 1));
    skip = (ct_tensor *)x;
    if (b->nin_shortcut.w)
        DCI_TRY(unet_conv(&skip, x, &b->nin_shortcut, 1, 0));
    return unet_add(out, h, skip);
}

/* Single-head attention over the H*W positions, as AttnBlock.forward. */
static int attn_forward(const ddpm_attn *a, const ct_tensor *x, ct_tensor **out)
{
    int64_t n = ct_size(x, 0), c = ct_size(x, 1), hgt = ct_size(x, 2), wid = ct_size(x, 3);
    int64_t flat[3] = {n, c, hgt * wid}, image[4] = {n, c, hgt, wid};
    static const int64_t swap[3] = {0, 2, 1};
    ct_tensor *hn, *q, *k, *v, *w, *h;
    DCI_TRY(unet_gn(&hn, x, &a->norm, DDPM_GN_EPS));
    DCI_TRY(unet_conv(&q, hn, &a->q, 1, 0));
    DCI_TRY(unet_conv(&k, hn, &a->k, 1, 0));
    DCI_TRY(unet_conv(&v, hn, &a->v, 1, 0));
    DCI_TRY(ct_reshape(&q, q, 3, flat));
    DCI_TRY(ct_permute(&q, q, 3, swap));                /* (n, hw, c) */
    DCI_TRY(ct_reshape(&k, k, 3, flat));                /* (n, c, hw) */
    DCI_TRY(ct_bmm(&w, q, k));                          /* (n, hw_q, hw_k) */
    DCI_TRY(ct_mul_scalar(&w, w, pow((double)c, -0.5)));
    DCI_TRY(ct_softmax(&w, w, 2));
    DCI_TRY(ct_reshape(&v, v, 3, flat));
    DCI_TRY(ct_permute(&w, w, 3, swap));                /* (n, hw_k, hw_q) */
    DCI_TRY(ct_bmm(&h, v, w));                          /* (n, c, hw_q) */
    DCI_TRY(ct_reshape(&h, h, 4, image));
    DCI_TRY(unet_conv(&h, h, &a->proj_out, 1, 0));
    return unet_add(out, h, x);
}

/* One res block and its attention block in their own pool. */
static int block_forward(const ddpm_resblock *b, const ddpm_attn *a, const ct_tensor *x,
                         const ct_tensor *temb_act, ct_tensor **out)
{
    size_t mark = ct_pool_begin();
    ct_tensor *h = NULL;
    int status = resblock_forward(b, x, temb_act, &h);
    if (status == DC_OK && a)
        status = attn_forward(a, h, &h);
    DCI_TRY(unet_pool_end(mark, status, &h));
    *out = h;
    return DC_OK;
}

static int downsample(const unet_affine *conv, const ct_tensor *x, ct_tensor **out)
{
    size_t mark = ct_pool_begin();
    ct_tensor *h = NULL;
    int status = ct_pad2d(&h, x, 0, 1, 0, 1);         /* asymmetric, as the reference */
    if (status == DC_OK)
        status = unet_conv(&h, h, conv, 2, 0);
    DCI_TRY(unet_pool_end(mark, status, &h));
    *out = h;
    return DC_OK;
}

static int upsample(const unet_affine *conv, const ct_tensor *x, ct_tensor **out)
{
    size_t mark = ct_pool_begin();
    ct_tensor *h = NULL;
    int status = ct_upsample_nearest2x(&h, x);
    if (status == DC_OK)
        status = unet_conv(&h, h, conv, 1, 1);
    DCI_TRY(unet_pool_end(mark, status, &h));
    *out = h;
    return DC_OK;
}

static int time_embedding(const ddpm_net *net, const nn_unet *m, const ct_tensor *t,
                          ct_tensor **temb_act)
{
    ct_tensor *e;
    DCI_TRY(unet_timestep_embedding(&e, t, m->info.base_channels, NN_UNET_DDPM));
    if (ct_dtype(e) != m->dtype)
        DCI_TRY(ct_to(&e, e, m->dtype, m->device));
    DCI_TRY(ct_linear(&e, e, net->temb0.w, net->temb0.b));
    DCI_TRY(ct_silu(&e, e));
    DCI_TRY(ct_linear(&e, e, net->temb1.w, net->temb1.b));
    /* Every res block projects nonlinearity(temb): compute it once. */
    return ct_silu(temb_act, e);
}

int ddpm_unet_forward(const nn_unet *m, const ct_tensor *x, const ct_tensor *t,
                      ct_tensor **out)
{
    const ddpm_net *net = m->net;
    int levels = net->levels, nrb = net->num_res_blocks;
    ct_tensor *skips[1 + NN_UNET_MAX_LEVELS * (DDPM_MAX_RES_BLOCKS + 1)];
    int nskips = 0;
    ct_tensor *temb, *h;

    DCI_TRY(time_embedding(net, m, t, &temb));
    DCI_TRY(unet_conv(&h, x, &net->conv_in, 1, 1));
    skips[nskips++] = h;
    for (int l = 0; l < levels; l++) {
        const ddpm_level *lv = &net->level[l];
        for (int b = 0; b < nrb; b++) {
            DCI_TRY(block_forward(&lv->down[b], lv->down_attn ? &lv->down_attn[b] : NULL,
                                  skips[nskips - 1], temb, &h));
            skips[nskips++] = h;
        }
        if (l != levels - 1) {
            DCI_TRY(downsample(&lv->downsample, skips[nskips - 1], &h));
            skips[nskips++] = h;
        }
    }
    ct_tensor *mid;
    DCI_TRY(block_forward(&net->mid_block1, &net->mid_attn, h, temb, &mid));
    DCI_TRY(block_forward(&net->mid_block2, NULL, mid, temb, &h));
    ct_free(mid);
    for (int l = levels - 1; l >= 0; l--) {
        const ddpm_level *lv = &net->level[l];
        for (int b = 0; b <= nrb; b++) {
            ct_tensor *pair[2] = {h, skips[--nskips]}, *cat;
            DCI_TRY(ct_cat(&cat, pair, 2, 1));
            /* Each skip is used once: drop handles early so that inference frees memory. */
            ct_free(pair[0]);
            ct_free(pair[1]);
            DCI_TRY(block_forward(&lv->up[b], lv->up_attn ? &lv->up_attn[b] : NULL, cat, temb,
                                  &h));
            ct_free(cat);
        }
        if (l != 0) {
            ct_tensor *up;
            DCI_TRY(upsample(&lv->upsample, h, &up));
            ct_free(h);
            h = up;
        }
    }
    DCI_TRY(unet_gn_silu(&h, h, &net->norm_out, DDPM_GN_EPS));
    return unet_conv(out, h, &net->conv_out, 1, 1);
}
