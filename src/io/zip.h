/* Zip archives: a reader over a memory buffer (stored and deflated entries, ZIP64) and a
 * writer of stored entries with aligned data, as PyTorch writes them. Pure C over zlib. */
#ifndef DC_SRC_IO_ZIP_H
#define DC_SRC_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "file.h"

typedef struct io_zip_entry {
    const char *name;        /* NUL-terminated copy */
    size_t name_length;
    uint64_t local_offset;   /* of the local header */
    uint64_t compressed_size;
    uint64_t size;
    uint32_t crc32;
    uint16_t method;         /* 0 stored, 8 deflated */
    uint8_t *inflated;       /* decompressed data, kept once read */
    int verified;            /* CRC checked */
} io_zip_entry;

typedef struct io_zip {
    const uint8_t *data;
    size_t size;
    const char *label;       /* names the file in errors (not owned) */
    size_t count;
    io_zip_entry *entries;   /* central directory order */
    io_zip_entry **by_name;  /* sorted by name, for lookup */
} io_zip;

/* 1 if `data` starts like a zip archive (a local file header). */
int io_zip_is_zip(const uint8_t *data, size_t size);

/* Reads the central directory. The buffer must outlive the reader. */
int io_zip_open(io_zip *zip, const uint8_t *data, size_t size, const char *label);
void io_zip_close(io_zip *zip);

/* The entry called `name`, or NULL. */
io_zip_entry *io_zip_find(const io_zip *zip, const char *name);

/* The contents of an entry (checked against its CRC-32). Stored entries point into the
 * buffer; deflated ones are inflated once and owned by the reader. */
int io_zip_read(io_zip *zip, io_zip_entry *entry, const uint8_t **data, size_t *size);
/* io_zip_read by name; DC_EFORMAT "LABEL: missing NAME" when absent. */
int io_zip_read_named(io_zip *zip, const char *name, const uint8_t **data, size_t *size);

/* A writer of stored entries whose data starts on a 64-byte boundary (PyTorch mmaps them),
 * with ZIP64 records where sizes or offsets need them. */
typedef struct io_zip_writer {
    io_atomic_file file;
    uint64_t offset;
    size_t count, capacity;
    struct io_zip_written {
        char *name;
        uint64_t local_offset;
        uint64_t size;
        uint32_t crc32;
    } *written;
    int force_zip64;         /* ZIP64 records for every entry (tests; else only past 4 GiB) */
} io_zip_writer;

int io_zip_writer_begin(io_zip_writer *writer, const char *path);
int io_zip_writer_add(io_zip_writer *writer, const char *name, const void *data, size_t size);
/* Writes the central directory and replaces the file atomically. */
int io_zip_writer_finish(io_zip_writer *writer);
/* Drops the partial file. Safe after a failed call and after finish. */
void io_zip_writer_abort(io_zip_writer *writer);

#endif
