#include "params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

enum { NAME_CAPACITY = 512 };

void nn_weights_free(nn_weights *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        ct_free(w->items[i]);
    free(w->items);
    memset(w, 0, sizeof *w);
}

int nn_weights_add(nn_weights *w, ct_tensor *t)
{
    if (w->count == w->capacity) {
        size_t capacity = w->capacity ? 2 * w->capacity : 64;
        ct_tensor **items = realloc(w->items, capacity * sizeof *items);
        if (!items) {
            ct_free(t);
            return dci_err(DC_ENOMEM, "out of memory for the weight list");
        }
        w->items = items;
        w->capacity = capacity;
    }
    w->items[w->count++] = t;
    return DC_OK;
}

int nn_check_no_pool(const char *label)
{
    size_t depth = ct_pool_begin(); /* the mark is the nesting depth */
    ct_pool_end(depth, NULL, 0);
    if (depth > 0)
        return dci_err(DC_EINVAL, "%s: networks must be loaded with no ctorch pool open",
                       label);
    return DC_OK;
}

const dc_tensor *nn_sd_find(const io_state_dict *sd, const char *name)
{
    for (size_t i = 0; i < sd->count; i++)
        if (sd->tensors[i].name && strcmp(sd->tensors[i].name, name) == 0)
            return &sd->tensors[i].value;
    return NULL;
}

static const dc_tensor *sd_vfind(const io_state_dict *sd, char *name, const char *fmt,
                                 va_list ap)
{
    int n = vsnprintf(name, NAME_CAPACITY, fmt, ap);
    if (n < 0 || n >= NAME_CAPACITY)
        return NULL;
    return nn_sd_find(sd, name);
}

const dc_tensor *nn_sd_findf(const io_state_dict *sd, const char *fmt, ...)
{
    char name[NAME_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    const dc_tensor *t = sd_vfind(sd, name, fmt, ap);
    va_end(ap);
    return t;
}

int nn_sd_count(const io_state_dict *sd, const char *fmt)
{
    int n = 0;
    /* At most one index per tensor, so the loop ends even for a hostile file. */
    while ((size_t)n < sd->count && nn_sd_findf(sd, fmt, n))
        n++;
    return n;
}

static int is_float(dc_dtype d)
{
    return d == DC_FLOAT32 || d == DC_FLOAT16 || d == DC_BFLOAT16 || d == DC_FLOAT64;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++) {
        if (shape[i] < 0)
            used += (size_t)snprintf(buf + used, size - used, "%s*", i ? ", " : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                     (long long)shape[i]);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

int nn_load(const nn_loader *ld, dc_dtype dtype, ct_tensor **out, int ndim,
            const int64_t *shape, const char *fmt, ...)
{
    char name[NAME_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    const dc_tensor *t = sd_vfind(ld->sd, name, fmt, ap);
    va_end(ap);
    *out = NULL;
    if (!t)
        return dci_err(DC_EFORMAT, "%s: missing tensor '%s'", ld->label, name);
    if (!is_float(t->dtype))
        return dci_err(DC_EFORMAT, "%s: tensor '%s' is %s, expected floating point",
                       ld->label, name, dc_dtype_name(t->dtype) ? dc_dtype_name(t->dtype) : "?");
    int match = t->ndim == ndim;
    for (int i = 0; match && i < ndim; i++)
        match = shape[i] < 0 || t->shape[i] == shape[i];
    if (!match) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return dci_err(DC_EFORMAT, "%s: tensor '%s' has shape %s, expected %s", ld->label,
                       name, got, want);
    }
    ct_tensor *stored = NULL, *converted = NULL;
    int st = ct_from_host(&stored, t->data, t->dtype, t->ndim, t->shape, ld->device);
    if (st == DC_OK && t->dtype != dtype) {
        st = ct_to(&converted, stored, dtype, ld->device);
        ct_free(stored);
        stored = converted;
    }
    if (st == DC_OK)
        st = nn_weights_add(ld->owner, stored);
    else
        ct_free(stored);
    if (st != DC_OK)
        return dci_err_prefix(st, ld->label);
    *out = stored;
    return DC_OK;
}

int nn_load_batch_norm(const nn_loader *ld, nn_batch_norm *bn, int64_t channels,
                       const char *prefix)
{
    DCI_TRY(NN_LOAD(ld, DC_FLOAT32, &bn->weight, (channels), "%s.weight", prefix));
    DCI_TRY(NN_LOAD(ld, DC_FLOAT32, &bn->bias, (channels), "%s.bias", prefix));
    DCI_TRY(NN_LOAD(ld, DC_FLOAT32, &bn->mean, (channels), "%s.running_mean", prefix));
    return NN_LOAD(ld, DC_FLOAT32, &bn->var, (channels), "%s.running_var", prefix);
}

int nn_batch_norm_forward(ct_tensor **out, const ct_tensor *x, const nn_batch_norm *bn)
{
    return ct_batch_norm(out, x, bn->weight, bn->bias, bn->mean, bn->var, 1e-5);
}

int nn_run_pooled(ct_tensor **out, const void *net, const ct_tensor *in,
                  int (*fn)(ct_tensor **out, const void *net, const ct_tensor *in))
{
    *out = NULL;
    ct_tensor *result = NULL;
    size_t mark = ct_pool_begin();
    int st = fn(&result, net, in);
    ct_pool_end(mark, &result, st == DC_OK);
    if (st == DC_OK)
        *out = result;
    return st;
}
