#include <math.h>
#include <stdlib.h>

#include "harness.h"

enum { N = 2 * 3 * 16 * 16 };

TEST(identical_images_are_perfect)
{
    static float a[N];
    for (int i = 0; i < N; i++)
        a[i] = sinf((float)i * 0.37f);
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 16, 16}, .data = a};
    dc_image_metrics m;
    CHECK_OK(dc_compare_images(&t, &t, &m));
    CHECK(m.mae == 0 && isinf(m.psnr));
    CHECK_NEAR(m.ssim, 1.0, 1e-12);
}

TEST(constant_offset_has_known_mae_and_psnr)
{
    static float a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = 0.5f * sinf((float)i);
        b[i] = a[i] + 0.2f;   /* 0.1 on the [0, 1] scale */
    }
    dc_tensor ta = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 16, 16}, .data = a};
    dc_tensor tb = ta;
    tb.data = b;
    dc_image_metrics m;
    CHECK_OK(dc_compare_images(&ta, &tb, &m));
    CHECK_NEAR(m.mae, 0.1, 1e-6);
    CHECK_NEAR(m.psnr, 20.0, 1e-4);
    CHECK(m.ssim < 1 && m.ssim > 0.5);
}

TEST(compare_refuses_bad_shapes)
{
    static float a[N];
    dc_tensor ta = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 16, 16}, .data = a};
    dc_tensor tb = ta;
    tb.shape[3] = 8;
    tb.shape[2] = 32;
    dc_image_metrics m;
    CHECK_STATUS(dc_compare_images(&ta, &tb, &m), DC_EINVAL);
    dc_tensor small = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 8, 8}, .data = a};
    CHECK_STATUS(dc_compare_images(&small, &small, &m), DC_EINVAL);
    CHECK_STATUS(dc_compare_images(NULL, &ta, &m), DC_EINVAL);
}
