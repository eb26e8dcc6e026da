/* Bounds on what a file may declare. Every reader checks sizes against these and against the
 * file's own length before allocating or indexing. */
#ifndef DC_SRC_IO_LIMITS_H
#define DC_SRC_IO_LIMITS_H

#include <stdint.h>

#define IO_MAX_TENSOR_BYTES   ((uint64_t)16 << 30)   /* one tensor: 16 GiB */
#define IO_MAX_TOTAL_BYTES    ((uint64_t)64 << 30)   /* all tensors of one file */
#define IO_MAX_TENSORS        (1u << 20)
#define IO_MAX_NAME_LENGTH    4096
#define IO_MAX_ZIP_ENTRIES    (1u << 20)
#define IO_MAX_PICKLE_DEPTH   1000                   /* nesting of containers */
#define IO_MAX_PICKLE_MEMO    (1u << 22)
#define IO_MAX_PICKLE_OBJECTS (1u << 24)
#define IO_MAX_IMAGE_SIDE     16384
#define IO_MAX_IMAGE_PIXELS   ((uint64_t)1 << 28)
#define IO_MAX_HEADER_BYTES   (1u << 26)             /* npy / safetensors headers */

#endif
