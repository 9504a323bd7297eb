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

/* A request is let through only if libmicrohttpd's smallest answer head (status line,
 * Date, Content-Length, Connection: close) still fits beside it. */
static void test_request_fits_leaves_room_for_an_answer(void **state)
{
    (void)state;
    size_t smallest_head = sizeof "HTTP/1.1 431 Request Header Fields Too Large\r\n" - 1 +
                           sizeof "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" - 1 +
                           sizeof "Content-Length: 36\r\n" - 1 +
                           sizeof "Connection: close\r\n" - 1 + 2;
    size_t last = 0;
    for (size_t use = 0; use <= HEADROOM_POOL + 100; use++)
        if (headroom_request_fits(use))
            last = use;
    assert_true(last > HEADROOM_POOL / 2);
    assert_true(HEADROOM_POOL - last >= smallest_head);
    for (size_t use = 0; use <= last; use += 97)
        assert_true(headroom_request_fits(use)); /* no gaps below the last */
    assert_false(headroom_request_fits(last + 1));
    assert_false(headroom_request_fits(HEADROOM_POOL));
}

static void test_check_verdicts(void **state)
{
    (void)state;
    struct headroom_request plain = {.header_size = 120, .cookie_len = 0, .records = 3};
    size_t small = headroom_request_use(&plain);
    assert_int_equal(headroom_check(small, 400), HEADROOM_FITS);
    assert_int_equal(headroom_check(small, 16 * 1024), HEADROOM_FITS);
    /* A head that would fit beside a plain request but not beside this one: 431. */
    assert_int_equal(headroom_check(21000, 12 * 1024), HEADROOM_REQUEST_TOO_LARGE);
    /* A head that fits beside no request: 502, whatever the request. */
    assert_int_equal(headroom_check(small, HEADROOM_POOL), HEADROOM_RESPONSE_TOO_LARGE);
    assert_int_equal(headroom_check(20000, HEADROOM_POOL), HEADROOM_RESPONSE_TOO_LARGE);
    assert_int_equal(headroom_check(small, (size_t)-1 / 2), HEADROOM_RESPONSE_TOO_LARGE);
    /* Fitting is monotonic in both sizes. */
    for (size_t use = 0; use < HEADROOM_POOL; use += 512)
        for (size_t f = 0; f < HEADROOM_POOL; f += 512)
            if (headroom_check(use, f) == HEADROOM_FITS) {
                assert_int_equal(headroom_check(use > 0 ? use - 1 : 0, f), HEADROOM_FITS);
                assert_int_equal(headroom_check(use, f > 0 ? f - 1 : 0), HEADROOM_FITS);
                assert_true(use + f < HEADROOM_POOL);
            }
}

/* Whatever the fetcher lets through fits beside a plain request once the front end has
 * added its own fields, so a client that asks plainly always gets the response. */
static void test_origin_limit_agrees(void **state)
{
    (void)state;
    struct headroom_request plain = {.header_size = 300, .cookie_len = 0, .records = 6};
    size_t own = headroom_field_bytes("Via", "1.1 caching-proxy") +
                 headroom_field_bytes("X-Cache", "MISS") + headroom_field_bytes("Age", "100000") +
                 headroom_field_bytes("Cache-Status",
                                      "caching-proxy; fwd=uri-miss; fwd-status=200; "
                                      "stored; ttl=31536000; collapsed");
    size_t max = headroom_origin_head_max();
    assert_true(max > 16 * 1024);
    assert_int_equal(headroom_check(headroom_request_use(&plain), max + own), HEADROOM_FITS);
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
        cmocka_unit_test(test_origin_limit_agrees),
        cmocka_unit_test(test_field_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
