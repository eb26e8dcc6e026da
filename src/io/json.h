/* A small, strict JSON reader (RFC 8259) that pulls values one at a time, as the safetensors
 * header needs, without building a tree; and JSON string output. */
#ifndef DC_SRC_IO_JSON_H
#define DC_SRC_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

typedef struct io_json {
    const uint8_t *p, *end;
    const uint8_t *start;
    const char *label;        /* names the file in errors (not owned) */
} io_json;

void io_json_init(io_json *j, const uint8_t *text, size_t length, const char *label);

/* '{' then, per call, the next member's key (malloc'd, caller frees; *key is NULL and *done
 * is 1 at '}'). `count` starts at 0 and counts the members read; the caller reads each
 * member's value before the next call. Arrays likewise, without keys. */
int io_json_object_begin(io_json *j);
int io_json_object_next(io_json *j, size_t *count, char **key, int *done);
int io_json_array_begin(io_json *j);
int io_json_array_next(io_json *j, size_t *count, int *done);

/* A string value (malloc'd, NUL-terminated; strings holding U+0000 are refused). */
int io_json_string(io_json *j, char **value);
/* A non-negative integer value. */
int io_json_uint(io_json *j, uint64_t *value);
/* Checks and skips any value. */
int io_json_skip(io_json *j);
/* Only whitespace may follow. */
int io_json_finish(io_json *j);

/* 1 when s[0..n) is well-formed UTF-8. */
int io_utf8_valid(const uint8_t *s, size_t n);
/* Appends s as a quoted JSON string. */
void io_json_write_string(io_buffer *b, const char *s);

#endif
