/* TensorFlow.js weights: a weights manifest (`*-weights_manifest.json`: an array of groups
 * {"paths": [shard file names], "weights": [{"name", "shape", "dtype", "quantization"?}]})
 * and its binary shards. Each group's weights lie back to back in its shards, concatenated in
 * `paths` order. dtype float32 or int32; quantised weights (uint8 or uint16 with scale and min)
 * decode as tfjs does: value = q * scale + min in double precision, stored as float32 (int32:
 * Math.round). Pure C; the manifest and the shards are hostile: the JSON is parsed strictly
 * (RFC 8259, unknown members skipped, duplicates refused), every shape is bounded by
 * limits.h, and the shards must hold exactly the bytes the manifest declares. */
#ifndef DC_SRC_IO_TFJS_H
#define DC_SRC_IO_TFJS_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "file.h"

typedef struct io_tfjs_weights {
    size_t count;
    io_tensor *tensors;              /* in manifest order; names unique */
} io_tfjs_weights;

/* `shards` holds the contents of every path the manifest lists (groups in order, each
 * group's paths in order); `nshards` must equal that number. `label` names the manifest in
 * error messages. */
int io_tfjs_read_buffers(const uint8_t *manifest, size_t manifest_size, const char *label,
                         const io_mapped_file *shards, size_t nshards, io_tfjs_weights *out);
/* weights_path NULL: the shards the manifest names, relative to the manifest's directory
 * (absolute paths and ".." are refused). Otherwise the manifest must list exactly one shard,
 * which is read from weights_path whatever its name. */
int io_tfjs_read_files(const char *manifest_path, const char *weights_path,
                       io_tfjs_weights *out);
void io_tfjs_weights_free(io_tfjs_weights *w);
/* The tensor called `name`, or NULL. */
const io_tensor *io_tfjs_find(const io_tfjs_weights *w, const char *name);

#endif
