/* The keys of the published configs, typed as PyYAML (YAML 1.1) types them: a quoted
 * scalar is a string, never a number. */
#include "model_config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "yaml.h"

typedef enum value_type { V_INT, V_FLOAT, V_BOOL, V_TEXT, V_INT_LIST, V_FLOAT_LIST } value_type;

typedef struct config_key {
    const char *section, *name;
    value_type type;
    unsigned bit;
    size_t offset, count_offset;         /* count_offset: lists only */
    double min, max;                     /* numbers and list items */
} config_key;

#define FIELD(f) offsetof(io_model_config, f)
static const config_key KEYS[] = {
    {"data", "image_size", V_INT, IO_CONFIG_IMAGE_SIZE, FIELD(image_size), 0, 1, 16384},
    {"data", "dataset", V_TEXT, IO_CONFIG_DATASET, FIELD(dataset), 0, 0, 0},
    {"model", "type", V_TEXT, IO_CONFIG_TYPE, FIELD(type), 0, 0, 0},
    {"model", "in_channels", V_INT, IO_CONFIG_IN_CHANNELS, FIELD(in_channels), 0, 1, 1024},
    {"model", "out_ch", V_INT, IO_CONFIG_OUT_CH, FIELD(out_ch), 0, 1, 1024},
    {"model", "ch", V_INT, IO_CONFIG_CH, FIELD(ch), 0, 1, 1 << 20},
    {"model", "ch_mult", V_FLOAT_LIST, IO_CONFIG_CH_MULT, FIELD(ch_mult), FIELD(ch_mult_count),
     1e-3, 1e4},
    {"model", "num_res_blocks", V_INT, IO_CONFIG_NUM_RES_BLOCKS, FIELD(num_res_blocks), 0, 1,
     1024},
    {"model", "attn_resolutions", V_INT_LIST, IO_CONFIG_ATTN, FIELD(attn_resolutions),
     FIELD(attn_count), 1, 16384},
    {"model", "resamp_with_conv", V_BOOL, IO_CONFIG_RESAMP_WITH_CONV, FIELD(resamp_with_conv), 0,
     0, 0},
    {"model", "dropout", V_FLOAT, IO_CONFIG_DROPOUT, FIELD(dropout), 0, 0, 1},
    {"model", "var_type", V_TEXT, IO_CONFIG_VAR_TYPE, FIELD(var_type), 0, 0, 0},
    {"diffusion", "beta_schedule", V_TEXT, IO_CONFIG_BETA_SCHEDULE, FIELD(beta_schedule), 0, 0,
     0},
    {"diffusion", "beta_start", V_FLOAT, IO_CONFIG_BETA_START, FIELD(beta_start), 0, 0, 1},
    {"diffusion", "beta_end", V_FLOAT, IO_CONFIG_BETA_END, FIELD(beta_end), 0, 0, 1},
    {"diffusion", "num_diffusion_timesteps", V_INT, IO_CONFIG_TIMESTEPS, FIELD(num_timesteps), 0,
     2, 1000000},
};
#undef FIELD

static const char *const TYPE_NAMES[] = {"an integer", "a number", "true or false", "a string",
                                         "a list of integers", "a list of numbers"};

static int wrong(const char *label, const config_key *k, const io_yaml_node *n, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: line %d: %s.%s must be %s, not %s", label, n->line,
                   k->section, k->name, TYPE_NAMES[k->type], what);
}

static const char *describe(const io_yaml_node *n)
{
    if (n->kind == IO_YAML_MAPPING)
        return "a mapping";
    if (n->kind == IO_YAML_SEQUENCE)
        return "a list";
    return n->quoted ? "a quoted string" : "this value";
}

/* A plain scalar as a YAML 1.1 integer (decimal) or float (what strtod reads whole). */
static int scalar_number(const io_yaml_node *n, int integer, double *out)
{
    if (n->kind != IO_YAML_SCALAR || n->quoted || !n->value[0])
        return 0;
    const char *s = n->value;
    char *end;
    errno = 0;
    if (integer) {
        size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
        if (!s[i] || strspn(s + i, "0123456789") != strlen(s + i))
            return 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
            return 0;
        *out = (double)v;
        return 1;
    }
    if (strspn(s, "0123456789+-.eE") != strlen(s))     /* no inf, nan, hex */
        return 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int scalar_bool(const io_yaml_node *n, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
                                      "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off",
                                     "OFF"};
    if (n->kind != IO_YAML_SCALAR || n->quoted)
        return 0;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcmp(n->value, yes[i]) == 0)
            return *out = 1, 1;
        if (strcmp(n->value, no[i]) == 0)
            return *out = 0, 1;
    }
    return 0;
}

static int is_null(const io_yaml_node *n)
{
    return n->kind == IO_YAML_SCALAR && !n->quoted &&
           (!n->value[0] || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
            strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0);
}

static int number_in_range(const char *label, const config_key *k, const io_yaml_node *n,
                           int integer, double *out)
{
    if (!scalar_number(n, integer, out))
        return wrong(label, k, n, describe(n));
    if (k->max > k->min && (*out < k->min || *out > k->max))
        return dci_err(DC_EFORMAT, "%s: line %d: %s.%s = %s is out of range (%g..%g)", label,
                       n->line, k->section, k->name, n->value, k->min, k->max);
    return DC_OK;
}

static int read_key(const char *label, const config_key *k, const io_yaml_node *n,
                    io_model_config *c)
{
    char *field = (char *)c + k->offset;
    if (is_null(n))
        return dci_err(DC_EFORMAT, "%s: line %d: %s.%s is empty", label, n->line, k->section,
                       k->name);
    double v;
    switch (k->type) {
    case V_INT:
        DCI_TRY(number_in_range(label, k, n, 1, &v));
        *(int *)field = (int)v;
        break;
    case V_FLOAT:
        DCI_TRY(number_in_range(label, k, n, 0, &v));
        *(double *)field = v;
        break;
    case V_BOOL:
        if (!scalar_bool(n, (int *)field))
            return wrong(label, k, n, describe(n));
        break;
    case V_TEXT:
        if (n->kind != IO_YAML_SCALAR)
            return wrong(label, k, n, describe(n));
        if (strlen(n->value) >= IO_CONFIG_MAX_TEXT)
            return dci_err(DC_EFORMAT, "%s: line %d: %s.%s is longer than %d characters", label,
                           n->line, k->section, k->name, IO_CONFIG_MAX_TEXT - 1);
        strcpy(field, n->value);
        break;
    case V_INT_LIST:
    case V_FLOAT_LIST:
        if (n->kind != IO_YAML_SEQUENCE)
            return wrong(label, k, n, describe(n));
        if (n->count > IO_CONFIG_MAX_LIST)
            return dci_err(DC_EFORMAT, "%s: line %d: %s.%s has %zu entries (at most %d)", label,
                           n->line, k->section, k->name, n->count, IO_CONFIG_MAX_LIST);
        for (size_t i = 0; i < n->count; i++) {
            DCI_TRY(number_in_range(label, k, &n->children[i], k->type == V_INT_LIST, &v));
            if (k->type == V_INT_LIST)
                ((int *)field)[i] = (int)v;
            else
                ((double *)field)[i] = v;
        }
        *(int *)((char *)c + k->count_offset) = (int)n->count;
        break;
    }
    c->present |= k->bit;
    return DC_OK;
}

static int read_tree(const io_yaml_node *root, const char *label, io_model_config *out)
{
    if (root->kind != IO_YAML_MAPPING)
        return dci_err(DC_EFORMAT, "%s: not a config: the document is %s, not a mapping of "
                       "sections (data:, model:, diffusion:)", label, describe(root));
    for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        const config_key *k = &KEYS[i];
        const io_yaml_node *section = io_yaml_get(root, k->section);
        if (!section || is_null(section))
            continue;
        if (section->kind != IO_YAML_MAPPING)
            return dci_err(DC_EFORMAT, "%s: line %d: section '%s' must be a mapping, not %s",
                           label, section->line, k->section, describe(section));
        const io_yaml_node *value = io_yaml_get(section, k->name);
        if (value)
            DCI_TRY(read_key(label, k, value, out));
    }
    return DC_OK;
}

int io_model_config_parse(const void *data, size_t size, const char *label,
                          io_model_config *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "config: NULL argument");
    memset(out, 0, sizeof *out);
    if (!label)
        label = "config";
    io_yaml_node *root;
    DCI_TRY(io_yaml_parse(data, size, label, &root));
    int status = read_tree(root, label, out);
    io_yaml_free(root);
    if (status != DC_OK)
        memset(out, 0, sizeof *out);
    return status;
}

int io_model_config_read_file(const char *path, io_model_config *out)
{
    if (!path || !out)
        return dci_err(DC_EINVAL, "config: NULL argument");
    memset(out, 0, sizeof *out);
    io_yaml_node *root;
    DCI_TRY(io_yaml_read_file(path, &root));
    int status = read_tree(root, path, out);
    io_yaml_free(root);
    if (status != DC_OK)
        memset(out, 0, sizeof *out);
    return status;
}
