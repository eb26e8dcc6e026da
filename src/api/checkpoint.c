/* The public checkpoint handle over io/checkpoint. */
#include <stdlib.h>
#include <string.h>

#include "diffclip.h"
#include "../core/error.h"
#include "../io/checkpoint.h"

struct dc_checkpoint {
    io_state_dict sd;
    const io_tensor **by_name;  /* sorted by name, for dc_checkpoint_find */
};

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp((*(const io_tensor *const *)a)->name, (*(const io_tensor *const *)b)->name);
}

DC_API dc_status dc_checkpoint_open(dc_checkpoint **out, const char *path)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_checkpoint_open: out is NULL");
    *out = NULL;
    if (!path)
        return dci_err(DC_EINVAL, "dc_checkpoint_open: path is NULL");
    dc_checkpoint *ckpt = calloc(1, sizeof *ckpt);
    if (!ckpt)
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    int status = io_checkpoint_read_file(path, &ckpt->sd);
    if (status != DC_OK) {
        free(ckpt);
        return status;
    }
    size_t count = ckpt->sd.count;
    ckpt->by_name = malloc((count ? count : 1) * sizeof *ckpt->by_name);
    if (!ckpt->by_name) {
        dc_checkpoint_free(ckpt);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < count; i++)
        ckpt->by_name[i] = &ckpt->sd.tensors[i];
    qsort(ckpt->by_name, count, sizeof *ckpt->by_name, compare_tensor_names);
    *out = ckpt;
    return DC_OK;
}

DC_API void dc_checkpoint_free(dc_checkpoint *ckpt)
{
    if (!ckpt)
        return;
    io_state_dict_free(&ckpt->sd);
    free(ckpt->by_name);
    free(ckpt);
}

DC_API dc_container dc_checkpoint_container(const dc_checkpoint *ckpt)
{
    return ckpt ? ckpt->sd.container : DC_CONTAINER_TORCH_ZIP;
}

DC_API size_t dc_checkpoint_count(const dc_checkpoint *ckpt) { return ckpt ? ckpt->sd.count : 0; }

DC_API const char *dc_checkpoint_name(const dc_checkpoint *ckpt, size_t i)
{
    return ckpt && i < ckpt->sd.count ? ckpt->sd.tensors[i].name : NULL;
}

DC_API dc_status dc_checkpoint_tensor(const dc_checkpoint *ckpt, size_t i, dc_tensor *view)
{
    if (!ckpt || !view)
        return dci_err(DC_EINVAL, "dc_checkpoint_tensor: NULL argument");
    if (i >= ckpt->sd.count)
        return dci_err(DC_EINVAL, "dc_checkpoint_tensor: index %zu out of range (%zu tensors)",
                       i, ckpt->sd.count);
    *view = ckpt->sd.tensors[i].value;
    return DC_OK;
}

DC_API dc_status dc_checkpoint_find(const dc_checkpoint *ckpt, const char *name, size_t *index)
{
    if (!ckpt || !name || !index)
        return dci_err(DC_EINVAL, "dc_checkpoint_find: NULL argument");
    size_t low = 0, high = ckpt->sd.count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int c = strcmp(ckpt->by_name[mid]->name, name);
        if (c == 0) {
            *index = (size_t)(ckpt->by_name[mid] - ckpt->sd.tensors);
            return DC_OK;
        }
        if (c < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return dci_err(DC_EINVAL, "no tensor named %s in the checkpoint", name);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

DC_API dc_status dc_checkpoint_write(const char *path, dc_checkpoint_format format,
                                     const dc_named_tensor *tensors, size_t count)
{
    if (!path)
        return dci_err(DC_EINVAL, "dc_checkpoint_write: path is NULL");
    switch (format) {
    case DC_FORMAT_AUTO:
        if (has_suffix(path, ".safetensors"))
            return io_checkpoint_write_safetensors(path, tensors, count);
        return io_checkpoint_write_torch(path, tensors, count);
    case DC_FORMAT_TORCH_ZIP:
        return io_checkpoint_write_torch(path, tensors, count);
    case DC_FORMAT_SAFETENSORS:
        return io_checkpoint_write_safetensors(path, tensors, count);
    }
    return dci_err(DC_EINVAL, "%s: unknown checkpoint format %d", path, (int)format);
}
