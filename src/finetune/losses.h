/* DiffusionCLIP's fine-tuning losses (losses/clip_loss.py from StyleGAN-NADA, id_loss.py):
 * the directional CLIP loss with its text direction, L1 and the identity loss. Every loss is
 * differentiable w.r.t. the generated image; source images and texts are constants. */
#ifndef DC_SRC_FINETUNE_LOSSES_H
#define DC_SRC_FINETUNE_LOSSES_H

#include <stddef.h>

#include "../ctorch/ctorch.h"
#include "../nn/clip.h"
#include "../nn/idnet.h"
#include "../nn/tokenizer.h"

/* CLIP's 79 ImageNet prompt templates ("a bad photo of a {}.", ...), generated from
 * data/imagenet_templates.txt. */
extern const char *const ft_imagenet_templates[];
extern const size_t ft_imagenet_template_count;

typedef enum ft_clip_loss_form {
    FT_CLIP_LOSS_LOG = 0,       /* -log((2 - L_dir) / 2): what DiffusionCLIP optimises */
    FT_CLIP_LOSS_DIRECTION = 1  /* L_dir itself, the paper's 1 - cos form */
} ft_clip_loss_form;

/* The text direction of one (clip, source, target), computed on first use. It is kept on the
 * host so that it outlives the caller's ctorch pools; zero-initialise, clear when done (and
 * before freeing the clip it was computed with: the clip is recognised by address). */
typedef struct ft_text_direction {
    const nn_clip *clip;
    char *source, *target;
    float *direction;                /* embed_dim values */
    int64_t dim;
} ft_text_direction;

/* The normalised mean over the templates of norm(E_T(target)) - norm(E_T(source)) as a new
 * (1, embed_dim) float32 tensor on the clip's device. */
int ft_text_direction_get(ft_text_direction *cache, const nn_clip *clip,
                          nn_tokenizer *tokenizer, const char *source,
                          const char *target, ct_tensor **direction);
void ft_text_direction_clear(ft_text_direction *cache);

/* L_dir = mean_n(1 - cos(d_n, direction)), d = norm(E(x_gen)) - norm(E(x_src)) over
 * (||.|| + 1e-7), with the images in [-1, 1] preprocessed by nn_clip_preprocess. x_src gets
 * no gradient. -> a scalar. */
int ft_clip_direction_loss(const nn_clip *clip, const ct_tensor *x_src, const ct_tensor *x_gen,
                           const ct_tensor *direction, ct_tensor **l_dir);
/* The loss that is optimised, from L_dir. */
int ft_clip_loss_form_apply(ft_clip_loss_form form, const ct_tensor *l_dir, ct_tensor **loss);

/* mean |x0 - x| */
int ft_l1_loss(const ct_tensor *x0, const ct_tensor *x, ct_tensor **loss);

/* The identity features of [-1, 1] face images (N, 3, H, W): the face crop, adaptive average
 * pooling to the network's input size, the network's L2-normalised features. */
int ft_id_features(const nn_idnet *net, const ct_tensor *x, ct_tensor **features);
/* Per-sample 1 - <f(x_hat), f(x0)> (N,), with f(x0) detached. */
int ft_id_loss_per_sample(const nn_idnet *net, const ct_tensor *x0, const ct_tensor *x_hat,
                          ct_tensor **losses);
/* The mean of ft_id_loss_per_sample. */
int ft_id_loss(const nn_idnet *net, const ct_tensor *x0, const ct_tensor *x_hat,
               ct_tensor **loss);

#endif
