/* A ViT-B/16-shaped CLIP (vision width 768, 12 layers, patch 16, 224 input; text width 512,
 * 12 layers, vocabulary 49408, context 77; embedding 512) with random weights built in
 * memory, and its FLOPs counted analytically (2 x the multiply-adds of the linear layers,
 * patch embedding and attention products), for the benchmark (header-only). */
#ifndef DC_TEST_BENCH_CLIP_FIXTURE_H
#define DC_TEST_BENCH_CLIP_FIXTURE_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "io/state_dict.h"

enum {
    VISION_WIDTH = 768, VISION_LAYERS = 12, PATCH = 16, RESOLUTION = 224,
    TEXT_WIDTH = 512, TEXT_LAYERS = 12, VOCAB = 49408, CONTEXT = 77, EMBED = 512
};

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define RANK(...) ((int)(sizeof SHAPE(__VA_ARGS__) / sizeof(int64_t)))

/* ---- a random state dict of the real shapes ---- */

typedef struct clip_builder {
    io_sd_builder sd;
    uint64_t rng;
    int status;
} clip_builder;

/* offset + scale * U(-1, 1) for every element of a new float32 tensor called `name`. */
static void clip_add(clip_builder *b, double offset, double scale, int ndim,
                     const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void clip_add(clip_builder *b, double offset, double scale, int ndim,
                     const int64_t *shape, const char *fmt, ...)
{
    if (b->status != DC_OK)
        return;
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    void *data;
    b->status = io_sd_append(&b->sd, "", name, DC_FLOAT32, ndim, shape, &data);
    if (b->status != DC_OK || !data)
        return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *v = data;
    for (int64_t i = 0; i < n; i++) {
        b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)(offset + scale * ((double)(b->rng >> 11) / (double)(1ull << 52) - 1.0));
    }
}

/* A weight scaled by 1 / sqrt(fan-in), the fan-in being all but the first dimension. */
#define WEIGHT(b, shape, ...)                                                          \
    clip_add(b, 0, 1 / sqrt((double)clip_fan_in(RANK shape, SHAPE shape)), RANK shape, \
             SHAPE shape, __VA_ARGS__)
#define BIAS(b, n, ...) clip_add(b, 0, 0.02, 1, SHAPE(n), __VA_ARGS__)
#define GAIN(b, n, ...) clip_add(b, 1, 0.02, 1, SHAPE(n), __VA_ARGS__)

static int64_t clip_fan_in(int ndim, const int64_t *shape)
{
    int64_t f = 1;
    for (int i = 1; i < ndim; i++)
        f *= shape[i];
    return f;
}

static void add_transformer(clip_builder *b, const char *prefix, int64_t d, int layers)
{
    for (int i = 0; i < layers; i++) {
        GAIN(b, d, "%sresblocks.%d.ln_1.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.ln_1.bias", prefix, i);
        WEIGHT(b, (3 * d, d), "%sresblocks.%d.attn.in_proj_weight", prefix, i);
        BIAS(b, 3 * d, "%sresblocks.%d.attn.in_proj_bias", prefix, i);
        WEIGHT(b, (d, d), "%sresblocks.%d.attn.out_proj.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.attn.out_proj.bias", prefix, i);
        GAIN(b, d, "%sresblocks.%d.ln_2.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.ln_2.bias", prefix, i);
        WEIGHT(b, (4 * d, d), "%sresblocks.%d.mlp.c_fc.weight", prefix, i);
        BIAS(b, 4 * d, "%sresblocks.%d.mlp.c_fc.bias", prefix, i);
        WEIGHT(b, (d, 4 * d), "%sresblocks.%d.mlp.c_proj.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.mlp.c_proj.bias", prefix, i);
    }
}

static int build_vit_b16(io_state_dict *sd)
{
    clip_builder b = {.rng = 1234};
    io_sd_builder_init(&b.sd, sd, DC_CONTAINER_TORCH_ZIP, "ViT-B/16 (random weights)");
    const int64_t w = VISION_WIDTH, grid = RESOLUTION / PATCH;
    clip_add(&b, 0, 0.5, 1, SHAPE(w), "visual.class_embedding");
    clip_add(&b, 0, 0.1, 2, SHAPE(grid * grid + 1, w), "visual.positional_embedding");
    WEIGHT(&b, (w, 3, PATCH, PATCH), "visual.conv1.weight");
    GAIN(&b, w, "visual.ln_pre.weight");
    BIAS(&b, w, "visual.ln_pre.bias");
    add_transformer(&b, "visual.transformer.", w, VISION_LAYERS);
    GAIN(&b, w, "visual.ln_post.weight");
    BIAS(&b, w, "visual.ln_post.bias");
    WEIGHT(&b, (w, EMBED), "visual.proj");
    clip_add(&b, 0, 0.5, 2, SHAPE(VOCAB, TEXT_WIDTH), "token_embedding.weight");
    clip_add(&b, 0, 0.1, 2, SHAPE(CONTEXT, TEXT_WIDTH), "positional_embedding");
    add_transformer(&b, "transformer.", TEXT_WIDTH, TEXT_LAYERS);
    GAIN(&b, TEXT_WIDTH, "ln_final.weight");
    BIAS(&b, TEXT_WIDTH, "ln_final.bias");
    WEIGHT(&b, (TEXT_WIDTH, EMBED), "text_projection");
    if (b.status == DC_OK)
        b.status = io_sd_finish(&b.sd);
    return b.status;
}

/* ---- FLOPs, counted as 2 x multiply-adds ---- */

/* One pre-norm transformer of `layers` blocks over `tokens` tokens of width d: q, k, v and
 * output projections (4 d^2), the MLP (8 d^2) per token, and the two attention products
 * (tokens^2 d each). */
static double transformer_flops(double tokens, double d, int layers)
{
    return 2.0 * layers * (12.0 * tokens * d * d + 2.0 * tokens * tokens * d);
}

static double image_flops(void)
{
    double patches = (double)(RESOLUTION / PATCH) * (RESOLUTION / PATCH);
    double embed = 2.0 * patches * (3.0 * PATCH * PATCH) * VISION_WIDTH;
    return embed + transformer_flops(patches + 1, VISION_WIDTH, VISION_LAYERS) +
           2.0 * VISION_WIDTH * EMBED;
}

static double text_flops(void)
{
    return transformer_flops(CONTEXT, TEXT_WIDTH, TEXT_LAYERS) + 2.0 * TEXT_WIDTH * EMBED;
}

#endif
