/* Integration: the RFC 9111 behaviour of the real binary in strict mode, seen from a
 * client: revalidation with the origin (304 folded into the stored response), client
 * conditionals and ranges answered from the cache, invalidation by unsafe methods,
 * stale-while-revalidate, stale-if-error, request directives, Cache-Status, heuristic
 * freshness and methods the cache does not know. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "harness.h"

/* ---- shared checks --------------------------------------------------------------- */

/* A proxy in front of the fixture's origin with --strict and then `extra`. */
static struct proxy *start(struct hx *h, const char *const *extra)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = "--strict";
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, argv);
    assert_non_null(p);
    return p;
}

static void get_ok(struct proxy *p, const char *path, const char *const *hdrs,
                   struct hresp *r)
{
    assert_int_equal(hx_get(p->port, path, hdrs, r), 0);
}

static void send_ok(struct proxy *p, const char *method, const char *path, const char *body,
                    struct hresp *r)
{
    struct hreq rq = { .method = method, .body = body, .body_len = body ? strlen(body) : 0 };
    assert_int_equal(hx_http(p->port, path, &rq, r), 0);
}

static void assert_xcache(const struct hresp *r, const char *want)
{
    assert_int_equal(hresp_header_count(r, "X-Cache"), 1);
    assert_string_equal(hresp_header(r, "X-Cache", 0), want);
}

/* X-Cache of `r`, "(none)" when it has none. */
static const char *xcache(const struct hresp *r)
{
    const char *v = hresp_header(r, "X-Cache", 0);
    return v ? v : "(none)";
}

static void assert_body(const struct hresp *r, const char *want)
{
    assert_string_equal((const char *)r->body, want);
    assert_int_equal(r->body_len, strlen(want));
}

/* One Age field holding a small non-negative integer: what every answer from the
 * cache carries. */
static void assert_age(const struct hresp *r)
{
    const char *age = hresp_header(r, "Age", 0);
    if (age == NULL)
        fail_msg("expected an Age field on an answer from the cache, got none");
    assert_int_equal(hresp_header_count(r, "Age"), 1);
    char *end;
    long v = strtol(age, &end, 10);
    assert_true(end != age && *end == '\0');
    assert_true(v >= 0 && v <= 60);
}

/* All Cache-Status values of `r` joined with ", " into buf ("" when none). */
static void cache_status_text(const struct hresp *r, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < hresp_header_count(r, "Cache-Status"); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? ", " : "", hresp_header(r, "Cache-Status", i));
    }
}

/* Copies into `out` the last Cache-Status member whose name is caching-proxy (RFC 9211
 * members are separated by commas outside quoted strings). False if there is none. */
static bool our_member(const char *text, char *out, size_t len)
{
    bool found = false;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        bool quoted = false;
        while (*p && (quoted || *p != ',')) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '\\' && quoted && p[1])
                p++;
            p++;
        }
        size_t n = (size_t)(p - start);
        size_t name_len = strcspn(start, ";, \t");
        if (name_len == strlen("caching-proxy") && strncmp(start, "caching-proxy", name_len) == 0 &&
            n < len) {
            memcpy(out, start, n);
            out[n] = '\0';
            found = true;
        }
    }
    return found;
}

/* Value of parameter `name` of our Cache-Status member ("" for a bare one such as hit),
 * copied into `out`; false when the member or the parameter is missing. */
static bool cs_param(const struct hresp *r, const char *name, char *out, size_t len)
{
    char text[2048], member[1024];
    cache_status_text(r, text, sizeof text);
    if (!our_member(text, member, sizeof member))
        return false;
    char *save = NULL;
    char *tok = strtok_r(member, ";", &save); /* the member's name */
    while ((tok = strtok_r(NULL, ";", &save)) != NULL) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t l = strlen(tok);
        while (l > 0 && (tok[l - 1] == ' ' || tok[l - 1] == '\t'))
            tok[--l] = '\0';
        char *eq = strchr(tok, '=');
        size_t nl = eq ? (size_t)(eq - tok) : l;
        if (nl == strlen(name) && strncasecmp(tok, name, nl) == 0) {
            snprintf(out, len, "%s", eq ? eq + 1 : "");
            return true;
        }
    }
    return false;
}

/* Our Cache-Status member has parameter `name`, with value `want` unless NULL. */
static void assert_cs(const struct hresp *r, const char *name, const char *want)
{
    char text[2048], v[256];
    cache_status_text(r, text, sizeof text);
    if (!cs_param(r, name, v, sizeof v))
        fail_msg("Cache-Status \"%s\": expected a caching-proxy member with parameter %s%s%s",
                 text, name, want ? "=" : "", want ? want : "");
    if (want != NULL && strcmp(v, want) != 0)
        fail_msg("Cache-Status \"%s\": expected %s=%s, got %s=%s", text, name, want, name, v);
}

static void assert_cs_lacks(const struct hresp *r, const char *name)
{
    char text[2048], v[256];
    cache_status_text(r, text, sizeof text);
    if (cs_param(r, name, v, sizeof v))
        fail_msg("Cache-Status \"%s\": expected no parameter %s", text, name);
}

/* The integer value of our ttl parameter (fails when missing or not an integer). */
static long cs_ttl(const struct hresp *r)
{
    char v[64];
    assert_cs(r, "ttl", NULL);
    assert_true(cs_param(r, "ttl", v, sizeof v));
    char *end;
    long ttl = strtol(v, &end, 10);
    if (end == v || *end != '\0')
        fail_msg("Cache-Status ttl=%s is not an integer", v);
    return ttl;
}

/* The value of field `name` in the last request the origin got for `path`, copied. */
static void last_request_field(struct orig *o, const char *path, const char *name, char *out,
                               size_t len)
{
    struct orig_req rq;
    assert_true(orig_last_for(o, path, &rq));
    const char *v = orig_req_header(&rq, name, 0);
    snprintf(out, len, "%s", v ? v : "(none)");
    orig_req_free(&rq);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- 1. revalidation with the origin ----------------------------------------------- */

static void test_revalidate_etag(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0", "ETag", "\"v1\"", NULL };
    orig_route(h->origin, "/rv",
               &(struct orig_route){ .fields = f, .body = "version one\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/rv", NULL, &a);
    assert_int_equal(a.status, 200);
    assert_xcache(&a, "MISS");
    assert_body(&a, "version one\n");
    assert_int_equal(orig_answers(h->origin, "/rv", "GET", 200), 1);

    get_ok(p, "/rv", NULL, &b);
    char inm[128];
    last_request_field(h->origin, "/rv", "If-None-Match", inm, sizeof inm);
    assert_string_equal(inm, "\"v1\"");
    assert_int_equal(orig_answers(h->origin, "/rv", "GET", 304), 1);
    assert_int_equal(orig_answers(h->origin, "/rv", "GET", 200), 1);
    assert_int_equal(b.status, 200);
    assert_body(&b, "version one\n");
    assert_xcache(&b, "REVALIDATED");
    assert_cs(&b, "fwd", "stale");
    assert_cs(&b, "fwd-status", "304");
    assert_string_equal(hresp_header(&b, "ETag", 0), "\"v1\"");
    assert_age(&b);
    hresp_free(&a);
    hresp_free(&b);
}

/* no-cache with only Last-Modified: revalidated with If-Modified-Since every time. */
static void test_revalidate_last_modified(void **state)
{
    struct hx *h = *state;
    char lm[64];
    hx_http_date(time(NULL) - 3600, lm, sizeof lm);
    const char *const f[] = { "Cache-Control", "no-cache", "Last-Modified", lm, NULL };
    orig_route(h->origin, "/rvlm",
               &(struct orig_route){ .fields = f, .body = "dated body\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/rvlm", NULL, &a);
    assert_int_equal(a.status, 200);
    assert_xcache(&a, "MISS");
    assert_body(&a, "dated body\n");

    for (int i = 0; i < 2; i++) {
        struct hresp *r = i == 0 ? &b : &c;
        get_ok(p, "/rvlm", NULL, r);
        char ims[128], inm[128];
        last_request_field(h->origin, "/rvlm", "If-Modified-Since", ims, sizeof ims);
        last_request_field(h->origin, "/rvlm", "If-None-Match", inm, sizeof inm);
        assert_string_equal(inm, "(none)");
        if (curl_getdate(ims, NULL) != curl_getdate(lm, NULL))
            fail_msg("origin got If-Modified-Since %s, expected the Last-Modified %s", ims, lm);
        assert_int_equal(r->status, 200);
        assert_body(r, "dated body\n");
        assert_xcache(r, "REVALIDATED");
        assert_cs(r, "fwd", "stale");
        assert_cs(r, "fwd-status", "304");
        assert_string_equal(hresp_header(r, "Last-Modified", 0), lm);
    }
    assert_int_equal(orig_answers(h->origin, "/rvlm", "GET", 304), 2);
    assert_int_equal(orig_answers(h->origin, "/rvlm", "GET", 200), 1);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* A 304's fields replace the stored ones: new freshness makes the next request a hit. */
static void test_304_updates_stored_fields(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0", "ETag", "\"v1\"",
                                     "X-Version", "1", NULL };
    static const char *const f304[] = { "Cache-Control", "max-age=60", "ETag", "\"v1\"",
                                        "X-Version", "2", NULL };
    orig_route(h->origin, "/upd",
               &(struct orig_route){ .fields = f, .fields_304 = f304, .body = "same body\n",
                                     .conditional = true });
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/upd", NULL, &a);
    assert_xcache(&a, "MISS");
    assert_string_equal(hresp_header(&a, "X-Version", 0), "1");

    get_ok(p, "/upd", NULL, &b);
    assert_int_equal(orig_answers(h->origin, "/upd", "GET", 304), 1);
    assert_int_equal(b.status, 200);
    assert_xcache(&b, "REVALIDATED");
    assert_body(&b, "same body\n");
    assert_int_equal(hresp_header_count(&b, "X-Version"), 1);
    assert_string_equal(hresp_header(&b, "X-Version", 0), "2");

    get_ok(p, "/upd", NULL, &c);
    assert_int_equal(c.status, 200);
    assert_xcache(&c, "HIT");
    assert_body(&c, "same body\n");
    assert_int_equal(hresp_header_count(&c, "X-Version"), 1);
    assert_string_equal(hresp_header(&c, "X-Version", 0), "2");
    assert_int_equal(hresp_header_count(&c, "Cache-Control"), 1);
    assert_string_equal(hresp_header(&c, "Cache-Control", 0), "max-age=60");
    assert_age(&c);
    assert_int_equal(orig_answers(h->origin, "/upd", NULL, 0), 2);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* The origin's representation changed: its 200 replaces the stored response, whose new
 * validator is the one sent next time. */
static void test_changed_validator_replaces(void **state)
{
    struct hx *h = *state;
    static const char *const f1[] = { "Cache-Control", "max-age=0", "ETag", "\"v1\"", NULL };
    static const char *const f2[] = { "Cache-Control", "max-age=0", "ETag", "\"v2\"", NULL };
    orig_route(h->origin, "/chg",
               &(struct orig_route){ .fields = f1, .body = "first\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/chg", NULL, &a);
    assert_body(&a, "first\n");

    orig_route(h->origin, "/chg",
               &(struct orig_route){ .fields = f2, .body = "second\n", .conditional = true });
    get_ok(p, "/chg", NULL, &b);
    char inm[128];
    last_request_field(h->origin, "/chg", "If-None-Match", inm, sizeof inm);
    assert_string_equal(inm, "\"v1\"");
    assert_int_equal(orig_answers(h->origin, "/chg", "GET", 200), 2);
    assert_int_equal(b.status, 200);
    assert_body(&b, "second\n");
    assert_string_equal(hresp_header(&b, "ETag", 0), "\"v2\"");
    assert_xcache(&b, "MISS");
    assert_cs(&b, "fwd", "stale");
    assert_cs(&b, "fwd-status", "200");
    assert_cs(&b, "stored", NULL);

    get_ok(p, "/chg", NULL, &c);
    last_request_field(h->origin, "/chg", "If-None-Match", inm, sizeof inm);
    assert_string_equal(inm, "\"v2\"");
    assert_int_equal(orig_answers(h->origin, "/chg", "GET", 304), 1);
    assert_int_equal(c.status, 200);
    assert_xcache(&c, "REVALIDATED");
    assert_body(&c, "second\n");
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* ---- 2. client conditionals answered from the cache -------------------------------- */

static void test_if_none_match_from_cache(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", "ETag", "\"v1\"", NULL };
    orig_route(h->origin, "/inm", &(struct orig_route){ .fields = f, .body = "tagged body\n" });
    struct proxy *p = start(h, NULL);
    struct hresp a;
    get_ok(p, "/inm", NULL, &a);
    assert_xcache(&a, "MISS");
    hresp_free(&a);

    static const char *const match[][2] = { { "If-None-Match: \"v1\"", NULL },
                                            { "If-None-Match: W/\"v1\"", NULL },
                                            { "If-None-Match: \"x\", \"v1\"", NULL },
                                            { "If-None-Match: *", NULL } };
    for (size_t i = 0; i < sizeof match / sizeof match[0]; i++) {
        struct hresp r;
        get_ok(p, "/inm", match[i], &r);
        if (r.status != 304)
            fail_msg("%s: expected 304 from the cache, got %ld", match[i][0], r.status);
        assert_int_equal(r.body_len, 0);
        /* A Content-Length on a 304 may only be that of the 200 ("tagged body\n"). */
        const char *cl = hresp_header(&r, "Content-Length", 0);
        if (cl != NULL && strcmp(cl, "12") != 0)
            fail_msg("%s: 304 with Content-Length %s", match[i][0], cl);
        assert_string_equal(hresp_header(&r, "ETag", 0), "\"v1\"");
        assert_xcache(&r, "HIT");
        assert_age(&r);
        hresp_free(&r);
    }
    static const char *const other[] = { "If-None-Match: \"v0\"", NULL };
    struct hresp r;
    get_ok(p, "/inm", other, &r);
    assert_int_equal(r.status, 200);
    assert_body(&r, "tagged body\n");
    assert_xcache(&r, "HIT");
    hresp_free(&r);
    assert_int_equal(orig_answers(h->origin, "/inm", NULL, 0), 1);
}

static void test_if_modified_since_from_cache(void **state)
{
    struct hx *h = *state;
    time_t now = time(NULL);
    char lm[64], later[64], earlier[64];
    hx_http_date(now - 86400, lm, sizeof lm);
    hx_http_date(now - 3600, later, sizeof later);
    hx_http_date(now - 2 * 86400, earlier, sizeof earlier);
    const char *const f[] = { "Cache-Control", "max-age=60", "Last-Modified", lm, NULL };
    orig_route(h->origin, "/ims", &(struct orig_route){ .fields = f, .body = "dated\n" });
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/ims", NULL, &a);
    assert_xcache(&a, "MISS");

    char hl[2][128];
    snprintf(hl[0], sizeof hl[0], "If-Modified-Since: %s", later);
    snprintf(hl[1], sizeof hl[1], "If-Modified-Since: %s", earlier);
    const char *const h_later[] = { hl[0], NULL };
    const char *const h_earlier[] = { hl[1], NULL };
    get_ok(p, "/ims", h_later, &b);
    assert_int_equal(b.status, 304);
    assert_int_equal(b.body_len, 0);
    assert_string_equal(hresp_header(&b, "Last-Modified", 0), lm);
    assert_age(&b);
    get_ok(p, "/ims", h_earlier, &c);
    assert_int_equal(c.status, 200);
    assert_body(&c, "dated\n");
    assert_xcache(&c, "HIT");
    assert_int_equal(orig_answers(h->origin, "/ims", NULL, 0), 1);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* ---- 3. ranges answered from the cache --------------------------------------------- */

static void assert_pattern(const struct hresp *r, size_t from, size_t n)
{
    assert_int_equal(r->body_len, n);
    for (size_t i = 0; i < n; i++)
        if (r->body[i] != hx_pattern(from + i))
            fail_msg("byte %zu of the answer is %u, expected byte %zu of the body (%u)", i,
                     r->body[i], from + i, hx_pattern(from + i));
}

static void test_range_from_cache(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a;
    get_ok(p, "/big/100", NULL, &a);
    assert_xcache(&a, "MISS");
    assert_pattern(&a, 0, 100);
    hresp_free(&a);

    static const char *const mid[] = { "Range: bytes=10-19", NULL };
    struct hresp r;
    get_ok(p, "/big/100", mid, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(hresp_header(&r, "Content-Range", 0), "bytes 10-19/100");
    assert_pattern(&r, 10, 10);
    assert_xcache(&r, "HIT");
    assert_age(&r);
    hresp_free(&r);

    static const char *const past[] = { "Range: bytes=200-", NULL };
    get_ok(p, "/big/100", past, &r);
    assert_int_equal(r.status, 416);
    assert_string_equal(hresp_header(&r, "Content-Range", 0), "bytes */100");
    assert_int_equal(r.body_len, 0);
    hresp_free(&r);

    static const char *const suffix[] = { "Range: bytes=-5", NULL };
    get_ok(p, "/big/100", suffix, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(hresp_header(&r, "Content-Range", 0), "bytes 95-99/100");
    assert_pattern(&r, 95, 5);
    hresp_free(&r);

    static const char *const open_end[] = { "Range: bytes=90-", NULL };
    get_ok(p, "/big/100", open_end, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(hresp_header(&r, "Content-Range", 0), "bytes 90-99/100");
    assert_pattern(&r, 90, 10);
    hresp_free(&r);

    /* Several ranges: the whole response (the proxy does not make multipart bodies). */
    static const char *const several[] = { "Range: bytes=0-1,5-6", NULL };
    get_ok(p, "/big/100", several, &r);
    assert_int_equal(r.status, 200);
    assert_null(hresp_header(&r, "Content-Range", 0));
    assert_pattern(&r, 0, 100);
    hresp_free(&r);

    assert_int_equal(orig_count(h->origin, "/big/100"), 1);
}

static void test_if_range_from_cache(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", "ETag", "\"r1\"", NULL };
    orig_route(h->origin, "/ifr",
               &(struct orig_route){ .fields = f, .body = "abcdefghijklmnopqrstuvwxyz" });
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/ifr", NULL, &a);
    assert_xcache(&a, "MISS");
    static const char *const same[] = { "Range: bytes=2-5", "If-Range: \"r1\"", NULL };
    static const char *const old[] = { "Range: bytes=2-5", "If-Range: \"r0\"", NULL };
    get_ok(p, "/ifr", same, &b);
    assert_int_equal(b.status, 206);
    assert_body(&b, "cdef");
    assert_string_equal(hresp_header(&b, "Content-Range", 0), "bytes 2-5/26");
    get_ok(p, "/ifr", old, &c);
    assert_int_equal(c.status, 200);
    assert_body(&c, "abcdefghijklmnopqrstuvwxyz");
    assert_int_equal(orig_answers(h->origin, "/ifr", NULL, 0), 1);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* ---- 4. invalidation by unsafe methods --------------------------------------------- */

static const char *const fresh60[] = { "Cache-Control", "max-age=60", NULL };

/* GETs `path` twice (MISS then HIT) so that it is known to be stored. */
static void cache_it(struct hx *h, struct proxy *p, const char *path)
{
    struct hresp a, b;
    get_ok(p, path, NULL, &a);
    get_ok(p, path, NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    assert_int_equal(orig_answers(h->origin, path, "GET", 0), 1);
    hresp_free(&a);
    hresp_free(&b);
}

static void test_post_invalidates(void **state)
{
    struct hx *h = *state;
    orig_route(h->origin, "/inv", &(struct orig_route){ .fields = fresh60, .body = "inv\n" });
    struct proxy *p = start(h, NULL);
    cache_it(h, p, "/inv");

    struct hresp post, after;
    send_ok(p, "POST", "/inv", "change", &post);
    assert_int_equal(post.status, 200);
    assert_xcache(&post, "BYPASS");
    assert_int_equal(orig_answers(h->origin, "/inv", "POST", 200), 1);
    get_ok(p, "/inv", NULL, &after);
    assert_int_equal(after.status, 200);
    assert_xcache(&after, "MISS");
    assert_int_equal(orig_answers(h->origin, "/inv", "GET", 0), 2);
    hresp_free(&post);
    hresp_free(&after);
}

static void test_put_and_delete_invalidate(void **state)
{
    struct hx *h = *state;
    static const char *const methods[] = { "PUT", "DELETE" };
    static const char *const paths[] = { "/invput", "/invdel" };
    for (unsigned i = 0; i < 2; i++)
        orig_route(h->origin, paths[i], &(struct orig_route){ .fields = fresh60, .body = "m\n" });
    struct proxy *p = start(h, NULL);
    for (unsigned i = 0; i < 2; i++) {
        cache_it(h, p, paths[i]);
        struct hresp r, after;
        send_ok(p, methods[i], paths[i], i == 0 ? "x" : NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "BYPASS");
        assert_int_equal(orig_answers(h->origin, paths[i], methods[i], 200), 1);
        get_ok(p, paths[i], NULL, &after);
        if (strcmp(xcache(&after), "MISS") != 0)
            fail_msg("GET after a successful %s: expected X-Cache MISS, got %s", methods[i],
                     xcache(&after));
        assert_int_equal(orig_answers(h->origin, paths[i], "GET", 0), 2);
        hresp_free(&r);
        hresp_free(&after);
    }
}

/* A POST elsewhere whose answer names /inv2 in Location (a relative reference on the
 * origin) removes /inv2. */
static void test_post_location_invalidates(void **state)
{
    struct hx *h = *state;
    orig_route(h->origin, "/inv2", &(struct orig_route){ .fields = fresh60, .body = "two\n" });
    static const char *const created[] = { "Location", "/inv2", NULL };
    orig_route(h->origin, "/make",
               &(struct orig_route){ .status = 201, .fields = created, .body = "made\n" });
    struct proxy *p = start(h, NULL);
    cache_it(h, p, "/inv2");

    struct hresp post, after;
    send_ok(p, "POST", "/make", "new", &post);
    assert_int_equal(post.status, 201);
    assert_string_equal(hresp_header(&post, "Location", 0), "/inv2");
    get_ok(p, "/inv2", NULL, &after);
    assert_xcache(&after, "MISS");
    assert_int_equal(orig_answers(h->origin, "/inv2", "GET", 0), 2);
    hresp_free(&post);
    hresp_free(&after);
}

/* Same with an absolute same-origin URL in Content-Location. */
static void test_post_content_location_invalidates(void **state)
{
    struct hx *h = *state;
    orig_route(h->origin, "/inv3", &(struct orig_route){ .fields = fresh60, .body = "three\n" });
    char abs[128];
    snprintf(abs, sizeof abs, "%s/inv3", orig_url(h->origin));
    const char *const f[] = { "Content-Location", abs, NULL };
    orig_route(h->origin, "/update", &(struct orig_route){ .fields = f, .body = "updated\n" });
    struct proxy *p = start(h, NULL);
    cache_it(h, p, "/inv3");

    struct hresp post, after;
    send_ok(p, "POST", "/update", "x", &post);
    assert_int_equal(post.status, 200);
    get_ok(p, "/inv3", NULL, &after);
    assert_xcache(&after, "MISS");
    assert_int_equal(orig_answers(h->origin, "/inv3", "GET", 0), 2);
    hresp_free(&post);
    hresp_free(&after);
}

static void test_failed_post_keeps_entry(void **state)
{
    struct hx *h = *state;
    orig_route(h->origin, "/keep", &(struct orig_route){ .fields = fresh60, .body = "kept\n" });
    struct proxy *p = start(h, NULL);
    cache_it(h, p, "/keep");

    orig_set_fail(h->origin, "/keep", 500);
    struct hresp post, after;
    send_ok(p, "POST", "/keep", "x", &post);
    assert_int_equal(post.status, 500);
    assert_int_equal(orig_answers(h->origin, "/keep", "POST", 500), 1);
    orig_set_fail(h->origin, "/keep", 0);
    get_ok(p, "/keep", NULL, &after);
    assert_int_equal(after.status, 200);
    assert_xcache(&after, "HIT");
    assert_body(&after, "kept\n");
    assert_int_equal(orig_answers(h->origin, "/keep", "GET", 0), 1);
    hresp_free(&post);
    hresp_free(&after);
}

/* ---- 5. stale-while-revalidate ----------------------------------------------------- */

static void test_stale_while_revalidate(void **state)
{
    struct hx *h = *state;
    static const char *const f1[] = { "Cache-Control", "max-age=0, stale-while-revalidate=60",
                                      "ETag", "\"v1\"", NULL };
    static const char *const f2[] = { "Cache-Control", "max-age=60", "ETag", "\"v2\"", NULL };
    orig_route(h->origin, "/swr",
               &(struct orig_route){ .fields = f1, .body = "old\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/swr", NULL, &a);
    assert_xcache(&a, "MISS");
    assert_body(&a, "old\n");

    /* The origin now has a new version and is slow to give it: the stale answer must
     * not wait for it. */
    orig_route(h->origin, "/swr",
               &(struct orig_route){ .fields = f2, .body = "new\n", .conditional = true,
                                     .delay_ms = 1500 });
    get_ok(p, "/swr", NULL, &b);
    assert_int_equal(b.status, 200);
    assert_xcache(&b, "STALE");
    assert_body(&b, "old\n");
    assert_age(&b);
    if (b.elapsed >= 1.0)
        fail_msg("stale answer took %.2f s: it waited for the origin", b.elapsed);
    assert_int_equal(orig_answers(h->origin, "/swr", "GET", 200), 1);

    if (!orig_wait_answers(h->origin, "/swr", "GET", 0, 2, 5.0))
        fail_msg("no background request reached the origin within 5 s");
    char inm[128];
    last_request_field(h->origin, "/swr", "If-None-Match", inm, sizeof inm);
    assert_string_equal(inm, "\"v1\"");

    /* Once the refresh is stored, requests are fresh hits on the new version. */
    struct hresp c = { 0 };
    bool hit = false;
    double end = hx_now() + 5.0;
    while (!hit && hx_now() < end) {
        hresp_free(&c);
        get_ok(p, "/swr", NULL, &c);
        hit = strcmp(xcache(&c), "HIT") == 0;
        if (!hit)
            sleep_ms(50);
    }
    if (!hit)
        fail_msg("after the background refresh: expected X-Cache HIT with the new body, got "
                 "%s with \"%s\" for 5 s", xcache(&c), (char *)c.body);
    assert_body(&c, "new\n");
    assert_string_equal(hresp_header(&c, "ETag", 0), "\"v2\"");
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

/* ---- 6. stale-if-error and --serve-stale-on-error ---------------------------------- */

/* GETs `path` once (MISS, 200, body `want`), then makes the origin answer `fail`. */
static void store_then_fail(struct hx *h, struct proxy *p, const char *path, const char *want,
                            unsigned fail)
{
    struct hresp a;
    get_ok(p, path, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_xcache(&a, "MISS");
    assert_body(&a, want);
    assert_cs(&a, "stored", NULL);
    hresp_free(&a);
    if (fail)
        orig_set_fail(h->origin, path, fail);
}

static void test_stale_if_error_without_validator(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0, stale-if-error=60", NULL };
    orig_route(h->origin, "/sie", &(struct orig_route){ .fields = f, .body = "good\n" });
    struct proxy *p = start(h, NULL);
    store_then_fail(h, p, "/sie", "good\n", 500);
    struct hresp b;
    get_ok(p, "/sie", NULL, &b);
    assert_int_equal(orig_answers(h->origin, "/sie", "GET", 500), 1);
    assert_int_equal(b.status, 200);
    assert_body(&b, "good\n");
    assert_xcache(&b, "STALE");
    assert_age(&b);
    hresp_free(&b);
}

static void test_stale_if_error_with_validator(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0, stale-if-error=60", "ETag",
                                     "\"e1\"", NULL };
    orig_route(h->origin, "/siev",
               &(struct orig_route){ .fields = f, .body = "good\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    store_then_fail(h, p, "/siev", "good\n", 502);
    struct hresp b;
    get_ok(p, "/siev", NULL, &b);
    assert_int_equal(orig_answers(h->origin, "/siev", "GET", 502), 1);
    assert_int_equal(b.status, 200);
    assert_body(&b, "good\n");
    assert_xcache(&b, "STALE");
    hresp_free(&b);
}

/* Without stale-if-error (and no --serve-stale-on-error) the origin's error goes through. */
static void test_error_without_stale_if_error(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0", "ETag", "\"e1\"", NULL };
    orig_route(h->origin, "/nosie",
               &(struct orig_route){ .fields = f, .body = "good\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    store_then_fail(h, p, "/nosie", "good\n", 500);
    struct hresp b;
    get_ok(p, "/nosie", NULL, &b);
    assert_int_equal(b.status, 500);
    assert_body(&b, "failing\n");
    hresp_free(&b);
}

/* A stale-if-error window that has passed no longer allows the stored response. */
static void test_stale_if_error_window_ends(void **state)
{
    struct hx *h = *state;
    /* The ETag only makes it storable whatever the rule for responses without one. */
    static const char *const f[] = { "Cache-Control", "max-age=0, stale-if-error=1", "ETag",
                                     "\"w1\"", NULL };
    orig_route(h->origin, "/siew",
               &(struct orig_route){ .fields = f, .body = "good\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    store_then_fail(h, p, "/siew", "good\n", 500);
    /* Let the response become stale for more than the 1 s window (ages are whole
     * seconds, so wait past 2). */
    sleep_ms(2500);
    struct hresp b;
    get_ok(p, "/siew", NULL, &b);
    assert_int_equal(b.status, 500);
    hresp_free(&b);
}

static void test_serve_stale_on_error_unreachable(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0", "ETag", "\"u1\"", NULL };
    orig_route(h->origin, "/down",
               &(struct orig_route){ .fields = f, .body = "kept\n", .conditional = true });
    static const char *const extra[] = { "--serve-stale-on-error", "60", NULL };
    struct proxy *p = start(h, extra);
    store_then_fail(h, p, "/down", "kept\n", 0);
    orig_stop(h->origin);
    h->origin = NULL;
    struct hresp b;
    get_ok(p, "/down", NULL, &b);
    assert_int_equal(b.status, 200);
    assert_body(&b, "kept\n");
    assert_xcache(&b, "STALE");
    assert_age(&b);
    hresp_free(&b);
}

static void test_serve_stale_on_error_503(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0", "ETag", "\"u1\"", NULL };
    orig_route(h->origin, "/busy",
               &(struct orig_route){ .fields = f, .body = "kept\n", .conditional = true });
    static const char *const extra[] = { "--serve-stale-on-error", "60", NULL };
    struct proxy *p = start(h, extra);
    store_then_fail(h, p, "/busy", "kept\n", 503);
    struct hresp b;
    get_ok(p, "/busy", NULL, &b);
    assert_int_equal(orig_answers(h->origin, "/busy", "GET", 503), 1);
    assert_int_equal(b.status, 200);
    assert_body(&b, "kept\n");
    assert_xcache(&b, "STALE");
    hresp_free(&b);
}

/* The option never overrides the origin's must-revalidate. */
static void test_serve_stale_on_error_not_past_must_revalidate(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=0, must-revalidate", "ETag",
                                     "\"m1\"", NULL };
    orig_route(h->origin, "/mr",
               &(struct orig_route){ .fields = f, .body = "kept\n", .conditional = true });
    static const char *const extra[] = { "--serve-stale-on-error", "60", NULL };
    struct proxy *p = start(h, extra);
    store_then_fail(h, p, "/mr", "kept\n", 503);
    struct hresp b;
    get_ok(p, "/mr", NULL, &b);
    assert_int_equal(b.status, 503);
    assert_body(&b, "failing\n");
    hresp_free(&b);
}

/* ---- 7. request directives ----------------------------------------------------------- */

/* A fresh stored /rq (max-age=60, ETag), then one request with `line`: it must reach the
 * origin and still get the right 200. */
static void check_request_goes_to_origin(void **state, const char *line)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", "ETag", "\"q1\"", NULL };
    orig_route(h->origin, "/rq",
               &(struct orig_route){ .fields = f, .body = "rq body\n", .conditional = true });
    struct proxy *p = start(h, NULL);
    cache_it(h, p, "/rq");
    const char *const hl[] = { line, NULL };
    struct hresp r, after;
    get_ok(p, "/rq", hl, &r);
    if (orig_answers(h->origin, "/rq", "GET", 0) != 2)
        fail_msg("request with %s: expected it to reach the origin (2 origin requests), "
                 "got %u (X-Cache %s)", line, orig_answers(h->origin, "/rq", "GET", 0),
                 xcache(&r));
    assert_int_equal(r.status, 200);
    assert_body(&r, "rq body\n");
    const char *xc = xcache(&r);
    assert_true(strcmp(xc, "REVALIDATED") == 0 || strcmp(xc, "MISS") == 0);
    /* Without the directive the stored response is still good. */
    get_ok(p, "/rq", NULL, &after);
    assert_xcache(&after, "HIT");
    assert_body(&after, "rq body\n");
    assert_int_equal(orig_answers(h->origin, "/rq", "GET", 0), 2);
    hresp_free(&r);
    hresp_free(&after);
}

static void test_request_no_cache(void **state)
{
    check_request_goes_to_origin(state, "Cache-Control: no-cache");
}

static void test_request_pragma_no_cache(void **state)
{
    check_request_goes_to_origin(state, "Pragma: no-cache");
}

static void test_request_max_age_zero(void **state)
{
    check_request_goes_to_origin(state, "Cache-Control: max-age=0");
}

static void test_only_if_cached_uncached(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const oic[] = { "Cache-Control: only-if-cached", NULL };
    struct hresp r;
    get_ok(p, "/cache/oic", oic, &r);
    assert_int_equal(r.status, 504);
    assert_int_equal(orig_count(h->origin, "/cache/oic"), 0);
    assert_int_equal(orig_total(h->origin), 0);
    hresp_free(&r);
}

static void test_only_if_cached_cached(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, r;
    get_ok(p, "/cache/oic2", NULL, &a);
    assert_xcache(&a, "MISS");
    static const char *const oic[] = { "Cache-Control: only-if-cached", NULL };
    get_ok(p, "/cache/oic2", oic, &r);
    assert_int_equal(r.status, 200);
    assert_xcache(&r, "HIT");
    assert_body(&r, "path=/cache/oic2 n=1\n");
    assert_int_equal(orig_count(h->origin, "/cache/oic2"), 1);
    hresp_free(&a);
    hresp_free(&r);
}

static void test_request_no_store(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const ns[] = { "Cache-Control: no-store", NULL };
    struct hresp a, b;
    get_ok(p, "/cache/rns", ns, &a);
    assert_int_equal(a.status, 200);
    assert_cs_lacks(&a, "stored");
    get_ok(p, "/cache/rns", NULL, &b);
    assert_int_equal(b.status, 200);
    assert_xcache(&b, "MISS");
    assert_body(&b, "path=/cache/rns n=2\n");
    assert_int_equal(orig_count(h->origin, "/cache/rns"), 2);
    hresp_free(&a);
    hresp_free(&b);
}

/* ---- 8. Cache-Status --------------------------------------------------------------- */

static void test_cache_status_miss_then_hit(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/cache/cs", NULL, &a);
    assert_xcache(&a, "MISS");
    assert_cs(&a, "fwd", "uri-miss");
    assert_cs(&a, "fwd-status", "200");
    assert_cs(&a, "stored", NULL);
    assert_cs_lacks(&a, "hit");

    get_ok(p, "/cache/cs", NULL, &b);
    assert_xcache(&b, "HIT");
    assert_cs(&b, "hit", "");
    assert_cs_lacks(&b, "fwd");
    char text[2048];
    cache_status_text(&b, text, sizeof text);
    if (strstr(text, "caching-proxy; hit") == NULL)
        fail_msg("Cache-Status \"%s\": expected \"caching-proxy; hit\"", text);
    long ttl = cs_ttl(&b);
    assert_true(ttl > 0 && ttl <= 60);
    assert_age(&b);
    hresp_free(&a);
    hresp_free(&b);
}

static void test_cache_status_vary_miss(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const char *const ea[] = { "Accept-Encoding: a", NULL };
    static const char *const eb[] = { "Accept-Encoding: b", NULL };
    struct hresp a, b;
    get_ok(p, "/vary", ea, &a);
    assert_cs(&a, "fwd", "uri-miss");
    get_ok(p, "/vary", eb, &b);
    assert_xcache(&b, "MISS");
    assert_cs(&b, "fwd", "vary-miss");
    assert_cs(&b, "fwd-status", "200");
    hresp_free(&a);
    hresp_free(&b);
}

static void test_cache_status_bypass(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp r;
    send_ok(p, "POST", "/echo", "data", &r);
    assert_int_equal(r.status, 200);
    assert_xcache(&r, "BYPASS");
    assert_cs(&r, "fwd", "bypass");
    assert_cs(&r, "fwd-status", "200");
    assert_cs_lacks(&r, "stored");
    hresp_free(&r);
}

/* An origin's own Cache-Status is kept, with ours after it. */
static void test_cache_status_appended(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", "Cache-Status",
                                     "upstream; hit", NULL };
    orig_route(h->origin, "/csup", &(struct orig_route){ .fields = f, .body = "up\n" });
    struct proxy *p = start(h, NULL);
    for (int i = 0; i < 2; i++) {
        struct hresp r;
        get_ok(p, "/csup", NULL, &r);
        char text[2048];
        cache_status_text(&r, text, sizeof text);
        const char *up = strstr(text, "upstream; hit");
        const char *ours = strstr(text, "caching-proxy");
        if (up == NULL || ours == NULL || ours < up)
            fail_msg("Cache-Status \"%s\": expected \"upstream; hit\" followed by a "
                     "caching-proxy member", text);
        assert_cs(&r, i == 0 ? "fwd" : "hit", i == 0 ? "uri-miss" : "");
        hresp_free(&r);
    }
}

/* ---- 9. freshness in strict mode --------------------------------------------------- */

static void test_heuristic_last_modified(void **state)
{
    struct hx *h = *state;
    char lm[64];
    hx_http_date(time(NULL) - 10 * 86400, lm, sizeof lm);
    const char *const f[] = { "Last-Modified", lm, NULL };
    orig_route(h->origin, "/heur", &(struct orig_route){ .fields = f, .body = "old news\n" });
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/heur", NULL, &a);
    assert_xcache(&a, "MISS");
    assert_cs(&a, "stored", NULL);
    get_ok(p, "/heur", NULL, &b);
    assert_xcache(&b, "HIT");
    assert_body(&b, "old news\n");
    /* 10% of 10 days is a day, which is also the cap. */
    long ttl = cs_ttl(&b);
    assert_true(ttl > 86400 - 60 && ttl <= 86400);
    assert_int_equal(orig_answers(h->origin, "/heur", NULL, 0), 1);
    hresp_free(&a);
    hresp_free(&b);
}

static void test_no_freshness_never_hit(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    for (unsigned i = 1; i <= 3; i++) {
        struct hresp r;
        get_ok(p, "/plain/nf", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "MISS");
        assert_cs_lacks(&r, "stored");
        char want[64];
        snprintf(want, sizeof want, "plain path=/plain/nf n=%u\n", i);
        assert_body(&r, want);
        hresp_free(&r);
    }
    assert_int_equal(orig_count(h->origin, "/plain/nf"), 3);
}

/* ---- 10. methods the cache does not know -------------------------------------------- */

static void test_unknown_method_forwarded(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    for (unsigned i = 1; i <= 2; i++) {
        struct hresp r;
        send_ok(p, "M-SEARCH", "/echo", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "BYPASS");
        assert_cs(&r, "fwd", "bypass");
        assert_true(strncmp((char *)r.body, "method=M-SEARCH\n", 16) == 0);
        struct orig_req rq;
        assert_true(orig_last_for(h->origin, "/echo", &rq));
        assert_string_equal(rq.method, "M-SEARCH");
        orig_req_free(&rq);
        assert_int_equal(orig_answers(h->origin, "/echo", "M-SEARCH", 200), i);
        hresp_free(&r);
    }
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, hx_setup, hx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_revalidate_etag),
        T(test_revalidate_last_modified),
        T(test_304_updates_stored_fields),
        T(test_changed_validator_replaces),
        T(test_if_none_match_from_cache),
        T(test_if_modified_since_from_cache),
        T(test_range_from_cache),
        T(test_if_range_from_cache),
        T(test_post_invalidates),
        T(test_put_and_delete_invalidate),
        T(test_post_location_invalidates),
        T(test_post_content_location_invalidates),
        T(test_failed_post_keeps_entry),
        T(test_stale_while_revalidate),
        T(test_stale_if_error_without_validator),
        T(test_stale_if_error_with_validator),
        T(test_error_without_stale_if_error),
        T(test_stale_if_error_window_ends),
        T(test_serve_stale_on_error_unreachable),
        T(test_serve_stale_on_error_503),
        T(test_serve_stale_on_error_not_past_must_revalidate),
        T(test_request_no_cache),
        T(test_request_pragma_no_cache),
        T(test_request_max_age_zero),
        T(test_only_if_cached_uncached),
        T(test_only_if_cached_cached),
        T(test_request_no_store),
        T(test_cache_status_miss_then_hit),
        T(test_cache_status_vary_miss),
        T(test_cache_status_bypass),
        T(test_cache_status_appended),
        T(test_heuristic_last_modified),
        T(test_no_freshness_never_hit),
        T(test_unknown_method_forwarded),
    };
#undef T
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
