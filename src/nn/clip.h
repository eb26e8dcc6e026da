/* OpenAI CLIP (clip/model.py): the vision tower (VisionTransformer or ModifiedResNet) and the
 * text transformer, with hyper-parameters inferred from the state dict as build_model does.
 * Forward passes are differentiable w.r.t. their input; CLIP's own weights never need grad.
 * Load and free with no ctorch pool open: the weights outlive every pool. */
#ifndef DC_SRC_NN_CLIP_H
#define DC_SRC_NN_CLIP_H

#include <stdint.h>

#include "../ctorch/ctorch.h"
#include "../io/checkpoint.h"

typedef struct nn_clip nn_clip;

typedef enum nn_clip_vision {
    NN_CLIP_VIT = 0,
    NN_CLIP_RESNET = 1
} nn_clip_vision;

/* What build_model infers; for a ResNet, `patch` is 32 (the total stride) and
 * vision_layers[0..3] the bottlenecks per stage; for a ViT only vision_layers[0] is used. */
typedef struct nn_clip_config {
    nn_clip_vision vision;
    int64_t vision_width, vision_heads, vision_layers[4], patch, grid, resolution;
    int64_t embed_dim;
    int64_t context_length, vocab_size, text_width, text_heads, text_layers;
} nn_clip_config;

/* `sd` is a plain CLIP state dict or the tensors of a TorchScript CLIP archive; entries that
 * are not weights (input_resolution, context_length, vocab_size...) are ignored. `dtype` is
 * DC_FLOAT32, or DC_FLOAT16 on CUDA to compute as CLIP does on a GPU (linear, convolution and
 * embedding weights in float16; layer and batch norms in float32). */
int nn_clip_load(nn_clip **out, const io_state_dict *sd, const char *label, int device,
                 dc_dtype dtype);
void nn_clip_free(nn_clip *clip);
const nn_clip_config *nn_clip_get_config(const nn_clip *clip);
int nn_clip_device(const nn_clip *clip);

/* x: (N, 3, R, R), already CLIP-normalised, R = config.resolution -> (N, embed_dim) float32
 * (not normalised). */
int nn_clip_encode_image(const nn_clip *clip, const ct_tensor *x, ct_tensor **features);
/* tokens: int64 or int32 (N, context_length), ids < vocab_size -> (N, embed_dim) float32,
 * taken at each row's first highest token (the end-of-text token). */
int nn_clip_encode_text(const nn_clip *clip, const ct_tensor *tokens, ct_tensor **features);

/* CLIP's Normalize: the per-channel (R, G, B) mean and std of its training images. */
extern const float nn_clip_mean[3], nn_clip_std[3];

/* DiffusionCLIP's preprocessing of [-1, 1] images (N, 3, H, W) for encode_image: (x+1)/2,
 * bicubic resize (align_corners false, no antialias) of the shorter side to R as
 * torchvision's Resize(R) sizes it, centre crop R x R, CLIP mean/std. Differentiable. */
int nn_clip_preprocess(const nn_clip *clip, const ct_tensor *x, ct_tensor **out);
/* The same for an explicit resolution. */
int nn_clip_preprocess_to(const ct_tensor *x, int64_t resolution, ct_tensor **out);

#endif
