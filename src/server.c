/* The libmicrohttpd front end (see server.h). A request's life: its raw target is
 * captured when its first line is read; at its headers, GET/HEAD look in the cache and a
 * fresh hit is answered there and then; everything else reads its body, suspends the
 * connection and goes to the fetcher, whose callback resumes it with the result. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forward.h"
#include "http.h"
#include "log.h"
#include "policy.h"

struct server {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct cache *cache;
    struct mirror *mirror;
    struct fetcher *fetcher;
    struct policy_opts popts;
    int listen_fd;
    char address[80];
};

enum request_state { RQ_NEW, RQ_BODY, RQ_WAITING, RQ_READY };

struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    enum request_state state;
    char *target;          /* raw request target, as the client sent it */
    const char *method;    /* libmicrohttpd's copy, valid for the request's life */
    char *url;             /* the origin URL: also the primary cache key */
    struct hdrs headers;   /* the client's fields */
    unsigned char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool lookup;           /* GET/HEAD: the cache was consulted */
    struct entry *hit;     /* fresh entry found, sent once the request is fully read */
    struct fetch_result res;
};

static void request_free(struct request *rq)
{
    free(rq->target);
    free(rq->url);
    hdrs_free(&rq->headers);
    free(rq->body);
    fetch_result_free(&rq->res);
    entry_unref(rq->hit);
    free(rq);
}

/* Called by libmicrohttpd with the raw target before it splits off and decodes the
 * query: the only place where the target is seen byte for byte. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return NULL;
    rq->srv = cls;
    rq->conn = conn;
    hdrs_init(&rq->headers);
    hdrs_init(&rq->res.headers);
    rq->target = strdup(uri);
    if (rq->target == NULL) {
        free(rq);
        return NULL;
    }
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls)
        request_free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    return hdrs_add(cls, key, value ? value : "") == CP_OK ? MHD_YES : MHD_NO;
}

static void release_entry(void *cls) { entry_unref(cls); }

static enum MHD_Result add_fields(struct MHD_Response *resp, const struct hdrs *h)
{
    for (size_t i = 0; i < h->n; i++) {
        if (MHD_add_response_header(resp, h->v[i].name, h->v[i].value) != MHD_YES)
            log_debug("front end refused response field %s", h->v[i].name);
    }
    return MHD_YES;
}

/* Sends a short plain-text answer of our own (errors, refusals). */
static enum MHD_Result respond_text(struct request *rq, unsigned status, const char *text,
                                    enum cache_verdict verdict)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%u %s\n", status, text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "X-Cache", forward_verdict_name(verdict));
    if (status == 405)
        MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    enum MHD_Result r = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Content reader of a HEAD response: never called, since libmicrohttpd sends no body
 * for HEAD; it exists so that the response can carry the origin's Content-Length. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Sends `e` to the client without copying its body: libmicrohttpd holds a reference
 * until it has sent the last byte. `head_length` >= 0 is the Content-Length of a HEAD
 * response that the origin answered without a body. */
static enum MHD_Result respond_entry(struct request *rq, struct entry *e,
                                     enum cache_verdict verdict, int64_t age,
                                     int64_t head_length)
{
    struct hdrs out;
    hdrs_init(&out);
    if (forward_response_headers(&e->headers, verdict, age, &out) != CP_OK) {
        hdrs_free(&out);
        return respond_text(rq, 500, "Internal Server Error", verdict);
    }
    struct MHD_Response *resp;
    if (head_length >= 0) {
        resp = MHD_create_response_from_callback((uint64_t)head_length, 4096, no_body, NULL,
                                                 NULL);
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            e->body_len, e->body, release_entry, entry_ref(e));
        if (resp == NULL)
            entry_unref(e);
    }
    if (resp == NULL) {
        hdrs_free(&out);
        return MHD_NO;
    }
    add_fields(resp, &out);
    hdrs_free(&out);
    enum MHD_Result r = MHD_queue_response(rq->conn, (unsigned)e->status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void client_ip(struct MHD_Connection *conn, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, len, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* a dual-stack socket's IPv4 client */
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

/* Writes "ip:port" of the local address the client connected to (the proxy as the
 * client named it), or an empty string if unknown. */
static void self_authority(struct MHD_Connection *conn, char *buf, size_t len)
{
    buf[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char ip[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof ip);
            snprintf(buf, len, "%s:%u", ip, ntohs(s6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
        }
    }
}

/* Runs on the fetch thread: hands the result over and wakes the connection. */
static void on_fetched(void *arg, struct fetch_result *res)
{
    struct request *rq = arg;
    rq->res = *res;
    memset(res, 0, sizeof *res);
    rq->state = RQ_READY;
    MHD_resume_connection(rq->conn);
}

static enum MHD_Result send_to_origin(struct request *rq)
{
    struct server *srv = rq->srv;
    struct fetch_request fr = {0};
    char ip[INET6_ADDRSTRLEN];
    client_ip(rq->conn, ip, sizeof ip);
    hdrs_init(&fr.headers);
    fr.method = strdup(rq->method);
    fr.url = strdup(rq->url);
    if (fr.method == NULL || fr.url == NULL ||
        forward_request_headers(&rq->headers, ip, &fr.headers) != CP_OK) {
        fetch_request_free(&fr);
        return respond_text(rq, 500, "Internal Server Error", VERDICT_BYPASS);
    }
    fr.body = rq->body;
    fr.body_len = rq->body_len;
    rq->body = NULL;
    rq->body_len = 0;

    /* Suspend before submitting: the fetch may finish (and resume) at once. */
    rq->state = RQ_WAITING;
    MHD_suspend_connection(rq->conn);
    cp_err err = fetch_submit(srv->fetcher, &fr, on_fetched, rq);
    if (err != CP_OK) {
        rq->res.err = err;
        rq->state = RQ_READY;
        MHD_resume_connection(rq->conn);
    }
    return MHD_YES;
}

/* Builds the entry for an origin response; stores it when the rules allow. */
static struct entry *entry_from_result(struct request *rq, bool *stored)
{
    struct server *srv = rq->srv;
    struct fetch_result *res = &rq->res;
    *stored = false;
    struct entry *e = entry_new();
    if (e == NULL)
        return NULL;
    e->key = strdup(rq->url);
    e->status = res->status;
    e->request_time = res->request_time;
    e->response_time = res->response_time;
    if (e->key == NULL || forward_storable_headers(&res->headers, &e->headers) != CP_OK) {
        entry_unref(e);
        return NULL;
    }
    e->body = res->body;
    e->body_len = res->body_len;
    res->body = NULL;
    res->body_len = 0;
    e->initial_age = policy_initial_age(&res->headers, e->request_time, e->response_time);
    e->lifetime =
        policy_freshness_lifetime(e->status, &res->headers, e->response_time, &srv->popts);
    e->generation = cache_generation(srv->cache);

    if (strcmp(rq->method, "GET") != 0 ||
        !policy_storable(e->status, &rq->headers, &res->headers, e->body_len,
                         e->response_time, &srv->popts))
        return e;
    char *vary = NULL;
    if (hdrs_join(&res->headers, "Vary", &vary) != CP_OK ||
        http_vary_key(vary, &rq->headers, &e->vary_key) != CP_OK) {
        free(vary); /* Vary: * (or no memory): never reused, so not stored */
        return e;
    }
    free(vary);
    if (cache_insert(srv->cache, e) == CP_OK) {
        *stored = true;
        if (srv->mirror)
            mirror_write(srv->mirror, e);
    }
    return e;
}

static enum MHD_Result finish(struct request *rq)
{
    enum cache_verdict verdict = rq->lookup ? VERDICT_MISS : VERDICT_BYPASS;
    switch (rq->res.err) {
    case CP_OK:
        break;
    case CP_ERR_ORIGIN_TIMEOUT:
        return respond_text(rq, 504, "Gateway Timeout: origin timed out", verdict);
    case CP_ERR_SHUTDOWN:
        return respond_text(rq, 503, "Service Unavailable: shutting down", verdict);
    default:
        log_debug("%s %s: %s", rq->method, rq->url, cp_strerror(rq->res.err));
        {
            char text[128];
            snprintf(text, sizeof text, "Bad Gateway: %s", cp_strerror(rq->res.err));
            return respond_text(rq, 502, text, verdict);
        }
    }
    bool stored;
    struct entry *e = entry_from_result(rq, &stored);
    if (e == NULL)
        return respond_text(rq, 500, "Internal Server Error", verdict);
    /* The origin's Age is kept (as our corrected initial age) only if it sent one. */
    int64_t age = hdrs_get(&rq->res.headers, "Age") ? e->initial_age : -1;
    int64_t head_length = -1;
    const char *cl = hdrs_get(&rq->res.headers, "Content-Length");
    if (strcmp(rq->method, "HEAD") == 0 && cl != NULL && !http_parse_uint(cl, &head_length))
        head_length = -1;
    enum MHD_Result r = respond_entry(rq, e, verdict, age, head_length);
    entry_unref(e);
    log_debug("%s %s -> %d %s%s", rq->method, rq->url, rq->res.status,
              forward_verdict_name(verdict), stored ? " (stored)" : "");
    return r;
}

/* First call for a request: its fields are known, its body not yet read. */
static enum MHD_Result begin(struct request *rq, const char *method)
{
    struct server *srv = rq->srv;
    rq->method = method;
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, collect_header, &rq->headers);
    if (strcmp(method, "CONNECT") == 0)
        return respond_text(rq, 405, "Method Not Allowed: this is not a forward proxy",
                            VERDICT_BYPASS);
    char self[INET6_ADDRSTRLEN + 10] = "";
    if (rq->target[0] != '/') /* only an absolute-form target needs to know */
        self_authority(rq->conn, self, sizeof self);
    cp_err err = url_for_target(&srv->cfg->origin, rq->target, self, &rq->url);
    if (err != CP_OK)
        return respond_text(rq, 400, "Bad Request: request target not allowed",
                            VERDICT_BYPASS);
    rq->lookup = policy_method_cacheable(method);
    if (rq->lookup) {
        struct entry *e = cache_lookup(srv->cache, rq->url, &rq->headers);
        time_t now = time(NULL);
        if (e != NULL && entry_is_fresh(e, now)) {
            /* Answered at the request's last call: a response queued before then
             * makes libmicrohttpd close the connection instead of keeping it alive. */
            rq->hit = e;
        } else {
            entry_unref(e);
        }
    }
    rq->state = RQ_BODY;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct request *rq = *con_cls;
    if (rq == NULL)
        return MHD_NO; /* no memory for this request: drop the connection */
    rq->conn = conn;
    switch (rq->state) {
    case RQ_NEW:
        return begin(rq, method);
    case RQ_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (rq->body_too_large || rq->body_len + n > rq->srv->cfg->max_request_body) {
                rq->body_too_large = true;
                return MHD_YES; /* read and drop the rest, then answer 413 */
            }
            if (rq->body_len + n > rq->body_cap) {
                size_t cap = rq->body_cap ? rq->body_cap : 4096;
                while (cap < rq->body_len + n)
                    cap *= 2;
                unsigned char *b = realloc(rq->body, cap);
                if (b == NULL)
                    return MHD_NO;
                rq->body = b;
                rq->body_cap = cap;
            }
            memcpy(rq->body + rq->body_len, upload_data, n);
            rq->body_len += n;
            return MHD_YES;
        }
        if (rq->hit != NULL) {
            time_t now = time(NULL);
            return respond_entry(rq, rq->hit, VERDICT_HIT, entry_age(rq->hit, now), -1);
        }
        if (rq->body_too_large)
            return respond_text(rq, 413, "Content Too Large", VERDICT_BYPASS);
        return send_to_origin(rq);
    case RQ_WAITING:
        return MHD_YES;
    case RQ_READY:
        return finish(rq);
    }
    return MHD_NO;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    log_debug("front end: %s", buf);
}

/* Opens the listening socket ourselves so that a failure can be reported precisely. */
static cp_err open_listener(const struct config *cfg, int *fd_out, char *addr, size_t addr_len,
                            char *why, size_t why_len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int family;
    const char *host = cfg->bind;
    if (host == NULL) {
        /* All interfaces: IPv6 with IPv4 mapped in, else plain IPv4. */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons(cfg->port);
        family = AF_INET6;
        sl = sizeof *s6;
    } else if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(cfg->port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            goto bad_address;
        family = AF_INET6;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(cfg->port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            goto bad_address;
        family = AF_INET;
        sl = sizeof *s4;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 && host == NULL) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        memset(&ss, 0, sizeof ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(cfg->port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        family = AF_INET;
        sl = sizeof *s4;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        goto sys_error;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6 && host == NULL)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto sys_error;
    }
    *fd_out = fd;
    if (host == NULL)
        snprintf(addr, addr_len, "http://0.0.0.0:%u", cfg->port);
    else if (family == AF_INET6)
        snprintf(addr, addr_len, "http://[%s]:%u", host, cfg->port);
    else
        snprintf(addr, addr_len, "http://%s:%u", host, cfg->port);
    return CP_OK;
bad_address:
    snprintf(why, why_len, "--bind '%s'", host);
    return CP_ERR_BAD_ADDRESS;
sys_error:
    snprintf(why, why_len, "%s:%u: %s", host ? host : "*", cfg->port, strerror(errno));
    return CP_ERR_LISTEN;
}

cp_err server_start(const struct config *cfg, struct cache *cache, struct mirror *mirror,
                    struct fetcher *fetcher, struct server **out, char *why, size_t why_len)
{
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CP_ERR_NOMEM;
    s->cfg = cfg;
    s->cache = cache;
    s->mirror = mirror;
    s->fetcher = fetcher;
    s->popts.default_ttl = cfg->default_ttl;
    s->popts.max_object_size = cfg->max_object_size;
    cp_err err = open_listener(cfg, &s->listen_fd, s->address, sizeof s->address, why, why_len);
    if (err != CP_OK) {
        free(s);
        return err;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, so it sees every message */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
        MHD_OPTION_END);
    if (s->daemon == NULL) {
        close(s->listen_fd);
        free(s);
        snprintf(why, why_len, "the HTTP front end failed to start");
        return CP_ERR_INTERNAL;
    }
    *out = s;
    return CP_OK;
}

const char *server_address(const struct server *s) { return s->address; }

void server_quiesce(struct server *s)
{
    if (s == NULL || s->daemon == NULL)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
        s->listen_fd = -1;
    }
}

void server_stop(struct server *s)
{
    if (s == NULL)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}
