/* Origin requests on one thread driving a libcurl multi handle (see fetch.h).
 * The multi handle keeps the connection pool; a share handle adds DNS and TLS session
 * caches. The thread waits in epoll on the sockets curl names (the multi socket API),
 * so each wakeup touches only the transfers that have something to do, however many
 * are under way; a kept-alive connection's socket stays in the set between transfers
 * (sockwatch.c). Redirects are followed by hand so that each hop can be checked
 * against the origin's host before anything is sent to it. */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "http.h"
#include "log.h"
#include "sockwatch.h"


struct fetcher;

struct job {
    struct job *next;
    struct fetcher *f;
    struct fetch_request req;
    void (*done)(void *arg, struct fetch_result *res);
    void *arg;
    CURL *easy;
    struct curl_slist *slist;
    struct fetch_result res;
    size_t body_cap;
    const struct fetch_sink *sink; /* NULL: the body comes whole in the result */
    bool fields_done;      /* the final response's header block has ended: what comes
                              through the header callback now is trailers */
    bool head_sent;        /* sink->head has been called */
    bool streaming;        /* ...and took the body */
    bool paused;           /* the sink refused bytes: transfer paused */
    int hops;              /* redirects followed so far */
    size_t head_bytes;     /* of the current response's fields, for opts.max_head */
    bool head_too_large;   /* ...went past it: the transfer was stopped */
    bool bad_framing;      /* the final response's framing was ambiguous, or a 101 that
                              nothing asked for: stopped */
    bool http_1_0;         /* the current response's status line says HTTP/1.0 */
    struct timespec start; /* for the whole-transfer timeout across hops */
};

struct fetcher {
    struct fetch_opts opts;
    char *cacert;
    CURLM *multi;
    CURLSH *share;
    pthread_t thread;
    pthread_mutex_t lock;
    struct job *pending;   /* submitted, not yet given to curl (guarded by lock) */
    void **resumes;        /* args of jobs to unpause (guarded by lock) */
    size_t n_resumes, cap_resumes;
    struct job *active;    /* owned by the fetch thread */
    bool stopping;         /* guarded by lock */
    bool woken;            /* a wakeup is on its way to the fetch thread, which has not
                              yet looked at the lists: another would be wasted (lock) */
    bool started;
    int epfd;              /* curl's sockets and wakefd */
    struct sockwatch watch; /* what epfd holds of curl's sockets (fetch thread only) */
    int wakefd;            /* eventfd: submits, resumes and stop wake the thread */
};

/* curl's socket callback: watch `s` for what curl waits on (see sockwatch.h for why a
 * kept-alive connection's socket stays in the epoll set between transfers). A -1 makes
 * curl fail its transfers, which is better than waiting for events that never come. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct fetcher *f = userp;
    if (what == CURL_POLL_REMOVE) {
        sockwatch_done(&f->watch, s);
        return 0;
    }
    bool in = (what & CURL_POLL_IN) != 0, out = (what & CURL_POLL_OUT) != 0;
    return sockwatch_want(&f->watch, s, in, out) == CP_OK ? 0 : -1;
}

/* curl's socket opener and closer for its connections: the watch follows these sockets
 * from open to close, which is what lets them stay in the epoll set while idle. */
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose,
                                    struct curl_sockaddr *addr)
{
    (void)purpose;
    struct fetcher *f = userp;
    curl_socket_t s = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (s != CURL_SOCKET_BAD && sockwatch_opened(&f->watch, s) != CP_OK) {
        close(s);
        return CURL_SOCKET_BAD;
    }
    return s;
}

static int on_close_socket(void *userp, curl_socket_t s)
{
    struct fetcher *f = userp;
    sockwatch_closed(&f->watch, s);
    return close(s);
}

void fetch_result_free(struct fetch_result *r)
{
    hdrs_free(&r->headers);
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

void fetch_request_free(struct fetch_request *r)
{
    free(r->method);
    free(r->url);
    hdrs_free(&r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg);
static size_t on_body(char *buf, size_t size, size_t n, void *arg);

/* A new easy handle for a new transfer, set up with the options every transfer shares
 * (job_start sets the rest). Handles are not reused, though that saves about 2% of a
 * miss: libcurl 7.88 keeps in a handle a pointer to the previous transfer's last
 * header field, which it frees, and follows it when a response's first field line
 * starts with whitespace (an origin could crash the proxy that way). Connections are
 * reused all the same: they belong to the multi handle. */
static CURL *easy_get(struct fetcher *f)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_SHARE, f->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Straight to the origin: proxy settings in the environment (http_proxy and the
     * like), which curl would otherwise follow, do not send requests anywhere else. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, f->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, f);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (f->cacert)
        curl_easy_setopt(e, CURLOPT_CAINFO, f->cacert);
    return e;
}

static void job_free(struct job *j)
{
    if (j->easy)
        curl_easy_cleanup(j->easy);
    free(j->slist); /* one block: see header_list_make */
    fetch_request_free(&j->req);
    fetch_result_free(&j->res);
    free(j);
}

/* Hands the result to the submitter and frees the job (and whatever of the result the
 * submitter did not take). */
static void job_finish(struct job *j, cp_err err)
{
    j->res.err = err;
    j->done(j->arg, &j->res);
    job_free(j);
}

static char *redirect_target(struct fetcher *f, struct job *j);

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    size_t len = size * n;
    if (j->fields_done)
        return len; /* trailer fields are not merged into the header (RFC 9110 6.5.1) */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new status line: an interim (1xx) or earlier response's fields are dropped
         * so that only the final response's remain. */
        hdrs_free(&j->res.headers);
        j->head_bytes = 0;
        const char *sp = memchr(buf, ' ', len);
        j->res.status = sp ? atoi(sp + 1) : 0;
        j->http_1_0 = len >= 8 && strncmp(buf, "HTTP/1.0", 8) == 0;
        return size * n;
    }
    if (len == 0) {
        /* The end of a header block: if it is the final response's, tell the sink. */
        j->fields_done = j->res.status >= 200;
        /* A body that could end elsewhere, or be coded in a way that curl passes on
         * undecoded, goes nowhere; nor does a 101, which only a request's Upgrade may
         * bring and none is ever sent (curl would take what follows for a new
         * protocol). */
        if ((j->fields_done && !http_response_framing_ok(&j->res.headers, j->http_1_0)) ||
            j->res.status == 101) {
            j->bad_framing = true;
            return 0;
        }
        if (j->sink != NULL && !j->head_sent && j->res.status >= 200) {
            char *next = redirect_target(j->f, j);
            if (next == NULL) {
                j->head_sent = true;
                j->streaming = j->sink->head(j->arg, &j->res);
            }
            free(next);
        }
        return size * n;
    }
    j->head_bytes += len + 2;
    if (j->f->opts.max_head > 0 && j->head_bytes > j->f->opts.max_head) {
        j->head_too_large = true;
        return 0; /* stops the transfer */
    }
    if ((buf[0] == ' ' || buf[0] == '\t') && j->res.headers.n > 0)
        return hdrs_continue_last(&j->res.headers, buf, len) == CP_OK ? size * n : 0;
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL || colon == buf)
        return size * n; /* not a field line; ignore it as a lenient recipient */
    size_t name_len = (size_t)(colon - buf);
    if (hdrs_addn_scrubbed(&j->res.headers, buf, name_len, colon + 1, len - name_len - 1) !=
        CP_OK)
        return 0;
    return size * n;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    size_t len = size * n;
    if (j->streaming) {
        if (j->sink->data(j->arg, (const unsigned char *)buf, len))
            return len;
        j->paused = true; /* curl offers the same bytes again once unpaused */
        return CURL_WRITEFUNC_PAUSE;
    }
    size_t first = 0;
    if (j->body_cap == 0) {
        /* The announced length first: most bodies then take exactly one allocation
         * of exactly their size, which is what a cache keeps for hours. */
        curl_off_t announced = -1;
        curl_easy_getinfo(j->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
        first = announced > 0 && (uint64_t)announced < SIZE_MAX / 2 ? (size_t)announced : 0;
    }
    if (bytes_reserve(&j->res.body, &j->body_cap, j->res.body_len + len, first) != CP_OK)
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    memcpy(j->res.body + j->res.body_len, buf, len);
    j->res.body_len += len;
    return len;
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* A line of curl's header list says, with an empty value, "Name:": send no such field
 * (not even curl's own), or "Name;": send the field, empty. */
#define LINE_SUPPRESS ':'
#define LINE_EMPTY ';'

/* Length of the line "Name: value" (or "Name" and `empty` when the value is empty),
 * with its NUL. */
static size_t line_size(const char *name, const char *value)
{
    size_t vl = strlen(value);
    return strlen(name) + 1 + (vl > 0 ? 1 + vl : 0) + 1;
}

static char *put_line(char *at, const char *name, const char *value, char empty)
{
    size_t nl = strlen(name), vl = strlen(value);
    memcpy(at, name, nl);
    at += nl;
    *at++ = vl > 0 ? ':' : empty;
    if (vl > 0) {
        *at++ = ' ';
        memcpy(at, value, vl);
        at += vl;
    }
    *at++ = '\0';
    return at;
}

/* Whether a request field goes to curl: the body is complete by now, so curl states its
 * length itself, and there is nothing to wait for a 100 (Continue) for. */
static bool field_for_curl(const char *name)
{
    return !hdrs_name_eq(name, "Content-Length") && !hdrs_name_eq(name, "Expect");
}

/* Makes the job's header list for curl: the request's fields, then empty lines that
 * stop curl adding fields of its own accord, so that only what the client sent is
 * sent. It adds Accept to every request, and Expect and Content-Type to one whose body
 * it is given (`gives_body`). The list is one block, nodes then lines, freed with
 * free(): struct curl_slist is public and curl only reads the list, so it need not be
 * made node by node with curl_slist_append. Returns CP_ERR_NOMEM (no list) or CP_OK. */
static cp_err header_list_make(struct job *j, bool gives_body)
{
    const struct hdrs *h = &j->req.headers;
    const char *blank[3];
    size_t nblank = 0;
    if (hdrs_get(h, "Accept") == NULL)
        blank[nblank++] = "Accept";
    if (gives_body)
        blank[nblank++] = "Expect";
    if (gives_body && hdrs_get(h, "Content-Type") == NULL)
        blank[nblank++] = "Content-Type";
    size_t n = nblank, bytes = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (field_for_curl(h->v[i].name)) {
            n++;
            bytes += line_size(h->v[i].name, h->v[i].value);
        }
    }
    for (size_t i = 0; i < nblank; i++)
        bytes += line_size(blank[i], "");
    free(j->slist);
    j->slist = NULL;
    if (n == 0)
        return CP_OK;
    struct curl_slist *nodes = malloc(n * sizeof *nodes + bytes);
    if (nodes == NULL)
        return CP_ERR_NOMEM;
    char *at = (char *)(nodes + n);
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (field_for_curl(h->v[i].name)) {
            nodes[k].data = at;
            at = put_line(at, h->v[i].name, h->v[i].value, LINE_EMPTY);
            k++;
        }
    }
    for (size_t i = 0; i < nblank; i++, k++) {
        nodes[k].data = at;
        at = put_line(at, blank[i], "", LINE_SUPPRESS);
    }
    for (size_t i = 0; i < n; i++)
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    j->slist = nodes;
    return CP_OK;
}

/* Creates the easy handle for the job's current request and adds it to the multi. */
static cp_err job_start(struct fetcher *f, struct job *j)
{
    struct fetch_request *rq = &j->req;
    long left = f->opts.timeout_ms - elapsed_ms(&j->start);
    if (left <= 0)
        return CP_ERR_ORIGIN_TIMEOUT;

    j->easy = easy_get(f);
    if (j->easy == NULL)
        return CP_ERR_NOMEM;
    bool gives_body = strcmp(rq->method, "HEAD") != 0 &&
                      (rq->body_len > 0 || strcmp(rq->method, "POST") == 0);
    if (header_list_make(j, gives_body) != CP_OK)
        return CP_ERR_NOMEM;

    /* Everything that differs between transfers is set here, every time (the handle
     * may have served another request: see easy_get). */
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->slist);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    /* The method: no body and no custom verb, then HTTPGET puts back a plain GET (and
     * clears NOBODY); in this order, as setting POSTFIELDS makes the request a POST. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") != 0 || rq->body_len > 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
        if (gives_body) {
            /* The body is ours until the job ends, so curl need not copy it. */
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body ? (char *)rq->body : "");
        }
    }
    j->res.request_time = time(NULL);
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK)
        return CP_ERR_INTERNAL;
    return CP_OK;
}

static cp_err map_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return CP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CP_ERR_ORIGIN_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
        return CP_ERR_ORIGIN_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return CP_ERR_ORIGIN_TLS;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR:
        return CP_ERR_NOMEM;
    default:
        return CP_ERR_ORIGIN_PROTOCOL;
    }
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The URL a redirect in the current response leads to if we follow it (on the origin,
 * following on), else NULL. The caller frees it. */
static char *redirect_target(struct fetcher *f, struct job *j)
{
    if (!f->opts.follow_redirects || !is_redirect(j->res.status))
        return NULL;
    const char *loc = hdrs_get(&j->res.headers, "Location");
    char *next = NULL;
    if (loc == NULL || url_resolve(j->req.url, loc, &next) != CP_OK)
        return NULL;
    if (!url_on_origin(f->opts.origin, next)) {
        free(next); /* another host: the client gets the redirect itself */
        return NULL;
    }
    return next;
}

/* If the finished response is a redirect we follow, turns the job into its next hop and
 * returns true. Methods change as browsers and curl do: 303 becomes GET (HEAD stays
 * HEAD), and so does a POST answered by 301/302; 307/308 keep method and body. */
static bool job_redirect(struct fetcher *f, struct job *j, cp_err *err)
{
    *err = CP_OK;
    if (j->head_sent)
        return false; /* decided when the head came (on_header): it was not followed */
    char *next = redirect_target(f, j);
    if (next == NULL)
        return false;
    if (j->hops >= f->opts.max_redirects) {
        free(next);
        *err = CP_ERR_REDIRECT_LOOP;
        return true;
    }
    j->hops++;
    bool to_get = (j->res.status == 303 && strcmp(j->req.method, "HEAD") != 0) ||
                  ((j->res.status == 301 || j->res.status == 302) &&
                   strcmp(j->req.method, "POST") == 0);
    if (to_get) {
        char *get = strdup("GET");
        if (get == NULL) {
            free(next);
            *err = CP_ERR_NOMEM;
            return true;
        }
        free(j->req.method);
        j->req.method = get;
        free(j->req.body);
        j->req.body = NULL;
        j->req.body_len = 0;
        hdrs_remove(&j->req.headers, "Content-Type");
    }
    free(j->req.url);
    j->req.url = next;
    curl_multi_remove_handle(f->multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    fetch_result_free(&j->res);
    j->res.status = 0;
    j->fields_done = false;
    j->body_cap = 0;
    *err = job_start(f, j);
    return true;
}

static void active_unlink(struct fetcher *f, struct job *j)
{
    for (struct job **p = &f->active; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            return;
        }
    }
}

static void on_transfer_done(struct fetcher *f, CURL *easy, CURLcode rc)
{
    struct job *j = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&j);
    j->res.response_time = time(NULL);
    if (j->body_cap > j->res.body_len && j->res.body_len > 0) {
        /* Grown by doubling: give back the slack before the body is kept. */
        unsigned char *b = realloc(j->res.body, j->res.body_len);
        if (b != NULL) {
            j->res.body = b;
            j->body_cap = j->res.body_len;
        }
    }
    cp_err err = j->head_too_large ? CP_ERR_ORIGIN_HEAD_TOO_LARGE
                 : j->bad_framing ? CP_ERR_ORIGIN_PROTOCOL
                                 : map_curl_error(rc);
    if (err == CP_OK) {
        cp_err rerr;
        if (job_redirect(f, j, &rerr)) {
            if (rerr == CP_OK)
                return; /* the next hop is under way */
            err = rerr;
        }
    } else if (rc != CURLE_OK) {
        log_debug("origin request %s %s failed: %s", j->req.method, j->req.url,
                  curl_easy_strerror(rc));
    }
    if (j->easy)
        curl_multi_remove_handle(f->multi, j->easy);
    active_unlink(f, j);
    job_finish(j, err);
}

static void poke(struct fetcher *f)
{
    uint64_t one = 1;
    while (write(f->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Called with the lock held, which it releases: wakes the fetch thread unless a wakeup
 * it has not acted on yet is pending (under load, one wakeup serves many submits). */
static void wake_locked(struct fetcher *f)
{
    bool wake = !f->woken;
    f->woken = true;
    pthread_mutex_unlock(&f->lock);
    if (wake)
        poke(f);
}

/* Takes the whole list of submitted jobs, leaving it empty. */
static struct job *take_pending(struct fetcher *f)
{
    pthread_mutex_lock(&f->lock);
    struct job *list = f->pending;
    f->pending = NULL;
    pthread_mutex_unlock(&f->lock);
    return list;
}

static void start_pending(struct fetcher *f)
{
    struct job *list = take_pending(f);
    while (list) {
        struct job *j = list;
        list = j->next;
        cp_err err = job_start(f, j);
        if (err != CP_OK) {
            if (j->easy)
                curl_multi_remove_handle(f->multi, j->easy);
            job_finish(j, err);
            continue;
        }
        j->next = f->active;
        f->active = j;
    }
}

/* Unpauses the jobs whose sinks asked for it (fetch_resume). */
static void resume_paused(struct fetcher *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_resumes;
    void **args = f->resumes;
    f->resumes = NULL;
    f->n_resumes = f->cap_resumes = 0;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        for (struct job *j = f->active; j; j = j->next) {
            if (j->arg == args[i] && j->paused) {
                j->paused = false;
                curl_easy_pause(j->easy, CURLPAUSE_CONT);
            }
        }
    }
    free(args);
}

/* Ends the transfers curl reports done (which may start redirect hops). */
static void finish_done(struct fetcher *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            on_transfer_done(f, msg->easy_handle, msg->data.result);
    }
}

static void *fetch_thread(void *arg)
{
    struct fetcher *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        bool stop = f->stopping;
        f->woken = false; /* before the lists are taken: what comes after wakes us */
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
        start_pending(f);
        resume_paused(f); /* an unpaused transfer may end inside curl_easy_pause */
        finish_done(f);
        /* curl's own clock (timeouts, and transfers it wants to run again at once:
         * a new one, an unpaused one). Asked each time rather than told through a
         * timer callback, which curl skips when the due time has not changed. */
        int running = 0;
        long due = -1;
        curl_multi_timeout(f->multi, &due);
        if (due == 0) {
            curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            finish_done(f); /* before waiting: a transfer may have ended just now */
            curl_multi_timeout(f->multi, &due);
        }
        struct epoll_event evs[64];
        int n = epoll_wait(f->epfd, evs, 64, due < 0 || due > 1000 ? 1000 : (int)due);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == f->wakefd) {
                uint64_t v;
                (void)!read(f->wakefd, &v, sizeof v);
                continue;
            }
            if (sockwatch_stray(&f->watch, evs[i].data.fd))
                continue;
            int mask = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP))
                mask |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (evs[i].events & EPOLLERR)
                mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(f->multi, evs[i].data.fd, mask, &running);
        }
        finish_done(f);
    }
    /* Stopping: whatever is still queued or under way ends with CP_ERR_SHUTDOWN. */
    while (f->active) {
        struct job *j = f->active;
        f->active = j->next;
        curl_multi_remove_handle(f->multi, j->easy);
        job_finish(j, CP_ERR_SHUTDOWN);
    }
    for (struct job *list = take_pending(f); list;) {
        struct job *j = list;
        list = j->next;
        job_finish(j, CP_ERR_SHUTDOWN);
    }
    return NULL;
}

/* Frees what fetcher_start made, whatever it got to. */
static void fetcher_release(struct fetcher *f)
{
    if (f->multi)
        curl_multi_cleanup(f->multi);
    if (f->share)
        curl_share_cleanup(f->share);
    if (f->epfd >= 0)
        close(f->epfd);
    if (f->wakefd >= 0)
        close(f->wakefd);
    free(f->cacert);
    sockwatch_free(&f->watch);
    free(f);
}

cp_err fetcher_start(const struct fetch_opts *opts, struct fetcher **out)
{
    struct fetcher *f = calloc(1, sizeof *f);
    if (f == NULL)
        return CP_ERR_NOMEM;
    f->opts = *opts;
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    sockwatch_init(&f->watch, f->epfd);
    f->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.fd = f->wakefd};
    if (f->epfd < 0 || f->wakefd < 0 ||
        epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->wakefd, &wake_ev) != 0) {
        fetcher_release(f);
        return CP_ERR_INTERNAL;
    }
    if (opts->cacert && (f->cacert = strdup(opts->cacert)) == NULL)
        goto nomem;
    f->opts.cacert = f->cacert;
    f->multi = curl_multi_init();
    f->share = curl_share_init();
    if (f->multi == NULL || f->share == NULL)
        goto nomem;
    /* Only the fetch thread uses the share handle, so it needs no lock callbacks. */
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, 256L);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    pthread_mutex_init(&f->lock, NULL);
    if (pthread_create(&f->thread, NULL, fetch_thread, f) != 0) {
        pthread_mutex_destroy(&f->lock);
        fetcher_release(f);
        return CP_ERR_INTERNAL;
    }
    f->started = true;
    *out = f;
    return CP_OK;
nomem:
    fetcher_release(f);
    return CP_ERR_NOMEM;
}

cp_err fetch_submit(struct fetcher *f, struct fetch_request *req,
                    void (*done)(void *arg, struct fetch_result *res), void *arg)
{
    return fetch_submit_sink(f, req, NULL, done, arg);
}

void fetch_resume(struct fetcher *f, void *arg)
{
    pthread_mutex_lock(&f->lock);
    if (f->n_resumes == f->cap_resumes) {
        size_t cap = f->cap_resumes ? f->cap_resumes * 2 : 16;
        void **v = realloc(f->resumes, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&f->lock);
            return; /* the transfer stays paused until its timeout: never a hang */
        }
        f->resumes = v;
        f->cap_resumes = cap;
    }
    f->resumes[f->n_resumes++] = arg;
    wake_locked(f);
}

cp_err fetch_submit_sink(struct fetcher *f, struct fetch_request *req,
                         const struct fetch_sink *sink,
                         void (*done)(void *arg, struct fetch_result *res), void *arg)
{
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        fetch_request_free(req);
        return CP_ERR_NOMEM;
    }
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->f = f;
    j->sink = sink;
    j->done = done;
    j->arg = arg;
    hdrs_init(&j->res.headers);
    clock_gettime(CLOCK_MONOTONIC, &j->start);

    pthread_mutex_lock(&f->lock);
    if (f->stopping) {
        pthread_mutex_unlock(&f->lock);
        job_free(j);
        return CP_ERR_SHUTDOWN;
    }
    j->next = f->pending;
    f->pending = j;
    wake_locked(f);
    return CP_OK;
}

void fetcher_stop(struct fetcher *f)
{
    if (f == NULL || !f->started)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_mutex_unlock(&f->lock);
    poke(f);
    pthread_join(f->thread, NULL);
    f->started = false;
}

void fetcher_free(struct fetcher *f)
{
    if (f == NULL)
        return;
    fetcher_stop(f);
    free(f->resumes);
    pthread_mutex_destroy(&f->lock);
    fetcher_release(f);
}
