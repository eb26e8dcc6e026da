/* Whole-file reading and atomic replacement, shared by every reader and writer. */
#ifndef DC_SRC_IO_FILE_H
#define DC_SRC_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Whether `path` ends with `ext` (".safetensors"), in any case, as image names are taken. */
int io_has_extension(const char *path, const char *ext);

/* A read-only view of a whole file (memory-mapped; empty files have data == NULL). */
typedef struct io_mapped_file {
    const uint8_t *data;
    size_t size;
} io_mapped_file;

/* DC_EIO with "PATH: reason" when the file cannot be opened or mapped. */
int io_map_file(const char *path, io_mapped_file *out);
void io_unmap_file(io_mapped_file *file);

/* Writing that replaces `path` only when complete: data goes to a temporary file in the same
 * directory, which commit flushes, fsyncs and renames over `path`. */
typedef struct io_atomic_file {
    FILE *stream;
    char *final_path;
    char *temp_path;
} io_atomic_file;

int io_atomic_begin(io_atomic_file *file, const char *path);
/* Writes `size` bytes; DC_EIO on failure (the file stays open for io_atomic_abort). */
int io_atomic_write(io_atomic_file *file, const void *data, size_t size);
/* Flushes, fsyncs, renames, and syncs the directory. Aborts on failure. */
int io_atomic_commit(io_atomic_file *file);
/* Removes the temporary file. Safe after a failed commit and on a zeroed struct. */
void io_atomic_abort(io_atomic_file *file);

#endif
