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
    for (size_t i = 0; i < nn_unet_tensor_count(model); i++)
        DCI_TRY(ct_set_requires_grad(nn_unet_tensor(model, i), 1));
    t->model = model;
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
    free(t->params);
    t->adam = NULL;
    t->params = NULL;
    t->source = t->target = NULL;
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
    return ct_adam_new(&t->adam, t->params, count, t->config.learning_rate, ADAM_BETA1,
                       ADAM_BETA2, ADAM_EPS, 0.0);
}

void ft_trainer_set_lr(ft_trainer *t, double lr)
{
    if (t)
        ct_adam_set_lr(t->adam, lr);
}

/* ---- losses ---- */

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
static int total_loss(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_gen,
                      ct_tensor **total, ft_step_report *r)
{
    const ft_config *c = &t->config;
    ct_tensor *l_dir = NULL, *l1 = NULL, *id = NULL;
    double values[3] = {0, 0, 0};
    *total = NULL;
    if (c->clip_weight > 0) {
        int device = nn_clip_device(t->clip);
        ct_tensor *direction, *src, *gen;
        DCI_TRY(ft_text_direction_get(&t->direction, t->clip, t->tokenizer, t->source,
                                      t->target, &direction));
        DCI_TRY(ct_to(&src, x0, DC_FLOAT32, device));
        DCI_TRY(ct_to(&gen, x_gen, DC_FLOAT32, device));
        DCI_TRY(ft_clip_direction_loss(t->clip, src, gen, direction, &l_dir));
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

/* Backward of the loss of x_gen, the gradient hook, one Adam step, gradients dropped. */
static int optimise(ft_trainer *t, const ct_tensor *x0, const ct_tensor *x_gen,
                    ft_step_report *r)
{
    size_t mark = ct_pool_begin();
    ct_tensor *total;
    int status = total_loss(t, x0, x_gen, &total, r);
    if (status == DC_OK)
        status = ct_backward(total);
    if (status == DC_OK && t->dist)
        status = ct_dist_allreduce_grads(t->dist, t->params, nn_unet_tensor_count(t->model),
                                         t->share);
    if (status == DC_OK)
        status = gradient_norm(t->model, &r->grad_norm);
    if (status == DC_OK && t->on_grad && t->on_grad(t->user, t->model))
        status = dci_err(DC_ECANCELLED, "fine-tuning: cancelled");
    if (status == DC_OK)
        status = ct_adam_step(t->adam);
    ct_pool_end(mark, NULL, 0);
    int cleared = ct_adam_zero_grad(t->adam);
    r->optimised = status == DC_OK;
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

static int train_batch(ft_trainer *t, const ct_tensor *x0_in, const ct_tensor *x_lat,
                       step_context *s)
{
    int device = nn_unet_device(t->model);
    ct_tensor *x0, *x, *x_gen;
    DCI_TRY(ct_to(&x0, x0_in, DC_FLOAT32, device));
    DCI_TRY(ct_to(&x, x_lat, DC_FLOAT32, device));
    s->x0 = x0;
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = t->config.t0;
    g.n_steps = t->config.steps;
    g.eta = t->config.eta;
    g.detach_each_step = t->config.grad_mode == FT_GRAD_PER_STEP;
    g.on_step = on_generation_step;
    g.user = s;
    int status = df_generate(t->schedule, nn_unet_eps, t->model, x, &g, &x_gen);
    if (status != DC_OK)
        return s->status != DC_OK ? s->status : status;
    if (t->config.grad_mode == FT_GRAD_PER_STEP)
        return DC_OK;
    DCI_TRY(optimise(t, x0, x_gen, &s->report));
    if (t->on_step && t->on_step(t->user, &s->report))
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
        ct_adam_zero_grad(t->adam);      /* a cancelled backward leaves none behind */
    return status;
}
