/* Shared by the checkpoint containers: building an io_state_dict (limits, names, dense copies
 * of strided views) and finding the state dict inside an unpickled torch.save object. */
#ifndef DC_SRC_IO_STATE_DICT_H
#define DC_SRC_IO_STATE_DICT_H

#include "checkpoint.h"
#include "pickle.h"

/* Looks up and checks the bytes of a storage (sets data and resolved). */
typedef int (*io_storage_resolver)(void *context, io_pk_storage *storage);

typedef struct io_sd_builder {
    io_state_dict *sd;
    size_t capacity;
    uint64_t total_bytes;
    uint64_t expanded_bytes;         /* dense bytes of views beyond their storages' bytes */
    const char *label;
    io_storage_resolver resolve;
    void *resolve_context;
} io_sd_builder;

void io_sd_builder_init(io_sd_builder *b, io_state_dict *sd, dc_container container,
                        const char *label);

/* Appends tensor prefix+name with uninitialised data for its elements (*data, NULL when it
 * has none), after checking the name, shape and size limits. */
int io_sd_append(io_sd_builder *b, const char *prefix, const char *name, dc_dtype dtype,
                 int ndim, const int64_t *shape, void **data);
/* Appends a dense, C-ordered copy of an unpickled tensor view, after checking that every
 * element it addresses lies inside its storage. */
int io_sd_append_view(io_sd_builder *b, const char *prefix, const char *name,
                      const io_pk_tensor *view);
/* Fails on duplicate names. */
int io_sd_finish(io_sd_builder *b);

/* The state dict in an unpickled torch.save object (rule in state_dict.c), appended to b. */
int io_sd_append_torch_object(io_sd_builder *b, const io_pk_obj *top);

/* numel * element size of `shape`; 0 when a dimension is negative or the size is over
 * IO_MAX_TENSOR_BYTES (then *ok is 0). */
uint64_t io_shape_bytes(int ndim, const int64_t *shape, size_t element, int *ok);

/* Checks tensors given for writing: names (UTF-8, unique), dtypes, shapes, data. */
int io_check_named_tensors(const char *path, const dc_named_tensor *tensors, size_t count);
/* Bytes of a checked tensor. */
size_t io_tensor_bytes(const dc_tensor *t);

#endif
