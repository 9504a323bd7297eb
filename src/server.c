/* The libmicrohttpd front end (see server.h). A request's life: its raw target is
 * captured when its first line is read; at its headers, GET/HEAD look in the cache and
 * the stored response decides (policy_reuse) whether it is served at once; everything
 * else reads its body, suspends the connection and goes to the fetcher (with our
 * validators when a stored response is being revalidated), whose callback resumes it
 * with the origin's answer. */
#include "server.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "collapse.h"
#include "conditional.h"
#include "fdlimit.h"
#include "forward.h"
#include "headroom.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "policy.h"
#include "range.h"
#include "readback.h"
#include "rawfields.h"
#include "relay.h"
#include "stream.h"
#include "update.h"

struct server {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct updater up;
    struct collapse *collapse; /* GETs waiting on another GET's origin fetch */
    struct readback *reader;   /* reads long records back from disk, off the front end */
    int listen_fd;
    char address[80];
};

enum request_state {
    RQ_NEW,       /* nothing seen yet but the target */
    RQ_BODY,      /* fields seen; reading the body */
    RQ_WAITING,   /* suspended: at the origin, or waiting on another request's fetch */
    RQ_READY,     /* the origin's answer is in `res` */
    RQ_COLLAPSED, /* the fetch this request waited on has ended: look in the cache again */
    RQ_READ_BACK, /* the disk read this request waited on has ended: look in memory again */
    RQ_STREAM,    /* the origin's head is in `res`, its body arrives through `relay` */
};

#define STREAM_WINDOW (1u << 20) /* bytes held for a client of a body too large to keep */

struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    enum request_state state;
    char *target;          /* raw request target, as the client sent it */
    const char *method;    /* libmicrohttpd's copy, valid for the request's life */
    char *url;             /* the origin URL */
    char *key;             /* the primary cache key: url and Host (url_cache_key) */
    struct hdrs headers;   /* the client's fields */
    unsigned char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool lookup;           /* GET/HEAD: the cache was consulted */
    struct entry *serve;   /* stored response to send once the request is fully read */
    struct cache_outcome outcome; /* of `serve`, or of the origin request */
    struct entry *stored;  /* stored response being revalidated (or kept for errors) */
    bool revalidating;     /* our validators went to the origin */
    bool leader;           /* others wait on this request's fetch (collapse_finish owed) */
    bool no_collapse;      /* waited once already: go to the origin itself */
    bool read_later;       /* records of its key too long to read on the front end */
    bool read_back;        /* ...had been read for it: not again */
    bool read_back_lost;   /* ...or never will be: the server is stopping */
    struct fetch_result res;
    struct relay *relay;   /* RQ_STREAM: the body in transit */
    size_t pool_use;       /* of libmicrohttpd's connection memory (headroom.h) */
};

static void request_free(struct request *rq)
{
    free(rq->target);
    free(rq->url);
    free(rq->key);
    hdrs_free(&rq->headers);
    free(rq->body);
    fetch_result_free(&rq->res);
    entry_unref(rq->serve);
    entry_unref(rq->stored);
    relay_unref(rq->relay);
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

/* The fields of a request as the client sent them, and whether one was folded. */
struct collected {
    struct hdrs *h;
    const char *end; /* of the header block in libmicrohttpd's buffer; NULL: unknown */
    bool folded;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct collected *c = cls;
    if (value == NULL)
        value = "";
    else if (rawfields_folded(key, value, c->end))
        c->folded = true;
    return hdrs_add(c->h, key, value) == CP_OK ? MHD_YES : MHD_NO;
}

static void release_entry(void *cls) { entry_unref(cls); }

/* A response head being filled, and the bytes its fields will take. */
struct head {
    struct MHD_Response *resp;
    size_t bytes;
};

/* forward_emit_fn: one field of a response into libmicrohttpd's (which copies it). */
static cp_err add_field(void *arg, const char *name, const char *value)
{
    struct head *h = arg;
    /* libmicrohttpd refuses an empty value; a blank one goes out as the same empty
     * field (whitespace around a value is not part of it, RFC 9110 5.5). */
    const char *v = value[0] ? value : " ";
    if (MHD_add_response_header(h->resp, name, v) != MHD_YES)
        log_debug("front end refused response field %s", name);
    h->bytes += headroom_field_bytes(name, v);
    return CP_OK;
}

static bool is_method(const struct request *rq, const char *m)
{
    return strcmp(rq->method, m) == 0;
}

/* Sends a short plain-text answer of our own (errors, refusals). */
static enum MHD_Result respond_text(struct request *rq, unsigned status, const char *text)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%u %s\n", status, text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "X-Cache",
                            forward_verdict_name(rq->lookup ? VERDICT_MISS : VERDICT_BYPASS));
    if (status == 405)
        MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    enum MHD_Result r = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Queues the response of `h` (and lets go of it) if its head fits in what the request
 * left of the connection's memory; else answers 431, or 502 for a head too large to
 * go out beside any request: libmicrohttpd would close the connection without one. */
static enum MHD_Result queue_head(struct request *rq, unsigned status, struct head *h)
{
    size_t pool = rq->srv->cfg->header_memory;
    enum headroom_verdict v = headroom_check(pool, rq->pool_use, h->bytes);
    if (v != HEADROOM_FITS) {
        MHD_destroy_response(h->resp);
        log_debug("%s %s: a response head of %zu bytes does not fit beside the request's",
                  rq->method, rq->url, h->bytes);
        if (v == HEADROOM_RESPONSE_TOO_LARGE)
            return respond_text(rq, 502, "Bad Gateway: response header too large");
        return respond_text(rq, 431, "Request Header Fields Too Large for this response");
    }
    enum MHD_Result r = MHD_queue_response(rq->conn, status, h->resp);
    MHD_destroy_response(h->resp);
    return r;
}

/* The `head_length` of respond() and queue() for an answer whose own body is sent
 * (HEAD_NONE), or that carries no body but speaks of one whose length nobody gave
 * (HEAD_UNTOLD); a length >= 0 is that of the body spoken of. */
enum { HEAD_NONE = -1, HEAD_UNTOLD = -2 };

/* Content reader of a response without a body (a HEAD's, a 304's): never called, since
 * libmicrohttpd sends no body for those; it exists so that the response can carry the
 * origin's Content-Length, or no length at all. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Queues `status` with the fields `src` rewritten for the client (outcome `o`) and the
 * bytes [start, start + len) of e's body, without copying them: libmicrohttpd holds a
 * reference to `e` until it has sent the last byte. A `head_length` other than
 * HEAD_NONE stands for the body of an answer that has none (see HEAD_UNTOLD). */
static enum MHD_Result queue(struct request *rq, unsigned status, const struct hdrs *src,
                             struct entry *e, size_t start, size_t len, int64_t head_length)
{
    struct MHD_Response *resp;
    if (head_length != HEAD_NONE) {
        /* An empty buffer would make libmicrohttpd say "Content-Length: 0", which such
         * an answer must not unless the body is empty (RFC 9110 8.6). Of unknown size,
         * it would say "chunked" and then send the last chunk, a body, all the same;
         * in HTTP/1.0 style it says no length and closes the connection after. */
        uint64_t size = head_length >= 0 ? (uint64_t)head_length : MHD_SIZE_UNKNOWN;
        resp = MHD_create_response_from_callback(size, 4096, no_body, NULL, NULL);
        if (resp != NULL && head_length == HEAD_UNTOLD &&
            MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) !=
                MHD_YES) {
            MHD_destroy_response(resp);
            resp = NULL;
        }
    } else if (e == NULL || len == 0) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            len, e->body + start, release_entry, entry_ref(e));
        if (resp == NULL)
            entry_unref(e);
    }
    if (resp == NULL)
        return MHD_NO;
    struct head h = {.resp = resp};
    if (forward_response_emit(src, &rq->outcome, add_field, &h) != CP_OK) {
        MHD_destroy_response(resp);
        return respond_text(rq, 500, "Internal Server Error");
    }
    return queue_head(rq, status, &h);
}

/* Sends the response `e` to the client as the request asks: a 304 when its own
 * conditions hold, a 206/416 for a Range, else the whole response. */
static enum MHD_Result respond(struct request *rq, struct entry *e, int64_t head_length)
{
    struct cache_outcome *o = &rq->outcome;
    struct hdrs fields;
    hdrs_init(&fields);
    const struct hdrs *src = &e->headers; /* the fields to rewrite; `fields` if changed */
    unsigned status = (unsigned)e->status;
    size_t start = 0, len = e->body_len;
    cp_err err = CP_OK;

    bool from_cache = rq->lookup && e->status == 200 && head_length == HEAD_NONE;
    if (from_cache && cond_not_modified(&rq->headers, &e->headers, e->status, e->response_time)) {
        status = 304;
        len = 0;
        err = cond_304_fields(&e->headers, &fields);
        src = &fields;
        /* libmicrohttpd gives a 304 a Content-Length whatever it holds: that of the 200
         * it stands for is the one value allowed (RFC 9110 8.6), never 0. */
        head_length = (int64_t)e->body_len;
    } else if (from_cache && is_method(rq, "GET") && hdrs_get(&rq->headers, "Range")) {
        struct range r = range_select(&rq->headers, &e->headers, e->body_len);
        if (r.kind != RANGE_FULL) {
            char cr[80];
            range_content_range(&r, e->body_len, cr, sizeof cr);
            err = hdrs_copy(&fields, &e->headers);
            hdrs_remove(&fields, "Content-Range");
            if (err == CP_OK)
                err = hdrs_add(&fields, "Content-Range", cr);
            src = &fields;
            status = r.kind == RANGE_PARTIAL ? 206 : 416;
            start = r.kind == RANGE_PARTIAL ? r.start : 0;
            len = r.kind == RANGE_PARTIAL ? r.length : 0;
        }
    }
    if (err != CP_OK) {
        hdrs_free(&fields);
        return respond_text(rq, 500, "Internal Server Error");
    }
    enum MHD_Result r = queue(rq, status, src, e, start, len, head_length);
    hdrs_free(&fields);
    if (log_get_level() >= LOG_LVL_DEBUG)
        log_debug("%s %s -> %u %s", rq->method, rq->url, status,
                  forward_verdict_name(o->verdict));
    return r;
}

/* Fills the outcome's freshness figures for a response served from `e` at `now`. */
static void outcome_times(struct cache_outcome *o, const struct entry *e, time_t now)
{
    o->age = entry_age(e, now);
    o->has_ttl = true;
    o->ttl = e->lifetime - o->age;
}

/* Serves the stored `e` without asking the origin (hit, or stale allowed). */
static enum MHD_Result serve_stored(struct request *rq, struct entry *e,
                                    enum cache_verdict verdict, const char *detail)
{
    rq->outcome = (struct cache_outcome){.verdict = verdict, .detail = detail,
                                         .collapsed = rq->no_collapse};
    outcome_times(&rq->outcome, e, time(NULL));
    return respond(rq, e, HEAD_NONE);
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

static void wake_collapsed(void *waiter);

/* One request at the origin. Until its body streams, `rq` is the client request
 * (suspended, so alive); once it streams, the client may go at any time, so what the
 * end of the transfer needs (storing, waking waiters) is kept here instead. */
struct call {
    struct server *srv;
    struct request *rq;        /* NULL once the body streams */
    struct relay *relay;
    char *key;
    struct hdrs request;       /* the client's fields, for storing */
    struct fetch_result head;  /* status, fields and times of the streamed response */
    char *vary;                /* its Vary fields joined, NULL if none */
    char *vary_key;            /* their values in `request`; NULL: no one else's */
    bool leader;               /* collapse_finish owed at the end */
    struct MHD_Connection *parked; /* the client's, to resume once bytes are in */
    int64_t length;            /* announced Content-Length, -1 if none */
    uint64_t received;         /* body bytes so far */
};

/* Lets the client's connection go on with the stream. Deferred from the head to the
 * first bytes, and past bytes that complete the body: a small body then reaches the
 * front end whole, and goes out with the head in one write (answer_stream). */
static void call_unpark(struct call *c)
{
    if (c->parked != NULL) {
        MHD_resume_connection(c->parked);
        c->parked = NULL;
    }
}

static void call_free(struct call *c)
{
    free(c->key);
    free(c->vary);
    free(c->vary_key);
    hdrs_free(&c->request);
    fetch_result_free(&c->head);
    relay_unref(c->relay);
    free(c);
}

static void resume_transfer(void *arg)
{
    struct call *c = arg;
    fetch_resume(c->srv->up.fetcher, c);
}

/* Whether the body of this response goes to the client as it arrives: a plain GET
 * answered with a body, whose answer needs nothing of the whole response first (not a
 * revalidation, whose 200 is checked against the client's own conditions, and not a
 * 5xx that a stored response might replace). */
static bool may_stream(const struct request *rq, int status)
{
    return is_method(rq, "GET") && !rq->revalidating && status >= 200 && status != 204 &&
           status != 304 && !(status >= 500 && rq->stored != NULL);
}

/* Whether the response `c` streams was selected for a request with fields `fields`
 * too: always without Vary, else when the fields it names hold the same values as in
 * the request it was fetched for (RFC 9111 4.1). Only called when on_head could tell
 * (c->vary_key set if c->vary is). */
static bool same_variant(const struct call *c, const struct hdrs *fields)
{
    if (c->vary == NULL)
        return true;
    char *key = NULL;
    bool same = http_vary_key(c->vary, fields, &key) == CP_OK && strcmp(key, c->vary_key) == 0;
    free(key);
    return same;
}

/* Wakes a request that waited on `call`'s fetch to read its body as it arrives, or,
 * when that response was selected by other values of the fields in its Vary, to look
 * again on its own (and go to the origin). */
static void share_stream(void *waiter, void *arg)
{
    struct request *rq = waiter;
    struct call *c = arg;
    hdrs_free(&rq->res.headers);
    if (same_variant(c, &rq->headers) && hdrs_copy(&rq->res.headers, &c->head.headers) == CP_OK) {
        rq->res.status = c->head.status;
        rq->res.request_time = c->head.request_time;
        rq->res.response_time = c->head.response_time;
        rq->relay = relay_ref(c->relay);
        rq->outcome.collapsed = true;
        rq->state = RQ_STREAM;
    } else {
        rq->state = RQ_COLLAPSED; /* another variant, or no memory: look again, alone */
    }
    rq->no_collapse = true;
    MHD_resume_connection(rq->conn);
}

/* Fetch thread: this fetch's response will not be stored. Waiting for its end would
 * only hold the requests that wait on it to its client's pace: they go to the origin
 * on their own now. */
static void call_release_waiters(struct call *c)
{
    if (!c->leader)
        return;
    c->leader = false;
    collapse_finish(c->srv->collapse, c->key, wake_collapsed, false, time(NULL));
}

/* Fetch thread: the final response's head is in. */
static bool on_head(void *arg, struct fetch_result *res)
{
    struct call *c = arg;
    struct request *rq = c->rq;
    struct server *srv = c->srv;
    if (!may_stream(rq, res->status))
        return false;
    /* Kept whole (to be stored) only if it may be stored, size aside. */
    bool storable = policy_storable(res->status, &rq->headers, &res->headers, 0,
                                    res->response_time, &srv->up.popts);
    struct relay *relay = relay_new(storable ? srv->cfg->max_object_size : 0, STREAM_WINDOW,
                                    resume_transfer, c);
    if (relay == NULL || (c->key = strdup(rq->key)) == NULL ||
        hdrs_copy(&c->request, &rq->headers) != CP_OK ||
        hdrs_copy(&rq->res.headers, &res->headers) != CP_OK) {
        relay_unref(relay);
        hdrs_free(&rq->res.headers); /* on_fetched fills it whole later */
        return false; /* the whole body then comes in the result, as usual */
    }
    /* The fetcher is done with the fields once the body streams (trailers, if any,
     * come in a list of their own): they move instead of being copied. */
    hdrs_free(&c->head.headers);
    c->head.headers = res->headers;
    hdrs_init(&res->headers);
    c->head.status = rq->res.status = res->status;
    c->head.request_time = rq->res.request_time = res->request_time;
    /* Received now, as far as age goes; on_call_done puts in the end's time. */
    c->head.response_time = rq->res.response_time = time(NULL);
    c->relay = relay;
    c->leader = rq->leader;
    rq->leader = false;
    rq->relay = relay_ref(relay);
    rq->state = RQ_STREAM;
    c->rq = NULL; /* from the resume on, the request may end at any time */
    c->parked = rq->conn;
    int64_t length = c->length = http_field_uint(&c->head.headers, "Content-Length");
    if (length >= 0)
        relay_expect(relay, (uint64_t)length);
    /* Waiters are given this response only if they would select it (Vary); with
     * "Vary: *", or without memory to tell, none would. */
    bool selectable = hdrs_join(&c->head.headers, "Vary", &c->vary) == CP_OK &&
                      (c->vary == NULL ||
                       http_vary_key(c->vary, &c->request, &c->vary_key) == CP_OK);
    /* Requests waiting on this fetch read the same bytes as they arrive, when they
     * will be kept whole (a length known and within the limit: nothing is dropped
     * under a slower reader) and they would select this response (share_stream).
     * Later ones wait for the end and find it stored. */
    if (!selectable || !relay_keeping(relay) ||
        (length >= 0 && (uint64_t)length > srv->cfg->max_object_size)) {
        call_release_waiters(c);
    } else if (c->leader && length >= 0) {
        collapse_release(srv->collapse, c->key, share_stream, c);
    }
    return true;
}

static bool on_data(void *arg, const unsigned char *p, size_t n)
{
    struct call *c = arg;
    bool taken = relay_write(c->relay, p, n);
    /* Grown past --max-object-size with no length announced: on_head could not tell. */
    if (c->leader && !relay_keeping(c->relay))
        call_release_waiters(c);
    if (taken)
        c->received += n;
    if (c->length < 0 || c->received < (uint64_t)c->length)
        call_unpark(c); /* else on_call_done does, with the end known */
    return taken;
}

/* Fetch thread: the transfer has ended. A streamed body kept whole is stored now. */
static void on_call_done(void *arg, struct fetch_result *res)
{
    struct call *c = arg;
    if (c->rq != NULL) { /* never streamed: the request takes it from here */
        struct request *rq = c->rq;
        c->rq = NULL;
        call_free(c);
        on_fetched(rq, res);
        return;
    }
    bool ok = res->err == CP_OK;
    bool stored = false;
    size_t len = 0;
    unsigned char *body = NULL;
    if (ok && relay_take(c->relay, &body, &len)) { /* an empty body is stored too */
        c->head.response_time = res->response_time;
        c->head.body = body;
        c->head.body_len = len;
        struct entry *e = update_from_response(&c->srv->up, c->key, "GET", &c->request,
                                               &c->head, &stored);
        if (e != NULL)
            relay_keep(c->relay, e, release_entry); /* e owns the bytes now */
        else
            relay_keep(c->relay, body, free);
        c->head.body = NULL;
    }
    /* Done with sharing before the client sees the end: a request it sends next must
     * find the stored response (or go to the origin), not join this finished fetch. */
    if (c->leader)
        collapse_finish(c->srv->collapse, c->key, wake_collapsed,
                        stored || !ok || c->head.status >= 500, time(NULL));
    relay_end(c->relay, ok);
    call_unpark(c);
    call_free(c);
}

static const struct fetch_sink call_sink = {.head = on_head, .data = on_data};

/* The head of a streamed response is in: answer the client, body to follow. */
static enum MHD_Result answer_stream(struct request *rq)
{
    struct cache_outcome *o = &rq->outcome;
    o->fwd_status = rq->res.status;
    o->age = http_field_uint(&rq->res.headers, "Age"); /* passed as it came */
    int64_t length = http_field_uint(&rq->res.headers, "Content-Length");
    uint64_t size = length >= 0 ? (uint64_t)length : MHD_SIZE_UNKNOWN;
    /* Stored at the end if it is kept whole and arrives whole; with its length known
     * up front that is as good as certain, and Cache-Status says so now. */
    struct server *srv = rq->srv;
    if (relay_keeping(rq->relay) && size != MHD_SIZE_UNKNOWN &&
        size <= srv->cfg->max_object_size) {
        o->stored = true;
        o->has_ttl = true;
        o->ttl = policy_freshness_lifetime(rq->res.status, &rq->res.headers,
                                           rq->res.response_time, &srv->up.popts) -
                 policy_initial_age(&rq->res.headers, rq->res.request_time,
                                    rq->res.response_time);
    }
    struct MHD_Response *resp = stream_response(rq->relay, rq->conn, size);
    if (resp == NULL)
        return MHD_NO;
    struct head h = {.resp = resp};
    if (forward_response_emit(&rq->res.headers, o, add_field, &h) != CP_OK) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return queue_head(rq, (unsigned)rq->res.status, &h);
}

/* Sends the request to the origin; the connection is suspended until the answer is in
 * (`suspended`: it already is). */
static enum MHD_Result send_to_origin(struct request *rq, bool suspended)
{
    struct server *srv = rq->srv;
    struct fetch_request fr = {0};
    char ip[64];
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    listener_ip_text(ci ? ci->client_addr : NULL, ip, sizeof ip);
    hdrs_init(&fr.headers);
    fr.method = strdup(rq->method);
    fr.url = strdup(rq->url);
    cp_err err = CP_ERR_NOMEM;
    if (fr.method != NULL && fr.url != NULL)
        err = forward_request_headers(&rq->headers, ip, &fr.headers);
    if (err == CP_OK && rq->stored != NULL && cond_has_validator(&rq->stored->headers)) {
        /* Our validators replace the client's conditions (answered by respond() from
         * whatever comes back), and a Range is served from the whole response. */
        err = cond_add_validators(&fr.headers, &rq->stored->headers);
        hdrs_remove(&fr.headers, "Range");
        hdrs_remove(&fr.headers, "If-Range");
        rq->revalidating = true;
    }
    if (err != CP_OK) {
        fetch_request_free(&fr);
        return respond_text(rq, 500, "Internal Server Error");
    }
    fr.body = rq->body;
    fr.body_len = rq->body_len;
    rq->body = NULL;
    rq->body_len = 0;

    /* Suspend before submitting: the fetch may finish (and resume) at once. */
    rq->state = RQ_WAITING;
    if (!suspended)
        MHD_suspend_connection(rq->conn);
    struct call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        fetch_request_free(&fr);
        err = CP_ERR_NOMEM;
    } else {
        call->srv = srv;
        call->rq = rq;
        hdrs_init(&call->request);
        hdrs_init(&call->head.headers);
        err = fetch_submit_sink(srv->up.fetcher, &fr, &call_sink, on_call_done, call);
        if (err != CP_OK)
            call_free(call); /* submit failed: `done` is not called */
    }
    if (err != CP_OK) {
        rq->res.err = err;
        rq->state = RQ_READY;
        MHD_resume_connection(rq->conn);
    }
    return MHD_YES;
}

/* The origin failed (no answer, or a 5xx): serve the stored response if its
 * stale-if-error window or --serve-stale-on-error allows; else return false. */
static bool stale_on_error(struct request *rq, enum MHD_Result *r)
{
    struct entry *e = rq->stored;
    if (e == NULL)
        return false;
    time_t now = time(NULL);
    if (!policy_stale_on_error(&e->headers, e->lifetime, entry_age(e, now), &rq->headers,
                               rq->srv->cfg->serve_stale_on_error))
        return false;
    *r = serve_stored(rq, e, VERDICT_STALE, "stale-if-error");
    return true;
}

static void look_up(struct request *rq);

/* Wakes a request that waited on another's fetch (collapse_finish's callback). */
static void wake_collapsed(void *waiter)
{
    struct request *rq = waiter;
    rq->state = RQ_COLLAPSED;
    MHD_resume_connection(rq->conn);
}

/* True if the request may wait on another request's fetch of the same URL and then
 * be answered from what that fetch stored: a plain GET, with nothing of its own for
 * the origin to decide (conditions, ranges). */
static bool may_collapse(const struct request *rq)
{
    static const char *const own[] = {"Range", "If-None-Match", "If-Modified-Since",
                                      "If-Range", "If-Match", "If-Unmodified-Since"};
    if (!rq->lookup || rq->no_collapse || !is_method(rq, "GET"))
        return false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (hdrs_get(&rq->headers, own[i]) != NULL)
            return false;
    return true;
}

/* Goes to the origin, unless the same URL is being fetched already: then waits for
 * that fetch (suspended), to look in the cache again when it ends. */
static enum MHD_Result fetch_or_wait(struct request *rq)
{
    if (!may_collapse(rq))
        return send_to_origin(rq, false);
    /* Suspend before joining: the fetch waited on may end (and wake us) at once. */
    rq->state = RQ_WAITING;
    MHD_suspend_connection(rq->conn);
    if (collapse_join(rq->srv->collapse, rq->key, rq, &rq->leader, time(NULL)))
        return MHD_YES;
    return send_to_origin(rq, true);
}

/* After the fetch this request waited on: the cache again, else the origin. */
static enum MHD_Result after_collapse(struct request *rq)
{
    entry_unref(rq->stored);
    rq->stored = NULL;
    rq->no_collapse = true; /* wait once at most */
    look_up(rq);
    if (rq->serve != NULL)
        return serve_stored(rq, rq->serve, rq->outcome.verdict, rq->outcome.detail);
    rq->outcome.collapsed = true; /* waited, then found nothing it could use */
    return send_to_origin(rq, false);
}

static enum MHD_Result answer_from_origin(struct request *rq);

/* The origin's answer is in: answer the client, then let the requests that waited on
 * this fetch look in the cache (which now holds whatever could be stored). */
static enum MHD_Result finish(struct request *rq)
{
    enum MHD_Result r = answer_from_origin(rq);
    if (rq->leader) {
        /* Only an answer the origin meant (not a failure it may recover from) marks
         * the URL as one to fetch side by side. */
        bool not_storable = rq->res.err == CP_OK && rq->res.status < 500 && !rq->outcome.stored;
        rq->leader = false;
        collapse_finish(rq->srv->collapse, rq->key, wake_collapsed, !not_storable, time(NULL));
    }
    return r;
}

static enum MHD_Result answer_from_origin(struct request *rq)
{
    struct server *srv = rq->srv;
    struct fetch_result *res = &rq->res;
    enum MHD_Result r;
    if (res->err != CP_OK) {
        if (stale_on_error(rq, &r))
            return r;
        log_debug("%s %s: %s", rq->method, rq->url, cp_strerror(res->err));
        if (res->err == CP_ERR_ORIGIN_TIMEOUT)
            return respond_text(rq, 504, "Gateway Timeout: origin timed out");
        if (res->err == CP_ERR_SHUTDOWN)
            return respond_text(rq, 503, "Service Unavailable: shutting down");
        char text[128];
        snprintf(text, sizeof text, "Bad Gateway: %s", cp_strerror(res->err));
        return respond_text(rq, 502, text);
    }
    if (res->status >= 500 && res->status <= 504 && res->status != 501 &&
        stale_on_error(rq, &r))
        return r;

    struct cache_outcome *o = &rq->outcome;
    o->fwd_status = res->status;
    bool stored = false;
    struct entry *e;
    if (rq->revalidating && res->status == 304) {
        e = update_revalidated(&srv->up, rq->stored, &rq->headers, res, &stored);
        o->verdict = VERDICT_REVALIDATED;
    } else {
        e = update_from_response(&srv->up, rq->key, rq->method, &rq->headers, res, &stored);
        if (!rq->lookup)
            update_invalidate(&srv->up, rq->url, hdrs_get(&rq->headers, "Host"), res->status,
                              &res->headers);
    }
    if (e == NULL)
        return respond_text(rq, 500, "Internal Server Error");
    o->stored = stored;
    if (stored || o->verdict == VERDICT_REVALIDATED)
        outcome_times(o, e, time(NULL));
    if (o->verdict != VERDICT_REVALIDATED) {
        /* Generated by the origin for this very request: an Age from upstream passes
         * as it came, none is made up. */
        o->age = http_field_uint(&res->headers, "Age");
    }
    int64_t head_length = HEAD_NONE;
    if ((is_method(rq, "HEAD") || res->status == 304) && o->verdict != VERDICT_REVALIDATED) {
        /* Bodiless, yet speaking of the body a GET would get: of the length the
         * origin gave, if it gave one. */
        int64_t given = http_field_uint(&res->headers, "Content-Length");
        head_length = given >= 0 ? given : HEAD_UNTOLD;
    }
    r = respond(rq, e, head_length);
    entry_unref(e);
    return r;
}

/* Consults the cache for a GET/HEAD: sets up rq->serve (answer from the cache) or
 * rq->stored plus the outcome's fwd reason (ask the origin). */
static void look_up(struct request *rq)
{
    struct server *srv = rq->srv;
    bool uri_known = false;
    struct entry *e = update_lookup(&srv->up, rq->key, &rq->headers, &uri_known,
                                    rq->read_back ? NULL : &rq->read_later);
    rq->outcome = (struct cache_outcome){.verdict = VERDICT_MISS, .age = -1};
    if (e == NULL) {
        rq->outcome.fwd = uri_known ? "vary-miss" : "uri-miss";
        return;
    }
    time_t now = time(NULL);
    switch (policy_reuse(&e->headers, e->lifetime, entry_age(e, now), &rq->headers)) {
    case REUSE_FRESH:
        rq->serve = e;
        rq->outcome.verdict = VERDICT_HIT;
        return;
    case REUSE_STALE:
        rq->serve = e;
        rq->outcome.verdict = VERDICT_STALE;
        rq->outcome.detail = "max-stale";
        return;
    case REUSE_STALE_REFRESH:
        rq->serve = e;
        rq->outcome.verdict = VERDICT_STALE;
        rq->outcome.detail = "stale-while-revalidate";
        if (update_refresh(&srv->up, e, &rq->headers) != CP_OK)
            log_debug("background refresh of %s not started", rq->url);
        return;
    case REUSE_REVALIDATE:
    case REUSE_NONE:
        rq->stored = e;
        rq->outcome.fwd = "stale";
        return;
    }
}

/* Wakes a request whose records the reader has read back (readback_submit's `done`),
 * or never will (`made` false: the server is stopping). */
static void wake_read_back(void *arg, bool made)
{
    struct request *rq = arg;
    rq->read_back_lost = !made;
    rq->state = RQ_READ_BACK;
    MHD_resume_connection(rq->conn);
}

/* Has the records of the request's key read back from disk by the reader, suspended
 * meanwhile, to look in memory again after (once: then the origin answers). */
static enum MHD_Result read_back(struct request *rq)
{
    rq->read_later = false;
    rq->read_back = true;
    /* Suspend before submitting: the read may be over (and resume us) at once. */
    rq->state = RQ_WAITING;
    MHD_suspend_connection(rq->conn);
    cp_err err = readback_submit(rq->srv->reader, rq->key, &rq->headers, wake_read_back, rq);
    if (err != CP_OK) /* not read: the origin answers, unless the server is stopping */
        wake_read_back(rq, err != CP_ERR_SHUTDOWN);
    return MHD_YES;
}

/* Answers from the cache what is there now, else from the origin (RQ_BODY's end). */
static enum MHD_Result answer(struct request *rq)
{
    if (rq->serve != NULL)
        return serve_stored(rq, rq->serve, rq->outcome.verdict, rq->outcome.detail);
    if (rq->read_later)
        return read_back(rq);
    if (rq->lookup && policy_only_if_cached(&rq->headers))
        return respond_text(rq, 504, "Gateway Timeout: not in cache (only-if-cached)");
    return fetch_or_wait(rq);
}

/* After the reader's read: memory again, else the origin. */
static enum MHD_Result after_read_back(struct request *rq)
{
    /* Stopping: not to wait again behind another request's fetch, which libmicrohttpd
     * would have to stop with this connection suspended. */
    if (rq->read_back_lost)
        return respond_text(rq, 503, "Service Unavailable: shutting down");
    entry_unref(rq->stored);
    rq->stored = NULL;
    look_up(rq);
    return answer(rq);
}

/* Answers 431 to a request that left almost no connection memory: a head with no
 * fields of ours, the smallest there is. */
static enum MHD_Result refuse_oversized(struct request *rq)
{
    static const char text[] = "431 Request Header Fields Too Large\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result r = MHD_queue_response(rq->conn, 431, resp);
    MHD_destroy_response(resp);
    return r;
}

/* What the request takes of libmicrohttpd's connection memory (headroom.h). */
static size_t request_pool_use(const struct request *rq)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Cookie");
    struct headroom_request r = {
        /* Without the size (never expected once the fields are in), assume the worst. */
        .header_size = ci != NULL ? ci->header_size : rq->srv->cfg->header_memory,
        .cookie_len = cookie != NULL ? strlen(cookie) : 0,
    };
    static const enum MHD_ValueKind kinds[] = {MHD_HEADER_KIND, MHD_COOKIE_KIND,
                                               MHD_GET_ARGUMENT_KIND};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int n = MHD_get_connection_values(rq->conn, kinds[i], NULL, NULL);
        r.records += n > 0 ? (size_t)n : 0;
    }
    return headroom_request_use(&r);
}

/* Whether libmicrohttpd delimits the request's body: it reads one as chunked only when
 * the raw Transfer-Encoding value is exactly "chunked" (any case), whitespace after it
 * included, and any other to the end of the connection, which a client keeping it open
 * waits on for ever. (The fields in rq->headers are trimmed, so they cannot tell.) */
static bool front_end_reads_coding(struct MHD_Connection *conn)
{
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    return te == NULL || strcasecmp(te, "chunked") == 0;
}

/* An absolute-form target's authority replaces the request's Host (RFC 9112 3.2.2), so
 * that the cache key and the X-Forwarded-Host the origin gets both come from it. */
static cp_err take_target_host(struct request *rq)
{
    char *authority = NULL;
    cp_err err = url_target_authority(rq->target, &authority);
    if (err == CP_OK && authority != NULL) {
        hdrs_remove(&rq->headers, "Host");
        err = hdrs_add(&rq->headers, "Host", authority);
    }
    free(authority);
    return err;
}

/* First call for a request: its fields are known, its body not yet read. */
static enum MHD_Result begin(struct request *rq, const char *method, const char *version)
{
    struct server *srv = rq->srv;
    rq->method = method;
    /* The header block starts at the method, in place in libmicrohttpd's buffer. */
    const union MHD_ConnectionInfo *hs =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    struct collected fields = {.h = &rq->headers, .end = hs ? method + hs->header_size : NULL};
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, collect_header, &fields);
    rq->pool_use = request_pool_use(rq);
    if (!headroom_request_fits(srv->cfg->header_memory, rq->pool_use))
        return refuse_oversized(rq);
    if (fields.folded || !http_request_fields_ok(&rq->headers))
        return respond_text(rq, 400, "Bad Request: malformed header field");
    /* Answered now, before its body: libmicrohttpd then closes the connection. */
    if (!http_request_framing_ok(&rq->headers, strcmp(version, MHD_HTTP_VERSION_1_0) == 0))
        return respond_text(rq, 400, "Bad Request: Transfer-Encoding with Content-Length or "
                                     "in HTTP/1.0");
    /* A client waiting for 100 (Continue) before it sends a body announced too large
     * is refused at once. Others are sending it already: it is read (and dropped)
     * before the 413, which a close with unread bytes would lose to a reset. */
    int64_t announced = http_field_uint(&rq->headers, "Content-Length");
    if (announced > 0 && (uint64_t)announced > srv->cfg->max_request_body &&
        hdrs_has_token(&rq->headers, "Expect", "100-continue"))
        return respond_text(rq, 413, "Content Too Large");
    /* RFC 9112 3.2. (libmicrohttpd's own check, in its strict mode, sends its answer's
     * head twice.) */
    if (strcmp(version, MHD_HTTP_VERSION_1_0) != 0 && hdrs_get(&rq->headers, "Host") == NULL)
        return respond_text(rq, 400, "Bad Request: no Host field");
    if (!http_request_coding_ok(&rq->headers) || !front_end_reads_coding(rq->conn))
        return respond_text(rq, 501, "Not Implemented: a transfer coding other than chunked");
    if (strcmp(method, "CONNECT") == 0)
        return respond_text(rq, 405, "Method Not Allowed: this is not a forward proxy");
    char self[80] = "";
    if (rq->target[0] != '/') { /* only an absolute-form target needs to know */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL)
            listener_local_authority(ci->connect_fd, self, sizeof self);
    }
    if (url_for_target(&srv->cfg->origin, rq->target, self, &rq->url) != CP_OK)
        return respond_text(rq, 400, "Bad Request: request target not allowed");
    if (take_target_host(rq) != CP_OK ||
        url_cache_key(rq->url, hdrs_get(&rq->headers, "Host"), &rq->key) != CP_OK)
        return respond_text(rq, 500, "Internal Server Error");
    rq->lookup = policy_method_cacheable(method);
    if (rq->lookup)
        look_up(rq);
    else
        rq->outcome = (struct cache_outcome){.verdict = VERDICT_BYPASS, .fwd = "bypass",
                                             .age = -1};
    /* Even a hit is answered at the request's last call: a response queued before
     * then makes libmicrohttpd close the connection instead of keeping it alive. */
    rq->state = RQ_BODY;
    return MHD_YES;
}

/* Collects a chunk of request body; past --max-request-body the rest is dropped and
 * the request answered 413. */
static enum MHD_Result take_body(struct request *rq, const char *data, size_t n)
{
    if (rq->body_too_large || rq->body_len + n > rq->srv->cfg->max_request_body) {
        rq->body_too_large = true;
        return MHD_YES;
    }
    if (bytes_reserve(&rq->body, &rq->body_cap, rq->body_len + n, 0) != CP_OK)
        return MHD_NO;
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)url;
    struct request *rq = *con_cls;
    if (rq == NULL)
        return MHD_NO; /* no memory for this request: drop the connection */
    rq->conn = conn;
    switch (rq->state) {
    case RQ_NEW:
        return begin(rq, method, version);
    case RQ_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            return take_body(rq, upload_data, n);
        }
        if (rq->body_too_large && rq->serve == NULL)
            return respond_text(rq, 413, "Content Too Large");
        return answer(rq);
    case RQ_WAITING:
        return MHD_YES;
    case RQ_READY:
        return finish(rq);
    case RQ_COLLAPSED:
        return after_collapse(rq);
    case RQ_READ_BACK:
        return after_read_back(rq);
    case RQ_STREAM:
        return answer_stream(rq);
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

cp_err server_start(const struct config *cfg, int listen_fd, const char *address,
                    struct cache *cache, struct store *store, struct mirror *mirror,
                    const atomic_bool *loading, struct fetcher *fetcher,
                    struct server **out, char *why, size_t why_len)
{
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(listen_fd);
        return CP_ERR_NOMEM;
    }
    s->listen_fd = listen_fd;
    snprintf(s->address, sizeof s->address, "%s", address);
    s->cfg = cfg;
    s->up = (struct updater){
        .cache = cache,
        .mirror = mirror,
        .store = store,
        .loading = loading,
        .fetcher = fetcher,
        .origin = &cfg->origin,
        .popts = {.default_ttl = cfg->default_ttl, .max_object_size = cfg->max_object_size},
    };
    if (collapse_new(&s->collapse) != CP_OK) {
        close(listen_fd);
        free(s);
        return CP_ERR_NOMEM;
    }
    cp_err err = store != NULL ? readback_start(&s->up, &s->reader) : CP_OK;
    if (err != CP_OK) {
        close(listen_fd);
        collapse_free(s->collapse);
        free(s);
        snprintf(why, why_len, "the disk reader failed to start");
        return err;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, so it sees every message */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(cfg->max_connections != 0
                                                        ? cfg->max_connections
                                                        : FDLIMIT_DEFAULT_CONNECTIONS),
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->header_memory,
        MHD_OPTION_END);
    if (s->daemon == NULL) {
        close(s->listen_fd);
        readback_free(s->reader);
        collapse_free(s->collapse);
        free(s);
        snprintf(why, why_len, "the HTTP front end failed to start");
        return CP_ERR_INTERNAL;
    }
    *out = s;
    return CP_OK;
}

const char *server_address(const struct server *s) { return s->address; }

void server_stop(struct server *s)
{
    if (s == NULL)
        return;
    /* Requests waiting on a disk read are resumed first: libmicrohttpd must have none
     * suspended when it stops. The daemon owns the listening socket and closes it. (It
     * is not quiesced first: with a thread pool on epoll, libmicrohttpd 0.9.75 can
     * abort while its workers drop the socket from their epoll sets.) */
    readback_stop(s->reader);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    readback_free(s->reader); /* no request can submit to it now */
    collapse_free(s->collapse);
    free(s);
}
