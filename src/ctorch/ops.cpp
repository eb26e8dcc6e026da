/* ctorch ops: elementwise, reductions, shapes and neural-network layers. Each is one at::
 * call (or a short composition) so that autograd records it; none forces contiguity. */
#include "internal.hpp"

#include <c10/core/GradMode.h>

#include <vector>

using namespace ctorch;

#define CT_UNARY(name, expr)                                 \
    extern "C" int name(ct_tensor **out, const ct_tensor *a) \
    {                                                        \
        return produce(__func__, out, {CT_ARG(a)}, [&] {     \
            const at::Tensor &x = a->t;                      \
            return expr;                                     \
        });                                                  \
    }

#define CT_BINARY(name, expr)                                                    \
    extern "C" int name(ct_tensor **out, const ct_tensor *a, const ct_tensor *b) \
    {                                                                            \
        return produce(__func__, out, {CT_ARG(a), CT_ARG(b)}, [&] {              \
            const at::Tensor &x = a->t, &y = b->t;                               \
            return expr;                                                         \
        });                                                                      \
    }

/* ---- elementwise ---- */

CT_BINARY(ct_add, at::add(x, y))
CT_BINARY(ct_sub, at::sub(x, y))
CT_BINARY(ct_mul, at::mul(x, y))
CT_BINARY(ct_div, at::div(x, y))
CT_UNARY(ct_neg, at::neg(x))
CT_UNARY(ct_exp, at::exp(x))
CT_UNARY(ct_log, at::log(x))
CT_UNARY(ct_sqrt, at::sqrt(x))
CT_UNARY(ct_abs, at::abs(x))
CT_UNARY(ct_sin, at::sin(x))
CT_UNARY(ct_cos, at::cos(x))
CT_UNARY(ct_sigmoid, at::sigmoid(x))
CT_UNARY(ct_relu, at::relu(x))
CT_UNARY(ct_silu, at::silu(x))
CT_UNARY(ct_gelu, at::gelu(x))
CT_UNARY(ct_quick_gelu, at::mul(x, at::sigmoid(x * 1.702)))
CT_BINARY(ct_prelu, at::prelu(x, y))

extern "C" int ct_add_scalar(ct_tensor **out, const ct_tensor *a, double s)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] { return at::add(a->t, s); });
}

extern "C" int ct_mul_scalar(ct_tensor **out, const ct_tensor *a, double s)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] { return at::mul(a->t, s); });
}

extern "C" int ct_axpby(ct_tensor **out, double alpha, const ct_tensor *a, double beta,
                        const ct_tensor *b)
{
    return produce(__func__, out, {CT_ARG(a), CT_ARG(b)}, [&] {
        /* add's alpha scales its second operand: one kernel when alpha is 1. */
        return at::add(alpha == 1.0 ? a->t : a->t * alpha, b->t, beta);
    });
}

extern "C" int ct_pow_scalar(ct_tensor **out, const ct_tensor *a, double exponent)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] { return at::pow(a->t, exponent); });
}

extern "C" int ct_clamp(ct_tensor **out, const ct_tensor *a, double lo, double hi)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] { return at::clamp(a->t, lo, hi); });
}

/* ---- reductions ---- */

CT_UNARY(ct_sum, at::sum(x))
CT_UNARY(ct_mean, at::mean(x))

extern "C" int ct_sum_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] {
        int64_t d = dim;
        return at::sum(a->t, at::IntArrayRef(d), keepdim != 0);
    });
}

extern "C" int ct_mean_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] {
        int64_t d = dim;
        return at::mean(a->t, at::IntArrayRef(d), keepdim != 0);
    });
}

extern "C" int ct_norm_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim)
{
    return produce(__func__, out, {CT_ARG(a)}, [&] {
        int64_t d = dim;
        return at::linalg_vector_norm(a->t, 2, at::IntArrayRef(d), keepdim != 0);
    });
}

extern "C" int ct_argmax_dim(ct_tensor **out, const ct_tensor *a, int dim, int keepdim)
{
    return produce(__func__, out, {CT_ARG(a)},
                   [&] { return at::argmax(a->t, static_cast<int64_t>(dim), keepdim != 0); });
}

extern "C" int ct_max_abs(const ct_tensor *a, double *out)
{
    CT_REQUIRE(a);
    CT_REQUIRE(out);
    return guarded(__func__, [&] {
        c10::NoGradGuard no_grad;
        *out = a->t.numel() == 0 ? 0.0 : a->t.abs().max().item<double>();
        return static_cast<int>(DC_OK);
    });
}

/* ---- shapes ---- */

extern "C" int ct_reshape(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *shape)
{
    return produce(__func__, out, {CT_ARG(t)},
                   [&] { return t->t.reshape(int_array(ndim, shape, "shape")); });
}

extern "C" int ct_permute(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *dims)
{
    return produce(__func__, out, {CT_ARG(t)},
                   [&] { return t->t.permute(int_array(ndim, dims, "dims")); });
}

extern "C" int ct_transpose(ct_tensor **out, const ct_tensor *t, int dim0, int dim1)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.transpose(dim0, dim1); });
}

extern "C" int ct_unsqueeze(ct_tensor **out, const ct_tensor *t, int dim)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.unsqueeze(dim); });
}

extern "C" int ct_flatten(ct_tensor **out, const ct_tensor *t, int start_dim, int end_dim)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.flatten(start_dim, end_dim); });
}

extern "C" int ct_cat(ct_tensor **out, ct_tensor *const *tensors, size_t count, int dim)
{
    return produce(__func__, out, {CT_ARG(tensors)}, [&] {
        std::vector<at::Tensor> list;
        list.reserve(count);
        for (size_t i = 0; i < count; i++) {
            if (!tensors[i])
                throw failure(DC_EINVAL, "tensors[%zu] is NULL", i);
            list.push_back(tensors[i]->t);
        }
        return at::cat(at::TensorList(list), dim);
    });
}

extern "C" int ct_narrow(ct_tensor **out, const ct_tensor *t, int dim, int64_t start,
                         int64_t length)
{
    return produce(__func__, out, {CT_ARG(t)}, [&] { return t->t.narrow(dim, start, length); });
}

extern "C" int ct_index_select(ct_tensor **out, const ct_tensor *t, int dim, const ct_tensor *index)
{
    return produce(__func__, out, {CT_ARG(t), CT_ARG(index)},
                   [&] { return at::index_select(t->t, dim, index->t); });
}

extern "C" int ct_gather_rows(ct_tensor **out, const ct_tensor *t, const ct_tensor *index)
{
    return produce(__func__, out, {CT_ARG(t), CT_ARG(index)}, [&] {
        const at::Tensor &x = t->t, &idx = index->t;
        if (x.dim() < 2 || idx.dim() != 1 || idx.size(0) != x.size(0))
            throw failure(DC_EINVAL,
                          "need t (B, L, ...) and index (B), got %lld-d t and "
                          "%lld-d index",
                          static_cast<long long>(x.dim()), static_cast<long long>(idx.dim()));
        /* gather along dim 1 with the index broadcast over the trailing dims (a view). */
        std::vector<int64_t> view(static_cast<size_t>(x.dim()), 1), sizes = x.sizes().vec();
        view[0] = x.size(0);
        sizes[1] = 1;
        return at::gather(x, 1, idx.view(view).expand(sizes)).squeeze(1);
    });
}

extern "C" int ct_expand(ct_tensor **out, const ct_tensor *t, int ndim, const int64_t *shape)
{
    return produce(__func__, out, {CT_ARG(t)},
                   [&] { return t->t.expand(int_array(ndim, shape, "shape")); });
}

/* ---- neural-network ops ---- */

extern "C" int ct_pad2d(ct_tensor **out, const ct_tensor *x, int left, int right, int top,
                        int bottom)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        int64_t pad[4] = {left, right, top, bottom};
        return at::constant_pad_nd(x->t, pad, 0);
    });
}

/* Multiply-adds of the matrix-heavy ops, counted per thread for the benchmarks' GFLOP/s:
 * 2 x (output elements) x (products per output element). */
static thread_local uint64_t flop_count;

static at::Tensor counted(at::Tensor result, int64_t products_per_output)
{
    flop_count += 2 * (uint64_t)result.numel() * (uint64_t)products_per_output;
    return result;
}

extern "C" uint64_t ct_flop_count(void) { return flop_count; }
extern "C" void ct_flop_count_reset(void) { flop_count = 0; }

/* A convolution weight (out, in, k...) makes in * k... products per output element. */
static int64_t products_per_output(const at::Tensor &w) { return w.numel() / w.size(0); }

extern "C" int ct_conv2d(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                         const ct_tensor *b, int stride, int padding)
{
    return produce(__func__, out, {CT_ARG(x), CT_ARG(w)}, [&] {
        int64_t s = stride, p = padding;
        return counted(at::conv2d(x->t, w->t, optional_tensor(b), at::IntArrayRef(s),
                                  at::IntArrayRef(p)),
                       products_per_output(w->t));
    });
}

extern "C" int ct_conv1d(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                         const ct_tensor *b, int stride, int padding)
{
    return produce(__func__, out, {CT_ARG(x), CT_ARG(w)}, [&] {
        int64_t s = stride, p = padding;
        return counted(at::conv1d(x->t, w->t, optional_tensor(b), at::IntArrayRef(s),
                                  at::IntArrayRef(p)),
                       products_per_output(w->t));
    });
}

extern "C" int ct_linear(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                         const ct_tensor *b)
{
    return produce(__func__, out, {CT_ARG(x), CT_ARG(w)},
                   [&] {
                       return counted(at::linear(x->t, w->t, optional_tensor(b)), w->t.size(-1));
                   });
}

CT_BINARY(ct_matmul, counted(at::matmul(x, y), x.size(-1)))
CT_BINARY(ct_bmm, counted(at::bmm(x, y), x.size(-1)))

extern "C" int ct_softmax(ct_tensor **out, const ct_tensor *x, int dim)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] { return at::softmax(x->t, dim); });
}

extern "C" int ct_group_norm(ct_tensor **out, const ct_tensor *x, int groups, const ct_tensor *w,
                             const ct_tensor *b, double eps)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        return at::group_norm(x->t, groups, optional_tensor(w), optional_tensor(b), eps);
    });
}

extern "C" int ct_layer_norm(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                             const ct_tensor *b, double eps)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        if (x->t.dim() < 1)
            throw failure(DC_EINVAL, "layer norm of a 0-d tensor");
        int64_t last = x->t.size(-1);
        return at::layer_norm(x->t, at::IntArrayRef(last), optional_tensor(w), optional_tensor(b),
                              eps);
    });
}

extern "C" int ct_batch_norm(ct_tensor **out, const ct_tensor *x, const ct_tensor *w,
                             const ct_tensor *b, const ct_tensor *running_mean,
                             const ct_tensor *running_var, double eps)
{
    return produce(__func__, out, {CT_ARG(x), CT_ARG(running_mean), CT_ARG(running_var)}, [&] {
        return at::batch_norm(x->t, optional_tensor(w), optional_tensor(b),
                              optional_tensor(running_mean), optional_tensor(running_var),
                              /*training=*/false, /*momentum=*/0.0, eps,
                              /*cudnn_enabled=*/true);
    });
}

static void require_4d(const at::Tensor &x)
{
    if (x.dim() != 4)
        throw failure(DC_EINVAL, "expected an NCHW tensor, got %lld dims",
                      static_cast<long long>(x.dim()));
}

extern "C" int ct_upsample_nearest2x(ct_tensor **out, const ct_tensor *x)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        require_4d(x->t);
        int64_t size[2] = {2 * x->t.size(2), 2 * x->t.size(3)};
        return at::upsample_nearest2d(x->t, at::IntArrayRef(size));
    });
}

extern "C" int ct_resize_bicubic(ct_tensor **out, const ct_tensor *x, int64_t height, int64_t width)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        require_4d(x->t);
        int64_t size[2] = {height, width};
        return at::upsample_bicubic2d(x->t, at::IntArrayRef(size), /*align_corners=*/false);
    });
}

extern "C" int ct_avg_pool2d(ct_tensor **out, const ct_tensor *x, int kernel, int stride)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        int64_t k = kernel, s = stride;
        return at::avg_pool2d(x->t, at::IntArrayRef(k), at::IntArrayRef(s));
    });
}

extern "C" int ct_max_pool2d(ct_tensor **out, const ct_tensor *x, int kernel, int stride,
                             int padding)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        int64_t k = kernel, s = stride, p = padding;
        return at::max_pool2d(x->t, at::IntArrayRef(k), at::IntArrayRef(s), at::IntArrayRef(p));
    });
}

extern "C" int ct_adaptive_avg_pool2d(ct_tensor **out, const ct_tensor *x, int64_t height,
                                      int64_t width)
{
    return produce(__func__, out, {CT_ARG(x)}, [&] {
        int64_t size[2] = {height, width};
        return at::adaptive_avg_pool2d(x->t, at::IntArrayRef(size));
    });
}

extern "C" int ct_cosine_similarity(ct_tensor **out, const ct_tensor *a, const ct_tensor *b,
                                    int dim, double eps)
{
    return produce(__func__, out, {CT_ARG(a), CT_ARG(b)},
                   [&] { return at::cosine_similarity(a->t, b->t, dim, eps); });
}
