/* NumPy .npy arrays. Reading keeps the file's dtype (float32, float16, float64, int64, int32,
 * uint8, bool); C order only; Fortran order, object arrays and shapes larger than the file
 * are refused. */
#ifndef DC_SRC_IO_NPY_H
#define DC_SRC_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

int io_npy_read_buffer(const uint8_t *data, size_t size, const char *label, dc_tensor *out);
int io_npy_read_file(const char *path, dc_tensor *out);
/* Version 1.0 header, little-endian; atomic replace. */
int io_npy_write_file(const char *path, const dc_tensor *t);

#endif
