#include "combine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

void df_weights_free(df_weights *w)
{
    if (!w)
        return;
    free(w->thresholds);
    free(w->values);
    memset(w, 0, sizeof *w);
}

/* A schedule of `vectors` vectors of `count` weights, copied from values (when not NULL). */
static int weights_alloc(df_weights *w, df_weights_kind kind, size_t count, size_t vectors,
                         const double *values)
{
    memset(w, 0, sizeof *w);
    if (count < 1 || count > DF_MAX_MODELS)
        return dci_err(DC_EINVAL, "noise combination: %zu models (1..%d)", count,
                       DF_MAX_MODELS);
    w->kind = kind;
    w->count = count;
    w->vectors = vectors;
    w->thresholds = calloc(vectors, sizeof *w->thresholds);
    w->values = malloc(vectors * count * sizeof *w->values);
    if (!w->thresholds || !w->values) {
        df_weights_free(w);
        return dci_err(DC_ENOMEM, "noise combination: out of memory");
    }
    if (values)
        memcpy(w->values, values, vectors * count * sizeof *values);
    return DC_OK;
}

static double vector_sum(const double *v, size_t count)
{
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += v[i];
    return sum;
}

static int sums_to_one(const double *v, size_t count)
{
    return fabs(vector_sum(v, count) - 1.0) <= DF_WEIGHT_SUM_TOLERANCE;
}

/* Every value finite and each vector summing to 1; `where` describes vector k's t range. */
static int check_vectors(const df_weights *w)
{
    for (size_t k = 0; k < w->vectors; k++) {
        const double *v = w->values + k * w->count;
        char where[64];
        if (w->kind == DF_WEIGHTS_CONSTANT)
            snprintf(where, sizeof where, "at every t");
        else if (w->kind == DF_WEIGHTS_PIECEWISE)
            snprintf(where, sizeof where, "at t >= %d", w->thresholds[k]);
        else
            snprintf(where, sizeof where, "at t = %d", w->thresholds[k]);
        for (size_t i = 0; i < w->count; i++)
            if (!isfinite(v[i]))
                return dci_err(DC_EINVAL, "noise combination: weight %zu %s is not a finite "
                               "number", i, where);
        if (!sums_to_one(v, w->count))
            return dci_err(DC_EINVAL, "noise combination: the weights %s sum to %.9g, not 1",
                           where, vector_sum(v, w->count));
    }
    return DC_OK;
}

/* Installs `fresh` into *w when it is valid; frees it otherwise. */
static int commit(df_weights *w, df_weights *fresh)
{
    int status = check_vectors(fresh);
    if (status != DC_OK) {
        df_weights_free(fresh);
        return status;
    }
    df_weights_free(w);
    *w = *fresh;
    return DC_OK;
}

int df_weights_constant(df_weights *w, size_t count, const double *values)
{
    if (!w || !values)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    df_weights fresh;
    DCI_TRY(weights_alloc(&fresh, DF_WEIGHTS_CONSTANT, count, 1, values));
    return commit(w, &fresh);
}

int df_weights_piecewise(df_weights *w, size_t count, size_t pieces, const int *thresholds,
                         const double *values)
{
    if (!w || !thresholds || !values)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    if (pieces < 1 || pieces > DF_MAX_PIECES)
        return dci_err(DC_EINVAL, "noise combination: %zu pieces (1..%d)", pieces,
                       DF_MAX_PIECES);
    df_weights fresh;
    DCI_TRY(weights_alloc(&fresh, DF_WEIGHTS_PIECEWISE, count, pieces, NULL));
    /* Insertion sort by descending threshold, so that the first match is the highest. */
    for (size_t k = 0; k < pieces; k++) {
        size_t j = k;
        for (; j > 0 && fresh.thresholds[j - 1] < thresholds[k]; j--) {
            fresh.thresholds[j] = fresh.thresholds[j - 1];
            memcpy(fresh.values + j * count, fresh.values + (j - 1) * count,
                   count * sizeof *values);
        }
        if (j > 0 && fresh.thresholds[j - 1] == thresholds[k]) {
            df_weights_free(&fresh);
            return dci_err(DC_EINVAL, "noise combination: threshold %d is given twice",
                           thresholds[k]);
        }
        fresh.thresholds[j] = thresholds[k];
        memcpy(fresh.values + j * count, values + k * count, count * sizeof *values);
    }
    if (fresh.thresholds[pieces - 1] > 0) {
        int lowest = fresh.thresholds[pieces - 1];
        df_weights_free(&fresh);
        return dci_err(DC_EINVAL, "noise combination: no weights for t < %d (the lowest "
                       "threshold must be 0: generation ends at t = 0)", lowest);
    }
    return commit(w, &fresh);
}

int df_weights_ramp(df_weights *w, size_t count, int t_a, const double *a, int t_b,
                    const double *b)
{
    if (!w || !a || !b)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    if (t_a == t_b)
        return dci_err(DC_EINVAL, "noise combination: a ramp needs two different timesteps "
                       "(both are %d)", t_a);
    df_weights fresh;
    DCI_TRY(weights_alloc(&fresh, DF_WEIGHTS_RAMP, count, 2, NULL));
    fresh.thresholds[0] = t_a;
    fresh.thresholds[1] = t_b;
    memcpy(fresh.values, a, count * sizeof *a);
    memcpy(fresh.values + count, b, count * sizeof *b);
    return commit(w, &fresh);
}

int df_weights_copy(df_weights *dst, const df_weights *src)
{
    if (!dst || !src || !src->values)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    df_weights fresh;
    DCI_TRY(weights_alloc(&fresh, src->kind, src->count, src->vectors, src->values));
    memcpy(fresh.thresholds, src->thresholds, src->vectors * sizeof *src->thresholds);
    df_weights_free(dst);
    *dst = fresh;
    return DC_OK;
}

int df_weights_blend(df_weights *dst, const df_weights *w, double gamma)
{
    if (!(gamma >= 0 && gamma <= 1))
        return dci_err(DC_EINVAL, "noise combination: gamma %g is outside 0..1", gamma);
    df_weights fresh = {0};
    DCI_TRY(df_weights_copy(&fresh, w));
    for (size_t k = 0; k < fresh.vectors; k++) {
        double *v = fresh.values + k * fresh.count;
        for (size_t i = 0; i < fresh.count; i++)
            v[i] = (i == 0 ? 1.0 - gamma : 0.0) + gamma * v[i];
    }
    return commit(dst, &fresh);
}

int df_weights_at(const df_weights *w, int t, double *out)
{
    if (!w || !w->values || !out)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    const double *v = NULL;
    switch (w->kind) {
    case DF_WEIGHTS_CONSTANT:
        v = w->values;
        break;
    case DF_WEIGHTS_PIECEWISE:
        for (size_t k = 0; k < w->vectors && !v; k++)
            if (t >= w->thresholds[k])
                v = w->values + k * w->count;
        if (!v)
            return dci_err(DC_EINVAL, "noise combination: no weights at t %d (below every "
                           "threshold)", t);
        break;
    case DF_WEIGHTS_RAMP: {
        double s = ((double)t - w->thresholds[0]) / ((double)w->thresholds[1] - w->thresholds[0]);
        s = s < 0 ? 0 : s > 1 ? 1 : s;
        for (size_t i = 0; i < w->count; i++)
            out[i] = (1 - s) * w->values[i] + s * w->values[w->count + i];
        break;
    }
    default:
        return dci_err(DC_EINVAL, "noise combination: unknown schedule kind %d", (int)w->kind);
    }
    if (v)
        memcpy(out, v, w->count * sizeof *out);
    if (!sums_to_one(out, w->count))
        return dci_err(DC_EINVAL, "noise combination: the weights at t %d sum to %.9g, not 1", t,
                       vector_sum(out, w->count));
    return DC_OK;
}

static int read_timestep(const ct_tensor *t, int *value)
{
    ct_tensor *first = NULL;
    double v = 0;
    int status = ct_narrow(&first, t, 0, 0, 1);
    if (status == DC_OK)
        status = ct_item(first, &v);
    ct_free(first);
    if (status == DC_OK && !(v >= -1 && v <= DF_MAX_TIMESTEPS))
        status = dci_err(DC_EINVAL, "noise combination: timestep %g out of range", v);
    *value = (int)v;
    return status;
}

/* acc + weight * eps_i(x, t) (acc NULL: the first term), in float32 on x's device. */
static int add_term(const df_predictor *p, const ct_tensor *x, const ct_tensor *t, double weight,
                    const ct_tensor *acc, ct_tensor **sum)
{
    ct_tensor *eps, *eps32, *term;
    DCI_TRY(p->fn(p->ctx, x, t, &eps));
    if (!eps || ct_ndim(eps) != 4 || ct_size(eps, 0) != ct_size(x, 0))
        return dci_err(DC_EINVAL, "noise combination: a predictor returned no (N, C, H, W) "
                       "output");
    if (acc && (ct_size(eps, 1) != ct_size(acc, 1) || ct_size(eps, 2) != ct_size(acc, 2) ||
                ct_size(eps, 3) != ct_size(acc, 3)))
        return dci_err(DC_EINVAL, "noise combination: the predictors' outputs differ in shape "
                       "(%lld vs %lld channels)", (long long)ct_size(eps, 1),
                       (long long)ct_size(acc, 1));
    eps32 = eps;
    if (ct_dtype(eps) != DC_FLOAT32 || ct_device(eps) != ct_device(x))
        DCI_TRY(ct_to(&eps32, eps, DC_FLOAT32, ct_device(x)));
    /* float32 weight times float32 noise, as torch's `ratio * model(x, t)`. */
    DCI_TRY(ct_mul_scalar(&term, eps32, weight));
    if (!acc) {
        *sum = term;
        return DC_OK;
    }
    return ct_add(sum, acc, term);
}

int df_combine_eps(void *ctx, const ct_tensor *x, const ct_tensor *t, ct_tensor **eps_out)
{
    const df_combine *c = ctx;
    if (!c || !c->predictors || !c->weights || !x || !t || !eps_out)
        return dci_err(DC_EINVAL, "noise combination: NULL argument");
    *eps_out = NULL;
    if (c->weights->count != c->count)
        return dci_err(DC_EINVAL, "noise combination: %zu weights for %zu models",
                       c->weights->count, c->count);
    int step;
    double weights[DF_MAX_MODELS];
    DCI_TRY(read_timestep(t, &step));
    DCI_TRY(df_weights_at(c->weights, step, weights));
    ct_tensor *acc = NULL;
    for (size_t i = 0; i < c->count; i++) {
        if (weights[i] == 0)
            continue;                    /* not evaluated, as published */
        /* One pool per model: only the running sum outlives it. */
        size_t mark = ct_pool_begin();
        ct_tensor *sum = NULL;
        int status = add_term(&c->predictors[i], x, t, weights[i], acc, &sum);
        ct_pool_end(mark, &sum, status == DC_OK ? 1 : 0);
        ct_free(acc);
        if (status != DC_OK)
            return status;
        acc = sum;
    }
    if (!acc)
        return dci_err(DC_EINTERNAL, "noise combination: every weight is 0 at t %d", step);
    *eps_out = acc;
    return DC_OK;
}
