/* OpenAI CLIP state dicts with random weights, named and shaped as CLIP's modules (the
 * ViT image tower and the text tower), built in memory for the tests and the benchmark
 * (header-only, static functions). */
#ifndef DC_TEST_CLIP_FIXTURES_H
#define DC_TEST_CLIP_FIXTURES_H

#include "sd_fixture.h"

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define N(...) ((int)(sizeof S(__VA_ARGS__) / sizeof(int64_t)))
#define W(b, shape, ...) add_weight(b, N shape, S shape, __VA_ARGS__)
#define BIAS(b, n, ...) add_tensor(b, 0, 0.1, 1, S(n), __VA_ARGS__)
#define GAIN(b, n, ...) add_tensor(b, 1, 0.1, 1, S(n), __VA_ARGS__)

static inline void add_layer_norm(sd_builder *b, int64_t d, const char *prefix)
{
    GAIN(b, d, "%s.weight", prefix);
    BIAS(b, d, "%s.bias", prefix);
}

static inline void add_transformer(sd_builder *b, const char *prefix, int64_t d, int layers)
{
    char name[128];
    for (int i = 0; i < layers; i++) {
        snprintf(name, sizeof name, "%sresblocks.%d.ln_1", prefix, i);
        add_layer_norm(b, d, name);
        W(b, (3 * d, d), "%sresblocks.%d.attn.in_proj_weight", prefix, i);
        BIAS(b, 3 * d, "%sresblocks.%d.attn.in_proj_bias", prefix, i);
        W(b, (d, d), "%sresblocks.%d.attn.out_proj.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.attn.out_proj.bias", prefix, i);
        snprintf(name, sizeof name, "%sresblocks.%d.ln_2", prefix, i);
        add_layer_norm(b, d, name);
        W(b, (4 * d, d), "%sresblocks.%d.mlp.c_fc.weight", prefix, i);
        BIAS(b, 4 * d, "%sresblocks.%d.mlp.c_fc.bias", prefix, i);
        W(b, (d, 4 * d), "%sresblocks.%d.mlp.c_proj.weight", prefix, i);
        BIAS(b, d, "%sresblocks.%d.mlp.c_proj.bias", prefix, i);
    }
}

typedef struct clip_text_shape {
    int64_t width;
    int layers;
    int64_t vocab, context;
} clip_text_shape;

static inline void add_text(sd_builder *b, const clip_text_shape *t, int64_t embed)
{
    add_tensor(b, 0, 0.5, 2, S(t->vocab, t->width), "token_embedding.weight");
    add_tensor(b, 0, 0.1, 2, S(t->context, t->width), "positional_embedding");
    add_transformer(b, "transformer.", t->width, t->layers);
    add_layer_norm(b, t->width, "ln_final");
    W(b, (t->width, embed), "text_projection");
    add_tensor(b, 4.6, 0, 0, S(0), "logit_scale");
    /* TorchScript CLIP archives carry these as tensors; they are not weights. */
    add_tensor(b, 224, 0, 0, S(0), "input_resolution");
    add_tensor(b, (double)t->context, 0, 0, S(0), "context_length");
}

/* A ViT CLIP: `layers` blocks of `width` over a grid x grid of patch x patch patches. */
static inline io_state_dict clip_vit_sd(int64_t width, int layers, int64_t patch, int64_t grid,
                                        const clip_text_shape *text, int64_t embed,
                                        uint64_t seed)
{
    sd_builder b = {.rng = seed};
    add_tensor(&b, 0, 0.5, 1, S(width), "visual.class_embedding");
    add_tensor(&b, 0, 0.1, 2, S(grid * grid + 1, width), "visual.positional_embedding");
    W(&b, (width, 3, patch, patch), "visual.conv1.weight");
    add_layer_norm(&b, width, "visual.ln_pre");
    add_transformer(&b, "visual.transformer.", width, layers);
    add_layer_norm(&b, width, "visual.ln_post");
    W(&b, (width, embed), "visual.proj");
    add_text(&b, text, embed);
    return b.sd;
}

#endif
