/* Unit tests for the caching decisions (policy.c): cacheable methods, storability,
 * freshness lifetimes (explicit, Expires, default, heuristic), age arithmetic, and
 * the use of a stored response (fresh, stale, revalidate, stale on error). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http.h"
#include "policy.h"

/* Sun, 06 Nov 1994 08:49:37 GMT: the response time used throughout. */
#define NOW 784111777
#define NOW_DATE "Sun, 06 Nov 1994 08:49:37 GMT"

static const struct policy_opts strict = {.default_ttl = 0, .max_object_size = 1000};
static const struct policy_opts with_ttl = {.default_ttl = 300, .max_object_size = 1000};

static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

static int64_t lifetime(int status, const char *const *kv, const struct policy_opts *o)
{
    struct hdrs h;
    fill(&h, kv);
    int64_t l = policy_freshness_lifetime(status, &h, NOW, o);
    hdrs_free(&h);
    return l;
}

static bool storable(int status, const char *const *req, const char *const *res, size_t len,
                     const struct policy_opts *o)
{
    struct hdrs rq, rs;
    fill(&rq, req);
    fill(&rs, res);
    bool ok = policy_storable(status, &rq, &rs, len, NOW, o);
    hdrs_free(&rq);
    hdrs_free(&rs);
    return ok;
}

static int64_t initial_age(const char *const *kv, time_t request_time, time_t response_time)
{
    struct hdrs h;
    fill(&h, kv);
    int64_t a = policy_initial_age(&h, request_time, response_time);
    hdrs_free(&h);
    return a;
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static enum reuse reuse(const char *const *stored, int64_t life, int64_t age,
                        const char *const *req)
{
    struct hdrs st, rq;
    fill(&st, stored);
    fill(&rq, req);
    enum reuse r = policy_reuse(&st, life, age, &rq);
    hdrs_free(&st);
    hdrs_free(&rq);
    return r;
}

static bool on_error(const char *const *stored, int64_t life, int64_t age,
                     const char *const *req, int64_t option)
{
    struct hdrs st, rq;
    fill(&st, stored);
    fill(&rq, req);
    bool ok = policy_stale_on_error(&st, life, age, &rq, option);
    hdrs_free(&st);
    hdrs_free(&rq);
    return ok;
}

static bool req_flag(bool (*f)(const struct hdrs *), const char *const *req)
{
    struct hdrs rq;
    fill(&rq, req);
    bool v = f(&rq);
    hdrs_free(&rq);
    return v;
}

/* Stored fields with and without something to revalidate with. */
#define ETAG "ETag", "\"v1\""
#define LASTMOD "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT"

static void test_method_cacheable(void **state)
{
    (void)state;
    assert_true(policy_method_cacheable("GET"));
    assert_true(policy_method_cacheable("HEAD"));
    const char *no[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
                        "get", "Head", "", "GETX", "GE"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(policy_method_cacheable(no[i]));
    assert_false(policy_method_cacheable(NULL));
}

/* ---- freshness lifetime ---- */

static void test_lifetime_explicit(void **state)
{
    (void)state;
    assert_int_equal(lifetime(200, H("Cache-Control", "max-age=60"), &strict), 60);
    assert_int_equal(lifetime(200, H("Cache-Control", "max-age=0"), &with_ttl), 0);
    /* a shared cache prefers s-maxage, even when it is shorter */
    assert_int_equal(lifetime(200, H("Cache-Control", "max-age=60, s-maxage=10"), &strict), 10);
    assert_int_equal(lifetime(200, H("Cache-Control", "s-maxage=90, max-age=5"), &strict), 90);
    /* max-age beats Expires */
    assert_int_equal(lifetime(200, H("Date", NOW_DATE, "Expires", "Sun, 06 Nov 1994 09:49:37 GMT",
                                     "Cache-Control", "max-age=5"),
                              &strict),
                     5);
    /* huge values saturate rather than overflow */
    assert_int_equal(lifetime(200, H("Cache-Control", "max-age=99999999999999999999"), &strict),
                     INT32_MAX);
    /* an invalid max-age means stale, not "use the default" */
    assert_int_equal(lifetime(200, H("Cache-Control", "max-age=soon"), &with_ttl), 0);
}

static void test_lifetime_no_cache(void **state)
{
    (void)state;
    assert_int_equal(lifetime(200, H("Cache-Control", "no-cache, max-age=60"), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Cache-Control", "s-maxage=60, no-cache=\"Set-Cookie\""),
                              &with_ttl),
                     0);
}

static void test_lifetime_expires(void **state)
{
    (void)state;
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Expires", "Sun, 06 Nov 1994 09:49:37 GMT"), &strict),
        3600);
    /* Expires is relative to the origin's Date, not to our clock */
    assert_int_equal(lifetime(200, H("Date", "Sun, 06 Nov 1994 08:00:00 GMT", "Expires",
                                     "Sun, 06 Nov 1994 08:01:40 GMT"),
                              &strict),
                     100);
    /* no Date, or an invalid one: the response time stands in */
    assert_int_equal(lifetime(200, H("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"), &strict), 60);
    assert_int_equal(
        lifetime(200, H("Date", "yesterday", "Expires", "Sun, 06 Nov 1994 08:50:37 GMT"), &strict),
        60);
    /* asctime and RFC 850 forms */
    assert_int_equal(lifetime(200, H("Date", NOW_DATE, "Expires", "Sun Nov  6 08:59:37 1994"),
                              &strict),
                     600);
    assert_int_equal(lifetime(200, H("Date", NOW_DATE, "Expires",
                                     "Sunday, 06-Nov-94 08:50:37 GMT"),
                              &strict),
                     60);
}

static void test_lifetime_expires_past_or_invalid(void **state)
{
    (void)state;
    /* in the past, equal to Date, "0" or garbage: expired, and the default does not apply */
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Expires", "Sat, 05 Nov 1994 08:49:37 GMT"), &with_ttl),
        0);
    assert_int_equal(lifetime(200, H("Date", NOW_DATE, "Expires", NOW_DATE), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Expires", "0"), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Expires", "-1"), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Expires", ""), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Expires", "never"), &with_ttl), 0);
    assert_int_equal(lifetime(200, H("Expires", "Sun, 06 Nov 1994 99:49:37 GMT"), &with_ttl), 0);
}

static void test_lifetime_default_ttl(void **state)
{
    (void)state;
    assert_int_equal(lifetime(200, NONE, &with_ttl), 300);
    assert_int_equal(lifetime(200, H("Cache-Control", "public"), &with_ttl), 300);
    /* the default comes before the heuristic */
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Last-Modified", "Sun, 06 Nov 1994 08:39:37 GMT"),
                 &with_ttl),
        300);
    assert_int_equal(lifetime(200, NONE, &strict), 0);
}

static void test_lifetime_heuristic(void **state)
{
    (void)state;
    /* 10% of the time since the last change */
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Last-Modified", "Sun, 06 Nov 1994 08:32:57 GMT"),
                 &strict),
        100);
    /* capped at one day */
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Last-Modified", "Sun, 06 Nov 1984 08:49:37 GMT"),
                 &strict),
        86400);
    /* Date missing: measured from the response time */
    assert_int_equal(lifetime(200, H("Last-Modified", "Sun, 06 Nov 1994 08:48:37 GMT"), &strict),
                     6);
    /* modified in the future, now, or unparsable: nothing to go on */
    assert_int_equal(
        lifetime(200, H("Date", NOW_DATE, "Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT"),
                 &strict),
        0);
    assert_int_equal(lifetime(200, H("Date", NOW_DATE, "Last-Modified", NOW_DATE), &strict), 0);
    assert_int_equal(lifetime(200, H("Last-Modified", "a while ago"), &strict), 0);
    /* only for the statuses that are heuristically cacheable */
    const int yes[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    const int no[] = {201, 302, 303, 307, 400, 403, 500, 502, 503};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_int_equal(lifetime(yes[i], H("Date", NOW_DATE, "Last-Modified",
                                            "Sun, 06 Nov 1994 08:32:57 GMT"),
                                  &strict),
                         100);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(lifetime(no[i], H("Date", NOW_DATE, "Last-Modified",
                                           "Sun, 06 Nov 1994 08:32:57 GMT"),
                                  &strict),
                         0);
}

/* ---- storable ---- */

static void test_storable_basic(void **state)
{
    (void)state;
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=60"), 10, &strict));
    assert_true(storable(200, NONE, NONE, 10, &with_ttl));
    /* no freshness and nothing to revalidate with: useless */
    assert_false(storable(200, NONE, NONE, 10, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=0"), 10, &with_ttl));
    assert_false(storable(200, NONE, H("Cache-Control", "no-cache"), 10, &with_ttl));
    assert_false(storable(200, NONE, H("Date", NOW_DATE, "Expires", "Sat, 05 Nov 1994 08:49:37 GMT"),
                          10, &with_ttl));
    assert_false(storable(200, NONE, H("Expires", "0"), 10, &with_ttl));
}

static void test_storable_status(void **state)
{
    (void)state;
    /* With explicit freshness any final status may be stored (RFC 9111 section 3)... */
    const int yes[] = {200, 201, 203, 204, 299, 300, 301, 302, 303, 307, 308, 400, 404, 410,
                       499, 500, 502, 503, 504, 599};
    /* ...but not interim, partial or 304 responses, nor what is no status at all. */
    const int no[] = {100, 199, 206, 304, 0, -1, 600, 999};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(storable(yes[i], NONE, H("Cache-Control", "max-age=60"), 0, &strict));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(storable(no[i], NONE, H("Cache-Control", "max-age=60"), 0, &strict));
    /* Without it, only what heuristics or --default-ttl may make fresh. */
    assert_true(storable(405, NONE, H("Last-Modified", "Sun, 06 Nov 1994 08:00:00 GMT"), 0,
                         &strict));
    assert_false(storable(500, NONE, H("Last-Modified", "Sun, 06 Nov 1994 08:00:00 GMT"), 0,
                          &strict));
    assert_false(storable(302, NONE, NONE, 0, &with_ttl));
    assert_true(storable(200, NONE, NONE, 0, &with_ttl));
    /* public counts as explicit, and so does Expires */
    assert_true(storable(599, NONE, H("Cache-Control", "public", "Last-Modified",
                                      "Sun, 06 Nov 1994 08:00:00 GMT"), 0, &strict));
    assert_true(storable(500, NONE, H("Date", NOW_DATE, "Expires", "Mon, 07 Nov 1994 08:49:37 GMT"),
                         0, &strict));
}

/* must-understand: only statuses the cache knows, and then no-store is overridden. */
static void test_storable_must_understand(void **state)
{
    (void)state;
    assert_false(storable(599, NONE, H("Cache-Control", "max-age=60, must-understand"), 0,
                          &strict));
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=60, must-understand, no-store"),
                         0, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60, no-store"), 0, &strict));
}

static void test_storable_no_store_private(void **state)
{
    (void)state;
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60, no-store"), 0, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60", "Cache-Control", "NO-STORE"),
                          0, &strict));
    assert_false(storable(200, H("Cache-Control", "no-store"), H("Cache-Control", "max-age=60"), 0,
                          &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "private, max-age=60"), 0, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "private=\"X-User\", max-age=60"), 0,
                          &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "public, private, s-maxage=60"), 0,
                          &strict));
    /* request directives other than no-store do not stop storing */
    assert_true(storable(200, H("Cache-Control", "no-cache, max-age=0"),
                         H("Cache-Control", "max-age=60"), 0, &strict));
}

static void test_storable_set_cookie(void **state)
{
    (void)state;
    assert_false(storable(200, NONE, H("Set-Cookie", "id=1", "Cache-Control", "max-age=60"), 0,
                          &strict));
    assert_false(storable(200, NONE, H("Set-Cookie", "id=1"), 0, &with_ttl));
    assert_true(storable(200, NONE, H("Set-Cookie", "id=1", "Cache-Control", "public, max-age=60"),
                         0, &strict));
    assert_true(storable(200, NONE, H("Set-Cookie", "id=1", "Cache-Control", "s-maxage=60"), 0,
                         &strict));
    /* an invalid s-maxage or public does not vouch for sharing */
    assert_false(storable(200, NONE, H("Set-Cookie", "id=1", "Cache-Control",
                                       "s-maxage=x, public=1, max-age=60"),
                          0, &strict));
    /* public is not enough without freshness */
    assert_false(storable(200, NONE, H("Set-Cookie", "id=1", "Cache-Control", "public"), 0,
                          &strict));
}

static void test_storable_authorization(void **state)
{
    (void)state;
    const char *const auth[] = {"Authorization", "Bearer abc", NULL};
    assert_false(storable(200, auth, H("Cache-Control", "max-age=60"), 0, &strict));
    assert_false(storable(200, auth, NONE, 0, &with_ttl));
    assert_true(storable(200, auth, H("Cache-Control", "public, max-age=60"), 0, &strict));
    assert_true(storable(200, auth, H("Cache-Control", "s-maxage=60"), 0, &strict));
    assert_true(storable(200, auth, H("Cache-Control", "must-revalidate, max-age=60"), 0,
                         &strict));
    assert_false(storable(200, auth, H("Cache-Control", "proxy-revalidate, max-age=60"), 0,
                          &strict));
    /* the name is case-insensitive, an empty value still counts */
    assert_false(storable(200, H("authorization", ""), H("Cache-Control", "max-age=60"), 0,
                          &strict));
    /* Authorization in the response is not a request credential */
    assert_true(storable(200, NONE, H("Authorization", "x", "Cache-Control", "max-age=60"), 0,
                         &strict));
}

static void test_storable_size(void **state)
{
    (void)state;
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=60"), 1000, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60"), 1001, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60"), SIZE_MAX, &strict));
    const struct policy_opts zero = {.default_ttl = 0, .max_object_size = 0};
    assert_true(storable(204, NONE, H("Cache-Control", "max-age=60"), 0, &zero));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=60"), 1, &zero));
}

static void test_storable_validators(void **state)
{
    (void)state;
    /* stale at once but revalidatable */
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=0", ETAG), 10, &strict));
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=0", LASTMOD), 10, &strict));
    assert_true(storable(200, NONE, H("Expires", "0", ETAG), 10, &strict));
    assert_true(storable(200, NONE, H("etag", "W/\"x\""), 10, &strict));
    /* a heuristic status without freshness information still needs only a validator */
    assert_true(storable(404, NONE, H(ETAG), 0, &strict));
    /* an empty ETag or an unparsable Last-Modified validates nothing */
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=0", "ETag", ""), 10, &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=0", "Last-Modified", "recently"),
                          10, &strict));
    /* a validator does not lift any other condition */
    assert_false(storable(302, NONE, H(ETAG), 0, &strict));
    /* stale at once, no validator, but usable stale for a while */
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=0, stale-if-error=60"), 0, &strict));
    assert_true(storable(200, NONE, H("Cache-Control", "max-age=0, stale-while-revalidate=9"), 0,
                         &strict));
    assert_false(storable(200, NONE, H("Cache-Control", "max-age=0, stale-if-error=0"), 0, &strict));
    assert_false(storable(200, NONE, H(ETAG, "Cache-Control", "no-store"), 0, &strict));
    assert_false(storable(200, H("Cache-Control", "no-store"), H(ETAG), 0, &strict));
    assert_false(storable(200, NONE, H(ETAG, "Cache-Control", "private"), 0, &strict));
    assert_false(storable(200, NONE, H(ETAG, "Set-Cookie", "id=1"), 0, &strict));
    assert_false(storable(200, H("Authorization", "Basic x"), H(ETAG), 0, &strict));
    assert_false(storable(200, NONE, H(ETAG), 1001, &strict));
    assert_true(storable(200, H("Authorization", "Basic x"), H(ETAG, "Cache-Control", "public"), 0,
                         &strict));
}

static void test_storable_no_cache(void **state)
{
    (void)state;
    /* no-cache responses are kept to be revalidated before each use */
    assert_true(storable(200, NONE, H("Cache-Control", "no-cache", ETAG), 10, &strict));
    assert_true(storable(200, NONE, H("Cache-Control", "no-cache, max-age=60", LASTMOD), 10,
                         &with_ttl));
    assert_true(storable(200, NONE, H("Cache-Control", "no-cache=\"Set-Cookie\"", ETAG), 10,
                         &strict));
    /* ... which needs a validator: their lifetime is always 0 */
    assert_false(storable(200, NONE, H("Cache-Control", "no-cache, max-age=60"), 10, &with_ttl));
    assert_false(storable(200, NONE, H("Cache-Control", "no-cache, no-store", ETAG), 10, &strict));
    /* a no-cache request has no say in storing */
    assert_true(storable(200, H("Cache-Control", "no-cache"), H("Cache-Control", "max-age=60"), 0,
                         &strict));
    assert_true(storable(200, H("Pragma", "no-cache"), H("Cache-Control", "max-age=60"), 0,
                         &strict));
}

/* ---- reuse of a stored response ---- */

static void test_reuse_fresh_boundary(void **state)
{
    (void)state;
    assert_int_equal(reuse(NONE, 60, 0, NONE), REUSE_FRESH);
    assert_int_equal(reuse(NONE, 60, 59, NONE), REUSE_FRESH);
    /* age == lifetime is stale */
    assert_int_equal(reuse(NONE, 60, 60, NONE), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG), 60, 60, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(H(LASTMOD), 60, 61, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 0, 0, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 0, 0, NONE), REUSE_NONE);
    /* huge values neither overflow nor wrap */
    assert_int_equal(reuse(NONE, INT64_MAX, INT64_MAX - 1, NONE), REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG), 0, INT64_MAX, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(H("Cache-Control", "stale-while-revalidate=10"), INT64_MIN, 0, NONE),
                     REUSE_NONE);
    /* what counts as a validator */
    assert_int_equal(reuse(H("etag", "x"), 1, 5, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(H("ETag", ""), 1, 5, NONE), REUSE_NONE);
    assert_int_equal(reuse(H("Last-Modified", "last week"), 1, 5, NONE), REUSE_NONE);
    assert_int_equal(reuse(H("ETag", "", LASTMOD), 1, 5, NONE), REUSE_REVALIDATE);
}

static void test_reuse_request_no_cache(void **state)
{
    (void)state;
    const char *const *nc = H("Cache-Control", "no-cache");
    assert_int_equal(reuse(H(ETAG), 60, 0, nc), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 0, nc), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "max-stale, NO-CACHE")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "max-stale", "Cache-Control",
                                               "no-cache")),
                     REUSE_REVALIDATE);
    /* no-cache beats the response's stale-while-revalidate and the request's max-stale */
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=60"), 10, 20,
                           H("Cache-Control", "no-cache, max-stale")),
                     REUSE_REVALIDATE);
}

static void test_reuse_pragma(void **state)
{
    (void)state;
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Pragma", "no-cache")), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 0, H("pragma", "No-Cache")), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Pragma", "x-foo, no-cache")), REUSE_REVALIDATE);
    /* any Cache-Control field in the request silences Pragma, even an empty one */
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Pragma", "no-cache", "Cache-Control", "max-age=60")),
                     REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "", "Pragma", "no-cache")),
                     REUSE_FRESH);
    /* other Pragma values mean nothing, nor does Pragma in the response */
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Pragma", "no-cache-please")), REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG, "Pragma", "no-cache"), 60, 0, NONE), REUSE_FRESH);
}

static void test_reuse_response_no_cache(void **state)
{
    (void)state;
    /* even when the caller's lifetime says fresh */
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "no-cache"), 60, 0, NONE), REUSE_REVALIDATE);
    assert_int_equal(reuse(H("Cache-Control", "no-cache"), 60, 0, NONE), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "no-cache=\"Set-Cookie\""), 60, 0, NONE),
                     REUSE_REVALIDATE);
    /* and it cannot be served stale by any permission */
    assert_int_equal(reuse(H(LASTMOD, "Cache-Control", "no-cache, stale-while-revalidate=99"), 0,
                           5, H("Cache-Control", "max-stale")),
                     REUSE_REVALIDATE);
}

static void test_reuse_request_max_age(void **state)
{
    (void)state;
    const char *const *ma10 = H("Cache-Control", "max-age=10");
    assert_int_equal(reuse(H(ETAG), 60, 10, ma10), REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG), 60, 11, ma10), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 11, ma10), REUSE_NONE);
    /* a longer max-age does not lengthen the response's lifetime */
    assert_int_equal(reuse(H(ETAG), 60, 60, H("Cache-Control", "max-age=1000")), REUSE_REVALIDATE);
    /* max-age=0 asks for revalidation, even of a response stored this second */
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "max-age=0")), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 0, H("Cache-Control", "max-age=0")), REUSE_NONE);
    /* an invalid max-age counts as 0 */
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "max-age=now")), REUSE_REVALIDATE);
    /* it bounds stale responses as well */
    assert_int_equal(reuse(H(ETAG), 60, 70, H("Cache-Control", "max-age=100, max-stale")),
                     REUSE_STALE);
    assert_int_equal(reuse(H(ETAG), 60, 101, H("Cache-Control", "max-age=100, max-stale")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 60, 60, H("Cache-Control", "max-age=0, max-stale")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=60"), 60, 70,
                           H("Cache-Control", "max-age=0")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=60"), 60, 70,
                           H("Cache-Control", "max-age=70")),
                     REUSE_STALE_REFRESH);
}

static void test_reuse_min_fresh(void **state)
{
    (void)state;
    const char *const *mf10 = H("Cache-Control", "min-fresh=10");
    /* 10 seconds of freshness left is enough, 9 is not */
    assert_int_equal(reuse(H(ETAG), 60, 50, mf10), REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG), 60, 51, mf10), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 51, mf10), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG), 60, 59, H("Cache-Control", "min-fresh=0")), REUSE_FRESH);
    assert_int_equal(reuse(H(ETAG), 60, 0, H("Cache-Control", "min-fresh=99999999999")),
                     REUSE_REVALIDATE);
    /* an invalid min-fresh is ignored */
    assert_int_equal(reuse(H(ETAG), 60, 59, H("Cache-Control", "min-fresh=ten")), REUSE_FRESH);
    /* a fresh response that fails min-fresh is not stale: max-stale and
     * stale-while-revalidate do not rescue it */
    assert_int_equal(reuse(H(ETAG), 60, 55, H("Cache-Control", "min-fresh=10, max-stale")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=60"), 60, 55, mf10),
                     REUSE_REVALIDATE);
    /* on a stale response min-fresh plays no part */
    assert_int_equal(reuse(H(ETAG), 60, 65, H("Cache-Control", "min-fresh=10, max-stale")),
                     REUSE_STALE);
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=60"), 60, 65, mf10),
                     REUSE_STALE_REFRESH);
}

static void test_reuse_max_stale(void **state)
{
    (void)state;
    const char *const *any = H("Cache-Control", "max-stale");
    assert_int_equal(reuse(NONE, 60, 60, any), REUSE_STALE);
    assert_int_equal(reuse(H(ETAG), 60, INT64_MAX, any), REUSE_STALE);
    /* a fresh response stays fresh */
    assert_int_equal(reuse(NONE, 60, 59, any), REUSE_FRESH);
    /* a bounded max-stale: staleness up to and including the bound */
    const char *const *ms10 = H("Cache-Control", "max-stale=10");
    assert_int_equal(reuse(H(ETAG), 60, 70, ms10), REUSE_STALE);
    assert_int_equal(reuse(H(ETAG), 60, 71, ms10), REUSE_REVALIDATE);
    assert_int_equal(reuse(NONE, 60, 71, ms10), REUSE_NONE);
    assert_int_equal(reuse(H(ETAG), 60, 60, H("Cache-Control", "max-stale=0")), REUSE_STALE);
    assert_int_equal(reuse(H(ETAG), 60, 61, H("Cache-Control", "max-stale=0")), REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 0, 5, H("Cache-Control", "max-stale=\"5\"")), REUSE_STALE);
    /* an invalid bound is no permission at all */
    assert_int_equal(reuse(H(ETAG), 60, 61, H("Cache-Control", "max-stale=soon")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 60, 61, H("Cache-Control", "max-stale=-1")), REUSE_REVALIDATE);
    /* the first occurrence decides */
    assert_int_equal(reuse(H(ETAG), 60, 80, H("Cache-Control", "max-stale=10, max-stale")),
                     REUSE_REVALIDATE);
    assert_int_equal(reuse(H(ETAG), 60, 80, H("Cache-Control", "max-stale, max-stale=10")),
                     REUSE_STALE);
}

static void test_reuse_stale_forbidden(void **state)
{
    (void)state;
    const char *const forbid[] = {"must-revalidate", "proxy-revalidate", "s-maxage=60",
                                  "s-maxage=0", "Must-Revalidate"};
    for (size_t i = 0; i < sizeof forbid / sizeof forbid[0]; i++) {
        const char *const *st = H(ETAG, "Cache-Control", forbid[i]);
        const char *const *swr = H("Cache-Control", "stale-while-revalidate=99", "Cache-Control",
                                   forbid[i]);
        /* fresh is still fresh */
        assert_int_equal(reuse(st, 60, 59, NONE), REUSE_FRESH);
        /* must-revalidate wins over max-stale, with or without a value */
        assert_int_equal(reuse(st, 60, 60, H("Cache-Control", "max-stale")), REUSE_REVALIDATE);
        assert_int_equal(reuse(st, 60, 61, H("Cache-Control", "max-stale=100")),
                         REUSE_REVALIDATE);
        /* and over stale-while-revalidate */
        assert_int_equal(reuse(swr, 60, 61, NONE), REUSE_NONE);
    }
    /* an s-maxage that does not parse is absent, and forbids nothing */
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "s-maxage=x"), 60, 61,
                           H("Cache-Control", "max-stale")),
                     REUSE_STALE);
}

static void test_reuse_swr(void **state)
{
    (void)state;
    const char *const *st = H(ETAG, "Cache-Control", "max-age=60, stale-while-revalidate=30");
    assert_int_equal(reuse(st, 60, 59, NONE), REUSE_FRESH);
    /* the window runs from the moment it is stale to 30 seconds past that */
    assert_int_equal(reuse(st, 60, 60, NONE), REUSE_STALE_REFRESH);
    assert_int_equal(reuse(st, 60, 90, NONE), REUSE_STALE_REFRESH);
    assert_int_equal(reuse(st, 60, 91, NONE), REUSE_REVALIDATE);
    /* a zero window covers only the first stale second */
    const char *const *zero = H("Cache-Control", "stale-while-revalidate=0");
    assert_int_equal(reuse(zero, 60, 60, NONE), REUSE_STALE_REFRESH);
    assert_int_equal(reuse(zero, 60, 61, NONE), REUSE_NONE);
    /* no validator: still served, the refresh is a plain fetch */
    assert_int_equal(reuse(H("Cache-Control", "stale-while-revalidate=30"), 10, 20, NONE),
                     REUSE_STALE_REFRESH);
    /* both the window and max-stale: serve and refresh */
    assert_int_equal(reuse(st, 60, 70, H("Cache-Control", "max-stale")), REUSE_STALE_REFRESH);
    /* past the window, max-stale alone */
    assert_int_equal(reuse(st, 60, 100, H("Cache-Control", "max-stale=40")), REUSE_STALE);
    assert_int_equal(reuse(st, 60, 101, H("Cache-Control", "max-stale=40")), REUSE_REVALIDATE);
    /* an invalid value is no window */
    assert_int_equal(reuse(H(ETAG, "Cache-Control", "stale-while-revalidate=later"), 60, 61, NONE),
                     REUSE_REVALIDATE);
    /* it is a response directive: in a request it grants nothing */
    assert_int_equal(reuse(H(ETAG), 60, 61, H("Cache-Control", "stale-while-revalidate=30")),
                     REUSE_REVALIDATE);
}

/* ---- stale on error ---- */

static void test_stale_on_error_fresh(void **state)
{
    (void)state;
    assert_true(on_error(NONE, 60, 59, NONE, 0));
    assert_true(on_error(H("Cache-Control", "must-revalidate"), 60, 0, NONE, 0));
    /* stale with no permission at all */
    assert_false(on_error(NONE, 60, 60, NONE, 0));
    assert_false(on_error(H(ETAG), 0, 0, NONE, 0));
    /* stale-while-revalidate is not stale-if-error */
    assert_false(on_error(H("Cache-Control", "stale-while-revalidate=99"), 60, 61, NONE, 0));
}

static void test_stale_on_error_windows(void **state)
{
    (void)state;
    /* from the response */
    const char *const *sie = H("Cache-Control", "max-age=60, stale-if-error=30");
    assert_true(on_error(sie, 60, 60, NONE, 0));
    assert_true(on_error(sie, 60, 90, NONE, 0));
    assert_false(on_error(sie, 60, 91, NONE, 0));
    assert_false(on_error(H("Cache-Control", "stale-if-error=bad"), 60, 61, NONE, 0));
    /* from the request */
    assert_true(on_error(NONE, 60, 90, H("Cache-Control", "stale-if-error=30"), 0));
    assert_false(on_error(NONE, 60, 91, H("Cache-Control", "stale-if-error=30"), 0));
    /* the wider of the two decides */
    assert_true(on_error(sie, 60, 150, H("Cache-Control", "stale-if-error=90"), 0));
    assert_true(on_error(H("Cache-Control", "stale-if-error=90"), 60, 150,
                         H("Cache-Control", "stale-if-error=30"), 0));
    /* the request's max-stale, within its bound */
    assert_true(on_error(NONE, 60, INT64_MAX, H("Cache-Control", "max-stale"), 0));
    assert_true(on_error(NONE, 60, 70, H("Cache-Control", "max-stale=10"), 0));
    assert_false(on_error(NONE, 60, 71, H("Cache-Control", "max-stale=10"), 0));
}

static void test_stale_on_error_option(void **state)
{
    (void)state;
    assert_true(on_error(NONE, 60, 160, NONE, 100));
    assert_false(on_error(NONE, 60, 161, NONE, 100));
    assert_true(on_error(NONE, 0, 1, NONE, 1));
    /* 0 is off, even at the first stale second */
    assert_false(on_error(NONE, 60, 60, NONE, 0));
    assert_false(on_error(NONE, 60, 60, NONE, -5));
    /* the option widens a shorter stale-if-error, and the other way round */
    assert_true(on_error(H("Cache-Control", "stale-if-error=10"), 60, 150, NONE, 100));
    assert_true(on_error(H("Cache-Control", "stale-if-error=200"), 60, 250, NONE, 100));
    assert_true(on_error(NONE, 60, INT64_MAX, NONE, INT64_MAX));
}

static void test_stale_on_error_forbidden(void **state)
{
    (void)state;
    const char *const forbid[] = {"must-revalidate, stale-if-error=100",
                                  "proxy-revalidate, stale-if-error=100",
                                  "s-maxage=60, stale-if-error=100",
                                  "no-cache, stale-if-error=100",
                                  "no-cache=\"Set-Cookie\", stale-if-error=100"};
    for (size_t i = 0; i < sizeof forbid / sizeof forbid[0]; i++) {
        const char *const *st = H(ETAG, "Cache-Control", forbid[i]);
        assert_false(on_error(st, 60, 61, NONE, 0));
        assert_false(on_error(st, 60, 61, H("Cache-Control", "stale-if-error=100"), 0));
        assert_false(on_error(st, 60, 61, H("Cache-Control", "max-stale"), 0));
        /* the option overrides nothing of the origin's */
        assert_false(on_error(st, 60, 61, NONE, 1000));
    }
    /* no-cache is never served unvalidated, not even when the lifetime says fresh */
    assert_false(on_error(H("Cache-Control", "no-cache"), 60, 0, NONE, 1000));
    /* must-revalidate and friends only guard stale use */
    assert_true(on_error(H("Cache-Control", "must-revalidate"), 60, 59, NONE, 0));
    /* a request's no-cache asked for validation; that failing, the rules above apply */
    assert_true(on_error(H("Cache-Control", "stale-if-error=100"), 60, 61,
                         H("Cache-Control", "no-cache"), 0));
}

/* ---- request directives ---- */

static void test_request_no_store(void **state)
{
    (void)state;
    assert_true(req_flag(policy_request_no_store, H("Cache-Control", "no-store")));
    assert_true(req_flag(policy_request_no_store, H("Cache-Control", "max-age=0, No-Store")));
    assert_true(req_flag(policy_request_no_store, H("Cache-Control", "max-stale", "cache-control",
                                                    "no-store")));
    /* even with a stray argument, the restriction stands */
    assert_true(req_flag(policy_request_no_store, H("Cache-Control", "no-store=1")));
    assert_false(req_flag(policy_request_no_store, NONE));
    assert_false(req_flag(policy_request_no_store, H("Cache-Control", "no-cache")));
    assert_false(req_flag(policy_request_no_store, H("Cache-Control", "no-storex")));
    assert_false(req_flag(policy_request_no_store, H("Pragma", "no-store")));
    assert_false(req_flag(policy_request_no_store, H("X-Cache-Control", "no-store")));
}

static void test_only_if_cached(void **state)
{
    (void)state;
    assert_true(req_flag(policy_only_if_cached, H("Cache-Control", "only-if-cached")));
    assert_true(req_flag(policy_only_if_cached, H("Cache-Control", "max-stale, ONLY-IF-CACHED")));
    assert_true(req_flag(policy_only_if_cached, H("Cache-Control", "no-cache",
                                                  "Cache-Control", "only-if-cached")));
    assert_false(req_flag(policy_only_if_cached, NONE));
    assert_false(req_flag(policy_only_if_cached, H("Cache-Control", "max-age=0")));
    assert_false(req_flag(policy_only_if_cached, H("Cache-Control", "only-if-cached-not")));
    assert_false(req_flag(policy_only_if_cached, H("Pragma", "only-if-cached")));
}

/* ---- age ---- */

static void test_initial_age(void **state)
{
    (void)state;
    /* nothing from the origin: the time the exchange took */
    assert_int_equal(initial_age(NONE, NOW - 2, NOW), 2);
    assert_int_equal(initial_age(NONE, NOW, NOW), 0);
    /* Age plus the response delay */
    assert_int_equal(initial_age(H("Age", "100"), NOW - 2, NOW), 102);
    assert_int_equal(initial_age(H("Age", "100", "Date", NOW_DATE), NOW - 2, NOW), 102);
    /* an old Date beats a small Age */
    assert_int_equal(initial_age(H("Date", "Sun, 06 Nov 1994 08:48:47 GMT", "Age", "10"), NOW - 1,
                                 NOW),
                     50);
    /* a Date ahead of our clock gives no negative apparent age */
    assert_int_equal(initial_age(H("Date", "Mon, 07 Nov 1994 08:49:37 GMT"), NOW - 3, NOW), 3);
    /* an Age that is not one plain number cannot be trusted: as old as can be */
    const int64_t oldest = (int64_t)INT32_MAX + 1;
    assert_int_equal(initial_age(H("Age", "-5"), NOW - 1, NOW), oldest);
    assert_int_equal(initial_age(H("Age", "ten"), NOW - 1, NOW), oldest);
    assert_int_equal(initial_age(H("Age", "5, 6"), NOW - 1, NOW), oldest);
    assert_int_equal(initial_age(H("Age", "1.5"), NOW - 1, NOW), oldest);
    assert_int_equal(initial_age(H("Age", "0", "Age", "0"), NOW - 1, NOW), oldest);
    /* an invalid Date is ignored */
    assert_int_equal(initial_age(H("Date", "garbage"), NOW - 1, NOW), 1);
    /* a huge Age saturates like any delta-seconds */
    assert_int_equal(initial_age(H("Age", "99999999999999999999999"), NOW - 1, NOW),
                     (int64_t)INT32_MAX + 1);
    /* request "after" the response (clock step): no negative delay */
    assert_int_equal(initial_age(H("Age", "7"), NOW + 100, NOW), 7);
}

static void test_current_age(void **state)
{
    (void)state;
    assert_int_equal(policy_current_age(10, NOW, NOW), 10);
    assert_int_equal(policy_current_age(10, NOW, NOW + 50), 60);
    assert_int_equal(policy_current_age(0, NOW, NOW + 1), 1);
    /* a clock that went backwards does not make it younger */
    assert_int_equal(policy_current_age(10, NOW, NOW - 100), 10);
    /* saturates instead of overflowing */
    assert_int_equal(policy_current_age(INT64_MAX - 1, NOW, NOW + 10), INT64_MAX);
}

static void test_age_against_lifetime(void **state)
{
    (void)state;
    /* the pieces together: max-age=60 with Age 50 is fresh for 10 more seconds */
    struct hdrs h;
    fill(&h, H("Cache-Control", "max-age=60", "Age", "50", "Date", NOW_DATE));
    int64_t life = policy_freshness_lifetime(200, &h, NOW, &strict);
    int64_t init = policy_initial_age(&h, NOW, NOW);
    assert_true(life > policy_current_age(init, NOW, NOW + 9));
    assert_false(life > policy_current_age(init, NOW, NOW + 10));
    hdrs_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_cacheable),
        cmocka_unit_test(test_lifetime_explicit),
        cmocka_unit_test(test_lifetime_no_cache),
        cmocka_unit_test(test_lifetime_expires),
        cmocka_unit_test(test_lifetime_expires_past_or_invalid),
        cmocka_unit_test(test_lifetime_default_ttl),
        cmocka_unit_test(test_lifetime_heuristic),
        cmocka_unit_test(test_storable_basic),
        cmocka_unit_test(test_storable_status),
        cmocka_unit_test(test_storable_must_understand),
        cmocka_unit_test(test_storable_no_store_private),
        cmocka_unit_test(test_storable_set_cookie),
        cmocka_unit_test(test_storable_authorization),
        cmocka_unit_test(test_storable_size),
        cmocka_unit_test(test_storable_validators),
        cmocka_unit_test(test_storable_no_cache),
        cmocka_unit_test(test_reuse_fresh_boundary),
        cmocka_unit_test(test_reuse_request_no_cache),
        cmocka_unit_test(test_reuse_pragma),
        cmocka_unit_test(test_reuse_response_no_cache),
        cmocka_unit_test(test_reuse_request_max_age),
        cmocka_unit_test(test_reuse_min_fresh),
        cmocka_unit_test(test_reuse_max_stale),
        cmocka_unit_test(test_reuse_stale_forbidden),
        cmocka_unit_test(test_reuse_swr),
        cmocka_unit_test(test_stale_on_error_fresh),
        cmocka_unit_test(test_stale_on_error_windows),
        cmocka_unit_test(test_stale_on_error_option),
        cmocka_unit_test(test_stale_on_error_forbidden),
        cmocka_unit_test(test_request_no_store),
        cmocka_unit_test(test_only_if_cached),
        cmocka_unit_test(test_initial_age),
        cmocka_unit_test(test_current_age),
        cmocka_unit_test(test_age_against_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
