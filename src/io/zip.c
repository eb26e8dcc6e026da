#define ZLIB_CONST
#include "zip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/error.h"
#include "bytes.h"
#include "limits.h"

enum {
    LOCAL_HEADER_SIZE = 30,
    CENTRAL_HEADER_SIZE = 46,
    END_RECORD_SIZE = 22,
    ZIP64_LOCATOR_SIZE = 20,
    ZIP64_END_RECORD_SIZE = 56,
    MAX_COMMENT = 0xFFFF,
    DATA_ALIGNMENT = 64,          /* PyTorch aligns tensor data for mmap */
    PADDING_FIELD_ID = 0x4246,    /* "FB", PyTorch's padding extra field */
    ZIP64_FIELD_ID = 0x0001,
};

#define LOCAL_SIGNATURE 0x04034b50u
#define CENTRAL_SIGNATURE 0x02014b50u
#define END_SIGNATURE 0x06054b50u
#define ZIP64_END_SIGNATURE 0x06064b50u
#define ZIP64_LOCATOR_SIGNATURE 0x07064b50u
#define MARKER32 0xFFFFFFFFu
#define MARKER16 0xFFFFu
/* Deflate cannot compress more than about 1032:1; a larger declared size is a lie. */
#define MAX_DEFLATE_RATIO 1032u

int io_zip_is_zip(const uint8_t *data, size_t size)
{
    return size >= 4 && io_le32(data) == LOCAL_SIGNATURE;
}

static int zip_error(const io_zip *zip, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: %s", zip->label, what);
}

/* The end of central directory record: the last signature within the comment range. */
static int find_end_record(const io_zip *zip, size_t *position)
{
    if (zip->size < END_RECORD_SIZE)
        return zip_error(zip, "not a zip archive (too short)");
    size_t last = zip->size - END_RECORD_SIZE;
    size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
    for (size_t p = last + 1; p-- > first;) {
        if (io_le32(zip->data + p) == END_SIGNATURE &&
            p + END_RECORD_SIZE + io_le16(zip->data + p + 20) <= zip->size) {
            *position = p;
            return DC_OK;
        }
    }
    return zip_error(zip, "not a zip archive (no end of central directory)");
}

typedef struct directory_location {
    uint64_t count, offset, size;
} directory_location;

static int read_directory_location(const io_zip *zip, directory_location *dir)
{
    size_t end = 0;
    DCI_TRY(find_end_record(zip, &end));
    const uint8_t *e = zip->data + end;
    uint16_t disk = io_le16(e + 4), directory_disk = io_le16(e + 6);
    uint16_t disk_entries = io_le16(e + 8);
    dir->count = io_le16(e + 10);
    dir->size = io_le32(e + 12);
    dir->offset = io_le32(e + 16);
    int needs_zip64 = dir->count == MARKER16 || dir->size == MARKER32 ||
                      dir->offset == MARKER32 || disk == MARKER16;
    if (end >= ZIP64_LOCATOR_SIZE &&
        io_le32(zip->data + end - ZIP64_LOCATOR_SIZE) == ZIP64_LOCATOR_SIGNATURE) {
        uint64_t record = io_le64(zip->data + end - ZIP64_LOCATOR_SIZE + 8);
        if (record > end - ZIP64_LOCATOR_SIZE ||
            end - ZIP64_LOCATOR_SIZE - record < ZIP64_END_RECORD_SIZE)
            return zip_error(zip, "ZIP64 end record out of range");
        const uint8_t *z = zip->data + record;
        if (io_le32(z) != ZIP64_END_SIGNATURE)
            return zip_error(zip, "bad ZIP64 end record signature");
        if (io_le32(z + 16) != 0 || io_le32(z + 20) != 0 ||
            io_le64(z + 24) != io_le64(z + 32))
            return zip_error(zip, "multi-disk archives are not supported");
        dir->count = io_le64(z + 32);
        dir->size = io_le64(z + 40);
        dir->offset = io_le64(z + 48);
    } else if (needs_zip64) {
        return zip_error(zip, "ZIP64 end record missing");
    } else if (disk != 0 || directory_disk != 0 || disk_entries != dir->count) {
        return zip_error(zip, "multi-disk archives are not supported");
    }
    if (dir->offset > zip->size || dir->size > zip->size - dir->offset)
        return zip_error(zip, "central directory out of range");
    if (dir->count > IO_MAX_ZIP_ENTRIES)
        return dci_err(DC_EFORMAT, "%s: %llu zip entries (limit %u)", zip->label,
                       (unsigned long long)dir->count, IO_MAX_ZIP_ENTRIES);
    if (dir->count > dir->size / CENTRAL_HEADER_SIZE)
        return zip_error(zip, "central directory too small for its entry count");
    return DC_OK;
}

/* Replaces 32-bit marker values by those of the ZIP64 extra field, in its fixed order. */
static int apply_zip64_extra(const io_zip *zip, const uint8_t *extra, size_t length,
                             io_zip_entry *entry)
{
    int wants_size = entry->size == MARKER32, wants_compressed = entry->compressed_size == MARKER32,
        wants_offset = entry->local_offset == MARKER32;
    size_t p = 0;
    while (length - p >= 4) {
        uint16_t id = io_le16(extra + p), field_length = io_le16(extra + p + 2);
        p += 4;
        if (field_length > length - p)
            return zip_error(zip, "extra field out of range");
        if (id == ZIP64_FIELD_ID) {
            const uint8_t *f = extra + p;
            size_t need = 8u * (size_t)(wants_size + wants_compressed + wants_offset);
            if (field_length < need)
                return zip_error(zip, "ZIP64 extra field too short");
            if (wants_size) {
                entry->size = io_le64(f);
                f += 8;
            }
            if (wants_compressed) {
                entry->compressed_size = io_le64(f);
                f += 8;
            }
            if (wants_offset)
                entry->local_offset = io_le64(f);
            return DC_OK;
        }
        p += field_length;
    }
    if (wants_size || wants_compressed || wants_offset)
        return zip_error(zip, "ZIP64 extra field missing");
    return DC_OK;
}

static int read_central_entry(const io_zip *zip, const uint8_t **cursor, const uint8_t *end,
                              io_zip_entry *entry)
{
    const uint8_t *h = *cursor;
    if ((size_t)(end - h) < CENTRAL_HEADER_SIZE || io_le32(h) != CENTRAL_SIGNATURE)
        return zip_error(zip, "bad central directory entry");
    size_t name_length = io_le16(h + 28), extra_length = io_le16(h + 30),
           comment_length = io_le16(h + 32);
    if (name_length + extra_length + comment_length > (size_t)(end - h) - CENTRAL_HEADER_SIZE)
        return zip_error(zip, "central directory entry out of range");
    if (io_le16(h + 8) & 1)
        return zip_error(zip, "encrypted entries are not supported");
    entry->method = io_le16(h + 10);
    entry->crc32 = io_le32(h + 16);
    entry->compressed_size = io_le32(h + 20);
    entry->size = io_le32(h + 24);
    entry->local_offset = io_le32(h + 42);
    const uint8_t *name = h + CENTRAL_HEADER_SIZE;
    if (name_length == 0 || name_length > IO_MAX_NAME_LENGTH || memchr(name, 0, name_length))
        return zip_error(zip, "bad entry name");
    char *copy = malloc(name_length + 1);
    if (!copy)
        return dci_err(DC_ENOMEM, "%s: out of memory", zip->label);
    memcpy(copy, name, name_length);
    copy[name_length] = '\0';
    entry->name = copy;
    entry->name_length = name_length;
    DCI_TRY(apply_zip64_extra(zip, name + name_length, extra_length, entry));
    *cursor = name + name_length + extra_length + comment_length;
    return DC_OK;
}

static int compare_entry_names(const void *a, const void *b)
{
    const io_zip_entry *x = *(io_zip_entry *const *)a, *y = *(io_zip_entry *const *)b;
    return strcmp(x->name, y->name);
}

int io_zip_open(io_zip *zip, const uint8_t *data, size_t size, const char *label)
{
    memset(zip, 0, sizeof *zip);
    zip->data = data;
    zip->size = size;
    zip->label = label ? label : "zip";
    directory_location dir;
    DCI_TRY(read_directory_location(zip, &dir));
    if (dir.count == 0)
        return zip_error(zip, "empty zip archive");
    zip->entries = calloc((size_t)dir.count, sizeof *zip->entries);
    zip->by_name = malloc((size_t)dir.count * sizeof *zip->by_name);
    if (!zip->entries || !zip->by_name) {
        io_zip_close(zip);
        return dci_err(DC_ENOMEM, "%s: out of memory", zip->label);
    }
    const uint8_t *cursor = data + dir.offset, *end = cursor + dir.size;
    for (size_t i = 0; i < dir.count; i++) {
        zip->count = i + 1;  /* so that close frees the names read so far */
        int status = read_central_entry(zip, &cursor, end, &zip->entries[i]);
        if (status != DC_OK) {
            io_zip_close(zip);
            return status;
        }
        zip->by_name[i] = &zip->entries[i];
    }
    qsort(zip->by_name, zip->count, sizeof *zip->by_name, compare_entry_names);
    for (size_t i = 1; i < zip->count; i++) {
        if (strcmp(zip->by_name[i - 1]->name, zip->by_name[i]->name) == 0) {
            int status = dci_err(DC_EFORMAT, "%s: duplicate zip entry %s", zip->label,
                                 zip->by_name[i]->name);
            io_zip_close(zip);
            return status;
        }
    }
    return DC_OK;
}

void io_zip_close(io_zip *zip)
{
    if (!zip)
        return;
    for (size_t i = 0; zip->entries && i < zip->count; i++) {
        free((char *)zip->entries[i].name);
        free(zip->entries[i].inflated);
    }
    free(zip->entries);
    free(zip->by_name);
    memset(zip, 0, sizeof *zip);
}

io_zip_entry *io_zip_find(const io_zip *zip, const char *name)
{
    size_t low = 0, high = zip->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int c = strcmp(zip->by_name[mid]->name, name);
        if (c == 0)
            return zip->by_name[mid];
        if (c < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

static uint32_t crc32_of(const uint8_t *data, size_t size)
{
    return (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), data, size);
}

/* Raw deflate into a buffer of exactly entry->size bytes. */
static int inflate_entry(const io_zip *zip, io_zip_entry *entry, const uint8_t *input)
{
    if (entry->size > IO_MAX_TENSOR_BYTES ||
        entry->size > entry->compressed_size * MAX_DEFLATE_RATIO + 64)
        return dci_err(DC_EFORMAT, "%s: %s: implausible uncompressed size %llu", zip->label,
                       entry->name, (unsigned long long)entry->size);
    /* One spare byte: zlib needs room to finish an empty stream, and a stream longer than
     * declared shows by filling it. */
    uint64_t capacity = entry->size + 1;
    uint8_t *output = malloc((size_t)capacity);
    if (!output)
        return dci_err(DC_ENOMEM, "%s: %s: out of memory", zip->label, entry->name);
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
        free(output);
        return dci_err(DC_ENOMEM, "%s: cannot start zlib", zip->label);
    }
    uint64_t input_left = entry->compressed_size, output_left = capacity;
    uint8_t *out = output;
    int rc;
    do {
        /* avail_in and avail_out are 32-bit: feed large entries in pieces. */
        if (stream.avail_in == 0 && input_left) {
            uInt piece = input_left > UINT_MAX ? UINT_MAX : (uInt)input_left;
            stream.next_in = input;
            stream.avail_in = piece;
            input += piece;
            input_left -= piece;
        }
        if (stream.avail_out == 0 && output_left) {
            uInt piece = output_left > UINT_MAX ? UINT_MAX : (uInt)output_left;
            stream.next_out = out;
            stream.avail_out = piece;
            out += piece;
            output_left -= piece;
        }
        rc = inflate(&stream, Z_NO_FLUSH);
    } while (rc == Z_OK);
    uint64_t produced = capacity - output_left - stream.avail_out;
    inflateEnd(&stream);
    if (rc != Z_STREAM_END || produced != entry->size) {
        free(output);
        return dci_err(DC_EFORMAT, "%s: %s: corrupt deflate data", zip->label, entry->name);
    }
    entry->inflated = output;
    return DC_OK;
}

int io_zip_read(io_zip *zip, io_zip_entry *entry, const uint8_t **data, size_t *size)
{
    if (entry->local_offset > zip->size || zip->size - entry->local_offset < LOCAL_HEADER_SIZE)
        return dci_err(DC_EFORMAT, "%s: %s: local header out of range", zip->label,
                       entry->name);
    const uint8_t *local = zip->data + entry->local_offset;
    if (io_le32(local) != LOCAL_SIGNATURE)
        return dci_err(DC_EFORMAT, "%s: %s: bad local header", zip->label, entry->name);
    /* The local header's own lengths: PyTorch pads its extra field to align the data. */
    uint64_t start = entry->local_offset + LOCAL_HEADER_SIZE + io_le16(local + 26) +
                     io_le16(local + 28);
    if (start > zip->size || entry->compressed_size > zip->size - start)
        return dci_err(DC_EFORMAT, "%s: %s: data out of range", zip->label, entry->name);
    const uint8_t *stored = zip->data + start;
    if (entry->method == 0) {
        if (entry->compressed_size != entry->size)
            return dci_err(DC_EFORMAT, "%s: %s: stored sizes differ", zip->label, entry->name);
    } else if (entry->method == 8) {
        if (!entry->inflated)
            DCI_TRY(inflate_entry(zip, entry, stored));
        stored = entry->inflated;
    } else {
        return dci_err(DC_EFORMAT, "%s: %s: unsupported compression method %u", zip->label,
                       entry->name, entry->method);
    }
    if (!entry->verified) {
        if (crc32_of(stored, (size_t)entry->size) != entry->crc32)
            return dci_err(DC_EFORMAT, "%s: %s: CRC-32 mismatch", zip->label, entry->name);
        entry->verified = 1;
    }
    *data = stored;
    *size = (size_t)entry->size;
    return DC_OK;
}

int io_zip_read_named(io_zip *zip, const char *name, const uint8_t **data, size_t *size)
{
    io_zip_entry *entry = io_zip_find(zip, name);
    if (!entry)
        return dci_err(DC_EFORMAT, "%s: missing %s", zip->label, name);
    return io_zip_read(zip, entry, data, size);
}

/* ---- writer ---- */

int io_zip_writer_begin(io_zip_writer *writer, const char *path)
{
    memset(writer, 0, sizeof *writer);
    return io_atomic_begin(&writer->file, path);
}

static int write_bytes(io_zip_writer *writer, const void *data, size_t size)
{
    DCI_TRY(io_atomic_write(&writer->file, data, size));
    writer->offset += size;
    return DC_OK;
}

static int is_large(uint64_t value) { return value >= MARKER32; }

int io_zip_writer_add(io_zip_writer *writer, const char *name, const void *data, size_t size)
{
    size_t name_length = strlen(name);
    if (name_length == 0 || name_length > IO_MAX_NAME_LENGTH)
        return dci_err(DC_EINVAL, "%s: bad zip entry name", writer->file.final_path);
    if (writer->count == writer->capacity) {
        size_t capacity = writer->capacity ? 2 * writer->capacity : 16;
        void *grown = realloc(writer->written, capacity * sizeof *writer->written);
        if (!grown)
            return dci_err(DC_ENOMEM, "%s: out of memory", writer->file.final_path);
        writer->written = grown;
        writer->capacity = capacity;
    }
    struct io_zip_written *w = &writer->written[writer->count];
    w->name = malloc(name_length + 1);
    if (!w->name)
        return dci_err(DC_ENOMEM, "%s: out of memory", writer->file.final_path);
    memcpy(w->name, name, name_length + 1);
    writer->count++;
    w->local_offset = writer->offset;
    w->size = size;
    w->crc32 = crc32_of(data, size);

    /* The local ZIP64 field holds both sizes whenever either needs it. */
    int zip64 = writer->force_zip64 || is_large(size) || is_large(w->local_offset);
    size_t zip64_length = zip64 ? 4 + 16 : 0;
    uint64_t data_start = writer->offset + LOCAL_HEADER_SIZE + name_length + zip64_length + 4;
    size_t padding = (size_t)((DATA_ALIGNMENT - data_start % DATA_ALIGNMENT) % DATA_ALIGNMENT);
    size_t extra_length = zip64_length + 4 + padding;

    uint8_t header[LOCAL_HEADER_SIZE + 4 + 16 + 4 + DATA_ALIGNMENT];
    uint8_t *h = header;
    io_put_le32(h, LOCAL_SIGNATURE);
    io_put_le16(h + 4, zip64 ? 45 : 20);  /* version needed */
    io_put_le16(h + 6, 0);                /* flags */
    io_put_le16(h + 8, 0);                /* stored */
    io_put_le16(h + 10, 0);               /* time */
    io_put_le16(h + 12, 0x21);            /* date: 1980-01-01 */
    io_put_le32(h + 14, w->crc32);
    io_put_le32(h + 18, zip64 ? MARKER32 : (uint32_t)size);
    io_put_le32(h + 22, zip64 ? MARKER32 : (uint32_t)size);
    io_put_le16(h + 26, (uint16_t)name_length);
    io_put_le16(h + 28, (uint16_t)extra_length);
    DCI_TRY(write_bytes(writer, header, LOCAL_HEADER_SIZE));
    DCI_TRY(write_bytes(writer, name, name_length));
    h = header;
    if (zip64) {
        io_put_le16(h, ZIP64_FIELD_ID);
        io_put_le16(h + 2, 16);
        io_put_le64(h + 4, size);
        io_put_le64(h + 12, size);
        h += zip64_length;
    }
    io_put_le16(h, PADDING_FIELD_ID);
    io_put_le16(h + 2, (uint16_t)padding);
    memset(h + 4, 'Z', padding);
    DCI_TRY(write_bytes(writer, header, extra_length));
    return write_bytes(writer, data, size);
}

static int write_central_entry(io_zip_writer *writer, const struct io_zip_written *w)
{
    int large_size = writer->force_zip64 || is_large(w->size);
    int large_offset = writer->force_zip64 || is_large(w->local_offset);
    size_t extra_length = large_size || large_offset ? 4u + 16u * large_size + 8u * large_offset : 0;
    size_t name_length = strlen(w->name);
    uint8_t h[CENTRAL_HEADER_SIZE + 4 + 24];
    io_put_le32(h, CENTRAL_SIGNATURE);
    io_put_le16(h + 4, 45);  /* made by: version 4.5 */
    io_put_le16(h + 6, extra_length ? 45 : 20);
    io_put_le16(h + 8, 0);
    io_put_le16(h + 10, 0);
    io_put_le16(h + 12, 0);
    io_put_le16(h + 14, 0x21);
    io_put_le32(h + 16, w->crc32);
    io_put_le32(h + 20, large_size ? MARKER32 : (uint32_t)w->size);
    io_put_le32(h + 24, large_size ? MARKER32 : (uint32_t)w->size);
    io_put_le16(h + 28, (uint16_t)name_length);
    io_put_le16(h + 30, (uint16_t)extra_length);
    io_put_le16(h + 32, 0);  /* comment */
    io_put_le16(h + 34, 0);  /* disk */
    io_put_le16(h + 36, 0);  /* internal attributes */
    io_put_le32(h + 38, 0);  /* external attributes */
    io_put_le32(h + 42, large_offset ? MARKER32 : (uint32_t)w->local_offset);
    DCI_TRY(write_bytes(writer, h, CENTRAL_HEADER_SIZE));
    DCI_TRY(write_bytes(writer, w->name, name_length));
    if (!extra_length)
        return DC_OK;
    uint8_t *e = h;
    io_put_le16(e, ZIP64_FIELD_ID);
    io_put_le16(e + 2, (uint16_t)(extra_length - 4));
    e += 4;
    if (large_size) {
        io_put_le64(e, w->size);
        io_put_le64(e + 8, w->size);
        e += 16;
    }
    if (large_offset)
        io_put_le64(e, w->local_offset);
    return write_bytes(writer, h, extra_length);
}

int io_zip_writer_finish(io_zip_writer *writer)
{
    uint64_t directory_offset = writer->offset;
    for (size_t i = 0; i < writer->count; i++) {
        int status = write_central_entry(writer, &writer->written[i]);
        if (status != DC_OK) {
            io_zip_writer_abort(writer);
            return status;
        }
    }
    uint64_t directory_size = writer->offset - directory_offset;
    int zip64 = writer->force_zip64 || writer->count >= MARKER16 ||
                is_large(directory_offset) || is_large(directory_size);
    uint8_t tail[ZIP64_END_RECORD_SIZE + ZIP64_LOCATOR_SIZE + END_RECORD_SIZE];
    uint8_t *t = tail;
    if (zip64) {
        uint64_t record_offset = writer->offset;
        io_put_le32(t, ZIP64_END_SIGNATURE);
        io_put_le64(t + 4, ZIP64_END_RECORD_SIZE - 12);
        io_put_le16(t + 12, 45);
        io_put_le16(t + 14, 45);
        io_put_le32(t + 16, 0);
        io_put_le32(t + 20, 0);
        io_put_le64(t + 24, writer->count);
        io_put_le64(t + 32, writer->count);
        io_put_le64(t + 40, directory_size);
        io_put_le64(t + 48, directory_offset);
        t += ZIP64_END_RECORD_SIZE;
        io_put_le32(t, ZIP64_LOCATOR_SIGNATURE);
        io_put_le32(t + 4, 0);
        io_put_le64(t + 8, record_offset);
        io_put_le32(t + 16, 1);
        t += ZIP64_LOCATOR_SIZE;
    }
    uint16_t count16 = zip64 ? MARKER16 : (uint16_t)writer->count;
    io_put_le32(t, END_SIGNATURE);
    io_put_le16(t + 4, 0);
    io_put_le16(t + 6, 0);
    io_put_le16(t + 8, count16);
    io_put_le16(t + 10, count16);
    io_put_le32(t + 12, zip64 ? MARKER32 : (uint32_t)directory_size);
    io_put_le32(t + 16, zip64 ? MARKER32 : (uint32_t)directory_offset);
    io_put_le16(t + 20, 0);
    t += END_RECORD_SIZE;
    int status = write_bytes(writer, tail, (size_t)(t - tail));
    if (status == DC_OK)
        status = io_atomic_commit(&writer->file);
    io_zip_writer_abort(writer);
    return status;
}

void io_zip_writer_abort(io_zip_writer *writer)
{
    io_atomic_abort(&writer->file);
    for (size_t i = 0; i < writer->count; i++)
        free(writer->written[i].name);
    free(writer->written);
    memset(writer, 0, sizeof *writer);
}
