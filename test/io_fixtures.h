/* Builders for the io tests' fixtures, made in memory by the tests themselves: zip archives
 * (stored or deflated entries, ZIP64 records, padded local headers) and pickles written
 * opcode by opcode. Header-only so that each test binary stays self-contained. */
#ifndef DC_TEST_IO_FIXTURES_H
#define DC_TEST_IO_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "io/buffer.h"
#include "io/bytes.h"

/* ---- zip ---- */

typedef struct fx_zip {
    io_buffer out;        /* local headers and data */
    io_buffer central;    /* central directory, appended by fx_zip_finish */
    uint16_t count;
    int zip64;            /* ZIP64 markers and records for every entry */
} fx_zip;

static inline void fx_le16(io_buffer *b, uint16_t v)
{
    uint8_t p[2];
    io_put_le16(p, v);
    io_buffer_append(b, p, 2);
}

static inline void fx_le32(io_buffer *b, uint32_t v)
{
    uint8_t p[4];
    io_put_le32(p, v);
    io_buffer_append(b, p, 4);
}

static inline void fx_le64(io_buffer *b, uint64_t v)
{
    uint8_t p[8];
    io_put_le64(p, v);
    io_buffer_append(b, p, 8);
}

/* Raw deflate of data into a new buffer. */
static inline uint8_t *fx_deflate(const void *data, size_t size, size_t *out_size)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t capacity = deflateBound(&s, (uLong)size) + 16;
    uint8_t *out = malloc(capacity);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)size;
    s.next_out = out;
    s.avail_out = (uInt)capacity;
    deflate(&s, Z_FINISH);
    *out_size = capacity - s.avail_out;
    deflateEnd(&s);
    return out;
}

/* Adds an entry; `padding` extra bytes in the local header only (as PyTorch aligns data). */
static inline void fx_zip_add(fx_zip *z, const char *name, const void *data, size_t size,
                              int deflated, uint16_t padding)
{
    size_t stored_size = size;
    uint8_t *packed = deflated ? fx_deflate(data, size, &stored_size) : NULL;
    uint32_t crc = (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), data, size);
    uint64_t offset = z->out.size;
    uint16_t name_length = (uint16_t)strlen(name);
    uint32_t size32 = z->zip64 ? 0xFFFFFFFFu : (uint32_t)size;
    uint32_t stored32 = z->zip64 ? 0xFFFFFFFFu : (uint32_t)stored_size;
    uint16_t zip64_extra = z->zip64 ? 20 : 0;

    io_buffer *o = &z->out;
    fx_le32(o, 0x04034b50);
    fx_le16(o, 45);
    fx_le16(o, 0);
    fx_le16(o, deflated ? 8 : 0);
    fx_le32(o, 0);
    fx_le32(o, crc);
    fx_le32(o, stored32);
    fx_le32(o, size32);
    fx_le16(o, name_length);
    fx_le16(o, (uint16_t)(zip64_extra + (padding ? 4 + padding : 0)));
    io_buffer_append(o, name, name_length);
    if (z->zip64) {
        fx_le16(o, 1);
        fx_le16(o, 16);
        fx_le64(o, size);
        fx_le64(o, stored_size);
    }
    if (padding) {
        fx_le16(o, 0x4246);
        fx_le16(o, padding);
        for (uint16_t i = 0; i < padding; i++)
            io_buffer_byte(o, 'Z');
    }
    io_buffer_append(o, deflated ? packed : data, stored_size);
    free(packed);

    io_buffer *c = &z->central;
    fx_le32(c, 0x02014b50);
    fx_le16(c, 45);
    fx_le16(c, 45);
    fx_le16(c, 0);
    fx_le16(c, deflated ? 8 : 0);
    fx_le32(c, 0);
    fx_le32(c, crc);
    fx_le32(c, stored32);
    fx_le32(c, size32);
    fx_le16(c, name_length);
    fx_le16(c, (uint16_t)(z->zip64 ? 28 : 0));
    fx_le16(c, 0);
    fx_le16(c, 0);
    fx_le16(c, 0);
    fx_le32(c, 0);
    fx_le32(c, z->zip64 ? 0xFFFFFFFFu : (uint32_t)offset);
    io_buffer_append(c, name, name_length);
    if (z->zip64) {
        fx_le16(c, 1);
        fx_le16(c, 24);
        fx_le64(c, size);
        fx_le64(c, stored_size);
        fx_le64(c, offset);
    }
    z->count++;
}

/* Appends the central directory and end records; z->out is then the whole archive. */
static inline void fx_zip_finish(fx_zip *z, const char *comment)
{
    io_buffer *o = &z->out;
    uint64_t directory_offset = o->size;
    io_buffer_append(o, z->central.data, z->central.size);
    uint64_t directory_size = z->central.size;
    if (z->zip64) {
        uint64_t record = o->size;
        fx_le32(o, 0x06064b50);
        fx_le64(o, 44);
        fx_le16(o, 45);
        fx_le16(o, 45);
        fx_le32(o, 0);
        fx_le32(o, 0);
        fx_le64(o, z->count);
        fx_le64(o, z->count);
        fx_le64(o, directory_size);
        fx_le64(o, directory_offset);
        fx_le32(o, 0x07064b50);
        fx_le32(o, 0);
        fx_le64(o, record);
        fx_le32(o, 1);
    }
    size_t comment_length = comment ? strlen(comment) : 0;
    fx_le32(o, 0x06054b50);
    fx_le16(o, 0);
    fx_le16(o, 0);
    fx_le16(o, z->zip64 ? 0xFFFF : z->count);
    fx_le16(o, z->zip64 ? 0xFFFF : z->count);
    fx_le32(o, z->zip64 ? 0xFFFFFFFFu : (uint32_t)directory_size);
    fx_le32(o, z->zip64 ? 0xFFFFFFFFu : (uint32_t)directory_offset);
    fx_le16(o, (uint16_t)comment_length);
    io_buffer_append(o, comment, comment_length);
    io_buffer_free(&z->central);
}

/* ---- pickles ---- */

static inline void pk_op(io_buffer *b, uint8_t op) { io_buffer_byte(b, op); }

/* Appends a string literal's bytes, NULs included. */
#define pk_lit(b, literal) io_buffer_append((b), (literal), sizeof(literal) - 1)

/* BINUNICODE */
static inline void pk_str(io_buffer *b, const char *s)
{
    pk_op(b, 'X');
    fx_le32(b, (uint32_t)strlen(s));
    io_buffer_append(b, s, strlen(s));
}

/* BININT, or LONG1 past 32 bits */
static inline void pk_int(io_buffer *b, int64_t v)
{
    if (v >= INT32_MIN && v <= INT32_MAX) {
        pk_op(b, 'J');
        fx_le32(b, (uint32_t)(int32_t)v);
    } else {
        pk_op(b, 0x8a);
        pk_op(b, 8);
        fx_le64(b, (uint64_t)v);
    }
}

/* GLOBAL "module\nname\n" */
static inline void pk_global(io_buffer *b, const char *module, const char *name)
{
    pk_op(b, 'c');
    io_buffer_append(b, module, strlen(module));
    pk_op(b, '\n');
    io_buffer_append(b, name, strlen(name));
    pk_op(b, '\n');
}

static inline void pk_int_tuple(io_buffer *b, const int64_t *values, int count)
{
    pk_op(b, '(');
    for (int i = 0; i < count; i++)
        pk_int(b, values[i]);
    pk_op(b, 't');
}

/* Pushes torch._utils._rebuild_tensor_v2(persistent_load(('storage', torch.CLS, key, 'cpu',
 * numel)), offset, shape, stride, False, OrderedDict()). */
static inline void pk_tensor(io_buffer *b, const char *storage_class, const char *key,
                             int64_t numel, int64_t offset, int ndim, const int64_t *shape,
                             const int64_t *stride)
{
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    pk_op(b, '(');
    pk_op(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", storage_class);
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, numel);
    pk_op(b, 't');
    pk_op(b, 'Q');
    pk_int(b, offset);
    pk_int_tuple(b, shape, ndim);
    pk_int_tuple(b, stride, ndim);
    pk_op(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    pk_op(b, ')');
    pk_op(b, 'R');
    pk_op(b, 't');
    pk_op(b, 'R');
}

/* ---- memory ---- */

/* Caps this process's address space at its current size plus `extra` bytes, so that a parser
 * that tries a large allocation on hostile input fails with DC_ENOMEM, which the hostile tests
 * refuse. Returns 0 on success. */
static inline int fx_limit_memory(size_t extra)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f)
        return -1;
    int read = fscanf(f, "%lu", &pages);
    fclose(f);
    if (read != 1)
        return -1;
    struct rlimit limit;
    getrlimit(RLIMIT_AS, &limit);
    limit.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra;
    return setrlimit(RLIMIT_AS, &limit);
}

static inline void fx_unlimit_memory(void)
{
    struct rlimit limit;
    getrlimit(RLIMIT_AS, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_AS, &limit);
}

/* ---- files ---- */

static inline int fx_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t written = fwrite(data, 1, size, f);
    return fclose(f) == 0 && written == size ? 0 : -1;
}

#endif
