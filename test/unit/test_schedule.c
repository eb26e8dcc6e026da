/* The schedule against values computed with numpy 1.24 / torch 1.13 (CPU), as the published
 * code computes them:
 *   betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000)).float()
 *   abar  = (1.0 - betas).cumprod(dim=0)
 *   fixedsmall / fixedlarge log-variances in float64 numpy, cast to float32.
 * Whole arrays are compared through an FNV-1a hash of their float32 bytes. */
#include <stdint.h>
#include <string.h>

#include "diffusion/schedule.h"
#include "harness.h"

static uint64_t fnv1a_floats(const float *v, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof *v; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static const struct {
    int t;
    float beta, alpha_bar, fixedsmall, fixedlarge;
} expected[] = {
    {0, 0x1.a36e2ep-14f, 0x1.fff2e4p-1f, -0x1.7069e2p+5f, -0x1.3a229cp+3f},
    {1, 0x1.f6fb08p-14f, 0x1.ffe32cp-1f, -0x1.3a229cp+3f, -0x1.20ebp+3f},
    {2, 0x1.2543f2p-13f, 0x1.ffd0dap-1f, -0x1.2bbf76p+3f, -0x1.1c001ap+3f},
    {299, 0x1.8ce3c2p-8f, 0x1.95ef0cp-2f, -0x1.4715d0p+2f, -0x1.46d41ep+2f},
    {300, 0x1.8e31f6p-8f, 0x1.9377a2p-2f, -0x1.46df90p+2f, -0x1.469e50p+2f},
    {399, 0x1.07b7ecp-7f, 0x1.8fa8ecp-3f, -0x1.34c140p+2f, -0x1.34a0fcp+2f},
    {400, 0x1.085f06p-7f, 0x1.8c6f78p-3f, -0x1.349880p+2f, -0x1.34787cp+2f},
    {500, 0x1.49a510p-7f, 0x1.3ea7b6p-4f, -0x1.266738p+2f, -0x1.26592ap+2f},
    {637, 0x1.a311d0p-7f, 0x1.07b392p-6f, -0x1.170020p+2f, -0x1.16fca8p+2f},
    {998, 0x1.475a88p-6f, 0x1.59758ap-15f, -0x1.f4dddap+1f, -0x1.f4ddd2p+1f},
    {999, 0x1.47ae14p-6f, 0x1.528ccap-15f, -0x1.f4bd32p+1f, -0x1.f4bd2cp+1f},
};

TEST(default_schedule_matches_torch_bit_for_bit)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    CHECK(s.num_timesteps == 1000);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        int t = expected[i].t;
        CHECKF(s.betas[t] == expected[i].beta, "beta[%d] = %a", t, s.betas[t]);
        CHECKF(s.alphas_cumprod[t] == expected[i].alpha_bar, "abar[%d] = %a", t,
               s.alphas_cumprod[t]);
        CHECKF(s.logvar_fixedsmall[t] == expected[i].fixedsmall, "fixedsmall[%d] = %a", t,
               s.logvar_fixedsmall[t]);
        CHECKF(s.logvar_fixedlarge[t] == expected[i].fixedlarge, "fixedlarge[%d] = %a", t,
               s.logvar_fixedlarge[t]);
    }
    CHECK(fnv1a_floats(s.betas, 1000) == 0x33c12e2d05441e9full);
    CHECK(fnv1a_floats(s.alphas_cumprod, 1000) == 0xfc372a186fd24431ull);
    CHECK(fnv1a_floats(s.logvar_fixedsmall, 1000) == 0x29db701d6948b856ull);
    CHECK(fnv1a_floats(s.logvar_fixedlarge, 1000) == 0x5d6ba5578508ca1full);
    CHECK(df_alpha_bar(&s, -1) == 1.0f);
    CHECK(df_alpha_bar(&s, 300) == s.alphas_cumprod[300]);
    df_schedule_free(&s);
    CHECK(s.betas == NULL);
    df_schedule_free(&s);
}

TEST(custom_schedule_matches_torch)
{
    df_schedule s;
    CHECK_OK(df_schedule_init_linear(&s, 2e-4, 0.03, 500));
    CHECK(s.num_timesteps == 500);
    CHECK(fnv1a_floats(s.betas, 500) == 0x9555ff1c1e7bce93ull);
    CHECK(fnv1a_floats(s.alphas_cumprod, 500) == 0xb12ccfbd6f39f9a0ull);
    df_schedule_free(&s);
}

TEST(schedule_rejects_bad_parameters)
{
    df_schedule s;
    CHECK_STATUS(df_schedule_init_linear(&s, 0.0, 0.02, 1000), DC_EINVAL);
    CHECK_STATUS(df_schedule_init_linear(&s, 0.03, 0.02, 1000), DC_EINVAL);
    CHECK_STATUS(df_schedule_init_linear(&s, 1e-4, 1.0, 1000), DC_EINVAL);
    CHECK_STATUS(df_schedule_init_linear(&s, 1e-4, 0.0 / 0.0, 1000), DC_EINVAL);
    CHECK_STATUS(df_schedule_init_linear(&s, 1e-4, 0.02, 1), DC_EINVAL);
    CHECK_STATUS(df_schedule_init_linear(&s, 1e-4, 0.02, DF_MAX_TIMESTEPS + 1), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "timesteps") != NULL);
}

static int sequence_equals(int t0, int n, const int *want, size_t len)
{
    int seq[64];
    size_t count = 0;
    if (df_step_sequence(t0, n, seq, 64, &count) != DC_OK || count != len)
        return 0;
    return memcmp(seq, want, len * sizeof *want) == 0;
}

TEST(step_sequences_follow_float64_linspace)
{
    int seq[64];
    size_t count;
    /* The 36th element (index 35) is 214 where exact integer maths gives 215. */
    CHECK_OK(df_step_sequence(301, 50, seq, 64, &count));
    CHECK(count == 50 && seq[35] == 214 && seq[36] == 221 && seq[49] == 301);

    static const int t500_n40[] = {0,   12,  25,  38,  51,  64,  76,  89,  102, 115,
                                   128, 141, 153, 166, 179, 192, 205, 217, 230, 243,
                                   256, 269, 282, 294, 307, 320, 333, 346, 358, 371,
                                   384, 397, 410, 423, 435, 448, 461, 474, 487, 500};
    CHECK(sequence_equals(500, 40, t500_n40, 40));
    static const int t500_n6[] = {0, 100, 200, 300, 400, 500};
    CHECK(sequence_equals(500, 6, t500_n6, 6));
    static const int t601_n6[] = {0, 120, 240, 360, 480, 601};
    CHECK(sequence_equals(601, 6, t601_n6, 6));
    static const int t300_n8[] = {0, 42, 85, 128, 171, 214, 257, 300};
    CHECK(sequence_equals(300, 8, t300_n8, 8));
    static const int t400_n8[] = {0, 57, 114, 171, 228, 285, 342, 400};
    CHECK(sequence_equals(400, 8, t400_n8, 8));
}

TEST(step_sequence_zero_means_every_step)
{
    int seq[8];
    size_t count;
    CHECK_OK(df_step_sequence(5, 0, seq, 8, &count));
    CHECK(count == 5 && seq[0] == 0 && seq[4] == 4);
    CHECK_OK(df_step_sequence(999, 0, NULL, 0, &count));
    CHECK(count == 999);
}

TEST(step_sequence_rejects_bad_arguments)
{
    int seq[4];
    size_t count;
    CHECK_STATUS(df_step_sequence(300, 1, seq, 4, &count), DC_EINVAL);
    CHECK_STATUS(df_step_sequence(300, -2, seq, 4, &count), DC_EINVAL);
    CHECK_STATUS(df_step_sequence(0, 4, seq, 4, &count), DC_EINVAL);
    CHECK_STATUS(df_step_sequence(300, 5, seq, 4, &count), DC_EINVAL);
    CHECK_STATUS(df_step_sequence(300, 4, seq, 4, NULL), DC_EINVAL);
}
