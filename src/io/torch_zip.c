/* torch.save zip archives (PyTorch >= 1.6) and TorchScript archives: FOLDER/data.pkl holds
 * the pickled object, FOLDER/data/KEY each storage's raw little-endian bytes. TorchScript
 * archives also hold FOLDER/code/ (the module classes) and FOLDER/constants.pkl. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "buffer.h"
#include "bytes.h"
#include "containers.h"
#include "limits.h"
#include "pickle.h"
#include "state_dict.h"
#include "torchscript.h"
#include "zip.h"

enum { MAX_RECORD_NAME = IO_MAX_NAME_LENGTH + 64 };

typedef struct torch_archive {
    io_zip zip;
    char folder[IO_MAX_NAME_LENGTH + 1];
    const char *label;
} torch_archive;

/* FOLDER/name, or DC_EFORMAT when too long. */
static int record_name(const torch_archive *a, const char *name, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/%s", a->folder, name) >= size)
        return dci_err(DC_EFORMAT, "%s: record name too long", a->label);
    return DC_OK;
}

static int resolve_storage(void *context, io_pk_storage *s)
{
    torch_archive *a = context;
    char name[MAX_RECORD_NAME], relative[MAX_RECORD_NAME];
    snprintf(relative, sizeof relative, "data/%s", s->key);
    DCI_TRY(record_name(a, relative, name, sizeof name));
    io_zip_entry *entry = io_zip_find(&a->zip, name);
    if (!entry)
        return dci_err(DC_EFORMAT, "%s: storage %s has no record %s", a->label, s->key, name);
    const uint8_t *data;
    size_t size;
    DCI_TRY(io_zip_read(&a->zip, entry, &data, &size));
    size_t element = dc_dtype_size(s->dtype);
    if (size % element != 0 || size / element != s->root_numel)
        return dci_err(DC_EFORMAT, "%s: storage %s has %zu bytes, not %llu elements of %zu",
                       a->label, s->key, size, (unsigned long long)s->root_numel, element);
    s->data = data + s->root_offset * element;
    return DC_OK;
}

/* PyTorch names every record FOLDER/..., FOLDER being the first entry's top directory. */
static int find_folder(torch_archive *a)
{
    const char *first = a->zip.entries[0].name;
    const char *slash = strchr(first, '/');
    if (!slash || slash == first || (size_t)(slash - first) > IO_MAX_NAME_LENGTH)
        return dci_err(DC_EFORMAT, "%s: not a PyTorch archive (no top folder)", a->label);
    memcpy(a->folder, first, (size_t)(slash - first));
    a->folder[slash - first] = '\0';
    return DC_OK;
}

static int is_torchscript(const torch_archive *a)
{
    char constants[MAX_RECORD_NAME], code[MAX_RECORD_NAME];
    if (record_name(a, "constants.pkl", constants, sizeof constants) != DC_OK ||
        record_name(a, "code/", code, sizeof code) != DC_OK)
        return 0;
    if (io_zip_find(&a->zip, constants))
        return 1;
    size_t n = strlen(code);
    for (size_t i = 0; i < a->zip.count; i++)
        if (strncmp(a->zip.entries[i].name, code, n) == 0)
            return 1;
    return 0;
}

static int check_byte_order(torch_archive *a)
{
    char name[MAX_RECORD_NAME];
    DCI_TRY(record_name(a, "byteorder", name, sizeof name));
    if (!io_zip_find(&a->zip, name))
        return DC_OK;  /* written since PyTorch 2.1; older files are little-endian */
    const uint8_t *data;
    size_t size;
    DCI_TRY(io_zip_read_named(&a->zip, name, &data, &size));
    if (size != 6 || memcmp(data, "little", 6) != 0)
        return dci_err(DC_EFORMAT, "%s: only little-endian archives are supported", a->label);
    return DC_OK;
}

static int read_archive(torch_archive *a, io_pickle *pk, io_state_dict *out)
{
    DCI_TRY(find_folder(a));
    DCI_TRY(check_byte_order(a));
    int script = is_torchscript(a);
    char name[MAX_RECORD_NAME];
    DCI_TRY(record_name(a, "data.pkl", name, sizeof name));
    if (!io_zip_find(&a->zip, name))
        return dci_err(DC_EFORMAT, "%s: not a PyTorch archive (no %s)", a->label, name);
    const uint8_t *pickle;
    size_t size;
    DCI_TRY(io_zip_read_named(&a->zip, name, &pickle, &size));
    io_pickle_init(pk, a->label, script);
    io_pk_obj *root;
    DCI_TRY(io_pickle_load(pk, pickle, size, NULL, &root));
    io_sd_builder b;
    io_sd_builder_init(&b, out, script ? DC_CONTAINER_TORCHSCRIPT : DC_CONTAINER_TORCH_ZIP,
                       a->label);
    b.resolve = resolve_storage;
    b.resolve_context = a;
    if (script)
        DCI_TRY(io_torchscript_append(&b, &a->zip, a->folder, root));
    else
        DCI_TRY(io_sd_append_torch_object(&b, root));
    return io_sd_finish(&b);
}

int io_torch_zip_read(const uint8_t *data, size_t size, const char *label, io_state_dict *out)
{
    torch_archive *a = calloc(1, sizeof *a);
    if (!a)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    a->label = label;
    io_pickle pk;
    io_pickle_init(&pk, label, 0);
    int status = io_zip_open(&a->zip, data, size, label);
    if (status == DC_OK)
        status = read_archive(a, &pk, out);
    io_pickle_free(&pk);
    io_zip_close(&a->zip);
    free(a);
    return status;
}

/* ---- writing ---- */

static const char *storage_class(dc_dtype dtype)
{
    switch (dtype) {
    case DC_FLOAT32: return "FloatStorage";
    case DC_FLOAT16: return "HalfStorage";
    case DC_BFLOAT16: return "BFloat16Storage";
    case DC_FLOAT64: return "DoubleStorage";
    case DC_INT64: return "LongStorage";
    case DC_INT32: return "IntStorage";
    case DC_UINT8: return "ByteStorage";
    case DC_BOOL: return "BoolStorage";
    }
    return NULL;
}

/* Non-negative ints as Python's pickler writes them (protocol 2). */
static void pickle_int(io_buffer *p, uint64_t v)
{
    uint8_t bytes[9];
    if (v < 0x100) {
        io_buffer_byte(p, 'K');
        io_buffer_byte(p, (uint8_t)v);
    } else if (v < 0x10000) {
        io_buffer_byte(p, 'M');
        io_put_le16(bytes, (uint16_t)v);
        io_buffer_append(p, bytes, 2);
    } else if (v < 0x80000000u) {
        io_buffer_byte(p, 'J');
        io_put_le32(bytes, (uint32_t)v);
        io_buffer_append(p, bytes, 4);
    } else {
        /* LONG1: little-endian two's complement, with room for a clear sign bit. */
        io_put_le64(bytes, v);
        bytes[8] = 0;
        uint8_t n = 9;
        while (n > 1 && bytes[n - 1] == 0 && !(bytes[n - 2] & 0x80))
            n--;
        io_buffer_byte(p, 0x8a);
        io_buffer_byte(p, n);
        io_buffer_append(p, bytes, n);
    }
}

static void pickle_string(io_buffer *p, const char *s)
{
    uint8_t length[4];
    io_put_le32(length, (uint32_t)strlen(s));
    io_buffer_byte(p, 'X');
    io_buffer_append(p, length, 4);
    io_buffer_append(p, s, strlen(s));
}

static void pickle_int_tuple(io_buffer *p, const int64_t *values, int count)
{
    if (count == 0) {
        io_buffer_byte(p, ')');
        return;
    }
    io_buffer_byte(p, '(');
    for (int i = 0; i < count; i++)
        pickle_int(p, (uint64_t)values[i]);
    io_buffer_byte(p, 't');
}

/* OrderedDict([(name, _rebuild_tensor_v2(persistent_load(('storage', torch.XStorage, key,
 * 'cpu', numel)), 0, shape, stride, False, OrderedDict())), ...]): what torch.save writes
 * for a state dict, storage KEY being the tensor's index. */
static void pickle_state_dict(io_buffer *p, const dc_named_tensor *tensors, size_t count)
{
    static const uint8_t memo_ordered_dict[] = {'q', 0}, get_ordered_dict[] = {'h', 0};
    static const uint8_t memo_rebuild[] = {'q', 1}, get_rebuild[] = {'h', 1};
    static const char ordered_dict[] = "ccollections\nOrderedDict\n";
    static const char rebuild[] = "ctorch._utils\n_rebuild_tensor_v2\n";
    io_buffer_append(p, "\x80\x02", 2);
    io_buffer_append(p, ordered_dict, sizeof ordered_dict - 1);
    io_buffer_append(p, memo_ordered_dict, 2);
    io_buffer_append(p, ")R(", 3);
    for (size_t i = 0; i < count; i++) {
        const dc_tensor *t = &tensors[i].tensor;
        pickle_string(p, tensors[i].name);
        if (i == 0) {
            io_buffer_append(p, rebuild, sizeof rebuild - 1);
            io_buffer_append(p, memo_rebuild, 2);
        } else {
            io_buffer_append(p, get_rebuild, 2);
        }
        io_buffer_append(p, "((", 2);
        pickle_string(p, "storage");
        io_buffer_printf(p, "ctorch\n%s\n", storage_class(t->dtype));
        char key[32];
        snprintf(key, sizeof key, "%zu", i);
        pickle_string(p, key);
        pickle_string(p, "cpu");
        pickle_int(p, (uint64_t)dc_tensor_numel(t));
        io_buffer_append(p, "tQ", 2);
        pickle_int(p, 0);
        int64_t stride[DC_MAX_DIMS];
        int64_t step = 1;
        for (int d = t->ndim - 1; d >= 0; d--) {
            stride[d] = step;
            step *= t->shape[d] > 1 ? t->shape[d] : 1;
        }
        pickle_int_tuple(p, t->shape, t->ndim);
        pickle_int_tuple(p, stride, t->ndim);
        io_buffer_byte(p, 0x89);  /* requires_grad False */
        io_buffer_append(p, get_ordered_dict, 2);
        io_buffer_append(p, ")RtR", 4);
    }
    io_buffer_append(p, "u.", 2);
}

static int write_archive(io_zip_writer *w, const io_buffer *pickle, const dc_named_tensor *tensors,
                         size_t count)
{
    DCI_TRY(io_zip_writer_add(w, "archive/data.pkl", pickle->data, pickle->size));
    DCI_TRY(io_zip_writer_add(w, "archive/byteorder", "little", 6));
    for (size_t i = 0; i < count; i++) {
        char name[64];
        snprintf(name, sizeof name, "archive/data/%zu", i);
        DCI_TRY(io_zip_writer_add(w, name, tensors[i].tensor.data,
                                  io_tensor_bytes(&tensors[i].tensor)));
    }
    DCI_TRY(io_zip_writer_add(w, "archive/version", "3\n", 2));
    return io_zip_writer_finish(w);
}

int io_checkpoint_write_torch(const char *path, const dc_named_tensor *tensors, size_t count)
{
    DCI_TRY(io_check_named_tensors(path, tensors, count));
    io_buffer pickle = {0};
    pickle_state_dict(&pickle, tensors, count);
    int status = io_buffer_status(&pickle, path);
    io_zip_writer w;
    if (status == DC_OK)
        status = io_zip_writer_begin(&w, path);
    if (status == DC_OK) {
        status = write_archive(&w, &pickle, tensors, count);
        io_zip_writer_abort(&w);
    }
    io_buffer_free(&pickle);
    return status;
}
