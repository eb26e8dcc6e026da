/* State dicts built in memory the way the Python constructors name and shape their
 * parameters (models/ddpm/diffusion.py Model, guided-diffusion UNetModel), with random
 * weights: for the UNet unit tests and the benchmarks (header-only, static functions). */
#ifndef DC_TEST_UNET_FIXTURES_H
#define DC_TEST_UNET_FIXTURES_H

#include "sd_fixture.h"

/* Norm gains around 1 and biases around 0 (scale 0.1); weights by 1/sqrt(fan-in). */
static void add_norm(sd_builder *b, const char *prefix, int64_t c)
{
    add_tensor(b, 1, 0.1, 1, &c, "%s.weight", prefix);
    add_tensor(b, 0, 0.1, 1, &c, "%s.bias", prefix);
}

static void add_layer(sd_builder *b, const char *prefix, int ndim, int64_t out, int64_t in,
                      int kernel)
{
    int64_t shape[4] = {out, in, kernel, kernel};
    add_weight(b, ndim, shape, "%s.weight", prefix);
    add_tensor(b, 0, 0.1, 1, &out, "%s.bias", prefix);
}

/* ---- DDPM Model(ch, out_ch, ch_mult, num_res_blocks, attention by level) ---- */

typedef struct ddpm_config {
    int ch, out_ch, levels, nrb;
    int mult[6];
    int attn[6];
} ddpm_config;

static void ddpm_resblock(sd_builder *b, const char *p, int64_t in, int64_t out, int64_t temb)
{
    char n[200];
    snprintf(n, sizeof n, "%s.norm1", p), add_norm(b, n, in);
    snprintf(n, sizeof n, "%s.conv1", p), add_layer(b, n, 4, out, in, 3);
    snprintf(n, sizeof n, "%s.temb_proj", p), add_layer(b, n, 2, out, temb, 0);
    snprintf(n, sizeof n, "%s.norm2", p), add_norm(b, n, out);
    snprintf(n, sizeof n, "%s.conv2", p), add_layer(b, n, 4, out, out, 3);
    if (in != out)
        snprintf(n, sizeof n, "%s.nin_shortcut", p), add_layer(b, n, 4, out, in, 1);
}

static void ddpm_attn(sd_builder *b, const char *p, int64_t c)
{
    static const char *parts[] = {"q", "k", "v", "proj_out"};
    char n[200];
    snprintf(n, sizeof n, "%s.norm", p), add_norm(b, n, c);
    for (int i = 0; i < 4; i++)
        snprintf(n, sizeof n, "%s.%s", p, parts[i]), add_layer(b, n, 4, c, c, 1);
}

/* Model.__init__: state-dict order is temb, conv_in, down, mid, up (level 0 first), end. */
static inline void build_ddpm(sd_builder *b, const ddpm_config *c)
{
    char n[200];
    int64_t ch = c->ch, temb = 4 * ch;
    add_layer(b, "temb.dense.0", 2, temb, ch, 0);
    add_layer(b, "temb.dense.1", 2, temb, temb, 0);
    add_layer(b, "conv_in", 4, ch, 3, 3);
    int64_t block_in = ch;
    for (int l = 0; l < c->levels; l++) {
        block_in = ch * (l ? c->mult[l - 1] : 1);
        int64_t block_out = ch * c->mult[l];
        for (int i = 0; i < c->nrb; i++) {
            snprintf(n, sizeof n, "down.%d.block.%d", l, i);
            ddpm_resblock(b, n, block_in, block_out, temb);
            block_in = block_out;
        }
        for (int i = 0; c->attn[l] && i < c->nrb; i++)
            snprintf(n, sizeof n, "down.%d.attn.%d", l, i), ddpm_attn(b, n, block_in);
        if (l != c->levels - 1)
            snprintf(n, sizeof n, "down.%d.downsample.conv", l),
                add_layer(b, n, 4, block_in, block_in, 3);
    }
    ddpm_resblock(b, "mid.block_1", block_in, block_in, temb);
    ddpm_attn(b, "mid.attn_1", block_in);
    ddpm_resblock(b, "mid.block_2", block_in, block_in, temb);
    /* up blocks are created from the last level down but stored from level 0 up: record the
     * input width of each level's first block in creation order first. */
    int64_t level_in[6];
    for (int l = c->levels - 1; l >= 0; l--) {
        level_in[l] = block_in;
        block_in = ch * c->mult[l];
    }
    for (int l = 0; l < c->levels; l++) {
        int64_t in = level_in[l], block_out = ch * c->mult[l];
        for (int i = 0; i <= c->nrb; i++) {
            int64_t skip = i == c->nrb ? ch * (l ? c->mult[l - 1] : 1) : ch * c->mult[l];
            snprintf(n, sizeof n, "up.%d.block.%d", l, i);
            ddpm_resblock(b, n, in + skip, block_out, temb);
            in = block_out;
        }
        for (int i = 0; c->attn[l] && i <= c->nrb; i++)
            snprintf(n, sizeof n, "up.%d.attn.%d", l, i), ddpm_attn(b, n, block_out);
        if (l != 0)
            snprintf(n, sizeof n, "up.%d.upsample.conv", l),
                add_layer(b, n, 4, block_out, block_out, 3);
    }
    add_norm(b, "norm_out", ch * c->mult[0]);
    add_layer(b, "conv_out", 4, c->out_ch, ch * c->mult[0], 3);
}

/* A torch zip checkpoint of the DDPM `c` at path, its weights drawn from `seed`. */
static inline int write_ddpm_checkpoint(const char *path, const ddpm_config *c, uint64_t seed)
{
    sd_builder b = {.rng = seed};
    build_ddpm(&b, c);
    dc_named_tensor *named = malloc(b.sd.count * sizeof *named);
    int st = named ? DC_OK : DC_ENOMEM;
    for (size_t i = 0; named && i < b.sd.count; i++) {
        named[i].name = b.sd.tensors[i].name;
        named[i].tensor = b.sd.tensors[i].value;
    }
    if (st == DC_OK)
        st = dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, named, b.sd.count);
    free(named);
    free_builder(&b);
    return st;
}

/* ---- guided-diffusion UNetModel ---- */

typedef struct adm_config {
    int mc, out_ch, levels, nrb, scale_shift, updown, classes;
    int mult[6];
    int attn[6];
} adm_config;

static void adm_resblock(sd_builder *b, const char *p, int64_t in, int64_t out, int64_t emb,
                         int scale_shift)
{
    char n[200];
    snprintf(n, sizeof n, "%s.in_layers.0", p), add_norm(b, n, in);
    snprintf(n, sizeof n, "%s.in_layers.2", p), add_layer(b, n, 4, out, in, 3);
    snprintf(n, sizeof n, "%s.emb_layers.1", p),
        add_layer(b, n, 2, scale_shift ? 2 * out : out, emb, 0);
    snprintf(n, sizeof n, "%s.out_layers.0", p), add_norm(b, n, out);
    snprintf(n, sizeof n, "%s.out_layers.3", p), add_layer(b, n, 4, out, out, 3);
    if (in != out)
        snprintf(n, sizeof n, "%s.skip_connection", p), add_layer(b, n, 4, out, in, 1);
}

static void adm_attn(sd_builder *b, const char *p, int64_t c)
{
    char n[200];
    snprintf(n, sizeof n, "%s.norm", p), add_norm(b, n, c);
    snprintf(n, sizeof n, "%s.qkv", p), add_layer(b, n, 3, 3 * c, c, 1);
    snprintf(n, sizeof n, "%s.proj_out", p), add_layer(b, n, 3, c, c, 1);
}

static inline void build_adm(sd_builder *b, const adm_config *c)
{
    char n[200];
    int64_t mc = c->mc, emb = 4 * mc, chans[64];
    int nchans = 0, k = 1;
    add_layer(b, "time_embed.0", 2, emb, mc, 0);
    add_layer(b, "time_embed.2", 2, emb, emb, 0);
    if (c->classes) {
        int64_t shape[2] = {c->classes, emb};
        add_weight(b, 2, shape, "label_emb.weight");
    }
    int64_t ch = mc * c->mult[0];
    add_layer(b, "input_blocks.0.0", 4, ch, 3, 3);
    chans[nchans++] = ch;
    for (int l = 0; l < c->levels; l++) {
        for (int i = 0; i < c->nrb; i++, k++) {
            snprintf(n, sizeof n, "input_blocks.%d.0", k);
            adm_resblock(b, n, ch, mc * c->mult[l], emb, c->scale_shift);
            ch = mc * c->mult[l];
            if (c->attn[l])
                snprintf(n, sizeof n, "input_blocks.%d.1", k), adm_attn(b, n, ch);
            chans[nchans++] = ch;
        }
        if (l != c->levels - 1) {
            if (c->updown)
                snprintf(n, sizeof n, "input_blocks.%d.0", k),
                    adm_resblock(b, n, ch, ch, emb, c->scale_shift);
            else
                snprintf(n, sizeof n, "input_blocks.%d.0.op", k), add_layer(b, n, 4, ch, ch, 3);
            chans[nchans++] = ch;
            k++;
        }
    }
    adm_resblock(b, "middle_block.0", ch, ch, emb, c->scale_shift);
    adm_attn(b, "middle_block.1", ch);
    adm_resblock(b, "middle_block.2", ch, ch, emb, c->scale_shift);
    k = 0;
    for (int l = c->levels - 1; l >= 0; l--) {
        for (int i = 0; i <= c->nrb; i++, k++) {
            int64_t ich = chans[--nchans];
            snprintf(n, sizeof n, "output_blocks.%d.0", k);
            adm_resblock(b, n, ch + ich, mc * c->mult[l], emb, c->scale_shift);
            ch = mc * c->mult[l];
            int sub = 1;
            if (c->attn[l])
                snprintf(n, sizeof n, "output_blocks.%d.1", k), adm_attn(b, n, ch), sub = 2;
            if (l && i == c->nrb) {
                if (c->updown)
                    snprintf(n, sizeof n, "output_blocks.%d.%d", k, sub),
                        adm_resblock(b, n, ch, ch, emb, c->scale_shift);
                else
                    snprintf(n, sizeof n, "output_blocks.%d.%d.conv", k, sub),
                        add_layer(b, n, 4, ch, ch, 3);
            }
        }
    }
    add_norm(b, "out.0", ch);
    add_layer(b, "out.2", 4, c->out_ch, ch, 3);
}

#endif
