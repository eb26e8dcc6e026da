#include "finetuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../diffusion/generator.h"
#include "../nn/params.h"

#define ADAM_BETA1 0.9
#define ADAM_BETA2 0.999
#define ADAM_EPS 1e-8

int ft_trainer_init(ft_trainer *t, nn_unet *model, const nn_clip *clip, nn_tokenizer *tokenizer,
                    const nn_idnet *idnet, const df_schedule *schedule, const ft_config *config)
{
    if (!t || !model || !clip || !tokenizer || !schedule || !config)
        return dci_err(DC_EINVAL, "fine-tuning: NULL argument");
    memset(t, 0, sizeof *t);
    const ft_config *c = config;
    if (c->steps < 2 || c->steps > schedule->num_timesteps)
        return dci_err(DC_EINVAL, "fine-tuning: %d generation steps (2..%d)", c->steps,
                       schedule->num_timesteps);
    if (c->t0 < 1 || c->t0 >= schedule->num_timesteps)
        return dci_err(DC_EINVAL, "fine-tuning: t_0 %d is outside 1..%d", c->t0,
                       schedule->num_timesteps - 1);
    if (!(c->eta >= 0) || !isfinite(c->eta))
        return dci_err(DC_EINVAL, "fine-tuning: eta must be finite and >= 0 (got %g)", c->eta);
    double weights[3] = {c->clip_weight, c->l1_weight, c->id_weight};
    for (int i = 0; i < 3; i++)
        if (!(weights[i] >= 0) || !isfinite(weights[i]))
            return dci_err(DC_EINVAL, "fine-tuning: loss weights must be finite and >= 0");
    if (c->clip_weight == 0 && c->l1_weight == 0 && c->id_weight == 0)
        return dci_err(DC_EINVAL, "fine-tuning: every loss weight is 0");
    if (c->id_weight > 0 && !idnet)
        return dci_err(DC_EINVAL, "fine-tuning: an identity loss weight needs the identity "
                                  "network");
    if (!(c->learning_rate > 0) || !isfinite(c->learning_rate))
        return dci_err(DC_EINVAL, "fine-tuning: the learning rate must be > 0 (got %g)",
                       c->learning_rate);
    if (c->loss_form != FT_CLIP_LOSS_LOG && c->loss_form != FT_CLIP_LOSS_DIRECTION)
        return dci_err(DC_EINVAL, "fine-tuning: unknown CLIP loss form %d", (int)c->loss_form);
    if (c->grad_mode != FT_GRAD_FULL && c->grad_mode != FT_GRAD_PER_STEP)
        return dci_err(DC_EINVAL, "fine-tuning: unknown gradient mode %d", (int)c->grad_mode);
    if (nn_unet_dtype(model) != DC_FLOAT32)
        return dci_err(DC_EINVAL, "fine-tuning: the trained UNet must be float32");
    if (c->recompute && c->grad_mode != FT_GRAD_FULL)
        return dci_err(DC_EINVAL, "fine-tuning: recomputation is for the full-gradient mode "
                                  "(the per-step mode keeps one step's graph already)");
    if (c->dtype != DC_FLOAT32 && c->dtype != DC_BFLOAT16 && c->dtype != DC_FLOAT16)
        return dci_err(DC_EINVAL, "fine-tuning: computes in float32, bfloat16 or float16");
    if (c->dtype == DC_FLOAT16 && nn_unet_device(model) == CT_CPU)
        return dci_err(DC_EINVAL, "fine-tuning: float16 needs a CUDA device (LibTorch's CPU "
                                  "float16 kernels are incomplete); use bfloat16 on the CPU");
    t->model = t->compute = model;
    if (c->dtype != DC_FLOAT32)
        DCI_TRY(nn_unet_clone(&t->compute, model, nn_unet_device(model), c->dtype));
    for (size_t i = 0; i < nn_unet_tensor_count(model); i++) {
        int status = ct_set_requires_grad(nn_unet_tensor(t->compute, i), 1);
        if (status != DC_OK) {
            ft_trainer_free(t);
            return status;
        }
    }
    /* GradScaler's defaults: 2^16, halved on an overflow, doubled after 2000 clean steps. */
    t->loss_scale = c->dtype == DC_FLOAT16 ? 65536.0 : 1.0;
    t->clip = clip;
    t->tokenizer = tokenizer;
    t->idnet = idnet;
    t->schedule = schedule;
    t->config = *c;
    return DC_OK;
}

void ft_trainer_free(ft_trainer *t)
{
    if (!t)
        return;
    ct_adam_free(t->adam);
    ft_text_direction_clear(&t->direction);
    free(t->source);
    free(t->target);
    if (t->compute != t->model)
        nn_unet_free(t->compute);
    free(t->params);
    t->adam = NULL;
    t->compute = NULL;
    t->params = NULL;
    t->source = t->target = NULL;
}

int ft_trainer_sync(ft_trainer *t)
{
    if (!t || !t->model)
        return dci_err(DC_EINVAL, "fine-tuning: NULL argument");
    if (t->compute == t->model)
        return DC_OK;
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    int status = DC_OK;
    for (size_t i = 0; status == DC_OK && i < nn_unet_tensor_count(t->model); i++)
        status = ct_copy_(nn_unet_tensor(t->compute, i), nn_unet_tensor(t->model, i));
    ct_scope_end(no_grad);
    return status;
}

int ft_trainer_begin(ft_trainer *t, const char *source, const char *target)
{
    if (!t || !t->model || !source || !target)
        return dci_err(DC_EINVAL, "fine-tuning: NULL argument");
    ct_adam_free(t->adam);
    t->adam = NULL;
    free(t->source);
    free(t->target);
    t->source = strdup(source);
    t->target = strdup(target);
    if (!t->source || !t->target)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    size_t count = nn_unet_tensor_count(t->model);
    free(t->params);
    t->params = malloc((count ? count : 1) * sizeof *t->params);
    if (!t->params)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    for (size_t i = 0; i < count; i++)
        t->params[i] = nn_unet_tensor(t->model, i);
    int status = ct_adam_new(&t->adam, t->params, count, t->config.learning_rate, ADAM_BETA1,
                             ADAM_BETA2, ADAM_EPS, 0.0);
    return status == DC_OK ? ft_trainer_sync(t) : status;
}

void ft_trainer_set_lr(ft_trainer *t, double lr)
{
    if (t)
        ct_adam_set_lr(t->adam, lr);
}

/* ---- losses ---- */

/* L_dir of x_gen against x_src on CLIP's device (in the current pool). */
static int direction_loss(ft_trainer *t, const ct_tensor *x_src, const ct_tensor *x_gen,
                          ct_tensor **l_dir)
{
    int device = nn_clip_device(t->clip);
    ct_tensor *direction, *src, *gen;
    DCI_TRY(ft_text_direction_get(&t->direction, t->clip, t->tokenizer, t->source, t->target,
                                  &direction));
    DCI_TRY(ct_to(&src, x_src, DC_FLOAT32, device));
    DCI_TRY(ct_to(&gen, x_gen, DC_FLOAT32, device));
    return ft_clip_direction_loss(t->clip, src, gen, direction, l_dir);
}

int ft_trainer_direction_score(ft_trainer *t, const ct_tensor *x_src, const ct_tensor *x_gen,
                               double *score)
{
    if (!t || !t->source || !x_src || !x_gen || !score)
        return dci_err(DC_EINVAL, "fine-tuning: NULL argument, or no text pair begun");
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    size_t mark = ct_pool_begin();
    ct_tensor *l_dir;
    double loss = 0;
    int status = direction_loss(t, x_src, x_gen, &l_dir);
    if (status == DC_OK)
        status = ct_item(l_dir, &loss);
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(no_grad);
    *score = 1.0 - loss;
    return status;
}

/* weight * loss added to *total (which may be NULL: the first term). */
static int add_term(ct_tensor **total, const ct_tensor *loss, double weight)
{
    ct_tensor *weighted;
    DCI_TRY(ct_mul_scalar(&weighted, loss, weight));
    if (!*total) {
        *total = weighted;
        return DC_OK;
    }
    return ct_add(total, *total, weighted);
}

/* The CLIP loss of a process group's whole batch, whose mean directional loss is `mean`,
 * as a term of this rank's loss: the published log form -log((2 - L) / 2) is not linear in
 * L, so this rank's L_dir is weighted by the form's derivative at the whole batch's mean
 * (1 / (2 - mean)); summed over ranks with their shares this gives the whole batch's
 * gradient. *value receives the form's value at the mean. */
static int group_clip_loss(const ft_trainer *t, const ct_tensor *l_dir, double mean,
                           ct_tensor **loss, double *value)
{
    int log_form = t->config.loss_form == FT_CLIP_LOSS_LOG;
    *value = log_form ? -log((2.0 - mean) / 2.0) : mean;
    return ct_mul_scalar(loss, l_dir, log_form ? 1.0 / (2.0 - mean) : 1.0);
}

/* The weighted sum of the losses of x_gen against x0 (in the current pool); the values go
 * to the report. Each network gets the images on its own device. With a process group the
 * values are the whole batch's (one reduction of the three). */
static int total_loss(ft_trainer *t, const ct_tensor *x0, const ct_tensor *generated,
                      ct_tensor **total, ft_step_report *r)
{
    const ct_tensor *x_gen = generated;
    ct_tensor *as_float;
    const ft_config *c = &t->config;
    ct_tensor *l_dir = NULL, *l1 = NULL, *id = NULL;
    double values[3] = {0, 0, 0};
    *total = NULL;
    if (ct_dtype(x_gen) != DC_FLOAT32) {
        DCI_TRY(ct_to(&as_float, x_gen, DC_FLOAT32, ct_device(x_gen)));
        x_gen = as_float;
    }
    if (c->clip_weight > 0) {
        DCI_TRY(direction_loss(t, x0, x_gen, &l_dir));
        DCI_TRY(ct_item(l_dir, &values[0]));
    }
    if (c->l1_weight > 0) {
        DCI_TRY(ft_l1_loss(x0, x_gen, &l1));
        DCI_TRY(ct_item(l1, &values[1]));
    }
    if (c->id_weight > 0) {
        int device = nn_idnet_device(t->idnet);
        ct_tensor *src, *gen;
        DCI_TRY(ct_to(&src, x0, DC_FLOAT32, device));
        DCI_TRY(ct_to(&gen, x_gen, DC_FLOAT32, device));
        DCI_TRY(ft_id_loss(t->idnet, src, gen, &id));
        DCI_TRY(ct_item(id, &values[2]));
    }
    if (t->dist) {
        for (int i = 0; i < 3; i++)
            values[i] *= t->share;
        DCI_TRY(ct_dist_allreduce_f64(t->dist, values, 3));
    }
    r->loss_clip = 0;
    r->loss_l1 = values[1];
    r->loss_id = values[2];
    if (l_dir) {
        ct_tensor *loss;
        if (t->dist) {
            DCI_TRY(group_clip_loss(t, l_dir, values[0], &loss, &r->loss_clip));
        } else {
            DCI_TRY(ft_clip_loss_form_apply(c->loss_form, l_dir, &loss));
            DCI_TRY(ct_item(loss, &r->loss_clip));
        }
        DCI_TRY(ct_to(&loss, loss, DC_FLOAT32, ct_device(x_gen)));
        DCI_TRY(add_term(total, loss, c->clip_weight));
    }
    if (l1)
        DCI_TRY(add_term(total, l1, c->l1_weight));
    if (id) {
        DCI_TRY(ct_to(&id, id, DC_FLOAT32, ct_device(x_gen)));
        DCI_TRY(add_term(total, id, c->id_weight));
    }
    if (t->dist) {
        r->loss_total = c->clip_weight * r->loss_clip + c->l1_weight * r->loss_l1 +
                        c->id_weight * r->loss_id;
        return DC_OK;
    }
    return ct_item(*total, &r->loss_total);
}

static int gradient_norm(const nn_unet *model, double *norm)
{
    ct_tensor *sum = NULL;
    for (size_t i = 0; i < nn_unet_tensor_count(model); i++) {
        ct_tensor *g, *squares, *part;
        DCI_TRY(ct_grad(&g, nn_unet_tensor(model, i)));
        if (!g)
            continue;
        DCI_TRY(ct_mul(&squares, g, g));
        DCI_TRY(ct_sum(&part, squares));
        if (sum)
            DCI_TRY(ct_add(&sum, sum, part));
        else
            sum = part;
    }
    double squared = 0;
    if (sum)
        DCI_TRY(ct_item(sum, &squared));
    *norm = sqrt(squared);
    return DC_OK;
}

/* Drops every gradient: the master weights' and the compute copy's. */
static int zero_gradients(ft_trainer *t)
{
    int status = ct_adam_zero_grad(t->adam);
    for (size_t i = 0; t->compute != t->model && i < nn_unet_tensor_count(t->compute); i++) {
        int cleared = ct_clear_grad(nn_unet_tensor(t->compute, i));
        status = status != DC_OK ? status : cleared;
    }
    return status;
}

/* The compute copy's gradients onto the float32 weights, unscaled; *finite is 0 when a
 * float16 gradient overflowed. */
static int gather_gradients(ft_trainer *t, int *finite)
{
    *finite = 1;
    if (t->compute == t->model)
        return DC_OK;
    for (size_t i = 0; i < nn_unet_tensor_count(t->model); i++) {
        ct_tensor *g;
        DCI_TRY(ct_grad(&g, nn_unet_tensor(t->compute, i)));
        if (!g)
            continue;
        if (t->config.dtype == DC_FLOAT16) {
            double largest;
            DCI_TRY(ct_max_abs(g, &largest));
            if (!isfinite(largest)) {
                *finite = 0;
                return DC_OK;
            }
        }
        DCI_TRY(ct_set_grad(nn_unet_tensor(t->model, i), g, 1.0 / t->loss_scale));
    }
    return DC_OK;
}

/* After a backward pass: the gradients onto the float32 weights, the hook, one Adam step
 * (skipped, with the loss scale halved, when float16 overflowed), the compute copy
 * updated. */
static int apply_gradients(ft_trainer *t, ft_step_report *r)
{
    int finite;
    DCI_TRY(gather_gradients(t, &finite));
    if (t->dist) {
        /* Every rank skips the step when one overflowed, so that all stay in step. */
        double overflowed = !finite;
        DCI_TRY(ct_dist_allreduce_f64(t->dist, &overflowed, 1));
        finite = overflowed == 0;
        if (finite)
            DCI_TRY(ct_dist_allreduce_grads(t->dist, t->params,
                                            nn_unet_tensor_count(t->model), t->share));
    }
    if (!finite) {
        t->loss_scale /= 2;
        t->good_steps = 0;
        r->skipped = 1;
        return DC_OK;
    }
    DCI_TRY(gradient_norm(t->model, &r->grad_norm));
    if (t->on_grad && t->on_grad(t->user, t->model))
        return dci_err(DC_ECANCELLED, "fine-tuning: cancelled");
    DCI_TRY(ct_adam_step(t->adam));
    if (t->config.dtype == DC_FLOAT16 && ++t->good_steps == 2000) {
        t->loss_scale *= 2;
        t->good_steps = 0;
    }
    r->optimised = 1;
    return ft_trainer_sync(t);
}

/* The weighted loss of x_gen, times the loss scale, backpropagated; *leaf_grad, when given,
 * receives the gradient of x_gen (a leaf). */
static int backward_loss(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_gen,
                         ft_step_report *r, ct_tensor **leaf_grad)
{
    ct_tensor *total;
    DCI_TRY(total_loss(t, x0, x_gen, &total, r));
    if (t->loss_scale != 1.0)
        DCI_TRY(ct_mul_scalar(&total, total, t->loss_scale));
    DCI_TRY(ct_backward(total));
    return leaf_grad ? ct_grad(leaf_grad, x_gen) : DC_OK;
}

/* Backward of the loss of x_gen, then the gradients applied; gradients dropped. */
static int optimise(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_gen,
                    ft_step_report *r)
{
    size_t mark = ct_pool_begin();
    r->optimised = r->skipped = 0;
    int status = backward_loss(t, x0, x_gen, r, NULL);
    if (status == DC_OK)
        status = apply_gradients(t, r);
    ct_pool_end(mark, NULL, 0);
    int cleared = zero_gradients(t);
    return status != DC_OK ? status : cleared;
}

/* ---- the step ---- */

typedef struct step_context {
    ft_trainer *t;
    const ct_tensor *x0;
    ft_step_report report;
    int status;                      /* why the generation was stopped, when it was */
} step_context;

static int on_generation_step(void *user, const df_step_info *info)
{
    step_context *s = user;
    ft_trainer *t = s->t;
    s->report.step = info->step;
    s->report.steps = info->steps;
    s->report.optimised = 0;
    int per_step = t->config.grad_mode == FT_GRAD_PER_STEP;
    if (per_step)
        s->status = optimise(t, s->x0, info->x0, &s->report);
    /* In the full mode the last step is reported after its Adam step. */
    int report = per_step || info->step + 1 < info->steps;
    if (s->status == DC_OK && report && t->on_step && t->on_step(t->user, &s->report))
        s->status = dci_err(DC_ECANCELLED, "fine-tuning: cancelled at step %zu of %zu",
                            info->step + 1, info->steps);
    return s->status != DC_OK;
}

static void generation_options(const ft_trainer *t, df_generate_options *g)
{
    df_generate_options_init(g);
    g->t0 = t->config.t0;
    g->n_steps = t->config.steps;
    g->eta = t->config.eta;
}

/* The generation with its graph, then (full mode) the Adam step. */
static int train_batch_with_graph(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x,
                                  step_context *s)
{
    df_generate_options g;
    generation_options(t, &g);
    g.detach_each_step = t->config.grad_mode == FT_GRAD_PER_STEP;
    g.on_step = on_generation_step;
    g.user = s;
    ct_tensor *x_gen;
    int status = df_generate(t->schedule, nn_unet_eps, t->compute, x, &g, &x_gen);
    if (status != DC_OK)
        return s->status != DC_OK ? s->status : status;
    if (t->config.grad_mode == FT_GRAD_PER_STEP)
        return DC_OK;
    return optimise(t, x0, x_gen, &s->report);
}

/* One generation step k with the trainer's noise predictor; *out lands in the caller's pool. */
static int run_pair(ft_trainer *t, const ct_tensor *x, const df_step_pair *pair,
                    ct_tensor **out)
{
    df_step_params p = {.sampler = DF_SAMPLER_DDIM, .eta = t->config.eta};
    return df_run_steps(t->schedule, nn_unet_eps, t->compute, x, pair, 1, &p, 0, NULL, NULL,
                        out);
}

/* The generation without a graph: xs[k] is step k's input, xs[count] the image; rng[k] the
 * generator's state before step k (eta > 0 only). */
static int forward_keeping_inputs(ft_trainer *t, const ct_tensor *x, const df_step_pair *pairs,
                                  size_t count, ct_tensor **xs, ct_tensor **rng, step_context *s)
{
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    int device = ct_device(x), status = ct_detach(&xs[0], x);
    for (size_t k = 0; status == DC_OK && k < count; k++) {
        if (t->config.eta > 0)
            status = ct_rng_state(&rng[k], device);
        if (status == DC_OK)
            status = run_pair(t, xs[k], &pairs[k], &xs[k + 1]);
        if (status == DC_OK) {
            df_step_info info = {.step = k, .steps = count, .t = pairs[k].t,
                                 .t_next = pairs[k].t_next, .x = xs[k + 1]};
            if (on_generation_step(s, &info))
                status = s->status;
        }
    }
    ct_scope_end(no_grad);
    return status;
}

/* The loss's gradient taken back from the image to the latent one step at a time, each step
 * recomputed with its graph; then the Adam step. */
static int backward_recomputed(ft_trainer *t, const ct_tensor *x0, const df_step_pair *pairs,
                               size_t count, ct_tensor *const *xs, ct_tensor *const *rng,
                               ft_step_report *r)
{
    int device = ct_device(xs[0]);
    ct_tensor *after_forward = NULL, *image, *grad = NULL;
    if (t->config.eta > 0)
        DCI_TRY(ct_rng_state(&after_forward, device));
    DCI_TRY(ct_detach(&image, xs[count]));
    DCI_TRY(ct_set_requires_grad(image, 1));
    r->optimised = r->skipped = 0;
    DCI_TRY(backward_loss(t, x0, image, r, &grad));
    for (size_t k = count; k-- > 0;) {
        size_t mark = ct_pool_begin();
        ct_tensor *input, *output, *input_grad = NULL;
        int status = rng[k] ? ct_rng_set_state(device, rng[k]) : DC_OK;
        if (status == DC_OK)
            status = ct_detach(&input, xs[k]);
        if (status == DC_OK && k > 0)
            status = ct_set_requires_grad(input, 1);
        if (status == DC_OK)
            status = run_pair(t, input, &pairs[k], &output);
        if (status == DC_OK)
            status = ct_backward_with(output, grad);
        if (status == DC_OK && k > 0)
            status = ct_grad(&input_grad, input);
        ct_pool_end(mark, &input_grad, status == DC_OK && input_grad ? 1 : 0);
        DCI_TRY(status);
        ct_free(grad);
        grad = input_grad;
    }
    if (after_forward)
        DCI_TRY(ct_rng_set_state(device, after_forward));
    return apply_gradients(t, r);
}

static int train_batch_recomputed(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x,
                                  step_context *s)
{
    df_generate_options g;
    generation_options(t, &g);
    df_step_pair *pairs;
    size_t count;
    DCI_TRY(df_generate_pairs(t->schedule, &g, &pairs, &count));
    ct_tensor **xs = calloc(count + 1, sizeof *xs), **rng = calloc(count, sizeof *rng);
    int status = xs && rng ? DC_OK : dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    size_t mark = ct_pool_begin();
    if (status == DC_OK)
        status = forward_keeping_inputs(t, x, pairs, count, xs, rng, s);
    if (status == DC_OK)
        status = backward_recomputed(t, x0, pairs, count, xs, rng, &s->report);
    ct_pool_end(mark, NULL, 0);
    int cleared = zero_gradients(t);
    free(xs);
    free(rng);
    free(pairs);
    return status != DC_OK ? status : cleared;
}

static int train_batch(ft_trainer *t, const ct_tensor *x0_in, const ct_tensor *x_lat,
                       step_context *s)
{
    int device = nn_unet_device(t->model);
    ct_tensor *x0, *x;
    DCI_TRY(ct_to(&x0, x0_in, DC_FLOAT32, device));
    DCI_TRY(ct_to(&x, x_lat, DC_FLOAT32, device));
    s->x0 = x0;
    DCI_TRY(t->config.recompute ? train_batch_recomputed(t, x0, x, s)
                                : train_batch_with_graph(t, x0, x, s));
    if (t->config.grad_mode == FT_GRAD_FULL && t->on_step && t->on_step(t->user, &s->report))
        return dci_err(DC_ECANCELLED, "fine-tuning: cancelled after the Adam step");
    return DC_OK;
}

int ft_trainer_step(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_lat)
{
    if (!t || !t->adam || !x0 || !x_lat)
        return dci_err(DC_EINVAL, "fine-tuning: NULL argument, or no text pair begun");
    if (ct_ndim(x0) != 4 || ct_ndim(x_lat) != 4)
        return dci_err(DC_EINVAL, "fine-tuning: x0 and x_lat must be (N, C, H, W)");
    for (int d = 0; d < 4; d++)
        if (ct_size(x0, d) != ct_size(x_lat, d))
            return dci_err(DC_EINVAL, "fine-tuning: x0 and x_lat have different shapes");
    step_context s = {.t = t};
    ct_scope *grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&grad, 1));
    size_t mark = ct_pool_begin();
    int status = train_batch(t, x0, x_lat, &s);
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(grad);
    if (status != DC_OK)
        zero_gradients(t);               /* a cancelled backward leaves none behind */
    return status;
}
