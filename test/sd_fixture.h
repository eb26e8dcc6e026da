/* Random state dicts built in memory for the tests and benchmarks (header-only, static
 * functions): float32 tensors named printf-style, with values offset + scale * U(-1, 1) from
 * a seeded LCG, so that a builder with the same seed builds the same weights. */
#ifndef DC_TEST_SD_FIXTURE_H
#define DC_TEST_SD_FIXTURE_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"

typedef struct sd_builder {
    io_state_dict sd;
    size_t capacity;
    uint64_t rng;                    /* the seed, then the generator's state */
} sd_builder;

/* The next value in [-1, 1). */
static inline double sd_uniform(sd_builder *b)
{
    b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(b->rng >> 11) / (double)(1ull << 52) - 1.0;
}

static inline void add_tensor_v(sd_builder *b, double offset, double scale, int ndim,
                                const int64_t *shape, const char *fmt, va_list ap)
{
    if (b->sd.count == b->capacity) {
        b->capacity = b->capacity ? 2 * b->capacity : 64;
        b->sd.tensors = realloc(b->sd.tensors, b->capacity * sizeof *b->sd.tensors);
    }
    io_tensor *t = &b->sd.tensors[b->sd.count++];
    memset(t, 0, sizeof *t);
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    t->name = strdup(name);
    t->value.dtype = DC_FLOAT32;
    t->value.ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (t->value.shape[i] = shape[i]);
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(offset + scale * sd_uniform(b));
    t->value.data = v;
}

/* Adds a float32 tensor of offset + scale * U(-1, 1) values. */
static inline void add_tensor(sd_builder *b, double offset, double scale, int ndim,
                              const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static inline void add_tensor(sd_builder *b, double offset, double scale, int ndim,
                              const int64_t *shape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_tensor_v(b, offset, scale, ndim, shape, fmt, ap);
    va_end(ap);
}

/* A weight scaled by 1/sqrt(fan-in), the fan-in being all but the first dimension. */
static inline void add_weight(sd_builder *b, int ndim, const int64_t *shape, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
static inline void add_weight(sd_builder *b, int ndim, const int64_t *shape, const char *fmt,
                              ...)
{
    double fan_in = 1;
    for (int i = 1; i < ndim; i++)
        fan_in *= (double)shape[i];
    va_list ap;
    va_start(ap, fmt);
    add_tensor_v(b, 0, 1 / sqrt(fan_in), ndim, shape, fmt, ap);
    va_end(ap);
}

static inline void free_builder(sd_builder *b)
{
    io_state_dict_free(&b->sd);
    memset(b, 0, sizeof *b);
}

#endif
