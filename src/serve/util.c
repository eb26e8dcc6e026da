/* Buffers, JSON text, replies, form fields, temporary files and images of the serve module. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/strip.h"
#include "internal.h"

/* ---- buffers ---- */

void sv_buf_add(sv_buf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sv_buf_printf(sv_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sv_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sv_buf_add(b, big, (size_t)n);
    free(big);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if there is none. */
static int utf8_length(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    int n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

void sv_buf_json_string(sv_buf *b, const char *s)
{
    sv_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sv_buf_add(b, esc, 2);
            p++;
        } else if (*p < 0x20) {
            sv_buf_printf(b, "\\u%04x", *p);
            p++;
        } else {
            int n = utf8_length(p);
            if (n) {
                sv_buf_add(b, p, (size_t)n);
                p += n;
            } else {
                sv_buf_add(b, "\xEF\xBF\xBD", 3);
                p++;
            }
        }
    }
    sv_buf_add(b, "\"", 1);
}

void sv_buf_free(sv_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- replies ---- */

int sv_error(sv_reply *r, unsigned status, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    sv_buf_free(&r->body);
    r->status = status;
    r->content_type = "application/json";
    sv_buf_add(&r->body, "{\"error\": ", 10);
    sv_buf_json_string(&r->body, message);
    sv_buf_add(&r->body, "}\n", 2);
    return -1;
}

unsigned sv_status_for(dc_status s)
{
    switch (s) {
    case DC_EINVAL:
    case DC_EFORMAT:
        return 400;
    case DC_ENOMEM:
        return 413;
    default:
        return 500;
    }
}

/* ---- form fields ---- */

const sv_part *sv_form_part(const sv_form *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->parts[i].name, name) == 0)
            return &f->parts[i];
    return NULL;
}

const char *sv_form_field(const sv_form *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (!f->parts[i].filename && strcmp(f->parts[i].name, name) == 0)
            return f->parts[i].value.data ? f->parts[i].value.data : "";
    return NULL;
}

int sv_form_int(const sv_form *f, const char *name, int def, int lo, int hi, int *out,
                sv_reply *r)
{
    const char *v = sv_form_field(f, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return sv_error(r, 400, "%s: an integer in %d..%d, not '%.40s'", name, lo, hi, v);
    *out = (int)n;
    return 0;
}

int sv_form_double(const sv_form *f, const char *name, double def, double lo, double hi,
                   double *out, sv_reply *r)
{
    const char *v = sv_form_field(f, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi)
        return sv_error(r, 400, "%s: a number in %g..%g, not '%.40s'", name, lo, hi, v);
    *out = x;
    return 0;
}

void sv_form_free(sv_form *f)
{
    for (int i = 0; i < f->count; i++) {
        free(f->parts[i].name);
        free(f->parts[i].filename);
        sv_buf_free(&f->parts[i].value);
    }
    f->count = 0;
}

/* ---- files ---- */

void sv_temp_path(const char *ext, char *path, size_t size)
{
    static unsigned long counter;
    unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(path, size, "%s/%lu%s", sv_the_server->temp_dir, n, ext);
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

static int read_file(const char *path, sv_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sv_buf_add(out, chunk, n);
    int ok = !ferror(f) && !out->failed;
    fclose(f);
    return ok ? 0 : -1;
}

int sv_decode_image(const sv_buf *bytes, int max_side, dc_image *out, sv_reply *r)
{
    int w, h;
    if (!bytes->len ||
        sv_image_header_size((const unsigned char *)bytes->data, bytes->len, &w, &h) != 0)
        return sv_error(r, 400, "image: not a PNG or JPEG file");
    if (w > max_side || h > max_side)
        return sv_error(r, 413, "image: %d x %d pixels, over the limit of %d per side", w, h,
                        max_side);
    char path[4096];
    sv_temp_path(".img", path, sizeof path);
    if (write_file(path, bytes->data, bytes->len) != 0) {
        unlink(path);
        return sv_error(r, 500, "cannot write a temporary file: %s", strerror(errno));
    }
    dc_status s = dc_image_read(path, out);
    unlink(path);
    if (s != DC_OK) {
        /* The message names the temporary file; the client knows it as "image". */
        const char *message = dc_last_error();
        size_t n = strlen(path);
        if (strncmp(message, path, n) == 0 && message[n] == ':')
            message += n + 1 + (message[n + 1] == ' ');
        return sv_error(r, sv_status_for(s) == 500 ? 500 : 400, "image: %s", message);
    }
    return 0;
}

int sv_reply_png_strip(sv_reply *r, const dc_tensor *const *tensors, int count)
{
    dc_image strip;
    dc_status s = client_compose_strip(tensors, count, &strip);
    if (s != DC_OK)
        return sv_error(r, 500, "cannot compose the images (%s)", dc_status_name(s));
    char path[4096];
    sv_temp_path(".png", path, sizeof path);
    s = dc_image_write(path, &strip);
    dc_image_free(&strip);
    if (s != DC_OK) {
        unlink(path);
        return sv_error(r, 500, "%s", dc_last_error());
    }
    sv_buf_free(&r->body);
    int failed = read_file(path, &r->body);
    unlink(path);
    if (failed)
        return sv_error(r, 500, "cannot read back the PNG");
    r->status = 200;
    r->content_type = "image/png";
    return 0;
}

int sv_valid_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || name[0] == '.')
        return 0;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") == n;
}

char *sv_resolve_in_dir(const char *real_dir, const char *name)
{
    size_t n = strlen(real_dir) + strlen(name) + 2;
    char *joined = malloc(n);
    if (!joined)
        return NULL;
    snprintf(joined, n, "%s/%s", real_dir, name);
    char *real = realpath(joined, NULL);
    free(joined);
    size_t d = strlen(real_dir);
    struct stat st;
    if (real && strncmp(real, real_dir, d) == 0 && real[d] == '/' && stat(real, &st) == 0 &&
        S_ISREG(st.st_mode))
        return real;
    free(real);
    errno = ENOENT;
    return NULL;
}
