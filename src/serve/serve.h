/* diffclip serve: an HTTP API and a web page over the public API (docs/serve.md). Nothing
 * here reaches below include/diffclip.h. */
#ifndef DC_SRC_SERVE_SERVE_H
#define DC_SRC_SERVE_SERVE_H

#include <stddef.h>

#include "diffclip.h"

typedef struct serve_config {
    const char *model_path;          /* the base model, loaded once */
    const char *finetuned_dir;       /* fine-tuned models by file name; jobs write here */
    const char *host;                /* numeric IPv4 or IPv6 address (default 127.0.0.1) */
    int port;                        /* 0: any free port (the bound one is printed) */
    const char *device;
    const char *config_path;         /* the base model's YAML config, or NULL */
    int image_size;                  /* 0: the config's, else what the weights tell */
    int head_channels;
    const char *clip_path, *vocab_path, *arcface_path;   /* for fine-tuning; may be NULL */
    const char *predictor_path;      /* dlib's shape predictor for align=1 (NULL: Debian's) */
    size_t max_upload;               /* bytes of one request body (413 past it) */
    int max_image_side;              /* pixels per side of an uploaded image (413 past it) */
    int queue;                       /* requests that may wait for the model (503 past it) */
    int latent_cache;                /* inversions kept in memory */
    int max_loaded;                  /* fine-tuned models kept loaded */
} serve_config;

/* Runs the server until SIGINT or SIGTERM; prints "listening on http://HOST:PORT/" on
 * stdout once it accepts connections. 0 on a clean stop, 1 on failure (message on stderr). */
int serve_run(const serve_config *config);

#endif
