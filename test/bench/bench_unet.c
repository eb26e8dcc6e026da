/* Diffusion benchmark at the published 256x256 configurations with random weights of the
 * real shapes: the CelebA-HQ DDPM UNet (ch 128, mult 1,1,2,2,4,4, 2 res blocks, attention at
 * 16) and the AFHQ ADM UNet (128 channels, 1 res block, attention at 16, learned sigma).
 * Prints ms per UNet forward (batch 1, float32 and bfloat16), per forward+backward (gradient
 * to every weight), per DDIM inversion (40 steps by default), with the GFLOP/s achieved
 * (forward FLOPs counted by ctorch; a backward is counted as twice its forward) beside the
 * sgemm GFLOP/s measured in the same run, and the peak RSS.
 * Environment: BENCH_RUNS (timed runs per row, default 3), BENCH_INVERT_STEPS (default 40;
 * 0 skips the inversion row), BENCH_BF16 (0 skips the bfloat16 rows). */
#include <stdio.h>
#include <stdlib.h>

#include "api/error.h"
#include "bench.h"
#include "diffusion/encoder.h"
#include "nn/unet.h"
#include "unet_fixtures.h"

enum { SIZE = 256, SGEMM_N = 1024 };

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

typedef struct unet_case {
    nn_unet *net;
    ct_tensor *x, *t;
    int backward;
} unet_case;

static int run_unet(void *context)
{
    unet_case *c = context;
    ct_tensor *out, *loss;
    DCI_TRY(nn_unet_forward(c->net, c->x, c->t, &out));
    if (!c->backward)
        return DC_OK;
    DCI_TRY(ct_sum(&loss, out));
    DCI_TRY(ct_backward(loss));
    for (size_t i = 0; i < nn_unet_tensor_count(c->net); i++)
        DCI_TRY(ct_clear_grad(nn_unet_tensor(c->net, i)));
    return DC_OK;
}

typedef struct invert_case {
    nn_unet *net;
    ct_tensor *x0;
    df_schedule schedule;
    int steps;
} invert_case;

static int run_invert(void *context)
{
    invert_case *c = context;
    ct_tensor *lat;
    return df_ddim_invert(&c->schedule, nn_unet_eps, c->net, c->x0, 500, c->steps, NULL, NULL,
                          &lat);
}

/* Forward FLOPs of one call, counted. */
static double forward_flops(unet_case *c)
{
    ct_scope *scope = NULL;
    size_t mark = ct_pool_begin();
    ct_flop_count_reset();
    int st = ct_inference_mode_begin(&scope);
    if (st == DC_OK)
        st = run_unet(c);
    ct_scope_end(scope);
    ct_pool_end(mark, NULL, 0);
    return st == DC_OK ? (double)ct_flop_count() : 0;
}

static void bench_model(const char *name, const io_state_dict *sd, int head_channels, int runs,
                        int invert_steps, int bf16)
{
    nn_unet_options options = {.head_channels = head_channels};
    const int64_t xshape[4] = {1, 3, SIZE, SIZE}, tshape[1] = {1};
    const float t_value = 500;
    for (int pass = 0; pass < (bf16 ? 2 : 1); pass++) {
        dc_dtype dtype = pass ? DC_BFLOAT16 : DC_FLOAT32;
        const char *dtype_name = pass ? "bfloat16" : "float32";
        unet_case c = {0};
        char label[96];
        if (nn_unet_load(&c.net, sd, name, CT_CPU, dtype, &options) != DC_OK ||
            ct_randn(&c.x, dtype, 4, xshape, CT_CPU) != DC_OK ||
            ct_from_host(&c.t, &t_value, DC_FLOAT32, 1, tshape, CT_CPU) != DC_OK) {
            printf("%s %s: %s\n", name, dtype_name, dc_last_error());
            nn_unet_free(c.net);
            return;
        }
        double flops = forward_flops(&c);
        snprintf(label, sizeof label, "%s forward, %s", name, dtype_name);
        print_row(label, median_ms(run_unet, &c, runs, 0), flops);
        if (!pass) {
            for (size_t i = 0; i < nn_unet_tensor_count(c.net); i++)
                ct_set_requires_grad(nn_unet_tensor(c.net, i), 1);
            c.backward = 1;
            snprintf(label, sizeof label, "%s forward+backward, %s", name, dtype_name);
            print_row(label, median_ms(run_unet, &c, runs, 1), 3 * flops);
            for (size_t i = 0; i < nn_unet_tensor_count(c.net); i++)
                ct_set_requires_grad(nn_unet_tensor(c.net, i), 0);
        }
        if (invert_steps >= 2) {
            invert_case inv = {.net = c.net, .x0 = c.x, .steps = invert_steps};
            if (df_schedule_init_default(&inv.schedule) == DC_OK) {
                snprintf(label, sizeof label, "%s %d-step inversion, %s", name, invert_steps,
                         dtype_name);
                print_row(label, median_ms(run_invert, &inv, 1, 0), (invert_steps - 1) * flops);
                df_schedule_free(&inv.schedule);
            }
        }
        ct_free(c.x);
        ct_free(c.t);
        nn_unet_free(c.net);
    }
}

int main(void)
{
    int runs = env_int("BENCH_RUNS", 3), invert_steps = env_int("BENCH_INVERT_STEPS", 40);
    int bf16 = env_int("BENCH_BF16", 1);
    ct_manual_seed(0);
    printf("UNets at %dx%d, batch 1, random weights of the published shapes, CPU, %d threads\n",
           SIZE, SIZE, ct_get_num_threads());
    printf("%-44s %12s %10s %10s\n", "", "ms (median)", "GFLOP", "GFLOP/s");
    char label[64];
    double n = SGEMM_N;
    snprintf(label, sizeof label, "sgemm %dx%dx%d (machine reference)", SGEMM_N, SGEMM_N,
             SGEMM_N);
    print_row(label, sgemm_ms(SGEMM_N, 5), 2 * n * n * n);

    static const ddpm_config celeba = {.ch = 128, .out_ch = 3, .levels = 6, .nrb = 2,
                                       .mult = {1, 1, 2, 2, 4, 4}, .attn = {0, 0, 0, 0, 1, 0}};
    static const adm_config afhq = {.mc = 128, .out_ch = 6, .levels = 6, .nrb = 1,
                                    .scale_shift = 1, .updown = 1, .mult = {1, 1, 2, 2, 4, 4},
                                    .attn = {0, 0, 0, 0, 1, 0}};
    sd_builder b = {.rng = 1};
    build_ddpm(&b, &celeba);
    bench_model("CelebA-HQ DDPM", &b.sd, 0, runs, invert_steps, bf16);
    free_builder(&b);
    b.rng = 2;
    build_adm(&b, &afhq);
    bench_model("AFHQ ADM", &b.sd, 64, runs, 0, bf16);
    free_builder(&b);
    printf("runs: %d per row after a warm-up (inversion: 1); backward counted as 2x forward\n",
           runs);
    printf("peak RSS: %.0f MiB\n", peak_rss_mib());
    return 0;
}
