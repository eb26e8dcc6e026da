/* The legacy torch.save container (PyTorch < 1.6, or _use_new_zipfile_serialization=False):
 * five pickles back to back (the magic number 0x1950a86a20f9469cfc6c, the protocol version
 * 1001, a sys_info dict, the object with storages as persistent ids, the sorted list of
 * storage keys), then for each key in that list an 8-byte little-endian element count and
 * the storage's raw bytes. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "bytes.h"
#include "containers.h"
#include "pickle.h"
#include "state_dict.h"

static const uint8_t legacy_magic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
enum { LEGACY_PROTOCOL_VERSION = 1001 };

typedef struct legacy_file {
    const uint8_t *data;
    size_t size, pos;
    const char *label;
    io_pickle pk;
} legacy_file;

static int load_next(legacy_file *f, io_pk_obj **result)
{
    size_t consumed;
    DCI_TRY(io_pickle_load(&f->pk, f->data + f->pos, f->size - f->pos, &consumed, result));
    f->pos += consumed;
    return DC_OK;
}

static int read_preamble(legacy_file *f)
{
    io_pk_obj *magic, *protocol, *info;
    DCI_TRY(load_next(f, &magic));
    if (magic->kind != IO_PK_BIGINT || magic->u.text.length != sizeof legacy_magic ||
        memcmp(magic->u.text.data, legacy_magic, sizeof legacy_magic) != 0)
        return dci_err(DC_EFORMAT, "%s: not a torch.save file (bad magic number)", f->label);
    DCI_TRY(load_next(f, &protocol));
    if (protocol->kind != IO_PK_INT || protocol->u.integer != LEGACY_PROTOCOL_VERSION)
        return dci_err(DC_EFORMAT, "%s: unsupported legacy torch.save protocol", f->label);
    DCI_TRY(load_next(f, &info));
    const io_pk_obj *little = io_pk_dict_get(info, "little_endian");
    if (info->kind != IO_PK_DICT || (little && (little->kind != IO_PK_BOOL || !little->u.integer)))
        return dci_err(DC_EFORMAT, "%s: only little-endian files are supported", f->label);
    return DC_OK;
}

static int compare_storage_keys(const void *a, const void *b)
{
    const io_pk_obj *x = *(io_pk_obj *const *)a, *y = *(io_pk_obj *const *)b;
    return strcmp(x->u.storage.key, y->u.storage.key);
}

/* Points every storage reference named `key` at its record, which starts at f->pos. */
static int read_record(legacy_file *f, io_pk_obj **sorted, size_t count, const char *key)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (strcmp(sorted[mid]->u.storage.key, key) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    if (low == count || strcmp(sorted[low]->u.storage.key, key) != 0)
        return dci_err(DC_EFORMAT, "%s: storage %s is listed but never used", f->label, key);
    if (sorted[low]->u.storage.resolved)
        return dci_err(DC_EFORMAT, "%s: storage %s listed twice", f->label, key);
    dc_dtype dtype = sorted[low]->u.storage.dtype;
    size_t element = dc_dtype_size(dtype);
    if (f->size - f->pos < 8)
        return dci_err(DC_EFORMAT, "%s: truncated at storage %s", f->label, key);
    uint64_t numel = io_le64(f->data + f->pos);
    if (numel > (f->size - f->pos - 8) / element)
        return dci_err(DC_EFORMAT, "%s: storage %s: %llu elements run past the end of the file",
                       f->label, key, (unsigned long long)numel);
    const uint8_t *bytes = f->data + f->pos + 8;
    f->pos += 8 + (size_t)numel * element;
    for (size_t i = low; i < count && strcmp(sorted[i]->u.storage.key, key) == 0; i++) {
        io_pk_storage *s = &sorted[i]->u.storage;
        if (s->dtype != dtype || s->root_numel != numel)
            return dci_err(DC_EFORMAT, "%s: storage %s: inconsistent type or size", f->label, key);
        s->data = bytes + s->root_offset * element;
        s->resolved = 1;
    }
    return DC_OK;
}

static int read_records(legacy_file *f, const io_pk_obj *keys)
{
    if (keys->kind != IO_PK_LIST)
        return dci_err(DC_EFORMAT, "%s: bad storage key list", f->label);
    size_t count = f->pk.storage_count;
    io_pk_obj **sorted = malloc((count ? count : 1) * sizeof *sorted);
    if (!sorted)
        return dci_err(DC_ENOMEM, "%s: out of memory", f->label);
    if (count)   /* storages is NULL when the pickles made none */
        memcpy(sorted, f->pk.storages, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, compare_storage_keys);
    int status = DC_OK;
    for (size_t i = 0; status == DC_OK && i < keys->u.seq.count; i++) {
        const char *key = io_pk_string(keys->u.seq.items[i]);
        status = key ? read_record(f, sorted, count, key)
                     : dci_err(DC_EFORMAT, "%s: bad storage key list", f->label);
    }
    free(sorted);
    return status;
}

/* Reached only for references whose key the list lacks: read_records resolved the others. */
static int missing_storage(void *context, io_pk_storage *s)
{
    const legacy_file *f = context;
    return dci_err(DC_EFORMAT, "%s: storage %s has no data", f->label, s->key);
}

static int read_legacy(legacy_file *f, io_state_dict *out)
{
    io_pk_obj *root, *keys;
    DCI_TRY(read_preamble(f));
    DCI_TRY(load_next(f, &root));
    DCI_TRY(load_next(f, &keys));
    DCI_TRY(read_records(f, keys));
    io_sd_builder b;
    io_sd_builder_init(&b, out, DC_CONTAINER_TORCH_LEGACY, f->label);
    b.resolve = missing_storage;
    b.resolve_context = f;
    DCI_TRY(io_sd_append_torch_object(&b, root));
    return io_sd_finish(&b);
}

int io_torch_legacy_read(const uint8_t *data, size_t size, const char *label,
                         io_state_dict *out)
{
    legacy_file f = {.data = data, .size = size, .label = label};
    io_pickle_init(&f.pk, label, 0);
    int status = read_legacy(&f, out);
    io_pickle_free(&f.pk);
    return status;
}
