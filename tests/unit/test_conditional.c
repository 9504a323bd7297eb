/* Unit tests for conditional requests (conditional.c): entity-tag comparison,
 * If-None-Match / If-Modified-Since answered from a stored response, revalidation
 * validators, and the fields taken from a 304 or sent with one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "conditional.h"

/* Dates used throughout: T0 < T1 < T2, one day apart. */
#define D0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D1 "Mon, 07 Nov 1994 08:49:37 GMT"
#define D2 "Tue, 08 Nov 1994 08:49:37 GMT"
#define T0 ((time_t)784111777)
#define T1 (T0 + 86400)
#define T2 (T1 + 86400)

/* Fills h from a NULL-terminated list of name, value pairs. */
static void fill(struct hdrs *h, const char *const *kv)
{
    hdrs_init(h);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(hdrs_add(h, kv[i], kv[i + 1]), CP_OK);
}

/* Checks that h holds exactly the name, value pairs of kv, in that order. */
static void expect_fields(const struct hdrs *h, const char *const *kv)
{
    size_t n = 0;
    for (; kv[2 * n] != NULL; n++) {
        assert_true(n < h->n);
        assert_string_equal(h->v[n].name, kv[2 * n]);
        assert_string_equal(h->v[n].value, kv[2 * n + 1]);
    }
    assert_int_equal(h->n, n);
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

/* cond_not_modified on two field lists built from KV(...) lists. */
static bool not_modified(const char *const *req, const char *const *st, int status,
                         time_t response_time)
{
    struct hdrs r, s;
    fill(&r, req);
    fill(&s, st);
    bool nm = cond_not_modified(&r, &s, status, response_time);
    hdrs_free(&r);
    hdrs_free(&s);
    return nm;
}

/* ---- entity-tag comparison ---------------------------------------------------------- */

static void test_etag_weak_match(void **state)
{
    (void)state;
    assert_true(cond_etag_weak_match("\"a\"", "\"a\""));
    assert_true(cond_etag_weak_match("W/\"a\"", "\"a\""));
    assert_true(cond_etag_weak_match("\"a\"", "W/\"a\""));
    assert_true(cond_etag_weak_match("W/\"a\"", "W/\"a\""));
    assert_true(cond_etag_weak_match("\"\"", "W/\"\""));
    assert_true(cond_etag_weak_match(" \"xyz\"\t", "\"xyz\""));
    assert_false(cond_etag_weak_match("\"a\"", "\"b\""));
    assert_false(cond_etag_weak_match("\"a\"", "\"A\""));   /* opaque: byte for byte */
    assert_false(cond_etag_weak_match("\"a\"", "\"a \"")); /* space is no etagc */
    assert_false(cond_etag_weak_match("\"ab\"", "\"a\""));
    assert_false(cond_etag_weak_match("\"a\"", "\"\""));
}

static void test_etag_strong_match(void **state)
{
    (void)state;
    assert_true(cond_etag_strong_match("\"a\"", "\"a\""));
    assert_true(cond_etag_strong_match("\"\"", "\"\""));
    assert_true(cond_etag_strong_match("\"a,b\"", "\"a,b\""));
    assert_false(cond_etag_strong_match("W/\"a\"", "\"a\""));
    assert_false(cond_etag_strong_match("\"a\"", "W/\"a\""));
    assert_false(cond_etag_strong_match("W/\"a\"", "W/\"a\""));
    assert_false(cond_etag_strong_match("\"a\"", "\"b\""));
}

static void test_etag_malformed_never_match(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",        "a",         "\"a",      "a\"",         "w/\"a\"", "W/a",
        "W/",      "\"",        "W/\"",     "\"a\"b\"",    "\"a b\"", "\"a\"x",
        "x\"a\"",  "W/ \"a\"",  "W//\"a\"", "\"a\x01\"",   "\"a\x7f\"", "*",
        "\"a\",\"a\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(cond_etag_weak_match(bad[i], bad[i]));
        assert_false(cond_etag_strong_match(bad[i], bad[i]));
        assert_false(cond_etag_weak_match(bad[i], "\"a\""));
        assert_false(cond_etag_weak_match("\"a\"", bad[i]));
    }
    assert_false(cond_etag_weak_match(NULL, "\"a\""));
    assert_false(cond_etag_weak_match("\"a\"", NULL));
    assert_false(cond_etag_strong_match(NULL, NULL));
}

static void test_etag_obs_text_and_punctuation(void **state)
{
    (void)state;
    /* obs-text and every visible character but DQUOTE are etagc */
    assert_true(cond_etag_strong_match("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\""));
    assert_false(cond_etag_strong_match("\"caf\xc3\xa9\"", "\"cafe\""));
    assert_true(cond_etag_strong_match("\"!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\"",
                                       "\"!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\""));
    /* a backslash is an ordinary character, not an escape */
    assert_false(cond_etag_strong_match("\"a\\b\"", "\"ab\""));
}

/* ---- If-None-Match ---------------------------------------------------------------------- */

static void test_inm_single(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-None-Match", "\"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"b\""), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"A\""), KV("ETag", "\"a\""), 200, T0));
    /* names are case-insensitive */
    assert_true(not_modified(KV("if-none-match", "\"a\""), KV("etag", "\"a\""), 200, T0));
}

static void test_inm_weak_comparison(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-None-Match", "W/\"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_true(not_modified(KV("If-None-Match", "\"a\""), KV("ETag", "W/\"a\""), 200, T0));
    assert_true(not_modified(KV("If-None-Match", "W/\"a\""), KV("ETag", "W/\"a\""), 200, T0));
}

static void test_inm_list(void **state)
{
    (void)state;
    assert_true(
        not_modified(KV("If-None-Match", "\"x\", \"y\", \"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_true(
        not_modified(KV("If-None-Match", "\"a\",\"x\""), KV("ETag", "\"a\""), 200, T0));
    assert_true(not_modified(KV("If-None-Match", " \"x\" ,\tW/\"a\" "), KV("ETag", "\"a\""),
                             200, T0));
    assert_false(
        not_modified(KV("If-None-Match", "\"x\", \"y\""), KV("ETag", "\"a\""), 200, T0));
    /* empty list members are harmless */
    assert_true(not_modified(KV("If-None-Match", ", ,\"a\",,"), KV("ETag", "\"a\""), 200, T0));
    /* the list may come in several field lines */
    assert_true(not_modified(KV("If-None-Match", "\"x\"", "If-None-Match", "\"a\""),
                             KV("ETag", "\"a\""), 200, T0));
}

static void test_inm_comma_inside_tag(void **state)
{
    (void)state;
    /* a comma inside a quoted tag belongs to it */
    assert_true(not_modified(KV("If-None-Match", "\"a,b\""), KV("ETag", "\"a,b\""), 200, T0));
    assert_true(
        not_modified(KV("If-None-Match", "\"x\", \"a,b\""), KV("ETag", "\"a,b\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"a,b\""), KV("ETag", "\"b\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"a,b\""), KV("ETag", "\"a\""), 200, T0));
    assert_false(
        not_modified(KV("If-None-Match", "\"a\", \"b\""), KV("ETag", "\"a,b\""), 200, T0));
}

static void test_inm_malformed_members_skipped(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-None-Match", "junk, \"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_true(
        not_modified(KV("If-None-Match", "\"x\" junk, \"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_true(
        not_modified(KV("If-None-Match", "\"a b\", \"a\""), KV("ETag", "\"a\""), 200, T0));
    /* a tag swallowed by the malformed member before it does not match */
    assert_false(not_modified(KV("If-None-Match", "x\"y, \"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "a"), KV("ETag", "a"), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"a"), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "w/\"a\""), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", ""), KV("ETag", "\"a\""), 200, T0));
    /* a malformed stored ETag matches nothing */
    assert_false(not_modified(KV("If-None-Match", "\"a\""), KV("ETag", "\"a"), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "\"a\""), KV("ETag", "a"), 200, T0));
}

static void test_inm_star(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-None-Match", "*"), KV("ETag", "\"a\""), 200, T0));
    /* a stored 200 is a current representation, ETag or not */
    assert_true(not_modified(KV("If-None-Match", "*"), NONE, 200, T0));
    assert_true(not_modified(KV("If-None-Match", " * "), KV("Date", D0), 200, T0));
    /* "*" is only the whole value, never a list member */
    assert_false(not_modified(KV("If-None-Match", "\"x\", *"), KV("ETag", "\"a\""), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "*, \"x\""), NONE, 200, T0));
    assert_false(not_modified(KV("If-None-Match", "**"), NONE, 200, T0));
    assert_false(
        not_modified(KV("If-None-Match", "*", "If-None-Match", "\"x\""), NONE, 200, T0));
    /* but a real tag next to it still counts */
    assert_true(not_modified(KV("If-None-Match", "*, \"a\""), KV("ETag", "\"a\""), 200, T0));
}

static void test_only_status_200(void **state)
{
    (void)state;
    static const int others[] = {203, 204, 206, 301, 304, 404, 410, 500};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_false(not_modified(KV("If-None-Match", "*"), KV("ETag", "\"a\""), others[i], T0));
        assert_false(
            not_modified(KV("If-None-Match", "\"a\""), KV("ETag", "\"a\""), others[i], T0));
        assert_false(
            not_modified(KV("If-Modified-Since", D2), KV("Last-Modified", D0), others[i], T0));
    }
}

static void test_no_condition(void **state)
{
    (void)state;
    assert_false(not_modified(NONE, KV("ETag", "\"a\"", "Last-Modified", D0), 200, T0));
    assert_false(not_modified(KV("If-Match", "\"a\"", "If-Unmodified-Since", D2),
                              KV("ETag", "\"a\"", "Last-Modified", D0), 200, T0));
}

/* ---- If-Modified-Since ------------------------------------------------------------------ */

static void test_ims_last_modified(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-Modified-Since", D1), KV("Last-Modified", D1), 200, T2));
    assert_true(not_modified(KV("If-Modified-Since", D1), KV("Last-Modified", D0), 200, T2));
    assert_false(not_modified(KV("If-Modified-Since", D0), KV("Last-Modified", D1), 200, T2));
    /* one second later is already modified */
    assert_false(not_modified(KV("If-Modified-Since", "Mon, 07 Nov 1994 08:49:36 GMT"),
                              KV("Last-Modified", D1), 200, T2));
    /* Last-Modified wins over Date and the receive time */
    assert_false(not_modified(KV("If-Modified-Since", D0),
                              KV("Date", D0, "Last-Modified", D1), 200, T0));
    assert_true(not_modified(KV("If-Modified-Since", D1),
                             KV("Date", D2, "Last-Modified", D0), 200, T2));
}

static void test_ims_other_date_formats(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-Modified-Since", "Monday, 07-Nov-94 08:49:37 GMT"),
                             KV("Last-Modified", D1), 200, T2));
    assert_true(not_modified(KV("If-Modified-Since", "Mon Nov  7 08:49:37 1994"),
                             KV("Last-Modified", D1), 200, T2));
    assert_false(not_modified(KV("If-Modified-Since", "Sun Nov  6 08:49:37 1994"),
                              KV("Last-Modified", D1), 200, T2));
}

static void test_ims_falls_back_to_date_then_response_time(void **state)
{
    (void)state;
    assert_true(not_modified(KV("If-Modified-Since", D1), KV("Date", D1), 200, T2));
    assert_false(not_modified(KV("If-Modified-Since", D0), KV("Date", D1), 200, T0));
    /* an unreadable Last-Modified is as good as none */
    assert_true(not_modified(KV("If-Modified-Since", D1),
                             KV("Last-Modified", "yesterday", "Date", D0), 200, T2));
    assert_false(not_modified(KV("If-Modified-Since", D0),
                              KV("Last-Modified", "yesterday", "Date", D1), 200, T0));
    /* neither: the time the response was received */
    assert_true(not_modified(KV("If-Modified-Since", D1), NONE, 200, T1));
    assert_true(not_modified(KV("If-Modified-Since", D1), NONE, 200, T0));
    assert_false(not_modified(KV("If-Modified-Since", D1), NONE, 200, T2));
    assert_false(not_modified(KV("If-Modified-Since", D1), KV("Date", "garbage"), 200, T2));
}

static void test_ims_invalid_ignored(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "yesterday", "0", D1 " x", "Mon, 07 Nov 1994",
                                      "Mon, 32 Nov 1994 08:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(
            not_modified(KV("If-Modified-Since", bad[i]), KV("Last-Modified", D0), 200, T0));
    /* more than one If-Modified-Since is not a date either */
    assert_false(not_modified(KV("If-Modified-Since", D2, "If-Modified-Since", D2),
                              KV("Last-Modified", D0), 200, T0));
}

static void test_inm_takes_precedence_over_ims(void **state)
{
    (void)state;
    /* a failing If-None-Match is final even though If-Modified-Since would hold */
    assert_false(not_modified(KV("If-None-Match", "\"b\"", "If-Modified-Since", D2),
                              KV("ETag", "\"a\"", "Last-Modified", D0), 200, T0));
    /* a matching one is final even though If-Modified-Since would fail */
    assert_true(not_modified(KV("If-Modified-Since", D0, "If-None-Match", "\"a\""),
                             KV("ETag", "\"a\"", "Last-Modified", D2), 200, T2));
    /* present but unusable still switches If-Modified-Since off */
    assert_false(not_modified(KV("If-None-Match", "", "If-Modified-Since", D2),
                              KV("ETag", "\"a\"", "Last-Modified", D0), 200, T0));
    assert_false(not_modified(KV("If-None-Match", "junk", "If-Modified-Since", D2),
                              KV("Last-Modified", D0), 200, T0));
    /* If-None-Match with a tag against a response without ETag */
    assert_false(not_modified(KV("If-None-Match", "\"a\"", "If-Modified-Since", D2),
                              KV("Last-Modified", D0), 200, T0));
}

/* ---- validators ---------------------------------------------------------------------------- */

static void test_has_validator(void **state)
{
    (void)state;
    struct hdrs h;
    const struct {
        const char *const *fields;
        bool expected;
    } cases[] = {
        {KV("ETag", "\"a\""), true},
        {KV("ETag", "W/\"a\""), true},
        {KV("Last-Modified", D0), true},
        {KV("ETag", "\"a\"", "Last-Modified", D0), true},
        {KV("etag", "\"a\""), true},
        {KV("ETag", "a"), false},
        {KV("ETag", ""), false},
        {KV("Last-Modified", "yesterday"), false},
        {KV("ETag", "a", "Last-Modified", "never"), false},
        {KV("ETag", "a", "Last-Modified", D0), true},
        {KV("Date", D0, "Content-Type", "text/plain"), false},
        {NONE, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fill(&h, cases[i].fields);
        assert_int_equal(cond_has_validator(&h), cases[i].expected);
        hdrs_free(&h);
    }
}

static void test_add_validators_both(void **state)
{
    (void)state;
    struct hdrs req, st;
    fill(&req, KV("Host", "x", "If-None-Match", "\"client\"", "Accept", "*/*",
                  "If-Modified-Since", D2, "If-None-Match", "\"other\""));
    fill(&st, KV("Date", D1, "ETag", "W/\"v1\"", "Last-Modified", D0));
    assert_int_equal(cond_add_validators(&req, &st), CP_OK);
    /* the client's conditions are gone, ours follow its other fields */
    expect_fields(&req, KV("Host", "x", "Accept", "*/*", "If-None-Match", "W/\"v1\"",
                           "If-Modified-Since", D0));
    hdrs_free(&req);
    hdrs_free(&st);
}

static void test_add_validators_partial_or_none(void **state)
{
    (void)state;
    struct hdrs req, st;

    fill(&req, KV("If-Modified-Since", D2));
    fill(&st, KV("ETag", "\"v1\""));
    assert_int_equal(cond_add_validators(&req, &st), CP_OK);
    expect_fields(&req, KV("If-None-Match", "\"v1\""));
    hdrs_free(&req);
    hdrs_free(&st);

    fill(&req, KV("If-None-Match", "*"));
    fill(&st, KV("Last-Modified", D0, "ETag", "broken"));
    assert_int_equal(cond_add_validators(&req, &st), CP_OK);
    expect_fields(&req, KV("If-Modified-Since", D0));
    hdrs_free(&req);
    hdrs_free(&st);

    /* nothing usable: the request goes without conditions */
    fill(&req, KV("Accept", "*/*", "If-None-Match", "\"c\"", "if-modified-since", D1));
    fill(&st, KV("Last-Modified", "never", "Date", D0));
    assert_int_equal(cond_add_validators(&req, &st), CP_OK);
    expect_fields(&req, KV("Accept", "*/*"));
    hdrs_free(&req);
    hdrs_free(&st);

    /* other preconditions are not this function's business */
    fill(&req, KV("If-Match", "\"m\"", "If-Range", "\"r\""));
    fill(&st, NONE);
    assert_int_equal(cond_add_validators(&req, &st), CP_OK);
    expect_fields(&req, KV("If-Match", "\"m\"", "If-Range", "\"r\""));
    hdrs_free(&req);
    hdrs_free(&st);
}

/* ---- merging a 304 ------------------------------------------------------------------------ */

/* cond_merge_304 of two KV lists, checked against `expected`. */
static void merge_and_expect(const char *const *stored, const char *const *nm,
                             const char *const *expected)
{
    struct hdrs s, n, out;
    fill(&s, stored);
    fill(&n, nm);
    hdrs_init(&out);
    assert_int_equal(cond_merge_304(&s, &n, &out), CP_OK);
    expect_fields(&out, expected);
    hdrs_free(&s);
    hdrs_free(&n);
    hdrs_free(&out);
}

static void test_merge_replaces_in_place(void **state)
{
    (void)state;
    merge_and_expect(KV("Date", D0, "Content-Type", "text/plain", "Cache-Control", "max-age=10",
                        "ETag", "\"a\"", "X-Custom", "kept"),
                     KV("Cache-Control", "max-age=60", "Date", D1),
                     KV("Date", D1, "Content-Type", "text/plain", "Cache-Control", "max-age=60",
                        "ETag", "\"a\"", "X-Custom", "kept"));
}

static void test_merge_nothing_to_update(void **state)
{
    (void)state;
    merge_and_expect(KV("A", "1", "B", "2", "A", "3"), NONE, KV("A", "1", "B", "2", "A", "3"));
    merge_and_expect(NONE, NONE, NONE);
    merge_and_expect(NONE, KV("Date", D1, "X-Version", "2"), KV("Date", D1, "X-Version", "2"));
}

static void test_merge_repeated_names(void **state)
{
    (void)state;
    /* every stored field of the name goes; all of the 304's take the first's place */
    merge_and_expect(KV("Link", "<a>", "Date", D0, "Link", "<b>", "X", "x"),
                     KV("Link", "<c>", "Expires", D2, "Link", "<d>", "link", "<e>"),
                     KV("Link", "<c>", "Link", "<d>", "link", "<e>", "Date", D0, "X", "x",
                        "Expires", D2));
    /* fewer than stored */
    merge_and_expect(KV("Cache-Control", "public", "Cache-Control", "max-age=5", "Vary", "Accept"),
                     KV("Cache-Control", "max-age=60"),
                     KV("Cache-Control", "max-age=60", "Vary", "Accept"));
}

static void test_merge_case_insensitive_names(void **state)
{
    (void)state;
    merge_and_expect(KV("cache-control", "max-age=1", "ETag", "\"a\""),
                     KV("CACHE-CONTROL", "max-age=2"),
                     KV("CACHE-CONTROL", "max-age=2", "ETag", "\"a\""));
}

static void test_merge_new_fields_appended_in_order(void **state)
{
    (void)state;
    merge_and_expect(KV("Date", D0, "Content-Type", "text/html"),
                     KV("X-B", "b", "Date", D1, "X-A", "a", "X-B", "b2"),
                     KV("Date", D1, "Content-Type", "text/html", "X-B", "b", "X-A", "a", "X-B",
                        "b2"));
}

static void test_merge_keeps_content_length(void **state)
{
    (void)state;
    /* The fields that describe the stored bytes stay those of the stored bytes. */
    merge_and_expect(KV("Content-Length", "1000", "ETag", "\"a\"", "Content-Encoding", "gzip",
                        "Content-Range", "bytes 0-9/10", "Content-MD5", "m1", "X", "old"),
                     KV("Content-Length", "0", "ETag", "\"b\"", "content-encoding", "br",
                        "Content-Range", "bytes 0-1/2", "Content-MD5", "m2", "X", "new"),
                     KV("Content-Length", "1000", "ETag", "\"a\"", "Content-Encoding", "gzip",
                        "Content-Range", "bytes 0-9/10", "Content-MD5", "m1", "X", "new"));
    /* not added either when the stored response had none */
    merge_and_expect(KV("ETag", "\"a\""), KV("content-length", "0"), KV("ETag", "\"a\""));
}

static void test_merge_skips_hop_by_hop(void **state)
{
    (void)state;
    merge_and_expect(
        KV("Date", D0, "Keep-Alive", "stored", "X-Trace", "s"),
        KV("Connection", "keep-alive, X-Trace", "Keep-Alive", "timeout=5", "Transfer-Encoding",
           "chunked", "TE", "trailers", "Trailer", "X", "Upgrade", "h2c", "Proxy-Authenticate",
           "Basic", "X-Trace", "hop", "Date", D1, "Age", "3"),
        /* stored fields of those names stay as they were */
        KV("Date", D1, "Keep-Alive", "stored", "X-Trace", "s", "Age", "3"));
}

static void test_merge_updates_content_fields(void **state)
{
    (void)state;
    /* only Content-Length is protected; other metadata follows the 304 */
    merge_and_expect(KV("Content-Type", "text/plain", "Content-Encoding", "gzip", "Expires", D0),
                     KV("Content-Type", "text/plain; charset=utf-8", "Expires", D2),
                     KV("Content-Type", "text/plain; charset=utf-8", "Content-Encoding", "gzip",
                        "Expires", D2));
}

/* ---- fields of a 304 sent by the cache ---------------------------------------------------- */

static void test_304_fields(void **state)
{
    (void)state;
    struct hdrs s, out;
    fill(&s, KV("Date", D0, "Content-Length", "42", "ETag", "\"a\"", "Connection", "X-Hop",
                "X-Hop", "1", "Transfer-Encoding", "chunked", "Cache-Control", "max-age=60",
                "Set-Cookie", "a=1", "Set-Cookie", "b=2", "content-length", "42"));
    hdrs_init(&out);
    assert_int_equal(cond_304_fields(&s, &out), CP_OK);
    expect_fields(&out, KV("Date", D0, "ETag", "\"a\"", "Cache-Control", "max-age=60",
                           "Set-Cookie", "a=1", "Set-Cookie", "b=2"));
    hdrs_free(&out);
    hdrs_free(&s);

    fill(&s, NONE);
    hdrs_init(&out);
    assert_int_equal(cond_304_fields(&s, &out), CP_OK);
    assert_int_equal(out.n, 0);
    hdrs_free(&out);
    hdrs_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_weak_match),
        cmocka_unit_test(test_etag_strong_match),
        cmocka_unit_test(test_etag_malformed_never_match),
        cmocka_unit_test(test_etag_obs_text_and_punctuation),
        cmocka_unit_test(test_inm_single),
        cmocka_unit_test(test_inm_weak_comparison),
        cmocka_unit_test(test_inm_list),
        cmocka_unit_test(test_inm_comma_inside_tag),
        cmocka_unit_test(test_inm_malformed_members_skipped),
        cmocka_unit_test(test_inm_star),
        cmocka_unit_test(test_only_status_200),
        cmocka_unit_test(test_no_condition),
        cmocka_unit_test(test_ims_last_modified),
        cmocka_unit_test(test_ims_other_date_formats),
        cmocka_unit_test(test_ims_falls_back_to_date_then_response_time),
        cmocka_unit_test(test_ims_invalid_ignored),
        cmocka_unit_test(test_inm_takes_precedence_over_ims),
        cmocka_unit_test(test_has_validator),
        cmocka_unit_test(test_add_validators_both),
        cmocka_unit_test(test_add_validators_partial_or_none),
        cmocka_unit_test(test_merge_replaces_in_place),
        cmocka_unit_test(test_merge_nothing_to_update),
        cmocka_unit_test(test_merge_repeated_names),
        cmocka_unit_test(test_merge_case_insensitive_names),
        cmocka_unit_test(test_merge_new_fields_appended_in_order),
        cmocka_unit_test(test_merge_keeps_content_length),
        cmocka_unit_test(test_merge_skips_hop_by_hop),
        cmocka_unit_test(test_merge_updates_content_fields),
        cmocka_unit_test(test_304_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
