/* Integration: what the proxy sends to the origin and what it does when the origin
 * misbehaves: every method and body byte forwarded, forwarding fields, hop-by-hop fields
 * dropped, redirects, an HTTPS origin, 502/504, a front end that a slow origin does not
 * block, and refusal to act as an open proxy. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "harness.h"

static struct proxy *start(struct hx *h, const char *const *extra)
{
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    return p;
}

static void assert_xcache(const struct hresp *r, const char *want)
{
    assert_int_equal(hresp_header_count(r, "X-Cache"), 1);
    assert_string_equal(hresp_header(r, "X-Cache", 0), want);
}

/* Bytes a text-minded proxy would mangle: NULs, CR/LF, high bytes. */
static const unsigned char binary_body[] = { 'a', 0, 'b', 0, 0, 0xff, 0x01, '\r', '\n', 0x80,
                                             'z', 0, 0xfe, '\n', 0 };

static void check_origin_saw(struct hx *h, const char *method, const void *body, size_t len)
{
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    bool same_method = strcmp(last.method, method) == 0;
    size_t got = last.body_len;
    bool same_body = got == len && (len == 0 || memcmp(last.body, body, len) == 0);
    char seen[32];
    snprintf(seen, sizeof seen, "%s", last.method);
    orig_req_free(&last);
    if (!same_method)
        fail_msg("origin saw method %s, sent %s", seen, method);
    if (!same_body)
        fail_msg("%s: origin got %zu body bytes (or other bytes), sent %zu", method, got, len);
}

/* One after another on the proxy's kept-alive origin connection, requests of every
 * kind each reach the origin as sent: nothing of one (its method, its body, HEAD's
 * lack of a body) carries over to the next. */
static void test_methods_in_turn_do_not_mix(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const struct {
        const char *method;
        bool body;
    } seq[] = {{"POST", true}, {"GET", false},    {"HEAD", false}, {"DELETE", false},
               {"PUT", true},  {"OPTIONS", false}, {"GET", false}, {"POST", false},
               {"HEAD", false}, {"PATCH", true},   {"GET", false}};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/plain/turn%zu", i);
        struct hreq rq = {.method = seq[i].method, .body = seq[i].body ? binary_body : NULL,
                          .body_len = seq[i].body ? sizeof binary_body : 0};
        struct hresp r;
        assert_int_equal(hx_http(p->port, path, &rq, &r), 0);
        assert_int_equal(r.status, 200);
        if (strcmp(seq[i].method, "HEAD") == 0)
            assert_int_equal(r.body_len, 0);
        else
            assert_true(r.body_len > 0);
        check_origin_saw(h, seq[i].method, seq[i].body ? binary_body : NULL,
                         seq[i].body ? sizeof binary_body : 0);
        hresp_free(&r);
    }
    assert_int_equal(orig_connections(h->origin), 1);
}

/* The origin gets the fields the client sent and the proxy's own, none that libcurl
 * would add by itself (Accept, Expect, Content-Type), with a body or without. */
static void test_no_fields_of_libcurl_own(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const reqs[] = {
        "GET /plain/own-get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /plain/own-post HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Connection: close\r\n\r\nabc",
        "POST /plain/own-empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n",
        "DELETE /plain/own-delete HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char *resp = hx_raw(p->port, reqs[i], NULL);
        assert_non_null(resp);
        assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
        free(resp);
        struct orig_req last;
        assert_true(orig_last(h->origin, &last));
        assert_null(orig_req_header(&last, "Accept", 0));
        assert_null(orig_req_header(&last, "Expect", 0));
        assert_null(orig_req_header(&last, "Content-Type", 0));
        orig_req_free(&last);
    }
}

static int raw_status(const char *resp)
{
    int status = -1;
    if (resp == NULL || sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

/* Sends `req` raw and expects `status`; shows the first lines of the answer if not. */
static void expect_raw_status(uint16_t port, const char *req, int status)
{
    char *resp = hx_raw(port, req, NULL);
    assert_non_null(resp);
    int got = raw_status(resp);
    char shown[600];
    snprintf(shown, sizeof shown, "%s", resp);
    free(resp);
    if (got != status) {
        const char *end = strstr(req, "\r\nConnection");
        fail_msg("%.*s\nwant %d, got:\n%s", end ? (int)(end - req) : (int)strlen(req), req,
                 status, shown);
    }
}

/* The proxy still answers an ordinary request (for `path`) with 200. */
static void expect_serving(uint16_t port, const char *path)
{
    struct hresp r;
    assert_int_equal(hx_get(port, path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
}

/* A request the origin could frame otherwise than the proxy does is refused with 400
 * and never forwarded: a field name with whitespace before the colon (an origin that
 * reads "Transfer-Encoding : chunked" as chunked would take the rest of the body for
 * the next request on the connection, whose answer the proxy would then store),
 * Content-Length fields that disagree, and a field folded over two lines (obs-fold);
 * a transfer coding other than chunked gets 501. */
static void test_ambiguous_framing_refused(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const reqs[] = {
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 39\r\n"
        "Transfer-Encoding : chunked\r\nConnection: close\r\n\r\n"
        "0\r\n\r\nGET /cache/smuggled HTTP/1.1\r\nX-Ignore: ",
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\nab",
        "GET /cache/spaced HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n"
        "Connection: close\r\n\r\n",
        "GET /cache/spaced HTTP/1.1\r\nHost: a\r\nConnection : close\r\n\r\n",
        /* obs-fold: a proxy in front that unfolds reads a 42-byte body here, which the
         * front end would take for a second request (RFC 9112 5.2) */
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 42\r\nConnection: close\r\n"
        "\r\nGET /cache/smuggled HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "GET /cache/folded HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\nConnection: close\r\n\r\n",
    };
    unsigned before = orig_total(h->origin);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        expect_raw_status(p->port, reqs[i], 400);
    /* A transfer coding the front end cannot delimit gets 501 at once, instead of a
     * wait for a body that never ends. */
    static const char *const codings[] = {"gzip", "identity", "gzip, chunked", "chunked, chunked",
                                          "chunked ", "chunked\t"};
    for (size_t i = 0; i < sizeof codings / sizeof codings[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n"
                 "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", codings[i]);
        expect_raw_status(p->port, req, 501);
    }
    /* A Transfer-Encoding beside a Content-Length, or in HTTP/1.0: the hops before
     * may have framed it otherwise, so 400, and the connection closes (RFC 9112 6.1):
     * what follows on it is never taken for a request. */
    static const char *const doubtful[] = {
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
        "\r\n5\r\nhello\r\n0\r\n\r\nGET /cache/after-te-cl HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
        "\r\n5\r\nhello\r\n0\r\n\r\nGET /cache/after-te-10 HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof doubtful / sizeof doubtful[0]; i++) {
        char *resp = hx_raw(p->port, doubtful[i], NULL);
        assert_non_null(resp);
        assert_int_equal(raw_status(resp), 400);
        assert_null(strstr(resp + 1, "HTTP/1.1 "));
        free(resp);
    }
    assert_int_equal(orig_total(h->origin), before);
    expect_serving(p->port, "/cache/after-refusals");
}

/* A field the client sends with an empty value reaches the origin, empty: an empty
 * Accept-Encoding, for one, means "no encoding but identity". */
static void test_empty_field_forwarded(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char *resp = hx_raw(p->port,
                        "GET /plain/empty-field HTTP/1.1\r\nHost: x\r\nAccept-Encoding:\r\n"
                        "X-Empty:   \r\nX-Full: yes\r\nConnection: close\r\n\r\n", NULL);
    assert_non_null(resp);
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    free(resp);
    struct orig_req last;
    assert_true(orig_last_for(h->origin, "/plain/empty-field", &last));
    const char *ae = orig_req_header(&last, "Accept-Encoding", 0);
    const char *empty = orig_req_header(&last, "X-Empty", 0);
    const char *full = orig_req_header(&last, "X-Full", 0);
    bool ok = ae != NULL && ae[0] == '\0' && empty != NULL && empty[0] == '\0' &&
              full != NULL && strcmp(full, "yes") == 0;
    orig_req_free(&last);
    assert_true(ok);
}

/* Proxy settings in the environment (http_proxy and the like, which libcurl would
 * follow) do not divert a request: it goes to the configured origin and nowhere else. */
static void test_environment_proxy_ignored(void **state)
{
    struct hx *h = *state;
    struct rawo *other = rawo_start("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                                    "Cache-Control: max-age=60\r\n\r\ndiverted\n");
    assert_non_null(other);
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy",
                                       "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    /* Nor may a no_proxy of the environment the test runs in let it through. */
    static const char *const exempt[] = {"no_proxy", "NO_PROXY"};
    char *saved[2];
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(exempt[i]);
        saved[i] = v != NULL ? strdup(v) : NULL;
        unsetenv(exempt[i]);
    }
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        setenv(vars[i], rawo_url(other), 1);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, NULL);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    for (size_t i = 0; i < 2; i++) {
        if (saved[i] != NULL)
            setenv(exempt[i], saved[i], 1);
        free(saved[i]);
    }
    assert_non_null(p);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/cache/env-proxy", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "path=/cache/env-proxy n=1\n");
    hresp_free(&r);
    assert_int_equal(orig_count(h->origin, "/cache/env-proxy"), 1);
    assert_int_equal(rawo_requests(other), 0);
    rawo_stop(other);
}

/* A field folded over several lines (obs-fold) reaches the client as one line, each
 * fold with the whitespace around it made one space. */
static void test_folded_field_joined(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                "X-Folded: a\r\n   b  \r\n\tc\r\nX-Empty:\r\n  d\r\n"
                                "Cache-Control: max-age=60\r\n\r\nok\n");
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/fold", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(hresp_header(&r, "X-Folded", 0), "a b c");
    assert_string_equal(hresp_header(&r, "X-Empty", 0), "d");
    assert_int_equal(r.body_len, 3);
    hresp_free(&r);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* A response field with an empty value reaches the client, empty, fresh from the origin
 * and from the cache alike. */
static void test_empty_response_field_kept(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Empty:\r\n"
                                "X-Blank:   \r\nCache-Control: max-age=60\r\n\r\nok\n");
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    static const char *const want[] = {"MISS", "HIT"};
    for (size_t i = 0; i < 2; i++) {
        struct hresp r;
        assert_int_equal(hx_get(p->port, "/empty-field", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(hresp_header(&r, "X-Cache", 0), want[i]);
        const char *empty = hresp_header(&r, "X-Empty", 0);
        const char *blank = hresp_header(&r, "X-Blank", 0);
        bool ok = empty != NULL && empty[0] == '\0' && blank != NULL && blank[0] == '\0';
        hresp_free(&r);
        assert_true(ok);
    }
    assert_int_equal(rawo_requests(o), 1);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* A bare CR inside a response field becomes a space (RFC 9110 section 5.5): the
 * field, here a redirect's Location, reaches the client, from the origin and from the
 * cache alike, instead of being dropped. */
static void test_bare_cr_in_response_field_kept(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 301 Moved Permanently\r\nLocation: /a\rb\r\n"
                                "Content-Length: 3\r\nCache-Control: max-age=60\r\n\r\nok\n");
    assert_non_null(o);
    const char *const extra[] = {"--no-follow-redirects", NULL};
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, extra);
    assert_non_null(p);
    static const char *const want[] = {"MISS", "HIT"};
    for (size_t i = 0; i < 2; i++) {
        struct hresp r;
        assert_int_equal(hx_get(p->port, "/moved", NULL, &r), 0);
        assert_int_equal(r.status, 301);
        assert_string_equal(hresp_header(&r, "X-Cache", 0), want[i]);
        assert_non_null(hresp_header(&r, "Location", 0));
        assert_string_equal(hresp_header(&r, "Location", 0), "/a b");
        hresp_free(&r);
    }
    assert_int_equal(rawo_requests(o), 1);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* An origin's Age too large for any clock is passed on as 2^31 seconds, the most a
 * cache may send (RFC 9111 section 1.2.2), not as the number it came as. */
static void test_huge_age_capped(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 200 OK\r\nAge: 99999999999999999999999\r\n"
                                "Content-Length: 3\r\nCache-Control: max-age=60\r\n\r\nok\n");
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/old", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(hresp_header(&r, "Age", 0));
    assert_string_equal(hresp_header(&r, "Age", 0), "2147483648");
    hresp_free(&r);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* The Content-Length field of the raw answer `resp`'s head, as a number; -1 if it has
 * none, -2 if it has several. */
static long raw_content_length(const char *resp)
{
    const char *end = strstr(resp, "\r\n\r\n");
    long found = -1;
    for (const char *line = strstr(resp, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        long v;
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0 &&
            sscanf(line + 17, "%ld", &v) == 1)
            found = found == -1 ? v : -2;
    }
    return found;
}

/* An answer without a body that speaks of one (a HEAD's, a 304 passed on from the
 * origin) says the length the origin gave, and none when it gave none: never
 * "Content-Length: 0", which would tell the client (or a cache after it) that the
 * body is empty (RFC 9110 8.6). Nothing follows its head, not even a last chunk,
 * which a client would read as the start of the next response. */
static void test_bodiless_answers_keep_origin_length(void **state)
{
    struct hx *h = *state;
    static const struct {
        const char *origin, *request;
        int status;
        long length;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n",
         "HEAD /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, -1},
        {"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
         "GET /c HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\nConnection: close\r\n\r\n",
         304, -1},
        {"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n",
         "GET /c HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\nConnection: close\r\n\r\n",
         304, 42},
        {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nCache-Control: no-store\r\n\r\n",
         "HEAD /seven HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rawo *o = rawo_start(cases[i].origin);
        assert_non_null(o);
        struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
        assert_non_null(p);
        char *resp = hx_raw(p->port, cases[i].request, NULL);
        assert_non_null(resp);
        int status = raw_status(resp);
        long length = raw_content_length(resp);
        const char *end = strstr(resp, "\r\n\r\n");
        bool nothing_after = end != NULL && end[4] == '\0';
        char shown[400];
        snprintf(shown, sizeof shown, "%s", resp);
        free(resp);
        if (status != cases[i].status || length != cases[i].length || !nothing_after)
            fail_msg("case %zu: want %d with length %ld and no body, got:\n%s", i,
                     cases[i].status, cases[i].length, shown);
        assert_int_equal(rawo_requests(o), 1);
        assert_int_equal(hx_proxy_stop(p), 0);
        rawo_stop(o);
    }
}

/* A raw origin's answer "ok" with `pads` fields of 1000 bytes each (X-Pad-<i>). */
static struct rawo *padded_origin(int pads)
{
    size_t cap = 256 + (size_t)pads * 1024;
    char *resp = malloc(cap);
    assert_non_null(resp);
    size_t n = (size_t)snprintf(resp, cap, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                           "Cache-Control: max-age=60\r\n");
    for (int i = 0; i < pads; i++) {
        n += (size_t)snprintf(resp + n, cap - n, "X-Pad-%02d: ", i);
        memset(resp + n, 'p', 1000 - 12);
        n += 1000 - 12;
        n += (size_t)snprintf(resp + n, cap - n, "\r\n");
    }
    snprintf(resp + n, cap - n, "\r\nok");
    struct rawo *o = rawo_start(resp);
    free(resp);
    return o;
}

/* A "Cookie: aaa..." line whose value is `len` bytes, in buf (>= len + 9). */
static const char *cookie_line(char *buf, size_t len)
{
    memcpy(buf, "Cookie: ", 8);
    memset(buf + 8, 'a', len);
    buf[8 + len] = '\0';
    return buf;
}

/* GETs `path` with a Cookie of `cookie_len` bytes (none if 0); asserts an answer came
 * (not a closed connection) with `status`, and a body that starts with `body`. */
static void get_expect(uint16_t port, const char *path, size_t cookie_len, long status,
                       const char *body)
{
    static char line[40000];
    const char *fields[] = {cookie_len > 0 ? cookie_line(line, cookie_len) : NULL, NULL};
    struct hresp r;
    assert_int_equal(hx_get(port, path, fields, &r), 0);
    bool ok = r.status == status && strncmp((const char *)r.body, body, strlen(body)) == 0;
    if (!ok)
        fprintf(stderr, "GET %s (Cookie %zu bytes): %ld %s\n", path, cookie_len, r.status,
                (const char *)r.body);
    hresp_free(&r);
    assert_true(ok);
}

/* Starts a proxy in front of the raw origin `o` (taken: stopped here), GETs one path
 * twice expecting `status` and a body that starts with `body`, and checks how many
 * requests reached the origin. */
static void twice_via(struct hx *h, struct rawo *o, long status, const char *body,
                      unsigned origin_requests)
{
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    get_expect(p->port, "/twice", 0, status, body);
    get_expect(p->port, "/twice", 0, status, body);
    assert_int_equal(rawo_requests(o), origin_requests);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* libmicrohttpd keeps a request's header and its response's in one pool per connection
 * and closes the connection without a word when the response's no longer fits: every
 * request still gets an answer. A large request gets its response if there is room,
 * else 431, and one too large for any answer is refused before it goes to the origin;
 * an origin's head too large to pass on beside any request is a 502, and not stored;
 * one just under that limit passes. */
static void test_large_heads_answered(void **state)
{
    struct hx *h = *state;
    struct rawo *o = padded_origin(12);
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    get_expect(p->port, "/pad", 0, 200, "ok");       /* MISS: stored */
    get_expect(p->port, "/pad", 8000, 200, "ok");    /* HIT beside an 8 KB cookie */
    get_expect(p->port, "/pad", 13000, 431, "431 "); /* HIT: no room beside 13 KB */
    get_expect(p->port, "/pad2", 13000, 431, "431 "); /* MISS: the same, while it streams */
    /* So large that no answer of ours would fit beside it: refused before the origin
     * is asked for anything. */
    unsigned asked = rawo_requests(o);
    get_expect(p->port, "/pad3", 15800, 431, "431 ");
    assert_int_equal(rawo_requests(o), asked);
    get_expect(p->port, "/pad", 0, 200, "ok");
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);

    /* Refused, so not stored: both requests reach the origin. */
    twice_via(h, padded_origin(40), 502, "502 Bad Gateway: origin's response header", 2);
    twice_via(h, padded_origin(28), 200, "ok", 1);
}

/* Starts a proxy with `args` in front of the raw origin `o` (left running), GETs
 * `path` once with a Cookie of `cookie_len` bytes, expecting `status` and a body that
 * starts with `body`, and stops the proxy. */
static void once_via(struct hx *h, struct rawo *o, const char *const *args, const char *path,
                     size_t cookie_len, long status, const char *body)
{
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, args);
    assert_non_null(p);
    get_expect(p->port, path, cookie_len, status, body);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* --header-memory moves those limits: with 64 KiB, a 40 KB origin head (502 by default)
 * passes and is stored, even beside an 8 KB cookie, and a 20 KB cookie (431 by
 * default) is answered; with 8 KiB, a 12 KB origin head is refused and a 3 KB cookie
 * leaves no room for a 4 KB response head, while plain requests still get it. */
static void test_header_memory_moves_limits(void **state)
{
    struct hx *h = *state;
    const char *const large[] = {"--header-memory", "64K", NULL};
    const char *const small[] = {"--header-memory", "8K", NULL};
    struct rawo *o = padded_origin(40);
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, large);
    assert_non_null(p);
    get_expect(p->port, "/pad", 0, 200, "ok");
    get_expect(p->port, "/pad", 8000, 200, "ok");
    assert_int_equal(rawo_requests(o), 1); /* stored, then a HIT */
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);

    o = padded_origin(12);
    assert_non_null(o);
    once_via(h, o, large, "/pad", 20000, 200, "ok");
    once_via(h, o, NULL, "/pad", 20000, 431, ""); /* the default: libmicrohttpd's own 431 */
    once_via(h, o, small, "/pad", 0, 502, "502 Bad Gateway: origin's response header");
    rawo_stop(o);

    o = padded_origin(4);
    assert_non_null(o);
    p = hx_proxy_start(h, rawo_url(o), NULL, small);
    assert_non_null(p);
    get_expect(p->port, "/pad4", 0, 200, "ok");
    get_expect(p->port, "/pad4", 3000, 431, "431 ");
    get_expect(p->port, "/pad4", 0, 200, "ok");
    assert_int_equal(rawo_requests(o), 1);
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* An origin's response whose body cannot be passed on as meant gets the client a 502
 * and is not stored: a length that is ambiguous (Content-Length fields that disagree,
 * or one that is not a plain number), where the body ends being anyone's guess; a
 * transfer coding other than chunked alone, which libcurl would hand over still
 * coded and unlabelled; a transfer coding in HTTP/1.0; and a 101, which nothing asked
 * for (libcurl would take what follows for another protocol). */
static void test_ambiguous_length_refused(void **state)
{
    struct hx *h = *state;
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n"
        "Cache-Control: max-age=60\r\n\r\nhelloxx",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\nCache-Control: max-age=60\r\n\r\n"
        "0123456789abcdef",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nCache-Control: max-age=60\r\n"
        "\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\nContent-Length: 5\r\n"
        "Cache-Control: max-age=60\r\n\r\nhello",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
        "Cache-Control: max-age=60\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
        "Cache-Control: max-age=60\r\n\r\nc101!",
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
        twice_via(h, rawo_start(answers[i]), 502, "502 Bad Gateway: origin sent", 2);
}

/* An origin whose response's first field line starts with whitespace gets the client
 * a 502, and the proxy goes on: libcurl 7.88 would follow a pointer left from a
 * handle's previous transfer there, so no handle serves two transfers. Ordinary
 * answers from the same origin before and after keep coming. */
static void test_leading_whitespace_field_survived(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 200 OK\r\n\tX-First: 1\r\nContent-Length: 2\r\n"
                                "\r\nok");
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    for (int i = 0; i < 6; i++) {
        char path[32];
        snprintf(path, sizeof path, "/ok/%d", i);
        get_expect(p->port, path, 0, 200, "ok");
        snprintf(path, sizeof path, "/raw/%d", i);
        get_expect(p->port, path, 0, 502, "502 Bad Gateway");
    }
    get_expect(p->port, "/ok/last", 0, 200, "ok");
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* Fields in a chunked body's trailer are not the response's: they are neither passed
 * on nor stored nor acted on. A trailer Location does not make the proxy follow a
 * redirect it has already passed on, and a trailer Cache-Control does not change
 * whether the response is stored. */
static void test_trailer_fields_ignored(void **state)
{
    struct hx *h = *state;
    struct rawo *o = rawo_start("HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\n"
                                "Transfer-Encoding: chunked\r\nTrailer: Location, X-Trailer\r\n"
                                "Cache-Control: max-age=60\r\n\r\n"
                                "5\r\nhello\r\n0\r\nLocation: /other\r\nX-Trailer: t\r\n"
                                "Cache-Control: no-store\r\n\r\n");
    assert_non_null(o);
    struct proxy *p = hx_proxy_start(h, rawo_url(o), NULL, NULL);
    assert_non_null(p);
    for (int round = 0; round < 2; round++) {
        struct hresp r;
        assert_int_equal(hx_get(p->port, "/moved", NULL, &r), 0);
        assert_int_equal(r.status, 302);
        assert_string_equal(hresp_header(&r, "Location", 0), "http://elsewhere.invalid/");
        assert_int_equal(hresp_header_count(&r, "Location"), 1);
        assert_null(hresp_header(&r, "X-Trailer", 0));
        assert_int_equal(r.body_len, 5);
        assert_memory_equal(r.body, "hello", 5);
        assert_xcache(&r, round == 0 ? "MISS" : "HIT");
        hresp_free(&r);
    }
    assert_int_equal(rawo_requests(o), 1); /* no second hop to /other, no refetch */
    assert_int_equal(hx_proxy_stop(p), 0);
    rawo_stop(o);
}

/* Methods other than GET/HEAD: forwarded with their body, answered BYPASS, never stored
 * even when the origin's answer says max-age=60. */
static void test_unsafe_methods_forwarded_and_bypassed(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const methods[] = { "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
    const char *const ct[] = { "Content-Type: application/octet-stream", NULL };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/cache/m-%s", methods[i]);
        struct hreq rq = { .method = methods[i], .headers = ct, .body = binary_body,
                           .body_len = sizeof binary_body };
        for (unsigned round = 1; round <= 2; round++) {
            struct hresp r;
            assert_int_equal(hx_http(p->port, path, &rq, &r), 0);
            assert_int_equal(r.status, 200);
            assert_xcache(&r, "BYPASS");
            assert_int_equal(orig_count(h->origin, path), round);
            check_origin_saw(h, methods[i], binary_body, sizeof binary_body);
            hresp_free(&r);
        }
        /* What the unsafe request got back was not stored for a GET either. */
        struct hresp g;
        assert_int_equal(hx_get(p->port, path, NULL, &g), 0);
        assert_int_equal(hresp_header_count(&g, "X-Cache"), 1);
        assert_string_not_equal(hresp_header(&g, "X-Cache", 0), "HIT");
        assert_int_equal(orig_count(h->origin, path), 3);
        hresp_free(&g);
    }
}

/* The echo endpoint returns what arrived: the client sees its own bytes back. */
static void test_echo_round_trip_binary(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const methods[] = { "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        struct hreq rq = { .method = methods[i], .body = binary_body,
                           .body_len = sizeof binary_body };
        struct hresp r;
        assert_int_equal(hx_http(p->port, "/echo", &rq, &r), 0);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "BYPASS");
        char first[32];
        snprintf(first, sizeof first, "method=%s\n", methods[i]);
        assert_true(r.body_len > strlen(first) + sizeof binary_body);
        assert_memory_equal(r.body, first, strlen(first));
        assert_memory_equal(r.body + r.body_len - sizeof binary_body, binary_body,
                            sizeof binary_body);
        hresp_free(&r);
    }
    assert_int_equal(orig_count(h->origin, "/echo"), 5);
}

static void test_large_and_empty_bodies(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    const size_t n = 300000;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = hx_pattern(i * 3 + 1);
    struct hreq put = { .method = "PUT", .body = big, .body_len = n };
    struct hresp r;
    assert_int_equal(hx_http(p->port, "/echo", &put, &r), 0);
    assert_int_equal(r.status, 200);
    check_origin_saw(h, "PUT", big, n);
    hresp_free(&r);
    free(big);

    struct hreq post = { .method = "POST", .body = "", .body_len = 0 };
    assert_int_equal(hx_http(p->port, "/echo", &post, &r), 0);
    assert_int_equal(r.status, 200);
    check_origin_saw(h, "POST", NULL, 0);
    hresp_free(&r);
}

/* Past --max-request-body a request gets 413 and never reaches the origin: at once
 * when its Content-Length says so and the client waits for 100 (Continue), which it
 * then never gets; after the body otherwise (a client sending it already would lose
 * the answer to a reset if the connection closed with its bytes unread), also when
 * the body comes chunked and crosses the limit. */
static void test_request_body_limit(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--max-request-body", "1000", NULL };
    struct proxy *p = start(h, extra);
    char *resp = hx_raw(p->port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
                                 "Expect: 100-continue\r\n\r\n", NULL);
    assert_non_null(resp);
    assert_int_equal(raw_status(resp), 413);
    assert_null(strstr(resp, "100 Continue"));
    free(resp);

    enum { BODY = 400000 }; /* still being sent when the proxy could answer */
    char *sent = malloc(BODY + 200);
    assert_non_null(sent);
    int m = snprintf(sent, 200, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n", BODY);
    memset(sent + m, 'y', BODY);
    sent[m + BODY] = '\0';
    expect_raw_status(p->port, sent, 413);
    free(sent);

    char chunked[2200];
    int n = snprintf(chunked, sizeof chunked, "POST /echo HTTP/1.1\r\nHost: a\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n");
    memset(chunked + n, 'x', 2000);
    snprintf(chunked + n + 2000, sizeof chunked - (size_t)n - 2000, "\r\n0\r\n\r\n");
    expect_raw_status(p->port, chunked, 413);
    assert_int_equal(orig_count(h->origin, "/echo"), 0);

    struct hreq post = { .method = "POST", .body = "small", .body_len = 5 };
    struct hresp r;
    assert_int_equal(hx_http(p->port, "/echo", &post, &r), 0);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
    check_origin_saw(h, "POST", "small", 5);
}

static void test_get_and_head_forwarded(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/echo", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    check_origin_saw(h, "GET", NULL, 0);
    assert_memory_equal(r.body, "method=GET\n", 11);
    hresp_free(&r);

    struct hreq head = { .method = "HEAD" };
    assert_int_equal(hx_http(p->port, "/echo", &head, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    check_origin_saw(h, "HEAD", NULL, 0);
    assert_int_equal(orig_count(h->origin, "/echo"), 2);
    hresp_free(&r);
}

static void test_forwarding_fields(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char client_host[64];
    snprintf(client_host, sizeof client_host, "127.0.0.1:%u", (unsigned)p->port);
    const char *const hdrs[] = { "Connection: close, X-Secret", "X-Secret: 1", "Keep-Alive: 5",
                                 "X-Kept: yes", NULL };
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/echo", hdrs, &r), 0);
    assert_int_equal(r.status, 200);
    hresp_free(&r);

    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    const char *via = orig_req_header(&last, "Via", 0);
    assert_non_null(via);
    assert_non_null(strstr(via, "caching-proxy"));
    const char *xff = orig_req_header(&last, "X-Forwarded-For", 0);
    assert_non_null(xff);
    assert_non_null(strstr(xff, "127.0.0.1"));
    assert_non_null(orig_req_header(&last, "X-Forwarded-Proto", 0));
    assert_string_equal(orig_req_header(&last, "X-Forwarded-Proto", 0), "http");
    char origin_host[64];
    snprintf(origin_host, sizeof origin_host, "127.0.0.1:%u", (unsigned)orig_port(h->origin));
    assert_non_null(orig_req_header(&last, "Host", 0));
    assert_string_equal(orig_req_header(&last, "Host", 0), origin_host);
    assert_null(orig_req_header(&last, "Host", 1));
    assert_non_null(orig_req_header(&last, "X-Forwarded-Host", 0));
    assert_string_equal(orig_req_header(&last, "X-Forwarded-Host", 0), client_host);
    assert_null(orig_req_header(&last, "X-Secret", 0));
    assert_null(orig_req_header(&last, "Keep-Alive", 0));
    const char *conn = orig_req_header(&last, "Connection", 0);
    if (conn != NULL)
        assert_null(strcasestr(conn, "X-Secret"));
    assert_non_null(orig_req_header(&last, "X-Kept", 0));
    assert_string_equal(orig_req_header(&last, "X-Kept", 0), "yes");
    orig_req_free(&last);
}

/* GETs `path` with the Host `host` (sent as given) and expects `xcache` and the body of
 * the origin's `n`th answer for that path. */
static void get_as_host(uint16_t port, const char *path, const char *host, const char *xcache,
                        unsigned n)
{
    char field[128], want[256];
    snprintf(field, sizeof field, "Host: %s", host);
    snprintf(want, sizeof want, "path=%s n=%u\n", path, n);
    const char *const hdrs[] = { field, NULL };
    struct hresp r;
    assert_int_equal(hx_get(port, path, hdrs, &r), 0);
    assert_int_equal(r.status, 200);
    const char *x = hresp_header(&r, "X-Cache", 0);
    const char *body = (const char *)r.body;
    if (x == NULL || strcmp(x, xcache) != 0 || strcmp(body, want) != 0)
        fail_msg("Host %s: want %s, %s got %s, %s", host, xcache, want, x ? x : "-", body);
    hresp_free(&r);
}

/* The Host reaches the origin (as X-Forwarded-Host), so it is part of the cache key: a
 * response made for one Host never answers another, whatever the origin did with it
 * (a link built from it, say), while its case does not matter. An unsafe method
 * removes what was stored for its own Host only. Two Host fields, one that is not a
 * host and port, none in HTTP/1.1, or a CR inside a field value get 400. */
static void test_host_in_cache_key(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    const char *path = "/cache/host-key";
    get_as_host(p->port, path, "site.example", "MISS", 1);
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    assert_string_equal(orig_req_header(&last, "X-Forwarded-Host", 0), "site.example");
    orig_req_free(&last);
    get_as_host(p->port, path, "evil.example", "MISS", 2);
    assert_true(orig_last(h->origin, &last));
    assert_string_equal(orig_req_header(&last, "X-Forwarded-Host", 0), "evil.example");
    orig_req_free(&last);
    get_as_host(p->port, path, "Site.Example", "HIT", 1);
    get_as_host(p->port, path, "evil.example", "HIT", 2);
    assert_int_equal(orig_count(h->origin, path), 2);

    /* A POST through evil.example drops its copy, not site.example's. */
    char post[256];
    snprintf(post, sizeof post, "POST %s HTTP/1.1\r\nHost: evil.example\r\n"
             "Content-Length: 1\r\nConnection: close\r\n\r\nx", path);
    expect_raw_status(p->port, post, 200);
    get_as_host(p->port, path, "site.example", "HIT", 1);
    get_as_host(p->port, path, "evil.example", "MISS", 4);

    static const char *const reqs[] = {
        "GET /cache/host-key HTTP/1.1\r\nHost: site.example\r\nHost: evil.example\r\n"
        "Connection: close\r\n\r\n",
        "GET /cache/host-key HTTP/1.1\r\nHost: evil.example/x\r\nConnection: close\r\n\r\n",
        "GET /cache/host-key HTTP/1.1\r\nHost: site.example:80x\r\nConnection: close\r\n\r\n",
        /* no Host in HTTP/1.1 (RFC 9112 3.2), or a later 1.x */
        "GET /cache/host-key HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /cache/host-key HTTP/1.2\r\nConnection: close\r\n\r\n",
        /* a bare CR, a line break to some origins, hiding a field in another's value */
        "GET /cache/host-key HTTP/1.1\r\nHost: site.example\r\n"
        "X-A: 1\rX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n",
    };
    unsigned before = orig_total(h->origin);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        expect_raw_status(p->port, reqs[i], 400);
    assert_int_equal(orig_total(h->origin), before);
}

/* Every field `name` of `r` joined with ", " in arrival order, as RFC 9110 allows. */
static void joined(const struct orig_req *r, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    const char *v;
    for (size_t i = 0; (v = orig_req_header(r, name, i)) != NULL; i++) {
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s", i ? ", " : "", v);
    }
}

/* A client's own Via and X-Forwarded-For are extended, not replaced. */
static void test_forwarding_fields_appended(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    const char *const hdrs[] = { "Via: 1.1 upstream", "X-Forwarded-For: 10.9.8.7", NULL };
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/echo", hdrs, &r), 0);
    hresp_free(&r);
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    char via[512], xff[512];
    joined(&last, "Via", via, sizeof via);
    joined(&last, "X-Forwarded-For", xff, sizeof xff);
    assert_non_null(strstr(via, "1.1 upstream"));
    assert_non_null(strstr(via, "caching-proxy"));
    assert_true(strstr(via, "1.1 upstream") < strstr(via, "caching-proxy"));
    assert_non_null(strstr(xff, "10.9.8.7"));
    assert_non_null(strstr(xff, "127.0.0.1"));
    assert_true(strstr(xff, "10.9.8.7") < strstr(xff, "127.0.0.1"));
    orig_req_free(&last);
}

static void test_redirect_same_host_followed(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/redirect-same", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "path=/cache/target n=1\n");
    assert_null(hresp_header(&r, "Location", 0));
    assert_int_equal(orig_count(h->origin, "/redirect-same"), 1);
    assert_int_equal(orig_count(h->origin, "/cache/target"), 1);
    hresp_free(&r);
}

static void test_redirect_not_followed_when_disabled(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--no-follow-redirects", NULL };
    struct proxy *p = start(h, extra);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/redirect-same", NULL, &r), 0);
    assert_int_equal(r.status, 302);
    assert_non_null(hresp_header(&r, "Location", 0));
    assert_string_equal(hresp_header(&r, "Location", 0), "/cache/target");
    assert_int_equal(orig_count(h->origin, "/cache/target"), 0);
    hresp_free(&r);
}

static void test_redirect_other_host_passed_through(void **state)
{
    struct hx *h = *state;
    struct orig *other = hx_origin(h, "127.0.0.2", false);
    assert_non_null(other);
    char loc[128];
    snprintf(loc, sizeof loc, "http://127.0.0.2:%u/x", (unsigned)orig_port(other));
    orig_set_redirect_other(h->origin, loc);
    struct proxy *p = start(h, NULL);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/redirect-other", NULL, &r), 0);
    assert_int_equal(r.status, 302);
    assert_non_null(hresp_header(&r, "Location", 0));
    assert_string_equal(hresp_header(&r, "Location", 0), loc);
    assert_int_equal(orig_count(h->origin, "/redirect-other"), 1);
    assert_int_equal(orig_total(other), 0);
    hresp_free(&r);
}

static void test_https_origin_with_cacert(void **state)
{
    struct hx *h = *state;
    struct orig *tls = hx_origin(h, "127.0.0.1", true);
    assert_non_null(tls);
    const char *const extra[] = { "--origin-cacert", hx_cert_path(h), NULL };
    struct proxy *p = hx_proxy_start(h, orig_url(tls), NULL, extra);
    assert_non_null(p);
    struct hresp a, b;
    assert_int_equal(hx_get(p->port, "/cache/secure", NULL, &a), 0);
    assert_int_equal(hx_get(p->port, "/cache/secure", NULL, &b), 0);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    assert_string_equal((char *)a.body, "path=/cache/secure n=1\n");
    assert_string_equal((char *)b.body, "path=/cache/secure n=1\n");
    assert_int_equal(orig_count(tls, "/cache/secure"), 1);
    hresp_free(&a);
    hresp_free(&b);
}

/* A short plain-text error of the proxy's own. */
static void assert_short_text_error(const struct hresp *r, long status)
{
    assert_int_equal(r->status, status);
    assert_true(r->body_len > 0);
    assert_true(r->body_len <= 512);
    const char *ct = hresp_header(r, "Content-Type", 0);
    assert_non_null(ct);
    assert_true(strncasecmp(ct, "text/plain", 10) == 0);
}

static void test_https_origin_untrusted_is_502(void **state)
{
    struct hx *h = *state;
    struct orig *tls = hx_origin(h, "127.0.0.1", true);
    assert_non_null(tls);
    struct proxy *p = hx_proxy_start(h, orig_url(tls), NULL, NULL);
    assert_non_null(p);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/cache/secure", NULL, &r), 0);
    assert_short_text_error(&r, 502);
    assert_int_equal(orig_count(tls, "/cache/secure"), 0);
    hresp_free(&r);
}

static void test_origin_down_is_502(void **state)
{
    struct hx *h = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)hx_free_port());
    struct proxy *p = hx_proxy_start(h, url, NULL, NULL);
    assert_non_null(p);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/cache/x", NULL, &r), 0);
    assert_short_text_error(&r, 502);
    /* A refused connection is known at once; generous bound against a slow machine. */
    assert_true(r.elapsed < 5.0);
    hresp_free(&r);
    /* And the failure was not cached. */
    assert_int_equal(hx_get(p->port, "/cache/x", NULL, &r), 0);
    assert_int_equal(r.status, 502);
    hresp_free(&r);
}

static void test_origin_timeout_is_504(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--origin-timeout", "0.5", NULL };
    struct proxy *p = start(h, extra);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/slow", NULL, &r), 0);
    assert_short_text_error(&r, 504);
    /* The origin takes 2 s: a 504 before that proves the 0.5 s limit was applied. */
    assert_true(r.elapsed < 1.9);
    hresp_free(&r);
}

struct slow_call {
    uint16_t port;
    const char *path;
    const char *const *headers; /* NULL: none */
    struct hresp r;
    int rc;
};

static void *slow_thread(void *arg)
{
    struct slow_call *c = arg;
    c->rc = hx_get(c->port, c->path, c->headers, &c->r);
    return NULL;
}

static bool wait_count(struct orig *o, const char *path, unsigned n, double timeout_s)
{
    double end = hx_now() + timeout_s;
    while (orig_count(o, path) < n) {
        if (hx_now() > end)
            return false;
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return true;
}

/* While one client waits on a slow origin, a HIT and a MISS for other URLs are answered.
 * One front-end thread, so only suspend/resume can make this pass. */
static void test_slow_origin_blocks_nobody(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--threads", "1", NULL };
    struct proxy *p = start(h, extra);
    struct hresp warm;
    assert_int_equal(hx_get(p->port, "/cache/fast", NULL, &warm), 0);
    assert_xcache(&warm, "MISS");
    hresp_free(&warm);

    struct slow_call slow = { .port = p->port, .path = "/slow" };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_thread, &slow), 0);
    bool in_flight = wait_count(h->origin, "/slow", 1, 5.0);

    struct hresp hit, miss;
    int hit_rc = hx_get(p->port, "/cache/fast", NULL, &hit);
    int miss_rc = hx_get(p->port, "/cache/other", NULL, &miss);
    pthread_join(t, NULL);

    assert_true(in_flight);
    assert_int_equal(hit_rc, 0);
    assert_int_equal(miss_rc, 0);
    assert_int_equal(slow.rc, 0);
    assert_int_equal(slow.r.status, 200);
    assert_xcache(&hit, "HIT");
    assert_xcache(&miss, "MISS");
    double hit_late = hit.t_done - slow.r.t_done, miss_late = miss.t_done - slow.r.t_done;
    hresp_free(&hit);
    hresp_free(&miss);
    hresp_free(&slow.r);
    if (hit_late >= 0)
        fail_msg("HIT finished %.3f s after the slow request", hit_late);
    if (miss_late >= 0)
        fail_msg("MISS finished %.3f s after the slow request", miss_late);
}

/* Concurrent misses for one cold URL: one request reaches the origin, the others wait
 * for it and are answered from what it stored, as soon as it has. */
static void test_concurrent_misses_collapse(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", NULL };
    orig_route(h->origin, "/cold", &(struct orig_route){ .fields = f, .body = "cold body\n",
                                                          .delay_ms = 700 });
    struct proxy *p = start(h, NULL);
    enum { N = 20 };
    struct slow_call calls[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (struct slow_call){ .port = p->port, .path = "/cold" };
        assert_int_equal(pthread_create(&t[i], NULL, slow_thread, &calls[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    unsigned hits = 0, collapsed = 0, fetched = 0;
    double first = 1e18, last = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(calls[i].rc, 0);
        assert_int_equal(calls[i].r.status, 200);
        assert_int_equal(calls[i].r.body_len, strlen("cold body\n"));
        assert_memory_equal(calls[i].r.body, "cold body\n", calls[i].r.body_len);
        const char *xc = hresp_header(&calls[i].r, "X-Cache", 0);
        const char *cs = hresp_header(&calls[i].r, "Cache-Status", 0);
        bool hit = xc != NULL && strcmp(xc, "HIT") == 0;
        bool waited = cs != NULL && strstr(cs, "collapsed") != NULL;
        hits += hit;
        collapsed += waited;
        fetched += !hit && !waited; /* the one request that went to the origin */
        if (calls[i].r.t_done < first)
            first = calls[i].r.t_done;
        if (calls[i].r.t_done > last)
            last = calls[i].r.t_done;
        hresp_free(&calls[i].r);
    }
    assert_int_equal(orig_count(h->origin, "/cold"), 1);
    /* One fetched; every other was answered from that fetch, while it was under way
     * (saying so in Cache-Status) or from the cache after it. */
    assert_int_equal(fetched, 1);
    assert_int_equal(hits + collapsed, N - 1);
    assert_true(collapsed >= 1);
    /* Nobody waited for a second origin round trip (700 ms) after the first answer. */
    if (last - first >= 0.7)
        fail_msg("answers spread over %.3f s", last - first);
}

/* A request that waits on another's fetch is given that response as it arrives only
 * if it would select it: with Vary, the fields named must hold the same values
 * (RFC 9111 4.1); one with other values gets its own response from the origin. */
static void test_collapsed_requests_respect_vary(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", "Vary", "X-Foo", NULL };
    orig_route(h->origin, "/cold-vary", &(struct orig_route){ .fields = f, .body = "v\n",
                                                               .delay_ms = 700 });
    struct proxy *p = start(h, NULL);
    static const char *const one[] = { "X-Foo: 1", NULL }, *const two[] = { "X-Foo: 2", NULL };
    struct slow_call calls[3] = {
        { .port = p->port, .path = "/cold-vary", .headers = one },
        { .port = p->port, .path = "/cold-vary", .headers = two },
        { .port = p->port, .path = "/cold-vary", .headers = one },
    };
    pthread_t t[3];
    assert_int_equal(pthread_create(&t[0], NULL, slow_thread, &calls[0]), 0);
    assert_true(wait_count(h->origin, "/cold-vary", 1, 5.0));
    for (int i = 1; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, slow_thread, &calls[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(calls[i].rc, 0);
        assert_int_equal(calls[i].r.status, 200);
    }
    /* The third shared the first's fetch; the second went to the origin itself. */
    const char *cs = hresp_header(&calls[2].r, "Cache-Status", 0);
    assert_true(cs != NULL && strstr(cs, "collapsed") != NULL);
    assert_int_equal(orig_count(h->origin, "/cold-vary"), 2);
    struct orig_req last;
    assert_true(orig_last_for(h->origin, "/cold-vary", &last));
    assert_string_equal(orig_req_header(&last, "X-Foo", 0), "2");
    orig_req_free(&last);
    for (int i = 0; i < 3; i++)
        hresp_free(&calls[i].r);
}

/* Starts `n` concurrent GETs of `path` and waits for them all; each must be a 200 MISS.
 * Returns how many said in Cache-Status that they waited on another request. */
static unsigned concurrent_misses(uint16_t port, const char *path, int n)
{
    struct slow_call calls[8];
    pthread_t t[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        calls[i] = (struct slow_call){ .port = port, .path = path };
        assert_int_equal(pthread_create(&t[i], NULL, slow_thread, &calls[i]), 0);
    }
    unsigned collapsed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(calls[i].rc, 0);
        assert_int_equal(calls[i].r.status, 200);
        assert_xcache(&calls[i].r, "MISS");
        const char *cs = hresp_header(&calls[i].r, "Cache-Status", 0);
        collapsed += cs != NULL && strstr(cs, "collapsed") != NULL;
        hresp_free(&calls[i].r);
    }
    return collapsed;
}

/* A URL whose response cannot be stored: waiters go to the origin themselves, and once
 * the proxy has seen such an answer, later requests no longer wait on each other. */
static void test_uncacheable_waiters_fetch_themselves(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "no-store", NULL };
    orig_route(h->origin, "/nostore-slow", &(struct orig_route){ .fields = f, .body = "x\n",
                                                                  .delay_ms = 300 });
    struct proxy *p = start(h, NULL);
    enum { N = 4 };
    concurrent_misses(p->port, "/nostore-slow", N);
    assert_int_equal(orig_count(h->origin, "/nostore-slow"), N);
    /* Known as not storable now: nobody waits. */
    assert_int_equal(concurrent_misses(p->port, "/nostore-slow", N), 0);
    assert_int_equal(orig_count(h->origin, "/nostore-slow"), 2 * N);
}

static void test_not_an_open_proxy(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    unsigned before = orig_total(h->origin);
    char req[256];
    snprintf(req, sizeof req, "GET http://example.com/ HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
             "Connection: close\r\n\r\n", (unsigned)p->port);
    expect_raw_status(p->port, req, 400);
    expect_raw_status(p->port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                      "Connection: close\r\n\r\n", 405);
    /* What a forward-proxy client sends: the Host field agrees with the target. The
     * target names another host all the same. */
    expect_raw_status(p->port, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
                      "Connection: close\r\n\r\n", 400);
    assert_int_equal(orig_total(h->origin), before);

    /* The proxy is still serving ordinary requests afterwards. */
    expect_serving(p->port, "/cache/after");
}

/* RFC 9112 3.2.2: a server accepts the absolute-form; naming the proxy itself it is the
 * same request as its origin-form. */
/* An absolute-form target naming the proxy is served; its authority stands for the
 * request's Host (RFC 9112 3.2.2): the origin gets it as X-Forwarded-Host, and it is
 * the Host of the cache key, so a plain request for the same URL is a hit. */
static void test_absolute_form_for_itself(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%u/cache/abs HTTP/1.1\r\n"
             "Host: elsewhere.example\r\nConnection: close\r\n\r\n", (unsigned)p->port);
    char *resp = hx_raw(p->port, req, NULL);
    assert_non_null(resp);
    int status = raw_status(resp);
    bool body = strstr(resp, "path=/cache/abs n=1") != NULL;
    free(resp);
    assert_int_equal(status, 200);
    assert_true(body);
    assert_int_equal(orig_count(h->origin, "/cache/abs"), 1);
    char self[64];
    snprintf(self, sizeof self, "127.0.0.1:%u", (unsigned)p->port);
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    assert_string_equal(orig_req_header(&last, "X-Forwarded-Host", 0), self);
    orig_req_free(&last);
    get_as_host(p->port, "/cache/abs", self, "HIT", 1);
}

/* The X-Forwarded-Host the origin gets is always the Host of the cache key: one the
 * client sends is replaced, also when the client names Host in Connection (which
 * drops it as hop-by-hop), and a request without a Host sends none; a Forwarded the
 * client sends (which could say host= too) is dropped. */
static void test_client_forwarded_host_replaced(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char self[64];
    snprintf(self, sizeof self, "127.0.0.1:%u", (unsigned)p->port);
    static const char *const fmt[] = {
        "GET /cache/xfh-%d HTTP/1.1\r\nHost: %s\r\nX-Forwarded-Host: evil.example\r\n"
        "Forwarded: host=evil.example\r\nConnection: close\r\n\r\n",
        "GET /cache/xfh-%d HTTP/1.1\r\nHost: %s\r\nConnection: Host, close\r\n"
        "X-Forwarded-Host: evil.example\r\n\r\n",
    };
    for (int i = 0; i < 2; i++) {
        char req[256], path[32];
        snprintf(req, sizeof req, fmt[i], i, self);
        snprintf(path, sizeof path, "/cache/xfh-%d", i);
        expect_raw_status(p->port, req, 200);
        struct orig_req last;
        assert_true(orig_last(h->origin, &last));
        assert_string_equal(orig_req_header(&last, "X-Forwarded-Host", 0), self);
        assert_null(orig_req_header(&last, "X-Forwarded-Host", 1));
        assert_null(orig_req_header(&last, "Forwarded", 0));
        orig_req_free(&last);
        get_as_host(p->port, path, self, "HIT", 1);
    }
    expect_raw_status(p->port, "GET /cache/xfh-none HTTP/1.0\r\n"
                      "X-Forwarded-Host: evil.example\r\n\r\n", 200);
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    assert_null(orig_req_header(&last, "X-Forwarded-Host", 0));
    orig_req_free(&last);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_methods_in_turn_do_not_mix, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_no_fields_of_libcurl_own, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_environment_proxy_ignored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_field_forwarded, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_framing_refused, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_response_field_kept, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_bare_cr_in_response_field_kept, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_huge_age_capped, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_bodiless_answers_keep_origin_length, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_folded_field_joined, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_trailer_fields_ignored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_header_memory_moves_limits, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_large_heads_answered, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_length_refused, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_leading_whitespace_field_survived, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_methods_forwarded_and_bypassed, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_echo_round_trip_binary, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_misses_collapse, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_collapsed_requests_respect_vary, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_uncacheable_waiters_fetch_themselves, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_large_and_empty_bodies, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_request_body_limit, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_get_and_head_forwarded, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_forwarding_fields, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_forwarding_fields_appended, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_host_in_cache_key, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_client_forwarded_host_replaced, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_redirect_same_host_followed, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed_when_disabled, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_redirect_other_host_passed_through, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_https_origin_with_cacert, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_https_origin_untrusted_is_502, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_down_is_502, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_timeout_is_504, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_slow_origin_blocks_nobody, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_not_an_open_proxy, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_absolute_form_for_itself, hx_setup, hx_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
