/* Latent cache file, all integers little-endian (docs/formats.md):
 *   header (108 bytes): "DCLATENT", u32 version, u32 entry count, fingerprint[40],
 *     i32 t0, inv_steps, gen_steps, num_timesteps, f64 beta_start, beta_end,
 *     i32 channels, height, width, u32 reserved (0), u32 CRC32 of the bytes before it
 *   per entry: u32 CRC32 of x0's bytes (the look-up key), u32 CRC32 of the uncompressed
 *     data, u64 compressed size, zlib stream of x0 | x_rec | x_lat (float32). */
#include "latent_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/error.h"
#include "../io/file.h"
#include "../io/limits.h"

#define CACHE_MAGIC "DCLATENT"
enum { CACHE_VERSION = 1, HEADER_SIZE = 108, ENTRY_HEADER_SIZE = 16, MAX_ENTRIES = 1 << 20 };

typedef struct cache_entry {
    uint32_t x0_crc;
    uint32_t data_crc;
    uint8_t *compressed;
    size_t compressed_size;
} cache_entry;

struct latent_cache {
    char *path;
    latent_cache_key key;
    size_t image_floats;             /* channels * height * width */
    cache_entry *entries;
    size_t count;
    size_t capacity;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void put_f64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(p, bits);
}

static double get_f64(const uint8_t *p)
{
    uint64_t bits = get_u64(p);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void encode_header(const latent_cache *c, uint8_t h[HEADER_SIZE])
{
    const latent_cache_key *k = &c->key;
    memset(h, 0, HEADER_SIZE);
    memcpy(h, CACHE_MAGIC, 8);
    put_u32(h + 8, CACHE_VERSION);
    put_u32(h + 12, (uint32_t)c->count);
    memcpy(h + 16, k->model_fingerprint, LATENT_CACHE_FINGERPRINT_SIZE);
    put_u32(h + 56, (uint32_t)k->t0);
    put_u32(h + 60, (uint32_t)k->inv_steps);
    put_u32(h + 64, (uint32_t)k->gen_steps);
    put_u32(h + 68, (uint32_t)k->num_timesteps);
    put_f64(h + 72, k->beta_start);
    put_f64(h + 80, k->beta_end);
    put_u32(h + 88, (uint32_t)k->channels);
    put_u32(h + 92, (uint32_t)k->height);
    put_u32(h + 96, (uint32_t)k->width);
    put_u32(h + 104, (uint32_t)crc32(0, h, 104));
}

/* Names the first field of the file's key that differs from the caller's. */
static int compare_keys(const char *path, const latent_cache_key *file, const latent_cache_key *want)
{
    if (strncmp(file->model_fingerprint, want->model_fingerprint,
                LATENT_CACHE_FINGERPRINT_SIZE) != 0)
        return dci_err(DC_EINVAL, "%s: latent cache was made with another model (fingerprint %s, "
                       "this model %s)", path, file->model_fingerprint, want->model_fingerprint);
#define SAME_INT(field)                                                                    \
    if (file->field != want->field)                                                        \
        return dci_err(DC_EINVAL, "%s: latent cache has " #field " %d, asked for %d", path, \
                       (int)file->field, (int)want->field);
    SAME_INT(t0)
    SAME_INT(inv_steps)
    SAME_INT(gen_steps)
    SAME_INT(num_timesteps)
    SAME_INT(channels)
    if (want->height || want->width) {
        SAME_INT(height)
        SAME_INT(width)
    }
#undef SAME_INT
    if (file->beta_start != want->beta_start || file->beta_end != want->beta_end)
        return dci_err(DC_EINVAL, "%s: latent cache has betas %g..%g, asked for %g..%g", path,
                       file->beta_start, file->beta_end, want->beta_start, want->beta_end);
    return DC_OK;
}

static int valid_size(int32_t channels, int32_t height, int32_t width)
{
    return channels > 0 && height > 0 && width > 0 &&
           (uint64_t)channels * (uint64_t)height * (uint64_t)width <= IO_MAX_IMAGE_PIXELS * 4;
}

/* A size of 0 x 0 is "any": the file's, or the first append's (latent_cache_set_size). */
static int valid_key(const latent_cache_key *k)
{
    return memchr(k->model_fingerprint, '\0', LATENT_CACHE_FINGERPRINT_SIZE) &&
           (valid_size(k->channels, k->height, k->width) ||
            (k->channels > 0 && k->height == 0 && k->width == 0));
}

static void adopt_size(latent_cache *c, int32_t height, int32_t width)
{
    c->key.height = height;
    c->key.width = width;
    c->image_floats = (size_t)c->key.channels * (size_t)height * (size_t)width;
}

int latent_cache_set_size(latent_cache *c, int32_t height, int32_t width)
{
    if (!c)
        return dci_err(DC_EINVAL, "latent_cache_set_size: NULL argument");
    if (c->key.height == 0 && c->key.width == 0) {
        if (!valid_size(c->key.channels, height, width))
            return dci_err(DC_EINVAL, "%s: invalid latent cache image size %dx%d", c->path,
                           (int)height, (int)width);
        adopt_size(c, height, width);
        return DC_OK;
    }
    if (height != c->key.height || width != c->key.width)
        return dci_err(DC_EINVAL, "%s: the latent cache holds %dx%d images, not %dx%d (one "
                       "cache file per image size)", c->path, (int)c->key.height,
                       (int)c->key.width, (int)height, (int)width);
    return DC_OK;
}

void latent_cache_size(const latent_cache *c, int32_t *height, int32_t *width)
{
    *height = c ? c->key.height : 0;
    *width = c ? c->key.width : 0;
}

static int push_entry(latent_cache *c, cache_entry e)
{
    if (c->count == c->capacity) {
        size_t capacity = c->capacity ? 2 * c->capacity : 16;
        cache_entry *grown = realloc(c->entries, capacity * sizeof *grown);
        if (!grown)
            return dci_err(DC_ENOMEM, "%s: out of memory", c->path);
        c->entries = grown;
        c->capacity = capacity;
    }
    c->entries[c->count++] = e;
    return DC_OK;
}

static int parse_file(latent_cache *c, const uint8_t *data, size_t size)
{
    const char *path = c->path;
    if (size < HEADER_SIZE || memcmp(data, CACHE_MAGIC, 8) != 0)
        return dci_err(DC_EFORMAT, "%s: not a libdiffclip latent cache", path);
    if (get_u32(data + 8) != CACHE_VERSION)
        return dci_err(DC_EFORMAT, "%s: latent cache version %u is not supported", path,
                       get_u32(data + 8));
    if (get_u32(data + 104) != (uint32_t)crc32(0, data, 104))
        return dci_err(DC_EFORMAT, "%s: latent cache header is damaged (CRC mismatch)", path);
    latent_cache_key file = {0};
    memcpy(file.model_fingerprint, data + 16, LATENT_CACHE_FINGERPRINT_SIZE);
    file.model_fingerprint[LATENT_CACHE_FINGERPRINT_SIZE - 1] = '\0';
    file.t0 = (int32_t)get_u32(data + 56);
    file.inv_steps = (int32_t)get_u32(data + 60);
    file.gen_steps = (int32_t)get_u32(data + 64);
    file.num_timesteps = (int32_t)get_u32(data + 68);
    file.beta_start = get_f64(data + 72);
    file.beta_end = get_f64(data + 80);
    file.channels = (int32_t)get_u32(data + 88);
    file.height = (int32_t)get_u32(data + 92);
    file.width = (int32_t)get_u32(data + 96);
    DCI_TRY(compare_keys(path, &file, &c->key));
    if (!valid_size(file.channels, file.height, file.width))
        return dci_err(DC_EFORMAT, "%s: latent cache declares %dx%dx%d images", path,
                       (int)file.channels, (int)file.height, (int)file.width);
    adopt_size(c, file.height, file.width);
    uint32_t count = get_u32(data + 12);
    if (count > MAX_ENTRIES)
        return dci_err(DC_EFORMAT, "%s: latent cache declares %u entries", path, count);
    size_t pos = HEADER_SIZE;
    for (uint32_t i = 0; i < count; i++) {
        if (size - pos < ENTRY_HEADER_SIZE)
            return dci_err(DC_EFORMAT, "%s: latent cache is truncated in entry %u", path, i);
        uint64_t compressed_size = get_u64(data + pos + 8);
        if (compressed_size == 0 || compressed_size > size - pos - ENTRY_HEADER_SIZE)
            return dci_err(DC_EFORMAT, "%s: latent cache entry %u overruns the file", path, i);
        cache_entry e = {get_u32(data + pos), get_u32(data + pos + 4), NULL,
                         (size_t)compressed_size};
        e.compressed = malloc(e.compressed_size);
        if (!e.compressed)
            return dci_err(DC_ENOMEM, "%s: out of memory", path);
        memcpy(e.compressed, data + pos + ENTRY_HEADER_SIZE, e.compressed_size);
        if (push_entry(c, e) != DC_OK) {
            free(e.compressed);
            return DC_ENOMEM;
        }
        pos += ENTRY_HEADER_SIZE + e.compressed_size;
    }
    if (pos != size)
        return dci_err(DC_EFORMAT, "%s: latent cache has %zu trailing bytes", path, size - pos);
    return DC_OK;
}

/* An empty cache for `key` that appends to `path`. */
static int cache_new(latent_cache **out, const char *path, const latent_cache_key *key)
{
    *out = NULL;
    if (!valid_key(key))
        return dci_err(DC_EINVAL, "%s: invalid latent cache parameters", path);
    latent_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    c->key = *key;
    c->image_floats = (size_t)key->channels * (size_t)key->height * (size_t)key->width;
    *out = c;
    return DC_OK;
}

int latent_cache_parse_buffer(latent_cache **out, const uint8_t *data, size_t size,
                              const char *path, const latent_cache_key *key)
{
    if (!out || (!data && size) || !path || !key)
        return dci_err(DC_EINVAL, "latent_cache_parse_buffer: NULL argument");
    latent_cache *c;
    DCI_TRY(cache_new(&c, path, key));
    int status = parse_file(c, data, size);
    if (status != DC_OK) {
        latent_cache_free(c);
        return status;
    }
    *out = c;
    return DC_OK;
}

int latent_cache_open(latent_cache **out, const char *path, const latent_cache_key *key)
{
    if (!out || !path || !key)
        return dci_err(DC_EINVAL, "latent_cache_open: NULL argument");
    *out = NULL;
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return cache_new(out, path, key);
    fclose(probe);
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int status = latent_cache_parse_buffer(out, file.data, file.size, path, key);
    io_unmap_file(&file);
    return status;
}

void latent_cache_free(latent_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->count; i++)
        free(cache->entries[i].compressed);
    free(cache->entries);
    free(cache->path);
    free(cache);
}

size_t latent_cache_count(const latent_cache *cache) { return cache ? cache->count : 0; }

static int decompress_entry(const latent_cache *c, size_t index, float *all)
{
    const cache_entry *e = &c->entries[index];
    uLongf length = (uLongf)(3 * c->image_floats * sizeof(float));
    uLongf expected = length;
    if (uncompress((Bytef *)all, &length, e->compressed, (uLong)e->compressed_size) != Z_OK ||
        length != expected || (uint32_t)crc32_z(0, (const Bytef *)all, length) != e->data_crc ||
        (uint32_t)crc32_z(0, (const Bytef *)all, c->image_floats * sizeof(float)) != e->x0_crc)
        return dci_err(DC_EFORMAT, "%s: latent cache entry %zu is damaged", c->path, index);
    return DC_OK;
}

int latent_cache_get(const latent_cache *cache, size_t index, float *x0, float *x_rec,
                     float *x_lat)
{
    if (!cache || index >= cache->count)
        return dci_err(DC_EINVAL, "latent cache entry %zu does not exist", index);
    size_t n = cache->image_floats;
    float *all = malloc(3 * n * sizeof *all);
    if (!all)
        return dci_err(DC_ENOMEM, "%s: out of memory", cache->path);
    int status = decompress_entry(cache, index, all);
    if (status == DC_OK) {
        float *outputs[3] = {x0, x_rec, x_lat};
        for (int k = 0; k < 3; k++)
            if (outputs[k])
                memcpy(outputs[k], all + (size_t)k * n, n * sizeof *all);
    }
    free(all);
    return status;
}

int latent_cache_find(const latent_cache *cache, const float *x0, size_t *index, int *found)
{
    if (!cache || !x0 || !index || !found)
        return dci_err(DC_EINVAL, "latent_cache_find: NULL argument");
    *found = 0;
    size_t n = cache->image_floats;
    uint32_t key = (uint32_t)crc32_z(0, (const Bytef *)x0, n * sizeof *x0);
    float *candidate = NULL;
    for (size_t i = 0; i < cache->count; i++) {
        if (cache->entries[i].x0_crc != key)
            continue;
        if (!candidate && !(candidate = malloc(n * sizeof *candidate)))
            return dci_err(DC_ENOMEM, "%s: out of memory", cache->path);
        int status = latent_cache_get(cache, i, candidate, NULL, NULL);
        if (status != DC_OK) {
            free(candidate);
            return status;
        }
        if (memcmp(candidate, x0, n * sizeof *x0) == 0) {
            *index = i;
            *found = 1;
            break;
        }
    }
    free(candidate);
    return DC_OK;
}

static int write_file(const latent_cache *c)
{
    io_atomic_file file;
    DCI_TRY(io_atomic_begin(&file, c->path));
    uint8_t header[HEADER_SIZE];
    encode_header(c, header);
    int status = io_atomic_write(&file, header, sizeof header);
    for (size_t i = 0; status == DC_OK && i < c->count; i++) {
        const cache_entry *e = &c->entries[i];
        uint8_t entry_header[ENTRY_HEADER_SIZE];
        put_u32(entry_header, e->x0_crc);
        put_u32(entry_header + 4, e->data_crc);
        put_u64(entry_header + 8, e->compressed_size);
        status = io_atomic_write(&file, entry_header, sizeof entry_header);
        if (status == DC_OK)
            status = io_atomic_write(&file, e->compressed, e->compressed_size);
    }
    if (status != DC_OK) {
        io_atomic_abort(&file);
        return status;
    }
    return io_atomic_commit(&file);
}

int latent_cache_append(latent_cache *cache, const float *x0, const float *x_rec,
                        const float *x_lat)
{
    if (!cache || !x0 || !x_rec || !x_lat)
        return dci_err(DC_EINVAL, "latent_cache_append: NULL argument");
    if (cache->count >= MAX_ENTRIES)
        return dci_err(DC_ENOMEM, "%s: latent cache is full (%d entries)", cache->path,
                       MAX_ENTRIES);
    size_t n = cache->image_floats, bytes = 3 * n * sizeof(float);
    float *all = malloc(bytes);
    uLongf bound = compressBound((uLong)bytes);
    cache_entry e = {0};
    e.compressed = malloc(bound);
    if (!all || !e.compressed) {
        free(all);
        free(e.compressed);
        return dci_err(DC_ENOMEM, "%s: out of memory", cache->path);
    }
    memcpy(all, x0, n * sizeof(float));
    memcpy(all + n, x_rec, n * sizeof(float));
    memcpy(all + 2 * n, x_lat, n * sizeof(float));
    e.x0_crc = (uint32_t)crc32_z(0, (const Bytef *)x0, n * sizeof(float));
    e.data_crc = (uint32_t)crc32_z(0, (const Bytef *)all, bytes);
    int z = compress2(e.compressed, &bound, (const Bytef *)all, (uLong)bytes, Z_DEFAULT_COMPRESSION);
    free(all);
    if (z != Z_OK) {
        free(e.compressed);
        return dci_err(DC_EINTERNAL, "%s: compression failed", cache->path);
    }
    e.compressed_size = bound;
    int status = push_entry(cache, e);
    if (status != DC_OK) {
        free(e.compressed);
        return status;
    }
    status = write_file(cache);
    if (status != DC_OK) {
        /* Keep memory and file in agreement: the entry was not saved. */
        cache->count--;
        free(e.compressed);
    }
    return status;
}

void latent_cache_fingerprint(const dc_named_tensor *tensors, size_t count,
                              char out[LATENT_CACHE_FINGERPRINT_SIZE])
{
    uLong layout = crc32(0, Z_NULL, 0), data = crc32(0, Z_NULL, 0);
    uLong check = adler32(0, Z_NULL, 0);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const dc_tensor *t = &tensors[i].tensor;
        layout = crc32(layout, (const Bytef *)tensors[i].name, (uInt)strlen(tensors[i].name));
        layout = crc32(layout, (const Bytef *)&t->dtype, sizeof t->dtype);
        layout = crc32(layout, (const Bytef *)t->shape, (uInt)((size_t)t->ndim * sizeof t->shape[0]));
        size_t bytes = (size_t)dc_tensor_numel(t) * dc_dtype_size(t->dtype);
        for (size_t off = 0; off < bytes;) {
            /* zlib's length arguments are 32-bit. */
            uInt chunk = (uInt)(bytes - off > (1u << 30) ? (1u << 30) : bytes - off);
            data = crc32(data, (const Bytef *)t->data + off, chunk);
            check = adler32(check, (const Bytef *)t->data + off, chunk);
            off += chunk;
        }
        total += bytes;
    }
    snprintf(out, LATENT_CACHE_FINGERPRINT_SIZE, "%08lx%08lx%08lx-%llx", layout, data, check,
             (unsigned long long)total);
}

int latent_cache_fingerprint_state_dict(const io_state_dict *sd,
                                        char out[LATENT_CACHE_FINGERPRINT_SIZE])
{
    dc_named_tensor *named;
    DCI_TRY(io_state_dict_named(sd, &named));
    latent_cache_fingerprint(named, sd->count, out);
    free(named);
    return DC_OK;
}
