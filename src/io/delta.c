/* Delta file, all integers little-endian (docs/formats.md):
 *   header (64 bytes): "DCWDELTA", u32 version, u32 tensor count, base id[40], u32 reserved
 *     (0), u32 CRC-32 of the bytes before it
 *   per tensor: u32 name length, name (UTF-8), u32 ndim, i64 shape[ndim], u32 CRC-32 of the
 *     name, ndim, shape and uncompressed bytes, u64 compressed size, zlib stream of the numel
 *     low bytes then the numel high bytes of the little-endian float16 values. */
#include "delta.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/error.h"
#include "bytes.h"
#include "file.h"
#include "json.h"
#include "limits.h"
#include "state_dict.h"

#define DELTA_MAGIC "DCWDELTA"
enum { DELTA_VERSION = 1, HEADER_SIZE = 64 };

int io_delta_detect(const uint8_t *data, size_t size)
{
    return data && size >= 8 && memcmp(data, DELTA_MAGIC, 8) == 0;
}

/* Byte planes: float16 values' low bytes together, then their high bytes (sign, exponent),
 * which zlib compresses far better than interleaved values. */
static void split_planes(const uint8_t *values, size_t numel, uint8_t *planes)
{
    for (size_t i = 0; i < numel; i++) {
        planes[i] = values[2 * i];
        planes[numel + i] = values[2 * i + 1];
    }
}

static void join_planes(const uint8_t *planes, size_t numel, uint8_t *values)
{
    for (size_t i = 0; i < numel; i++) {
        values[2 * i] = planes[i];
        values[2 * i + 1] = planes[numel + i];
    }
}

/* What a tensor's CRC covers: its name, rank and shape (as stored) and its plane bytes. */
static uint32_t tensor_crc(const uint8_t *name, size_t name_length, const uint8_t *layout,
                           size_t layout_length, const uint8_t *planes, size_t bytes)
{
    uLong crc = crc32_z(0, name, name_length);
    crc = crc32_z(crc, layout, layout_length);
    return (uint32_t)crc32_z(crc, planes, bytes);
}

static int write_tensor(io_atomic_file *f, const dc_named_tensor *nt)
{
    const dc_tensor *t = &nt->tensor;
    size_t bytes = io_tensor_bytes(t), numel = bytes / 2;
    uLong bound = compressBound((uLong)bytes);
    uint8_t *planes = malloc(bytes ? bytes : 1), *packed = malloc(bound);
    int status = planes && packed ? DC_OK : dci_err(DC_ENOMEM, "%s: out of memory",
                                                    f->final_path);
    uLongf packed_size = bound;
    if (status == DC_OK) {
        split_planes(t->data, numel, planes);
        if (compress2(packed, &packed_size, planes, (uLong)bytes, Z_DEFAULT_COMPRESSION) != Z_OK)
            status = dci_err(DC_EINTERNAL, "%s: zlib failed on tensor %s", f->final_path,
                             nt->name);
    }
    if (status == DC_OK) {
        uint8_t head[4 + 4 + 8 * DC_MAX_DIMS + 4 + 8];
        size_t name_length = strlen(nt->name), n = 0;
        io_put_le32(head, (uint32_t)name_length);
        status = io_atomic_write(f, head, 4);
        if (status == DC_OK)
            status = io_atomic_write(f, nt->name, name_length);
        io_put_le32(head + n, (uint32_t)t->ndim), n += 4;
        for (int d = 0; d < t->ndim; d++)
            io_put_le64(head + n, (uint64_t)t->shape[d]), n += 8;
        uint32_t crc = tensor_crc((const uint8_t *)nt->name, name_length, head, n, planes,
                                  bytes);
        io_put_le32(head + n, crc), n += 4;
        io_put_le64(head + n, (uint64_t)packed_size), n += 8;
        if (status == DC_OK)
            status = io_atomic_write(f, head, n);
        if (status == DC_OK)
            status = io_atomic_write(f, packed, packed_size);
    }
    free(planes);
    free(packed);
    return status;
}

int io_delta_write(const char *path, const char base_id[IO_DELTA_BASE_ID_SIZE],
                   const dc_named_tensor *tensors, size_t count)
{
    DCI_TRY(io_check_named_tensors(path, tensors, count));
    if (!base_id || !memchr(base_id, '\0', IO_DELTA_BASE_ID_SIZE))
        return dci_err(DC_EINVAL, "%s: the base model's id must be a short string", path);
    for (size_t i = 0; i < count; i++)
        if (tensors[i].tensor.dtype != DC_FLOAT16)
            return dci_err(DC_EINVAL, "%s: delta tensor %s is not float16", path,
                           tensors[i].name);
    uint8_t header[HEADER_SIZE] = {0};
    memcpy(header, DELTA_MAGIC, 8);
    io_put_le32(header + 8, DELTA_VERSION);
    io_put_le32(header + 12, (uint32_t)count);
    memcpy(header + 16, base_id, IO_DELTA_BASE_ID_SIZE);
    io_put_le32(header + 60, (uint32_t)crc32(0, header, 60));
    io_atomic_file f;
    DCI_TRY(io_atomic_begin(&f, path));
    int status = io_atomic_write(&f, header, sizeof header);
    for (size_t i = 0; status == DC_OK && i < count; i++)
        status = write_tensor(&f, &tensors[i]);
    if (status != DC_OK) {
        io_atomic_abort(&f);
        return status;
    }
    return io_atomic_commit(&f);
}

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p, *end;
    const char *label;
} reader;

static int take(reader *r, size_t n, const uint8_t **out, const char *what)
{
    if ((size_t)(r->end - r->p) < n)
        return dci_err(DC_EFORMAT, "%s: truncated in %s", r->label, what);
    *out = r->p;
    r->p += n;
    return DC_OK;
}

static int read_tensor(reader *r, io_sd_builder *b, size_t index)
{
    const uint8_t *p = NULL;
    DCI_TRY(take(r, 4, &p, "a tensor name's length"));
    uint32_t name_length = io_le32(p);
    if (name_length == 0 || name_length > IO_MAX_NAME_LENGTH)
        return dci_err(DC_EFORMAT, "%s: tensor %zu has a name of %u bytes", r->label, index,
                       name_length);
    DCI_TRY(take(r, name_length, &p, "a tensor name"));
    if (memchr(p, '\0', name_length) || !io_utf8_valid(p, name_length))
        return dci_err(DC_EFORMAT, "%s: tensor %zu's name is not valid UTF-8", r->label, index);
    char name[IO_MAX_NAME_LENGTH + 1];
    memcpy(name, p, name_length);
    name[name_length] = '\0';
    DCI_TRY(take(r, 4, &p, "a rank"));
    uint32_t ndim = io_le32(p);
    if (ndim > DC_MAX_DIMS)
        return dci_err(DC_EFORMAT, "%s: tensor %s has %u dimensions", r->label, name, ndim);
    int64_t shape[DC_MAX_DIMS];
    const uint8_t *layout = p;           /* ndim, then the shape */
    DCI_TRY(take(r, 8 * (size_t)ndim + 12, &p, "a tensor header"));
    for (uint32_t d = 0; d < ndim; d++) {
        uint64_t v = io_le64(p + 8 * d);
        if (v > INT64_MAX)
            return dci_err(DC_EFORMAT, "%s: tensor %s has a negative dimension", r->label, name);
        shape[d] = (int64_t)v;
    }
    uint32_t crc = io_le32(p + 8 * ndim);
    uint64_t packed_size = io_le64(p + 8 * ndim + 4);
    if (packed_size == 0 || packed_size > (uint64_t)(r->end - r->p))
        return dci_err(DC_EFORMAT, "%s: tensor %s: compressed size %llu outside the file",
                       r->label, name, (unsigned long long)packed_size);
    const uint8_t *packed = r->p;
    r->p += packed_size;
    void *data;
    DCI_TRY(io_sd_append(b, "", name, DC_FLOAT16, (int)ndim, shape, &data));
    size_t bytes = io_tensor_bytes(&b->sd->tensors[b->sd->count - 1].value);
    uint8_t *planes = malloc(bytes ? bytes : 1);
    if (!planes)
        return dci_err(DC_ENOMEM, "%s: out of memory for tensor %s", r->label, name);
    uLongf got = (uLongf)bytes;
    int z = uncompress(planes, &got, packed, (uLong)packed_size);
    int status = DC_OK;
    if (z != Z_OK || got != bytes)
        status = dci_err(DC_EFORMAT, "%s: tensor %s: bad zlib data (%s)", r->label, name,
                         z == Z_OK ? "wrong length" : zError(z));
    else if (tensor_crc((const uint8_t *)name, name_length, layout, 4 + 8 * (size_t)ndim,
                        planes, bytes) != crc)
        status = dci_err(DC_EFORMAT, "%s: tensor %s: CRC mismatch", r->label, name);
    else
        join_planes(planes, bytes / 2, data);
    free(planes);
    return status;
}

int io_delta_read_buffer(const uint8_t *data, size_t size, const char *label,
                         char base_id[IO_DELTA_BASE_ID_SIZE], io_state_dict *out)
{
    if (!label)
        label = "delta";
    memset(out, 0, sizeof *out);
    if (!io_delta_detect(data, size))
        return dci_err(DC_EFORMAT, "%s: not a weights delta file", label);
    if (size < HEADER_SIZE)
        return dci_err(DC_EFORMAT, "%s: truncated header", label);
    if ((uint32_t)crc32(0, data, 60) != io_le32(data + 60))
        return dci_err(DC_EFORMAT, "%s: header CRC mismatch", label);
    if (io_le32(data + 8) != DELTA_VERSION)
        return dci_err(DC_EFORMAT, "%s: delta version %u (this library reads %d)", label,
                       io_le32(data + 8), DELTA_VERSION);
    uint32_t count = io_le32(data + 12);
    if (count > IO_MAX_TENSORS)
        return dci_err(DC_EFORMAT, "%s: %u tensors", label, count);
    if (!memchr(data + 16, '\0', IO_DELTA_BASE_ID_SIZE) || io_le32(data + 56) != 0)
        return dci_err(DC_EFORMAT, "%s: malformed header", label);
    memcpy(base_id, data + 16, IO_DELTA_BASE_ID_SIZE);
    reader r = {data + HEADER_SIZE, data + size, label};
    io_sd_builder b;
    /* There is no container code for deltas; none of their readers looks at it. */
    io_sd_builder_init(&b, out, DC_CONTAINER_SAFETENSORS, label);
    int status = DC_OK;
    for (uint32_t i = 0; status == DC_OK && i < count; i++)
        status = read_tensor(&r, &b, i);
    if (status == DC_OK && r.p != r.end)
        status = dci_err(DC_EFORMAT, "%s: %zu bytes after the last tensor", label,
                         (size_t)(r.end - r.p));
    if (status == DC_OK)
        status = io_sd_finish(&b);
    if (status != DC_OK)
        io_state_dict_free(out);
    return status;
}

int io_delta_read_file(const char *path, char base_id[IO_DELTA_BASE_ID_SIZE],
                       io_state_dict *out)
{
    memset(out, 0, sizeof *out);
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int status = io_delta_read_buffer(file.data, file.size, path, base_id, out);
    io_unmap_file(&file);
    return status;
}
