/* Adam as torch.optim.Adam (1.13, single-tensor path, amsgrad and maximize off). */
#include "internal.hpp"

#include <c10/core/GradMode.h>

#include <cmath>
#include <memory>
#include <vector>

using namespace ctorch;

struct ct_adam {
    /* The parameters themselves (sharing storage with the caller's handles), so that the
     * optimiser stays valid when those handles are freed. */
    std::vector<at::Tensor> params;
    /* Per-parameter state, created on a parameter's first step. */
    std::vector<at::Tensor> exp_avg, exp_avg_sq;
    std::vector<int64_t> steps;
    double lr, beta1, beta2, eps, weight_decay;
};

static bool in_range(double v, double lo, double hi) { return v >= lo && v < hi; }

extern "C" int ct_adam_new(ct_adam **out, ct_tensor *const *params, size_t count, double lr,
                           double beta1, double beta2, double eps, double weight_decay)
{
    CT_REQUIRE(out);
    *out = nullptr;
    CT_REQUIRE(params);
    if (count == 0)
        return dci_err(DC_EINVAL, "%s: empty parameter list", __func__);
    for (size_t i = 0; i < count; i++)
        if (!params[i])
            return dci_err(DC_EINVAL, "%s: params[%zu] is NULL", __func__, i);
    if (!in_range(lr, 0, HUGE_VAL) || !in_range(eps, 0, HUGE_VAL) ||
        !in_range(weight_decay, 0, HUGE_VAL))
        return dci_err(DC_EINVAL, "%s: lr %g, eps %g, weight decay %g must be finite and >= 0",
                       __func__, lr, eps, weight_decay);
    if (!in_range(beta1, 0, 1) || !in_range(beta2, 0, 1))
        return dci_err(DC_EINVAL, "%s: betas (%g, %g) must lie in [0, 1)", __func__, beta1, beta2);
    return guarded(__func__, [&] {
        std::unique_ptr<ct_adam> adam(new ct_adam);
        for (size_t i = 0; i < count; i++)
            adam->params.push_back(params[i]->t);
        adam->exp_avg.resize(count);
        adam->exp_avg_sq.resize(count);
        adam->steps.assign(count, 0);
        adam->lr = lr;
        adam->beta1 = beta1;
        adam->beta2 = beta2;
        adam->eps = eps;
        adam->weight_decay = weight_decay;
        *out = adam.release();
        return static_cast<int>(DC_OK);
    });
}

extern "C" void ct_adam_free(ct_adam *adam) { delete adam; }

extern "C" int ct_adam_step(ct_adam *adam)
{
    CT_REQUIRE(adam);
    return guarded(__func__, [&] {
        c10::NoGradGuard no_grad;
        for (size_t i = 0; i < adam->params.size(); i++) {
            at::Tensor &param = adam->params[i];
            const at::Tensor &param_grad = param.grad();
            if (!param_grad.defined())
                continue;
            at::Tensor &exp_avg = adam->exp_avg[i], &exp_avg_sq = adam->exp_avg_sq[i];
            if (!exp_avg.defined()) {
                exp_avg = at::zeros_like(param);
                exp_avg_sq = at::zeros_like(param);
            }
            double step = static_cast<double>(++adam->steps[i]);
            at::Tensor grad =
                adam->weight_decay != 0 ? param_grad.add(param, adam->weight_decay) : param_grad;
            exp_avg.mul_(adam->beta1).add_(grad, 1 - adam->beta1);
            exp_avg_sq.mul_(adam->beta2).addcmul_(grad, grad, 1 - adam->beta2);
            double bias_correction1 = 1 - std::pow(adam->beta1, step);
            double bias_correction2 = 1 - std::pow(adam->beta2, step);
            double step_size = adam->lr / bias_correction1;
            at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(adam->eps);
            param.addcdiv_(exp_avg, denom, -step_size);
        }
        return static_cast<int>(DC_OK);
    });
}

extern "C" void ct_adam_set_lr(ct_adam *adam, double lr)
{
    if (adam)
        adam->lr = lr;
}

extern "C" double ct_adam_lr(const ct_adam *adam) { return adam ? adam->lr : 0.0; }

extern "C" int ct_adam_zero_grad(ct_adam *adam)
{
    CT_REQUIRE(adam);
    return guarded(__func__, [&] {
        for (at::Tensor &param : adam->params)
            param.mutable_grad().reset();
        return static_cast<int>(DC_OK);
    });
}
