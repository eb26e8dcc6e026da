/* UNet loading (name index, checked weight upload, architecture dispatch), the layers both
 * architectures share, and the forward entry point. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "unet_internal.h"

static const char *kind_name(nn_unet_kind kind) { return kind == NN_UNET_DDPM ? "DDPM" : "ADM"; }

/* ---- the name index ---- */

static int key_compare(const void *a, const void *b)
{
    return strcmp(((const unet_key *)a)->name, ((const unet_key *)b)->name);
}

static const unet_key *find_key(const unet_loader *L, const char *name)
{
    unet_key probe = {.name = name};
    return bsearch(&probe, L->sorted, L->m->count, sizeof *L->sorted, key_compare);
}

const dc_tensor *unet_find(const unet_loader *L, const char *name)
{
    const unet_key *k = find_key(L, name);
    return k ? &L->sd->tensors[k->index].value : NULL;
}

int unet_has_prefix(const unet_loader *L, const char *prefix)
{
    /* The first name >= prefix is the only candidate in sorted order. */
    size_t lo = 0, hi = L->m->count, len = strlen(prefix);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(L->sorted[mid].name, prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < L->m->count && strncmp(L->sorted[lo].name, prefix, len) == 0;
}

const char *unet_name(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, UNET_NAME_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

int unet_count(const unet_loader *L, const char *fmt, int max, int *count)
{
    char name[UNET_NAME_MAX];
    int i = 0;
    for (;;) {
        /* fmt is one of the architectures' literal patterns with a single %d. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(name, sizeof name, fmt, i);
#pragma GCC diagnostic pop
        if (!unet_has_prefix(L, name))
            break;
        if (++i > max)
            return dci_err(DC_EFORMAT, "%s: more than %d blocks named like '%s'", L->label, max,
                           name);
    }
    *count = i;
    return DC_OK;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static int missing(const unet_loader *L, const char *name)
{
    return dci_err(DC_EFORMAT, "%s: missing key '%s' (%s UNet)", L->label, name,
                   kind_name(L->m->info.kind));
}

int unet_dim(const unet_loader *L, const char *name, int ndim, int dim, int64_t *out)
{
    const dc_tensor *t = unet_find(L, name);
    if (!t)
        return missing(L, name);
    if (t->ndim != ndim) {
        char got[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        return dci_err(DC_EFORMAT, "%s: key '%s' has shape %s, expected %d dimensions",
                       L->label, name, got, ndim);
    }
    *out = t->shape[dim];
    return DC_OK;
}

static int is_floating(dc_dtype dtype)
{
    return dtype == DC_FLOAT32 || dtype == DC_FLOAT16 || dtype == DC_BFLOAT16 ||
           dtype == DC_FLOAT64;
}

int unet_take(unet_loader *L, ct_tensor **out, const char *name, int ndim,
              const int64_t *shape)
{
    const unet_key *k = find_key(L, name);
    if (!k)
        return missing(L, name);
    const dc_tensor *t = &L->sd->tensors[k->index].value;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return dci_err(DC_EFORMAT, "%s: key '%s' has shape %s, expected %s", L->label, name,
                       got, want);
    }
    if (!is_floating(t->dtype))
        return dci_err(DC_EFORMAT, "%s: key '%s' is %s, expected a floating-point tensor",
                       L->label, name, dc_dtype_name(t->dtype) ? dc_dtype_name(t->dtype) : "?");
    nn_unet *m = L->m;
    if (L->used[k->index])
        return dci_err(DC_EINTERNAL, "%s: key '%s' taken twice", L->label, name);
    ct_tensor *host = NULL, *dev = NULL;
    DCI_TRY(ct_from_host(&host, t->data, t->dtype, t->ndim, t->shape, m->device));
    if (t->dtype == m->dtype) {
        dev = host;
    } else {
        int status = ct_to(&dev, host, m->dtype, m->device);
        ct_free(host);
        if (status != DC_OK)
            return status;
    }
    if (ndim == 4) {
        /* Convolution weights channels-last, as the activations (see forward_in_pool). */
        ct_tensor *cl = NULL;
        int status = ct_to_channels_last(&cl, dev);
        ct_free(dev);
        if (status != DC_OK)
            return status;
        dev = cl;
    }
    m->tensors[k->index] = dev;
    L->used[k->index] = 1;
    *out = dev;
    return DC_OK;
}

int unet_take_norm(unet_loader *L, unet_affine *a, const char *prefix, int64_t channels)
{
    char name[UNET_NAME_MAX];
    if (channels % UNET_GROUPS != 0)
        return dci_err(DC_EFORMAT,
                       "%s: '%s' normalises %lld channels, which %d groups do not divide",
                       L->label, prefix, (long long)channels, UNET_GROUPS);
    int64_t shape[1] = {channels};
    DCI_TRY(unet_take(L, &a->w, unet_name(name, "%s.weight", prefix), 1, shape));
    return unet_take(L, &a->b, unet_name(name, "%s.bias", prefix), 1, shape);
}

static int take_weight_bias(unet_loader *L, unet_affine *a, const char *prefix, int ndim,
                            const int64_t *shape)
{
    char name[UNET_NAME_MAX];
    DCI_TRY(unet_take(L, &a->w, unet_name(name, "%s.weight", prefix), ndim, shape));
    return unet_take(L, &a->b, unet_name(name, "%s.bias", prefix), 1, shape);
}

int unet_take_linear(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                     int64_t in)
{
    int64_t shape[2] = {out, in};
    return take_weight_bias(L, a, prefix, 2, shape);
}

int unet_take_conv(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                   int64_t in, int kernel)
{
    int64_t shape[4] = {out, in, kernel, kernel};
    return take_weight_bias(L, a, prefix, 4, shape);
}

int unet_take_conv1d(unet_loader *L, unet_affine *a, const char *prefix, int64_t out,
                     int64_t in)
{
    int64_t shape[3] = {out, in, 1};
    return take_weight_bias(L, a, prefix, 3, shape);
}

/* ---- layers ---- */

int unet_pool_end(size_t mark, int status, ct_tensor **result)
{
    ct_pool_end(mark, status == DC_OK ? result : NULL, status == DC_OK ? 1 : 0);
    return status;
}

/* GroupNorm (then SiLU when `silu`) computed in float32 whatever x's dtype, the result in
 * x's dtype: LibTorch 1.13's bfloat16 GroupNorm on channels-last tensors loses most of its
 * precision (an error of 0.8 on unit-scale data, docs/performance.md), and guided-diffusion's
 * GroupNorm32 computes in float32 too. */
static int group_norm(ct_tensor **out, const ct_tensor *x, const unet_affine *a, double eps,
                      int silu)
{
    dc_dtype dtype = ct_dtype(x);
    int device = ct_device(x);
    ct_tensor *h;
    if (dtype == DC_FLOAT32 || dtype == DC_FLOAT64) {
        DCI_TRY(ct_group_norm(&h, x, UNET_GROUPS, a->w, a->b, eps));
        if (!silu) {
            *out = h;
            return DC_OK;
        }
        return unet_silu(out, h);
    }
    ct_tensor *x32, *w32, *b32;
    DCI_TRY(ct_to(&x32, x, DC_FLOAT32, device));
    DCI_TRY(ct_to(&w32, a->w, DC_FLOAT32, device));
    DCI_TRY(ct_to(&b32, a->b, DC_FLOAT32, device));
    DCI_TRY(ct_group_norm(&h, x32, UNET_GROUPS, w32, b32, eps));
    if (silu)
        DCI_TRY(unet_silu(&h, h));
    return ct_to(out, h, dtype, device);
}

int unet_gn(ct_tensor **out, const ct_tensor *x, const unet_affine *a, double eps)
{
    return group_norm(out, x, a, eps, 0);
}

int unet_gn_silu(ct_tensor **out, const ct_tensor *x, const unet_affine *a, double eps)
{
    return group_norm(out, x, a, eps, 1);
}

/* Outside autograd nothing keeps a fresh result for a backward pass: update it in place,
 * which saves an allocation and a pass over memory per op. */
int unet_silu(ct_tensor **out, ct_tensor *fresh)
{
    if (ct_grad_enabled())
        return ct_silu(out, fresh);
    DCI_TRY(ct_silu_(fresh));
    *out = fresh;
    return DC_OK;
}

int unet_add(ct_tensor **out, ct_tensor *fresh, const ct_tensor *other)
{
    if (ct_grad_enabled())
        return ct_add(out, fresh, other);
    DCI_TRY(ct_add_(fresh, other, 1.0));
    *out = fresh;
    return DC_OK;
}

int unet_mul(ct_tensor **out, ct_tensor *fresh, const ct_tensor *other)
{
    if (ct_grad_enabled())
        return ct_mul(out, fresh, other);
    DCI_TRY(ct_mul_(fresh, other));
    *out = fresh;
    return DC_OK;
}

int unet_conv(ct_tensor **out, const ct_tensor *x, const unet_affine *a, int stride,
              int padding)
{
    return ct_conv2d(out, x, a->w, a->b, stride, padding);
}

int unet_timestep_embedding(ct_tensor **out, const ct_tensor *t, int dim, nn_unet_kind kind)
{
    int half = dim / 2;
    int device = ct_device(t);
    float *index = malloc((size_t)half * sizeof *index);
    if (!index)
        return dci_err(DC_ENOMEM, "timestep embedding: out of memory");
    for (int i = 0; i < half; i++)
        index[i] = (float)i;
    int64_t shape[2] = {half};
    ct_tensor *arange, *exponent, *freqs, *t_col, *args, *sin_part, *cos_part;
    int status = ct_from_host(&arange, index, DC_FLOAT32, 1, shape, device);
    free(index);
    DCI_TRY(status);
    /* The float32 operations of the references, in their order. */
    if (kind == NN_UNET_DDPM) {
        DCI_TRY(ct_mul_scalar(&exponent, arange, -(log(10000.0) / (half - 1))));
    } else {
        ct_tensor *scaled, *divisor;
        DCI_TRY(ct_mul_scalar(&scaled, arange, -log(10000.0)));
        DCI_TRY(ct_scalar(&divisor, (double)half, DC_FLOAT32, device));
        DCI_TRY(ct_div(&exponent, scaled, divisor));
    }
    DCI_TRY(ct_exp(&freqs, exponent));
    int64_t col[2] = {ct_size(t, 0), 1}, row[2] = {1, half};
    ct_tensor *freq_row;
    DCI_TRY(ct_reshape(&t_col, t, 2, col));
    DCI_TRY(ct_reshape(&freq_row, freqs, 2, row));
    DCI_TRY(ct_mul(&args, t_col, freq_row));
    DCI_TRY(ct_sin(&sin_part, args));
    DCI_TRY(ct_cos(&cos_part, args));
    ct_tensor *parts[3];
    size_t nparts = 2;
    parts[0] = kind == NN_UNET_DDPM ? sin_part : cos_part;
    parts[1] = kind == NN_UNET_DDPM ? cos_part : sin_part;
    if (dim % 2) {                                  /* both references pad a zero column */
        int64_t zshape[2] = {ct_size(t, 0), 1};
        DCI_TRY(ct_zeros(&parts[2], DC_FLOAT32, 2, zshape, device));
        nparts = 3;
    }
    return ct_cat(out, parts, nparts, 1);
}

/* ---- loading ---- */

static int build_index(unet_loader *L)
{
    nn_unet *m = L->m;
    const io_state_dict *sd = L->sd;
    m->count = sd->count;
    m->names = calloc(sd->count ? sd->count : 1, sizeof *m->names);
    m->tensors = calloc(sd->count ? sd->count : 1, sizeof *m->tensors);
    L->sorted = calloc(sd->count ? sd->count : 1, sizeof *L->sorted);
    L->used = calloc(sd->count ? sd->count : 1, 1);
    if (!m->names || !m->tensors || !L->sorted || !L->used)
        return dci_err(DC_ENOMEM, "%s: out of memory indexing %zu tensors", L->label, sd->count);
    static const char prefix[] = "module.";         /* nn.DataParallel's wrapper */
    for (size_t i = 0; i < sd->count; i++) {
        const char *name = sd->tensors[i].name ? sd->tensors[i].name : "";
        if (strncmp(name, prefix, sizeof prefix - 1) == 0)
            name += sizeof prefix - 1;
        m->names[i] = strdup(name);
        if (!m->names[i])
            return dci_err(DC_ENOMEM, "%s: out of memory", L->label);
        L->sorted[i].name = m->names[i];
        L->sorted[i].index = i;
    }
    qsort(L->sorted, sd->count, sizeof *L->sorted, key_compare);
    for (size_t i = 1; i < sd->count; i++)
        if (strcmp(L->sorted[i - 1].name, L->sorted[i].name) == 0)
            return dci_err(DC_EFORMAT, "%s: key '%s' appears twice", L->label,
                           L->sorted[i].name);
    return DC_OK;
}

/* guided-diffusion's model_defaults / create_model: the channel multipliers of each image
 * size it supports. */
static const struct {
    int size, levels;
    double mult[7];
} ADM_DEFAULT_MULT[] = {
    {512, 7, {0.5, 1, 1, 2, 2, 4, 4}},
    {256, 6, {1, 1, 2, 2, 4, 4}},
    {128, 5, {1, 1, 2, 3, 4}},
    {64, 4, {1, 2, 3, 4}},
};

int nn_unet_weights_image_size(const nn_unet_info *info)
{
    if (info->kind == NN_UNET_DDPM) {
        /* Every published DDPM config (CelebA-HQ, LSUN, CIFAR-10) has attention at 16 x 16
         * only, so one attention level places the image size. */
        int level = -1, count = 0;
        for (int l = 0; l < info->levels; l++)
            if (info->attention[l]) {
                level = l;
                count++;
            }
        return count == 1 ? 16 << level : 0;
    }
    for (size_t i = 0; i < sizeof ADM_DEFAULT_MULT / sizeof *ADM_DEFAULT_MULT; i++) {
        int same = ADM_DEFAULT_MULT[i].levels == info->levels;
        for (int l = 0; same && l < info->levels; l++)
            same = info->channel_mult[l] == ADM_DEFAULT_MULT[i].mult[l];
        if (same)
            return ADM_DEFAULT_MULT[i].size;
    }
    return 0;
}

int nn_unet_check_image_size(const nn_unet_info *info, int size, const char *label)
{
    int factor = 1 << (info->levels - 1);
    if (size < factor || size % factor || size > 16384)
        return dci_err(DC_EINVAL, "%s: image size %d does not suit this UNet: %d levels need a "
                       "multiple of %d", label, size, info->levels, factor);
    return DC_OK;
}

static void set_image_size(nn_unet *m, int size)
{
    nn_unet_info *info = &m->info;
    info->image_size = size;
    info->attention_count = 0;
    for (int l = 0; size > 0 && l < info->levels; l++)
        if (info->attention[l])
            info->attention_resolutions[info->attention_count++] = size >> l;
}

static int finish_info(nn_unet *m, const nn_unet_options *opts, const char *label)
{
    nn_unet_info *info = &m->info;
    info->tensor_count = m->count;
    info->param_count = 0;
    for (size_t i = 0; i < m->count; i++)
        info->param_count += ct_numel(m->tensors[i]);
    for (int l = 0; l < info->levels; l++)
        info->channel_mult[l] = (double)info->level_channels[l] / info->base_channels;
    info->learn_sigma = info->out_channels == 2 * info->in_channels;
    info->image_size = opts && opts->image_size > 0 ? opts->image_size
                                                     : nn_unet_weights_image_size(info);
    if (info->image_size)
        DCI_TRY(nn_unet_check_image_size(info, info->image_size, label));
    set_image_size(m, info->image_size);
    return DC_OK;
}


int nn_unet_load(nn_unet **out, const io_state_dict *sd, const char *label, int device,
                 dc_dtype dtype, const nn_unet_options *opts)
{
    if (!out || !sd || (sd->count && !sd->tensors))
        return dci_err(DC_EINVAL, "unet: NULL argument");
    *out = NULL;
    if (!label)
        label = "state dict";
    if (!is_floating(dtype))
        return dci_err(DC_EINVAL, "%s: the UNet dtype must be floating point, not %s", label,
                       dc_dtype_name(dtype) ? dc_dtype_name(dtype) : "unknown");
    if (opts && (opts->head_channels < -1 || opts->image_size < 0 ||
                 (opts->head_channels == -1 && opts->num_heads < 1)))
        return dci_err(DC_EINVAL,
                       "%s: bad UNet options (head_channels %d, num_heads %d, image_size %d)",
                       label, opts->head_channels, opts->num_heads, opts->image_size);

    /* A pool's mark is its depth: a non-zero one means the caller has a pool open, which
     * would free the weights when it ends. */
    size_t depth = ct_pool_begin();
    ct_pool_end(depth, NULL, 0);
    if (depth > 0)
        return dci_err(DC_EINVAL, "%s: load the UNet with no ctorch pool open (the pool would "
                       "free its weights)", label);

    nn_unet *m = calloc(1, sizeof *m);
    if (!m)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    m->device = device;
    m->dtype = dtype;
    unet_loader L = {.sd = sd, .label = label, .m = m};
    int status = build_index(&L);
    if (status == DC_OK) {
        if (unet_find(&L, "temb.dense.0.weight")) {
            m->info.kind = NN_UNET_DDPM;
            status = ddpm_unet_build(&L, opts);
        } else if (unet_find(&L, "time_embed.0.weight")) {
            m->info.kind = NN_UNET_ADM;
            status = adm_unet_build(&L, opts);
        } else {
            status = dci_err(DC_EFORMAT,
                             "%s: not a diffusion UNet: no key 'temb.dense.0.weight' (DDPM) or "
                             "'time_embed.0.weight' (ADM); first key '%s'",
                             label, sd->count ? m->names[0] : "(none)");
        }
    }
    for (size_t i = 0; status == DC_OK && i < sd->count; i++)
        if (!L.used[i])
            status = dci_err(DC_EFORMAT, "%s: unexpected key '%s' for this %s UNet", label,
                             m->names[i], kind_name(m->info.kind));
    free(L.sorted);
    free(L.used);
    if (status == DC_OK)
        status = finish_info(m, opts, label);
    if (status != DC_OK) {
        nn_unet_free(m);
        return status;
    }
    *out = m;
    return DC_OK;
}

void nn_unet_free(nn_unet *m)
{
    if (!m)
        return;
    if (m->net) {
        if (m->info.kind == NN_UNET_DDPM)
            ddpm_unet_free_net(m->net);
        else
            adm_unet_free_net(m->net);
    }
    for (size_t i = 0; i < m->count; i++) {
        ct_free(m->tensors ? m->tensors[i] : NULL);
        free(m->names ? m->names[i] : NULL);
    }
    free(m->tensors);
    free(m->names);
    free(m);
}

const nn_unet_info *nn_unet_get_info(const nn_unet *m) { return m ? &m->info : NULL; }
int nn_unet_device(const nn_unet *m) { return m->device; }
dc_dtype nn_unet_dtype(const nn_unet *m) { return m->dtype; }
size_t nn_unet_tensor_count(const nn_unet *m) { return m ? m->count : 0; }

const char *nn_unet_tensor_name(const nn_unet *m, size_t i)
{
    return m && i < m->count ? m->names[i] : NULL;
}

ct_tensor *nn_unet_tensor(const nn_unet *m, size_t i)
{
    return m && i < m->count ? m->tensors[i] : NULL;
}

/* ---- copies ---- */

int nn_unet_export(const nn_unet *m, io_state_dict *out)
{
    if (!m || !out)
        return dci_err(DC_EINVAL, "unet export: NULL argument");
    memset(out, 0, sizeof *out);
    out->container = DC_CONTAINER_TORCH_ZIP;
    out->tensors = calloc(m->count ? m->count : 1, sizeof *out->tensors);
    if (!out->tensors)
        return dci_err(DC_ENOMEM, "unet export: out of memory");
    for (size_t i = 0; i < m->count; i++) {
        io_tensor *t = &out->tensors[i];
        out->count = i + 1;
        t->value.dtype = m->dtype;
        t->value.ndim = ct_ndim(m->tensors[i]);
        for (int d = 0; d < t->value.ndim && d < DC_MAX_DIMS; d++)
            t->value.shape[d] = ct_size(m->tensors[i], d);
        size_t bytes = (size_t)ct_numel(m->tensors[i]) * dc_dtype_size(m->dtype);
        t->name = strdup(m->names[i]);
        t->value.data = bytes ? malloc(bytes) : NULL;
        int status = t->name && (t->value.data || !bytes)
                         ? ct_to_host(m->tensors[i], t->value.data, bytes)
                         : dci_err(DC_ENOMEM, "unet export: out of memory for '%s'",
                                   m->names[i]);
        if (status != DC_OK) {
            io_state_dict_free(out);
            return status;
        }
    }
    return DC_OK;
}

/* Same names and shapes, in any order (state dicts of one architecture usually share their
 * order, which makes the first probe hit). */
static int check_same_tensors(const nn_unet *a, const nn_unet *like, const char *label)
{
    if (a->count != like->count)
        return dci_err(DC_EFORMAT, "%s: %zu tensors, the base model has %zu", label, a->count,
                       like->count);
    for (size_t i = 0; i < like->count; i++) {
        size_t j = i;
        if (strcmp(a->names[j], like->names[i]) != 0)
            for (j = 0; j < a->count && strcmp(a->names[j], like->names[i]) != 0; j++)
                ;
        if (j == a->count)
            return dci_err(DC_EFORMAT, "%s: no tensor '%s' of the base model", label,
                           like->names[i]);
        int same = ct_ndim(a->tensors[j]) == ct_ndim(like->tensors[i]);
        for (int d = 0; same && d < ct_ndim(like->tensors[i]); d++)
            same = ct_size(a->tensors[j], d) == ct_size(like->tensors[i], d);
        if (!same)
            return dci_err(DC_EFORMAT, "%s: tensor '%s' has another shape than the base "
                           "model's", label, like->names[i]);
    }
    return DC_OK;
}

int nn_unet_load_like(nn_unet **out, const io_state_dict *sd, const char *label,
                      const nn_unet *like, int device, dc_dtype dtype)
{
    if (!out || !like)
        return dci_err(DC_EINVAL, "unet: NULL argument");
    *out = NULL;
    const nn_unet_info *info = &like->info;
    nn_unet_options o = {.image_size = info->image_size};
    if (info->kind == NN_UNET_ADM && info->head_channels > 0) {
        o.head_channels = info->head_channels;
    } else if (info->kind == NN_UNET_ADM) {
        o.head_channels = -1;
        o.num_heads = info->num_heads;
    }
    nn_unet *m = NULL;
    DCI_TRY(nn_unet_load(&m, sd, label, device, dtype, &o));
    int status = m->info.kind == info->kind
                     ? check_same_tensors(m, like, label ? label : "state dict")
                     : dci_err(DC_EFORMAT, "%s: a %s UNet, the base model is %s", label,
                               kind_name(m->info.kind), kind_name(info->kind));
    if (status != DC_OK) {
        nn_unet_free(m);
        return status;
    }
    *out = m;
    return DC_OK;
}

int nn_unet_clone(nn_unet **out, const nn_unet *m, int device, dc_dtype dtype)
{
    if (!out || !m)
        return dci_err(DC_EINVAL, "unet clone: NULL argument");
    *out = NULL;
    io_state_dict sd;
    DCI_TRY(nn_unet_export(m, &sd));
    int status = nn_unet_load_like(out, &sd, "a copy of the UNet", m, device, dtype);
    io_state_dict_free(&sd);
    return status;
}

/* ---- forward ---- */

static int check_inputs(const nn_unet *m, const ct_tensor *x, const ct_tensor *t)
{
    const nn_unet_info *info = &m->info;
    if (ct_ndim(x) != 4 || ct_size(x, 1) != info->in_channels)
        return dci_err(DC_EINVAL, "unet: x must be (N, %d, H, W), got %d dimensions%s",
                       info->in_channels, ct_ndim(x),
                       ct_ndim(x) == 4 ? " with another channel count" : "");
    int64_t n = ct_size(x, 0), h = ct_size(x, 2), w = ct_size(x, 3);
    int64_t unit = (int64_t)1 << (info->levels - 1);
    if (n < 1 || h < 1 || w < 1 || h % unit || w % unit)
        return dci_err(DC_EINVAL,
                       "unet: x is %lldx%lld (batch %lld); sides must be positive multiples of "
                       "%lld for %d levels",
                       (long long)h, (long long)w, (long long)n, (long long)unit, info->levels);
    if (ct_ndim(t) != 1 || ct_size(t, 0) != n)
        return dci_err(DC_EINVAL, "unet: t must hold one timestep per sample (%lld)",
                       (long long)n);
    return DC_OK;
}

/* The activations are channels-last (NHWC in memory) from the input on, so that oneDNN's
 * convolutions read and write them without reordering to and from their blocked layout;
 * the output is handed back contiguous (NCHW), in x's dtype. */
static int forward_in_pool(nn_unet *m, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    const ct_tensor *tin = t;
    ct_tensor *xin, *moved, *y;
    if (ct_dtype(x) != m->dtype || ct_device(x) != m->device)
        DCI_TRY(ct_to(&moved, x, m->dtype, m->device));
    else
        moved = (ct_tensor *)x;
    DCI_TRY(ct_to_channels_last(&xin, moved));
    if (ct_dtype(t) != DC_FLOAT32 || ct_device(t) != m->device) {
        DCI_TRY(ct_to(&moved, t, DC_FLOAT32, m->device));
        tin = moved;
    }
    if (m->info.kind == NN_UNET_DDPM)
        DCI_TRY(ddpm_unet_forward(m, xin, tin, &y));
    else
        DCI_TRY(adm_unet_forward(m, xin, tin, &y));
    if (ct_dtype(y) != ct_dtype(x))
        DCI_TRY(ct_to(&y, y, ct_dtype(x), ct_device(y)));
    return ct_contiguous(out, y);
}

int nn_unet_forward(nn_unet *m, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    if (!m || !x || !t || !out)
        return dci_err(DC_EINVAL, "unet: NULL argument");
    *out = NULL;
    DCI_TRY(check_inputs(m, x, t));
    size_t mark = ct_pool_begin();
    ct_tensor *y = NULL;
    int status = forward_in_pool(m, x, t, &y);
    DCI_TRY(unet_pool_end(mark, status, &y));
    *out = y;
    return DC_OK;
}

int nn_unet_eps(void *model, const ct_tensor *x, const ct_tensor *t, ct_tensor **out)
{
    return nn_unet_forward(model, x, t, out);
}
