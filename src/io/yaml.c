/* YAML documents as trees, over libyaml's event parser (which itself never expands aliases
 * and keeps its nesting on heap stacks, not recursion). */
#include "yaml.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../core/error.h"
#include "file.h"

typedef struct frame {
    io_yaml_node *node;
    char *pending_key;           /* mappings: the key read, its value not yet */
} frame;

typedef struct builder {
    const char *label;
    io_yaml_node *root;
    frame stack[IO_YAML_MAX_DEPTH + 1];
    int depth;                   /* frames in use */
    size_t nodes;
} builder;

static void free_node(io_yaml_node *n)
{
    for (size_t i = 0; i < n->count; i++)
        free_node(&n->children[i]);
    free(n->children);
    free(n->key);
    free(n->value);
}

void io_yaml_free(io_yaml_node *root)
{
    if (!root)
        return;
    free_node(root);
    free(root);
}

static int line_of(const yaml_event_t *e) { return (int)e->start_mark.line + 1; }

static int copy_scalar(const builder *b, const yaml_event_t *e, char **out)
{
    size_t n = e->data.scalar.length;
    if (n > IO_YAML_MAX_SCALAR)
        return dci_err(DC_EFORMAT, "%s: line %d: a scalar of %zu bytes (at most %u)", b->label,
                       line_of(e), n, IO_YAML_MAX_SCALAR);
    if (memchr(e->data.scalar.value, '\0', n))
        return dci_err(DC_EFORMAT, "%s: line %d: a NUL character in a scalar", b->label,
                       line_of(e));
    if (!(*out = malloc(n + 1)))
        return dci_err(DC_ENOMEM, "%s: out of memory", b->label);
    memcpy(*out, e->data.scalar.value, n);
    (*out)[n] = '\0';
    return DC_OK;
}

/* A new node in the current container (or the root); *out points at it. */
static int add_node(builder *b, const yaml_event_t *e, io_yaml_kind kind, io_yaml_node **out)
{
    if (++b->nodes > IO_YAML_MAX_NODES)
        return dci_err(DC_EFORMAT, "%s: line %d: more than %u nodes", b->label, line_of(e),
                       IO_YAML_MAX_NODES);
    io_yaml_node *n;
    char *key = NULL;
    if (b->depth == 0) {
        if (b->root)
            return dci_err(DC_EFORMAT, "%s: line %d: more than one document", b->label,
                           line_of(e));
        if (!(b->root = calloc(1, sizeof *b->root)))
            return dci_err(DC_ENOMEM, "%s: out of memory", b->label);
        n = b->root;
    } else {
        frame *top = &b->stack[b->depth - 1];
        io_yaml_node *parent = top->node;
        if (parent->kind == IO_YAML_MAPPING) {
            if (!top->pending_key) {
                if (kind != IO_YAML_SCALAR)
                    return dci_err(DC_EFORMAT, "%s: line %d: a mapping key must be a scalar",
                                   b->label, line_of(e));
                DCI_TRY(copy_scalar(b, e, &top->pending_key));
                for (size_t i = 0; i < parent->count; i++)
                    if (strcmp(parent->children[i].key, top->pending_key) == 0)
                        return dci_err(DC_EFORMAT, "%s: line %d: key '%s' appears twice",
                                       b->label, line_of(e), top->pending_key);
                *out = NULL;                   /* a key, not a node */
                return DC_OK;
            }
            key = top->pending_key;
            top->pending_key = NULL;
        }
        io_yaml_node *grown = realloc(parent->children, (parent->count + 1) * sizeof *grown);
        if (!grown) {
            free(key);
            return dci_err(DC_ENOMEM, "%s: out of memory", b->label);
        }
        parent->children = grown;
        n = &parent->children[parent->count++];
        memset(n, 0, sizeof *n);
    }
    n->kind = kind;
    n->key = key;
    n->line = line_of(e);
    *out = n;
    return DC_OK;
}

static int push(builder *b, const yaml_event_t *e, io_yaml_kind kind)
{
    if (b->depth >= IO_YAML_MAX_DEPTH)
        return dci_err(DC_EFORMAT, "%s: line %d: nested deeper than %d levels", b->label,
                       line_of(e), IO_YAML_MAX_DEPTH);
    io_yaml_node *n;
    DCI_TRY(add_node(b, e, kind, &n));
    if (!n)
        return dci_err(DC_EFORMAT, "%s: line %d: a mapping key must be a scalar", b->label,
                       line_of(e));
    b->stack[b->depth++] = (frame){.node = n};
    return DC_OK;
}

static int has_tag(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        return e->data.scalar.tag != NULL;
    case YAML_SEQUENCE_START_EVENT:
        return e->data.sequence_start.tag != NULL;
    case YAML_MAPPING_START_EVENT:
        return e->data.mapping_start.tag != NULL;
    default:
        return 0;
    }
}

static int on_event(builder *b, const yaml_event_t *e, int *done)
{
    if (has_tag(e))
        return dci_err(DC_EFORMAT, "%s: line %d: YAML tags (!...) are not accepted", b->label,
                       line_of(e));
    switch (e->type) {
    case YAML_ALIAS_EVENT:
        return dci_err(DC_EFORMAT, "%s: line %d: YAML aliases (*name) are not accepted",
                       b->label, line_of(e));
    case YAML_SCALAR_EVENT: {
        io_yaml_node *n;
        DCI_TRY(add_node(b, e, IO_YAML_SCALAR, &n));
        if (n) {
            DCI_TRY(copy_scalar(b, e, &n->value));
            n->quoted = e->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                        e->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                        e->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                        e->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        }
        return DC_OK;
    }
    case YAML_SEQUENCE_START_EVENT:
        return push(b, e, IO_YAML_SEQUENCE);
    case YAML_MAPPING_START_EVENT:
        return push(b, e, IO_YAML_MAPPING);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0) {
            b->depth--;
            free(b->stack[b->depth].pending_key);     /* NULL after a well-formed mapping */
            b->stack[b->depth].pending_key = NULL;
        }
        return DC_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return DC_OK;
    default:                     /* stream and document starts and ends */
        return DC_OK;
    }
}

int io_yaml_parse(const void *data, size_t size, const char *label, io_yaml_node **out)
{
    if (!out || (!data && size))
        return dci_err(DC_EINVAL, "yaml: NULL argument");
    *out = NULL;
    if (!label)
        label = "YAML";
    if (size > IO_YAML_MAX_BYTES)
        return dci_err(DC_EFORMAT, "%s: %zu bytes; a config file is at most %u", label, size,
                       IO_YAML_MAX_BYTES);
    if (memchr(data ? data : "", '\0', size))
        return dci_err(DC_EFORMAT, "%s: a NUL byte: not a YAML text file", label);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    yaml_parser_set_input_string(&parser, data ? data : (const unsigned char *)"", size);
    builder b = {.label = label};
    int status = DC_OK, done = 0;
    while (status == DC_OK && !done) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            status = dci_err(DC_EFORMAT, "%s: line %d, column %d: malformed YAML: %s%s%s", label,
                             (int)parser.problem_mark.line + 1,
                             (int)parser.problem_mark.column + 1,
                             parser.problem ? parser.problem : "parse error",
                             parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        status = on_event(&b, &event, &done);
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    for (int i = 0; i < b.depth; i++)
        free(b.stack[i].pending_key);
    if (status == DC_OK && !b.root) {
        if (!(b.root = calloc(1, sizeof *b.root)))
            status = dci_err(DC_ENOMEM, "%s: out of memory", label);
        else
            b.root->kind = IO_YAML_MAPPING;
    }
    if (status != DC_OK) {
        io_yaml_free(b.root);
        return status;
    }
    *out = b.root;
    return DC_OK;
}

int io_yaml_read_file(const char *path, io_yaml_node **out)
{
    if (!path || !out)
        return dci_err(DC_EINVAL, "yaml: NULL argument");
    io_mapped_file f;
    DCI_TRY(io_map_file(path, &f));
    int status = io_yaml_parse(f.data, f.size, path, out);
    io_unmap_file(&f);
    return status;
}

const io_yaml_node *io_yaml_get(const io_yaml_node *mapping, const char *key)
{
    if (!mapping || mapping->kind != IO_YAML_MAPPING)
        return NULL;
    for (size_t i = 0; i < mapping->count; i++)
        if (strcmp(mapping->children[i].key, key) == 0)
            return &mapping->children[i];
    return NULL;
}
