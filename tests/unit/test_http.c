/* Unit tests for the HTTP parsing functions (http.c): Cache-Control directives, dates,
 * Vary keys and delta-seconds, with the malformed input origins really send. */
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"

static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

/* Parses one Cache-Control value. */
static struct cache_control cc_of(const char *value)
{
    struct hdrs h;
    struct cache_control cc;
    fill(&h, (const char *const[]){"Cache-Control", value, NULL});
    http_cache_control(&h, &cc);
    hdrs_free(&h);
    return cc;
}

static void assert_cc_empty(const struct cache_control *cc)
{
    assert_false(cc->no_store || cc->no_cache || cc->no_cache_fields || cc->private_ ||
                 cc->private_fields || cc->public_ || cc->must_revalidate ||
                 cc->proxy_revalidate || cc->no_transform || cc->only_if_cached ||
                 cc->immutable || cc->max_stale_any);
    assert_int_equal(cc->max_age, -1);
    assert_int_equal(cc->s_maxage, -1);
    assert_int_equal(cc->max_stale, -1);
    assert_int_equal(cc->min_fresh, -1);
    assert_int_equal(cc->stale_while_revalidate, -1);
    assert_int_equal(cc->stale_if_error, -1);
}

/* ---- Cache-Control ---- */

static void test_cc_absent(void **state)
{
    (void)state;
    struct hdrs h;
    struct cache_control cc;
    memset(&cc, 0x5a, sizeof cc);
    fill(&h, (const char *const[]){"Pragma", "no-cache", NULL});
    http_cache_control(&h, &cc);
    assert_cc_empty(&cc);
    hdrs_free(&h);
    cc = cc_of("");
    assert_cc_empty(&cc);
}

static void test_cc_all_directives(void **state)
{
    (void)state;
    struct cache_control cc =
        cc_of("no-store, no-cache, private, public, must-revalidate, proxy-revalidate, "
              "no-transform, only-if-cached, immutable, max-age=10, s-maxage=20, "
              "max-stale=30, min-fresh=40, stale-while-revalidate=50, stale-if-error=60");
    assert_true(cc.no_store);
    assert_true(cc.no_cache);
    assert_false(cc.no_cache_fields);
    assert_true(cc.private_);
    assert_false(cc.private_fields);
    assert_true(cc.public_);
    assert_true(cc.must_revalidate);
    assert_true(cc.proxy_revalidate);
    assert_true(cc.no_transform);
    assert_true(cc.only_if_cached);
    assert_true(cc.immutable);
    assert_false(cc.max_stale_any);
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cc.s_maxage, 20);
    assert_int_equal(cc.max_stale, 30);
    assert_int_equal(cc.min_fresh, 40);
    assert_int_equal(cc.stale_while_revalidate, 50);
    assert_int_equal(cc.stale_if_error, 60);
}

static void test_cc_case_and_spacing(void **state)
{
    (void)state;
    struct cache_control cc = cc_of("  MAX-AGE=5 ,No-Store,\tPublic  ,,  S-MaxAge = 7 ");
    assert_int_equal(cc.max_age, 5);
    assert_int_equal(cc.s_maxage, 7);
    assert_true(cc.no_store);
    assert_true(cc.public_);
}

static void test_cc_quoted_arguments(void **state)
{
    (void)state;
    struct cache_control cc = cc_of("max-age=\"60\", s-maxage=\"0\"");
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 0);
    /* Qualified forms: the quoted list is an argument, never directives. */
    cc = cc_of("no-cache=\"Set-Cookie, no-store, max-age=5\", private=\"X-Secret\"");
    assert_true(cc.no_cache);
    assert_true(cc.no_cache_fields);
    assert_true(cc.private_);
    assert_true(cc.private_fields);
    assert_false(cc.no_store);
    assert_int_equal(cc.max_age, -1);
    /* Token form of the field list, and an escaped quote inside the string. */
    cc = cc_of("no-cache=Set-Cookie, private=\"a\\\", no-store\"");
    assert_true(cc.no_cache_fields);
    assert_true(cc.private_fields);
    assert_false(cc.no_store);
}

static void test_cc_unqualified_beats_qualified(void **state)
{
    (void)state;
    struct cache_control cc = cc_of("no-cache=\"a\", no-cache");
    assert_true(cc.no_cache);
    assert_false(cc.no_cache_fields);
    cc = cc_of("private, private=\"x\"");
    assert_true(cc.private_);
    assert_false(cc.private_fields);
    cc = cc_of("no-cache=\"a\", no-cache=\"b\"");
    assert_true(cc.no_cache_fields);
}

static void test_cc_invalid_max_age_is_zero(void **state)
{
    (void)state;
    const char *bad[] = {"max-age=abc", "max-age=-1", "max-age=", "max-age", "max-age=1.5",
                         "max-age=+5", "max-age=\"\"", "max-age=\"6", "max-age=60 x",
                         "max-age=0x10", "max-age=\"1 2\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cache_control cc = cc_of(bad[i]);
        assert_int_equal(cc.max_age, 0);
    }
}

static void test_cc_invalid_other_arguments_ignored(void **state)
{
    (void)state;
    struct cache_control cc =
        cc_of("s-maxage=x, min-fresh=-2, max-stale=soon, stale-if-error=1e3, "
              "stale-while-revalidate, public=yes, immutable=1");
    assert_int_equal(cc.s_maxage, -1);
    assert_int_equal(cc.min_fresh, -1);
    assert_int_equal(cc.max_stale, -1);
    assert_false(cc.max_stale_any);
    assert_int_equal(cc.stale_if_error, -1);
    assert_int_equal(cc.stale_while_revalidate, -1);
    assert_false(cc.public_);
    assert_false(cc.immutable);
    /* Restrictions count even when they carry a stray argument. */
    cc = cc_of("no-store=1, must-revalidate=\"x\"");
    assert_true(cc.no_store);
    assert_true(cc.must_revalidate);
}

static void test_cc_garbage_skipped(void **state)
{
    (void)state;
    struct cache_control cc = cc_of(",,, ;;; =5, \"quoted\", @#!, max-age=10, ==, public");
    assert_int_equal(cc.max_age, 10);
    assert_true(cc.public_);
    /* An unterminated quote swallows the rest of the field. */
    cc = cc_of("x=\"open, no-store, max-age=5");
    assert_false(cc.no_store);
    assert_int_equal(cc.max_age, -1);
    cc = cc_of("\"open, no-store");
    assert_false(cc.no_store);
    /* Unknown directives, with or without arguments, are ignored. */
    cc = cc_of("foo, bar=\"baz, qux\", community=\"UCI\", max-age=3");
    assert_int_equal(cc.max_age, 3);
    assert_false(cc.no_store);
    /* A known name as a prefix of another is not that directive. */
    cc = cc_of("no-storex, max-agey=4, publicity");
    assert_false(cc.no_store);
    assert_int_equal(cc.max_age, -1);
    assert_false(cc.public_);
}

static void test_cc_duplicates(void **state)
{
    (void)state;
    /* max-age and s-maxage: the lowest wins, an invalid one counts as 0. */
    struct cache_control cc = cc_of("max-age=100, max-age=10, max-age=50");
    assert_int_equal(cc.max_age, 10);
    cc = cc_of("max-age=100, max-age=bogus");
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("s-maxage=30, s-maxage=20, s-maxage=bad");
    assert_int_equal(cc.s_maxage, 20);
    /* others: the first valid one wins */
    cc = cc_of("min-fresh=5, min-fresh=1, stale-if-error=9, stale-if-error=99");
    assert_int_equal(cc.min_fresh, 5);
    assert_int_equal(cc.stale_if_error, 9);
    cc = cc_of("max-stale=7, max-stale");
    assert_int_equal(cc.max_stale, 7);
    assert_false(cc.max_stale_any);
    cc = cc_of("max-stale, max-stale=7");
    assert_true(cc.max_stale_any);
    assert_int_equal(cc.max_stale, -1);
    cc = cc_of("no-store, no-store");
    assert_true(cc.no_store);
}

static void test_cc_huge_numbers_saturate(void **state)
{
    (void)state;
    struct cache_control cc =
        cc_of("max-age=99999999999999999999999999, s-maxage=2147483648, min-fresh=2147483647, "
              "max-stale=4294967296");
    assert_int_equal(cc.max_age, INT32_MAX);
    assert_int_equal(cc.s_maxage, INT32_MAX);
    assert_int_equal(cc.min_fresh, INT32_MAX);
    assert_int_equal(cc.max_stale, INT32_MAX);
    cc = cc_of("max-age=0000000000000000000000000000042");
    assert_int_equal(cc.max_age, 42);
}

static void test_cc_multiple_fields_joined(void **state)
{
    (void)state;
    struct hdrs h;
    struct cache_control cc;
    fill(&h, (const char *const[]){"Cache-Control", "public", "X", "y", "cache-control",
                                   "max-age=30", "Cache-Control", "", "CACHE-CONTROL",
                                   "max-age=20, no-transform", NULL});
    http_cache_control(&h, &cc);
    assert_true(cc.public_);
    assert_true(cc.no_transform);
    assert_int_equal(cc.max_age, 20);
    hdrs_free(&h);

    /* an unterminated quote on one line does not hide the next line */
    fill(&h, (const char *const[]){"Cache-Control", "private=\"open", "Cache-Control",
                                   "no-store", NULL});
    http_cache_control(&h, &cc);
    assert_true(cc.private_);
    assert_false(cc.private_fields);
    assert_true(cc.no_store);
    hdrs_free(&h);
}

static void test_cc_quoted_pair_in_number(void **state)
{
    (void)state;
    /* "\6\0" is the quoted-string form of 60 */
    struct cache_control cc = cc_of("max-age=\"\\6\\0\", s-maxage=\"1\\x\"");
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, -1);
}

/* ---- dates ---- */

static void test_date_three_formats(void **state)
{
    (void)state;
    const char *forms[] = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                           "Sun Nov  6 08:49:37 1994", "  Sun, 06 Nov 1994 08:49:37 GMT\t",
                           "sun, 06 nov 1994 08:49:37 gmt"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        time_t t = 0;
        assert_true(http_parse_date(forms[i], &t));
        assert_int_equal(t, 784111777);
    }
    time_t t = 1;
    assert_true(http_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", &t));
    assert_int_equal(t, 0);
    assert_true(http_parse_date("Wed, 21 Oct 2015 07:28:00 GMT", &t));
    assert_int_equal(t, 1445412480);
}

static void test_date_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "   ", "0", "-1", "1234567890", "  42  ", "now", "tomorrow", "GMT",
        "08:49:37", "Sun, 06 Nov 1994", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:61:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT garbage",
        "Sun, 06 Nov 1994 08:49:37 GMT; x", "<Sun, 06 Nov 1994 08:49:37 GMT>",
        "Sun, 06 Nov 1994 08:49:37 GMT Sun, 06 Nov 1994 08:49:37 GMT Sun, 06 Nov 1994",
        "Sun, 06 Nov 1994 08.49.37 GMT", "Sün, 06 Nov 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        time_t t = 12345;
        assert_false(http_parse_date(bad[i], &t));
        assert_int_equal(t, 12345); /* untouched on failure */
    }
    time_t t;
    assert_false(http_parse_date(NULL, &t));
}

static void test_date_format(void **state)
{
    (void)state;
    char buf[30];
    http_format_date(784111777, buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(951782400, buf); /* leap day */
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    /* out of the format's range: clamped, never overflowing the buffer */
    http_format_date((time_t)INT64_MAX, buf);
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_format_date((time_t)INT64_MIN, buf);
    assert_string_equal(buf, "Mon, 01 Jan 0001 00:00:00 GMT");
}

static void test_date_round_trip(void **state)
{
    (void)state;
    const time_t samples[] = {1, 86399, 86400, 1000000000, 1700000000, 2147483647, 2147483648,
                              4102444800};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[30];
        time_t back = 0;
        http_format_date(samples[i], buf);
        assert_int_equal(strlen(buf), 29);
        assert_true(http_parse_date(buf, &back));
        assert_int_equal(back, samples[i]);
    }
}

/* The fast path for IMF-fixdate agrees with the general one (curl_getdate) on every
 * date it takes, including leap days, a leap second and the calendar's edges; what it
 * declines (a 31st of April, a 29th of February in a common year, lower case) is left
 * to the general path, as before. */
static void test_date_fixdate_matches_curl(void **state)
{
    (void)state;
    static const char *const days[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int years[] = {1582, 1583, 1900, 1969, 1970, 1999, 2000, 2024, 2038, 2100, 9999};
    const int mdays[] = {1, 9, 10, 28, 29, 30, 31};
    const char *times[] = {"00:00:00", "08:49:37", "23:59:59", "23:59:60"};
    unsigned checked = 0;
    for (size_t y = 0; y < sizeof years / sizeof years[0]; y++)
        for (int m = 0; m < 12; m++)
            for (size_t d = 0; d < sizeof mdays / sizeof mdays[0]; d++)
                for (size_t t = 0; t < sizeof times / sizeof times[0]; t++) {
                    char buf[64];
                    snprintf(buf, sizeof buf, "%s, %02d %s %04d %s GMT",
                             days[(y + (size_t)m + d) % 7], mdays[d], months[m], years[y],
                             times[t]);
                    time_t want = curl_getdate(buf, NULL);
                    time_t got = 12345;
                    bool ok = http_parse_date(buf, &got);
                    if (strcmp(buf + 5, "31 Dec 1969 23:59:59 GMT") == 0) {
                        /* curl_getdate moves this second to 0 to keep -1 for failure;
                         * the fast path has no need to */
                        assert_true(ok);
                        assert_int_equal(got, -1);
                    } else if (want == (time_t)-1) {
                        assert_false(ok);
                        assert_int_equal(got, 12345);
                    } else {
                        assert_true(ok);
                        assert_int_equal(got, want);
                        checked++;
                    }
                }
    assert_true(checked > 3000); /* most of the grid is valid */
    time_t t = 0;
    assert_true(http_parse_date("Tue, 29 Feb 2000 00:00:00 GMT", &t));
    assert_int_equal(t, 951782400);
    assert_true(http_parse_date("Fri, 31 Dec 9999 23:59:59 GMT", &t));
    assert_int_equal(t, (time_t)253402300799LL);
}

/* ---- Vary ---- */

/* Key for `vary` against a request with the given fields; asserts success. */
static char *vkey(const char *vary, const char *const *kv)
{
    struct hdrs h;
    char *key = NULL;
    fill(&h, kv);
    assert_int_equal(http_vary_key(vary, &h, &key), CP_OK);
    hdrs_free(&h);
    assert_non_null(key);
    return key;
}

static void test_vary_none(void **state)
{
    (void)state;
    const char *const req[] = {"Accept", "x", NULL};
    char *k = vkey(NULL, req);
    assert_string_equal(k, "");
    free(k);
    k = vkey("", req);
    assert_string_equal(k, "");
    free(k);
    k = vkey(" , ,", req);
    assert_string_equal(k, "");
    free(k);
}

static void test_vary_star(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Accept", "x", NULL});
    const char *stars[] = {"*", " * ", "Accept, *", "*, Accept", "accept,*"};
    for (size_t i = 0; i < sizeof stars / sizeof stars[0]; i++) {
        char *key = (char *)0x1;
        assert_int_equal(http_vary_key(stars[i], &h, &key), CP_ERR_BAD_TARGET);
        assert_null(key);
    }
    /* a member that is not a field name cannot be keyed either */
    const char *bad[] = {"Accept Encoding", "\"Accept\"", "Acc:ept", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *key = NULL;
        assert_int_equal(http_vary_key(bad[i], &h, &key), CP_ERR_BAD_TARGET);
        assert_null(key);
    }
    hdrs_free(&h);
}

static void test_vary_present_absent_empty(void **state)
{
    (void)state;
    char *present = vkey("Accept-Encoding", (const char *const[]){"accept-encoding", "gzip", NULL});
    char *absent = vkey("Accept-Encoding", (const char *const[]){"Other", "gzip", NULL});
    char *empty = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "", NULL});
    char *other = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "br", NULL});
    assert_string_not_equal(present, absent);
    assert_string_not_equal(present, empty);
    assert_string_not_equal(absent, empty);
    assert_string_not_equal(present, other);
    /* the name is in the key, lower-cased */
    assert_non_null(strstr(present, "accept-encoding"));
    assert_non_null(strstr(present, "gzip"));
    assert_null(strstr(present, "Accept-Encoding"));
    free(present);
    free(absent);
    free(empty);
    free(other);
}

static void test_vary_names_case_insensitive(void **state)
{
    (void)state;
    const char *const req[] = {"ACCEPT-LANGUAGE", "en", NULL};
    char *a = vkey("Accept-Language", req);
    char *b = vkey("accept-language", req);
    char *c = vkey("  ACCEPT-language  ", req);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a);
    free(b);
    free(c);
}

static void test_vary_normalises_values(void **state)
{
    (void)state;
    char *a = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "gzip, br", NULL});
    char *b = vkey("Accept-Encoding",
                   (const char *const[]){"Accept-Encoding", "  gzip ,\t  br ", NULL});
    char *c = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "gzip,br", NULL});
    /* two field lines mean the same as one comma-joined line */
    char *d = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "gzip",
                                                           "accept-encoding", "br", NULL});
    char *e = vkey("Accept-Encoding", (const char *const[]){"Accept-Encoding", "br, gzip", NULL});
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    assert_string_equal(a, d);
    assert_string_not_equal(a, e); /* order is significant */
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    /* inside a quoted string nothing is collapsed */
    a = vkey("X-Q", (const char *const[]){"X-Q", "\"a,b\"", NULL});
    b = vkey("X-Q", (const char *const[]){"X-Q", "\"a, b\"", NULL});
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_vary_several_fields(void **state)
{
    (void)state;
    const char *const r1[] = {"Accept", "text/html", "Accept-Language", "en", NULL};
    const char *const r2[] = {"Accept-Language", "en", "Accept", "text/html", NULL};
    const char *const r3[] = {"Accept", "text/html", "Accept-Language", "fr", NULL};
    char *k1 = vkey("Accept, Accept-Language", r1);
    char *k2 = vkey("Accept, Accept-Language", r2);
    char *k3 = vkey("Accept, Accept-Language", r3);
    char *k4 = vkey("Accept,Accept-Language", r1);
    assert_string_equal(k1, k2); /* the request's field order does not matter */
    assert_string_equal(k1, k4);
    assert_string_not_equal(k1, k3);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
}

static void test_vary_unambiguous(void **state)
{
    (void)state;
    /* A value must not be able to pose as the next field of the key. */
    char *a = vkey("A, B", (const char *const[]){"A", "x\nb:y", NULL});
    char *b = vkey("A, B", (const char *const[]){"A", "x", "B", "y", NULL});
    assert_string_not_equal(a, b);
    assert_null(strchr(a, '\r'));
    free(a);
    free(b);
    /* nor can shifting text between name and value */
    a = vkey("A, B", (const char *const[]){"A", "", "B", "", NULL});
    b = vkey("A, B", (const char *const[]){"B", "", NULL});
    char *c = vkey("A, B", (const char *const[]){"A", "", NULL});
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(b, c);
    free(a);
    free(b);
    free(c);
}

/* ---- numbers ---- */

static void test_parse_uint(void **state)
{
    (void)state;
    int64_t v = -7;
    assert_true(http_parse_uint("0", &v));
    assert_int_equal(v, 0);
    assert_true(http_parse_uint("123", &v));
    assert_int_equal(v, 123);
    assert_true(http_parse_uint("007", &v));
    assert_int_equal(v, 7);
    assert_true(http_parse_uint("9223372036854775807", &v));
    assert_int_equal(v, INT64_MAX / 2);
    assert_true(http_parse_uint("99999999999999999999999999999999999999", &v));
    assert_int_equal(v, INT64_MAX / 2);
    assert_true(http_parse_uint("4611686018427387902", &v));
    assert_int_equal(v, INT64_MAX / 2 - 1);

    const char *bad[] = {"", "+1", "-1", " 1", "1 ", "12a", "0x10", "1.0", "1,2", "１"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 55;
        assert_false(http_parse_uint(bad[i], &v));
        assert_int_equal(v, 55);
    }
    assert_false(http_parse_uint(NULL, &v));
}

static void test_field_uint(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(http_field_uint(&h, "Age"), -1);
    hdrs_add(&h, "age", "42");
    hdrs_add(&h, "Content-Length", "4x");
    hdrs_add(&h, "Age", "7");
    assert_int_equal(http_field_uint(&h, "Age"), 42); /* the first field */
    assert_int_equal(http_field_uint(&h, "Content-Length"), -1);
    hdrs_free(&h);
}

/* Fields the origin could frame differently from the proxy are refused: a name with
 * whitespace or other non-token bytes, and Content-Length fields that disagree or are
 * not plain numbers. */
static void test_request_fields_ok(void **state)
{
    (void)state;
    static const char *const good[][4] = {
        {"Host", "a", "Accept", "*/*"},
        {"Content-Length", "5", "Content-Length", "5"},
        {"X-Weird_Name!#$%&'*+-.^`|~", "v", "content-length", "0"},
        {"Host", "Proxy.Example:3000", "X", "y"},
        {"host", "[::1]:8080", "X", "y"},
        {"Host", "192.0.2.1", "X", "y"},
        {"Host", "a-b_c~d%41!$&'()*+,;=", "X", "y"},
        {"Host", "", "X", "y"},
        {"Host", "a:", "X", "y"},
    };
    static const char *const bad[][4] = {
        {"Transfer-Encoding ", "chunked", "Host", "a"},
        {"Content-Length", "5", "Content-Length", "7"},
        {"Content-Length", "0x10", "Host", "a"},
        {"Content-Length", "-1", "Host", "a"},
        {"Content-Length", "5, 5", "Host", "a"},
        {"X Y", "v", "Host", "a"},
        {"X\tY", "v", "Host", "a"},
        {"X:Y", "v", "Host", "a"},
        {"", "v", "Host", "a"},
        {"X-\xc3\xa9", "v", "Host", "a"},
        /* one Host, well formed: it goes into the cache key and to the origin */
        {"Host", "a", "host", "b"},
        {"Host", "a", "Host", "a"},
        {"Host", "evil example", "X", "y"},
        {"Host", "a/b", "X", "y"},
        {"Host", "a@b", "X", "y"},
        {"Host", "a:80x", "X", "y"},
        {"Host", "a:80:81", "X", "y"},
        {"Host", "[::1", "X", "y"},
        {"Host", "[::1]x", "X", "y"},
        {"Host", "\xc3\xa9.example", "X", "y"},
        /* a CR or LF inside a value: a line break to some origins */
        {"X-A", "1\rX-Forwarded-Host: evil", "Host", "a"},
        {"X-A", "1\nX-B: 2", "Host", "a"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct hdrs h;
        hdrs_init(&h);
        assert_int_equal(hdrs_add(&h, good[i][0], good[i][1]), CP_OK);
        assert_int_equal(hdrs_add(&h, good[i][2], good[i][3]), CP_OK);
        assert_true(http_request_fields_ok(&h));
        hdrs_free(&h);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hdrs h;
        hdrs_init(&h);
        assert_int_equal(hdrs_add(&h, bad[i][0], bad[i][1]), CP_OK);
        assert_int_equal(hdrs_add(&h, bad[i][2], bad[i][3]), CP_OK);
        if (http_request_fields_ok(&h))
            fail_msg("accepted %s: %s", bad[i][0], bad[i][1]);
        hdrs_free(&h);
    }
}

static void test_request_framing_ok(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(hdrs_add(&h, "Content-Length", "3"), CP_OK);
    assert_true(http_request_framing_ok(&h, false));
    assert_true(http_request_framing_ok(&h, true)); /* a length alone is fine in 1.0 */
    assert_int_equal(hdrs_add(&h, "Transfer-Encoding", "chunked"), CP_OK);
    assert_false(http_request_framing_ok(&h, false));
    hdrs_remove(&h, "Content-Length");
    assert_true(http_request_framing_ok(&h, false));
    assert_false(http_request_framing_ok(&h, true));
    hdrs_free(&h);
}

static void test_request_coding_ok(void **state)
{
    (void)state;
    static const char *const good[] = {"chunked", "Chunked", "CHUNKED"};
    static const char *const bad[] = {"gzip", "identity", "gzip, chunked", "chunked, chunked",
                                      "chunked;x=1", "", "xchunked"};
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(hdrs_add(&h, "Host", "a"), CP_OK);
    assert_true(http_request_coding_ok(&h)); /* no Transfer-Encoding at all */
    hdrs_free(&h);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        hdrs_init(&h);
        assert_int_equal(hdrs_add(&h, "transfer-encoding", good[i]), CP_OK);
        assert_true(http_request_coding_ok(&h));
        hdrs_free(&h);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hdrs_init(&h);
        assert_int_equal(hdrs_add(&h, "Transfer-Encoding", bad[i]), CP_OK);
        if (http_request_coding_ok(&h))
            fail_msg("accepted Transfer-Encoding: %s", bad[i]);
        hdrs_free(&h);
    }
    hdrs_init(&h); /* two fields, each fine alone */
    assert_int_equal(hdrs_add(&h, "Transfer-Encoding", "chunked"), CP_OK);
    assert_int_equal(hdrs_add(&h, "Transfer-Encoding", "chunked"), CP_OK);
    assert_false(http_request_coding_ok(&h));
    hdrs_free(&h);
}

static void test_response_framing_ok(void **state)
{
    (void)state;
    static const char *const cases[][5] = {
        /* name, value, name, value, verdict */
        {"Content-Length", "5", "Content-Length", "5", "ok"},
        {"Content-Length", "0", "Server", "x", "ok"},
        {"Server", "x", "ETag", "\"a\"", "ok"},
        {"Content-Length", "5", "Content-Length", "7", "bad"},
        {"Content-Length", "0x10", "Server", "x", "bad"},
        {"Content-Length", "99999999999999999999", "Server", "x", "bad"},
        {"Content-Length", "", "Server", "x", "bad"},
        {"Content-Length", "5", "Transfer-Encoding", "chunked", "ok"}, /* chunked wins */
        {"Content-Length", "junk", "Transfer-Encoding", "chunked", "ok"},
        {"Transfer-Encoding", "Chunked", "Server", "x", "ok"},
        /* codings curl would pass on undecoded, or lists of them */
        {"Transfer-Encoding", "gzip, chunked", "Server", "x", "bad"},
        {"Transfer-Encoding", "gzip", "Content-Length", "5", "bad"},
        {"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", "bad"},
        {"Transfer-Encoding", "identity", "Server", "x", "bad"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hdrs h;
        hdrs_init(&h);
        assert_int_equal(hdrs_add(&h, cases[i][0], cases[i][1]), CP_OK);
        assert_int_equal(hdrs_add(&h, cases[i][2], cases[i][3]), CP_OK);
        bool want = strcmp(cases[i][4], "ok") == 0;
        if (http_response_framing_ok(&h, false) != want)
            fail_msg("%s: %s / %s: %s: expected %s", cases[i][0], cases[i][1], cases[i][2],
                     cases[i][3], cases[i][4]);
        /* HTTP/1.0 has no transfer codings: one there means faulty framing */
        if (hdrs_get(&h, "Transfer-Encoding") != NULL && http_response_framing_ok(&h, true))
            fail_msg("HTTP/1.0 with %s: %s accepted", cases[i][0], cases[i][1]);
        if (hdrs_get(&h, "Transfer-Encoding") == NULL && http_response_framing_ok(&h, true) != want)
            fail_msg("HTTP/1.0 without a coding: %s: %s", cases[i][0], cases[i][1]);
        hdrs_free(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_uint),
        cmocka_unit_test(test_cc_absent),
        cmocka_unit_test(test_cc_all_directives),
        cmocka_unit_test(test_cc_case_and_spacing),
        cmocka_unit_test(test_cc_quoted_arguments),
        cmocka_unit_test(test_cc_unqualified_beats_qualified),
        cmocka_unit_test(test_cc_invalid_max_age_is_zero),
        cmocka_unit_test(test_cc_invalid_other_arguments_ignored),
        cmocka_unit_test(test_cc_garbage_skipped),
        cmocka_unit_test(test_cc_duplicates),
        cmocka_unit_test(test_cc_huge_numbers_saturate),
        cmocka_unit_test(test_cc_multiple_fields_joined),
        cmocka_unit_test(test_cc_quoted_pair_in_number),
        cmocka_unit_test(test_date_three_formats),
        cmocka_unit_test(test_date_invalid),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_date_round_trip),
        cmocka_unit_test(test_date_fixdate_matches_curl),
        cmocka_unit_test(test_vary_none),
        cmocka_unit_test(test_vary_star),
        cmocka_unit_test(test_vary_present_absent_empty),
        cmocka_unit_test(test_vary_names_case_insensitive),
        cmocka_unit_test(test_vary_normalises_values),
        cmocka_unit_test(test_vary_several_fields),
        cmocka_unit_test(test_vary_unambiguous),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_request_fields_ok),
        cmocka_unit_test(test_request_framing_ok),
        cmocka_unit_test(test_request_coding_ok),
        cmocka_unit_test(test_response_framing_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
