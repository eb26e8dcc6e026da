/* A small YAML document reader over libyaml's event parser: the subset configuration files
 * use (mappings, sequences in block and flow style, scalars, comments) as a tree. The input
 * is hostile: its size, nesting depth, node count and scalar lengths are bounded, aliases
 * (the "billion laughs" expansion), tags, duplicate keys, non-scalar keys and a second
 * document are refused with DC_EFORMAT naming the line. */
#ifndef DC_SRC_IO_YAML_H
#define DC_SRC_IO_YAML_H

#include <stddef.h>

#define IO_YAML_MAX_BYTES   (1u << 20)   /* a config file is a few hundred bytes */
#define IO_YAML_MAX_DEPTH   16
#define IO_YAML_MAX_NODES   4096
#define IO_YAML_MAX_SCALAR  1024

typedef enum io_yaml_kind { IO_YAML_SCALAR, IO_YAML_SEQUENCE, IO_YAML_MAPPING } io_yaml_kind;

typedef struct io_yaml_node io_yaml_node;
struct io_yaml_node {
    io_yaml_kind kind;
    char *key;                   /* in a mapping: the key; else NULL */
    char *value;                 /* scalars: NUL-terminated text (no NUL inside) */
    int quoted;                  /* scalars written in quotes: strings, never numbers */
    int line;                    /* 1-based, for messages */
    io_yaml_node *children;      /* sequence items / mapping values, in file order */
    size_t count;
};

/* Parses `size` bytes; `label` names the file in messages. An empty document is an empty
 * mapping. Free the tree with io_yaml_free. */
int io_yaml_parse(const void *data, size_t size, const char *label, io_yaml_node **out);
int io_yaml_read_file(const char *path, io_yaml_node **out);
void io_yaml_free(io_yaml_node *root);             /* NULL is fine */

/* The value of `key` in a mapping, or NULL. */
const io_yaml_node *io_yaml_get(const io_yaml_node *mapping, const char *key);

#endif
