/* Checkpoint containers: one entry point that returns named host tensors. Pure C, no LibTorch.
 * Files are hostile: nothing is executed, every size and offset is checked. */
#ifndef DC_SRC_IO_CHECKPOINT_H
#define DC_SRC_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

/* One tensor, dense and C-ordered (strides, storage offsets and shared storages of the file
 * are resolved into a private copy). */
typedef struct io_tensor {
    char *name;
    dc_tensor value;                 /* value.data is owned (NULL when numel is 0) */
} io_tensor;

typedef struct io_state_dict {
    dc_container container;
    size_t count;
    io_tensor *tensors;
} io_state_dict;

/* Reads a torch.save zip, a legacy (pre-1.6) torch.save file, a TorchScript archive,
 * safetensors or .npy, detected by content. `label` names the file in error messages. A state
 * dict nested in a dict or list is found. DC_EFORMAT names what is wrong (and, for a refused
 * pickle global, the global, e.g. "posix.system"). */
int io_checkpoint_read_buffer(const uint8_t *data, size_t size, const char *label,
                              io_state_dict *out);
int io_checkpoint_read_file(const char *path, io_state_dict *out);
void io_state_dict_free(io_state_dict *sd);

/* The tensors of sd as dc_named_tensors pointing into it (*out is freed with free()). */
int io_state_dict_named(const io_state_dict *sd, dc_named_tensor **out);

/* torch.save-compatible zip (an OrderedDict of tensors, torch.load reads it) or safetensors;
 * atomic replace. */
int io_checkpoint_write_torch(const char *path, const dc_named_tensor *tensors, size_t count);
int io_checkpoint_write_safetensors(const char *path, const dc_named_tensor *tensors,
                                    size_t count);
/* Safetensors when `path` ends with .safetensors (any case), else a torch.save zip. */
int io_checkpoint_write_by_extension(const char *path, const dc_named_tensor *tensors,
                                     size_t count);

#endif
