/* A growable byte buffer for building file contents (pickles, JSON headers). A failed
 * allocation is remembered and reported once, by io_buffer_status. */
#ifndef DC_SRC_IO_BUFFER_H
#define DC_SRC_IO_BUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct io_buffer {
    uint8_t *data;
    size_t size, capacity;
    int failed;
} io_buffer;

void io_buffer_append(io_buffer *b, const void *data, size_t size);
void io_buffer_byte(io_buffer *b, uint8_t byte);
void io_buffer_printf(io_buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* DC_OK, or DC_ENOMEM naming `label` when an append failed. */
int io_buffer_status(const io_buffer *b, const char *label);
void io_buffer_free(io_buffer *b);

#endif
