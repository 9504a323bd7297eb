/* The integration test world: an in-process origin (libmicrohttpd), the caching-proxy
 * binary run as a child, and clients (libcurl, raw sockets) that talk to it. Every wait
 * here is bounded so a broken proxy fails a test instead of hanging it. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

extern char **environ;

/* ---- small utilities ------------------------------------------------------------- */

double hx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "harness: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "harness: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A growable byte buffer. */
struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

unsigned char hx_pattern(size_t i)
{
    return (unsigned char)((i * 7u + i / 251u) % 256u);
}

char *hx_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct buf b = { 0 };
    buf_add(&b, "", 0);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf_add(&b, chunk, (size_t)n);
    }
    close(fd);
    if (len)
        *len = b.len;
    return (char *)b.p;
}

int hx_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    /* A directory made unreadable by a test must still go away. */
    chmod(path, 0700);
    remove(path);
    return 0;
}

void hx_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **hx_list(const char *dir, const char *suffix)
{
    size_t n = 0;
    char **v = xmalloc(sizeof *v);
    v[0] = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return v;
    size_t sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        v = xrealloc(v, (n + 2) * sizeof *v);
        v[n++] = xasprintf("%s/%s", dir, de->d_name);
        v[n] = NULL;
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

size_t hx_strv_len(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void hx_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

size_t hx_count_lines(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n')
            n++;
    size_t l = strlen(s);
    if (l > 0 && s[l - 1] != '\n')
        n++;
    return n;
}

bool hx_has_number(const char *s, long n)
{
    if (s == NULL)
        return false;
    for (const char *p = s; *p;) {
        if (*p >= '0' && *p <= '9') {
            char *end;
            long v = strtol(p, &end, 10);
            if (v == n)
                return true;
            p = end;
        } else {
            p++;
        }
    }
    return false;
}

bool hx_wait_files(const char *dir, const char *suffix, size_t n, double timeout_s)
{
    double end = hx_now() + timeout_s;
    for (;;) {
        char **v = hx_list(dir, suffix);
        size_t have = hx_strv_len(v);
        hx_strv_free(v);
        if (have >= n)
            return true;
        if (hx_now() > end)
            return false;
        sleep_s(0.02);
    }
}

/* ---- the origin ------------------------------------------------------------------ */

struct path_count {
    char *path;
    unsigned n;
    struct orig_req last;        /* the last complete request for this path */
    bool have_last;
};

/* How many answers of one status went out for one path and method. */
struct answer_count {
    char *path;
    char *method;
    unsigned status;
    unsigned n;
};

/* A route as stored: orig_route's fields deep-copied. */
struct route {
    char *path;
    unsigned status;
    char **fields;               /* name, value, ..., NULL */
    char **fields_304;           /* NULL: fields */
    char *body;
    bool conditional;
    unsigned delay_ms;
};

struct fail_path {
    char *path;
    unsigned status;
};

struct orig {
    struct MHD_Daemon *d;
    uint16_t port;
    char url[64];
    char *cert, *key;            /* PEM text, kept alive for the daemon */
    pthread_mutex_t lock;
    struct path_count *counts;
    size_t ncounts;
    unsigned total;
    unsigned connections;        /* TCP connections accepted */
    double trickle_done;         /* hx_now() when a /trickle answer sent its last byte */
    struct orig_req last;
    bool have_last;
    char *redirect_other;
    unsigned char *gz;
    size_t gz_len;
    struct answer_count *answers;
    size_t nanswers;
    struct route *routes;
    size_t nroutes;
    struct fail_path *fails;
    size_t nfails;
};

/* What one request has accumulated between calls of the access handler. */
struct oconn {
    struct buf body;
    unsigned n;      /* this request's number for its path */
    unsigned status; /* of the answer queued, 0 before */
};

static unsigned count_path(struct orig *o, const char *path)
{
    pthread_mutex_lock(&o->lock);
    o->total++;
    unsigned n = 0;
    for (size_t i = 0; i < o->ncounts; i++)
        if (strcmp(o->counts[i].path, path) == 0) {
            n = ++o->counts[i].n;
            break;
        }
    if (n == 0) {
        o->counts = xrealloc(o->counts, (o->ncounts + 1) * sizeof *o->counts);
        o->counts[o->ncounts] = (struct path_count){ .path = xstrdup(path), .n = 1 };
        n = 1;
        o->ncounts++;
    }
    pthread_mutex_unlock(&o->lock);
    return n;
}

unsigned orig_count(struct orig *o, const char *path)
{
    unsigned n = 0;
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->ncounts; i++)
        if (strcmp(o->counts[i].path, path) == 0)
            n = o->counts[i].n;
    pthread_mutex_unlock(&o->lock);
    return n;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    struct orig *o = cls;
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&o->lock);
    o->connections++;
    pthread_mutex_unlock(&o->lock);
}

unsigned orig_connections(struct orig *o)
{
    pthread_mutex_lock(&o->lock);
    unsigned n = o->connections;
    pthread_mutex_unlock(&o->lock);
    return n;
}

unsigned orig_total(struct orig *o)
{
    pthread_mutex_lock(&o->lock);
    unsigned n = o->total;
    pthread_mutex_unlock(&o->lock);
    return n;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct orig_req *r = cls;
    r->names = xrealloc(r->names, (r->nhdr + 1) * sizeof *r->names);
    r->values = xrealloc(r->values, (r->nhdr + 1) * sizeof *r->values);
    r->names[r->nhdr] = xstrdup(key);
    r->values[r->nhdr] = xstrdup(value ? value : "");
    r->nhdr++;
    return MHD_YES;
}

void orig_req_free(struct orig_req *r)
{
    for (size_t i = 0; i < r->nhdr; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->method);
    free(r->path);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void copy_req(struct orig_req *dst, const struct orig_req *src)
{
    memset(dst, 0, sizeof *dst);
    dst->method = xstrdup(src->method);
    dst->path = xstrdup(src->path);
    dst->nhdr = src->nhdr;
    dst->names = xmalloc((src->nhdr + 1) * sizeof *dst->names);
    dst->values = xmalloc((src->nhdr + 1) * sizeof *dst->values);
    for (size_t i = 0; i < src->nhdr; i++) {
        dst->names[i] = xstrdup(src->names[i]);
        dst->values[i] = xstrdup(src->values[i]);
    }
    dst->body = xmalloc(src->body_len + 1);
    if (src->body_len)
        memcpy(dst->body, src->body, src->body_len);
    dst->body[src->body_len] = 0;
    dst->body_len = src->body_len;
}

bool orig_last(struct orig *o, struct orig_req *out)
{
    pthread_mutex_lock(&o->lock);
    bool have = o->have_last;
    if (have)
        copy_req(out, &o->last);
    else
        memset(out, 0, sizeof *out);
    pthread_mutex_unlock(&o->lock);
    return have;
}

bool orig_last_for(struct orig *o, const char *path, struct orig_req *out)
{
    bool have = false;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->ncounts && !have; i++)
        if (strcmp(o->counts[i].path, path) == 0 && o->counts[i].have_last) {
            copy_req(out, &o->counts[i].last);
            have = true;
        }
    pthread_mutex_unlock(&o->lock);
    return have;
}

const char *orig_req_header(const struct orig_req *r, const char *name, size_t nth)
{
    for (size_t i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->names[i], name) == 0 && nth-- == 0)
            return r->values[i];
    return NULL;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static enum MHD_Result send_resp(struct oconn *oc, struct MHD_Connection *c, unsigned status,
                                 const void *body, size_t len, const char *const *fields)
{
    oc->status = status;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    for (size_t i = 0; fields && fields[i]; i += 2)
        MHD_add_response_header(r, fields[i], fields[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A body produced as it is sent: `chunks` pieces of 1 KiB of the hx_pattern, with a
 * pause of `pause_ms` before each piece (/trickle), or none (/huge). */
struct produced {
    struct orig *o;
    uint64_t total;
    unsigned pause_ms;
};

static ssize_t produce(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct produced *p = cls;
    if (pos >= p->total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max;
    if (p->pause_ms > 0) {
        /* one piece per call, each (the first too) after a pause */
        if (pos % 1024 == 0)
            sleep_s(p->pause_ms / 1000.0);
        n = 1024 - (size_t)(pos % 1024);
        if (n > max)
            n = max;
    }
    if (n > p->total - pos)
        n = (size_t)(p->total - pos);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)hx_pattern((size_t)(pos + i));
    if (pos + n == p->total && p->pause_ms > 0) {
        pthread_mutex_lock(&p->o->lock);
        p->o->trickle_done = hx_now();
        pthread_mutex_unlock(&p->o->lock);
    }
    return (ssize_t)n;
}

static enum MHD_Result send_produced(struct oconn *oc, struct MHD_Connection *c, struct orig *o,
                                     uint64_t total, unsigned pause_ms, bool chunked)
{
    struct produced *p = xmalloc(sizeof *p);
    *p = (struct produced){ .o = o, .total = total, .pause_ms = pause_ms };
    oc->status = 200;
    struct MHD_Response *r = MHD_create_response_from_callback(
        chunked ? MHD_SIZE_UNKNOWN : total, 64 * 1024, produce, p, free);
    if (r == NULL) {
        free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Cache-Control", "max-age=60");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

double orig_trickle_done(struct orig *o)
{
    pthread_mutex_lock(&o->lock);
    double t = o->trickle_done;
    pthread_mutex_unlock(&o->lock);
    return t;
}

static enum MHD_Result send_text(struct oconn *oc, struct MHD_Connection *c, unsigned status,
                                 const char *text, const char *const *fields)
{
    return send_resp(oc, c, status, text, strlen(text), fields);
}

/* ---- routes set by the test, failures, answer counts ------------------------------ */

static char **strv_dup(const char *const *v)
{
    if (v == NULL)
        return NULL;
    size_t n = 0;
    while (v[n])
        n++;
    char **d = xmalloc((n + 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = xstrdup(v[i]);
    d[n] = NULL;
    return d;
}

static void route_clear(struct route *r)
{
    free(r->path);
    hx_strv_free(r->fields);
    hx_strv_free(r->fields_304);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void route_copy(struct route *dst, const struct route *src)
{
    dst->path = xstrdup(src->path);
    dst->status = src->status;
    dst->fields = strv_dup((const char *const *)src->fields);
    dst->fields_304 = strv_dup((const char *const *)src->fields_304);
    dst->body = xstrdup(src->body);
    dst->conditional = src->conditional;
    dst->delay_ms = src->delay_ms;
}

void orig_route(struct orig *o, const char *path, const struct orig_route *rt)
{
    pthread_mutex_lock(&o->lock);
    size_t i = 0;
    while (i < o->nroutes && strcmp(o->routes[i].path, path) != 0)
        i++;
    if (i < o->nroutes) {
        route_clear(&o->routes[i]);
        o->routes[i] = o->routes[--o->nroutes];
    }
    if (rt != NULL) {
        o->routes = xrealloc(o->routes, (o->nroutes + 1) * sizeof *o->routes);
        struct route *r = &o->routes[o->nroutes++];
        r->path = xstrdup(path);
        r->status = rt->status ? rt->status : 200;
        r->fields = strv_dup(rt->fields);
        r->fields_304 = strv_dup(rt->fields_304);
        r->body = xstrdup(rt->body ? rt->body : "");
        r->conditional = rt->conditional;
        r->delay_ms = rt->delay_ms;
    }
    pthread_mutex_unlock(&o->lock);
}

/* Copies the route of `path` into *out; false if there is none. Call with the lock. */
static bool route_find(struct orig *o, const char *path, struct route *out)
{
    for (size_t i = 0; i < o->nroutes; i++)
        if (strcmp(o->routes[i].path, path) == 0) {
            route_copy(out, &o->routes[i]);
            return true;
        }
    return false;
}

void orig_set_fail(struct orig *o, const char *path, unsigned status)
{
    pthread_mutex_lock(&o->lock);
    size_t i = 0;
    while (i < o->nfails && strcmp(o->fails[i].path, path) != 0)
        i++;
    if (i < o->nfails) {
        free(o->fails[i].path);
        o->fails[i] = o->fails[--o->nfails];
    }
    if (status != 0) {
        o->fails = xrealloc(o->fails, (o->nfails + 1) * sizeof *o->fails);
        o->fails[o->nfails].path = xstrdup(path);
        o->fails[o->nfails].status = status;
        o->nfails++;
    }
    pthread_mutex_unlock(&o->lock);
}

/* The failure status set for `path`, or 0. Call with the lock. */
static unsigned fail_status(struct orig *o, const char *path)
{
    for (size_t i = 0; i < o->nfails; i++)
        if (strcmp(o->fails[i].path, path) == 0)
            return o->fails[i].status;
    return 0;
}

static void count_answer(struct orig *o, const char *path, const char *method, unsigned status)
{
    pthread_mutex_lock(&o->lock);
    size_t i = 0;
    while (i < o->nanswers &&
           !(o->answers[i].status == status && strcmp(o->answers[i].path, path) == 0 &&
             strcmp(o->answers[i].method, method) == 0))
        i++;
    if (i == o->nanswers) {
        o->answers = xrealloc(o->answers, (o->nanswers + 1) * sizeof *o->answers);
        o->answers[i] = (struct answer_count){ .path = xstrdup(path), .method = xstrdup(method),
                                               .status = status };
        o->nanswers++;
    }
    o->answers[i].n++;
    pthread_mutex_unlock(&o->lock);
}

unsigned orig_answers(struct orig *o, const char *path, const char *method, unsigned status)
{
    unsigned n = 0;
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->nanswers; i++) {
        const struct answer_count *a = &o->answers[i];
        if (strcmp(a->path, path) == 0 && (method == NULL || strcmp(a->method, method) == 0) &&
            (status == 0 || a->status == status))
            n += a->n;
    }
    pthread_mutex_unlock(&o->lock);
    return n;
}

bool orig_wait_answers(struct orig *o, const char *path, const char *method, unsigned status,
                       unsigned n, double timeout_s)
{
    double end = hx_now() + timeout_s;
    for (;;) {
        if (orig_answers(o, path, method, status) >= n)
            return true;
        if (hx_now() > end)
            return false;
        sleep_s(0.01);
    }
}

static const char *pair_get(char *const *fields, const char *name)
{
    for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2)
        if (strcasecmp(fields[i], name) == 0)
            return fields[i + 1];
    return NULL;
}

/* The opaque part of an entity tag (W/ dropped), its length in *len; NULL if `t` does
 * not start with one. */
static const char *opaque_tag(const char *t, size_t *len)
{
    if (strncmp(t, "W/", 2) == 0)
        t += 2;
    if (*t != '"')
        return NULL;
    const char *close = strchr(t + 1, '"');
    if (close == NULL)
        return NULL;
    *len = (size_t)(close - t) + 1;
    return t;
}

/* True if the If-None-Match value `inm` is "*" or lists a tag weakly equal to `etag`. */
static bool inm_matches(const char *inm, const char *etag)
{
    size_t elen = 0; /* read only when e is set; -O3 cannot tell */
    const char *e = opaque_tag(etag, &elen);
    const char *p = inm;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        size_t tlen;
        const char *t = opaque_tag(p, &tlen);
        if (t == NULL)
            return false;
        if (e != NULL && tlen == elen && memcmp(t, e, tlen) == 0)
            return true;
        p = t + tlen;
    }
}

/* Whether a GET/HEAD `req` for route `r` is to be answered 304 (RFC 9110 13.1.1, 13.1.3:
 * If-None-Match first; If-Modified-Since only without it). */
static bool route_not_modified(const struct route *r, const char *method,
                               const struct orig_req *req)
{
    if (!r->conditional || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return false;
    const char *inm = orig_req_header(req, "If-None-Match", 0);
    const char *etag = pair_get(r->fields, "ETag");
    if (inm != NULL)
        return etag != NULL && inm_matches(inm, etag);
    const char *ims = orig_req_header(req, "If-Modified-Since", 0);
    const char *lm = pair_get(r->fields, "Last-Modified");
    if (ims == NULL || lm == NULL)
        return false;
    time_t ti = curl_getdate(ims, NULL), tl = curl_getdate(lm, NULL);
    return ti != -1 && tl != -1 && tl <= ti;
}

static enum MHD_Result answer_route(struct oconn *oc, struct MHD_Connection *c,
                                    const struct route *r, const char *method,
                                    const struct orig_req *req)
{
    if (r->delay_ms)
        sleep_s(r->delay_ms / 1000.0);
    if (route_not_modified(r, method, req))
        return send_resp(oc, c, 304, "", 0,
                         (const char *const *)(r->fields_304 ? r->fields_304 : r->fields));
    return send_text(oc, c, r->status, r->body, (const char *const *)r->fields);
}

void hx_http_date(time_t t, char *out, size_t len)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Spelled out rather than strftime so that no locale can change it. */
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static enum MHD_Result answer(struct orig *o, struct oconn *oc, struct MHD_Connection *c,
                              const char *method, const char *path,
                              const struct orig_req *req, unsigned n)
{
    static const char *const max60[] = { "Cache-Control", "max-age=60", NULL };
    char text[512];
    enum MHD_Result ret;

    if (has_prefix(path, "/cache/")) {
        snprintf(text, sizeof text, "path=%s n=%u\n", path, n);
        return send_text(oc, c, 200, text, max60);
    }
    if (has_prefix(path, "/plain/")) {
        snprintf(text, sizeof text, "plain path=%s n=%u\n", path, n);
        return send_text(oc, c, 200, text, NULL);
    }
    if (strcmp(path, "/nostore") == 0) {
        static const char *const f[] = { "Cache-Control", "no-store", NULL };
        snprintf(text, sizeof text, "nostore n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/private") == 0) {
        static const char *const f[] = { "Cache-Control", "private, max-age=60", NULL };
        snprintf(text, sizeof text, "private n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/cookie") == 0) {
        static const char *const f[] = { "Set-Cookie", "a=1; Path=/", "Set-Cookie", "b=2; Path=/",
                                         "Cache-Control", "max-age=60", NULL };
        snprintf(text, sizeof text, "cookie n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/cookie-public") == 0) {
        static const char *const f[] = { "Set-Cookie", "c=3; Path=/", "Cache-Control",
                                         "public, max-age=60", NULL };
        snprintf(text, sizeof text, "cookie-public n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/multi") == 0) {
        static const char *const f[] = { "Set-Cookie", "m1=1; Path=/", "Set-Cookie", "m2=2; Path=/",
                                         "Cache-Control", "public, max-age=60", NULL };
        snprintf(text, sizeof text, "multi n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/auth") == 0) {
        snprintf(text, sizeof text, "auth n=%u\n", n);
        return send_text(oc, c, 200, text, max60);
    }
    if (strcmp(path, "/echo") == 0) {
        static const char *const f[] = { "Cache-Control", "no-store", NULL };
        struct buf b = { 0 };
        buf_adds(&b, "method=");
        buf_adds(&b, method);
        buf_adds(&b, "\n");
        for (size_t i = 0; i < req->nhdr; i++) {
            buf_adds(&b, req->names[i]);
            buf_adds(&b, ": ");
            buf_adds(&b, req->values[i]);
            buf_adds(&b, "\n");
        }
        buf_adds(&b, "\n");
        buf_add(&b, req->body, req->body_len);
        ret = send_resp(oc, c, 200, b.p, b.len, f);
        free(b.p);
        return ret;
    }
    if (strcmp(path, "/slow") == 0) {
        static const char *const f[] = { "Cache-Control", "no-store", NULL };
        /* Each connection has its own thread, so this holds up nothing else. */
        sleep_s(2.0);
        snprintf(text, sizeof text, "slow n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/vary") == 0) {
        static const char *const f[] = { "Vary", "Accept-Encoding", "Cache-Control", "max-age=60",
                                         NULL };
        const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
        snprintf(text, sizeof text, "ae=%s n=%u\n", ae ? ae : "-", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/varystar") == 0) {
        static const char *const f[] = { "Vary", "*", "Cache-Control", "max-age=60", NULL };
        snprintf(text, sizeof text, "varystar n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    if (strcmp(path, "/gzip") == 0) {
        static const char *const f[] = { "Content-Encoding", "gzip", "ETag", "\"gz-1\"",
                                         "Content-Type", "text/plain", "Cache-Control",
                                         "max-age=60", NULL };
        return send_resp(oc, c, 200, o->gz, o->gz_len, f);
    }
    if (strcmp(path, "/redirect-same") == 0) {
        static const char *const f[] = { "Location", "/cache/target", NULL };
        return send_text(oc, c, 302, "moved\n", f);
    }
    if (strcmp(path, "/redirect-other") == 0) {
        pthread_mutex_lock(&o->lock);
        char *loc = xstrdup(o->redirect_other ? o->redirect_other : "http://127.0.0.2:9/x");
        pthread_mutex_unlock(&o->lock);
        const char *f[] = { "Location", loc, NULL };
        ret = send_text(oc, c, 302, "moved away\n", f);
        free(loc);
        return ret;
    }
    if (has_prefix(path, "/status/")) {
        unsigned code = (unsigned)strtoul(path + 8, NULL, 10);
        if (code < 200 || code > 599)
            code = 500;
        snprintf(text, sizeof text, "status %u\n", code);
        if (code == 204 || code == 304)
            text[0] = '\0';
        return send_text(oc, c, code, text, max60);
    }
    if (has_prefix(path, "/big/")) {
        size_t len = (size_t)strtoull(path + 5, NULL, 10);
        unsigned char *body = xmalloc(len);
        for (size_t i = 0; i < len; i++)
            body[i] = hx_pattern(i);
        ret = send_resp(oc, c, 200, body, len, max60);
        free(body);
        return ret;
    }
    if (has_prefix(path, "/trickle/")) { /* /trickle/<pieces of 1 KiB>/<ms between> */
        unsigned pieces = 0, ms = 0;
        sscanf(path + 9, "%u/%u", &pieces, &ms);
        return send_produced(oc, c, o, (uint64_t)pieces * 1024, ms ? ms : 1, false);
    }
    if (has_prefix(path, "/huge/")) /* /huge/<bytes>, made as it is sent */
        return send_produced(oc, c, o, strtoull(path + 6, NULL, 10), 0, false);
    if (has_prefix(path, "/hugechunked/")) /* the same, chunked: no length up front */
        return send_produced(oc, c, o, strtoull(path + 13, NULL, 10), 0, true);
    if (strcmp(path, "/xcache") == 0) {
        static const char *const f[] = { "X-Cache", "FROM-ORIGIN", "Cache-Control", "max-age=60",
                                         NULL };
        snprintf(text, sizeof text, "xcache n=%u\n", n);
        return send_text(oc, c, 200, text, f);
    }
    return send_text(oc, c, 404, "not found\n", NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct orig *o = cls;
    struct oconn *oc = *con_cls;
    if (oc == NULL) {
        /* Counted as soon as the header is in, so a test can see a request in flight. */
        oc = calloc(1, sizeof *oc);
        if (oc == NULL)
            return MHD_NO;
        *con_cls = oc;
        oc->n = count_path(o, url);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        buf_add(&oc->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct orig_req req = { 0 };
    req.method = xstrdup(method);
    req.path = xstrdup(url);
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &req);
    req.body = oc->body.p;
    req.body_len = oc->body.len;
    oc->body.p = NULL;
    oc->body.len = oc->body.cap = 0;

    unsigned n = oc->n;
    struct route rt = { 0 };
    pthread_mutex_lock(&o->lock);
    orig_req_free(&o->last);
    copy_req(&o->last, &req);
    o->have_last = true;
    for (size_t i = 0; i < o->ncounts; i++)
        if (strcmp(o->counts[i].path, url) == 0) {
            orig_req_free(&o->counts[i].last);
            copy_req(&o->counts[i].last, &req);
            o->counts[i].have_last = true;
        }
    unsigned fail = fail_status(o, url);
    bool routed = fail == 0 && route_find(o, url, &rt);
    pthread_mutex_unlock(&o->lock);

    enum MHD_Result ret;
    if (fail != 0)
        ret = send_text(oc, c, fail, "failing\n", NULL);
    else if (routed)
        ret = answer_route(oc, c, &rt, method, &req);
    else
        ret = answer(o, oc, c, method, url, &req, n);
    route_clear(&rt);
    /* Counted before the answer leaves, so a client that has it sees the count. */
    if (ret == MHD_YES && oc->status != 0)
        count_answer(o, url, method, oc->status);
    orig_req_free(&req);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct oconn *oc = *con_cls;
    if (oc) {
        free(oc->body.p);
        free(oc);
    }
    *con_cls = NULL;
}

static void make_gzip(struct orig *o)
{
    struct buf plain = { 0 };
    for (int i = 0; i < 200; i++) {
        char line[80];
        snprintf(line, sizeof line, "line %03d of the gzip body, the same bytes every time\n", i);
        buf_adds(&plain, line);
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&zs, (uLong)plain.len) + 64;
    o->gz = xmalloc(cap);
    zs.next_in = plain.p;
    zs.avail_in = (uInt)plain.len;
    zs.next_out = o->gz;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    o->gz_len = cap - zs.avail_out;
    deflateEnd(&zs);
    free(plain.p);
}

struct orig *orig_start(const char *ip, const char *cert_pem, const char *key_pem)
{
    struct orig *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    pthread_mutex_init(&o->lock, NULL);
    make_gzip(o);
    bool tls = cert_pem != NULL && key_pem != NULL;
    if (tls) {
        o->cert = hx_read_file(cert_pem, NULL);
        o->key = hx_read_file(key_pem, NULL);
        if (o->cert == NULL || o->key == NULL) {
            fprintf(stderr, "harness: cannot read %s or %s\n", cert_pem, key_pem);
            orig_stop(o);
            return NULL;
        }
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        fprintf(stderr, "harness: bad origin address %s\n", ip);
        orig_stop(o);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (tls)
        flags |= MHD_USE_TLS;
    if (tls)
        o->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, o,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, o,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection, o,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                MHD_OPTION_HTTPS_MEM_KEY, o->key,
                                MHD_OPTION_HTTPS_MEM_CERT, o->cert, MHD_OPTION_END);
    else
        o->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, o,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, o,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection, o,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (o->d == NULL) {
        fprintf(stderr, "harness: cannot start origin on %s\n", ip);
        orig_stop(o);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "harness: cannot read origin port\n");
        orig_stop(o);
        return NULL;
    }
    o->port = info->port;
    snprintf(o->url, sizeof o->url, "%s://%s:%u", tls ? "https" : "http", ip, (unsigned)o->port);
    return o;
}

void orig_stop(struct orig *o)
{
    if (o == NULL)
        return;
    if (o->d)
        MHD_stop_daemon(o->d);
    for (size_t i = 0; i < o->ncounts; i++) {
        free(o->counts[i].path);
        orig_req_free(&o->counts[i].last);
    }
    free(o->counts);
    for (size_t i = 0; i < o->nanswers; i++) {
        free(o->answers[i].path);
        free(o->answers[i].method);
    }
    free(o->answers);
    for (size_t i = 0; i < o->nroutes; i++)
        route_clear(&o->routes[i]);
    free(o->routes);
    for (size_t i = 0; i < o->nfails; i++)
        free(o->fails[i].path);
    free(o->fails);
    orig_req_free(&o->last);
    free(o->redirect_other);
    free(o->gz);
    free(o->cert);
    free(o->key);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

uint16_t orig_port(const struct orig *o)
{
    return o->port;
}

const char *orig_url(const struct orig *o)
{
    return o->url;
}

void orig_set_redirect_other(struct orig *o, const char *location)
{
    pthread_mutex_lock(&o->lock);
    free(o->redirect_other);
    o->redirect_other = xstrdup(location);
    pthread_mutex_unlock(&o->lock);
}

const unsigned char *orig_gzip_body(const struct orig *o, size_t *len)
{
    *len = o->gz_len;
    return o->gz;
}

/* ---- HTTP client ----------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct buf *b = ud;
    buf_add(b, p, sz * nm);
    return sz * nm;
}

static void resp_clear_headers(struct hresp *r)
{
    for (size_t i = 0; i < r->nhdr; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    r->names = r->values = NULL;
    r->nhdr = 0;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct hresp *r = ud;
    size_t n = sz * nm;
    size_t l = n;
    while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n'))
        l--;
    if (l == 0)
        return n;
    if (l >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (after 1xx): only the final response's fields count. */
        resp_clear_headers(r);
        return n;
    }
    const char *colon = memchr(p, ':', l);
    if (colon == NULL)
        return n;
    const char *v = colon + 1;
    const char *end = p + l;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    r->names = xrealloc(r->names, (r->nhdr + 1) * sizeof *r->names);
    r->values = xrealloc(r->values, (r->nhdr + 1) * sizeof *r->values);
    r->names[r->nhdr] = xstrndup(p, (size_t)(colon - p));
    r->values[r->nhdr] = xstrndup(v, (size_t)(end - v));
    r->nhdr++;
    return n;
}

int hx_http(uint16_t port, const char *path, const struct hreq *rq, struct hresp *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return CURLE_FAILED_INIT;
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    struct buf body = { 0 };
    buf_add(&body, "", 0);
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; rq && rq->headers && rq->headers[i]; i++)
        hl = curl_slist_append(hl, rq->headers[i]);

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);

    const char *method = rq && rq->method ? rq->method : "GET";
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || (rq && rq->body))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (rq && rq->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }

    double t0 = hx_now();
    CURLcode rc = curl_easy_perform(c);
    out->t_done = hx_now();
    out->elapsed = out->t_done - t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    out->body = body.p;
    out->body_len = body.len;
    if (rc != CURLE_OK)
        fprintf(stderr, "harness: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    return (int)rc;
}

int hx_get(uint16_t port, const char *path, const char *const *headers, struct hresp *out)
{
    struct hreq rq = { .method = "GET", .headers = headers };
    return hx_http(port, path, &rq, out);
}

void hresp_free(struct hresp *r)
{
    resp_clear_headers(r);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *hresp_header(const struct hresp *r, const char *name, size_t nth)
{
    for (size_t i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->names[i], name) == 0 && nth-- == 0)
            return r->values[i];
    return NULL;
}

size_t hresp_header_count(const struct hresp *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->names[i], name) == 0)
            n++;
    return n;
}

int hx_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

char *hx_raw(uint16_t port, const char *req, size_t *len)
{
    int fd = hx_connect(port);
    if (fd < 0)
        return NULL;
    size_t left = strlen(req);
    const char *p = req;
    while (left > 0) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    struct buf b = { 0 };
    buf_add(&b, "", 0);
    double end = hx_now() + 10.0;
    for (;;) {
        double now = hx_now();
        if (now >= end)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)((end - now) * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf_add(&b, chunk, (size_t)n);
    }
    close(fd);
    if (len)
        *len = b.len;
    return (char *)b.p;
}

/* ---- raw origin ---- */

#define RAWO_CONNS 32
#define RAWO_HEAD 32768 /* longest request head answered */

struct rawo {
    pthread_t thread;
    int lfd;
    uint16_t port;
    char url[64];
    char *response;
    size_t response_len;
    atomic_bool stop;
    atomic_uint requests;
    char bufs[RAWO_CONNS][RAWO_HEAD]; /* each connection's unanswered bytes */
};

/* Answers each complete request head that `buf` (len bytes) holds; keeps a partial
 * one. Returns false if the connection failed. */
static bool rawo_serve(struct rawo *r, int fd, char *buf, size_t *len)
{
    for (;;) {
        char *end = memmem(buf, *len, "\r\n\r\n", 4);
        if (end == NULL)
            return true;
        size_t used = (size_t)(end + 4 - buf);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 "Cache-Control: no-store\r\n\r\nok";
        bool plain = used >= 8 && memcmp(buf, "GET /ok/", 8) == 0;
        const char *resp = plain ? ok : r->response;
        size_t resp_len = plain ? sizeof ok - 1 : r->response_len;
        memmove(buf, buf + used, *len - used);
        *len -= used;
        atomic_fetch_add(&r->requests, 1);
        for (size_t off = 0; off < resp_len;) {
            ssize_t n = send(fd, resp + off, resp_len - off, MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            off += (size_t)n;
        }
    }
}

static void *rawo_main(void *arg)
{
    struct rawo *r = arg;
    struct pollfd p[RAWO_CONNS + 1];
    char (*bufs)[RAWO_HEAD] = r->bufs;
    size_t lens[RAWO_CONNS] = {0};
    size_t n = 0;
    while (!atomic_load(&r->stop)) {
        p[0] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
        if (poll(p, n + 1, 50) <= 0)
            continue;
        for (size_t i = n; i-- > 0;) {
            if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = recv(p[i + 1].fd, bufs[i] + lens[i], sizeof bufs[i] - lens[i], 0);
            if (got > 0) {
                lens[i] += (size_t)got;
                if (rawo_serve(r, p[i + 1].fd, bufs[i], &lens[i]) && lens[i] < sizeof bufs[i])
                    continue;
            }
            close(p[i + 1].fd); /* closed, failed or a head too long: drop it */
            n--;
            p[i + 1] = p[n + 1];
            memcpy(bufs[i], bufs[n], lens[n]);
            lens[i] = lens[n];
        }
        if ((p[0].revents & POLLIN) && n < RAWO_CONNS) {
            int c = accept(r->lfd, NULL, NULL);
            if (c >= 0) {
                p[n + 1] = (struct pollfd){.fd = c, .events = POLLIN};
                lens[n++] = 0;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        close(p[i + 1].fd);
    return NULL;
}

struct rawo *rawo_start(const char *response)
{
    struct rawo *r = calloc(1, sizeof *r);
    if (r == NULL || (r->response = strdup(response)) == NULL) {
        free(r);
        return NULL;
    }
    r->response_len = strlen(response);
    atomic_init(&r->stop, false);
    atomic_init(&r->requests, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(r->lfd, 16) != 0 || getsockname(r->lfd, (struct sockaddr *)&a, &alen) != 0 ||
        pthread_create(&r->thread, NULL, rawo_main, r) != 0) {
        fprintf(stderr, "raw origin: %s\n", strerror(errno));
        if (r->lfd >= 0)
            close(r->lfd);
        free(r->response);
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%u", (unsigned)r->port);
    return r;
}

uint16_t rawo_port(const struct rawo *r) { return r->port; }

const char *rawo_url(const struct rawo *r) { return r->url; }

unsigned rawo_requests(struct rawo *r) { return atomic_load(&r->requests); }

void rawo_stop(struct rawo *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    free(r->response);
    free(r);
}

uint16_t hx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- processes ------------------------------------------------------------------- */

static pid_t spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    int ofd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = -1;
    if (ofd >= 0 && efd >= 0 && nfd >= 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, nfd, 0);
        posix_spawn_file_actions_adddup2(&fa, ofd, 1);
        posix_spawn_file_actions_adddup2(&fa, efd, 2);
        if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
            pid = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    if (ofd >= 0)
        close(ofd);
    if (efd >= 0)
        close(efd);
    if (nfd >= 0)
        close(nfd);
    return pid;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Waits up to `timeout_s` for `pid`; returns its decoded status, or -2 if still running. */
static int wait_pid(pid_t pid, double timeout_s)
{
    double end = hx_now() + timeout_s;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return decode_status(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (hx_now() > end)
            return -2;
        sleep_s(0.01);
    }
}

static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

int hx_run(const char *const *argv, double timeout_s, char **out, char **err)
{
    char tmpl[] = "/tmp/cp-it-run-XXXXXX";
    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    if (mkdtemp(tmpl) == NULL)
        return -1;
    char *op = xasprintf("%s/out", tmpl);
    char *ep = xasprintf("%s/err", tmpl);
    int status = -1;
    pid_t pid = spawn(argv, op, ep);
    if (pid > 0) {
        status = wait_pid(pid, timeout_s);
        if (status == -2) {
            fprintf(stderr, "harness: %s did not finish in %.1f s\n", argv[0], timeout_s);
            kill_and_reap(pid);
            status = -1;
        }
    }
    if (out)
        *out = hx_read_file(op, NULL);
    if (err)
        *err = hx_read_file(ep, NULL);
    free(op);
    free(ep);
    hx_rmtree(tmpl);
    return status;
}

const char *hx_proxy_path(void)
{
    return getenv("CP_PROXY");
}

int hx_global_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *p = hx_proxy_path();
    if (p == NULL || access(p, X_OK) != 0) {
        fprintf(stderr, "CP_PROXY must name the caching-proxy binary (got %s)\n",
                p ? p : "nothing");
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return -1;
    }
    return 0;
}

void hx_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- fixture --------------------------------------------------------------------- */

int hx_setup(void **state)
{
    struct hx *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -1;
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(h->tmp, sizeof h->tmp, "%s/cp-it-XXXXXX", base);
    if (mkdtemp(h->tmp) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", h->tmp, strerror(errno));
        free(h);
        return -1;
    }
    h->origin = orig_start("127.0.0.1", NULL, NULL);
    if (h->origin == NULL) {
        hx_rmtree(h->tmp);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

/* Sanitizer reports a proxy built with -fsanitize writes to its stderr. */
static bool sanitizer_report(const char *err)
{
    return err != NULL &&
           (strstr(err, "Sanitizer") != NULL || strstr(err, "runtime error:") != NULL);
}

int hx_teardown(void **state)
{
    struct hx *h = *state;
    if (h == NULL)
        return 0;
    bool show = getenv("CP_IT_VERBOSE") != NULL;
    int ret = 0;
    for (size_t i = 0; i < h->npx; i++) {
        struct proxy *p = h->px[i];
        bool show_this = show;
        /* A clean stop, so a leak or a crash at exit is seen here too. */
        if (p->pid > 0) {
            int st = hx_proxy_stop(p);
            if (st != 0) {
                fprintf(stderr, "harness: proxy %zu exited with %d when stopped\n", i, st);
                ret = -1;
                show_this = true; /* what it said before dying is the first clue */
            }
        }
        char *e = hx_read_file(p->err_path, NULL);
        if (sanitizer_report(e)) {
            fprintf(stderr, "harness: proxy %zu reported a sanitizer error\n", i);
            ret = -1;
            show_this = true;
        }
        if (show_this)
            fprintf(stderr, "---- proxy %zu stderr ----\n%s", i, e ? e : "");
        free(e);
        free(p);
    }
    for (size_t i = 0; i < h->nextra; i++)
        orig_stop(h->extra[i]);
    orig_stop(h->origin);
    hx_rmtree(h->tmp);
    free(h);
    *state = NULL;
    return ret;
}

struct orig *hx_origin(struct hx *h, const char *ip, bool tls)
{
    if (h->nextra >= HX_MAX_ORIGINS)
        return NULL;
    struct orig *o;
    if (tls) {
        const char *cert = hx_cert_path(h);
        if (cert == NULL)
            return NULL;
        o = orig_start(ip, cert, h->key);
    } else {
        o = orig_start(ip, NULL, NULL);
    }
    if (o)
        h->extra[h->nextra++] = o;
    return o;
}

const char *hx_cert_path(struct hx *h)
{
    char *cert = h->cert, *key = h->key;
    snprintf(cert, sizeof h->cert, "%s/cert.pem", h->tmp);
    snprintf(key, sizeof h->key, "%s/key.pem", h->tmp);
    if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
        return cert;
    const char *openssl = getenv("CP_OPENSSL");
    if (openssl == NULL)
        openssl = "/usr/bin/openssl";
    const char *argv[] = { openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=localhost", "-addext",
                           "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out",
                           cert, NULL };
    char *err = NULL;
    int st = hx_run(argv, 60.0, NULL, &err);
    if (st != 0) {
        fprintf(stderr, "harness: openssl failed (%d): %s\n", st, err ? err : "");
        free(err);
        return NULL;
    }
    free(err);
    return cert;
}

void hx_fresh_dir(struct hx *h, char *out, size_t len)
{
    snprintf(out, len, "%s/cache%u", h->tmp, h->dirs++);
}

static bool port_accepts(uint16_t port)
{
    int fd = hx_connect(port);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

struct proxy *hx_proxy_start(struct hx *h, const char *origin_url, const char *cache_dir,
                             const char *const *extra)
{
    if (h->npx >= HX_MAX_PROXIES) {
        fprintf(stderr, "harness: too many proxies in one test\n");
        return NULL;
    }
    struct proxy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    size_t idx = h->npx;
    h->px[h->npx++] = p;
    if (cache_dir)
        snprintf(p->cache_dir, sizeof p->cache_dir, "%s", cache_dir);
    else
        hx_fresh_dir(h, p->cache_dir, sizeof p->cache_dir);
    snprintf(p->out_path, sizeof p->out_path, "%s/proxy%zu.out", h->tmp, idx);
    snprintf(p->err_path, sizeof p->err_path, "%s/proxy%zu.err", h->tmp, idx);
    /* Restarted on its cache directory, a proxy gets its earlier port back, as a
     * server restarted in place would: the Host (port included) is in the cache key. */
    p->port = 0;
    for (size_t i = 0; cache_dir != NULL && i < idx; i++)
        if (h->px[i]->pid == 0 && h->px[i]->port != 0 &&
            strcmp(h->px[i]->cache_dir, p->cache_dir) == 0)
            p->port = h->px[i]->port;
    if (p->port == 0)
        p->port = hx_free_port();
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)p->port);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = hx_proxy_path();
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--origin";
    argv[n++] = origin_url;
    argv[n++] = "--cache-dir";
    argv[n++] = p->cache_dir;
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    p->pid = spawn(argv, p->out_path, p->err_path);
    if (p->pid <= 0) {
        fprintf(stderr, "harness: cannot run %s\n", argv[0]);
        p->pid = 0;
        return NULL;
    }
    double end = hx_now() + 5.0;
    for (;;) {
        if (port_accepts(p->port))
            return p;
        int st = wait_pid(p->pid, 0);
        if (st != -2) {
            p->pid = 0;
            char *e = hx_read_file(p->err_path, NULL);
            fprintf(stderr, "harness: proxy exited (%d) before listening: %s\n", st,
                    e ? e : "");
            free(e);
            return NULL;
        }
        if (hx_now() > end) {
            char *e = hx_read_file(p->err_path, NULL);
            fprintf(stderr, "harness: proxy not listening on %u after 5 s: %s\n",
                    (unsigned)p->port, e ? e : "");
            free(e);
            return NULL;
        }
        sleep_s(0.01);
    }
}

int hx_proxy_stop(struct proxy *p)
{
    if (p == NULL || p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    int st = wait_pid(p->pid, 10.0);
    if (st == -2) {
        fprintf(stderr, "harness: proxy ignored SIGTERM for 10 s\n");
        kill_and_reap(p->pid);
        st = -1;
    }
    p->pid = 0;
    return st;
}

char *hx_proxy_stderr(const struct proxy *p)
{
    return hx_read_file(p->err_path, NULL);
}

char *hx_proxy_stdout(const struct proxy *p)
{
    return hx_read_file(p->out_path, NULL);
}
