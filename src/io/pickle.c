#include "pickle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "bytes.h"
#include "limits.h"

enum { MAX_PROTOCOL = 5, MAX_GLOBAL_NAME = 512, MAX_TEXT_NUMBER = 64 };

typedef struct unpickler {
    io_pickle *pk;
    const uint8_t *data;
    size_t size, pos;
    size_t opcode_pos;            /* of the opcode being run, for messages */
    io_pk_obj **stack;
    size_t depth, stack_capacity;
    size_t *marks;                /* stack depths at each MARK */
    size_t mark_count, mark_capacity;
    io_pk_obj **memo;
    size_t memo_capacity, memo_count;
} unpickler;

static int fail(const unpickler *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const unpickler *u, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dci_err(DC_EFORMAT, "%s: pickle: %s (at byte %zu)", u->pk->label, what,
                   u->opcode_pos);
}

static int out_of_memory(const unpickler *u)
{
    return dci_err(DC_ENOMEM, "%s: out of memory reading a pickle", u->pk->label);
}

/* Grows *array (of `element` bytes each) to hold at least `needed` elements, at most `limit`. */
static int grow(void **array, size_t *capacity, size_t needed, size_t element, size_t limit)
{
    if (needed <= *capacity)
        return 1;
    if (needed > limit)
        return 0;
    size_t next = *capacity ? *capacity : 8;
    while (next < needed)
        next = next > limit / 2 ? limit : next * 2;
    void *grown = realloc(*array, next * element);
    if (!grown)
        return 0;
    *array = grown;
    *capacity = next;
    return 1;
}

static const char *kind_name(io_pk_kind kind)
{
    static const char *const names[] = {"None", "bool", "int", "int", "float", "str", "bytes",
                                        "tuple", "list", "dict", "global", "storage", "tensor",
                                        "object"};
    return (size_t)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* ---- objects ---- */

static int new_object(unpickler *u, io_pk_kind kind, io_pk_obj **out)
{
    io_pickle *pk = u->pk;
    if (pk->object_count >= IO_MAX_PICKLE_OBJECTS)
        return fail(u, "more than %u objects", IO_MAX_PICKLE_OBJECTS);
    if (!grow((void **)&pk->objects, &pk->object_capacity, pk->object_count + 1,
              sizeof *pk->objects, IO_MAX_PICKLE_OBJECTS))
        return out_of_memory(u);
    io_pk_obj *o = calloc(1, sizeof *o);
    if (!o)
        return out_of_memory(u);
    o->kind = kind;
    pk->objects[pk->object_count++] = o;
    *out = o;
    return DC_OK;
}

static int new_text(unpickler *u, io_pk_kind kind, const void *bytes, size_t length,
                    io_pk_obj **out)
{
    io_pk_obj *o = NULL;
    DCI_TRY(new_object(u, kind, &o));
    o->u.text.data = malloc(length + 1);
    if (!o->u.text.data)
        return out_of_memory(u);
    if (length)
        memcpy(o->u.text.data, bytes, length);
    o->u.text.data[length] = '\0';
    o->u.text.length = length;
    *out = o;
    return DC_OK;
}

static int new_integer(unpickler *u, io_pk_kind kind, int64_t value, io_pk_obj **out)
{
    DCI_TRY(new_object(u, kind, out));
    (*out)->u.integer = value;
    return DC_OK;
}

/* Records that `parent` now contains `child`. */
static int note_child(unpickler *u, io_pk_obj *parent, const io_pk_obj *child)
{
    if (child->depth + 1 > parent->depth) {
        parent->depth = child->depth + 1;
        if (parent->depth > IO_MAX_PICKLE_DEPTH)
            return fail(u, "containers nested deeper than %d", IO_MAX_PICKLE_DEPTH);
    }
    return DC_OK;
}

static int seq_append(unpickler *u, io_pk_obj *seq, io_pk_obj *item)
{
    if (!grow((void **)&seq->u.seq.items, &seq->u.seq.capacity, seq->u.seq.count + 1,
              sizeof *seq->u.seq.items, IO_MAX_PICKLE_OBJECTS))
        return out_of_memory(u);
    seq->u.seq.items[seq->u.seq.count++] = item;
    return note_child(u, seq, item);
}

static int dict_set(unpickler *u, io_pk_obj *dict, io_pk_obj *key, io_pk_obj *value)
{
    if (!grow((void **)&dict->u.dict.items, &dict->u.dict.capacity, dict->u.dict.count + 1,
              sizeof *dict->u.dict.items, IO_MAX_PICKLE_OBJECTS))
        return out_of_memory(u);
    dict->u.dict.items[dict->u.dict.count].key = key;
    dict->u.dict.items[dict->u.dict.count].value = value;
    dict->u.dict.count++;
    DCI_TRY(note_child(u, dict, key));
    return note_child(u, dict, value);
}

static int new_sequence(unpickler *u, io_pk_kind kind, io_pk_obj *const *items, size_t count,
                        io_pk_obj **out)
{
    io_pk_obj *o = NULL;
    DCI_TRY(new_object(u, kind, &o));
    for (size_t i = 0; i < count; i++)
        DCI_TRY(seq_append(u, o, items[i]));
    *out = o;
    return DC_OK;
}

/* ---- stack, marks, memo ---- */

static int push(unpickler *u, io_pk_obj *o)
{
    if (!grow((void **)&u->stack, &u->stack_capacity, u->depth + 1, sizeof *u->stack,
              IO_MAX_PICKLE_OBJECTS))
        return u->depth + 1 > IO_MAX_PICKLE_OBJECTS ? fail(u, "stack too deep")
                                                     : out_of_memory(u);
    u->stack[u->depth++] = o;
    return DC_OK;
}

/* The stack from `index` on; the stack is NULL until the first push, and arithmetic on a null
 * pointer is undefined even for an offset of 0. */
static io_pk_obj **stack_from(const unpickler *u, size_t index)
{
    return u->stack ? u->stack + index : NULL;
}

static size_t stack_floor(const unpickler *u)
{
    return u->mark_count ? u->marks[u->mark_count - 1] : 0;
}

static int pop(unpickler *u, io_pk_obj **o)
{
    if (u->depth == stack_floor(u))
        return fail(u, "stack underflow");
    *o = u->stack[--u->depth];
    return DC_OK;
}

static int top(const unpickler *u, io_pk_obj **o)
{
    if (u->depth == stack_floor(u))
        return fail(u, "stack underflow");
    *o = u->stack[u->depth - 1];
    return DC_OK;
}

static int push_mark(unpickler *u)
{
    if (u->mark_count >= IO_MAX_PICKLE_DEPTH)
        return fail(u, "marks nested deeper than %d", IO_MAX_PICKLE_DEPTH);
    if (!grow((void **)&u->marks, &u->mark_capacity, u->mark_count + 1, sizeof *u->marks,
              IO_MAX_PICKLE_DEPTH))
        return out_of_memory(u);
    u->marks[u->mark_count++] = u->depth;
    return DC_OK;
}

/* Removes the topmost mark; the objects above it are stack[*base .. depth). */
static int pop_mark(unpickler *u, size_t *base)
{
    if (u->mark_count == 0)
        return fail(u, "no mark");
    *base = u->marks[--u->mark_count];
    return DC_OK;
}

static int memo_put(unpickler *u, uint64_t index)
{
    io_pk_obj *o = NULL;
    DCI_TRY(top(u, &o));
    if (index >= IO_MAX_PICKLE_MEMO)
        return fail(u, "memo index %llu over the limit", (unsigned long long)index);
    size_t old = u->memo_capacity;
    if (!grow((void **)&u->memo, &u->memo_capacity, (size_t)index + 1, sizeof *u->memo,
              IO_MAX_PICKLE_MEMO))
        return out_of_memory(u);
    if (u->memo_capacity > old)
        memset(u->memo + old, 0, (u->memo_capacity - old) * sizeof *u->memo);
    if (!u->memo[index])
        u->memo_count++;
    u->memo[index] = o;
    return DC_OK;
}

static int memo_get(unpickler *u, uint64_t index)
{
    if (index >= u->memo_capacity || !u->memo[index])
        return fail(u, "memo key %llu missing", (unsigned long long)index);
    return push(u, u->memo[index]);
}

/* ---- reading ---- */

static int need(const unpickler *u, uint64_t n)
{
    if (n > u->size - u->pos)
        return fail(u, "truncated");
    return DC_OK;
}

static int read_bytes(unpickler *u, uint64_t n, const uint8_t **p)
{
    DCI_TRY(need(u, n));
    *p = u->data + u->pos;
    u->pos += (size_t)n;
    return DC_OK;
}

static int read_uint(unpickler *u, int bytes, uint64_t *value)
{
    const uint8_t *p;
    DCI_TRY(read_bytes(u, (uint64_t)bytes, &p));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    *value = v;
    return DC_OK;
}

/* A text line without its '\n'. */
static int read_line(unpickler *u, const char **line, size_t *length)
{
    const uint8_t *start = u->data + u->pos;
    const uint8_t *end = memchr(start, '\n', u->size - u->pos);
    if (!end)
        return fail(u, "truncated");
    *line = (const char *)start;
    *length = (size_t)(end - start);
    u->pos += *length + 1;
    return DC_OK;
}

/* Decimal integer text (INT, LONG, PUT, GET), with an optional trailing 'L'. */
static int parse_decimal(unpickler *u, const char *text, size_t length, int64_t *value)
{
    if (length && text[length - 1] == 'L')
        length--;
    char buf[MAX_TEXT_NUMBER];
    if (length == 0 || length >= sizeof buf)
        return fail(u, "bad integer text");
    memcpy(buf, text, length);
    buf[length] = '\0';
    size_t digits_from = buf[0] == '-' || buf[0] == '+';
    if (buf[digits_from] == '\0' || strspn(buf + digits_from, "0123456789") != length - digits_from)
        return fail(u, "bad integer text");
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return fail(u, "integer out of range");
    *value = v;
    return DC_OK;
}

static int parse_float_text(unpickler *u, const char *text, size_t length, double *value)
{
    char buf[MAX_TEXT_NUMBER], *end;
    if (length == 0 || length >= sizeof buf)
        return fail(u, "bad float text");
    memcpy(buf, text, length);
    buf[length] = '\0';
    *value = strtod(buf, &end);
    if (*end != '\0')
        return fail(u, "bad float text");
    return DC_OK;
}

/* LONG1 / LONG4: little-endian two's complement; wider than 64 bits stays as bytes. */
static int push_long(unpickler *u, const uint8_t *bytes, size_t n)
{
    io_pk_obj *o = NULL;
    if (n > 8) {
        DCI_TRY(new_text(u, IO_PK_BIGINT, bytes, n, &o));
        return push(u, o);
    }
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | bytes[i];
    if (n && n < 8 && (bytes[n - 1] & 0x80))
        v |= ~(uint64_t)0 << (8 * n);
    DCI_TRY(new_integer(u, IO_PK_INT, (int64_t)v, &o));
    return push(u, o);
}

/* ---- globals ---- */

/* By qualified name "module.name" (protocol 4 may also split it elsewhere, to the same
 * effect). */
static const struct {
    const char *name;
    io_pk_global_id id;
} allowed_globals[] = {
    {"collections.OrderedDict", IO_GLOBAL_ORDERED_DICT},
    {"torch._utils._rebuild_tensor", IO_GLOBAL_REBUILD_TENSOR},
    {"torch._utils._rebuild_tensor_v2", IO_GLOBAL_REBUILD_TENSOR_V2},
    {"torch._utils._rebuild_parameter", IO_GLOBAL_REBUILD_PARAMETER},
    {"torch._utils._rebuild_parameter_with_state", IO_GLOBAL_REBUILD_PARAMETER_WITH_STATE},
    {"torch._tensor._rebuild_from_type_v2", IO_GLOBAL_REBUILD_FROM_TYPE_V2},
    {"torch.Tensor", IO_GLOBAL_TENSOR_CLASS},
    {"torch._tensor.Tensor", IO_GLOBAL_TENSOR_CLASS},
    {"torch.nn.parameter.Parameter", IO_GLOBAL_TENSOR_CLASS},
    {"builtins.set", IO_GLOBAL_BUILTIN_LIST},
    {"builtins.frozenset", IO_GLOBAL_BUILTIN_LIST},
    {"builtins.list", IO_GLOBAL_BUILTIN_LIST},
    {"builtins.tuple", IO_GLOBAL_BUILTIN_TUPLE},
    {"__builtin__.set", IO_GLOBAL_BUILTIN_LIST},
    {"__builtin__.frozenset", IO_GLOBAL_BUILTIN_LIST},
    {"__builtin__.list", IO_GLOBAL_BUILTIN_LIST},
    {"__builtin__.tuple", IO_GLOBAL_BUILTIN_TUPLE},
    {"torch.jit._pickle.restore_type_tag", IO_GLOBAL_RESTORE_TYPE_TAG},
    {"torch.jit._pickle.build_intlist", IO_GLOBAL_BUILD_LIST},
    {"torch.jit._pickle.build_doublelist", IO_GLOBAL_BUILD_LIST},
    {"torch.jit._pickle.build_boollist", IO_GLOBAL_BUILD_LIST},
    {"torch.jit._pickle.build_tensorlist", IO_GLOBAL_BUILD_LIST},
};

/* torch.XStorage and (files saved from a GPU before PyTorch 1.12) torch.cuda.XStorage. */
static const struct {
    const char *name;
    dc_dtype dtype;
} storage_classes[] = {
    {"FloatStorage", DC_FLOAT32}, {"HalfStorage", DC_FLOAT16}, {"BFloat16Storage", DC_BFLOAT16},
    {"DoubleStorage", DC_FLOAT64}, {"LongStorage", DC_INT64},  {"IntStorage", DC_INT32},
    {"ByteStorage", DC_UINT8},     {"BoolStorage", DC_BOOL},
};

/* The storage class name after "torch." or "torch.cuda.", or NULL. */
static const char *storage_class_name(const char *full)
{
    const char *rest = strncmp(full, "torch.cuda.", 11) == 0 ? full + 11
                       : strncmp(full, "torch.", 6) == 0   ? full + 6
                                                           : NULL;
    size_t n = rest ? strlen(rest) : 0;
    return n > 7 && !strchr(rest, '.') && strcmp(rest + n - 7, "Storage") == 0 ? rest : NULL;
}

static int push_global(unpickler *u, const char *module, size_t module_length,
                       const char *name, size_t name_length)
{
    if (module_length + name_length + 2 > MAX_GLOBAL_NAME || memchr(module, 0, module_length) ||
        memchr(name, 0, name_length))
        return fail(u, "bad global name");
    char full[MAX_GLOBAL_NAME];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)module_length, module, (int)name_length, name);

    io_pk_global_id id = IO_GLOBAL_ORDERED_DICT;
    dc_dtype dtype = DC_FLOAT32;
    int found = 0;
    for (size_t i = 0; !found && i < sizeof allowed_globals / sizeof allowed_globals[0]; i++) {
        if (strcmp(allowed_globals[i].name, full) == 0) {
            id = allowed_globals[i].id;
            found = 1;
        }
    }
    const char *storage = found ? NULL : storage_class_name(full);
    if (storage) {
        for (size_t i = 0; !found && i < sizeof storage_classes / sizeof storage_classes[0]; i++) {
            if (strcmp(storage_classes[i].name, storage) == 0) {
                id = IO_GLOBAL_STORAGE_CLASS;
                dtype = storage_classes[i].dtype;
                found = 1;
            }
        }
        if (!found)
            return dci_err(DC_EFORMAT, "%s: unsupported tensor type %s", u->pk->label, full);
    }
    /* __torch__ or __torch__.*: TorchScript classes, only in TorchScript archives. */
    if (!found && u->pk->allow_script_classes && strncmp(full, "__torch__.", 10) == 0) {
        id = IO_GLOBAL_SCRIPT_CLASS;
        found = 1;
    }
    if (!found)
        return dci_err(DC_EFORMAT, "%s: refused pickle global %s", u->pk->label, full);
    io_pk_obj *o = NULL;
    DCI_TRY(new_object(u, IO_PK_GLOBAL, &o));
    o->u.global.name = strdup(full);
    if (!o->u.global.name)
        return out_of_memory(u);
    o->u.global.id = id;
    o->u.global.dtype = dtype;
    return push(u, o);
}

/* ---- interpreting the allowed calls ---- */

static int nonnegative_int(const io_pk_obj *o) { return o->kind == IO_PK_INT && o->u.integer >= 0; }

static int int_tuple(const io_pk_obj *o, int64_t *values, int *count)
{
    if (o->kind != IO_PK_TUPLE && o->kind != IO_PK_LIST)
        return 0;
    if (o->u.seq.count > DC_MAX_DIMS)
        return 0;
    for (size_t i = 0; i < o->u.seq.count; i++) {
        if (!nonnegative_int(o->u.seq.items[i]))
            return 0;
        values[i] = o->u.seq.items[i]->u.integer;
    }
    *count = (int)o->u.seq.count;
    return 1;
}

/* _rebuild_tensor(storage, storage_offset, size, stride, ...): the view, not yet copied. */
static int rebuild_tensor(unpickler *u, io_pk_obj *const *args, io_pk_obj **out)
{
    if (args[0]->kind != IO_PK_STORAGE)
        return fail(u, "tensor without a storage");
    if (!nonnegative_int(args[1]))
        return fail(u, "bad tensor storage offset");
    io_pk_obj *t;
    DCI_TRY(new_object(u, IO_PK_TENSOR, &t));
    int stride_count = -1;
    if (!int_tuple(args[2], t->u.tensor.shape, &t->u.tensor.ndim) ||
        !int_tuple(args[3], t->u.tensor.stride, &stride_count) ||
        stride_count != t->u.tensor.ndim)
        return fail(u, "bad tensor shape or strides (at most %d dimensions)", DC_MAX_DIMS);
    t->u.tensor.storage = args[0];
    t->u.tensor.offset = (uint64_t)args[1]->u.integer;
    *out = t;
    return DC_OK;
}

static int ordered_dict(unpickler *u, io_pk_obj *const *args, size_t count, io_pk_obj **out)
{
    io_pk_obj *d;
    DCI_TRY(new_object(u, IO_PK_DICT, &d));
    *out = d;
    if (count == 0)
        return DC_OK;
    const io_pk_obj *pairs = args[0];
    if (count != 1 || (pairs->kind != IO_PK_LIST && pairs->kind != IO_PK_TUPLE))
        return fail(u, "bad OrderedDict arguments");
    for (size_t i = 0; i < pairs->u.seq.count; i++) {
        const io_pk_obj *pair = pairs->u.seq.items[i];
        if ((pair->kind != IO_PK_LIST && pair->kind != IO_PK_TUPLE) || pair->u.seq.count != 2)
            return fail(u, "bad OrderedDict item");
        DCI_TRY(dict_set(u, d, pair->u.seq.items[0], pair->u.seq.items[1]));
    }
    return DC_OK;
}

static int call_global(unpickler *u, const io_pk_obj *callable, const io_pk_obj *args,
                       io_pk_obj **out)
{
    if (callable->kind != IO_PK_GLOBAL)
        return fail(u, "call of a %s", kind_name(callable->kind));
    if (args->kind != IO_PK_TUPLE)
        return fail(u, "arguments of %s are not a tuple", callable->u.global.name);
    io_pk_obj *const *a = args->u.seq.items;
    size_t n = args->u.seq.count;
    switch (callable->u.global.id) {
    case IO_GLOBAL_ORDERED_DICT:
        return ordered_dict(u, a, n, out);
    case IO_GLOBAL_REBUILD_TENSOR:
        if (n != 4)
            break;
        return rebuild_tensor(u, a, out);
    case IO_GLOBAL_REBUILD_TENSOR_V2:
        if (n != 6 && n != 7)
            break;
        return rebuild_tensor(u, a, out);
    case IO_GLOBAL_REBUILD_PARAMETER:
    case IO_GLOBAL_REBUILD_PARAMETER_WITH_STATE:
        if (n != (callable->u.global.id == IO_GLOBAL_REBUILD_PARAMETER ? 3u : 4u) ||
            a[0]->kind != IO_PK_TENSOR)
            break;
        *out = a[0];
        return DC_OK;
    case IO_GLOBAL_REBUILD_FROM_TYPE_V2: {
        /* (func, new_type, args, state): a Tensor or Parameter made by a rebuild function. */
        if (n != 4 || a[0]->kind != IO_PK_GLOBAL || a[1]->kind != IO_PK_GLOBAL ||
            a[1]->u.global.id != IO_GLOBAL_TENSOR_CLASS)
            break;
        io_pk_global_id inner = a[0]->u.global.id;
        if (inner != IO_GLOBAL_REBUILD_TENSOR && inner != IO_GLOBAL_REBUILD_TENSOR_V2 &&
            inner != IO_GLOBAL_REBUILD_PARAMETER)
            break;
        return call_global(u, a[0], a[2], out);
    }
    case IO_GLOBAL_BUILTIN_LIST:
    case IO_GLOBAL_BUILTIN_TUPLE: {
        io_pk_kind kind = callable->u.global.id == IO_GLOBAL_BUILTIN_LIST ? IO_PK_LIST : IO_PK_TUPLE;
        if (n == 0)
            return new_sequence(u, kind, NULL, 0, out);
        if (n != 1 || (a[0]->kind != IO_PK_LIST && a[0]->kind != IO_PK_TUPLE))
            break;
        return new_sequence(u, kind, a[0]->u.seq.items, a[0]->u.seq.count, out);
    }
    case IO_GLOBAL_RESTORE_TYPE_TAG:
        if (n != 2)
            break;
        *out = a[0];
        return DC_OK;
    case IO_GLOBAL_BUILD_LIST:
        if (n != 1 || a[0]->kind != IO_PK_LIST)
            break;
        *out = a[0];
        return DC_OK;
    case IO_GLOBAL_TENSOR_CLASS:
    case IO_GLOBAL_STORAGE_CLASS:
    case IO_GLOBAL_SCRIPT_CLASS:
        return fail(u, "call of %s is not supported", callable->u.global.name);
    }
    return fail(u, "bad arguments for %s", callable->u.global.name);
}

/* NEWOBJ: TorchScript module objects (filled by BUILD) and OrderedDict. */
static int new_instance(unpickler *u, io_pk_obj *cls, const io_pk_obj *args, io_pk_obj **out)
{
    if (cls->kind == IO_PK_GLOBAL && cls->u.global.id == IO_GLOBAL_ORDERED_DICT)
        return call_global(u, cls, args, out);
    if (cls->kind != IO_PK_GLOBAL || cls->u.global.id != IO_GLOBAL_SCRIPT_CLASS)
        return fail(u, "cannot instantiate a %s",
                    cls->kind == IO_PK_GLOBAL ? cls->u.global.name : kind_name(cls->kind));
    if (args->kind != IO_PK_TUPLE || args->u.seq.count != 0)
        return fail(u, "arguments for %s", cls->u.global.name);
    DCI_TRY(new_object(u, IO_PK_OBJECT, out));
    (*out)->u.object.cls = cls;
    return DC_OK;
}

static int build(unpickler *u, io_pk_obj *target, io_pk_obj *state)
{
    switch (target->kind) {
    case IO_PK_OBJECT:
        target->u.object.state = state;
        return note_child(u, target, state);
    case IO_PK_DICT:    /* OrderedDict attributes, e.g. state_dict()'s _metadata */
    case IO_PK_TENSOR:  /* Python attributes of a tensor */
        return DC_OK;
    default:
        return fail(u, "BUILD on a %s", kind_name(target->kind));
    }
}

static int storage_string(const io_pk_obj *o)
{
    return o->kind == IO_PK_STRING || o->kind == IO_PK_BYTES;
}

/* ('storage', storage_type, key, location, numel[, view_metadata]): the zip and TorchScript
 * form has five items, the legacy form adds view_metadata = None | (view_key, offset, size). */
static int persistent_load(unpickler *u, const io_pk_obj *pid, io_pk_obj **out)
{
    if (pid->kind != IO_PK_TUPLE || pid->u.seq.count == 0 ||
        pid->u.seq.items[0]->kind != IO_PK_STRING)
        return fail(u, "bad persistent id");
    io_pk_obj *const *a = pid->u.seq.items;
    size_t n = pid->u.seq.count;
    if (strcmp(a[0]->u.text.data, "storage") != 0)
        return fail(u, "unsupported persistent id '%s'", a[0]->u.text.data);
    if ((n != 5 && n != 6) || a[1]->kind != IO_PK_GLOBAL ||
        a[1]->u.global.id != IO_GLOBAL_STORAGE_CLASS || a[2]->kind != IO_PK_STRING ||
        !storage_string(a[3]) || !nonnegative_int(a[4]))
        return fail(u, "bad storage reference");
    if (a[2]->u.text.length == 0 || a[2]->u.text.length > IO_MAX_NAME_LENGTH ||
        strlen(a[2]->u.text.data) != a[2]->u.text.length)
        return fail(u, "bad storage key");
    uint64_t root_numel = (uint64_t)a[4]->u.integer;
    if (root_numel > IO_MAX_TOTAL_BYTES)
        return fail(u, "storage of %llu elements", (unsigned long long)root_numel);
    uint64_t offset = 0, numel = root_numel;
    if (n == 6 && a[5]->kind != IO_PK_NONE) {
        const io_pk_obj *view = a[5];
        if (view->kind != IO_PK_TUPLE || view->u.seq.count != 3 ||
            !nonnegative_int(view->u.seq.items[1]) || !nonnegative_int(view->u.seq.items[2]))
            return fail(u, "bad storage view");
        offset = (uint64_t)view->u.seq.items[1]->u.integer;
        numel = (uint64_t)view->u.seq.items[2]->u.integer;
        if (offset > root_numel || numel > root_numel - offset)
            return fail(u, "storage view out of range");
    }
    io_pickle *pk = u->pk;
    if (!grow((void **)&pk->storages, &pk->storage_capacity, pk->storage_count + 1,
              sizeof *pk->storages, IO_MAX_PICKLE_OBJECTS))
        return out_of_memory(u);
    io_pk_obj *s;
    DCI_TRY(new_object(u, IO_PK_STORAGE, &s));
    s->u.storage.dtype = a[1]->u.global.dtype;
    s->u.storage.key = a[2]->u.text.data;
    s->u.storage.root_numel = root_numel;
    s->u.storage.root_offset = offset;
    s->u.storage.numel = numel;
    pk->storages[pk->storage_count++] = s;
    *out = s;
    return DC_OK;
}

/* ---- the opcode loop ---- */

static int push_new(unpickler *u, io_pk_kind kind)
{
    io_pk_obj *o = NULL;
    DCI_TRY(new_object(u, kind, &o));
    return push(u, o);
}

static int push_text(unpickler *u, io_pk_kind kind, int length_bytes)
{
    uint64_t length;
    const uint8_t *p;
    DCI_TRY(read_uint(u, length_bytes, &length));
    DCI_TRY(read_bytes(u, length, &p));
    io_pk_obj *o = NULL;
    DCI_TRY(new_text(u, kind, p, (size_t)length, &o));
    return push(u, o);
}

/* TUPLE, LIST, FROZENSET: the objects above the topmost mark become one sequence. */
static int push_marked_sequence(unpickler *u, io_pk_kind kind)
{
    size_t base = 0;
    DCI_TRY(pop_mark(u, &base));
    io_pk_obj *o = NULL;
    DCI_TRY(new_sequence(u, kind, stack_from(u, base), u->depth - base, &o));
    u->depth = base;
    return push(u, o);
}

static int push_top_tuple(unpickler *u, size_t count)
{
    if (u->depth - stack_floor(u) < count)
        return fail(u, "stack underflow");
    io_pk_obj *o = NULL;
    DCI_TRY(new_sequence(u, IO_PK_TUPLE, stack_from(u, u->depth - count), count, &o));
    u->depth -= count;
    return push(u, o);
}

/* APPENDS, ADDITEMS, SETITEMS, DICT: the marked objects go into `target` (or a new dict). */
static int add_marked_items(unpickler *u, int into_dict, int new_dict)
{
    size_t base = 0;
    DCI_TRY(pop_mark(u, &base));
    io_pk_obj *target;
    if (new_dict) {
        DCI_TRY(new_object(u, IO_PK_DICT, &target));
    } else {
        if (base == stack_floor(u))
            return fail(u, "stack underflow");
        target = u->stack[base - 1];
    }
    size_t count = u->depth - base;
    io_pk_obj **items = stack_from(u, base);
    if (into_dict) {
        if (target->kind != IO_PK_DICT || count % 2 != 0)
            return fail(u, "bad dict items");
        for (size_t i = 0; i < count; i += 2)
            DCI_TRY(dict_set(u, target, items[i], items[i + 1]));
    } else {
        if (target->kind != IO_PK_LIST)
            return fail(u, "append to a %s", kind_name(target->kind));
        for (size_t i = 0; i < count; i++)
            DCI_TRY(seq_append(u, target, items[i]));
    }
    u->depth = base;
    return new_dict ? push(u, target) : DC_OK;
}

static int run(unpickler *u, io_pk_obj **result)
{
    for (;;) {
        u->opcode_pos = u->pos;
        const uint8_t *p;
        DCI_TRY(read_bytes(u, 1, &p));
        uint8_t op = *p;
        /* Set by the calls that DCI_TRY checks; initialised because GCC 14 cannot see that. */
        io_pk_obj *a = NULL, *b = NULL, *c = NULL;
        uint64_t n;
        const char *line = NULL, *line2 = NULL;
        size_t length = 0, length2 = 0;
        int64_t value;
        switch (op) {
        case 0x80: /* PROTO */
            DCI_TRY(read_uint(u, 1, &n));
            if (n > MAX_PROTOCOL)
                return fail(u, "unsupported pickle protocol %llu", (unsigned long long)n);
            break;
        case 0x95: /* FRAME: framing only groups opcodes; its length is advisory */
            DCI_TRY(read_uint(u, 8, &n));
            DCI_TRY(need(u, n));
            break;
        case '.': /* STOP */
            DCI_TRY(pop(u, result));
            return DC_OK;
        case '(': /* MARK */
            DCI_TRY(push_mark(u));
            break;
        case '0': /* POP */
            if (u->depth > stack_floor(u)) {
                u->depth--;
            } else {
                size_t base = 0;
                DCI_TRY(pop_mark(u, &base));
                u->depth = base;
            }
            break;
        case '1': { /* POP_MARK */
            size_t base = 0;
            DCI_TRY(pop_mark(u, &base));
            u->depth = base;
            break;
        }
        case '2': /* DUP */
            DCI_TRY(top(u, &a));
            DCI_TRY(push(u, a));
            break;
        case 'N': /* NONE */
            DCI_TRY(push_new(u, IO_PK_NONE));
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            DCI_TRY(new_integer(u, IO_PK_BOOL, op == 0x88, &a));
            DCI_TRY(push(u, a));
            break;
        case 'K': /* BININT1 */
        case 'M': /* BININT2 */
            DCI_TRY(read_uint(u, op == 'K' ? 1 : 2, &n));
            DCI_TRY(new_integer(u, IO_PK_INT, (int64_t)n, &a));
            DCI_TRY(push(u, a));
            break;
        case 'J': /* BININT: signed 32-bit */
            DCI_TRY(read_uint(u, 4, &n));
            DCI_TRY(new_integer(u, IO_PK_INT, (int32_t)(uint32_t)n, &a));
            DCI_TRY(push(u, a));
            break;
        case 0x8a: /* LONG1 */
        case 0x8b: /* LONG4 */
            DCI_TRY(read_uint(u, op == 0x8a ? 1 : 4, &n));
            DCI_TRY(read_bytes(u, n, &p));
            DCI_TRY(push_long(u, p, (size_t)n));
            break;
        case 'I': /* INT: decimal text; "00" and "01" are False and True */
            DCI_TRY(read_line(u, &line, &length));
            if (length == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1')) {
                DCI_TRY(new_integer(u, IO_PK_BOOL, line[1] == '1', &a));
            } else {
                DCI_TRY(parse_decimal(u, line, length, &value));
                DCI_TRY(new_integer(u, IO_PK_INT, value, &a));
            }
            DCI_TRY(push(u, a));
            break;
        case 'L': /* LONG: decimal text */
            DCI_TRY(read_line(u, &line, &length));
            DCI_TRY(parse_decimal(u, line, length, &value));
            DCI_TRY(new_integer(u, IO_PK_INT, value, &a));
            DCI_TRY(push(u, a));
            break;
        case 'G': { /* BINFLOAT: big-endian double */
            DCI_TRY(read_bytes(u, 8, &p));
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | p[i];
            DCI_TRY(new_object(u, IO_PK_FLOAT, &a));
            memcpy(&a->u.real, &bits, sizeof bits);
            DCI_TRY(push(u, a));
            break;
        }
        case 'F': /* FLOAT: text */
            DCI_TRY(read_line(u, &line, &length));
            DCI_TRY(new_object(u, IO_PK_FLOAT, &a));
            DCI_TRY(parse_float_text(u, line, length, &a->u.real));
            DCI_TRY(push(u, a));
            break;
        case 0x8c: /* SHORT_BINUNICODE */
        case 'U':  /* SHORT_BINSTRING (Python 2 str) */
            DCI_TRY(push_text(u, IO_PK_STRING, 1));
            break;
        case 'X': /* BINUNICODE */
        case 'T': /* BINSTRING */
            DCI_TRY(push_text(u, IO_PK_STRING, 4));
            break;
        case 0x8d: /* BINUNICODE8 */
            DCI_TRY(push_text(u, IO_PK_STRING, 8));
            break;
        case 'C': /* SHORT_BINBYTES */
            DCI_TRY(push_text(u, IO_PK_BYTES, 1));
            break;
        case 'B': /* BINBYTES */
            DCI_TRY(push_text(u, IO_PK_BYTES, 4));
            break;
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            DCI_TRY(push_text(u, IO_PK_BYTES, 8));
            break;
        case ']': /* EMPTY_LIST */
        case 0x8f: /* EMPTY_SET */
            DCI_TRY(push_new(u, IO_PK_LIST));
            break;
        case ')': /* EMPTY_TUPLE */
            DCI_TRY(push_new(u, IO_PK_TUPLE));
            break;
        case '}': /* EMPTY_DICT */
            DCI_TRY(push_new(u, IO_PK_DICT));
            break;
        case 't': /* TUPLE */
            DCI_TRY(push_marked_sequence(u, IO_PK_TUPLE));
            break;
        case 'l': /* LIST */
        case 0x91: /* FROZENSET */
            DCI_TRY(push_marked_sequence(u, IO_PK_LIST));
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            DCI_TRY(push_top_tuple(u, (size_t)(op - 0x84)));
            break;
        case 'd': /* DICT */
            DCI_TRY(add_marked_items(u, 1, 1));
            break;
        case 'a': /* APPEND */
            DCI_TRY(pop(u, &b));
            DCI_TRY(top(u, &a));
            if (a->kind != IO_PK_LIST)
                return fail(u, "append to a %s", kind_name(a->kind));
            DCI_TRY(seq_append(u, a, b));
            break;
        case 'e': /* APPENDS */
        case 0x90: /* ADDITEMS */
            DCI_TRY(add_marked_items(u, 0, 0));
            break;
        case 's': /* SETITEM */
            DCI_TRY(pop(u, &c));
            DCI_TRY(pop(u, &b));
            DCI_TRY(top(u, &a));
            if (a->kind != IO_PK_DICT)
                return fail(u, "item assignment to a %s", kind_name(a->kind));
            DCI_TRY(dict_set(u, a, b, c));
            break;
        case 'u': /* SETITEMS */
            DCI_TRY(add_marked_items(u, 1, 0));
            break;
        case 'c': /* GLOBAL: "module\nname\n" */
            DCI_TRY(read_line(u, &line, &length));
            DCI_TRY(read_line(u, &line2, &length2));
            DCI_TRY(push_global(u, line, length, line2, length2));
            break;
        case 0x93: /* STACK_GLOBAL */
            DCI_TRY(pop(u, &b));
            DCI_TRY(pop(u, &a));
            if (a->kind != IO_PK_STRING || b->kind != IO_PK_STRING)
                return fail(u, "STACK_GLOBAL needs two strings");
            DCI_TRY(push_global(u, a->u.text.data, a->u.text.length, b->u.text.data,
                                b->u.text.length));
            break;
        case 'R': /* REDUCE */
            DCI_TRY(pop(u, &b));
            DCI_TRY(pop(u, &a));
            DCI_TRY(call_global(u, a, b, &c));
            DCI_TRY(push(u, c));
            break;
        case 0x81: /* NEWOBJ */
            DCI_TRY(pop(u, &b));
            DCI_TRY(pop(u, &a));
            DCI_TRY(new_instance(u, a, b, &c));
            DCI_TRY(push(u, c));
            break;
        case 0x92: /* NEWOBJ_EX */
            DCI_TRY(pop(u, &c));
            DCI_TRY(pop(u, &b));
            DCI_TRY(pop(u, &a));
            if (c->kind != IO_PK_DICT || c->u.dict.count != 0)
                return fail(u, "keyword arguments are not supported");
            DCI_TRY(new_instance(u, a, b, &c));
            DCI_TRY(push(u, c));
            break;
        case 'b': /* BUILD */
            DCI_TRY(pop(u, &b));
            DCI_TRY(top(u, &a));
            DCI_TRY(build(u, a, b));
            break;
        case 'Q': /* BINPERSID */
            DCI_TRY(pop(u, &a));
            DCI_TRY(persistent_load(u, a, &b));
            DCI_TRY(push(u, b));
            break;
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
            DCI_TRY(read_uint(u, op == 'q' ? 1 : 4, &n));
            DCI_TRY(memo_put(u, n));
            break;
        case 'p': /* PUT: decimal text */
            DCI_TRY(read_line(u, &line, &length));
            DCI_TRY(parse_decimal(u, line, length, &value));
            if (value < 0)
                return fail(u, "negative memo index");
            DCI_TRY(memo_put(u, (uint64_t)value));
            break;
        case 0x94: /* MEMOIZE */
            DCI_TRY(memo_put(u, u->memo_count));
            break;
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            DCI_TRY(read_uint(u, op == 'h' ? 1 : 4, &n));
            DCI_TRY(memo_get(u, n));
            break;
        case 'g': /* GET: decimal text */
            DCI_TRY(read_line(u, &line, &length));
            DCI_TRY(parse_decimal(u, line, length, &value));
            if (value < 0)
                return fail(u, "negative memo index");
            DCI_TRY(memo_get(u, (uint64_t)value));
            break;
        default:
            return fail(u, "unsupported opcode 0x%02x", op);
        }
    }
}

void io_pickle_init(io_pickle *pk, const char *label, int allow_script_classes)
{
    memset(pk, 0, sizeof *pk);
    pk->label = label ? label : "pickle";
    pk->allow_script_classes = allow_script_classes;
}

int io_pickle_load(io_pickle *pk, const uint8_t *data, size_t size, size_t *consumed,
                   io_pk_obj **result)
{
    unpickler u;
    memset(&u, 0, sizeof u);
    u.pk = pk;
    u.data = data;
    u.size = data ? size : 0;
    *result = NULL;
    int status = run(&u, result);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    if (status == DC_OK && consumed)
        *consumed = u.pos;
    return status;
}

static void free_object(io_pk_obj *o)
{
    switch (o->kind) {
    case IO_PK_STRING:
    case IO_PK_BYTES:
    case IO_PK_BIGINT:
        free(o->u.text.data);
        break;
    case IO_PK_TUPLE:
    case IO_PK_LIST:
        free(o->u.seq.items);
        break;
    case IO_PK_DICT:
        free(o->u.dict.items);
        break;
    case IO_PK_GLOBAL:
        free(o->u.global.name);
        break;
    default:
        break;
    }
    free(o);
}

void io_pickle_free(io_pickle *pk)
{
    if (!pk)
        return;
    for (size_t i = 0; i < pk->object_count; i++)
        free_object(pk->objects[i]);
    free(pk->objects);
    free(pk->storages);
    const char *label = pk->label;
    int allow = pk->allow_script_classes;
    io_pickle_init(pk, label, allow);
}

const char *io_pk_string(const io_pk_obj *obj)
{
    return obj && obj->kind == IO_PK_STRING ? obj->u.text.data : NULL;
}

io_pk_obj *io_pk_dict_get(const io_pk_obj *dict, const char *key)
{
    if (!dict || dict->kind != IO_PK_DICT)
        return NULL;
    /* The last assignment wins, as in Python. */
    for (size_t i = dict->u.dict.count; i-- > 0;) {
        const char *k = io_pk_string(dict->u.dict.items[i].key);
        if (k && strcmp(k, key) == 0)
            return dict->u.dict.items[i].value;
    }
    return NULL;
}
