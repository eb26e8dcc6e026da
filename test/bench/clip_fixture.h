/* A ViT-B/16-shaped CLIP (vision width 768, 12 layers, patch 16, 224 input; text width 512,
 * 12 layers, vocabulary 49408, context 77; embedding 512) with random weights built in
 * memory (test/clip_fixtures.h), and its FLOPs counted analytically (2 x the multiply-adds
 * of the linear layers, patch embedding and attention products), for the benchmark
 * (header-only). */
#ifndef DC_TEST_BENCH_CLIP_FIXTURE_H
#define DC_TEST_BENCH_CLIP_FIXTURE_H

#include "clip_fixtures.h"

enum {
    VISION_WIDTH = 768, VISION_LAYERS = 12, PATCH = 16, RESOLUTION = 224,
    TEXT_WIDTH = 512, TEXT_LAYERS = 12, VOCAB = 49408, CONTEXT = 77, EMBED = 512
};

static io_state_dict vit_b16_sd(void)
{
    const clip_text_shape text = {.width = TEXT_WIDTH, .layers = TEXT_LAYERS, .vocab = VOCAB,
                                  .context = CONTEXT};
    return clip_vit_sd(VISION_WIDTH, VISION_LAYERS, PATCH, RESOLUTION / PATCH, &text, EMBED,
                       1234);
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
