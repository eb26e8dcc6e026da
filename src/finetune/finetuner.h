/* DiffusionCLIP's fine-tuning step (REFERENCE §5): generate from a latent with the trained
 * UNet under autograd, take the directional CLIP, L1 and identity losses against the source
 * image, and update the UNet with Adam. Two gradient modes:
 * - FT_GRAD_FULL (clip_finetune): the graph spans every generation step; one Adam step per
 *   batch, on the loss of the generated image;
 * - FT_GRAD_PER_STEP (clip_finetune_eff): x is detached between steps; after each step the
 *   loss of that step's predicted x_0 is backpropagated through that step only and Adam
 *   steps. Unlike the published code, the identity loss is taken on the same predicted x_0
 *   and so has a gradient (docs/deviations.md).
 * Gradients are dropped (set to None) after every Adam step. The trainer works on a UNet it
 * does not own; epochs, images, saving and the learning-rate schedule are the caller's.
 *
 * Recomputation (FT_GRAD_FULL only) gives the same gradient in less memory: the generation
 * runs without a graph, keeping only each step's input; the backward pass then goes from the
 * last step to the first, re-running each UNet call with its graph and backpropagating the
 * gradient of its output (a step's noise draws, for eta > 0, are replayed). Reduced precision
 * (bfloat16, or float16 with dynamic loss scaling) runs the UNet calls on a copy of the
 * weights in that dtype while the sampler's arithmetic, the losses, the float32 master
 * weights and Adam's state stay float32, as torch.autocast with a GradScaler does. */
#ifndef DC_SRC_FINETUNE_FINETUNER_H
#define DC_SRC_FINETUNE_FINETUNER_H

#include <stddef.h>

#include "../ctorch/ctorch.h"
#include "../diffusion/schedule.h"
#include "../nn/unet.h"
#include "losses.h"

typedef enum ft_grad_mode {
    FT_GRAD_FULL = 0,
    FT_GRAD_PER_STEP = 1
} ft_grad_mode;

typedef struct ft_config {
    int t0;                          /* the latents' timestep */
    int steps;                       /* DDIM generation steps during training (>= 2) */
    double eta;                      /* DDIM noise of those steps */
    double clip_weight, l1_weight, id_weight;   /* a term with weight 0 is not computed */
    ft_clip_loss_form loss_form;
    ft_grad_mode grad_mode;
    double learning_rate;            /* Adam's (betas 0.9, 0.999, eps 1e-8, no decay) */
    int recompute;                   /* FT_GRAD_FULL: recompute activations in backward */
    dc_dtype dtype;                  /* the UNet calls' dtype: float32, bfloat16, float16 */
} ft_config;

/* What the step callback sees after each generation step. */
typedef struct ft_step_report {
    size_t step, steps;              /* 0-based generation step just done, and the count */
    int optimised;                   /* an Adam step followed it; the numbers below are its */
    int skipped;                     /* float16: the gradient overflowed, no Adam step */
    double loss_clip, loss_l1, loss_id, loss_total;
    double grad_norm;                /* L2 norm of the gradient over all UNet weights */
} ft_step_report;

/* Non-zero cancels with DC_ECANCELLED. */
typedef int (*ft_step_fn)(void *user, const ft_step_report *report);
/* Called after each backward pass, before the Adam step: the gradients are the model's
 * tensors' (ct_grad). Non-zero cancels. */
typedef int (*ft_grad_fn)(void *user, const nn_unet *model);

typedef struct ft_trainer {
    nn_unet *model;                  /* not owned; float32; its weights get requires_grad */
    nn_unet *compute;                /* the copy in config.dtype the UNet calls run on (owned),
                                      * or model itself in float32 */
    double loss_scale;               /* float16's dynamic loss scale; 1 otherwise */
    int good_steps;                  /* float16: Adam steps since the scale last changed */
    const nn_clip *clip;
    nn_tokenizer *tokenizer;
    const nn_idnet *idnet;           /* may be NULL when id_weight is 0 */
    const df_schedule *schedule;
    ft_config config;
    char *source, *target;
    ft_text_direction direction;
    ct_adam *adam;
    ft_step_fn on_step;              /* may be NULL */
    ft_grad_fn on_grad;              /* may be NULL */
    void *user;
    /* Data parallelism: with a process group, every rank trains its part of a batch that
     * spans the ranks; `share` (set by the caller before each step) is this rank's number of
     * images over the whole batch's (0 for a rank that only takes part in the collectives).
     * The losses' values are reduced so that the CLIP loss's form applies to the whole
     * batch's mean, and the gradients are summed weighted by share before the Adam step:
     * the update is the one-process update on the whole batch. The reported losses and
     * gradient norm are the whole batch's. */
    ct_dist *dist;                   /* not owned; NULL: one process */
    double share;
    ct_tensor **params;              /* the model's tensors, for the reduction */
} ft_trainer;

/* Checks the configuration, marks the model's weights as requiring grad. Call with no
 * ctorch pool open. */
int ft_trainer_init(ft_trainer *t, nn_unet *model, const nn_clip *clip, nn_tokenizer *tokenizer,
                    const nn_idnet *idnet, const df_schedule *schedule, const ft_config *config);
void ft_trainer_free(ft_trainer *t);      /* zeroed trainers are fine */

/* Starts a text pair: a fresh Adam at config.learning_rate; the text direction is computed
 * on first use. */
int ft_trainer_begin(ft_trainer *t, const char *source, const char *target);
void ft_trainer_set_lr(ft_trainer *t, double lr);
/* After the caller changed the float32 weights (a resumed run): the compute copy follows. */
int ft_trainer_sync(ft_trainer *t);

/* Trains on one batch: x0 (the source images) and x_lat (their latents at t0), both
 * (N, 3, H, W). Runs under grad mode in its own pools. */
int ft_trainer_step(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_lat);

/* The mean CLIP directional similarity of edits x_gen of x_src along the begun pair's text
 * direction: 1 - L_dir (no gradient). */
int ft_trainer_direction_score(ft_trainer *t, const ct_tensor *x_src, const ct_tensor *x_gen,
                               double *score);

#endif
