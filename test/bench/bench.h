/* What the benchmark rows share: timing medians, the sgemm reference and the peak RSS
 * (header-only: the benchmark is one program). */
#ifndef DC_TEST_BENCH_BENCH_H
#define DC_TEST_BENCH_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "ctorch/ctorch.h"

enum { BENCH_MAX_RUNS = 16 };

/* The device every row runs on: DIFFCLIP_BENCH_DEVICE ("cpu" by default, "cuda", "cuda:N"),
 * read once by bench_init (the --device option sets it, so that the per-row child processes
 * inherit it). */
static int bench_device = CT_CPU;

static int bench_init(void)
{
    const char *name = getenv("DIFFCLIP_BENCH_DEVICE");
    return name && *name ? ct_parse_device(name, &bench_device) : DC_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef int (*bench_fn)(void *context);

/* One call of fn in a pool, in inference mode (grad 0) or with autograd on (grad 1); its
 * time in ms, < 0 on failure. */
static double timed_call(bench_fn fn, void *context, int grad)
{
    ct_scope *scope = NULL;
    if ((grad ? ct_grad_mode_begin(&scope, 1) : ct_inference_mode_begin(&scope)) != DC_OK)
        return -1;
    size_t mark = ct_pool_begin();
    double start = now_ms();
    int st = fn(context);
    /* CUDA kernels run after their launch returns: the time ends when they have finished. */
    if (st == DC_OK)
        st = ct_synchronize(bench_device);
    double elapsed = now_ms() - start;
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(scope);
    return st == DC_OK ? elapsed : -1;
}

/* The median of `runs` (at most BENCH_MAX_RUNS) timed calls of fn after one untimed call of
 * warmup (fn itself when NULL), in ms; < 0 on failure. */
static double median_ms(bench_fn fn, bench_fn warmup, void *context, int runs, int grad)
{
    double times[BENCH_MAX_RUNS];
    if (runs > BENCH_MAX_RUNS)
        runs = BENCH_MAX_RUNS;
    if (runs < 1)
        runs = 1;
    if (timed_call(warmup ? warmup : fn, context, grad) < 0)
        return -1;
    for (int i = 0; i < runs; i++)
        if ((times[i] = timed_call(fn, context, grad)) < 0)
            return -1;
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    return runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
}

typedef struct sgemm_case {
    ct_tensor *a, *b;
} sgemm_case;

static int run_sgemm(void *context)
{
    sgemm_case *c = context;
    ct_tensor *product;
    return ct_matmul(&product, c->a, c->b);
}

/* ms of an n x n x n float32 matrix product (median of `runs`), the machine's reference. */
static double sgemm_ms(int n, int runs)
{
    sgemm_case g = {0};
    const int64_t shape[2] = {n, n};
    double ms = -1;
    if (ct_randn(&g.a, DC_FLOAT32, 2, shape, bench_device) == DC_OK &&
        ct_randn(&g.b, DC_FLOAT32, 2, shape, bench_device) == DC_OK)
        ms = median_ms(run_sgemm, NULL, &g, runs, 0);
    ct_free(g.a);
    ct_free(g.b);
    return ms;
}

/* The peak memory of this process's work: on the CPU its peak RSS, on CUDA the caching
 * allocator's peak allocated bytes (torch.cuda.max_memory_allocated), in MiB. */
static double peak_rss_mib(void)
{
    if (bench_device != CT_CPU) {
        int64_t allocated, reserved;
        return ct_cuda_memory_peak(bench_device, &allocated, &reserved) == DC_OK
                   ? allocated / 1048576.0
                   : -1;
    }
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss / 1024.0 : -1;
}

#endif
