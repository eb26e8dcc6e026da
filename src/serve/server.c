/* The HTTP side of diffclip serve on libmicrohttpd: a thread per connection (a request's work
 * runs in its connection's thread, which can watch its socket), request bodies through
 * libmicrohttpd's post processor, bounded, and the routes of docs/serve.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern const char sv_page_html[];
extern const size_t sv_page_html_size;

sv_server *sv_the_server;
static int stopping;              /* set once, read by every thread: atomic */

/* ---- clients and the compute lock ---- */

int sv_client_alive(const sv_client *c)
{
    if (__atomic_load_n(&stopping, __ATOMIC_RELAXED))
        return 0;
    if (!c || c->fd < 0)
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) < 0)
        return 1;
    return !(p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int sv_client_progress(void *user, const dc_progress *p)
{
    (void)p;
    return !sv_client_alive(user);
}

int sv_acquire(sv_server *s, const sv_client *c, sv_reply *r)
{
    pthread_mutex_lock(&s->lock);
    if (s->busy && s->waiting >= s->config.queue) {
        int waiting = s->waiting;
        __atomic_add_fetch(&s->rejected, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&s->lock);
        return sv_error(r, 503, "busy: a request is running and %d wait for the model "
                        "(the queue's bound); try again later", waiting);
    }
    s->waiting++;
    while (s->busy) {
        /* Wakes now and then to notice a client that left while waiting. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->freed, &s->lock, &until);
        if (s->busy && !sv_client_alive(c)) {
            s->waiting--;
            pthread_mutex_unlock(&s->lock);
            r->status = 0;
            return -1;
        }
    }
    s->waiting--;
    s->busy = 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void sv_release(sv_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->busy = 0;
    pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* ---- requests ---- */

typedef enum route {
    ROUTE_NONE, ROUTE_PAGE, ROUTE_MODELS, ROUTE_STATUS, ROUTE_EDIT, ROUTE_TRANSITION,
    ROUTE_FINETUNE, ROUTE_JOB, ROUTE_FILE
} route;

typedef struct request {
    route route;
    const char *rest;                /* the job id or file name after the route's prefix */
    struct MHD_PostProcessor *post;
    sv_form form;
    uint64_t received;
    int too_large, malformed;
    char why[160];                   /* what made the body malformed */
} request;

static route find_route(const char *url, const char *method, const char **rest,
                        const char **allowed)
{
    static const struct {
        const char *path, *method;
        route route;
        int prefix;
    } routes[] = {
        {"/", "GET", ROUTE_PAGE, 0},
        {"/index.html", "GET", ROUTE_PAGE, 0},
        {"/api/models", "GET", ROUTE_MODELS, 0},
        {"/api/status", "GET", ROUTE_STATUS, 0},
        {"/api/edit", "POST", ROUTE_EDIT, 0},
        {"/api/transition", "POST", ROUTE_TRANSITION, 0},
        {"/api/finetune", "POST", ROUTE_FINETUNE, 0},
        {"/api/jobs/", "GET, DELETE", ROUTE_JOB, 1},
        {"/api/files/", "GET", ROUTE_FILE, 1},
    };
    *allowed = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].path);
        int match = routes[i].prefix ? strncmp(url, routes[i].path, n) == 0
                                     : strcmp(url, routes[i].path) == 0;
        if (!match)
            continue;
        *rest = url + (routes[i].prefix ? n : strlen(url));
        *allowed = routes[i].method;
        /* routes[i].method is "M" or "M, N". */
        size_t k = strlen(method);
        for (const char *m = routes[i].method; *m; m += strspn(m, ", "))
            if (strncmp(m, method, k) == 0 && (m[k] == '\0' || m[k] == ','))
                return routes[i].route;
            else
                m += strcspn(m, ",");
        return ROUTE_NONE;
    }
    return ROUTE_NONE;
}

static enum MHD_Result iterate_post(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data,
                                    uint64_t off, size_t size)
{
    request *q = cls;
    sv_form *f = &q->form;
    sv_part *last = f->count ? &f->parts[f->count - 1] : NULL;
    int same = last && strcmp(last->name, key) == 0 &&
               (last->filename == NULL) == (filename == NULL) &&
               (!filename || strcmp(last->filename, filename) == 0);
    if (off == 0 && !(same && last->value.len == 0)) {
        if (f->count >= SV_MAX_PARTS) {
            snprintf(q->why, sizeof q->why, "more than %d parts", SV_MAX_PARTS);
            return MHD_NO;
        }
        last = &f->parts[f->count++];
        memset(last, 0, sizeof *last);
        last->name = strdup(key);
        last->filename = filename ? strdup(filename) : NULL;
        if (!last->name || (filename && !last->filename)) {
            snprintf(q->why, sizeof q->why, "out of memory");
            return MHD_NO;
        }
    } else if (!last || off != last->value.len) {
        snprintf(q->why, sizeof q->why, "part '%.60s' out of order", key);
        return MHD_NO;
    }
    sv_buf_add(&last->value, data, size);
    if (last->value.failed) {
        snprintf(q->why, sizeof q->why, "out of memory");
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, sv_reply *r)
{
    if (r->status == 0)
        return MHD_NO;               /* the client left: close the connection */
    struct MHD_Response *response = MHD_create_response_from_buffer(
        r->body.len, r->body.data ? r->body.data : "", MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    for (int i = 0; i < 2; i++)
        if (r->header_name[i][0])
            MHD_add_response_header(response, r->header_name[i], r->header_value[i]);
    enum MHD_Result ok = MHD_queue_response(conn, r->status, response);
    MHD_destroy_response(response);
    return ok;
}

static enum MHD_Result reply_now(struct MHD_Connection *conn, sv_reply *r)
{
    enum MHD_Result ok = send_reply(conn, r);
    sv_buf_free(&r->body);
    return ok;
}

static void status_json(sv_server *s, sv_buf *out)
{
    pthread_mutex_lock(&s->lock);
    sv_buf_printf(out, "{\"busy\": %s, \"queued\": %d, \"queue\": %d, \"served\": %llu, "
                  "\"cancelled\": %llu, \"rejected\": %llu, \"inversions\": %llu, "
                  "\"latent_hits\": %llu}\n", s->busy ? "true" : "false", s->waiting,
                  s->config.queue,
                  (unsigned long long)__atomic_load_n(&s->served, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&s->cancelled, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&s->rejected, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&s->inversions, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&s->latent_hits, __ATOMIC_RELAXED));
    pthread_mutex_unlock(&s->lock);
}

/* A request from another origin (a web page elsewhere posting to this server through its
 * visitor's browser), or, on a loopback address, one naming another host (a DNS-rebinding
 * page): refused. */
static int foreign_request(const sv_server *s, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (s->loopback && host) {
        size_t name = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
        int local = (name == 9 && strncmp(host, "localhost", 9) == 0) ||
                    strncmp(host, "127.", 4) == 0 || (name == 5 && strncmp(host, "[::1]", 5) == 0);
        if (!local)
            return 1;
    }
    if (!origin)
        return 0;
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return !rest || !host || strcmp(rest, host) != 0;
}

static void dispatch(sv_server *s, struct MHD_Connection *conn, const char *method, request *q,
                     sv_reply *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    sv_client client = {.fd = info ? info->connect_fd : -1};
    switch (q->route) {
    case ROUTE_PAGE:
        r->status = 200;
        r->content_type = "text/html; charset=utf-8";
        sv_buf_add(&r->body, sv_page_html, sv_page_html_size);
        /* The page loads nothing from elsewhere; the browser is told so too. */
        snprintf(r->header_name[0], sizeof r->header_name[0], "Content-Security-Policy");
        snprintf(r->header_value[0], sizeof r->header_value[0],
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "img-src 'self' blob:; connect-src 'self'; form-action 'none'; "
                 "frame-ancestors 'none'; base-uri 'none'");
        break;
    case ROUTE_MODELS:
        r->status = 200;
        sv_models_list_json(s, &r->body);
        break;
    case ROUTE_STATUS:
        r->status = 200;
        status_json(s, &r->body);
        break;
    case ROUTE_EDIT:
    case ROUTE_TRANSITION:
        sv_handle_edit(s, &q->form, &client, q->route == ROUTE_TRANSITION, r);
        break;
    case ROUTE_FINETUNE:
        sv_handle_finetune(s, &q->form, r);
        break;
    case ROUTE_JOB:
        sv_handle_job(s, q->rest, strcmp(method, "DELETE") == 0, r);
        break;
    case ROUTE_FILE:
        sv_handle_file(s, q->rest, r);
        break;
    case ROUTE_NONE:
        break;
    }
    if (r->body.failed)
        sv_error(r, 500, "out of memory");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **state)
{
    sv_server *s = cls;
    request *q = *state;
    sv_reply r = {0};
    if (!q) {
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *state = q;
        const char *allowed;
        q->route = find_route(url, method, &q->rest, &allowed);
        if (q->route == ROUTE_NONE) {
            if (allowed)
                sv_error(&r, 405, "%s %s: allowed: %s", method, url, allowed);
            else
                sv_error(&r, 404, "no such resource: %.200s", url);
            return reply_now(conn, &r);
        }
        if (foreign_request(s, conn)) {
            sv_error(&r, 403, "requests from another origin or for another host are refused");
            return reply_now(conn, &r);
        }
        if (strcmp(method, "POST") != 0)
            return MHD_YES;
        const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > s->config.max_upload) {
            sv_error(&r, 413, "the request body is over the limit of %zu bytes",
                     s->config.max_upload);
            return reply_now(conn, &r);
        }
        q->post = MHD_create_post_processor(conn, 64 * 1024, iterate_post, q);
        if (!q->post) {
            sv_error(&r, 415, "the body must be multipart/form-data or "
                     "application/x-www-form-urlencoded");
            return reply_now(conn, &r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Past the bound (a chunked body gives no length first) the rest is read and
         * dropped, then refused. */
        q->received += *upload_data_size;
        if (q->received > s->config.max_upload)
            q->too_large = 1;
        else if (!q->post)
            ;                            /* a body on GET or DELETE is ignored */
        else if (!q->malformed &&
                 MHD_post_process(q->post, upload_data, *upload_data_size) != MHD_YES)
            q->malformed = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->too_large)
        sv_error(&r, 413, "the request body is over the limit of %zu bytes",
                 s->config.max_upload);
    else if (q->malformed)
        sv_error(&r, 400, "malformed request body%s%s", q->why[0] ? ": " : "", q->why);
    else
        dispatch(s, conn, method, q, &r);
    return reply_now(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    request *q = *state;
    if (!q)
        return;
    if (q->post)
        MHD_destroy_post_processor(q->post);
    sv_form_free(&q->form);
    free(q);
    *state = NULL;
}

/* ---- the server's life ---- */

static int parse_address(const char *host, int port, struct sockaddr_storage *addr,
                         int *ipv6)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    char bare[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof bare) {
        memcpy(bare, host + 1, n - 2);
        bare[n - 2] = '\0';
        host = bare;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return -1;
}

dc_status sv_load_base_model(const serve_config *c, dc_model **out)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = c->device;
    o.head_channels = c->head_channels;
    o.image_size = c->image_size;
    o.config_path = c->config_path;
    return dc_model_load(out, c->model_path, &o);
}

static int load_base(sv_server *s)
{
    if (sv_load_base_model(&s->config, &s->base) != DC_OK ||
        dc_model_get_info(s->base, &s->info) != DC_OK ||
        dc_model_describe(s->base, s->description, sizeof s->description) != DC_OK) {
        fprintf(stderr, "diffclip: serve: %s\n", dc_last_error());
        return -1;
    }
    return 0;
}

static int prepare(sv_server *s)
{
    if (!(s->real_dir = realpath(s->config.finetuned_dir, NULL))) {
        fprintf(stderr, "diffclip: serve: --finetuned-dir %s: %s\n", s->config.finetuned_dir,
                strerror(errno));
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/diffclip-serve.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(pattern) || !(s->temp_dir = strdup(pattern))) {
        fprintf(stderr, "diffclip: serve: cannot create a temporary directory: %s\n",
                strerror(errno));
        return -1;
    }
    if (load_base(s) != 0)
        return -1;
    if (sv_models_new(s) != 0 || sv_jobs_new(s) != 0) {
        fprintf(stderr, "diffclip: serve: out of memory\n");
        return -1;
    }
    return 0;
}

static void cleanup(sv_server *s)
{
    sv_jobs_free(s->jobs);
    sv_models_free(s->models);
    dc_face_aligner_free(s->aligner);
    dc_model_free(s->base);
    if (s->temp_dir)
        rmdir(s->temp_dir);
    free(s->temp_dir);
    free(s->real_dir);
}

int serve_run(const serve_config *config)
{
    sv_server server = {.config = *config};
    sv_server *s = &server;
    sv_the_server = s;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    /* SIGINT and SIGTERM are taken by sigwait below; every thread started from here on
     * inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_storage addr;
    int ipv6 = 0, status = 1;
    struct MHD_Daemon *daemon = NULL;
    if (parse_address(config->host, config->port, &addr, &ipv6) != 0) {
        fprintf(stderr, "diffclip: serve: --host %s: not a numeric IPv4 or IPv6 address\n",
                config->host);
        goto done;
    }
    s->loopback = ipv6 ? memcmp(&((struct sockaddr_in6 *)&addr)->sin6_addr, &in6addr_loopback,
                                sizeof in6addr_loopback) == 0
                       : (ntohl(((struct sockaddr_in *)&addr)->sin_addr.s_addr) >> 24) == 127;
    if (prepare(s) != 0)
        goto done;
    daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            (ipv6 ? MHD_USE_IPv6 : 0),
        (uint16_t)config->port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "diffclip: serve: cannot listen on %s port %d: %s\n", config->host,
                config->port, strerror(errno));
        goto done;
    }
    const union MHD_DaemonInfo *bound = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    char shown[64];
    inet_ntop(ipv6 ? AF_INET6 : AF_INET,
              ipv6 ? (void *)&((struct sockaddr_in6 *)&addr)->sin6_addr
                   : (void *)&((struct sockaddr_in *)&addr)->sin_addr, shown, sizeof shown);
    printf(ipv6 ? "listening on http://[%s]:%u/\n" : "listening on http://%s:%u/\n", shown,
           bound ? (unsigned)bound->port : (unsigned)config->port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "diffclip: serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
done:
    /* Work in progress sees `stopping` and ends; then the connections' threads are joined,
     * then the jobs' (cleanup). */
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
    if (daemon)
        MHD_stop_daemon(daemon);
    cleanup(s);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
    sv_the_server = NULL;
    return status;
}
