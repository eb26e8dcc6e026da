/* Fine-tuned weights as deltas from a base UNet: computed, written, applied. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../io/delta.h"
#include "unet.h"

#define FLOAT16_MAX 65504.0

/* The tensor of m called `name`; m's index `hint` first (models of one architecture list
 * their tensors in the same order). Returns the count when there is none. */
static size_t find_unet_tensor(const nn_unet *m, size_t hint, const char *name)
{
    size_t n = nn_unet_tensor_count(m);
    if (hint < n && strcmp(nn_unet_tensor_name(m, hint), name) == 0)
        return hint;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nn_unet_tensor_name(m, i), name) == 0)
            return i;
    return n;
}

static size_t find_sd_tensor(const io_state_dict *sd, size_t hint, const char *name)
{
    if (hint < sd->count && strcmp(sd->tensors[hint].name, name) == 0)
        return hint;
    for (size_t i = 0; i < sd->count; i++)
        if (strcmp(sd->tensors[i].name, name) == 0)
            return i;
    return sd->count;
}

/* w - b as a float16 host array in *t. */
static int delta_of(const ct_tensor *w, const ct_tensor *b, const char *path, const char *name,
                    dc_tensor *t)
{
    size_t mark = ct_pool_begin();
    ct_tensor *w32, *b32, *d, *half;
    double largest = 0;
    int st = ct_to(&w32, w, DC_FLOAT32, ct_device(w));
    if (st == DC_OK)
        st = ct_to(&b32, b, DC_FLOAT32, ct_device(w));
    if (st == DC_OK)
        st = ct_sub(&d, w32, b32);
    if (st == DC_OK)
        st = ct_max_abs(d, &largest);
    if (st == DC_OK && !(largest <= FLOAT16_MAX))
        st = dci_err(DC_EINVAL, "%s: tensor '%s' changed by %g, beyond float16: save a full "
                     "state dict instead", path, name, largest);
    if (st == DC_OK)
        st = ct_to(&half, d, DC_FLOAT16, CT_CPU);
    size_t bytes = (size_t)ct_numel(w) * 2;
    if (st == DC_OK && !(t->data = malloc(bytes ? bytes : 1)))
        st = dci_err(DC_ENOMEM, "%s: out of memory", path);
    if (st == DC_OK)
        st = ct_to_host(half, t->data, bytes);
    ct_pool_end(mark, NULL, 0);
    return st;
}

/* model - base per tensor, as float16 host arrays in named[] (freed by the caller). */
static int deltas(const nn_unet *model, const nn_unet *base, const char *path,
                  dc_named_tensor *named)
{
    size_t count = nn_unet_tensor_count(model);
    if (count != nn_unet_tensor_count(base))
        return dci_err(DC_EINVAL, "%s: the models have %zu and %zu tensors", path, count,
                       nn_unet_tensor_count(base));
    for (size_t i = 0; i < count; i++) {
        const char *name = nn_unet_tensor_name(model, i);
        size_t j = find_unet_tensor(base, i, name);
        if (j == count)
            return dci_err(DC_EINVAL, "%s: the base model has no tensor '%s'", path, name);
        const ct_tensor *w = nn_unet_tensor(model, i), *b = nn_unet_tensor(base, j);
        dc_tensor *t = &named[i].tensor;
        t->dtype = DC_FLOAT16;
        t->ndim = ct_ndim(w);
        for (int d = 0; d < t->ndim; d++)
            t->shape[d] = ct_size(w, d);
        if (!ct_same_shape(b, w))
            return dci_err(DC_EINVAL, "%s: tensor '%s' has another shape in the base model",
                           path, name);
        named[i].name = name;
        DCI_TRY(delta_of(w, b, path, name, t));
    }
    return DC_OK;
}

int nn_unet_write_delta(const nn_unet *model, const nn_unet *base, const char *base_id,
                        const char *path)
{
    size_t count = nn_unet_tensor_count(model);
    dc_named_tensor *named = calloc(count ? count : 1, sizeof *named);
    if (!named)
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    ct_scope *scope = NULL;
    int status = ct_inference_mode_begin(&scope);
    if (status == DC_OK) {
        size_t mark = ct_pool_begin();
        status = deltas(model, base, path, named);
        ct_pool_end(mark, NULL, 0);
        ct_scope_end(scope);
    }
    if (status == DC_OK)
        status = io_delta_write(path, base_id, named, count);
    for (size_t i = 0; i < count; i++)
        free(named[i].tensor.data);
    free(named);
    return status;
}

int nn_unet_apply_delta(nn_unet **out, const nn_unet *base, const io_state_dict *sd,
                        const char *path, int device, dc_dtype dtype)
{
    size_t count = nn_unet_tensor_count(base);
    if (sd->count != count)
        return dci_err(DC_EFORMAT, "%s: %zu tensors, the base model has %zu", path, sd->count,
                       count);
    nn_unet *m;
    DCI_TRY(nn_unet_clone(&m, base, device, dtype));
    int status = DC_OK;
    for (size_t i = 0; status == DC_OK && i < count; i++) {
        const char *name = nn_unet_tensor_name(m, i);
        size_t j = find_sd_tensor(sd, i, name);
        const dc_tensor *d = j < sd->count ? &sd->tensors[j].value : NULL;
        if (!d)
            status = dci_err(DC_EFORMAT, "%s: no delta for tensor '%s'", path, name);
        else if (!ct_has_shape(nn_unet_tensor(m, i), d->ndim, d->shape))
            status = dci_err(DC_EFORMAT, "%s: the delta of '%s' has another shape than the "
                             "base model's", path, name);
        ct_tensor *delta = NULL;
        if (status == DC_OK)
            status = ct_from_host(&delta, d->data, DC_FLOAT16, d->ndim, d->shape, device);
        if (status == DC_OK)
            status = ct_add_(nn_unet_tensor(m, i), delta, 1.0);
        ct_free(delta);
    }
    if (status != DC_OK) {
        nn_unet_free(m);
        return status;
    }
    *out = m;
    return DC_OK;
}
