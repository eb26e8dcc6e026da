/* ctorch: ops against hand-computed values, host transfer, pools, error boundary, autograd,
 * Adam against its closed form, threads, devices and seeding. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "ctorch/ctorch.h"
#include "harness.h"

/* A test body run inside a pool, so that its handles are freed even when a CHECK returns
 * early. */
#define CT_TEST(name)                            \
    static void body_##name(void);               \
    TEST(name)                                   \
    {                                            \
        size_t pool_mark_ = ct_pool_begin();     \
        body_##name();                           \
        ct_pool_end(pool_mark_, NULL, 0);        \
    }                                            \
    static void body_##name(void)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* `var`: a float32 CPU tensor holding `data` with the given shape. */
#define MAKE(var, data, ...)                                                             \
    ct_tensor *var = NULL;                                                               \
    do {                                                                                 \
        const int64_t shape_[] = {__VA_ARGS__};                                          \
        CHECK_OK(ct_from_host(&var, data, DC_FLOAT32, (int)COUNT(shape_), shape_, CT_CPU)); \
    } while (0)

/* t's float32 values equal the listed ones within tol. */
#define CHECK_VALUES(t, tol, ...)                                                        \
    do {                                                                                 \
        const float expected_[] = {__VA_ARGS__};                                         \
        float got_[COUNT(expected_)];                                                    \
        CHECKF(ct_numel(t) == (int64_t)COUNT(expected_), "%s has %lld elements, not %zu", \
               #t, (long long)ct_numel(t), COUNT(expected_));                            \
        CHECK_OK(ct_to_host(t, got_, sizeof got_));                                      \
        for (size_t i_ = 0; i_ < COUNT(expected_); i_++)                                 \
            CHECKF(fabs((double)got_[i_] - (double)expected_[i_]) <= (tol),              \
                   "%s[%zu] = %.9g, expected %.9g", #t, i_, got_[i_], expected_[i_]);    \
    } while (0)

#define CHECK_SHAPE(t, ...)                                                              \
    do {                                                                                 \
        const int64_t shape_[] = {__VA_ARGS__};                                          \
        CHECKF(ct_ndim(t) == (int)COUNT(shape_), "%s has %d dims", #t, ct_ndim(t));      \
        for (size_t i_ = 0; i_ < COUNT(shape_); i_++)                                    \
            CHECKF(ct_size(t, (int)i_) == shape_[i_], "%s size %zu is %lld, expected %lld", \
                   #t, i_, (long long)ct_size(t, (int)i_), (long long)shape_[i_]);        \
    } while (0)

static const float ramp16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- host transfer and dtypes ---- */

CT_TEST(host_round_trip_keeps_values_shape_and_dtype)
{
    const int64_t shape[] = {2, 3};
    const double f64[6] = {1.5, -2, 1e-300, 4, 5, 6};
    const int64_t i64[6] = {INT64_MIN, -1, 0, 1, 2, INT64_MAX};
    const uint8_t u8[6] = {0, 1, 127, 128, 200, 255};
    struct {
        dc_dtype dtype;
        const void *data;
    } cases[] = {{DC_FLOAT64, f64}, {DC_INT64, i64}, {DC_UINT8, u8}, {DC_FLOAT32, ramp16}};
    for (size_t c = 0; c < COUNT(cases); c++) {
        ct_tensor *t;
        CHECK_OK(ct_from_host(&t, cases[c].data, cases[c].dtype, 2, shape, CT_CPU));
        CHECK(ct_dtype(t) == cases[c].dtype && ct_device(t) == CT_CPU);
        CHECK_SHAPE(t, 2, 3);
        CHECK(ct_numel(t) == 6 && ct_size(t, -1) == 3);
        size_t bytes = 6 * dc_dtype_size(cases[c].dtype);
        unsigned char back[48];
        CHECK_OK(ct_to_host(t, back, bytes));
        CHECK(memcmp(back, cases[c].data, bytes) == 0);
        CHECK_STATUS(ct_to_host(t, back, bytes - 1), DC_EINVAL);
    }
    ct_tensor *s;
    CHECK_OK(ct_scalar(&s, 2.5, DC_FLOAT64, CT_CPU));
    double v = 0;
    CHECK(ct_ndim(s) == 0 && ct_numel(s) == 1);
    CHECK_OK(ct_item(s, &v));
    CHECK(v == 2.5);
}

CT_TEST(to_host_of_a_strided_view_is_c_ordered)
{
    MAKE(x, ramp16, 2, 3);
    ct_tensor *xt, *cl, *back;
    CHECK_OK(ct_transpose(&xt, x, 0, 1));
    CHECK_VALUES(xt, 0, 1, 4, 2, 5, 3, 6);
    MAKE(img, ramp16, 1, 2, 2, 2);
    CHECK_OK(ct_to_channels_last(&cl, img));
    CHECK_VALUES(cl, 0, 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK_OK(ct_contiguous(&back, cl));
    CHECK_VALUES(back, 0, 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK_STATUS(ct_to_channels_last(&cl, x), DC_EINVAL);
}

CT_TEST(half_and_bfloat16_round_trip)
{
    /* Values exact in both 16-bit formats survive f32 -> f16 -> bf16 -> f32 unchanged;
     * 1/3 rounds to the nearest representable value of each. */
    const float exact[] = {1.5f, -2.25f, 0.125f, 1024.0f, 0.0f, -0.5f};
    MAKE(x, exact, 6);
    ct_tensor *h, *b, *back;
    CHECK_OK(ct_to(&h, x, DC_FLOAT16, CT_CPU));
    CHECK(ct_dtype(h) == DC_FLOAT16);
    CHECK_OK(ct_to(&b, h, DC_BFLOAT16, CT_CPU));
    CHECK(ct_dtype(b) == DC_BFLOAT16);
    CHECK_OK(ct_to(&back, b, DC_FLOAT32, CT_CPU));
    CHECK_VALUES(back, 0, 1.5f, -2.25f, 0.125f, 1024.0f, 0.0f, -0.5f);

    const float third = 1.0f / 3.0f;
    MAKE(t, &third, 1);
    ct_tensor *th, *tb;
    double v;
    CHECK_OK(ct_to(&th, t, DC_FLOAT16, CT_CPU));
    CHECK_OK(ct_item(th, &v));
    CHECK(v == 0.333251953125);
    CHECK_OK(ct_to(&tb, t, DC_BFLOAT16, CT_CPU));
    CHECK_OK(ct_item(tb, &v));
    CHECK(v == 0.333984375);
    /* f16 bits of 1.5: sign 0, exponent 15, mantissa 0x200. */
    uint16_t bits;
    ct_tensor *one_half;
    const float f = 1.5f;
    MAKE(fh, &f, 1);
    CHECK_OK(ct_to(&one_half, fh, DC_FLOAT16, CT_CPU));
    CHECK_OK(ct_to_host(one_half, &bits, sizeof bits));
    CHECK(bits == 0x3e00);
}

CT_TEST(creation_functions)
{
    const int64_t shape[] = {2, 2};
    ct_tensor *z, *f, *i;
    CHECK_OK(ct_zeros(&z, DC_FLOAT32, 2, shape, CT_CPU));
    CHECK_VALUES(z, 0, 0, 0, 0, 0);
    CHECK_OK(ct_full(&f, -3.25, DC_FLOAT32, 2, shape, CT_CPU));
    CHECK_VALUES(f, 0, -3.25f, -3.25f, -3.25f, -3.25f);
    CHECK_OK(ct_full(&i, 7, DC_INT32, 2, shape, CT_CPU));
    int32_t iv[4];
    CHECK_OK(ct_to_host(i, iv, sizeof iv));
    CHECK(iv[0] == 7 && iv[3] == 7 && ct_dtype(i) == DC_INT32);
    const int64_t bad[] = {2, -1};
    CHECK_STATUS(ct_zeros(&z, DC_FLOAT32, 2, bad, CT_CPU), DC_EINVAL);
    CHECK(z == NULL);
    CHECK_STATUS(ct_zeros(&z, (dc_dtype)42, 2, shape, CT_CPU), DC_EINVAL);
    CHECK_STATUS(ct_zeros(&z, DC_FLOAT32, -1, shape, CT_CPU), DC_EINVAL);
    CHECK_STATUS(ct_from_host(&z, NULL, DC_FLOAT32, 2, shape, CT_CPU), DC_EINVAL);
    const int64_t huge[] = {INT64_MAX / 2, 4};
    CHECK_STATUS(ct_zeros(&z, DC_FLOAT32, 2, huge, CT_CPU), DC_ENOMEM);
    CHECK_STATUS(ct_from_host(&z, ramp16, DC_FLOAT32, 2, huge, CT_CPU), DC_ENOMEM);
}

/* ---- elementwise and reductions ---- */

CT_TEST(elementwise_ops)
{
    const float av[] = {1, 2, 3, 4}, bv[] = {10, 20};
    MAKE(a, av, 2, 2);
    MAKE(b, bv, 2); /* broadcast over rows */
    ct_tensor *r;
    CHECK_OK(ct_add(&r, a, b));
    CHECK_VALUES(r, 0, 11, 22, 13, 24);
    CHECK_OK(ct_sub(&r, a, b));
    CHECK_VALUES(r, 0, -9, -18, -7, -16);
    CHECK_OK(ct_mul(&r, a, b));
    CHECK_VALUES(r, 0, 10, 40, 30, 80);
    CHECK_OK(ct_div(&r, a, b));
    CHECK_VALUES(r, 1e-7, 0.1f, 0.1f, 0.3f, 0.2f);
    CHECK_OK(ct_add_scalar(&r, a, 0.5));
    CHECK_VALUES(r, 0, 1.5f, 2.5f, 3.5f, 4.5f);
    CHECK_OK(ct_mul_scalar(&r, a, -2));
    CHECK_VALUES(r, 0, -2, -4, -6, -8);
    CHECK_OK(ct_axpby(&r, 2, a, -1, b));
    CHECK_VALUES(r, 0, -8, -16, -4, -12);
    CHECK_OK(ct_axpby(&r, 1, a, 3, b));
    CHECK_VALUES(r, 0, 31, 62, 33, 64);
    CHECK_OK(ct_neg(&r, a));
    CHECK_VALUES(r, 0, -1, -2, -3, -4);
    CHECK_OK(ct_pow_scalar(&r, a, 2));
    CHECK_VALUES(r, 0, 1, 4, 9, 16);
    CHECK_OK(ct_sqrt(&r, a));
    CHECK_VALUES(r, 1e-6, 1, 1.41421356f, 1.73205081f, 2);
    CHECK_OK(ct_clamp(&r, a, 1.5, 3.5));
    CHECK_VALUES(r, 0, 1.5f, 2, 3, 3.5f);

    const float xv[] = {-1, 0, 1};
    MAKE(x, xv, 3);
    CHECK_OK(ct_exp(&r, x));
    CHECK_VALUES(r, 1e-6, 0.36787944f, 1, 2.71828183f);
    CHECK_OK(ct_abs(&r, x));
    CHECK_VALUES(r, 0, 1, 0, 1);
    CHECK_OK(ct_sin(&r, x));
    CHECK_VALUES(r, 1e-6, -0.84147098f, 0, 0.84147098f);
    CHECK_OK(ct_cos(&r, x));
    CHECK_VALUES(r, 1e-6, 0.54030231f, 1, 0.54030231f);
    CHECK_OK(ct_sigmoid(&r, x));
    CHECK_VALUES(r, 1e-6, 0.26894142f, 0.5f, 0.73105858f);
    CHECK_OK(ct_relu(&r, x));
    CHECK_VALUES(r, 0, 0, 0, 1);
    CHECK_OK(ct_silu(&r, x));
    CHECK_VALUES(r, 1e-6, -0.26894142f, 0, 0.73105858f);
    CHECK_OK(ct_gelu(&r, x)); /* x * Phi(x) */
    CHECK_VALUES(r, 1e-6, -0.15865525f, 0, 0.84134475f);
    CHECK_OK(ct_quick_gelu(&r, x)); /* x * sigmoid(1.702 x) */
    CHECK_VALUES(r, 1e-6, -0.15420423f, 0, 0.84579577f);
    const float ev[] = {1, 2.718281828f};
    MAKE(e, ev, 2);
    CHECK_OK(ct_log(&r, e));
    CHECK_VALUES(r, 1e-6, 0, 1);

    const float pv[] = {-1, 2, -3, 4}, wv[] = {0.5f, 0.25f};
    MAKE(p, pv, 1, 2, 2);
    MAKE(w, wv, 2); /* one slope per channel (dim 1) */
    CHECK_OK(ct_prelu(&r, p, w));
    CHECK_VALUES(r, 0, -0.5f, 2, -0.75f, 4);
}

CT_TEST(reductions)
{
    const float v[] = {1, -5, 3, 4, 0, 2};
    MAKE(a, v, 2, 3);
    ct_tensor *r;
    double d;
    CHECK_OK(ct_sum(&r, a));
    CHECK(ct_ndim(r) == 0);
    CHECK_VALUES(r, 0, 5);
    CHECK_OK(ct_mean(&r, a));
    CHECK_OK(ct_item(r, &d));
    CHECK_NEAR(d, 5.0 / 6.0, 1e-7);
    CHECK_OK(ct_sum_dim(&r, a, 1, 0));
    CHECK_SHAPE(r, 2);
    CHECK_VALUES(r, 0, -1, 6);
    CHECK_OK(ct_sum_dim(&r, a, 0, 1));
    CHECK_SHAPE(r, 1, 3);
    CHECK_VALUES(r, 0, 5, -5, 5);
    CHECK_OK(ct_mean_dim(&r, a, -1, 1));
    CHECK_SHAPE(r, 2, 1);
    CHECK_VALUES(r, 1e-7, -1.0f / 3, 2);
    CHECK_OK(ct_norm_dim(&r, a, 1, 0));
    CHECK_VALUES(r, 1e-5, 5.91607978f, 4.47213595f);
    CHECK_OK(ct_argmax_dim(&r, a, 1, 0));
    CHECK(ct_dtype(r) == DC_INT64);
    int64_t idx[2];
    CHECK_OK(ct_to_host(r, idx, sizeof idx));
    CHECK(idx[0] == 2 && idx[1] == 0);
    CHECK_OK(ct_max_abs(a, &d));
    CHECK(d == 5);
    CHECK_STATUS(ct_item(a, &d), DC_EINVAL);
}

/* ---- shapes ---- */

CT_TEST(shape_ops)
{
    MAKE(a, ramp16, 2, 3);
    MAKE(b, ramp16 + 6, 1, 3);
    ct_tensor *r, *parts[] = {a, b};
    CHECK_OK(ct_cat(&r, parts, 2, 0));
    CHECK_SHAPE(r, 3, 3);
    CHECK_VALUES(r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    CHECK_OK(ct_narrow(&r, a, 1, 1, 2));
    CHECK_SHAPE(r, 2, 2);
    CHECK_VALUES(r, 0, 2, 3, 5, 6);
    const int64_t perm[] = {1, 0};
    CHECK_OK(ct_permute(&r, a, 2, perm));
    CHECK_SHAPE(r, 3, 2);
    CHECK_VALUES(r, 0, 1, 4, 2, 5, 3, 6);
    const int64_t shape[] = {3, -1};
    CHECK_OK(ct_reshape(&r, a, 2, shape));
    CHECK_SHAPE(r, 3, 2);
    CHECK_OK(ct_unsqueeze(&r, a, 0));
    CHECK_SHAPE(r, 1, 2, 3);
    CHECK_OK(ct_flatten(&r, r, 1, 2));
    CHECK_SHAPE(r, 1, 6);
    const int64_t big[] = {2, 2, 3};
    CHECK_OK(ct_expand(&r, a, 3, big));
    CHECK_SHAPE(r, 2, 2, 3);
    CHECK_VALUES(r, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6);

    const int64_t iv[] = {2, 0, 2}, ishape[] = {3};
    ct_tensor *index;
    CHECK_OK(ct_from_host(&index, iv, DC_INT64, 1, ishape, CT_CPU));
    CHECK_OK(ct_index_select(&r, a, 1, index));
    CHECK_VALUES(r, 0, 3, 1, 3, 6, 4, 6);

    /* gather_rows: t (B=2, L=3, D=2), index (B) -> (B, D) */
    MAKE(t, ramp16, 2, 3, 2);
    const int64_t rows[] = {2, 1}, rshape[] = {2};
    ct_tensor *ri;
    CHECK_OK(ct_from_host(&ri, rows, DC_INT64, 1, rshape, CT_CPU));
    CHECK_OK(ct_gather_rows(&r, t, ri));
    CHECK_SHAPE(r, 2, 2);
    CHECK_VALUES(r, 0, 5, 6, 9, 10);
    MAKE(t2, ramp16, 2, 3); /* (B, L) -> (B) */
    CHECK_OK(ct_gather_rows(&r, t2, ri));
    CHECK_SHAPE(r, 2);
    CHECK_VALUES(r, 0, 3, 5);
    CHECK_STATUS(ct_gather_rows(&r, t2, index), DC_EINVAL);
}

/* ---- neural-network ops ---- */

CT_TEST(conv2d_matches_hand_sums)
{
    const float ones[4] = {1, 1, 1, 1}, half = 0.5f;
    MAKE(x, ramp16, 1, 1, 3, 3);
    MAKE(w, ones, 1, 1, 2, 2);
    MAKE(b, &half, 1);
    ct_tensor *y;
    CHECK_OK(ct_conv2d(&y, x, w, b, 1, 0));
    CHECK_SHAPE(y, 1, 1, 2, 2);
    CHECK_VALUES(y, 0, 12.5f, 16.5f, 24.5f, 28.5f);
    /* padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1) */
    CHECK_OK(ct_conv2d(&y, x, w, NULL, 2, 1));
    CHECK_VALUES(y, 0, 1, 5, 11, 28);
    /* channels-last input gives the same values */
    ct_tensor *xcl;
    CHECK_OK(ct_to_channels_last(&xcl, x));
    CHECK_OK(ct_conv2d(&y, xcl, w, b, 1, 0));
    CHECK_VALUES(y, 0, 12.5f, 16.5f, 24.5f, 28.5f);
    /* two input channels, two output channels: out[o] = sum_c w[o,c] * x[c] (1x1) */
    const float w2v[] = {1, 10, -1, 0};
    MAKE(x2, ramp16, 1, 2, 1, 2);
    MAKE(w2, w2v, 2, 2, 1, 1);
    CHECK_OK(ct_conv2d(&y, x2, w2, NULL, 1, 0));
    CHECK_VALUES(y, 0, 31, 42, -1, -2);
}

CT_TEST(conv1d_and_linear)
{
    const float wv[] = {1, -1};
    MAKE(x, ramp16, 1, 1, 4);
    MAKE(w, wv, 1, 1, 2);
    ct_tensor *y;
    CHECK_OK(ct_conv1d(&y, x, w, NULL, 1, 1));
    CHECK_VALUES(y, 0, -1, -1, -1, -1, 4);

    const float lw[] = {1, 0, 0, 1, 2, -1}, lb[] = {0.5f, 0, -1};
    MAKE(in, ramp16, 1, 2);
    MAKE(W, lw, 3, 2);
    MAKE(B, lb, 3);
    CHECK_OK(ct_linear(&y, in, W, B));
    CHECK_SHAPE(y, 1, 3);
    CHECK_VALUES(y, 0, 1.5f, 2, -1);
    CHECK_OK(ct_linear(&y, in, W, NULL));
    CHECK_VALUES(y, 0, 1, 2, 0);
}

CT_TEST(bmm_and_matmul)
{
    const float bv[] = {1, 0, 0, 1, 0, 1, 1, 0};
    MAKE(a, ramp16, 2, 2, 2);
    MAKE(b, bv, 2, 2, 2); /* identity, swap */
    ct_tensor *y;
    CHECK_OK(ct_bmm(&y, a, b));
    CHECK_VALUES(y, 0, 1, 2, 3, 4, 6, 5, 8, 7);
    MAKE(m, ramp16, 2, 3);
    MAKE(v, ramp16, 3, 1);
    CHECK_OK(ct_matmul(&y, m, v));
    CHECK_VALUES(y, 0, 14, 32);
}

CT_TEST(softmax_group_and_layer_norm)
{
    const float lv[] = {0, 0.69314718f, 1.09861229f};
    MAKE(l, lv, 1, 3);
    ct_tensor *y;
    CHECK_OK(ct_softmax(&y, l, 1));
    CHECK_VALUES(y, 1e-6, 1.0f / 6, 2.0f / 6, 3.0f / 6);

    /* group 0 = channels 0,1 = {1,2,3,4}: mean 2.5, var 1.25; group 1 = {5..8}. */
    const float gw[] = {1, 2, 1, 1}, gb[] = {0, 0, 1, 0};
    MAKE(x, ramp16, 1, 4, 1, 2);
    MAKE(w, gw, 4);
    MAKE(b, gb, 4);
    const double s = 1 / sqrt(1.25 + 1e-5);
    CHECK_OK(ct_group_norm(&y, x, 2, w, b, 1e-5));
    CHECK_VALUES(y, 1e-5, -1.5 * s, -0.5 * s, 2 * 0.5 * s, 2 * 1.5 * s, 1 - 1.5 * s,
                 1 - 0.5 * s, 0.5 * s, 1.5 * s);
    CHECK_OK(ct_group_norm(&y, x, 1, NULL, NULL, 1e-5));
    CHECK_SHAPE(y, 1, 4, 1, 2);

    /* rows {1,2,3} and {4,5,6}: mean-centred over sqrt(2/3) */
    const float lnw[] = {1, 2, 3}, lnb[] = {0, 1, 0};
    MAKE(z, ramp16, 2, 3);
    MAKE(lw, lnw, 3);
    MAKE(lb, lnb, 3);
    const double k = 1 / sqrt(2.0 / 3.0 + 1e-5);
    CHECK_OK(ct_layer_norm(&y, z, lw, lb, 1e-5));
    CHECK_VALUES(y, 1e-5, -k, 1, 3 * k, -k, 1, 3 * k);

    /* batch norm (inference): (x - mean) / sqrt(var + eps) * w + b per channel */
    const float rm[] = {1, 2}, rv[] = {4, 0.25f}, bw[] = {1, 2}, bb[] = {0, -1};
    MAKE(bx, ramp16, 1, 2, 2);
    MAKE(mean, rm, 2);
    MAKE(var, rv, 2);
    MAKE(bnw, bw, 2);
    MAKE(bnb, bb, 2);
    CHECK_OK(ct_batch_norm(&y, bx, bnw, bnb, mean, var, 0));
    CHECK_VALUES(y, 1e-6, 0, 0.5f, 3, 7);
}

CT_TEST(pad_and_upsample)
{
    const float five = 5;
    MAKE(x, &five, 1, 1, 1, 1);
    ct_tensor *y;
    CHECK_OK(ct_pad2d(&y, x, 1, 0, 0, 1)); /* left 1, bottom 1 */
    CHECK_SHAPE(y, 1, 1, 2, 2);
    CHECK_VALUES(y, 0, 0, 5, 0, 0);
    MAKE(q, ramp16, 1, 1, 2, 2);
    CHECK_OK(ct_upsample_nearest2x(&y, q));
    CHECK_SHAPE(y, 1, 1, 4, 4);
    CHECK_VALUES(y, 0, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4);
}

/* Reference bicubic (PyTorch's: A = -0.75, align_corners=False, border-clamped taps) along
 * one axis. */
static double cubic_weight(double x)
{
    const double A = -0.75;
    x = fabs(x);
    if (x <= 1)
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2)
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

static void bicubic_reference(const float *src, int h, int w, float *dst, int oh, int ow)
{
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            double sy = (oy + 0.5) * h / oh - 0.5, sx = (ox + 0.5) * w / ow - 0.5;
            int fy = (int)floor(sy), fx = (int)floor(sx);
            double acc = 0;
            for (int i = -1; i <= 2; i++)
                for (int j = -1; j <= 2; j++) {
                    int yy = fy + i < 0 ? 0 : fy + i >= h ? h - 1 : fy + i;
                    int xx = fx + j < 0 ? 0 : fx + j >= w ? w - 1 : fx + j;
                    acc += cubic_weight(sy - (fy + i)) * cubic_weight(sx - (fx + j)) *
                           src[yy * w + xx];
                }
            dst[oy * ow + ox] = (float)acc;
        }
}

CT_TEST(bicubic_resize_matches_reference)
{
    const float src[] = {1, 2, 3, 4, 0, -1, 5, 2, 7, 7, 1, 0, 3, 9, -2, 6};
    struct {
        int h, w, oh, ow;
    } cases[] = {{2, 2, 4, 4}, {4, 4, 2, 3}, {4, 4, 7, 5}};
    for (size_t c = 0; c < COUNT(cases); c++) {
        const int64_t shape[] = {1, 1, cases[c].h, cases[c].w};
        ct_tensor *x, *y;
        CHECK_OK(ct_from_host(&x, src, DC_FLOAT32, 4, shape, CT_CPU));
        CHECK_OK(ct_resize_bicubic(&y, x, cases[c].oh, cases[c].ow));
        CHECK_SHAPE(y, 1, 1, cases[c].oh, cases[c].ow);
        float got[64], want[64];
        size_t n = (size_t)cases[c].oh * cases[c].ow;
        CHECK_OK(ct_to_host(y, got, n * sizeof(float)));
        bicubic_reference(src, cases[c].h, cases[c].w, want, cases[c].oh, cases[c].ow);
        CHECKF(max_abs_diff(got, want, n) < 1e-5, "case %zu: max diff %g", c,
               max_abs_diff(got, want, n));
    }
    /* One value by hand: 2x2 -> 4x4 corner, taps at -0.25: 1 + w(1.25) * (2 - 1) per axis,
     * w(1.25) = -0.10546875; rows give 0.89453125 and 2.89453125, then
     * 0.89453125 + 2 * -0.10546875. */
    const int64_t shape[] = {1, 1, 2, 2};
    ct_tensor *x, *y;
    CHECK_OK(ct_from_host(&x, ramp16, DC_FLOAT32, 4, shape, CT_CPU));
    CHECK_OK(ct_resize_bicubic(&y, x, 4, 4));
    float corner[16];
    CHECK_OK(ct_to_host(y, corner, sizeof corner));
    CHECK_NEAR(corner[0], 0.68359375, 1e-7);
}

CT_TEST(pooling)
{
    MAKE(x, ramp16, 1, 1, 4, 4);
    ct_tensor *y;
    CHECK_OK(ct_avg_pool2d(&y, x, 2, 2));
    CHECK_VALUES(y, 0, 3.5f, 5.5f, 11.5f, 13.5f);
    CHECK_OK(ct_max_pool2d(&y, x, 2, 2, 0));
    CHECK_VALUES(y, 0, 6, 8, 14, 16);
    CHECK_OK(ct_max_pool2d(&y, x, 3, 2, 1));
    CHECK_VALUES(y, 0, 6, 8, 14, 16);
    CHECK_OK(ct_adaptive_avg_pool2d(&y, x, 1, 1));
    CHECK_VALUES(y, 0, 8.5f);
    /* 4 -> 3 bins: [0,2), [1,3), [2,4) on each axis */
    CHECK_OK(ct_adaptive_avg_pool2d(&y, x, 3, 3));
    CHECK_VALUES(y, 0, 3.5f, 4.5f, 5.5f, 7.5f, 8.5f, 9.5f, 11.5f, 12.5f, 13.5f);
}

CT_TEST(cosine_similarity)
{
    const float av[] = {1, 0, 1, 1, 3, 4}, bv[] = {0, 1, 2, 2, -3, -4};
    MAKE(a, av, 3, 2);
    MAKE(b, bv, 3, 2);
    ct_tensor *y;
    CHECK_OK(ct_cosine_similarity(&y, a, b, 1, 1e-8));
    CHECK_SHAPE(y, 3);
    CHECK_VALUES(y, 1e-6, 0, 1, -1);
}

CT_TEST(in_place_ops)
{
    const float zeros[3] = {0};
    MAKE(t, zeros, 3);
    MAKE(src, ramp16, 3);
    CHECK_OK(ct_copy_(t, src));
    CHECK_VALUES(t, 0, 1, 2, 3);
    CHECK_OK(ct_mul_scalar_(t, 2));
    CHECK_VALUES(t, 0, 2, 4, 6);
    CHECK_OK(ct_add_(t, src, -0.5));
    CHECK_VALUES(t, 0, 1.5f, 3, 4.5f);
    /* in place on a leaf that requires grad is allowed (outside autograd) */
    CHECK_OK(ct_set_requires_grad(t, 1));
    CHECK_OK(ct_mul_scalar_(t, 2));
    CHECK_VALUES(t, 0, 3, 6, 9);
}

/* ---- the error boundary ---- */

CT_TEST(cxx_exception_becomes_status_and_message)
{
    MAKE(a, ramp16, 2, 3);
    MAKE(b, ramp16, 2, 3);
    ct_tensor *y = (ct_tensor *)&y;
    int status = ct_matmul(&y, a, b);
    CHECK(status != DC_OK);
    CHECK(status == DC_EINTERNAL);
    CHECK(y == NULL);
    CHECK(strstr(dc_last_error(), "ct_matmul") != NULL);
    CHECK(strlen(dc_last_error()) > strlen("ct_matmul: "));
    CHECK(ct_conv2d(&y, a, b, NULL, 1, 0) != DC_OK);
    CHECK(strstr(dc_last_error(), "ct_conv2d") != NULL);
    const int64_t i[] = {5}, ishape[] = {1};
    ct_tensor *index;
    CHECK_OK(ct_from_host(&index, i, DC_INT64, 1, ishape, CT_CPU));
    CHECK(ct_index_select(&y, a, 0, index) != DC_OK);
    CHECK(dc_last_error()[0] != '\0');
}

CT_TEST(null_arguments_are_rejected)
{
    MAKE(a, ramp16, 2);
    ct_tensor *y = (ct_tensor *)&y;
    CHECK_STATUS(ct_add(&y, a, NULL), DC_EINVAL);
    CHECK(y == NULL);
    CHECK(strstr(dc_last_error(), "ct_add") && strstr(dc_last_error(), "NULL"));
    CHECK_STATUS(ct_add(NULL, a, a), DC_EINVAL);
    CHECK_STATUS(ct_exp(&y, NULL), DC_EINVAL);
    CHECK_STATUS(ct_conv2d(&y, a, NULL, NULL, 1, 0), DC_EINVAL);
    CHECK_STATUS(ct_to_host(NULL, NULL, 0), DC_EINVAL);
    CHECK_STATUS(ct_backward(NULL), DC_EINVAL);
    CHECK_STATUS(ct_grad(&y, NULL), DC_EINVAL);
    CHECK_STATUS(ct_set_requires_grad(NULL, 1), DC_EINVAL);
    CHECK_STATUS(ct_copy_(a, NULL), DC_EINVAL);
    CHECK_STATUS(ct_adam_step(NULL), DC_EINVAL);
    CHECK_STATUS(ct_item(NULL, NULL), DC_EINVAL);
    CHECK_STATUS(ct_parse_device(NULL, NULL), DC_EINVAL);
    ct_tensor *list[] = {a, NULL};
    CHECK_STATUS(ct_cat(&y, list, 2, 0), DC_EINVAL);
    CHECK(ct_ndim(NULL) == -1 && ct_numel(NULL) == -1 && ct_size(NULL, 0) == -1);
    CHECK((int)ct_dtype(NULL) == -1 && ct_device(NULL) == CT_CPU);
    CHECK(ct_size(a, 1) == -1 && ct_size(a, -2) == -1);
    CHECK(ct_requires_grad(NULL) == 0);
    ct_free(NULL);
    ct_scope_end(NULL);
    ct_adam_free(NULL);
}

/* ---- pools ---- */

TEST(pools_free_everything_but_kept_handles)
{
    size_t base = ct_live_handles();
    size_t outer = ct_pool_begin();
    ct_tensor *a, *b, *c, *d;
    CHECK_OK(ct_scalar(&a, 1, DC_FLOAT32, CT_CPU));
    size_t inner = ct_pool_begin();
    CHECK_OK(ct_scalar(&b, 2, DC_FLOAT32, CT_CPU));
    CHECK_OK(ct_scalar(&c, 3, DC_FLOAT32, CT_CPU));
    CHECK(ct_live_handles() == base + 3);
    ct_pool_end(inner, &c, 1); /* b freed, c moves to the outer pool */
    CHECK(ct_live_handles() == base + 2);
    double v;
    CHECK_OK(ct_item(c, &v));
    CHECK(v == 3);
    CHECK_OK(ct_scalar(&d, 4, DC_FLOAT32, CT_CPU));
    ct_free(d); /* freeing a pooled handle removes it from the pool */
    CHECK(ct_live_handles() == base + 2);
    ct_pool_end(outer, &a, 1); /* c freed, a now owned by the caller */
    CHECK(ct_live_handles() == base + 1);
    CHECK_OK(ct_item(a, &v));
    CHECK(v == 1);
    ct_free(a);
    CHECK(ct_live_handles() == base);

    /* an unpooled handle passed in `keep` is left alone; nothing is pooled outside pools */
    ct_tensor *owned;
    CHECK_OK(ct_scalar(&owned, 5, DC_FLOAT32, CT_CPU));
    size_t mark = ct_pool_begin();
    ct_tensor *tmp;
    CHECK_OK(ct_add(&tmp, owned, owned));
    ct_pool_end(mark, &owned, 1);
    CHECK(ct_live_handles() == base + 1);
    ct_free(owned);
    CHECK(ct_live_handles() == base);
}

TEST(pool_end_closes_inner_pools_left_open)
{
    size_t base = ct_live_handles();
    size_t outer = ct_pool_begin();
    ct_tensor *x, *y = NULL, *owned;
    ct_pool_begin(); /* an inner pool whose block fails before its end */
    ct_pool_begin();
    CHECK_OK(ct_scalar(&x, 1, DC_FLOAT32, CT_CPU));
    CHECK(ct_bmm(&y, x, x) != DC_OK && y == NULL);
    ct_pool_end(outer, NULL, 0);
    CHECK(ct_live_handles() == base);
    ct_pool_end(outer, NULL, 0); /* already closed: nothing happens */
    /* no pool is left open: a new handle is the caller's, untouched by later pools */
    CHECK_OK(ct_scalar(&owned, 2, DC_FLOAT32, CT_CPU));
    size_t again = ct_pool_begin();
    CHECK(again == outer);
    ct_pool_end(again, NULL, 0);
    CHECK(ct_live_handles() == base + 1);
    double v;
    CHECK_OK(ct_item(owned, &v));
    CHECK(v == 2);
    ct_free(owned);
    CHECK(ct_live_handles() == base);
}

/* ---- autograd ---- */

CT_TEST(gradient_of_sum_of_squares_is_twice_x)
{
    const float xv[] = {1, -2, 0.5f};
    MAKE(x, xv, 3);
    CHECK(ct_requires_grad(x) == 0);
    CHECK_OK(ct_set_requires_grad(x, 1));
    CHECK(ct_requires_grad(x) == 1);
    ct_tensor *g, *sq, *loss;
    CHECK_OK(ct_grad(&g, x));
    CHECK(g == NULL);
    CHECK_OK(ct_mul(&sq, x, x));
    CHECK_OK(ct_sum(&loss, sq));
    CHECK(ct_requires_grad(loss));
    CHECK_OK(ct_backward(loss));
    CHECK_OK(ct_grad(&g, x));
    CHECK(g != NULL);
    CHECK_VALUES(g, 0, 2, -4, 1);
    CHECK_OK(ct_grad(&g, sq)); /* not a leaf: no gradient kept */
    CHECK(g == NULL);
    /* a second backward (fresh graph) accumulates */
    CHECK_OK(ct_mul(&sq, x, x));
    CHECK_OK(ct_sum(&loss, sq));
    CHECK_OK(ct_backward(loss));
    CHECK_OK(ct_grad(&g, x));
    CHECK_VALUES(g, 0, 4, -8, 2);
    CHECK_OK(ct_clear_grad(x));
    CHECK_OK(ct_grad(&g, x));
    CHECK(g == NULL);
    /* detach cuts the graph; a non-scalar loss is refused */
    ct_tensor *dx;
    CHECK_OK(ct_detach(&dx, x));
    CHECK(ct_requires_grad(dx) == 0);
    CHECK_STATUS(ct_backward(sq), DC_EINVAL);
    /* gradients through nn ops reach the weight: d/dw sum(conv(x, w)) = sum of windows */
    const float ones[4] = {1, 1, 1, 1};
    MAKE(img, ramp16, 1, 1, 3, 3);
    MAKE(w, ones, 1, 1, 2, 2);
    CHECK_OK(ct_set_requires_grad(w, 1));
    ct_tensor *y, *s;
    CHECK_OK(ct_conv2d(&y, img, w, NULL, 1, 0));
    CHECK_OK(ct_sum(&s, y));
    CHECK_OK(ct_backward(s));
    CHECK_OK(ct_grad(&g, w));
    CHECK_VALUES(g, 0, 12, 16, 24, 28);
}

CT_TEST(no_grad_and_inference_scopes_record_nothing)
{
    MAKE(x, ramp16, 3);
    CHECK_OK(ct_set_requires_grad(x, 1));
    CHECK(ct_grad_enabled() == 1);
    ct_scope *scope;
    ct_tensor *y;
    CHECK_OK(ct_grad_mode_begin(&scope, 0));
    CHECK(ct_grad_enabled() == 0);
    CHECK_OK(ct_mul(&y, x, x));
    CHECK(ct_requires_grad(y) == 0);
    /* nested enable inside no-grad */
    ct_scope *inner;
    CHECK_OK(ct_grad_mode_begin(&inner, 1));
    CHECK(ct_grad_enabled() == 1);
    ct_scope_end(inner);
    CHECK(ct_grad_enabled() == 0);
    ct_scope_end(scope);
    CHECK(ct_grad_enabled() == 1);
    ct_tensor *loss;
    CHECK_OK(ct_sum(&loss, y));
    CHECK_STATUS(ct_backward(loss), DC_EINVAL);

    CHECK_OK(ct_inference_mode_begin(&scope));
    CHECK(ct_grad_enabled() == 0);
    CHECK_OK(ct_mul(&y, x, x));
    CHECK(ct_requires_grad(y) == 0);
    CHECK_VALUES(y, 0, 1, 4, 9);
    ct_scope_end(scope);
    CHECK(ct_grad_enabled() == 1);
    CHECK_OK(ct_mul(&y, x, x));
    CHECK(ct_requires_grad(y) == 1);
}

/* ---- Adam ---- */

/* Sets param's gradient to g by backpropagating sum(param * g). */
static int set_grad(ct_tensor *param, const float *g, int64_t n)
{
    ct_tensor *gt, *prod, *loss;
    DCI_TRY(ct_from_host(&gt, g, DC_FLOAT32, 1, &n, CT_CPU));
    DCI_TRY(ct_mul(&prod, param, gt));
    DCI_TRY(ct_sum(&loss, prod));
    return ct_backward(loss);
}

CT_TEST(adam_matches_torch_formula)
{
    const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const float p0[] = {1, -2, 0.5f, 3}, g1[] = {0.5f, -1, 2, 1e-3f}, g2[] = {-1, 0.25f, 2, 0};
    MAKE(p, p0, 4);
    MAKE(frozen, p0, 2);
    CHECK_OK(ct_set_requires_grad(p, 1));
    CHECK_OK(ct_set_requires_grad(frozen, 1));
    ct_tensor *params[] = {p, frozen};
    ct_adam *adam;
    CHECK_OK(ct_adam_new(&adam, params, 2, lr, b1, b2, eps, 0));

    /* first step: p - lr * g / (|g| + eps), whatever the betas */
    CHECK_OK(set_grad(p, g1, 4));
    CHECK_OK(ct_adam_step(adam));
    float got[4], fz[2];
    CHECK_OK(ct_to_host(p, got, sizeof got));
    CHECK_OK(ct_to_host(frozen, fz, sizeof fz));
    CHECK(fz[0] == p0[0] && fz[1] == p0[1]); /* no grad: skipped */
    double expect[4], m[4], v[4];
    for (int i = 0; i < 4; i++) {
        expect[i] = p0[i] - lr * g1[i] / (fabs(g1[i]) + eps);
        CHECK_NEAR(got[i], expect[i], 2e-6);
        m[i] = (1 - b1) * g1[i];
        v[i] = (1 - b2) * (double)g1[i] * g1[i];
        expect[i] = got[i];
    }

    /* second step with a new gradient, by hand */
    CHECK_OK(ct_adam_zero_grad(adam));
    ct_tensor *g;
    CHECK_OK(ct_grad(&g, p));
    CHECK(g == NULL);
    CHECK_OK(set_grad(p, g2, 4));
    ct_adam_set_lr(adam, 0.05);
    CHECK(ct_adam_lr(adam) == 0.05);
    CHECK_OK(ct_adam_step(adam));
    CHECK_OK(ct_to_host(p, got, sizeof got));
    for (int i = 0; i < 4; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g2[i];
        v[i] = b2 * v[i] + (1 - b2) * (double)g2[i] * g2[i];
        double denom = sqrt(v[i]) / sqrt(1 - b2 * b2) + eps;
        expect[i] -= 0.05 / (1 - b1 * b1) * m[i] / denom;
        CHECKF(fabs(got[i] - expect[i]) <= 2e-6, "p[%d] = %.9g, expected %.9g", i, got[i],
               expect[i]);
    }
    ct_adam_free(adam);
}

CT_TEST(adam_weight_decay_and_validation)
{
    const float p0[] = {2, -1}, g1[] = {0.5f, 0.5f};
    const double lr = 0.01, wd = 0.1;
    MAKE(p, p0, 2);
    CHECK_OK(ct_set_requires_grad(p, 1));
    ct_adam *adam;
    CHECK_STATUS(ct_adam_new(&adam, &p, 1, -1, 0.9, 0.999, 1e-8, 0), DC_EINVAL);
    CHECK_STATUS(ct_adam_new(&adam, &p, 1, lr, 1.0, 0.999, 1e-8, 0), DC_EINVAL);
    CHECK_STATUS(ct_adam_new(&adam, &p, 0, lr, 0.9, 0.999, 1e-8, 0), DC_EINVAL);
    CHECK_OK(ct_adam_new(&adam, &p, 1, lr, 0.9, 0.999, 1e-8, wd));
    CHECK(ct_adam_lr(adam) == lr);
    CHECK_OK(set_grad(p, g1, 2));
    CHECK_OK(ct_adam_step(adam));
    float got[2];
    CHECK_OK(ct_to_host(p, got, sizeof got));
    ct_adam_free(adam);
    for (int i = 0; i < 2; i++) {
        double g = g1[i] + wd * p0[i]; /* the decayed gradient */
        CHECK_NEAR(got[i], p0[i] - lr * g / (fabs(g) + 1e-8), 1e-6);
    }
}

/* ---- runtime ---- */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Runs this test binary again with only this test and DIFFCLIP_NUM_THREADS = env_value (or
 * unset); returns the thread count the child reports before any other tensor work. */
static int child_thread_count(const char *env_value)
{
    char exe[4096], cmd[8300];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    snprintf(cmd, sizeof cmd, "%s%s%s CT_TEST_THREADS_CHILD=1 '%s' default_thread_count",
             env_value ? "DIFFCLIP_NUM_THREADS='" : "env -u DIFFCLIP_NUM_THREADS",
             env_value ? env_value : "", env_value ? "'" : "", exe);
    FILE *child = popen(cmd, "r");
    if (!child)
        return -1;
    char line[256];
    int count = -1;
    while (fgets(line, sizeof line, child))
        sscanf(line, "threads=%d", &count);
    return pclose(child) == 0 ? count : -1;
}

TEST(default_thread_count_is_cores_or_environment)
{
    if (getenv("CT_TEST_THREADS_CHILD")) {
        printf("threads=%d\n", ct_get_num_threads());
        return;
    }
    int cores = online_cores();
    CHECK(child_thread_count(NULL) == cores);
    CHECK(child_thread_count("3") == 3);
    CHECK(child_thread_count("junk") == cores);
    CHECK(child_thread_count("0") == cores);
}

TEST(set_num_threads)
{
    int before = ct_get_num_threads();
    CHECK_OK(ct_set_num_threads(3));
    CHECK(ct_get_num_threads() == 3);
    CHECK(dc_get_num_threads() == 3);
    CHECK_OK(dc_set_num_threads(0));
    CHECK(ct_get_num_threads() == online_cores());
    CHECK_OK(ct_set_num_threads(before));
}

/* A product large enough that OpenBLAS splits it into jobs; small integer entries keep every
 * sum exact, so it equals the naive product exactly however the work was split. */
static int exact_product(int n)
{
    size_t count = (size_t)n * (size_t)n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b);
    float *y = malloc(count * sizeof *y);
    int same = 0;
    ct_tensor *ta = NULL, *tb = NULL, *ty = NULL;
    const int64_t shape[] = {n, n};
    if (!a || !b || !y)
        goto done;
    for (size_t i = 0; i < count; i++) {
        a[i] = (float)((int)((i * 7 + i / n * 3) % 5) - 2);
        b[i] = (float)((int)((i * 5 + i / n * 11) % 7) - 3);
    }
    if (ct_from_host(&ta, a, DC_FLOAT32, 2, shape, CT_CPU) != DC_OK ||
        ct_from_host(&tb, b, DC_FLOAT32, 2, shape, CT_CPU) != DC_OK ||
        ct_matmul(&ty, ta, tb) != DC_OK || ct_to_host(ty, y, count * sizeof *y) != DC_OK)
        goto done;
    same = 1;
    for (int i = 0; i < n && same; i++)
        for (int j = 0; j < n && same; j++) {
            float sum = 0;
            for (int k = 0; k < n; k++)
                sum += a[(size_t)i * n + k] * b[(size_t)k * n + j];
            same = y[(size_t)i * n + j] == sum;
        }
done:
    ct_free(ta);
    ct_free(tb);
    ct_free(ty);
    free(a);
    free(b);
    free(y);
    return same;
}

static void *exact_products(void *arg)
{
    int *ok = arg;
    *ok = exact_product(256) && exact_product(320);
    return NULL;
}

/* Where OpenBLAS takes a threading callback (0.3.27 and later), ctorch has given it one, so
 * that its jobs run on LibTorch's pool; products stay exact with fewer pool threads than
 * OpenBLAS's jobs (1), more (3), and from several threads at once. */
TEST(blas_jobs_run_on_the_shared_pool)
{
    int before = ct_get_num_threads();
    CHECK_OK(ct_set_num_threads(before));
    void *settable = dlsym(RTLD_DEFAULT, "openblas_set_threads_callback_function");
    void **installed = dlsym(RTLD_DEFAULT, "openblas_threads_callback_");
    if (settable && installed)
        CHECK(*installed != NULL);
    for (int threads = 1; threads <= 3; threads++) {
        CHECK_OK(ct_set_num_threads(threads));
        CHECKF(exact_product(384), "a 384 x 384 product with %d threads is not exact", threads);
    }
    CHECK_OK(ct_set_num_threads(before));
    pthread_t workers[3];
    int ok[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&workers[i], NULL, exact_products, &ok[i]) == 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(workers[i], NULL);
        CHECKF(ok[i], "thread %d's products are not exact", i);
    }
}

/* Asking for CUDA where there is none is DC_EDEVICE with a message that says which of the
 * two it is (a CPU-only LibTorch, or no device), and what was made before stays usable; with
 * a GPU, the caching allocator's peak follows an allocation and its reset. */
TEST(cuda_errors_and_peak_memory)
{
    const char *info = dc_backend_info();
    CHECK(strncmp(info, "LibTorch ", 9) == 0);
    CHECK(strstr(info, ct_cuda_backend() ? "CUDA backend registered" : "CPU only") != NULL);
    int64_t allocated = -1, reserved = -1;
    CHECK_STATUS(dc_cuda_memory_peak("cpu", &allocated, &reserved), DC_EINVAL);
    CHECK_STATUS(dc_cuda_memory_peak(NULL, &allocated, NULL), DC_EINVAL);
    CHECK_STATUS(dc_device_check("tpu"), DC_EINVAL);
    CHECK_OK(dc_device_check("cpu"));
    CHECK_OK(dc_device_check("auto"));
    const int64_t shape[] = {2};
    ct_tensor *t = NULL, *moved = NULL, *sq = NULL;
    CHECK_OK(ct_from_host(&t, ramp16, DC_FLOAT32, 1, shape, CT_CPU));
    if (!ct_cuda_available()) {
        CHECK_STATUS(dc_device_check("cuda:0"), DC_EDEVICE);
        CHECK(strstr(dc_last_error(), ct_cuda_backend() ? "finds no CUDA device"
                                                        : "has no CUDA backend") != NULL);
        CHECK_STATUS(dc_cuda_memory_peak("cuda", &allocated, &reserved), DC_EDEVICE);
        CHECK(allocated == -1 && reserved == -1);
        CHECK_STATUS(dc_cuda_memory_reset_peak("cuda:1"), DC_EDEVICE);
        CHECK_STATUS(ct_to(&moved, t, DC_FLOAT32, 0), DC_EDEVICE);
        CHECK(moved == NULL);
    } else {
        CHECK_STATUS(dc_device_check("cuda:4096"), DC_EDEVICE);
        CHECK(strstr(dc_last_error(), "device(s) exist") != NULL);
        CHECK_OK(dc_cuda_memory_reset_peak("cuda"));
        const int64_t big[] = {16 << 20};             /* 64 MiB of float32 */
        ct_tensor *z = NULL;
        CHECK_OK(ct_zeros(&z, DC_FLOAT32, 1, big, 0));
        CHECK_OK(dc_cuda_memory_peak("cuda", &allocated, &reserved));
        CHECK(allocated >= (int64_t)64 << 20 && reserved >= allocated);
        ct_free(z);
        CHECK_OK(dc_cuda_memory_reset_peak("cuda"));
        CHECK_OK(dc_cuda_memory_peak("cuda", &allocated, NULL));
        CHECK(allocated < (int64_t)64 << 20);
    }
    /* The CPU tensor made before the failures still computes. */
    CHECK_OK(ct_mul(&sq, t, t));
    float back[2];
    CHECK_OK(ct_to_host(sq, back, sizeof back));
    CHECK(back[0] == 1 && back[1] == 4);
    ct_free(sq);
    ct_free(t);
}

TEST(devices)
{
    int device = 7;
    CHECK_OK(ct_parse_device("cpu", &device));
    CHECK(device == CT_CPU);
    CHECK_OK(ct_parse_device("auto", &device));
    CHECK(device == (ct_cuda_available() ? 0 : CT_CPU));
    CHECK(dc_cuda_available() == ct_cuda_available());
    CHECK_STATUS(ct_parse_device("gpu", &device), DC_EINVAL);
    CHECK_STATUS(ct_parse_device("cuda:x", &device), DC_EINVAL);
    CHECK_STATUS(ct_parse_device("cuda:", &device), DC_EINVAL);
    const int64_t shape[] = {2};
    ct_tensor *t = NULL;
    CHECK_STATUS(ct_zeros(&t, DC_FLOAT32, 1, shape, -2), DC_EINVAL);
    if (!ct_cuda_available()) {
        CHECK_STATUS(ct_parse_device("cuda:0", &device), DC_EDEVICE);
        CHECK_STATUS(ct_parse_device("cuda", &device), DC_EDEVICE);
        CHECK_STATUS(ct_zeros(&t, DC_FLOAT32, 1, shape, 0), DC_EDEVICE);
        CHECK(strstr(dc_last_error(), "CUDA") != NULL);
        CHECK(t == NULL);
        return;
    }
    /* with CUDA: a round trip through the GPU and an op there */
    CHECK_OK(ct_parse_device("cuda:0", &device));
    CHECK(device == 0);
    size_t mark = ct_pool_begin();
    ct_tensor *c, *sq;
    CHECK_OK(ct_from_host(&c, ramp16, DC_FLOAT32, 1, shape, 0));
    CHECK(ct_device(c) == 0);
    CHECK_OK(ct_mul(&sq, c, c));
    float back[2];
    CHECK_OK(ct_to_host(sq, back, sizeof back));
    CHECK(back[0] == 1 && back[1] == 4);
    ct_pool_end(mark, NULL, 0);
}

CT_TEST(manual_seed_makes_randn_reproducible)
{
    const int64_t shape[] = {1000};
    static float a[1000], b[1000];
    ct_tensor *x;
    CHECK_OK(ct_manual_seed(1234));
    CHECK_OK(ct_randn(&x, DC_FLOAT32, 1, shape, CT_CPU));
    CHECK_OK(ct_to_host(x, a, sizeof a));
    CHECK_OK(ct_manual_seed(1234));
    CHECK_OK(ct_randn(&x, DC_FLOAT32, 1, shape, CT_CPU));
    CHECK_OK(ct_to_host(x, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    double mean = 0, var = 0;
    for (int i = 0; i < 1000; i++)
        mean += a[i] / 1000.0;
    for (int i = 0; i < 1000; i++)
        var += (a[i] - mean) * (a[i] - mean) / 999.0;
    CHECK(fabs(mean) < 0.15 && fabs(var - 1) < 0.15);
    CHECK_OK(ct_manual_seed(1235));
    CHECK_OK(ct_randn(&x, DC_FLOAT32, 1, shape, CT_CPU));
    CHECK_OK(ct_to_host(x, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) != 0);
}

TEST(flop_counter_counts_convolutions_and_products)
{
    ct_tensor *x, *w, *y, *a, *b, *ab;
    const int64_t xs[4] = {1, 2, 4, 4}, ws[4] = {3, 2, 3, 3}, as[2] = {5, 7}, bs[2] = {7, 11};
    CHECK_OK(ct_zeros(&x, DC_FLOAT32, 4, xs, CT_CPU));
    CHECK_OK(ct_zeros(&w, DC_FLOAT32, 4, ws, CT_CPU));
    CHECK_OK(ct_zeros(&a, DC_FLOAT32, 2, as, CT_CPU));
    CHECK_OK(ct_zeros(&b, DC_FLOAT32, 2, bs, CT_CPU));
    ct_flop_count_reset();
    CHECK_OK(ct_conv2d(&y, x, w, NULL, 1, 1));
    CHECK(ct_flop_count() == 2ull * (3 * 4 * 4) * (2 * 3 * 3));
    CHECK_OK(ct_matmul(&ab, a, b));
    CHECK(ct_flop_count() == 2ull * (3 * 4 * 4) * (2 * 3 * 3) + 2ull * 5 * 11 * 7);
    ct_flop_count_reset();
    CHECK(ct_flop_count() == 0);
    ct_free(x), ct_free(w), ct_free(y), ct_free(a), ct_free(b), ct_free(ab);
}
