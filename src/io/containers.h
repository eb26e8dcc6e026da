/* The readers behind io_checkpoint_read_buffer, one per container. Each fills a zeroed
 * io_state_dict; on failure the caller frees what was filled. */
#ifndef DC_SRC_IO_CONTAINERS_H
#define DC_SRC_IO_CONTAINERS_H

#include "checkpoint.h"

/* torch.save zip archives and TorchScript archives (told apart by their records). */
int io_torch_zip_read(const uint8_t *data, size_t size, const char *label, io_state_dict *out);
/* The pre-1.6 torch.save container: pickles followed by raw storages. */
int io_torch_legacy_read(const uint8_t *data, size_t size, const char *label,
                         io_state_dict *out);
int io_safetensors_read(const uint8_t *data, size_t size, const char *label,
                        io_state_dict *out);

/* 1 when data starts like a safetensors file (a header length then '{'). */
int io_safetensors_detect(const uint8_t *data, size_t size);

#endif
