/* Unit tests for the ordered header list (headers.c): lookups, joining, comma-list
 * tokens, copying, and the hop-by-hop rules a proxy applies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

/* Fills h from a NULL-terminated list of name, value pairs. */
static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

static void test_init_empty(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(h.n, 0);
    assert_null(hdrs_get(&h, "Host"));
    assert_int_equal(hdrs_count(&h, "Host"), 0);
    assert_int_equal(hdrs_remove(&h, "Host"), 0);
    assert_false(hdrs_has_token(&h, "Connection", "close"));
    hdrs_free(&h);
    assert_int_equal(h.n, 0);
    /* reusable after free */
    assert_int_equal(hdrs_add(&h, "A", "1"), CP_OK);
    assert_string_equal(hdrs_get(&h, "a"), "1");
    hdrs_free(&h);
    hdrs_free(&h); /* freeing an empty list twice is harmless */
}

static void test_add_get_case_insensitive(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Content-Type", "text/plain", "X-One", "1", NULL});
    assert_string_equal(hdrs_get(&h, "content-type"), "text/plain");
    assert_string_equal(hdrs_get(&h, "CONTENT-TYPE"), "text/plain");
    assert_string_equal(hdrs_get(&h, "x-one"), "1");
    assert_null(hdrs_get(&h, "Content-Typ"));
    assert_null(hdrs_get(&h, "Content-Type-X"));
    /* the name is kept as given */
    assert_string_equal(h.v[0].name, "Content-Type");
    hdrs_free(&h);
}

static void test_add_trims_value(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(hdrs_add(&h, "A", "  \t value with  inner space \t "), CP_OK);
    assert_int_equal(hdrs_add(&h, "B", "x\r\n"), CP_OK);
    assert_int_equal(hdrs_add(&h, "C", "   "), CP_OK);
    assert_int_equal(hdrs_add(&h, "D", NULL), CP_OK);
    assert_string_equal(hdrs_get(&h, "A"), "value with  inner space");
    assert_string_equal(hdrs_get(&h, "B"), "x");
    assert_string_equal(hdrs_get(&h, "C"), "");
    assert_string_equal(hdrs_get(&h, "D"), "");
    hdrs_free(&h);
}

static void test_addn_lengths(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    const char *line = "Accept-Language: en, fr  XYZ";
    assert_int_equal(hdrs_addn(&h, line, 15, line + 16, 9), CP_OK);
    assert_string_equal(h.v[0].name, "Accept-Language");
    assert_string_equal(h.v[0].value, "en, fr");
    assert_int_equal(hdrs_addn(&h, "E", 1, NULL, 0), CP_OK);
    assert_string_equal(hdrs_get(&h, "E"), "");
    hdrs_free(&h);
}

/* Scrubbed, a bare CR, an LF or a NUL inside a value becomes a space: the field is kept
 * whole, and nothing downstream can split or cut it there. Unscrubbed (a request's
 * fields, which are refused instead), the value is copied as it is. */
static void test_addn_scrubbed_controls(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    const char value[] = "/a\rb\nc\0d";
    assert_int_equal(hdrs_addn_scrubbed(&h, "Location", 8, value, sizeof value - 1), CP_OK);
    assert_int_equal(strlen(hdrs_get(&h, "Location")), sizeof value - 1);
    assert_string_equal(hdrs_get(&h, "Location"), "/a b c d");
    assert_int_equal(hdrs_continue_last(&h, " e\rf", 4), CP_OK);
    assert_string_equal(hdrs_get(&h, "Location"), "/a b c d e f");
    assert_int_equal(hdrs_addn(&h, "X-Raw", 5, value, sizeof value - 1), CP_OK);
    assert_string_equal(hdrs_get(&h, "X-Raw"), "/a\rb\nc");
    hdrs_free(&h);
}

static void test_growth_keeps_order(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    char name[32], value[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(hdrs_add(&h, name, value), CP_OK);
    }
    assert_int_equal(h.n, 300);
    assert_true(h.cap >= 300);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        snprintf(value, sizeof value, "v%d", i);
        assert_string_equal(h.v[i].name, name);
        assert_string_equal(h.v[i].value, value);
    }
    assert_string_equal(hdrs_get(&h, "x-h299"), "v299");
    hdrs_free(&h);
}

static void test_repeated_fields(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Set-Cookie", "a=1", "X", "x", "set-cookie", "b=2",
                                   "SET-COOKIE", "c=3", NULL});
    assert_int_equal(hdrs_count(&h, "Set-Cookie"), 3);
    assert_int_equal(hdrs_count(&h, "X"), 1);
    assert_int_equal(hdrs_count(&h, "Y"), 0);
    /* get returns the first */
    assert_string_equal(hdrs_get(&h, "Set-Cookie"), "a=1");
    hdrs_free(&h);
}

static void test_remove(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"A", "1", "B", "2", "a", "3", "C", "4", "A", "5", NULL});
    assert_int_equal(hdrs_remove(&h, "a"), 3);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.v[0].name, "B");
    assert_string_equal(h.v[1].name, "C");
    assert_null(hdrs_get(&h, "A"));
    assert_int_equal(hdrs_remove(&h, "A"), 0);
    assert_int_equal(hdrs_remove(&h, "Z"), 0);
    assert_int_equal(h.n, 2);
    hdrs_free(&h);
}

static void test_join(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Accept", "text/html", "Other", "o", "accept", "text/plain",
                                   "Empty", "", "Cache-Control", "", "Cache-Control",
                                   "max-age=1", "Cache-Control", "", NULL});
    char *s = (char *)0x1;
    assert_int_equal(hdrs_join(&h, "ACCEPT", &s), CP_OK);
    assert_string_equal(s, "text/html, text/plain");
    free(s);
    assert_int_equal(hdrs_join(&h, "Other", &s), CP_OK);
    assert_string_equal(s, "o");
    free(s);
    /* a present but empty field is not the same as a missing one */
    assert_int_equal(hdrs_join(&h, "Empty", &s), CP_OK);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    /* empty lines add nothing, not ", ," */
    assert_int_equal(hdrs_join(&h, "Cache-Control", &s), CP_OK);
    assert_string_equal(s, "max-age=1");
    free(s);
    s = (char *)0x1;
    assert_int_equal(hdrs_join(&h, "Missing", &s), CP_OK);
    assert_null(s);
    hdrs_free(&h);
}

static void test_has_token(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Connection", "keep-alive , Upgrade", "Connection",
                                   " X-Custom ", "Accept-Encoding", "gzip;q=1.0, br ; q=0.5",
                                   "X-Q", "foo=\"a, close\", bar", "X-Esc",
                                   "x=\"a\\\", close\", y", "Vary", ",, ,", NULL});
    assert_true(hdrs_has_token(&h, "Connection", "keep-alive"));
    assert_true(hdrs_has_token(&h, "connection", "UPGRADE"));
    assert_true(hdrs_has_token(&h, "Connection", "x-custom")); /* second field */
    assert_false(hdrs_has_token(&h, "Connection", "keep"));
    assert_false(hdrs_has_token(&h, "Connection", "keep-alive-x"));
    assert_false(hdrs_has_token(&h, "Connection", ""));
    /* parameters after ';' are not part of the token */
    assert_true(hdrs_has_token(&h, "Accept-Encoding", "gzip"));
    assert_true(hdrs_has_token(&h, "Accept-Encoding", "br"));
    assert_false(hdrs_has_token(&h, "Accept-Encoding", "q=0.5"));
    assert_false(hdrs_has_token(&h, "Accept-Encoding", "gzip;q=1.0"));
    /* a comma inside a quoted string does not split the list */
    assert_false(hdrs_has_token(&h, "X-Q", "close"));
    assert_false(hdrs_has_token(&h, "X-Q", "close\""));
    assert_true(hdrs_has_token(&h, "X-Q", "bar"));
    /* nor does an escaped quote end it */
    assert_false(hdrs_has_token(&h, "X-Esc", "close"));
    assert_true(hdrs_has_token(&h, "X-Esc", "y"));
    /* empty members are skipped, never matched */
    assert_false(hdrs_has_token(&h, "Vary", ""));
    assert_false(hdrs_has_token(&h, "Missing", "x"));
    hdrs_free(&h);
}

static void test_copy(void **state)
{
    (void)state;
    struct hdrs src, dst;
    fill(&src, (const char *const[]){"A", "1", "Set-Cookie", "x", "Set-Cookie", "y", NULL});
    fill(&dst, (const char *const[]){"Old", "gone", NULL});
    assert_int_equal(hdrs_copy(&dst, &src), CP_OK);
    assert_int_equal(dst.n, 3);
    assert_null(hdrs_get(&dst, "Old"));
    assert_int_equal(hdrs_count(&dst, "set-cookie"), 2);
    assert_string_equal(dst.v[2].value, "y");
    /* deep: changing the source leaves the copy alone */
    assert_ptr_not_equal(dst.v[0].name, src.v[0].name);
    src.v[0].value[0] = '9';
    hdrs_remove(&src, "A");
    assert_string_equal(hdrs_get(&dst, "A"), "1");
    /* copying onto itself is a no-op */
    assert_int_equal(hdrs_copy(&dst, &dst), CP_OK);
    assert_int_equal(dst.n, 3);
    assert_string_equal(dst.v[1].value, "x");
    /* copying an empty list empties */
    struct hdrs empty;
    hdrs_init(&empty);
    assert_int_equal(hdrs_copy(&dst, &empty), CP_OK);
    assert_int_equal(dst.n, 0);
    hdrs_free(&src);
    hdrs_free(&dst);
}

/* hdrs_set takes the first field's place, keeping its name, and drops the later ones
 * of that name. */
static void test_set(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"A", "1", "Via", "x", "B", "2", "via", "y", NULL});
    assert_int_equal(hdrs_set(&h, "VIA", "z"), CP_OK);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.v[0].name, "A");
    assert_string_equal(h.v[1].name, "Via"); /* the first one's name and place */
    assert_string_equal(h.v[1].value, "z");
    assert_string_equal(h.v[2].name, "B");
    assert_int_equal(hdrs_set(&h, "C", "3"), CP_OK); /* none yet: appended */
    assert_int_equal(h.n, 4);
    assert_string_equal(h.v[3].value, "3");
    assert_int_equal(hdrs_set(&h, "a", "longer than before"), CP_OK);
    assert_string_equal(h.v[0].name, "A"); /* the field's own name stays */
    assert_string_equal(h.v[0].value, "longer than before");
    assert_int_equal(hdrs_set(&h, "A", ""), CP_OK);
    assert_string_equal(h.v[0].value, "");
    assert_string_equal(hdrs_get(&h, "a"), "");
    hdrs_free(&h);
}

/* An obs-fold line continues the last field: the fold and the whitespace around it
 * become one space; a blank line or an empty list changes nothing. */
static void test_continue_last(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(hdrs_continue_last(&h, " x", 2), CP_OK); /* nothing to continue */
    assert_int_equal(h.n, 0);
    fill(&h, (const char *const[]){"A", "1", "X-Folded", "a", NULL});
    assert_int_equal(hdrs_continue_last(&h, "   b  ", 6), CP_OK);
    assert_int_equal(hdrs_continue_last(&h, "\tc", 2), CP_OK);
    assert_int_equal(hdrs_continue_last(&h, " \t ", 3), CP_OK); /* blank */
    assert_int_equal(h.n, 2);
    assert_string_equal(h.v[1].name, "X-Folded");
    assert_string_equal(hdrs_get(&h, "x-folded"), "a b c");
    assert_string_equal(hdrs_get(&h, "A"), "1");
    assert_int_equal(hdrs_add(&h, "X-Empty", ""), CP_OK);
    assert_int_equal(hdrs_continue_last(&h, "  d", 3), CP_OK); /* no leading space */
    assert_string_equal(hdrs_get(&h, "X-Empty"), "d");
    hdrs_free(&h);
}

static void test_is_hop_by_hop(void **state)
{
    (void)state;
    const char *yes[] = {"Connection", "connection", "Keep-Alive", "TE", "te", "Trailer",
                         "Transfer-Encoding", "Upgrade", "Proxy-Authorization",
                         "Proxy-Authenticate", "proxy-connection"};
    const char *no[] = {"Content-Length", "Host", "Cache-Control", "Proxy", "TEx",
                        "X-Connection", "Set-Cookie", "Authorization", "Via", "Age", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(hdrs_is_hop_by_hop(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(hdrs_is_hop_by_hop(no[i]));
}

/* Hop-by-hop in a given message: the fixed ones, and what its Connection names. */
static void test_hop_by_hop_in(void **state)
{
    (void)state;
    struct hdrs h;
    hdrs_init(&h);
    assert_int_equal(hdrs_add(&h, "Connection", "close, X-Secret"), CP_OK);
    assert_int_equal(hdrs_add(&h, "X-Secret", "1"), CP_OK);
    assert_true(hdrs_hop_by_hop_in(&h, "Connection"));
    assert_true(hdrs_hop_by_hop_in(&h, "Keep-Alive"));
    assert_true(hdrs_hop_by_hop_in(&h, "x-secret"));
    assert_false(hdrs_hop_by_hop_in(&h, "X-Public"));
    hdrs_free(&h);
    hdrs_init(&h);
    assert_false(hdrs_hop_by_hop_in(&h, "X-Secret")); /* named by no Connection here */
    hdrs_free(&h);
}

static void test_strip_hop_by_hop(void **state)
{
    (void)state;
    struct hdrs h;
    fill(&h, (const char *const[]){"Host", "example.com",
                                   "Connection", "close, X-Secret",
                                   "Keep-Alive", "timeout=5",
                                   "Accept", "*/*",
                                   "x-secret", "1",
                                   "Transfer-Encoding", "chunked",
                                   "connection", "x-other ; p=1",
                                   "X-Other", "2",
                                   "TE", "trailers",
                                   "Upgrade", "websocket",
                                   "Proxy-Authorization", "Basic x",
                                   "Set-Cookie", "a=1",
                                   "X-Keep", "3",
                                   "X-SECRET", "again",
                                   "Set-Cookie", "b=2",
                                   NULL});
    hdrs_strip_hop_by_hop(&h);
    const char *want[] = {"Host", "Accept", "Set-Cookie", "X-Keep", "Set-Cookie"};
    assert_int_equal(h.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < h.n; i++)
        assert_string_equal(h.v[i].name, want[i]);
    assert_string_equal(h.v[2].value, "a=1");
    assert_string_equal(h.v[4].value, "b=2");
    hdrs_free(&h);
}

static void test_strip_connection_names_end_to_end_field(void **state)
{
    (void)state;
    /* A field named by Connection goes even if it is otherwise end-to-end, but a
     * quoted string in Connection names nothing. */
    struct hdrs h;
    fill(&h, (const char *const[]){"Cache-Control", "max-age=1", "Connection",
                                   "Cache-Control, x=\"Accept\"", "Accept", "a", NULL});
    hdrs_strip_hop_by_hop(&h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.v[0].name, "Accept");
    hdrs_free(&h);

    hdrs_init(&h);
    hdrs_strip_hop_by_hop(&h); /* empty list */
    assert_int_equal(h.n, 0);
    fill(&h, (const char *const[]){"A", "1", NULL});
    hdrs_strip_hop_by_hop(&h); /* nothing to strip */
    assert_int_equal(h.n, 1);
    hdrs_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_add_get_case_insensitive),
        cmocka_unit_test(test_add_trims_value),
        cmocka_unit_test(test_addn_lengths),
        cmocka_unit_test(test_addn_scrubbed_controls),
        cmocka_unit_test(test_growth_keeps_order),
        cmocka_unit_test(test_repeated_fields),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_continue_last),
        cmocka_unit_test(test_is_hop_by_hop),
        cmocka_unit_test(test_hop_by_hop_in),
        cmocka_unit_test(test_strip_hop_by_hop),
        cmocka_unit_test(test_strip_connection_names_end_to_end_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
