#include "state_dict.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "json.h"
#include "limits.h"

/* A view with 0 strides (expand) reads each stored element many times: a tiny file could
 * otherwise make us allocate and fill gigabytes. Real checkpoints expand little (position
 * ids and the like), so the bytes that views add beyond their storages are capped per file. */
#define MAX_EXPANDED_BYTES ((uint64_t)256 << 20)

void io_sd_builder_init(io_sd_builder *b, io_state_dict *sd, dc_container container,
                        const char *label)
{
    memset(b, 0, sizeof *b);
    memset(sd, 0, sizeof *sd);
    sd->container = container;
    b->sd = sd;
    b->label = label;
}

uint64_t io_shape_bytes(int ndim, const int64_t *shape, size_t element, int *ok)
{
    uint64_t bytes = element;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[i], &bytes)) {
            *ok = 0;
            return 0;
        }
    }
    if (bytes > IO_MAX_TENSOR_BYTES)
        *ok = 0;
    return bytes;
}

int io_sd_append(io_sd_builder *b, const char *prefix, const char *name, dc_dtype dtype,
                 int ndim, const int64_t *shape, void **data)
{
    io_state_dict *sd = b->sd;
    size_t prefix_length = strlen(prefix), name_length = strlen(name);
    if (prefix_length + name_length > IO_MAX_NAME_LENGTH)
        return dci_err(DC_EFORMAT, "%s: tensor name longer than %d bytes", b->label,
                       IO_MAX_NAME_LENGTH);
    if (sd->count >= IO_MAX_TENSORS)
        return dci_err(DC_EFORMAT, "%s: more than %u tensors", b->label, IO_MAX_TENSORS);
    size_t element = dc_dtype_size(dtype);
    if (element == 0 || ndim < 0 || ndim > DC_MAX_DIMS)
        return dci_err(DC_EFORMAT, "%s: tensor %s%s: bad dtype or rank", b->label, prefix, name);
    int ok;
    uint64_t bytes = io_shape_bytes(ndim, shape, element, &ok);
    if (!ok)
        return dci_err(DC_EFORMAT, "%s: tensor %s%s: bad or too large shape", b->label, prefix,
                       name);
    if (bytes > IO_MAX_TOTAL_BYTES - b->total_bytes)
        return dci_err(DC_EFORMAT, "%s: tensors larger than %llu bytes in all", b->label,
                       (unsigned long long)IO_MAX_TOTAL_BYTES);
    if (sd->count == b->capacity) {
        size_t capacity = b->capacity ? 2 * b->capacity : 64;
        io_tensor *grown = realloc(sd->tensors, capacity * sizeof *grown);
        if (!grown)
            return dci_err(DC_ENOMEM, "%s: out of memory", b->label);
        sd->tensors = grown;
        b->capacity = capacity;
    }
    io_tensor *t = &sd->tensors[sd->count];
    memset(t, 0, sizeof *t);
    t->name = malloc(prefix_length + name_length + 1);
    t->value.data = bytes ? malloc((size_t)bytes) : NULL;
    if (!t->name || (bytes && !t->value.data)) {
        free(t->name);
        free(t->value.data);
        return dci_err(DC_ENOMEM, "%s: out of memory for tensor %s%s", b->label, prefix, name);
    }
    memcpy(t->name, prefix, prefix_length);
    memcpy(t->name + prefix_length, name, name_length + 1);
    t->value.dtype = dtype;
    t->value.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->value.shape[i] = shape[i];
    sd->count++;
    b->total_bytes += bytes;
    *data = t->value.data;
    return DC_OK;
}

static int is_c_contiguous(const io_pk_tensor *v)
{
    int64_t expected = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != expected)
            return 0;
        expected *= v->shape[d];
    }
    return 1;
}

/* The view's elements in C order; the caller has checked every index. */
static void copy_view(uint8_t *out, const uint8_t *storage, size_t element, const io_pk_tensor *v,
                      uint64_t numel)
{
    if (is_c_contiguous(v)) {
        memcpy(out, storage + v->offset * element, (size_t)(numel * element));
        return;
    }
    int last = v->ndim - 1;  /* >= 0: a scalar is contiguous */
    uint64_t inner = (uint64_t)v->shape[last], inner_stride = (uint64_t)v->stride[last];
    int64_t index[DC_MAX_DIMS] = {0};
    uint64_t base = v->offset;
    for (uint64_t row = 0, rows = numel / inner; row < rows; row++) {
        if (inner_stride == 1) {
            memcpy(out, storage + base * element, (size_t)(inner * element));
            out += inner * element;
        } else {
            for (uint64_t k = 0; k < inner; k++, out += element)
                memcpy(out, storage + (base + k * inner_stride) * element, element);
        }
        for (int d = last - 1; d >= 0; d--) {
            base += (uint64_t)v->stride[d];
            if (++index[d] < v->shape[d])
                break;
            base -= (uint64_t)v->stride[d] * (uint64_t)v->shape[d];
            index[d] = 0;
        }
    }
}

int io_sd_append_view(io_sd_builder *b, const char *prefix, const char *name,
                      const io_pk_tensor *view)
{
    io_pk_storage *s = &view->storage->u.storage;
    if (!s->resolved) {
        DCI_TRY(b->resolve(b->resolve_context, s));
        s->resolved = 1;
    }
    /* The largest element index the view reaches must lie inside the storage. */
    uint64_t last = view->offset;
    int overflow = 0, empty = 0;
    for (int d = 0; d < view->ndim; d++) {
        uint64_t extent = view->shape[d] ? (uint64_t)(view->shape[d] - 1) : 0, step;
        overflow |= __builtin_mul_overflow(extent, (uint64_t)view->stride[d], &step);
        overflow |= __builtin_add_overflow(last, step, &last);
        empty |= view->shape[d] == 0;
    }
    if (!empty && (overflow || last >= s->numel))
        return dci_err(DC_EFORMAT, "%s: tensor %s%s lies outside its storage %s", b->label,
                       prefix, name, s->key);
    size_t element = dc_dtype_size(s->dtype);
    int ok;
    uint64_t bytes = io_shape_bytes(view->ndim, view->shape, element, &ok);
    if (ok && bytes > s->numel * element) {
        b->expanded_bytes += bytes - s->numel * element;
        if (b->expanded_bytes > MAX_EXPANDED_BYTES)
            return dci_err(DC_EFORMAT, "%s: tensor %s%s: expanded views exceed %llu MiB",
                           b->label, prefix, name,
                           (unsigned long long)(MAX_EXPANDED_BYTES >> 20));
    }
    void *data;
    DCI_TRY(io_sd_append(b, prefix, name, s->dtype, view->ndim, view->shape, &data));
    if (data) {
        const dc_tensor *t = &b->sd->tensors[b->sd->count - 1].value;
        copy_view(data, s->data, element, view, (uint64_t)dc_tensor_numel(t));
    }
    return DC_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice among `count` names, or NULL (names is reordered). */
static const char *find_duplicate(const char **names, size_t count)
{
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 1; i < count; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

int io_sd_finish(io_sd_builder *b)
{
    io_state_dict *sd = b->sd;
    if (sd->count < 2)
        return DC_OK;
    const char **names = malloc(sd->count * sizeof *names);
    if (!names)
        return dci_err(DC_ENOMEM, "%s: out of memory", b->label);
    for (size_t i = 0; i < sd->count; i++)
        names[i] = sd->tensors[i].name;
    const char *duplicate = find_duplicate(names, sd->count);
    int status = duplicate ? dci_err(DC_EFORMAT, "%s: duplicate tensor name %s", b->label,
                                     duplicate)
                           : DC_OK;
    free(names);
    return status;
}

/* ---- finding the state dict ---- */

static int is_tensor_entry(const io_pk_pair *item)
{
    return item->key->kind == IO_PK_STRING && item->value->kind == IO_PK_TENSOR;
}

static int holds_tensors(const io_pk_obj *o)
{
    if (o->kind != IO_PK_DICT)
        return 0;
    for (size_t i = 0; i < o->u.dict.count; i++)
        if (is_tensor_entry(&o->u.dict.items[i]))
            return 1;
    return 0;
}

/* The state dict of a torch.save object is:
 *   1. the object itself when it is a dict holding tensors (or an empty dict);
 *   2. else, for a dict, its 'state_dict' entry when that holds tensors, else its first
 *      dict-valued entry that holds tensors (e.g. {'model': sd, 'optimizer': ...});
 *   3. else, for a list or tuple, its first element that is a dict holding tensors.
 * Only the string-keyed tensor entries of that dict are read; other values (ints, nested
 * dicts, None) are skipped. Names are kept as they are ("module." is not stripped). */
static const io_pk_obj *find_state_dict(const io_pk_obj *top)
{
    if (top->kind == IO_PK_DICT) {
        if (top->u.dict.count == 0 || holds_tensors(top))
            return top;
        const io_pk_obj *named = io_pk_dict_get(top, "state_dict");
        if (named && holds_tensors(named))
            return named;
        for (size_t i = 0; i < top->u.dict.count; i++)
            if (holds_tensors(top->u.dict.items[i].value))
                return top->u.dict.items[i].value;
    } else if (top->kind == IO_PK_LIST || top->kind == IO_PK_TUPLE) {
        for (size_t i = 0; i < top->u.seq.count; i++)
            if (holds_tensors(top->u.seq.items[i]))
                return top->u.seq.items[i];
    }
    return NULL;
}

int io_sd_append_torch_object(io_sd_builder *b, const io_pk_obj *top)
{
    const io_pk_obj *dict = find_state_dict(top);
    if (!dict)
        return dci_err(DC_EFORMAT, "%s: no state dict (a dict of tensors) found", b->label);
    for (size_t i = 0; i < dict->u.dict.count; i++) {
        const io_pk_pair *item = &dict->u.dict.items[i];
        if (!is_tensor_entry(item))
            continue;
        if (strlen(item->key->u.text.data) != item->key->u.text.length)
            return dci_err(DC_EFORMAT, "%s: tensor name contains a NUL byte", b->label);
        DCI_TRY(io_sd_append_view(b, "", item->key->u.text.data, &item->value->u.tensor));
    }
    return DC_OK;
}

/* ---- tensors given for writing ---- */

size_t io_tensor_bytes(const dc_tensor *t)
{
    return (size_t)dc_tensor_numel(t) * dc_dtype_size(t->dtype);
}

int io_check_named_tensors(const char *path, const dc_named_tensor *tensors, size_t count)
{
    if (!path)
        return dci_err(DC_EINVAL, "checkpoint path is NULL");
    if (count && !tensors)
        return dci_err(DC_EINVAL, "%s: tensors is NULL", path);
    if (count > IO_MAX_TENSORS)
        return dci_err(DC_EINVAL, "%s: more than %u tensors", path, IO_MAX_TENSORS);
    for (size_t i = 0; i < count; i++) {
        const char *name = tensors[i].name;
        const dc_tensor *t = &tensors[i].tensor;
        if (!name || strlen(name) > IO_MAX_NAME_LENGTH ||
            !io_utf8_valid((const uint8_t *)name, strlen(name)))
            return dci_err(DC_EINVAL, "%s: tensor %zu has no valid UTF-8 name", path, i);
        int ok = 0;
        uint64_t bytes = 0;
        if (t->ndim >= 0 && t->ndim <= DC_MAX_DIMS)
            bytes = io_shape_bytes(t->ndim, t->shape, dc_dtype_size(t->dtype), &ok);
        if (!ok || dc_dtype_size(t->dtype) == 0)
            return dci_err(DC_EINVAL, "%s: tensor %s: bad dtype, rank or shape", path, name);
        if (bytes && !t->data)
            return dci_err(DC_EINVAL, "%s: tensor %s: data is NULL", path, name);
    }
    if (count < 2)
        return DC_OK;
    const char **names = malloc(count * sizeof *names);
    if (!names)
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < count; i++)
        names[i] = tensors[i].name;
    const char *duplicate = find_duplicate(names, count);
    int status = duplicate ? dci_err(DC_EINVAL, "%s: duplicate tensor name %s", path, duplicate)
                           : DC_OK;
    free(names);
    return status;
}
