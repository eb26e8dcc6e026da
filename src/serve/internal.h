/* What the serve module's files share: the server state, request parts, buffers, JSON. */
#ifndef DC_SRC_SERVE_INTERNAL_H
#define DC_SRC_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"
#include "image_header.h"
#include "serve.h"

/* ---- growable byte buffers and JSON text ---- */

typedef struct sv_buf {
    char *data;
    size_t len, cap;
    int failed;                      /* an allocation failed: the content is incomplete */
} sv_buf;

void sv_buf_add(sv_buf *b, const void *data, size_t n);
void sv_buf_printf(sv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of s (quotes included; invalid UTF-8 bytes become U+FFFD). */
void sv_buf_json_string(sv_buf *b, const char *s);
void sv_buf_free(sv_buf *b);

/* ---- an HTTP outcome: a status and either a JSON body or another body ---- */

typedef struct sv_reply {
    unsigned status;                 /* 0: none yet; the connection is dropped if it stays 0 */
    const char *content_type;
    sv_buf body;
    char header_name[2][32], header_value[2][256];   /* extra headers, or "" */
} sv_reply;

/* {"error": message} with `status`; returns 0 so that handlers can `return sv_error(...)`. */
int sv_error(sv_reply *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The HTTP status for a library failure: 400 for bad arguments or data, 413 for sizes over
 * limits, 500 otherwise. */
unsigned sv_status_for(dc_status s);

/* ---- the parts of a multipart/form-data or urlencoded request ---- */

enum { SV_MAX_PARTS = 128 };

typedef struct sv_part {
    char *name, *filename;           /* filename NULL for a plain field */
    sv_buf value;                    /* NUL-terminated for plain fields */
} sv_part;

typedef struct sv_form {
    sv_part parts[SV_MAX_PARTS];
    int count;
} sv_form;

/* The value of the first plain field `name`, or NULL. */
const char *sv_form_field(const sv_form *f, const char *name);
/* The first part `name` (file or not), or NULL. */
const sv_part *sv_form_part(const sv_form *f, const char *name);
/* Integer / number fields: the default when absent; -1 (after sv_error 400) when malformed or
 * outside [lo, hi]. */
int sv_form_int(const sv_form *f, const char *name, int def, int lo, int hi, int *out,
                sv_reply *r);
int sv_form_double(const sv_form *f, const char *name, double def, double lo, double hi,
                   double *out, sv_reply *r);
void sv_form_free(sv_form *f);

/* ---- files and images ---- */

/* A fresh path in the server's private temporary directory ending in `ext`. */
void sv_temp_path(const char *ext, char *path, size_t size);
/* Decodes an uploaded PNG or JPEG: checks its side (from the header, before decoding) and
 * decodes it. 0, or -1 after sv_error. */
int sv_decode_image(const sv_buf *bytes, int max_side, dc_image *out, sv_reply *r);
/* The base model with the server's options (--config, --image-size, --head-channels,
 * --device): the server's handle and each fine-tuning job's, which share its weights. */
dc_status sv_load_base_model(const serve_config *c, dc_model **out);
/* PNG bytes of the images of NCHW float32 tensors side by side, into r (200, image/png). */
int sv_reply_png_strip(sv_reply *r, const dc_tensor *const *tensors, int count);
/* 1 if `name` may name a file in a directory: 1..255 bytes of [A-Za-z0-9._+-], not starting
 * with '.'. */
int sv_valid_file_name(const char *name);
/* The real path of DIR/name when it is a regular file inside DIR (links followed, none
 * leading out), else NULL (errno ENOENT). Caller frees. */
char *sv_resolve_in_dir(const char *real_dir, const char *name);

/* ---- the server ---- */

typedef struct sv_models sv_models;
typedef struct sv_jobs sv_jobs;

typedef struct sv_server {
    serve_config config;
    char *real_dir;                  /* realpath of config.finetuned_dir */
    int loopback;                    /* bound to a loopback address */
    char *temp_dir;
    dc_model *base;                  /* used by one request at a time (the compute lock) */
    dc_face_aligner *aligner;        /* align=1, loaded on first use (the compute lock) */
    dc_model_info info;
    char description[2048];
    sv_models *models;
    sv_jobs *jobs;
    /* The compute lock: one request uses the models at a time; at most config.queue wait. */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int busy, waiting;
    /* Counters /api/status reports. */
    uint64_t served, cancelled, rejected, inversions, latent_hits;
} sv_server;

extern sv_server *sv_the_server;

/* A connection's liveness, for the progress callbacks: 1 while the client is connected. */
typedef struct sv_client {
    int fd;
} sv_client;
int sv_client_alive(const sv_client *c);
/* A dc_progress_fn cancelling when the client (user: sv_client *) is gone. */
int sv_client_progress(void *user, const dc_progress *p);

/* Takes the compute lock, waiting in the bounded queue; 0, or -1 after sv_error 503 (queue
 * full) or with r->status 0 (the client left while waiting). */
int sv_acquire(sv_server *s, const sv_client *c, sv_reply *r);
void sv_release(sv_server *s);

/* models.c */
int sv_models_new(sv_server *s);
void sv_models_free(sv_models *m);
void sv_models_list_json(sv_server *s, sv_buf *out);
int sv_handle_edit(sv_server *s, const sv_form *f, const sv_client *c, int transition,
                   sv_reply *r);

/* jobs.c */
int sv_jobs_new(sv_server *s);
void sv_jobs_free(sv_jobs *j);
int sv_handle_finetune(sv_server *s, sv_form *f, sv_reply *r);
int sv_handle_job(sv_server *s, const char *id, int cancel, sv_reply *r);
int sv_handle_file(sv_server *s, const char *name, sv_reply *r);

#endif
