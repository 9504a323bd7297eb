/* Unit tests for the front end's connection memory budget (headroom.c): what a request
 * is counted as taking, when a response head fits beside it, and that the fetcher's
 * limit on an origin's head agrees with what the front end can send. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "headroom.h"

/* What libmicrohttpd 0.9.75 really takes, at the least: the header block, the Cookie
 * copied once more, and a 56-byte record per field, cookie and query argument. */
static size_t least_use(size_t header, size_t cookie, size_t records)
{
    return header + (cookie > 0 ? cookie + 1 : 0) + records * 56;
}

static void test_request_use_errs_large(void **state)
{
    (void)state;
    static const struct headroom_request cases[] = {
        {.header_size = 80, .cookie_len = 0, .records = 2},
        {.header_size = 9000, .cookie_len = 8000, .records = 5},
        {.header_size = 16000, .cookie_len = 15800, .records = 40},
        {.header_size = 12000, .cookie_len = 0, .records = 300},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct headroom_request *r = &cases[i];
        assert_true(headroom_request_use(r) >= least_use(r->header_size, r->cookie_len,
                                                         r->records));
    }
}

static void test_cookie_counts_twice(void **state)
{
    (void)state;
    struct headroom_request plain = {.header_size = 10000, .cookie_len = 0, .records = 4};
    struct headroom_request cookie = {.header_size = 10000, .cookie_len = 6000, .records = 4};
    assert_true(headroom_request_use(&cookie) >= headroom_request_use(&plain) + 6000);
    struct headroom_request more = {.header_size = 10000, .cookie_len = 0, .records = 5};
    assert_true(headroom_request_use(&more) >= headroom_request_use(&plain) + 56);
}

/* The pools tried: the bounds of --header-memory and its default. */
static const size_t pools[] = {HEADROOM_POOL_MIN, HEADROOM_POOL_DEFAULT, HEADROOM_POOL_MAX};
#define NPOOLS (sizeof pools / sizeof pools[0])

/* A request is let through only if libmicrohttpd's smallest answer head (status line,
 * Date, Content-Length, Connection: close) still fits beside it. */
static void test_request_fits_leaves_room_for_an_answer(void **state)
{
    (void)state;
    size_t smallest_head = sizeof "HTTP/1.1 431 Request Header Fields Too Large\r\n" - 1 +
                           sizeof "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" - 1 +
                           sizeof "Content-Length: 36\r\n" - 1 +
                           sizeof "Connection: close\r\n" - 1 + 2;
    for (size_t p = 0; p < NPOOLS; p++) {
        size_t pool = pools[p];
        size_t last = 0;
        for (size_t use = 0; use <= pool + 100; use++)
            if (headroom_request_fits(pool, use))
                last = use;
        assert_true(last > pool / 2);
        assert_true(pool - last >= smallest_head);
        for (size_t use = 0; use <= last; use += 97)
            assert_true(headroom_request_fits(pool, use)); /* no gaps below the last */
        assert_false(headroom_request_fits(pool, last + 1));
        assert_false(headroom_request_fits(pool, pool));
        assert_false(headroom_request_fits(pool, (size_t)-1));
    }
}

static void test_check_verdicts(void **state)
{
    (void)state;
    const size_t pool = HEADROOM_POOL_DEFAULT;
    struct headroom_request plain = {.header_size = 120, .cookie_len = 0, .records = 3};
    size_t small = headroom_request_use(&plain);
    assert_int_equal(headroom_check(pool, small, 400), HEADROOM_FITS);
    assert_int_equal(headroom_check(pool, small, 16 * 1024), HEADROOM_FITS);
    /* A head that would fit beside a plain request but not beside this one: 431. */
    assert_int_equal(headroom_check(pool, 21000, 12 * 1024), HEADROOM_REQUEST_TOO_LARGE);
    /* A head that fits beside no request: 502, whatever the request. */
    assert_int_equal(headroom_check(pool, small, pool), HEADROOM_RESPONSE_TOO_LARGE);
    assert_int_equal(headroom_check(pool, 20000, pool), HEADROOM_RESPONSE_TOO_LARGE);
    assert_int_equal(headroom_check(pool, small, (size_t)-1 / 2), HEADROOM_RESPONSE_TOO_LARGE);
    /* Fitting is monotonic in both sizes, and never past the pool. */
    for (size_t p = 0; p < NPOOLS; p++) {
        size_t step = pools[p] / 64;
        for (size_t use = 0; use < pools[p]; use += step)
            for (size_t f = 0; f < pools[p]; f += step)
                if (headroom_check(pools[p], use, f) == HEADROOM_FITS) {
                    assert_int_equal(headroom_check(pools[p], use > 0 ? use - 1 : 0, f),
                                     HEADROOM_FITS);
                    assert_int_equal(headroom_check(pools[p], use, f > 0 ? f - 1 : 0),
                                     HEADROOM_FITS);
                    assert_true(use + f < pools[p]);
                }
    }
}

/* A larger pool answers what a smaller one refuses: the request's size against the
 * response's decides, and a response head too large for one pool fits another. */
static void test_larger_pool_takes_more(void **state)
{
    (void)state;
    struct headroom_request big = {.header_size = 21000, .cookie_len = 20000, .records = 4};
    size_t use = headroom_request_use(&big);
    assert_false(headroom_request_fits(HEADROOM_POOL_DEFAULT, use));
    assert_true(headroom_request_fits(64 * 1024, use));
    assert_int_equal(headroom_check(64 * 1024, use, 12 * 1024), HEADROOM_FITS);
    assert_int_equal(headroom_check(64 * 1024, use, 30 * 1024), HEADROOM_REQUEST_TOO_LARGE);
    /* 12 KiB of fields beside a plain request: fine in the default pool, never in the
     * smallest. */
    struct headroom_request plain = {.header_size = 120, .cookie_len = 0, .records = 3};
    size_t small = headroom_request_use(&plain);
    assert_int_equal(headroom_check(HEADROOM_POOL_DEFAULT, small, 12 * 1024), HEADROOM_FITS);
    assert_int_equal(headroom_check(HEADROOM_POOL_MIN, small, 12 * 1024),
                     HEADROOM_RESPONSE_TOO_LARGE);
    assert_true(headroom_origin_head_max(HEADROOM_POOL_MIN) <
                headroom_origin_head_max(HEADROOM_POOL_DEFAULT));
    assert_true(headroom_origin_head_max(HEADROOM_POOL_DEFAULT) <
                headroom_origin_head_max(HEADROOM_POOL_MAX));
}

/* Whatever the fetcher lets through fits beside a plain request once the front end has
 * added its own fields, so a client that asks plainly always gets the response; in the
 * smallest pool that is still room for a common origin's head of a few KiB. */
static void test_origin_limit_agrees(void **state)
{
    (void)state;
    struct headroom_request plain = {.header_size = 300, .cookie_len = 0, .records = 6};
    size_t own = headroom_field_bytes("Via", "1.1 caching-proxy") +
                 headroom_field_bytes("X-Cache", "MISS") + headroom_field_bytes("Age", "100000") +
                 headroom_field_bytes("Cache-Status",
                                      "caching-proxy; fwd=uri-miss; fwd-status=200; "
                                      "stored; ttl=31536000; collapsed");
    for (size_t p = 0; p < NPOOLS; p++) {
        size_t max = headroom_origin_head_max(pools[p]);
        assert_true(max > pools[p] / 2);
        assert_int_equal(headroom_check(pools[p], headroom_request_use(&plain), max + own),
                         HEADROOM_FITS);
    }
    assert_true(headroom_origin_head_max(HEADROOM_POOL_DEFAULT) > 16 * 1024);
}

static void test_field_bytes(void **state)
{
    (void)state;
    assert_int_equal(headroom_field_bytes("Via", "1.1 x"), 12); /* "Via: 1.1 x\r\n" */
    assert_int_equal(headroom_field_bytes("X", ""), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_use_errs_large),
        cmocka_unit_test(test_cookie_counts_twice),
        cmocka_unit_test(test_request_fits_leaves_room_for_an_answer),
        cmocka_unit_test(test_check_verdicts),
        cmocka_unit_test(test_larger_pool_takes_more),
        cmocka_unit_test(test_origin_limit_agrees),
        cmocka_unit_test(test_field_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
