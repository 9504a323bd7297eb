/* Unit tests for the caching decisions (policy.c): cacheable methods, storability,
 * freshness lifetimes (explicit, Expires, default, heuristic) and age arithmetic. */
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
    /* no freshness at all: useless without revalidation */
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
    const int yes[] = {200, 203, 204, 300, 301, 308, 404, 410};
    const int no[] = {100, 201, 202, 206, 302, 303, 304, 307, 400, 401, 403, 405, 414, 500,
                      501, 502, 503, 0, -1, 999};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(storable(yes[i], NONE, H("Cache-Control", "max-age=60"), 0, &strict));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(storable(no[i], NONE, H("Cache-Control", "max-age=60"), 0, &strict));
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
    /* invalid Age or Date are ignored */
    assert_int_equal(initial_age(H("Age", "-5"), NOW - 1, NOW), 1);
    assert_int_equal(initial_age(H("Age", "ten"), NOW - 1, NOW), 1);
    assert_int_equal(initial_age(H("Age", "5, 6"), NOW - 1, NOW), 1);
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
        cmocka_unit_test(test_storable_no_store_private),
        cmocka_unit_test(test_storable_set_cookie),
        cmocka_unit_test(test_storable_authorization),
        cmocka_unit_test(test_storable_size),
        cmocka_unit_test(test_initial_age),
        cmocka_unit_test(test_current_age),
        cmocka_unit_test(test_age_against_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
