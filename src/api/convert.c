#include "convert.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

int api_check_tensor(const dc_tensor *t, const char *what)
{
    if (!t || t->ndim < 0 || t->ndim > DC_MAX_DIMS || dc_dtype_size(t->dtype) == 0)
        return dci_err(DC_EINVAL, "%s: not a valid tensor", what);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || (t->shape[i] > 0 && numel > UINT64_MAX / (uint64_t)t->shape[i]))
            return dci_err(DC_EINVAL, "%s: invalid shape", what);
        numel *= (uint64_t)t->shape[i];
    }
    if (numel > 0 && !t->data)
        return dci_err(DC_EINVAL, "%s: no data", what);
    return DC_OK;
}

int api_tensor_in(ct_tensor **out, const dc_tensor *t, const char *what, int device)
{
    *out = NULL;
    DCI_TRY(api_check_tensor(t, what));
    return ct_from_host(out, t->data, t->dtype, t->ndim, t->shape, device);
}

int api_tensor_out(const ct_tensor *t, dc_tensor *out)
{
    dc_tensor r = {.dtype = ct_dtype(t), .ndim = ct_ndim(t)};
    if (r.ndim > DC_MAX_DIMS)
        return dci_err(DC_EINTERNAL, "result with %d dimensions", r.ndim);
    for (int i = 0; i < r.ndim; i++)
        r.shape[i] = ct_size(t, i);
    size_t bytes = (size_t)ct_numel(t) * dc_dtype_size(r.dtype);
    r.data = malloc(bytes ? bytes : 1);
    if (!r.data)
        return dci_err(DC_ENOMEM, "out of memory for a %zu-byte result", bytes);
    int st = ct_to_host(t, r.data, bytes);
    if (st != DC_OK) {
        free(r.data);
        return st;
    }
    *out = r;
    return DC_OK;
}

int api_run_pooled(api_fn fn, void *args, int grad)
{
    ct_scope *scope = NULL;
    DCI_TRY(grad ? ct_grad_mode_begin(&scope, 1) : ct_inference_mode_begin(&scope));
    size_t mark = ct_pool_begin();
    int st = fn(args);
    ct_pool_end(mark, NULL, 0);
    ct_scope_end(scope);
    return st;
}

int api_parse_device(const char *name, const char *fallback, int *device)
{
    if (!name)
        name = fallback;
    DCI_TRY(ct_parse_device(name, device));
    if (*device >= 0 && !ct_cuda_available())
        return dci_err(DC_EDEVICE, "device %s: CUDA is not available", name);
    return DC_OK;
}

int api_check_version(unsigned version, unsigned current, const char *what)
{
    if (version == 0 || version > current)
        return dci_err(DC_EINVAL, "%s version %u is not supported (1..%u): initialise it with "
                       "its _init function", what, version, current);
    return DC_OK;
}
