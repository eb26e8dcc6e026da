#include "buffer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

static int reserve(io_buffer *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (extra <= b->capacity - b->size)
        return 1;
    size_t capacity = b->capacity ? b->capacity : 256;
    while (capacity - b->size < extra) {
        if (capacity > SIZE_MAX / 2) {
            b->failed = 1;
            return 0;
        }
        capacity *= 2;
    }
    uint8_t *grown = realloc(b->data, capacity);
    if (!grown) {
        b->failed = 1;
        return 0;
    }
    b->data = grown;
    b->capacity = capacity;
    return 1;
}

void io_buffer_append(io_buffer *b, const void *data, size_t size)
{
    if (size && reserve(b, size)) {
        memcpy(b->data + b->size, data, size);
        b->size += size;
    }
}

void io_buffer_byte(io_buffer *b, uint8_t byte) { io_buffer_append(b, &byte, 1); }

void io_buffer_printf(io_buffer *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n + 1)) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->size, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->size += (size_t)n;
}

int io_buffer_status(const io_buffer *b, const char *label)
{
    return b->failed ? dci_err(DC_ENOMEM, "%s: out of memory", label) : DC_OK;
}

void io_buffer_free(io_buffer *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
