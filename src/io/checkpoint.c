/* Checkpoint reading: the container is told by content, never by file name. */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "containers.h"
#include "file.h"
#include "npy.h"
#include "zip.h"

static const char npy_magic[] = "\x93NUMPY";

static int read_npy(const uint8_t *data, size_t size, const char *label, io_state_dict *out)
{
    out->tensors = calloc(1, sizeof *out->tensors);
    if (!out->tensors)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    out->tensors[0].name = strdup("-");
    if (!out->tensors[0].name)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    out->count = 1;
    return io_npy_read_buffer(data, size, label, &out->tensors[0].value);
}

static int dispatch(const uint8_t *data, size_t size, const char *label, io_state_dict *out)
{
    if (size == 0)
        return dci_err(DC_EFORMAT, "%s: empty file", label);
    if (io_zip_is_zip(data, size))
        return io_torch_zip_read(data, size, label, out);
    if (size >= sizeof npy_magic - 1 && memcmp(data, npy_magic, sizeof npy_magic - 1) == 0) {
        out->container = DC_CONTAINER_NPY;
        return read_npy(data, size, label, out);
    }
    /* Safetensors starts with its header length, which may begin with byte 0x80 as a
     * legacy file's pickle PROTO opcode does; a pickle read as a length exceeds any file. */
    if (io_safetensors_detect(data, size))
        return io_safetensors_read(data, size, label, out);
    if (data[0] == 0x80)
        return io_torch_legacy_read(data, size, label, out);
    return dci_err(DC_EFORMAT,
                   "%s: not a checkpoint (torch.save, TorchScript, safetensors or .npy)", label);
}

int io_checkpoint_read_buffer(const uint8_t *data, size_t size, const char *label,
                              io_state_dict *out)
{
    memset(out, 0, sizeof *out);
    if (!label)
        label = "checkpoint";
    if (!data && size)
        return dci_err(DC_EINVAL, "%s: data is NULL", label);
    int status = dispatch(data, size, label, out);
    if (status != DC_OK)
        io_state_dict_free(out);
    return status;
}

int io_checkpoint_read_file(const char *path, io_state_dict *out)
{
    memset(out, 0, sizeof *out);
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int status = io_checkpoint_read_buffer(file.data, file.size, path, out);
    io_unmap_file(&file);
    return status;
}

void io_state_dict_free(io_state_dict *sd)
{
    if (!sd)
        return;
    for (size_t i = 0; i < sd->count; i++) {
        free(sd->tensors[i].name);
        dc_tensor_free(&sd->tensors[i].value);
    }
    free(sd->tensors);
    memset(sd, 0, sizeof *sd);
}
