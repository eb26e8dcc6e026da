/* A restricted unpickler: reads the pickle opcodes PyTorch files use (protocols 0-5) into a
 * small object tree, never executes anything, and refuses every global outside an allow-list
 * (OrderedDict, the tensor rebuild functions, storage types, and for TorchScript archives the
 * __torch__ module classes as plain attribute containers). */
#ifndef DC_SRC_IO_PICKLE_H
#define DC_SRC_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

typedef enum io_pk_kind {
    IO_PK_NONE,
    IO_PK_BOOL,
    IO_PK_INT,
    IO_PK_BIGINT,     /* an integer wider than 64 bits: its little-endian bytes in text */
    IO_PK_FLOAT,
    IO_PK_STRING,
    IO_PK_BYTES,
    IO_PK_TUPLE,
    IO_PK_LIST,       /* also sets */
    IO_PK_DICT,       /* dict and OrderedDict, in insertion order */
    IO_PK_GLOBAL,     /* an allowed global, e.g. torch.FloatStorage */
    IO_PK_STORAGE,    /* a persistent storage reference */
    IO_PK_TENSOR,     /* the result of torch._utils._rebuild_tensor(_v2) */
    IO_PK_OBJECT      /* a TorchScript module object: class and attribute state */
} io_pk_kind;

typedef enum io_pk_global_id {
    IO_GLOBAL_ORDERED_DICT,
    IO_GLOBAL_REBUILD_TENSOR,
    IO_GLOBAL_REBUILD_TENSOR_V2,
    IO_GLOBAL_REBUILD_PARAMETER,
    IO_GLOBAL_REBUILD_PARAMETER_WITH_STATE,
    IO_GLOBAL_REBUILD_FROM_TYPE_V2,
    IO_GLOBAL_TENSOR_CLASS,       /* torch.Tensor, torch.nn.parameter.Parameter */
    IO_GLOBAL_STORAGE_CLASS,      /* torch.FloatStorage etc.; dtype says which */
    IO_GLOBAL_BUILTIN_LIST,       /* builtins set, frozenset, list */
    IO_GLOBAL_BUILTIN_TUPLE,
    IO_GLOBAL_RESTORE_TYPE_TAG,   /* torch.jit._pickle: returns its first argument */
    IO_GLOBAL_BUILD_LIST,         /* torch.jit._pickle.build_{int,double,bool,tensor}list */
    IO_GLOBAL_SCRIPT_CLASS        /* __torch__.*: TorchScript classes */
} io_pk_global_id;

typedef struct io_pk_obj io_pk_obj;

typedef struct io_pk_pair {
    io_pk_obj *key, *value;
} io_pk_pair;

typedef struct io_pk_storage {
    dc_dtype dtype;
    const char *key;              /* the storage's record name */
    uint64_t numel;               /* elements visible through this reference */
    uint64_t root_numel;          /* elements of the whole stored storage */
    uint64_t root_offset;         /* legacy storage views: first element in the root */
    const uint8_t *data;          /* set by the container: numel elements */
    int resolved;                 /* data has been looked up and checked */
} io_pk_storage;

typedef struct io_pk_tensor {
    io_pk_obj *storage;           /* an IO_PK_STORAGE */
    uint64_t offset;              /* in elements */
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    int64_t stride[DC_MAX_DIMS];
} io_pk_tensor;

struct io_pk_obj {
    io_pk_kind kind;
    uint32_t depth;               /* container nesting below this object */
    union {
        int64_t integer;          /* BOOL, INT */
        double real;
        struct {
            char *data;           /* NUL-terminated */
            size_t length;
        } text;                   /* STRING, BYTES, BIGINT */
        struct {
            io_pk_obj **items;
            size_t count, capacity;
        } seq;                    /* TUPLE, LIST */
        struct {
            io_pk_pair *items;
            size_t count, capacity;
        } dict;
        struct {
            io_pk_global_id id;
            dc_dtype dtype;       /* STORAGE_CLASS */
            char *name;           /* "module.name" */
        } global;
        io_pk_storage storage;
        io_pk_tensor tensor;
        struct {
            const io_pk_obj *cls; /* an IO_GLOBAL_SCRIPT_CLASS global */
            io_pk_obj *state;     /* set by BUILD, else NULL */
        } object;
    } u;
};

/* Owns every object of the pickles it loads (they may share objects through the memo). */
typedef struct io_pickle {
    const char *label;            /* names the file in errors (not owned) */
    int allow_script_classes;     /* accept __torch__.* globals (TorchScript data.pkl) */
    io_pk_obj **objects;
    size_t object_count, object_capacity;
    io_pk_obj **storages;         /* every IO_PK_STORAGE made, in order */
    size_t storage_count, storage_capacity;
} io_pickle;

void io_pickle_init(io_pickle *pk, const char *label, int allow_script_classes);
void io_pickle_free(io_pickle *pk);

/* Reads one pickle from data[0..size) up to its STOP; *consumed is its length (pickles may
 * follow each other, as in the legacy container). */
int io_pickle_load(io_pickle *pk, const uint8_t *data, size_t size, size_t *consumed,
                   io_pk_obj **result);

/* The value of `key` (a string) in a dict, or NULL. */
io_pk_obj *io_pk_dict_get(const io_pk_obj *dict, const char *key);
/* A string object's text, or NULL for any other kind. */
const char *io_pk_string(const io_pk_obj *obj);

#endif
