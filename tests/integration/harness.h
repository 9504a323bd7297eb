/* The world of an integration test: an origin server in this process (libmicrohttpd,
 * plain or TLS), the real caching-proxy binary as a child process, and an HTTP client
 * (libcurl) plus raw sockets to talk to it. Nothing here leaves 127.0.0.1/127.0.0.2. */
#ifndef CP_IT_HARNESS_H
#define CP_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- whole process ---------------------------------------------------------------- */

/* Initialises libcurl and ignores SIGPIPE. Call once from main before any test, and
 * hx_global_cleanup once after. Returns 0, or -1 (message printed) when CP_PROXY is not
 * set to an executable. */
int hx_global_init(void);
void hx_global_cleanup(void);

/* Monotonic clock in seconds. */
double hx_now(void);

/* ---- origin ------------------------------------------------------------------------ */

/* Endpoints (path without query decides):
 *   /cache/<any>      200, Cache-Control: max-age=60, body "path=<path> n=<count>\n"
 *   /plain/<any>      200, no caching fields, body "plain path=<path> n=<count>\n"
 *   /nostore /private 200, Cache-Control: no-store / private, max-age=60
 *   /cookie           two Set-Cookie fields (a=1, b=2) and max-age=60
 *   /cookie-public    Set-Cookie: c=3 and Cache-Control: public, max-age=60
 *   /multi            Set-Cookie m1=1 then m2=2, Cache-Control: public, max-age=60
 *   /auth             max-age=60
 *   /echo             no-store; body "method=<m>\n" + "<name>: <value>\n" per request
 *                     field + "\n" + the request body
 *   /slow             sleeps 2 s, then 200 with no-store
 *   /vary             Vary: Accept-Encoding, max-age=60, body "ae=<value or -> n=<count>\n"
 *   /varystar         Vary: *, max-age=60
 *   /gzip             the bytes of orig_gzip_body, Content-Encoding: gzip,
 *                     ETag: "gz-1", max-age=60
 *   /redirect-same    302, Location: /cache/target
 *   /redirect-other   302, Location: what orig_set_redirect_other set
 *   /status/<n>       status n, max-age=60, body "status <n>\n" (none for 204/304)
 *   /big/<n>          n bytes of hx_pattern, max-age=60
 *   /xcache           X-Cache: FROM-ORIGIN, max-age=60
 *   anything else     404, no caching fields
 * unless a route (orig_route) or a failure (orig_set_fail) is set for the path.
 * Every request is counted by path when its header has arrived; the last complete
 * request (method, fields, body) is kept. */
struct orig;

/* Starts an origin on `ip` (e.g. "127.0.0.1") on a free port; TLS when `cert_pem` and
 * `key_pem` (file paths) are given. Returns NULL on failure (message printed). */
struct orig *orig_start(const char *ip, const char *cert_pem, const char *key_pem);
/* Stops the daemon (waits for requests under way) and frees. NULL is ignored. */
void orig_stop(struct orig *o);
uint16_t orig_port(const struct orig *o);
/* "http://<ip>:<port>" or "https://..."; valid until orig_stop. */
const char *orig_url(const struct orig *o);
/* Requests seen so far for exactly this path / in total. */
unsigned orig_count(struct orig *o, const char *path);
unsigned orig_total(struct orig *o);
/* TCP connections the origin has accepted so far. */
unsigned orig_connections(struct orig *o);
/* hx_now() when the last /trickle/<pieces>/<ms> answer sent its last byte (0: none).
 * /trickle sends 1 KiB pieces of hx_pattern, each after <ms>; /huge/<bytes>
 * sends that many bytes of it at once, made as they go (never held in memory), and
 * /hugechunked/<bytes> the same without a Content-Length (chunked). */
double orig_trickle_done(struct orig *o);
/* Sets the Location of /redirect-other (copied). */
void orig_set_redirect_other(struct orig *o, const char *location);
/* The gzip bytes /gzip serves; valid until orig_stop. */
const unsigned char *orig_gzip_body(const struct orig *o, size_t *len);

/* A response the test sets for one path, given to every method; it takes precedence
 * over the endpoints above (orig_set_fail over it). */
struct orig_route {
    unsigned status;                /* 0: 200 */
    const char *const *fields;      /* name, value, name, value, ..., NULL; or NULL */
    const char *body;               /* NULL: empty */
    /* GET/HEAD answered 304 without a body when If-None-Match is "*" or lists a tag
     * weakly equal to the ETag of `fields`, or, with no If-None-Match, when
     * If-Modified-Since is not earlier than their Last-Modified. */
    bool conditional;
    const char *const *fields_304;  /* the fields of those 304s; NULL: `fields` */
    unsigned delay_ms;              /* waited before each answer */
};
/* Sets (deep copy) or replaces the route of `path`; NULL `rt` removes it. */
void orig_route(struct orig *o, const char *path, const struct orig_route *rt);
/* From now on every request for `path` is answered `status` with body "failing\n" and
 * no caching fields, whatever route or endpoint it has; 0 ends that. */
void orig_set_fail(struct orig *o, const char *path, unsigned status);
/* Answers queued so far for `path` with this method (NULL: any) and status (0: any).
 * An answer is counted before it is sent, so one a client has received is counted. */
unsigned orig_answers(struct orig *o, const char *path, const char *method, unsigned status);
/* Polls (at most `timeout_s`) until orig_answers(...) >= n; returns whether it got there. */
bool orig_wait_answers(struct orig *o, const char *path, const char *method, unsigned status,
                       unsigned n, double timeout_s);

/* A raw origin, for answers libmicrohttpd cannot give (folded fields, trailers): a
 * thread on 127.0.0.1 that answers every request (its head, up to the blank line; a
 * body is not read) with `response`, byte for byte, and keeps the connection open;
 * except a GET of /ok/<any>, answered "ok" (200, no-store): a well-formed answer to
 * mix with the raw one. */
struct rawo;
/* Starts it on a free port with a copy of `response`. Returns NULL on failure. */
struct rawo *rawo_start(const char *response);
uint16_t rawo_port(const struct rawo *r);
/* "http://127.0.0.1:<port>"; valid until rawo_stop. */
const char *rawo_url(const struct rawo *r);
/* Requests answered so far. */
unsigned rawo_requests(struct rawo *r);
/* Stops the thread, closes every connection and frees. NULL is ignored. */
void rawo_stop(struct rawo *r);

/* Formats `t` as an HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"). */
void hx_http_date(time_t t, char *out, size_t len);

/* A request as the origin received it. */
struct orig_req {
    char *method;
    char *path;
    size_t nhdr;
    char **names;          /* as received */
    char **values;
    unsigned char *body;
    size_t body_len;
};
/* Copies the last complete request into *out (free with orig_req_free).
 * Returns false if there was none. */
bool orig_last(struct orig *o, struct orig_req *out);
/* Same for the last complete request for exactly this path. */
bool orig_last_for(struct orig *o, const char *path, struct orig_req *out);
void orig_req_free(struct orig_req *r);
/* Value of the nth (0-based) field called `name` (any case), or NULL. */
const char *orig_req_header(const struct orig_req *r, const char *name, size_t nth);

/* Byte i of the /big bodies. */
unsigned char hx_pattern(size_t i);

/* ---- HTTP client --------------------------------------------------------------------- */

struct hreq {
    const char *method;              /* NULL: GET */
    const char *const *headers;      /* "Name: value" lines, NULL-terminated, or NULL */
    const void *body;                /* sent when body != NULL (may be 0 bytes) */
    size_t body_len;
};

struct hresp {
    long status;
    size_t nhdr;
    char **names;                    /* every response field, duplicates kept in order */
    char **values;
    unsigned char *body;             /* NUL-terminated for convenience */
    size_t body_len;
    double t_done;                   /* hx_now() when the transfer finished */
    double elapsed;                  /* seconds the transfer took */
};

/* Sends one request to 127.0.0.1:port with a fresh connection, no redirects followed,
 * no content decoding, 20 s timeout. Returns 0, or the CURLcode when no response came. */
int hx_http(uint16_t port, const char *path, const struct hreq *rq, struct hresp *out);
/* Same, GET with optional extra field lines (NULL-terminated list or NULL). */
int hx_get(uint16_t port, const char *path, const char *const *headers, struct hresp *out);
void hresp_free(struct hresp *r);
/* Value of the nth (0-based) field called `name` (any case), or NULL. */
const char *hresp_header(const struct hresp *r, const char *name, size_t nth);
size_t hresp_header_count(const struct hresp *r, const char *name);

/* Sends `req` over a new TCP connection to 127.0.0.1:port and reads until the peer
 * closes (at most 10 s). Returns the bytes read, NUL-terminated (caller frees), and
 * their count in *len; NULL if the connection failed. */
char *hx_raw(uint16_t port, const char *req, size_t *len);

/* A new TCP connection to 127.0.0.1:port, or -1 if it could not be made. */
int hx_connect(uint16_t port);

/* A port nothing listens on right now (bound to port 0 and closed). */
uint16_t hx_free_port(void);

/* ---- processes and files ----------------------------------------------------------- */

/* Runs `argv` (argv[0] a path) to completion, at most `timeout_s`. Sets *out and *err
 * (may be NULL) to its stdout and stderr (caller frees). Returns the exit status, 128+sig
 * if killed by a signal, -1 on spawn failure or timeout (the child is then killed). */
int hx_run(const char *const *argv, double timeout_s, char **out, char **err);

/* Reads a whole file (NUL-terminated); NULL if it cannot be read. */
char *hx_read_file(const char *path, size_t *len);
/* Writes a whole file; returns 0 or -1. */
int hx_write_file(const char *path, const void *data, size_t len);
/* Removes a directory tree; missing is fine. */
void hx_rmtree(const char *path);
/* Paths of the files of `dir` ending in `suffix`, NULL-terminated, sorted (caller frees
 * with hx_strv_free). */
char **hx_list(const char *dir, const char *suffix);
size_t hx_strv_len(char **v);
void hx_strv_free(char **v);
/* Number of text lines (a last line without '\n' counts). */
size_t hx_count_lines(const char *s);
/* True if `s` contains `n` as a whole decimal number. */
bool hx_has_number(const char *s, long n);

/* ---- per-test fixture ------------------------------------------------------------- */

#define HX_MAX_PROXIES 6
#define HX_MAX_ORIGINS 3

struct proxy {
    pid_t pid;               /* 0 once reaped */
    uint16_t port;
    char cache_dir[512];
    char out_path[512];      /* its stdout and stderr */
    char err_path[512];
};

struct hx {
    char tmp[256];                    /* removed with everything in it at teardown */
    struct orig *origin;              /* plain origin on 127.0.0.1 */
    struct orig *extra[HX_MAX_ORIGINS];
    size_t nextra;
    struct proxy *px[HX_MAX_PROXIES];
    size_t npx;
    unsigned dirs;                    /* counter for fresh cache dirs */
    char cert[300], key[300];         /* TLS origin's certificate and key files */
};

/* cmocka group-less fixtures: setup makes the temp dir and the plain origin; teardown
 * kills any proxy still running, stops origins and removes the temp dir. */
int hx_setup(void **state);
int hx_teardown(void **state);

/* Starts another origin owned by the fixture (stopped at teardown). */
struct orig *hx_origin(struct hx *h, const char *ip, bool tls);
/* Paths of the certificate and key used by TLS origins (made on first use with
 * $CP_OPENSSL); NULL if they could not be made. */
const char *hx_cert_path(struct hx *h);

/* A new empty directory name under the fixture's temp dir (not created). */
void hx_fresh_dir(struct hx *h, char *out, size_t len);

/* Starts the proxy with --port <free> --origin <origin_url> --cache-dir <dir or fresh>
 * followed by `extra` (NULL-terminated, may be NULL) and waits (at most 5 s) until its
 * port accepts connections. On the cache directory of a proxy of this fixture that has
 * stopped, it takes that proxy's port (the Host, port included, is in the cache key).
 * Returns NULL on failure, after printing its stderr. */
struct proxy *hx_proxy_start(struct hx *h, const char *origin_url, const char *cache_dir,
                             const char *const *extra);
/* SIGTERM and wait (at most 10 s, then SIGKILL). Returns the exit status, 128+sig if
 * killed by a signal, -1 if it had to be killed. */
int hx_proxy_stop(struct proxy *p);
/* What the proxy wrote so far to stderr / stdout (caller frees). */
char *hx_proxy_stderr(const struct proxy *p);
char *hx_proxy_stdout(const struct proxy *p);
/* The path of the proxy binary under test. */
const char *hx_proxy_path(void);

/* Waits (polling, at most `timeout_s`) until `dir` holds at least `n` files ending in
 * `suffix`. Returns true if it did. */
bool hx_wait_files(const char *dir, const char *suffix, size_t n, double timeout_s);

#endif
