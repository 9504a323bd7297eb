/* Unit tests for byte ranges (range.c): every form of the Range field, the edges of
 * satisfiability, ignored and malformed ranges, If-Range, and Content-Range. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "range.h"

#define LM "Sun, 06 Nov 1994 08:49:37 GMT"
#define LM_RFC850 "Sunday, 06-Nov-94 08:49:37 GMT"
#define LM_ASCTIME "Sun Nov  6 08:49:37 1994"
#define LM_PLUS_1 "Sun, 06 Nov 1994 08:49:38 GMT"
#define LM_PLUS_59 "Sun, 06 Nov 1994 08:50:36 GMT"
#define LM_PLUS_60 "Sun, 06 Nov 1994 08:50:37 GMT"
#define DAY_AFTER "Mon, 07 Nov 1994 08:49:37 GMT"

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

static struct range select_with(const char *const *req, const char *const *stored,
                                size_t body_len)
{
    struct hdrs r, s;
    fill(&r, req);
    fill(&s, stored);
    struct range out = range_select(&r, &s, body_len);
    hdrs_free(&r);
    hdrs_free(&s);
    return out;
}

/* range_select of a lone Range field against a stored response without validators. */
static struct range sel(const char *range, size_t body_len)
{
    return select_with(KV("Range", range), NONE, body_len);
}

static void expect_partial(struct range r, size_t start, size_t length)
{
    assert_int_equal(r.kind, RANGE_PARTIAL);
    assert_int_equal(r.start, start);
    assert_int_equal(r.length, length);
}

static void expect_kind(struct range r, enum range_kind kind)
{
    assert_int_equal(r.kind, kind);
}

/* ---- the three forms ------------------------------------------------------------------- */

static void test_no_range(void **state)
{
    (void)state;
    expect_kind(select_with(NONE, NONE, 1000), RANGE_FULL);
    expect_kind(select_with(KV("Accept", "*/*"), KV("ETag", "\"a\""), 1000), RANGE_FULL);
    expect_kind(select_with(NONE, NONE, 0), RANGE_FULL);
}

static void test_first_last(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-99", 1000), 0, 100);
    expect_partial(sel("bytes=0-0", 1000), 0, 1);
    expect_partial(sel("bytes=5-5", 1000), 5, 1);
    expect_partial(sel("bytes=100-199", 1000), 100, 100);
    expect_partial(sel("bytes=999-999", 1000), 999, 1);
    expect_partial(sel("bytes=0-999", 1000), 0, 1000);
    expect_partial(sel("bytes=0-0", 1), 0, 1);
}

static void test_last_clamped(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-1000", 1000), 0, 1000);
    expect_partial(sel("bytes=990-2000", 1000), 990, 10);
    expect_partial(sel("bytes=999-100000", 1000), 999, 1);
}

static void test_open_ended(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-", 1000), 0, 1000);
    expect_partial(sel("bytes=500-", 1000), 500, 500);
    expect_partial(sel("bytes=999-", 1000), 999, 1);
}

static void test_suffix(void **state)
{
    (void)state;
    expect_partial(sel("bytes=-100", 1000), 900, 100);
    expect_partial(sel("bytes=-1", 1000), 999, 1);
    expect_partial(sel("bytes=-1000", 1000), 0, 1000);
    /* longer than the body: all of it */
    expect_partial(sel("bytes=-2000", 1000), 0, 1000);
    expect_partial(sel("bytes=-5", 1), 0, 1);
}

/* ---- unsatisfiable ------------------------------------------------------------------------ */

static void test_unsatisfiable(void **state)
{
    (void)state;
    expect_kind(sel("bytes=1000-", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=1000-1000", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=1000-2000", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=5000-", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=-0", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=-000", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=1-", 1), RANGE_UNSATISFIABLE);
}

static void test_empty_body(void **state)
{
    (void)state;
    expect_kind(sel("bytes=0-", 0), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=0-0", 0), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=0-100", 0), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=-5", 0), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=-0", 0), RANGE_UNSATISFIABLE);
    /* a bad field stays ignored */
    expect_kind(sel("bytes=5-2", 0), RANGE_FULL);
}

/* ---- ignored Range fields -------------------------------------------------------------- */

static void test_malformed_ignored(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "bytes",         "bytes=",       "bytes=-",       "bytes=--5",
        "bytes=5-2",  "bytes=1-0",     "bytes=abc",    "bytes=0-5x",    "bytes=1-2-3",
        "bytes=+1-2", "bytes=0x10-20", "bytes=0-5;",   "bytes=,",       "bytes=-5-",
        "bytes 0-5",  "=0-5",          "bytesx=0-5",   "bytes:0-5",     "bytes==0-5",
        "bytes=0-+5", "bytes=1.5-2",   "bytes=-1-2",   "bytes=0 5",     "bytes=5",
        "bytes=-5 6", "bytes=- ",      "byte=0-5",     "0-5",           "bytes=0-5 x",
        "items=0-5",  "none",          "bytes=\"0-5\"", "bytes=0--5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct range r = sel(bad[i], 1000);
        if (r.kind != RANGE_FULL)
            fail_msg("Range \"%s\" was not ignored", bad[i]);
    }
}

static void test_several_ranges_ignored(void **state)
{
    (void)state;
    expect_kind(sel("bytes=0-1,5-6", 1000), RANGE_FULL);
    expect_kind(sel("bytes=0-1, 2000-3000", 1000), RANGE_FULL);
    expect_kind(sel("bytes=-5, 0-", 1000), RANGE_FULL);
    expect_kind(sel("bytes=2000-,3000-", 1000), RANGE_FULL);
    expect_kind(sel("bytes=0-0,0-0", 1000), RANGE_FULL);
    /* two Range fields are as bad as a bad one */
    expect_kind(select_with(KV("Range", "bytes=0-1", "Range", "bytes=0-1"), NONE, 1000),
                RANGE_FULL);
}

static void test_empty_list_members(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-1,", 1000), 0, 2);
    expect_partial(sel("bytes=, 0-1", 1000), 0, 2);
    expect_partial(sel("bytes= , ,-3, ,", 1000), 997, 3);
}

static void test_unit_case_and_whitespace(void **state)
{
    (void)state;
    expect_partial(sel("BYTES=0-1", 1000), 0, 2);
    expect_partial(sel("Bytes=-2", 1000), 998, 2);
    expect_partial(sel("bytes = 0 - 1", 1000), 0, 2);
    expect_partial(sel("bytes=\t10-\t", 1000), 10, 990);
    expect_partial(sel("bytes=- 7", 1000), 993, 7);
    expect_partial(select_with(KV("range", "bytes=0-1"), NONE, 1000), 0, 2);
}

/* ---- huge numbers ------------------------------------------------------------------------ */

static void test_huge_numbers(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-99999999999999999999999999999", 1000), 0, 1000);
    expect_partial(sel("bytes=10-18446744073709551615", 1000), 10, 990);
    expect_partial(sel("bytes=10-18446744073709551616", 1000), 10, 990);
    expect_partial(sel("bytes=-99999999999999999999999999999", 1000), 0, 1000);
    expect_kind(sel("bytes=99999999999999999999999999999-", 1000), RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=18446744073709551615-18446744073709551615", 1000),
                RANGE_UNSATISFIABLE);
    /* both saturate to the same value; still a valid, unsatisfiable range */
    expect_kind(sel("bytes=99999999999999999999998-99999999999999999999999", 1000),
                RANGE_UNSATISFIABLE);
    expect_kind(sel("bytes=99999999999999999999999-1", 1000), RANGE_FULL);
    expect_partial(sel("bytes=0000000000000000000000000000005-0000000000000000000000000006", 10),
                   5, 2);
}

static void test_largest_body(void **state)
{
    (void)state;
    expect_partial(sel("bytes=0-", SIZE_MAX), 0, SIZE_MAX);
    expect_partial(sel("bytes=-1", SIZE_MAX), SIZE_MAX - 1, 1);
    expect_partial(sel("bytes=-99999999999999999999999999999", SIZE_MAX), 0, SIZE_MAX);
    expect_partial(sel("bytes=1-99999999999999999999999999999", SIZE_MAX), 1, SIZE_MAX - 1);
    char r[64];
    snprintf(r, sizeof r, "bytes=%zu-", SIZE_MAX - 1);
    expect_partial(sel(r, SIZE_MAX), SIZE_MAX - 1, 1);
    snprintf(r, sizeof r, "bytes=%zu-", SIZE_MAX);
    expect_kind(sel(r, SIZE_MAX), RANGE_UNSATISFIABLE);
}

/* ---- If-Range ---------------------------------------------------------------------------- */

static void test_if_range_etag(void **state)
{
    (void)state;
    const char *const *stored = KV("ETag", "\"v1\"", "Last-Modified", LM, "Date", DAY_AFTER);
    expect_partial(select_with(KV("Range", "bytes=0-9", "If-Range", "\"v1\""), stored, 100), 0,
                   10);
    expect_kind(select_with(KV("Range", "bytes=0-9", "If-Range", "\"v2\""), stored, 100),
                RANGE_FULL);
    /* strong comparison: a weak tag on either side never matches */
    expect_kind(select_with(KV("Range", "bytes=0-9", "If-Range", "W/\"v1\""), stored, 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=0-9", "If-Range", "W/\"v1\""),
                            KV("ETag", "W/\"v1\""), 100),
                RANGE_FULL);
    expect_kind(
        select_with(KV("Range", "bytes=0-9", "If-Range", "\"v1\""), KV("ETag", "W/\"v1\""), 100),
        RANGE_FULL);
    /* no stored ETag, or a broken one */
    expect_kind(select_with(KV("Range", "bytes=0-9", "If-Range", "\"v1\""),
                            KV("Last-Modified", LM, "Date", DAY_AFTER), 100),
                RANGE_FULL);
    expect_kind(
        select_with(KV("Range", "bytes=0-9", "If-Range", "\"v1\""), KV("ETag", "\"v1"), 100),
        RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=0-9", "If-Range", "\"v1"), stored, 100),
                RANGE_FULL);
}

static void test_if_range_date(void **state)
{
    (void)state;
    const char *const *stored = KV("Last-Modified", LM, "Date", DAY_AFTER, "ETag", "\"v1\"");
    expect_partial(select_with(KV("Range", "bytes=-10", "If-Range", LM), stored, 100), 90, 10);
    /* the same instant in the other formats */
    expect_partial(select_with(KV("Range", "bytes=-10", "If-Range", LM_RFC850), stored, 100), 90,
                   10);
    expect_partial(select_with(KV("Range", "bytes=-10", "If-Range", LM_ASCTIME), stored, 100),
                   90, 10);
    /* anything but the exact date: earlier or later */
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", LM_PLUS_1), stored, 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", DAY_AFTER), stored, 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", "Sat, 05 Nov 1994 08:49:37 GMT"),
                            stored, 100),
                RANGE_FULL);
    /* not a date, not a tag */
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", "yesterday"), stored, 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", ""), stored, 100), RANGE_FULL);
    /* no stored Last-Modified, or an unreadable one */
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", LM),
                            KV("Date", DAY_AFTER, "ETag", "\"v1\""), 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=-10", "If-Range", LM),
                            KV("Last-Modified", "then", "Date", DAY_AFTER), 100),
                RANGE_FULL);
}

static void test_if_range_date_must_be_strong(void **state)
{
    (void)state;
    const char *const *req = KV("Range", "bytes=0-0", "If-Range", LM);
    /* a Last-Modified less than 60 seconds before Date may hide a second change */
    expect_kind(select_with(req, KV("Last-Modified", LM, "Date", LM), 100), RANGE_FULL);
    expect_kind(select_with(req, KV("Last-Modified", LM, "Date", LM_PLUS_59), 100), RANGE_FULL);
    expect_partial(select_with(req, KV("Last-Modified", LM, "Date", LM_PLUS_60), 100), 0, 1);
    /* without a Date there is no telling */
    expect_kind(select_with(req, KV("Last-Modified", LM), 100), RANGE_FULL);
    expect_kind(select_with(req, KV("Last-Modified", LM, "Date", "soon"), 100), RANGE_FULL);
}

static void test_if_range_other_cases(void **state)
{
    (void)state;
    const char *const *stored = KV("ETag", "\"v1\"", "Last-Modified", LM, "Date", DAY_AFTER);
    /* without a Range it changes nothing */
    expect_kind(select_with(KV("If-Range", "\"v1\""), stored, 100), RANGE_FULL);
    expect_kind(select_with(KV("If-Range", "\"v2\""), stored, 100), RANGE_FULL);
    /* a failed If-Range turns even an unsatisfiable range into the full response */
    expect_kind(select_with(KV("Range", "bytes=500-", "If-Range", "\"v2\""), stored, 100),
                RANGE_FULL);
    expect_kind(select_with(KV("Range", "bytes=500-", "If-Range", "\"v1\""), stored, 100),
                RANGE_UNSATISFIABLE);
    /* two If-Range fields, even agreeing ones, are not a validator */
    expect_kind(select_with(KV("Range", "bytes=0-1", "If-Range", "\"v1\"", "If-Range", "\"v1\""),
                            stored, 100),
                RANGE_FULL);
    /* names are case-insensitive */
    expect_partial(select_with(KV("range", "bytes=0-1", "if-range", "\"v1\""), stored, 100), 0,
                   2);
    /* a valid If-Range does not rescue a bad Range */
    expect_kind(select_with(KV("Range", "bytes=5-1", "If-Range", "\"v1\""), stored, 100),
                RANGE_FULL);
}

/* ---- Content-Range ---------------------------------------------------------------------- */

static void test_content_range(void **state)
{
    (void)state;
    char buf[64];
    struct range r = {RANGE_PARTIAL, 0, 100};
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "bytes 0-99/1000");
    r = (struct range){RANGE_PARTIAL, 999, 1};
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "bytes 999-999/1000");
    r = (struct range){RANGE_UNSATISFIABLE, 0, 0};
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "bytes */1000");
    range_content_range(&r, 0, buf, sizeof buf);
    assert_string_equal(buf, "bytes */0");
    r = (struct range){RANGE_FULL, 0, 0};
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "");
}

static void test_content_range_from_select(void **state)
{
    (void)state;
    char buf[64];
    struct range r = sel("bytes=-100", 1000);
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "bytes 900-999/1000");
    r = sel("bytes=0-", 1);
    range_content_range(&r, 1, buf, sizeof buf);
    assert_string_equal(buf, "bytes 0-0/1");
    r = sel("bytes=10-", 5);
    range_content_range(&r, 5, buf, sizeof buf);
    assert_string_equal(buf, "bytes */5");
    char want[80];
    r = sel("bytes=0-", SIZE_MAX);
    range_content_range(&r, SIZE_MAX, buf, sizeof buf);
    snprintf(want, sizeof want, "bytes 0-%zu/%zu", SIZE_MAX - 1, SIZE_MAX);
    assert_string_equal(buf, want);
}

static void test_content_range_small_buffer(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    struct range r = {RANGE_PARTIAL, 0, 100};
    range_content_range(&r, 1000, buf, sizeof buf);
    assert_string_equal(buf, "bytes 0"); /* cut, but terminated and in bounds */
    memset(buf, 'x', sizeof buf);
    range_content_range(&r, 1000, buf, 0);
    assert_int_equal(buf[0], 'x'); /* nothing written */
    range_content_range(&r, 1000, buf, 1);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_range),
        cmocka_unit_test(test_first_last),
        cmocka_unit_test(test_last_clamped),
        cmocka_unit_test(test_open_ended),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_malformed_ignored),
        cmocka_unit_test(test_several_ranges_ignored),
        cmocka_unit_test(test_empty_list_members),
        cmocka_unit_test(test_unit_case_and_whitespace),
        cmocka_unit_test(test_huge_numbers),
        cmocka_unit_test(test_largest_body),
        cmocka_unit_test(test_if_range_etag),
        cmocka_unit_test(test_if_range_date),
        cmocka_unit_test(test_if_range_date_must_be_strong),
        cmocka_unit_test(test_if_range_other_cases),
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_content_range_from_select),
        cmocka_unit_test(test_content_range_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
