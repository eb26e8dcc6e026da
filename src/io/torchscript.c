/* torch.jit.load(f).state_dict() lists, per module in attribute order, its parameters, then
 * its buffers, then the state of its submodules under "name.". Which attributes are
 * parameters or buffers is not in data.pkl: the class definitions in FOLDER/code/ say so,
 * e.g.
 *     class Linear(Module):
 *       __parameters__ = ["weight", "bias", ]
 *       __buffers__ = []
 * Tensor attributes that are neither (and the constants) are not state dict entries. */
#include "torchscript.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "limits.h"

typedef struct name_ref {
    const char *text;
    size_t length;
} name_ref;

typedef struct name_list {
    name_ref *names;             /* sorted, for lookup */
    size_t count;
} name_list;

typedef struct script_class {
    char *name;                  /* qualified: __torch__.module.Class */
    int is_module;               /* derives from Module */
    name_list parameters, buffers;
} script_class;

typedef struct class_table {
    const char *label;
    script_class *classes;
    size_t count, capacity;
} class_table;

static int compare_refs(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    size_t n = x->length < y->length ? x->length : y->length;
    int c = memcmp(x->text, y->text, n);
    return c ? c : (x->length > y->length) - (x->length < y->length);
}

static int list_contains(const name_list *list, const char *name, size_t length)
{
    name_ref key = {name, length};
    return list->count && bsearch(&key, list->names, list->count, sizeof key, compare_refs) != NULL;
}

/* ["a", "b", ] as the TorchScript printer writes it, on one line. */
static int parse_name_list(const class_table *t, const char *p, const char *end,
                           name_list *list)
{
    if (list->names)
        return dci_err(DC_EFORMAT, "%s: TorchScript class lists a name set twice", t->label);
    size_t capacity = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == ']')
            break;
        if (p >= end || *p != '"')
            return dci_err(DC_EFORMAT, "%s: bad __parameters__/__buffers__ list in code/",
                           t->label);
        const char *name = ++p;
        const char *close = memchr(p, '"', (size_t)(end - p));
        if (!close || close == name)
            return dci_err(DC_EFORMAT, "%s: bad __parameters__/__buffers__ list in code/",
                           t->label);
        if (list->count == capacity) {
            capacity = capacity ? 2 * capacity : 8;
            name_ref *grown = realloc(list->names, capacity * sizeof *grown);
            if (!grown)
                return dci_err(DC_ENOMEM, "%s: out of memory", t->label);
            list->names = grown;
        }
        list->names[list->count].text = name;
        list->names[list->count].length = (size_t)(close - name);
        list->count++;
        p = close + 1;
    }
    if (!list->names)
        list->names = malloc(sizeof *list->names);  /* marks the list as set, even when empty */
    if (!list->names)
        return dci_err(DC_ENOMEM, "%s: out of memory", t->label);
    qsort(list->names, list->count, sizeof *list->names, compare_refs);
    return DC_OK;
}

static int starts_with(const char *p, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

/* "class Name(Base):" */
static int add_class(class_table *t, const char *module, const char *p, const char *end)
{
    p += strlen("class ");
    const char *name_end = p;
    while (name_end < end && *name_end != '(' && *name_end != ':')
        name_end++;
    if (name_end == p || name_end == end)
        return dci_err(DC_EFORMAT, "%s: bad class line in code/", t->label);
    int is_module = starts_with(name_end, end, "(Module)");
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? 2 * t->capacity : 32;
        script_class *grown = realloc(t->classes, capacity * sizeof *grown);
        if (!grown)
            return dci_err(DC_ENOMEM, "%s: out of memory", t->label);
        t->classes = grown;
        t->capacity = capacity;
    }
    script_class *c = &t->classes[t->count];
    memset(c, 0, sizeof *c);
    size_t module_length = strlen(module), name_length = (size_t)(name_end - p);
    c->name = malloc(module_length + name_length + 2);
    if (!c->name)
        return dci_err(DC_ENOMEM, "%s: out of memory", t->label);
    memcpy(c->name, module, module_length);
    c->name[module_length] = '.';
    memcpy(c->name + module_length + 1, p, name_length);
    c->name[module_length + 1 + name_length] = '\0';
    c->is_module = is_module;
    t->count++;
    return DC_OK;
}

/* The classes of one source file, module path `module` (e.g. "__torch__.clip.model"). */
static int parse_source(class_table *t, const char *module, const char *text, size_t size)
{
    const char *p = text, *end = text + size;
    script_class *current = NULL;
    while (p < end) {
        const char *line_end = memchr(p, '\n', (size_t)(end - p));
        if (!line_end)
            line_end = end;
        if (starts_with(p, line_end, "class ")) {
            DCI_TRY(add_class(t, module, p, line_end));
            current = &t->classes[t->count - 1];
        } else if (p < line_end && *p != ' ') {
            current = NULL;  /* a top-level line ends the class body */
        } else if (current) {
            const char *s = p;
            while (s < line_end && *s == ' ')
                s++;
            if (starts_with(s, line_end, "__parameters__ = ["))
                DCI_TRY(parse_name_list(t, s + strlen("__parameters__ = ["), line_end,
                                        &current->parameters));
            else if (starts_with(s, line_end, "__buffers__ = ["))
                DCI_TRY(parse_name_list(t, s + strlen("__buffers__ = ["), line_end,
                                        &current->buffers));
        }
        p = line_end + (line_end < end);
    }
    return DC_OK;
}

static int compare_classes(const void *a, const void *b)
{
    return strcmp(((const script_class *)a)->name, ((const script_class *)b)->name);
}

/* Every class under FOLDER/code/, sorted by qualified name. */
static int read_classes(class_table *t, io_zip *zip, const char *folder)
{
    size_t folder_length = strlen(folder);
    for (size_t i = 0; i < zip->count; i++) {
        io_zip_entry *e = &zip->entries[i];
        const char *name = e->name;
        size_t length = e->name_length;
        if (length <= folder_length + 9 || strncmp(name, folder, folder_length) != 0 ||
            strncmp(name + folder_length, "/code/", 6) != 0 ||
            strcmp(name + length - 3, ".py") != 0)
            continue;
        /* FOLDER/code/__torch__/a/b.py holds module __torch__.a.b */
        char module[IO_MAX_NAME_LENGTH + 1];
        size_t module_length = length - folder_length - 6 - 3;
        memcpy(module, name + folder_length + 6, module_length);
        module[module_length] = '\0';
        for (char *c = module; *c; c++)
            if (*c == '/')
                *c = '.';
        const uint8_t *text;
        size_t size;
        DCI_TRY(io_zip_read(zip, e, &text, &size));
        DCI_TRY(parse_source(t, module, (const char *)text, size));
    }
    if (t->count)
        qsort(t->classes, t->count, sizeof *t->classes, compare_classes);
    for (size_t i = 1; i < t->count; i++)
        if (strcmp(t->classes[i - 1].name, t->classes[i].name) == 0)
            return dci_err(DC_EFORMAT, "%s: TorchScript class %s defined twice", t->label,
                           t->classes[i].name);
    return DC_OK;
}

static void free_classes(class_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->classes[i].name);
        free(t->classes[i].parameters.names);
        free(t->classes[i].buffers.names);
    }
    free(t->classes);
}

static const script_class *find_class(const class_table *t, const char *name)
{
    script_class key = {.name = (char *)name};
    if (!t->count)
        return NULL;
    return bsearch(&key, t->classes, t->count, sizeof key, compare_classes);
}

typedef struct walker {
    io_sd_builder *b;
    const class_table *classes;
    char prefix[IO_MAX_NAME_LENGTH + 2];
    uint64_t visits;
} walker;

static int append_named(walker *w, const io_pk_obj *state, size_t prefix_length,
                        const name_list *names)
{
    for (size_t i = 0; i < state->u.dict.count; i++) {
        const io_pk_pair *item = &state->u.dict.items[i];
        if (item->key->kind != IO_PK_STRING || item->value->kind != IO_PK_TENSOR ||
            !list_contains(names, item->key->u.text.data, item->key->u.text.length))
            continue;
        w->prefix[prefix_length] = '\0';
        DCI_TRY(io_sd_append_view(w->b, w->prefix, item->key->u.text.data,
                                  &item->value->u.tensor));
    }
    return DC_OK;
}

static int walk(walker *w, const io_pk_obj *module, const script_class *cls,
                size_t prefix_length, int depth)
{
    const char *label = w->b->label;
    /* Bounds both the recursion and the work a module shared many times could cause. */
    if (depth > IO_MAX_PICKLE_DEPTH || ++w->visits > IO_MAX_PICKLE_OBJECTS)
        return dci_err(DC_EFORMAT, "%s: TorchScript module tree too deep or too large", label);
    const io_pk_obj *state = module->u.object.state;
    if (!state || state->kind != IO_PK_DICT)
        return dci_err(DC_EFORMAT, "%s: TorchScript module %s has no attributes", label,
                       cls->name);
    DCI_TRY(append_named(w, state, prefix_length, &cls->parameters));
    DCI_TRY(append_named(w, state, prefix_length, &cls->buffers));
    for (size_t i = 0; i < state->u.dict.count; i++) {
        const io_pk_pair *item = &state->u.dict.items[i];
        if (item->key->kind != IO_PK_STRING || item->value->kind != IO_PK_OBJECT)
            continue;
        const char *class_name = item->value->u.object.cls->u.global.name;
        const script_class *child = find_class(w->classes, class_name);
        if (!child)
            return dci_err(DC_EFORMAT, "%s: TorchScript class %s has no definition in code/",
                           label, class_name);
        if (!child->is_module)
            continue;
        size_t length = item->key->u.text.length;
        if (prefix_length + length + 1 > IO_MAX_NAME_LENGTH)
            return dci_err(DC_EFORMAT, "%s: tensor name longer than %d bytes", label,
                           IO_MAX_NAME_LENGTH);
        memcpy(w->prefix + prefix_length, item->key->u.text.data, length);
        w->prefix[prefix_length + length] = '.';
        DCI_TRY(walk(w, item->value, child, prefix_length + length + 1, depth + 1));
    }
    return DC_OK;
}

int io_torchscript_append(io_sd_builder *b, io_zip *zip, const char *folder,
                          const io_pk_obj *root)
{
    class_table classes = {.label = b->label};
    walker *w = NULL;
    int status = read_classes(&classes, zip, folder);
    const script_class *root_class = NULL;
    if (status == DC_OK && root->kind != IO_PK_OBJECT)
        status = dci_err(DC_EFORMAT, "%s: TorchScript data.pkl does not hold a module", b->label);
    if (status == DC_OK && !(root_class = find_class(&classes, root->u.object.cls->u.global.name)))
        status = dci_err(DC_EFORMAT, "%s: TorchScript class %s has no definition in code/",
                         b->label, root->u.object.cls->u.global.name);
    if (status == DC_OK && !(w = calloc(1, sizeof *w)))
        status = dci_err(DC_ENOMEM, "%s: out of memory", b->label);
    if (status == DC_OK) {
        w->b = b;
        w->classes = &classes;
        status = walk(w, root, root_class, 0, 0);
    }
    free(w);
    free_classes(&classes);
    return status;
}
