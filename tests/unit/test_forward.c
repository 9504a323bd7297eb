/* Unit tests for the proxy's header rewriting (forward.c): what goes to the origin,
 * what goes back to the client, and what the cache keeps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "forward.h"

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

/* Asserts that h holds exactly the NULL-terminated name/value pairs of `want`, in order. */
static void assert_fields(const struct hdrs *h, const char *const *want)
{
    size_t n = 0;
    while (want[2 * n] != NULL)
        n++;
    assert_int_equal(h->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(h->v[i].name, want[2 * i]);
        assert_string_equal(h->v[i].value, want[2 * i + 1]);
    }
}

static void test_verdict_name(void **state)
{
    (void)state;
    assert_string_equal(forward_verdict_name(VERDICT_MISS), "MISS");
    assert_string_equal(forward_verdict_name(VERDICT_HIT), "HIT");
    assert_string_equal(forward_verdict_name(VERDICT_BYPASS), "BYPASS");
}

/* ---- request ---- */

static void test_request_basic(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Host", "localhost:3000", "Accept", "*/*", "User-Agent", "curl/8",
                "Connection", "keep-alive"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "127.0.0.1", &out), CP_OK);
    assert_fields(&out, H("Accept", "*/*", "User-Agent", "curl/8", "X-Forwarded-Host",
                          "localhost:3000", "Via", "1.1 caching-proxy", "X-Forwarded-For",
                          "127.0.0.1", "X-Forwarded-Proto", "http"));
    /* the input is not touched */
    assert_int_equal(in.n, 4);
    assert_string_equal(hdrs_get(&in, "Host"), "localhost:3000");
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_request_hop_by_hop(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Connection", "Upgrade, X-Hop", "Upgrade", "websocket", "Keep-Alive", "timeout=5",
                "TE", "trailers", "Transfer-Encoding", "chunked", "Proxy-Authorization",
                "Basic eA==", "Proxy-Connection", "keep-alive", "x-hop", "1", "Authorization",
                "Bearer t", "Cookie", "a=1", "Trailer", "X-T"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "10.0.0.1", &out), CP_OK);
    /* end-to-end credentials stay; everything for this hop goes */
    assert_string_equal(hdrs_get(&out, "Authorization"), "Bearer t");
    assert_string_equal(hdrs_get(&out, "Cookie"), "a=1");
    const char *gone[] = {"Connection", "Upgrade", "Keep-Alive", "TE", "Transfer-Encoding",
                          "Proxy-Authorization", "Proxy-Connection", "X-Hop", "Trailer", "Host",
                          "X-Forwarded-Host"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        assert_null(hdrs_get(&out, gone[i]));
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_request_via_appended(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Via", "1.0 fred", "Accept", "a", "via", "1.1 p.example.net (Apache/2)"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "::1", &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "Via"), 1);
    assert_string_equal(hdrs_get(&out, "Via"),
                        "1.0 fred, 1.1 p.example.net (Apache/2), 1.1 caching-proxy");
    /* the single Via keeps the place of the first one */
    assert_string_equal(out.v[0].name, "Via");
    assert_string_equal(out.v[1].name, "Accept");
    hdrs_free(&in);
    hdrs_free(&out);

    fill(&in, H("Via", ""));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "::1", &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "Via"), 1);
    assert_string_equal(hdrs_get(&out, "Via"), "1.1 caching-proxy");
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_request_forwarded_for(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("X-Forwarded-For", "203.0.113.7", "x-forwarded-for", "198.51.100.1"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "192.0.2.9", &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "X-Forwarded-For"), 1);
    assert_string_equal(hdrs_get(&out, "X-Forwarded-For"),
                        "203.0.113.7, 198.51.100.1, 192.0.2.9");
    hdrs_free(&out);

    /* an unknown client address adds nothing but keeps what was there */
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, NULL, &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "X-Forwarded-For"), 2);
    hdrs_free(&out);
    hdrs_free(&in);

    hdrs_init(&in);
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, NULL, &out), CP_OK);
    assert_null(hdrs_get(&out, "X-Forwarded-For"));
    assert_string_equal(hdrs_get(&out, "X-Forwarded-Proto"), "http");
    assert_string_equal(hdrs_get(&out, "Via"), "1.1 caching-proxy");
    assert_null(hdrs_get(&out, "X-Forwarded-Host"));
    hdrs_free(&out);
    hdrs_free(&in);
}

static void test_request_forwarded_host_proto_replaced(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example",
                "HOST", "shop.example:8080", "X-Forwarded-Proto", "ftp"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, "192.0.2.1", &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "X-Forwarded-Proto"), 1);
    assert_string_equal(hdrs_get(&out, "X-Forwarded-Proto"), "http");
    assert_int_equal(hdrs_count(&out, "X-Forwarded-Host"), 1);
    assert_string_equal(hdrs_get(&out, "X-Forwarded-Host"), "shop.example:8080");
    assert_null(hdrs_get(&out, "Host"));
    hdrs_free(&in);
    hdrs_free(&out);

    /* Host named in Connection is still the one forwarded (it is the cache key's),
     * and without a Host (or with an empty one) the client's goes too. */
    fill(&in, H("Host", "shop.example", "Connection", "Host", "X-Forwarded-Host",
                "evil.example", "Forwarded", "host=evil.example;proto=https"));
    hdrs_init(&out);
    assert_int_equal(forward_request_headers(&in, NULL, &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "X-Forwarded-Host"), 1);
    assert_string_equal(hdrs_get(&out, "X-Forwarded-Host"), "shop.example");
    assert_null(hdrs_get(&out, "Forwarded"));
    hdrs_free(&in);
    hdrs_free(&out);
    for (int empty = 0; empty < 2; empty++) {
        if (empty)
            fill(&in, H("Host", "", "X-Forwarded-Host", "evil.example"));
        else
            fill(&in, H("X-Forwarded-Host", "evil.example"));
        hdrs_init(&out);
        assert_int_equal(forward_request_headers(&in, NULL, &out), CP_OK);
        assert_null(hdrs_get(&out, "X-Forwarded-Host"));
        hdrs_free(&in);
        hdrs_free(&out);
    }
}

/* ---- response ---- */

/* The fields forward_response_emit emits, collected in order into `out`. */
static cp_err collect(void *arg, const char *name, const char *value)
{
    return hdrs_add(arg, name, value);
}

static cp_err response_fields(const struct hdrs *in, const struct cache_outcome *o,
                              struct hdrs *out)
{
    return forward_response_emit(in, o, collect, out);
}

/* An emitter that fails on the third field: the error stops the emitting. */
static cp_err fail_third(void *arg, const char *name, const char *value)
{
    (void)name;
    (void)value;
    int *calls = arg;
    return ++*calls == 3 ? CP_ERR_NOMEM : CP_OK;
}

static void test_response_emit_stops_on_error(void **state)
{
    (void)state;
    struct hdrs in;
    fill(&in, H("A", "1", "B", "2", "C", "3", "D", "4"));
    struct cache_outcome hit = {.verdict = VERDICT_HIT, .age = 1};
    int calls = 0;
    assert_int_equal(forward_response_emit(&in, &hit, fail_third, &calls), CP_ERR_NOMEM);
    assert_int_equal(calls, 3);
    hdrs_free(&in);
}

/* A long Via from upstream is joined with ours whole, however long. */
static void test_response_long_via(void **state)
{
    (void)state;
    struct hdrs in, out;
    char big[700];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fill(&in, H("Via", big, "Via", "1.0 edge"));
    hdrs_init(&out);
    struct cache_outcome hit = {.verdict = VERDICT_HIT, .age = -1};
    assert_int_equal(response_fields(&in, &hit, &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "Via"), 1);
    const char *via = hdrs_get(&out, "Via");
    assert_int_equal(strlen(via), strlen(big) + strlen(", 1.0 edge, 1.1 caching-proxy"));
    assert_string_equal(via + strlen(big), ", 1.0 edge, 1.1 caching-proxy");
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_response_rewrite(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Content-Type", "application/json", "Content-Length", "42", "Set-Cookie", "a=1",
                "Connection", "keep-alive, X-Internal", "X-Cache", "HIT from upstream",
                "Transfer-Encoding", "chunked", "Age", "900", "X-Internal", "secret",
                "Set-Cookie", "b=2", "ETag", "\"v1\"", "Keep-Alive", "timeout=5"));
    hdrs_init(&out);
    struct cache_outcome miss = {.verdict = VERDICT_MISS, .fwd = "uri-miss", .fwd_status = 200,
                                 .stored = true, .age = 0};
    assert_int_equal(response_fields(&in, &miss, &out), CP_OK);
    assert_fields(&out, H("Content-Type", "application/json", "Set-Cookie", "a=1", "Set-Cookie",
                          "b=2", "ETag", "\"v1\"", "Via", "1.1 caching-proxy", "Cache-Status",
                          "caching-proxy; fwd=uri-miss; fwd-status=200; stored", "X-Cache",
                          "MISS", "Age", "0"));
    hdrs_free(&out);

    hdrs_init(&out);
    struct cache_outcome hit = {.verdict = VERDICT_HIT, .age = 2147483647};
    assert_int_equal(response_fields(&in, &hit, &out), CP_OK);
    assert_string_equal(hdrs_get(&out, "X-Cache"), "HIT");
    assert_int_equal(hdrs_count(&out, "Age"), 1);
    assert_string_equal(hdrs_get(&out, "Age"), "2147483647");
    hdrs_free(&out);

    /* An Age past 2^31 (an origin's huge one, passed on) is sent as 2^31. */
    hdrs_init(&out);
    hit.age = INT64_MAX / 2;
    assert_int_equal(response_fields(&in, &hit, &out), CP_OK);
    assert_string_equal(hdrs_get(&out, "Age"), "2147483648");
    hdrs_free(&out);
    hdrs_free(&in);
}

static void test_response_no_age(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Age", "5", "x-cache", "MISS", "Via", "1.1 origin-lb", "Date",
                "Sun, 06 Nov 1994 08:49:37 GMT"));
    hdrs_init(&out);
    struct cache_outcome bypass = {.verdict = VERDICT_BYPASS, .fwd = "bypass", .age = -1};
    assert_int_equal(response_fields(&in, &bypass, &out), CP_OK);
    /* no age known: the origin's Age is dropped, not passed on as ours */
    assert_null(hdrs_get(&out, "Age"));
    assert_int_equal(hdrs_count(&out, "X-Cache"), 1);
    assert_string_equal(hdrs_get(&out, "X-Cache"), "BYPASS");
    assert_string_equal(hdrs_get(&out, "Via"), "1.1 origin-lb, 1.1 caching-proxy");
    assert_string_equal(hdrs_get(&out, "Date"), "Sun, 06 Nov 1994 08:49:37 GMT");
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_response_empty(void **state)
{
    (void)state;
    struct hdrs in, out;
    hdrs_init(&in);
    hdrs_init(&out);
    struct cache_outcome hit = {.verdict = VERDICT_HIT, .has_ttl = true, .ttl = 57, .age = 3};
    assert_int_equal(response_fields(&in, &hit, &out), CP_OK);
    assert_fields(&out, H("Via", "1.1 caching-proxy", "Cache-Status", "caching-proxy; hit; ttl=57",
                          "X-Cache", "HIT", "Age", "3"));
    hdrs_free(&out);
}

/* RFC 9211: each cache appends its member; one further from the user comes first. */
static void test_cache_status_appended(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Cache-Status", "upstream; hit"));
    hdrs_init(&out);
    struct cache_outcome o = {.verdict = VERDICT_REVALIDATED, .fwd = "stale", .fwd_status = 304,
                              .has_ttl = true, .ttl = 60, .stored = true, .age = 0};
    assert_int_equal(response_fields(&in, &o, &out), CP_OK);
    assert_int_equal(hdrs_count(&out, "Cache-Status"), 1);
    assert_string_equal(hdrs_get(&out, "Cache-Status"),
                        "upstream; hit, caching-proxy; fwd=stale; fwd-status=304; ttl=60; stored");
    assert_string_equal(hdrs_get(&out, "X-Cache"), "REVALIDATED");
    hdrs_free(&in);
    hdrs_free(&out);
}

static void test_cache_status_members(void **state)
{
    (void)state;
    char buf[160];
    struct cache_outcome stale = {.verdict = VERDICT_STALE, .has_ttl = true, .ttl = -5,
                                  .detail = "stale-while-revalidate", .age = 65};
    forward_cache_status(&stale, buf, sizeof buf);
    assert_string_equal(buf, "caching-proxy; hit; ttl=-5; detail=stale-while-revalidate");
    struct cache_outcome coll = {.verdict = VERDICT_MISS, .fwd = "vary-miss", .fwd_status = 200,
                                 .collapsed = true, .age = -1};
    forward_cache_status(&coll, buf, sizeof buf);
    assert_string_equal(buf, "caching-proxy; fwd=vary-miss; fwd-status=200; collapsed");
    /* A short buffer is truncated, never overrun. */
    char small[16];
    forward_cache_status(&coll, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(forward_verdict_name(VERDICT_STALE), "STALE");
    assert_string_equal(forward_verdict_name(VERDICT_REVALIDATED), "REVALIDATED");
}

/* ---- stored ---- */

static void test_storable_headers(void **state)
{
    (void)state;
    struct hdrs in, out;
    fill(&in, H("Date", "d", "Connection", "close, X-Hop", "Content-Length", "10", "X-Hop", "1",
                "Set-Cookie", "a=1", "Transfer-Encoding", "chunked", "Age", "4", "Set-Cookie",
                "b=2", "Proxy-Authenticate", "Basic", "Vary", "Accept"));
    hdrs_init(&out);
    for (size_t i = 0; i < in.n; i++)
        if (forward_field_storable(&in, in.v[i].name))
            assert_int_equal(hdrs_add(&out, in.v[i].name, in.v[i].value), CP_OK);
    /* as received, minus what belonged to the connection */
    assert_fields(&out, H("Date", "d", "Content-Length", "10", "Set-Cookie", "a=1", "Age", "4",
                          "Set-Cookie", "b=2", "Vary", "Accept"));
    assert_int_equal(in.n, 10);
    hdrs_free(&in);
    hdrs_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_name),
        cmocka_unit_test(test_cache_status_appended),
        cmocka_unit_test(test_cache_status_members),
        cmocka_unit_test(test_request_basic),
        cmocka_unit_test(test_request_hop_by_hop),
        cmocka_unit_test(test_request_via_appended),
        cmocka_unit_test(test_request_forwarded_for),
        cmocka_unit_test(test_request_forwarded_host_proto_replaced),
        cmocka_unit_test(test_response_rewrite),
        cmocka_unit_test(test_response_no_age),
        cmocka_unit_test(test_response_emit_stops_on_error),
        cmocka_unit_test(test_response_long_via),
        cmocka_unit_test(test_response_empty),
        cmocka_unit_test(test_storable_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
