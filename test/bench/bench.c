/* The libdiffclip benchmark (`make bench`): one table of what users wait for, at the
 * published 256x256 configurations with random weights of the real shapes:
 *   - the CelebA-HQ DDPM UNet (ch 128, mult 1,1,2,2,4,4, 2 res blocks, attention at 16) and
 *     the AFHQ ADM UNet (128 channels, 1 res block, attention at 16, learned sigma): ms per
 *     forward (batch 1), per forward+backward (gradient to every weight), per DDIM inversion
 *     (40 steps: 39 UNet calls);
 *   - one CelebA-HQ fine-tuning image (S_gen 6; the DDPM UNet above, the CLIP below) in each
 *     gradient mode, and in the full mode with recomputation (bfloat16: the UNet calls in
 *     bfloat16 over float32 master weights);
 *   - a ViT-B/16-shaped CLIP: ms per image encode, per text direction;
 *   - an n x n x n sgemm, the machine's reference;
 * in float32 and bfloat16, with the GFLOP/s achieved (forward FLOPs counted by ctorch; a
 * backward counted as twice its forward), each cell's peak RSS, and the largest difference
 * between the bfloat16 and float32 results (same weights, same input).
 *
 * Each cell runs in its own process (this program run with --row), so that its peak RSS is
 * its own and one row cannot warm another's caches.
 *
 *   bench [--device D] [--runs N] [--invert-steps N] [--only KEY[,KEY...]] [--markdown FILE]
 *   bench --row KEY:DTYPE [--runs N] [--invert-steps N] [--out FILE]
 *                                        one cell, one result line; FILE gets a UNet row's
 *                                        last output (noise or latent) as .npy
 *
 *   bench --serve ddpm|adm:DTYPE           a model kept loaded, timing single calls on
 *                                        command (for compare_pytorch.py; see serve())
 *
 * --device (or DIFFCLIP_BENCH_DEVICE) runs every row on cpu (the default), cuda or cuda:N;
 * on CUDA the memory column is the caching allocator's peak allocated MiB, not the RSS.
 * --markdown replaces the table between the markers <!-- bench-table --> and
 * <!-- /bench-table --> of FILE (appending it when they are missing). DIFFCLIP_NUM_THREADS
 * sets the thread count (default: the cores). DC_CLIP_DATA is the folder of CLIP's
 * vocabulary, needed by the text-direction row. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "bench.h"
#include "clip_fixture.h"
#include "diffusion/encoder.h"
#include "finetune/finetuner.h"
#include "finetune/losses.h"
#include "io/npy.h"
#include "nn/clip.h"
#include "nn/tokenizer.h"
#include "nn/unet.h"
#include "unet_fixtures.h"

enum { SIZE = 256, SGEMM_N = 1024, INVERT_T0 = 500, CLIP_IMAGE_RUNS = 7, FINETUNE_STEPS = 6 };

typedef struct bench_options {
    int runs, invert_steps;
    const char *out;                 /* --out: where a UNet row saves its last result */
} bench_options;

typedef struct row_result {
    double ms, flops;
} row_result;

/* ---- UNet rows ---- */

static const ddpm_config celeba = {.ch = 128, .out_ch = 3, .levels = 6, .nrb = 2,
                                   .mult = {1, 1, 2, 2, 4, 4}, .attn = {0, 0, 0, 0, 1, 0}};
static const adm_config afhq = {.mc = 128, .out_ch = 6, .levels = 6, .nrb = 1,
                                .scale_shift = 1, .updown = 1, .mult = {1, 1, 2, 2, 4, 4},
                                .attn = {0, 0, 0, 0, 1, 0}};

typedef struct unet_case {
    nn_unet *net;
    ct_tensor *x, *t;
    df_schedule schedule;
    int invert_steps;
    float *result;                   /* the last call's output, 3 x SIZE x SIZE */
} unet_case;

static int load_unet(unet_case *c, int adm, dc_dtype dtype)
{
    sd_builder b = {.rng = adm ? 2 : 1};
    if (adm)
        build_adm(&b, &afhq);
    else
        build_ddpm(&b, &celeba);
    nn_unet_options options = {.head_channels = adm ? 64 : 0};
    const int64_t xshape[4] = {1, 3, SIZE, SIZE}, tshape[1] = {1};
    const float t_value = INVERT_T0;
    int st = nn_unet_load(&c->net, &b.sd, adm ? "AFHQ ADM" : "CelebA-HQ DDPM", bench_device, dtype,
                          &options);
    free_builder(&b);
    if (st == DC_OK)
        st = ct_randn(&c->x, DC_FLOAT32, 4, xshape, bench_device);
    if (st == DC_OK)
        st = ct_from_host(&c->t, &t_value, DC_FLOAT32, 1, tshape, bench_device);
    if (st == DC_OK)
        st = df_schedule_init_default(&c->schedule);
    return st;
}

static void free_unet(unet_case *c)
{
    free(c->result);
    ct_free(c->x);
    ct_free(c->t);
    nn_unet_free(c->net);
    df_schedule_free(&c->schedule);
}

/* Keeps the first three channels of y (float32) on the host, when c->result is set: the
 * noise prediction or latent that --out saves. */
static int keep_result(unet_case *c, const ct_tensor *y)
{
    if (!c->result)
        return DC_OK;
    ct_tensor *eps, *f32;
    DCI_TRY(ct_narrow(&eps, y, 1, 0, 3));
    DCI_TRY(ct_to(&f32, eps, DC_FLOAT32, CT_CPU));
    return ct_to_host(f32, c->result, 3 * SIZE * SIZE * sizeof *c->result);
}

static int run_forward(void *context)
{
    unet_case *c = context;
    ct_tensor *out;
    DCI_TRY(nn_unet_forward(c->net, c->x, c->t, &out));
    return keep_result(c, out);
}

static int run_forward_backward(void *context)
{
    unet_case *c = context;
    ct_tensor *out, *loss;
    DCI_TRY(nn_unet_forward(c->net, c->x, c->t, &out));
    DCI_TRY(ct_sum(&loss, out));
    DCI_TRY(ct_backward(loss));
    for (size_t i = 0; i < nn_unet_tensor_count(c->net); i++)
        DCI_TRY(ct_clear_grad(nn_unet_tensor(c->net, i)));
    return DC_OK;
}

static int run_invert(void *context)
{
    unet_case *c = context;
    ct_tensor *lat;
    DCI_TRY(df_ddim_invert(&c->schedule, nn_unet_eps, c->net, c->x, INVERT_T0, c->invert_steps,
                           NULL, NULL, &lat));
    return keep_result(c, lat);
}

/* FLOPs of one forward, counted (the call also warms up). */
static double forward_flops(unet_case *c)
{
    ct_flop_count_reset();
    return timed_call(run_forward, c, 0) < 0 ? -1 : (double)ct_flop_count();
}

typedef enum unet_work { UNET_FORWARD, UNET_BACKWARD, UNET_INVERT } unet_work;

static int unet_row(int adm, unet_work work, dc_dtype dtype, const bench_options *o,
                    row_result *r)
{
    unet_case c = {.invert_steps = o->invert_steps,
                   .result = malloc(3 * SIZE * SIZE * sizeof(float))};
    int st = c.result ? load_unet(&c, adm, dtype) : dci_err(DC_ENOMEM, "out of memory");
    double flops = st == DC_OK ? forward_flops(&c) : -1;
    if (flops < 0) {
        free_unet(&c);
        return -1;
    }
    if (work == UNET_FORWARD) {
        r->flops = flops;
        r->ms = median_ms(run_forward, NULL, &c, o->runs, 0);
    } else if (work == UNET_BACKWARD) {
        for (size_t i = 0; i < nn_unet_tensor_count(c.net); i++)
            ct_set_requires_grad(nn_unet_tensor(c.net, i), 1);
        r->flops = 3 * flops;
        r->ms = median_ms(run_forward_backward, NULL, &c, o->runs, 1);
    } else {
        /* Forty steps take minutes: one inversion after the forward that counted FLOPs. */
        r->flops = (o->invert_steps - 1) * flops;
        r->ms = timed_call(run_invert, &c, 0);
    }
    if (r->ms >= 0 && o->out && work != UNET_BACKWARD) {
        dc_tensor saved = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, SIZE, SIZE},
                           .data = c.result};
        st = io_npy_write_file(o->out, &saved);
    }
    free_unet(&c);
    return r->ms < 0 || st != DC_OK ? -1 : DC_OK;
}

static int ddpm_forward(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(0, UNET_FORWARD, d, o, r);
}
static int ddpm_backward(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(0, UNET_BACKWARD, d, o, r);
}
static int ddpm_invert(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(0, UNET_INVERT, d, o, r);
}
static int adm_forward(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(1, UNET_FORWARD, d, o, r);
}
static int adm_backward(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(1, UNET_BACKWARD, d, o, r);
}
static int adm_invert(dc_dtype d, const bench_options *o, row_result *r)
{
    return unet_row(1, UNET_INVERT, d, o, r);
}

/* ---- CLIP rows ---- */

typedef struct clip_case {
    nn_clip *clip;
    ct_tensor *x;
    nn_tokenizer *tokenizer;
    ft_text_direction cache;
} clip_case;

static int load_clip(clip_case *c, dc_dtype dtype)
{
    io_state_dict sd = vit_b16_sd();
    int st = nn_clip_load(&c->clip, &sd, "ViT-B/16 (random weights)", bench_device, dtype);
    io_state_dict_free(&sd);
    return st;
}

static void free_clip(clip_case *c)
{
    ft_text_direction_clear(&c->cache);
    nn_tokenizer_free(c->tokenizer);
    ct_free(c->x);
    nn_clip_free(c->clip);
}

static int run_clip_image(void *context)
{
    clip_case *c = context;
    ct_tensor *features;
    return nn_clip_encode_image(c->clip, c->x, &features);
}

static int run_text_direction(void *context)
{
    clip_case *c = context;
    ct_tensor *direction;
    ft_text_direction_clear(&c->cache);   /* each run computes it afresh */
    return ft_text_direction_get(&c->cache, c->clip, c->tokenizer, "face", "angry face",
                                 &direction);
}

static int clip_image(dc_dtype dtype, const bench_options *o, row_result *r)
{
    (void)o;
    clip_case c = {0};
    const int64_t shape[4] = {1, 3, RESOLUTION, RESOLUTION};
    int st = load_clip(&c, dtype);
    if (st == DC_OK)
        st = ct_randn(&c.x, DC_FLOAT32, 4, shape, bench_device);
    if (st == DC_OK) {
        r->flops = image_flops();
        r->ms = median_ms(run_clip_image, NULL, &c, CLIP_IMAGE_RUNS, 0);
    }
    free_clip(&c);
    return st == DC_OK && r->ms >= 0 ? DC_OK : -1;
}

static int clip_text_direction(dc_dtype dtype, const bench_options *o, row_result *r)
{
    clip_case c = {0};
    const char *data = getenv("DC_CLIP_DATA");
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/bpe_simple_vocab_16e6.txt.gz", data ? data : ".");
    int st = load_clip(&c, dtype);
    if (st == DC_OK)
        st = nn_tokenizer_load(&c.tokenizer, vocab);
    if (st == DC_OK) {
        r->flops = 2.0 * (double)ft_imagenet_template_count * text_flops();
        r->ms = median_ms(run_text_direction, NULL, &c, o->runs, 0);
    }
    free_clip(&c);
    return st == DC_OK && r->ms >= 0 ? DC_OK : -1;
}

/* ---- fine-tuning rows ---- */

typedef struct finetune_case {
    unet_case unet;
    clip_case clip;
    ct_tensor *x_lat;
    ft_trainer trainer;
} finetune_case;

static int run_finetune_step(void *context)
{
    finetune_case *c = context;
    return ft_trainer_step(&c->trainer, c->unet.x, c->x_lat);
}

/* One image of the README's CelebA-HQ run (t_0 500, S_gen 6, CLIP loss weight 3, L1 weight 1,
 * no identity loss, lr 8e-6) in a gradient mode, with or without recomputation, computing
 * in `dtype` (float32 master weights): its generation steps, losses, backward passes and
 * Adam steps. FLOPs: S_gen UNet forwards and their backwards (CLIP's, a few per cent, and
 * the recomputed forwards, not counted). */
static int finetune_row(ft_grad_mode mode, int recompute, dc_dtype dtype,
                        const bench_options *o, row_result *r)
{
    finetune_case c = {0};
    const ft_config config = {.t0 = INVERT_T0, .steps = FINETUNE_STEPS, .clip_weight = 3,
                              .l1_weight = 1, .loss_form = FT_CLIP_LOSS_LOG,
                              .grad_mode = mode, .learning_rate = 8e-6,
                              .recompute = recompute, .dtype = dtype};
    const char *data = getenv("DC_CLIP_DATA");
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/bpe_simple_vocab_16e6.txt.gz", data ? data : ".");
    const int64_t shape[4] = {1, 3, SIZE, SIZE};
    int st = load_unet(&c.unet, 0, DC_FLOAT32);
    double flops = st == DC_OK ? forward_flops(&c.unet) : -1;
    if (flops >= 0)
        st = load_clip(&c.clip, DC_FLOAT32);
    if (st == DC_OK)
        st = nn_tokenizer_load(&c.clip.tokenizer, vocab);
    if (st == DC_OK)
        st = ct_randn(&c.x_lat, DC_FLOAT32, 4, shape, bench_device);
    if (st == DC_OK)
        st = ft_trainer_init(&c.trainer, c.unet.net, c.clip.clip, c.clip.tokenizer, NULL,
                             &c.unet.schedule, &config);
    if (st == DC_OK)
        st = ft_trainer_begin(&c.trainer, "face", "angry face");
    if (st == DC_OK && flops >= 0) {
        r->flops = 3 * FINETUNE_STEPS * flops;
        /* The warm-up is a first image: Adam's state exists from then on. */
        r->ms = median_ms(run_finetune_step, NULL, &c, o->runs, 1);
    }
    ft_trainer_free(&c.trainer);
    ct_free(c.x_lat);
    free_clip(&c.clip);
    free_unet(&c.unet);
    return st == DC_OK && flops >= 0 && r->ms >= 0 ? DC_OK : -1;
}

static int finetune_full(dc_dtype d, const bench_options *o, row_result *r)
{
    return finetune_row(FT_GRAD_FULL, 0, d, o, r);
}
static int finetune_recompute(dc_dtype d, const bench_options *o, row_result *r)
{
    return finetune_row(FT_GRAD_FULL, 1, d, o, r);
}
static int finetune_per_step(dc_dtype d, const bench_options *o, row_result *r)
{
    return finetune_row(FT_GRAD_PER_STEP, 0, d, o, r);
}

/* ---- the reference ---- */

static int sgemm(dc_dtype dtype, const bench_options *o, row_result *r)
{
    (void)dtype;
    double n = SGEMM_N;
    r->flops = 2 * n * n * n;
    r->ms = sgemm_ms(SGEMM_N, 2 * o->runs + 1);
    return r->ms < 0 ? -1 : DC_OK;
}

/* ---- the table ---- */

enum { F32 = 1, BF16 = 2 };

typedef struct row_spec {
    const char *key, *label;
    int dtypes;
    int (*run)(dc_dtype dtype, const bench_options *o, row_result *r);
    int saves;                       /* writes its result to --out (float32 and bfloat16) */
} row_spec;

static const row_spec rows[] = {
    {"sgemm", "sgemm 1024x1024x1024 (the reference)", F32, sgemm, 0},
    {"ddpm-forward", "CelebA-HQ DDPM UNet forward", F32 | BF16, ddpm_forward, 1},
    {"ddpm-backward", "CelebA-HQ DDPM UNet forward+backward", F32, ddpm_backward, 0},
    {"ddpm-invert", "CelebA-HQ DDPM DDIM inversion", F32 | BF16, ddpm_invert, 1},
    {"adm-forward", "AFHQ ADM UNet forward", F32 | BF16, adm_forward, 1},
    {"adm-backward", "AFHQ ADM UNet forward+backward", F32, adm_backward, 0},
    {"adm-invert", "AFHQ ADM DDIM inversion", F32 | BF16, adm_invert, 1},
    {"finetune-full", "fine-tuning image, S_gen 6, full gradient", F32 | BF16, finetune_full, 0},
    {"finetune-recompute", "fine-tuning image, S_gen 6, full gradient, recomputed",
     F32 | BF16, finetune_recompute, 0},
    {"finetune-step", "fine-tuning image, S_gen 6, per-step", F32 | BF16, finetune_per_step, 0},
    {"clip-image", "CLIP ViT-B/16 image encode", F32, clip_image, 0},
    {"clip-text", "CLIP text direction (79 templates x 2)", F32, clip_text_direction, 0},
};
enum { ROW_COUNT = sizeof rows / sizeof rows[0] };

static const row_spec *find_row(const char *key, size_t len)
{
    for (int i = 0; i < ROW_COUNT; i++)
        if (strlen(rows[i].key) == len && strncmp(rows[i].key, key, len) == 0)
            return &rows[i];
    return NULL;
}

/* ---- serving a comparison ---- */

/* One step k -> k+1 of the DDIM inversion of c->x to INVERT_T0 in `steps` steps (the loop of
 * df_ddim_invert, one pair per call), replacing *x. */
static int invert_step(unet_case *c, int steps, int k, ct_tensor **x)
{
    int *seq = malloc((size_t)steps * sizeof *seq);
    size_t count;
    if (!seq)
        return dci_err(DC_ENOMEM, "out of memory");
    int st = df_step_sequence(INVERT_T0, steps, seq, (size_t)steps, &count);
    df_step_pair pair = {.t = seq[k], .t_next = seq[k + 1]};
    free(seq);
    DCI_TRY(st);
    df_step_params p = {.sampler = DF_SAMPLER_DDIM, .eta = 0.0};
    ct_scope *scope = NULL;
    ct_tensor *next = NULL;
    DCI_TRY(ct_inference_mode_begin(&scope));
    st = df_run_steps(&c->schedule, nn_unet_eps, c->net, *x, &pair, 1, &p, 0, NULL, NULL,
                          &next);
    ct_scope_end(scope);
    DCI_TRY(st);
    ct_free(*x);
    *x = next;
    return DC_OK;
}

/* --serve ddpm:DTYPE (or adm:DTYPE): loads the UNet, runs one untimed forward, then answers
 * commands on stdin, one result line each, so that compare_pytorch.py can alternate single
 * calls with PyTorch's while both models stay loaded:
 *   forward          one timed forward
 *   sgemm            the median of 7 sgemm products
 *   invert-begin S   starts a DDIM inversion of S steps from the benchmark's input
 *   invert-next      times its next step (S - 1 in all)
 * Results are "bench-result MS FLOPS RSS_MIB"; an unknown command ends the server. */
static int serve(const char *spec)
{
    const char *colon = strchr(spec, ':');
    int adm = colon && strncmp(spec, "adm:", 4) == 0;
    if (!colon || (!adm && strncmp(spec, "ddpm:", 5) != 0) ||
        (strcmp(colon + 1, "float32") != 0 && strcmp(colon + 1, "bfloat16") != 0)) {
        fprintf(stderr, "bench: --serve ddpm|adm:float32|bfloat16, not '%s'\n", spec);
        return 2;
    }
    ct_manual_seed(0);
    unet_case c = {0};
    int st = load_unet(&c, adm, strcmp(colon + 1, "bfloat16") == 0 ? DC_BFLOAT16 : DC_FLOAT32);
    double flops = st == DC_OK ? forward_flops(&c) : -1;
    ct_tensor *x = NULL;
    int steps = 0, k = 0;
    char line[128];
    printf("ready\n");
    fflush(stdout);
    while (flops >= 0 && fgets(line, sizeof line, stdin)) {
        double ms = -1, done_flops = flops;
        if (strcmp(line, "forward\n") == 0) {
            ms = timed_call(run_forward, &c, 0);
        } else if (strcmp(line, "sgemm\n") == 0) {
            ms = sgemm_ms(SGEMM_N, 7);
            done_flops = 2.0 * SGEMM_N * SGEMM_N * SGEMM_N;
        } else if (sscanf(line, "invert-begin %d", &steps) == 1 && steps >= 2) {
            ct_free(x);
            x = NULL;
            k = 0;
            ms = ct_clone(&x, c.x) == DC_OK ? 0 : -1;
            done_flops = 0;
        } else if (strcmp(line, "invert-next\n") == 0 && x && k + 1 < steps) {
            double start = now_ms();
            if (invert_step(&c, steps, k++, &x) == DC_OK && ct_synchronize(bench_device) == DC_OK)
                ms = now_ms() - start;
        } else {
            break;
        }
        if (ms < 0) {
            fprintf(stderr, "bench: %s: %s", line, dc_last_error());
            st = -1;
            break;
        }
        printf("bench-result %.3f %.6g %.1f\n", ms, done_flops, peak_rss_mib());
        fflush(stdout);
    }
    if (flops < 0)
        fprintf(stderr, "bench: %s: %s\n", spec, dc_last_error());
    ct_free(x);
    free_unet(&c);
    return st == DC_OK && flops >= 0 ? 0 : 1;
}

/* --row KEY:DTYPE: runs one cell and prints "bench-result MS FLOPS RSS_MIB". */
static int run_one(const char *spec, const bench_options *o)
{
    const char *colon = strchr(spec, ':');
    const row_spec *row = colon ? find_row(spec, (size_t)(colon - spec)) : NULL;
    dc_dtype dtype = DC_FLOAT32;
    if (row && strcmp(colon + 1, "bfloat16") == 0 && (row->dtypes & BF16))
        dtype = DC_BFLOAT16;
    else if (!row || strcmp(colon + 1, "float32") != 0 || !(row->dtypes & F32))
        row = NULL;
    if (!row) {
        fprintf(stderr, "bench: unknown row '%s' (KEY:float32 or KEY:bfloat16)\n", spec);
        return 2;
    }
    ct_manual_seed(0);
    row_result r = {-1, 0};
    if (row->run(dtype, o, &r) != DC_OK) {
        fprintf(stderr, "bench: %s: %s\n", spec, dc_last_error());
        return 1;
    }
    printf("bench-result %.3f %.6g %.1f\n", r.ms, r.flops, peak_rss_mib());
    return 0;
}

typedef struct cell {
    int done;
    double ms, flops, rss;
} cell;

/* Runs `spec` in a child process (this program with --row) and reads its result line; `out`
 * (may be NULL) is passed on as --out. */
static cell run_child(const char *spec, const bench_options *o, const char *out)
{
    cell c = {0};
    char runs[16], steps[16];
    snprintf(runs, sizeof runs, "%d", o->runs);
    snprintf(steps, sizeof steps, "%d", o->invert_steps);
    char *const argv[] = {"bench", "--row", (char *)spec, "--runs", runs, "--invert-steps",
                          steps, out ? "--out" : NULL, (char *)out, NULL};
    int fd[2];
    if (pipe(fd) != 0)
        return c;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *in = pid > 0 ? fdopen(fd[0], "r") : NULL;
    char line[256];
    while (in && fgets(line, sizeof line, in))
        if (sscanf(line, "bench-result %lf %lf %lf", &c.ms, &c.flops, &c.rss) == 3)
            c.done = 1;
    if (in)
        fclose(in);
    else
        close(fd[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        c.done = 0;
    return c;
}

static void format_cell(char *buf, size_t size, const cell *c, int wanted, double sgemm_gflops,
                        int markdown)
{
    const char *sep = markdown ? " | " : " ";
    if (!wanted) {
        snprintf(buf, size, markdown ? "%s%s%s%s%s%s" : "%10s%s%8s%s%6s%s%8s", "", sep, "", sep,
                 "", sep, "");
        return;
    }
    if (!c->done) {
        snprintf(buf, size, markdown ? "%s%s%s%s%s%s" : "%10s%s%8s%s%6s%s%8s", "failed", sep,
                 "", sep, "", sep, "");
        return;
    }
    double gflops = c->flops / (c->ms * 1e6);
    char share[16] = "";
    if (sgemm_gflops > 0 && c->flops > 0)
        snprintf(share, sizeof share, "%.0f%%", 100 * gflops / sgemm_gflops);
    snprintf(buf, size, markdown ? "%.0f%s%.1f%s%s%s%.0f" : "%10.0f%s%8.1f%s%6s%s%8.0f", c->ms,
             sep, gflops, sep, share, sep, c->rss);
}

/* "max|b - a| (max|a|)" of two saved results. */
static void format_difference(char *buf, size_t size, const char *a_path, const char *b_path)
{
    dc_tensor a = {0}, b = {0};
    snprintf(buf, size, "?");
    if (io_npy_read_file(a_path, &a) == DC_OK && io_npy_read_file(b_path, &b) == DC_OK &&
        a.dtype == DC_FLOAT32 && b.dtype == DC_FLOAT32 &&
        dc_tensor_numel(&a) == dc_tensor_numel(&b)) {
        const float *x = a.data, *y = b.data;
        double diff = 0, scale = 0;
        for (int64_t i = 0; i < dc_tensor_numel(&a); i++) {
            double d = fabs((double)y[i] - x[i]), m = fabs((double)x[i]);
            diff = d > diff ? d : diff;
            scale = m > scale ? m : scale;
        }
        snprintf(buf, size, "%.3g (%.3g)", diff, scale);
    }
    dc_tensor_free(&a);
    dc_tensor_free(&b);
}

static void read_load(char *buf, size_t size)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(buf, size, "unknown");
    if (f)
        fclose(f);
}

static void read_cpu_name(char *buf, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, size, "unknown CPU");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(buf, size, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

/* Writes `table` between the markers of `path`, or appends it with them. */
static int write_markdown(const char *path, const char *table)
{
    static const char begin[] = "<!-- bench-table -->\n", end[] = "<!-- /bench-table -->\n";
    char *old = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0 && (len = (size_t)ftell(f)) > 0) {
            rewind(f);
            old = malloc(len + 1);
            if (old && fread(old, 1, len, f) == len)
                old[len] = '\0';
            else
                free(old), old = NULL;
        }
        fclose(f);
    }
    char *b = old ? strstr(old, begin) : NULL, *e = b ? strstr(b, end) : NULL;
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
        free(old);
        return 1;
    }
    if (e) {
        fwrite(old, 1, (size_t)(b - old), f);
        fprintf(f, "%s%s%s", begin, table, end);
        fputs(e + strlen(end), f);
    } else {
        if (old)
            fprintf(f, "%s\n", old);
        fprintf(f, "%s%s%s", begin, table, end);
    }
    free(old);
    return fclose(f) == 0 ? 0 : 1;
}

static int wanted_row(const char *only, const char *key)
{
    if (!only)
        return 1;
    size_t n = strlen(key);
    for (const char *p = only; (p = strstr(p, key)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static int run_table(const bench_options *o, const char *only, const char *markdown)
{
    char cpu[256], load_start[64], load_end[64];
    read_cpu_name(cpu, sizeof cpu);
    read_load(load_start, sizeof load_start);
    const char *threads = getenv("DIFFCLIP_NUM_THREADS");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("libdiffclip bench: %s, %ld cores, %s threads, batch 1, 256x256 UNets, %d runs per "
           "cell (median), %d-step inversions, load average %s\n",
           cpu, cores, threads && *threads ? threads : "all", o->runs, o->invert_steps,
           load_start);
    printf("%-42s %10s %8s %6s %8s %10s %8s %6s %8s  %s\n", "", "f32 ms", "GFLOP/s", "sgemm",
           "RSS MiB", "bf16 ms", "GFLOP/s", "sgemm", "RSS MiB", "max|bf16 - f32| (max|f32|)");
    char tmpdir[] = "/tmp/diffclip-bench-XXXXXX";
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "bench: no temporary folder: %s\n", strerror(errno));
        return 1;
    }

    /* The markdown table is built as the rows finish. */
    size_t cap = 16384, used = 0;
    char *md = malloc(cap);
    if (!md) {
        rmdir(tmpdir);
        return 1;
    }
    used += (size_t)snprintf(md + used, cap - used,
                             "| | float32 ms | GFLOP/s | of sgemm | peak RSS MiB | bfloat16 ms "
                             "| GFLOP/s | of sgemm | peak RSS MiB | max abs bfloat16 - float32 "
                             "(max abs float32) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    double sgemm_gflops = 0;
    for (int i = 0; i < ROW_COUNT; i++) {
        const row_spec *row = &rows[i];
        if (!wanted_row(only, row->key) && strcmp(row->key, "sgemm") != 0)
            continue;
        cell cells[2] = {{0}, {0}};
        char spec[64], label[96], outs[2][1100];
        for (int d = 0; d < 2; d++) {
            if (!(row->dtypes & (d ? BF16 : F32)))
                continue;
            snprintf(spec, sizeof spec, "%s:%s", row->key, d ? "bfloat16" : "float32");
            snprintf(outs[d], sizeof outs[d], "%s/%s.npy", tmpdir, spec);
            cells[d] = run_child(spec, o, row->saves ? outs[d] : NULL);
        }
        char diff[64] = "";
        if (row->saves && cells[0].done && cells[1].done)
            format_difference(diff, sizeof diff, outs[0], outs[1]);
        if (strcmp(row->key, "sgemm") == 0 && cells[0].done)
            sgemm_gflops = cells[0].flops / (cells[0].ms * 1e6);
        snprintf(label, sizeof label, "%s", row->label);
        if (strstr(row->key, "invert"))
            snprintf(label, sizeof label, "%s, %d steps", row->label, o->invert_steps);
        char f32[96], bf16[96];
        format_cell(f32, sizeof f32, &cells[0], row->dtypes & F32, sgemm_gflops, 0);
        format_cell(bf16, sizeof bf16, &cells[1], row->dtypes & BF16, sgemm_gflops, 0);
        printf("%-42s %s %s %s\n", label, f32, bf16, diff);
        fflush(stdout);
        format_cell(f32, sizeof f32, &cells[0], row->dtypes & F32, sgemm_gflops, 1);
        format_cell(bf16, sizeof bf16, &cells[1], row->dtypes & BF16, sgemm_gflops, 1);
        if (used < cap)
            used += (size_t)snprintf(md + used, cap - used, "| %s | %s | %s | %s |\n", label,
                                     f32, bf16, diff);
        for (int d = 0; d < 2 && row->saves; d++)
            remove(outs[d]);
    }
    rmdir(tmpdir);
    read_load(load_end, sizeof load_end);
    printf("load average at the end: %s\n", load_end);
    int rc = 0;
    if (markdown) {
        char *table = malloc(cap + 1024);
        if (!table) {
            free(md);
            return 1;
        }
        snprintf(table, cap + 1024,
                 "%s, %ld cores, %s threads; load average %s at the start, %s at the end; "
                 "batch 1; median of %d runs per cell after a warm-up (inversions: one run); "
                 "GFLOP/s from counted forward FLOPs (a backward counts twice its forward); "
                 "each cell in its own process.\n\n%s",
                 cpu, cores, threads && *threads ? threads : "all", load_start, load_end,
                 o->runs, md);
        rc = write_markdown(markdown, table);
        free(table);
    }
    free(md);
    return rc;
}

int main(int argc, char **argv)
{
    bench_options o = {.runs = 3, .invert_steps = 40};
    const char *row = NULL, *only = NULL, *markdown = NULL, *server = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--runs") == 0 && value)
            o.runs = atoi(value), i++;
        else if (strcmp(arg, "--invert-steps") == 0 && value)
            o.invert_steps = atoi(value), i++;
        else if (strcmp(arg, "--row") == 0 && value)
            row = value, i++;
        else if (strcmp(arg, "--only") == 0 && value)
            only = value, i++;
        else if (strcmp(arg, "--markdown") == 0 && value)
            markdown = value, i++;
        else if (strcmp(arg, "--out") == 0 && value)
            o.out = value, i++;
        else if (strcmp(arg, "--serve") == 0 && value)
            server = value, i++;
        else if (strcmp(arg, "--device") == 0 && value)
            setenv("DIFFCLIP_BENCH_DEVICE", value, 1), i++;
        else {
            fprintf(stderr, "usage: bench [--device D] [--runs N] [--invert-steps N] [--only KEY,...] "
                            "[--markdown FILE] | bench --row KEY:DTYPE [--runs N] "
                            "[--invert-steps N] [--out FILE] | bench --serve ddpm|adm:DTYPE\n");
            return 2;
        }
    }
    if (bench_init() != DC_OK) {
        fprintf(stderr, "bench: %s\n", dc_last_error());
        return 2;
    }
    if (o.runs < 1 || o.runs > BENCH_MAX_RUNS || o.invert_steps < 2) {
        fprintf(stderr, "bench: runs must be 1..%d and invert steps >= 2\n", BENCH_MAX_RUNS);
        return 2;
    }
    if (server)
        return serve(server);
    return row ? run_one(row, &o) : run_table(&o, only, markdown);
}
