/* The weights-delta file (docs/formats.md): a fine-tuned model as float16 differences from
 * its base model, each tensor's bytes split into low and high byte planes and zlib-compressed,
 * with the base model's fingerprint. Pure C: the caller computes and applies the deltas. */
#ifndef DC_SRC_IO_DELTA_H
#define DC_SRC_IO_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"

#define IO_DELTA_BASE_ID_SIZE 40

/* 1 when data starts like a delta file. */
int io_delta_detect(const uint8_t *data, size_t size);
/* Writes float16 tensors (each tensor's dtype must be DC_FLOAT16) for the base model
 * identified by `base_id` (NUL-terminated ASCII); atomic replace. */
int io_delta_write(const char *path, const char base_id[IO_DELTA_BASE_ID_SIZE],
                   const dc_named_tensor *tensors, size_t count);
/* Reads a delta file: float16 tensors in file order, and the base model's id. DC_EFORMAT
 * names what is wrong. */
int io_delta_read_buffer(const uint8_t *data, size_t size, const char *label,
                         char base_id[IO_DELTA_BASE_ID_SIZE], io_state_dict *out);
int io_delta_read_file(const char *path, char base_id[IO_DELTA_BASE_ID_SIZE],
                       io_state_dict *out);

#endif
