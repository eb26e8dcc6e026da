#include "mix.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static int fail(char *why, size_t size, const char *fmt, const char *detail)
{
    snprintf(why, size, fmt, detail);
    return -1;
}

/* Comma-separated finite numbers from *pp, which is left after the last one. */
static int parse_list(const char **pp, double *out, size_t cap, size_t *count, char *why,
                      size_t why_size)
{
    const char *p = *pp;
    size_t n = 0;
    for (;;) {
        p = skip_space(p);
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v))
            return fail(why, why_size, "expected a weight at '%s'", p);
        if (n >= cap)
            return fail(why, why_size, "too many weights at '%s'", p);
        out[n++] = v;
        p = skip_space(end);
        if (*p != ',')
            break;
        p++;
    }
    *pp = p;
    *count = n;
    return 0;
}

/* "0.65,0.35" as one vector. */
static int parse_weights(const char *text, cli_mix *out, char *why, size_t why_size)
{
    const char *p = text;
    out->pieces = 1;
    out->thresholds[0] = 0;
    if (parse_list(&p, out->weights, CLI_MAX_MODELS, &out->count, why, why_size))
        return -1;
    return *p ? fail(why, why_size, "unexpected '%s' after the weights", p) : 0;
}

/* One "THRESHOLD: w,w" or "THRESHOLD: [w, w]" entry; *bracketed says which. */
static int parse_piece(const char **pp, cli_mix *s, int *bracketed, char *why,
                       size_t why_size)
{
    const char *p = skip_space(*pp);
    char *end;
    errno = 0;
    long threshold = strtol(p, &end, 10);
    if (end == p || errno || threshold < INT_MIN || threshold > INT_MAX)
        return fail(why, why_size, "expected a timestep threshold at '%s'", p);
    p = skip_space(end);
    if (*p != ':')
        return fail(why, why_size, "expected ':' after a threshold at '%s'", p);
    p = skip_space(p + 1);
    *bracketed = *p == '[';
    if (*bracketed)
        p++;
    if (s->pieces >= CLI_MAX_PIECES)
        return fail(why, why_size, "more than 64 pieces at '%s'", p);
    size_t n;
    if (parse_list(&p, s->weights + s->pieces * CLI_MAX_MODELS, CLI_MAX_MODELS, &n, why,
                   why_size))
        return -1;
    if (*bracketed && *p++ != ']')
        return fail(why, why_size, "expected ']' at '%s'", p - 1);
    if (s->pieces > 0 && n != s->count)
        return fail(why, why_size, "every threshold needs as many weights as the first, "
                    "not so at '%s'", *pp);
    s->count = n;
    s->thresholds[s->pieces++] = (int)threshold;
    *pp = skip_space(p);
    return 0;
}

int cli_parse_schedule(const char *text, cli_mix *out, char *why, size_t why_size)
{
    out->pieces = out->count = 0;
    const char *p = skip_space(text);
    int braced = *p == '{';
    if (braced)
        p++;
    for (;;) {
        int bracketed;
        if (parse_piece(&p, out, &bracketed, why, why_size))
            return -1;
        if (*p != ';' && !(bracketed && *p == ','))
            break;
        p = skip_space(p + 1);
        if (!*p || *p == '}')
            break;                       /* a trailing separator */
    }
    if (braced && *p++ != '}')
        return fail(why, why_size, "expected '}' at '%s'", p - 1);
    p = skip_space(p);
    if (*p)
        return fail(why, why_size, "unexpected '%s'", p);
    /* Rows were parsed CLI_MAX_MODELS apart; pack them count apart. */
    for (size_t k = 1; k < out->pieces; k++)
        memmove(out->weights + k * out->count, out->weights + k * CLI_MAX_MODELS,
                out->count * sizeof out->weights[0]);
    return 0;
}

int cli_mix_complete(cli_mix *s, size_t models, char *why, size_t why_size)
{
    if (s->count == models)
        return 0;
    if (s->count + 1 != models) {
        snprintf(why, why_size, "%zu weights per threshold for %zu models", s->count, models);
        return -1;
    }
    for (size_t k = s->pieces; k-- > 0;) {
        const double *given = s->weights + k * s->count;
        double *row = s->weights + k * models, sum = 0;
        for (size_t i = 0; i < s->count; i++)
            sum += given[i];
        memmove(row + 1, given, s->count * sizeof *row);
        /* Rounding (0.1 + 0.2 + 0.7) must not make the original a model of weight 1e-16. */
        row[0] = fabs(1 - sum) <= 1e-6 ? 0 : 1 - sum;
        if (row[0] < 0) {
            snprintf(why, why_size, "the fine-tuned models' weights sum to %g, more than 1 "
                     "(the original model would take a negative weight)", sum);
            return -1;
        }
    }
    s->count = models;
    return 0;
}

int cli_mix_parse(const char *command, const char *usage, const char *gamma,
                  const char *schedule, const char *ramp, size_t models, int remainder_first,
                  cli_mix *out)
{
    out->kind = CLI_MIX_NONE;
    if ((gamma != NULL) + (schedule != NULL) + (ramp != NULL) > 1)
        return cli_command_usage_error(command, usage,
                                       "give one of --gamma, --schedule and --ramp");
    const char *name = gamma ? "gamma" : schedule ? "schedule" : "ramp";
    const char *text = gamma ? gamma : schedule ? schedule : ramp;
    if (!text)
        return 0;
    char why[256];
    int bad = gamma ? parse_weights(gamma, out, why, sizeof why)
                    : cli_parse_schedule(text, out, why, sizeof why);
    if (!bad && ramp && out->pieces != 2)
        bad = fail(why, sizeof why, "%s", "a ramp is two points, \"T_A:weights;T_B:weights\"");
    if (!bad && models > CLI_MAX_MODELS)
        bad = fail(why, sizeof why, "%s", "more than 64 models");
    if (!bad && !remainder_first && out->count != models) {
        snprintf(why, sizeof why, "%zu weights for %zu models", out->count, models);
        bad = 1;
    }
    if (!bad)
        bad = cli_mix_complete(out, models, why, sizeof why);
    if (bad)
        return cli_command_usage_error(command, usage, "--%s '%s': %s", name, text, why);
    out->kind = gamma ? CLI_MIX_CONSTANT : schedule ? CLI_MIX_PIECEWISE : CLI_MIX_RAMP;
    return 0;
}

int cli_mix_apply(const char *command, const char *usage, dc_sampler *sampler,
                  const cli_mix *m)
{
    dc_status st;
    if (m->kind == CLI_MIX_CONSTANT)
        st = dc_sampler_set_weights(sampler, m->weights);
    else if (m->kind == CLI_MIX_RAMP)
        st = dc_sampler_set_ramp(sampler, m->thresholds[0], m->weights, m->thresholds[1],
                                 m->weights + m->count);
    else
        st = dc_sampler_set_piecewise(sampler, m->thresholds, m->weights, m->pieces);
    if (st == DC_EINVAL)             /* the weights given are wrong */
        return cli_command_usage_error(command, usage, "%s", dc_last_error());
    return st == DC_OK ? 0 : cli_library_error();
}

int cli_split_weight(const char *spec, char *buf, size_t size, double *weight, int *has_weight)
{
    size_t n = strlen(spec);
    const char *colon = strrchr(spec, ':');
    *has_weight = 0;
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (!*end && !errno && isfinite(v)) {
            *weight = v;
            *has_weight = 1;
            n = (size_t)(colon - spec);
        }
    }
    if (n >= size)
        return -1;
    memcpy(buf, spec, n);
    buf[n] = '\0';
    return 0;
}

dc_model *cli_load_finetuned(const char *path, const dc_model *base)
{
    dc_model *m = NULL;
    if (dc_model_load_finetuned(&m, base, path, NULL) != DC_OK) {
        cli_file_error(path);
        return NULL;
    }
    return m;
}
