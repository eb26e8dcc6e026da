/* safetensors: an 8-byte little-endian header length, a JSON header
 * {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "value"}}, then the data, offsets counted from its start. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "bytes.h"
#include "containers.h"
#include "file.h"
#include "json.h"
#include "limits.h"
#include "state_dict.h"

enum { HEADER_LENGTH_BYTES = 8, HEADER_ALIGNMENT = 8 };

static const struct {
    const char *name;
    dc_dtype dtype;
} dtype_names[] = {
    {"F32", DC_FLOAT32}, {"F16", DC_FLOAT16}, {"BF16", DC_BFLOAT16}, {"F64", DC_FLOAT64},
    {"I64", DC_INT64},   {"I32", DC_INT32},   {"U8", DC_UINT8},      {"BOOL", DC_BOOL},
};

static const char *metadata_key = "__metadata__";

int io_safetensors_detect(const uint8_t *data, size_t size)
{
    if (size < HEADER_LENGTH_BYTES + 2)
        return 0;
    uint64_t length = io_le64(data);
    return length >= 2 && length <= size - HEADER_LENGTH_BYTES && data[HEADER_LENGTH_BYTES] == '{';
}

/* "__metadata__": an object of string values. */
static int skip_metadata(io_json *j)
{
    DCI_TRY(io_json_object_begin(j));
    size_t count = 0;
    for (;;) {
        char *key, *value;
        int done;
        DCI_TRY(io_json_object_next(j, &count, &key, &done));
        if (done)
            return DC_OK;
        free(key);
        DCI_TRY(io_json_string(j, &value));
        free(value);
    }
}

typedef struct tensor_info {
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    uint64_t begin, end;
} tensor_info;

static int read_dtype(io_json *j, const char *label, const char *name, dc_dtype *dtype)
{
    char *text;
    DCI_TRY(io_json_string(j, &text));
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++) {
        if (strcmp(text, dtype_names[i].name) == 0) {
            *dtype = dtype_names[i].dtype;
            free(text);
            return DC_OK;
        }
    }
    int status = dci_err(DC_EFORMAT, "%s: tensor %s: unsupported dtype %.32s", label, name, text);
    free(text);
    return status;
}

/* Reads [n0, n1, ...] into values (at most `capacity`). */
static int read_uint_array(io_json *j, const char *label, const char *name, uint64_t *values,
                           size_t capacity, size_t *count)
{
    DCI_TRY(io_json_array_begin(j));
    *count = 0;
    for (;;) {
        int done;
        size_t index = *count;
        DCI_TRY(io_json_array_next(j, count, &done));
        if (done)
            return DC_OK;
        if (index >= capacity)
            return dci_err(DC_EFORMAT, "%s: tensor %s: too many dimensions or offsets", label,
                           name);
        DCI_TRY(io_json_uint(j, &values[index]));
    }
}

static int read_tensor_info(io_json *j, const char *label, const char *name, tensor_info *info)
{
    DCI_TRY(io_json_object_begin(j));
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    size_t count = 0;
    for (;;) {
        char *key;
        int done, status;
        DCI_TRY(io_json_object_next(j, &count, &key, &done));
        if (done)
            break;
        uint64_t values[DC_MAX_DIMS];
        size_t n = 0;
        if (strcmp(key, "dtype") == 0) {
            status = read_dtype(j, label, name, &info->dtype);
            have_dtype = 1;
        } else if (strcmp(key, "shape") == 0) {
            status = read_uint_array(j, label, name, values, DC_MAX_DIMS, &n);
            for (size_t i = 0; status == DC_OK && i < n; i++) {
                if (values[i] > INT64_MAX)
                    status = dci_err(DC_EFORMAT, "%s: tensor %s: bad shape", label, name);
                info->shape[i] = (int64_t)values[i];
            }
            info->ndim = (int)n;
            have_shape = 1;
        } else if (strcmp(key, "data_offsets") == 0) {
            status = read_uint_array(j, label, name, values, 2, &n);
            if (status == DC_OK && n != 2)
                status = dci_err(DC_EFORMAT, "%s: tensor %s: bad data_offsets", label, name);
            info->begin = values[0];
            info->end = values[1];
            have_offsets = 1;
        } else {
            status = io_json_skip(j);
        }
        free(key);
        DCI_TRY(status);
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return dci_err(DC_EFORMAT, "%s: tensor %s: dtype, shape or data_offsets missing", label,
                       name);
    return DC_OK;
}

static int read_tensors(io_json *j, io_sd_builder *b, const uint8_t *data, uint64_t data_size)
{
    DCI_TRY(io_json_object_begin(j));
    size_t count = 0;
    for (;;) {
        char *name;
        int done, status;
        DCI_TRY(io_json_object_next(j, &count, &name, &done));
        if (done)
            return io_json_finish(j);
        if (strcmp(name, metadata_key) == 0) {
            status = skip_metadata(j);
        } else {
            tensor_info info;
            memset(&info, 0, sizeof info);
            status = read_tensor_info(j, b->label, name, &info);
            int ok = 0;
            uint64_t bytes = 0;
            if (status == DC_OK)
                bytes = io_shape_bytes(info.ndim, info.shape, dc_dtype_size(info.dtype), &ok);
            if (status == DC_OK && (!ok || info.begin > info.end || info.end > data_size ||
                                    info.end - info.begin != bytes))
                status = dci_err(DC_EFORMAT,
                                 "%s: tensor %s: data_offsets do not match its shape and the "
                                 "file",
                                 b->label, name);
            void *out = NULL;
            if (status == DC_OK)
                status = io_sd_append(b, "", name, info.dtype, info.ndim, info.shape, &out);
            if (status == DC_OK && out)
                memcpy(out, data + info.begin, (size_t)bytes);
        }
        free(name);
        DCI_TRY(status);
    }
}

int io_safetensors_read(const uint8_t *data, size_t size, const char *label, io_state_dict *out)
{
    io_sd_builder b;
    io_sd_builder_init(&b, out, DC_CONTAINER_SAFETENSORS, label);
    if (size < HEADER_LENGTH_BYTES)
        return dci_err(DC_EFORMAT, "%s: truncated safetensors header", label);
    uint64_t header = io_le64(data);
    if (header > size - HEADER_LENGTH_BYTES || header > IO_MAX_HEADER_BYTES)
        return dci_err(DC_EFORMAT, "%s: safetensors header length %llu out of range", label,
                       (unsigned long long)header);
    io_json j;
    io_json_init(&j, data + HEADER_LENGTH_BYTES, (size_t)header, label);
    const uint8_t *tensor_data = data + HEADER_LENGTH_BYTES + header;
    DCI_TRY(read_tensors(&j, &b, tensor_data, size - HEADER_LENGTH_BYTES - header));
    return io_sd_finish(&b);
}

static const char *dtype_code(dc_dtype dtype)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].dtype == dtype)
            return dtype_names[i].name;
    return NULL;
}

int io_checkpoint_write_safetensors(const char *path, const dc_named_tensor *tensors,
                                    size_t count)
{
    DCI_TRY(io_check_named_tensors(path, tensors, count));
    io_buffer header = {0};
    uint64_t offset = 0;
    io_buffer_byte(&header, '{');
    for (size_t i = 0; i < count; i++) {
        const dc_tensor *t = &tensors[i].tensor;
        if (strcmp(tensors[i].name, metadata_key) == 0) {
            io_buffer_free(&header);
            return dci_err(DC_EINVAL, "%s: %s is reserved in safetensors", path, metadata_key);
        }
        uint64_t bytes = io_tensor_bytes(t);
        if (i)
            io_buffer_byte(&header, ',');
        io_json_write_string(&header, tensors[i].name);
        io_buffer_printf(&header, ":{\"dtype\":\"%s\",\"shape\":[", dtype_code(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            io_buffer_printf(&header, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        io_buffer_printf(&header, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                         (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    io_buffer_byte(&header, '}');
    /* Spaces pad the header so that the data starts 8-byte aligned, as safetensors does. */
    while (header.size % HEADER_ALIGNMENT)
        io_buffer_byte(&header, ' ');
    int status = io_buffer_status(&header, path);
    io_atomic_file file;
    if (status == DC_OK)
        status = io_atomic_begin(&file, path);
    if (status != DC_OK) {
        io_buffer_free(&header);
        return status;
    }
    uint8_t length[HEADER_LENGTH_BYTES];
    io_put_le64(length, header.size);
    status = io_atomic_write(&file, length, sizeof length);
    if (status == DC_OK)
        status = io_atomic_write(&file, header.data, header.size);
    for (size_t i = 0; status == DC_OK && i < count; i++)
        status = io_atomic_write(&file, tensors[i].tensor.data, io_tensor_bytes(&tensors[i].tensor));
    io_buffer_free(&header);
    if (status != DC_OK) {
        io_atomic_abort(&file);
        return status;
    }
    return io_atomic_commit(&file);
}
