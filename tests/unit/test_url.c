/* Unit tests for url.c: parsing --origin, turning request targets into origin URLs
 * (which are also cache keys, so byte-exactness matters), resolving redirects and
 * deciding whether a URL stays on the origin. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "url.h"

/* ---- url_parse_origin ---- */

static void check_origin(const char *in, const char *scheme, const char *host, int port,
                         const char *base, const char *prefix)
{
    struct origin o;
    assert_int_equal(url_parse_origin(in, &o), CP_OK);
    assert_string_equal(o.scheme, scheme);
    assert_string_equal(o.host, host);
    assert_int_equal(o.port, port);
    assert_string_equal(o.base_path, base);
    assert_string_equal(o.prefix, prefix);
    url_origin_free(&o);
    assert_null(o.prefix);
}

static void origin_plain(void **state)
{
    (void)state;
    check_origin("http://example.com", "http", "example.com", 80, "", "http://example.com");
    check_origin("https://dummyjson.com", "https", "dummyjson.com", 443, "",
                 "https://dummyjson.com");
    check_origin("https://dummyjson.com/", "https", "dummyjson.com", 443, "",
                 "https://dummyjson.com");
}

static void origin_ports(void **state)
{
    (void)state;
    check_origin("http://h:8080", "http", "h", 8080, "", "http://h:8080");
    /* an explicit default port is the same origin as none */
    check_origin("http://h:80/", "http", "h", 80, "", "http://h");
    check_origin("https://h:443/", "https", "h", 443, "", "https://h");
    /* the other scheme's default is not a default here */
    check_origin("https://h:80/", "https", "h", 80, "", "https://h:80");
    check_origin("http://h:443", "http", "h", 443, "", "http://h:443");
    check_origin("http://h:65535", "http", "h", 65535, "", "http://h:65535");
}

static void origin_case_and_paths(void **state)
{
    (void)state;
    check_origin("HTTP://Example.COM/Api/", "http", "example.com", 80, "/Api",
                 "http://example.com/Api");
    check_origin("http://h/api", "http", "h", 80, "/api", "http://h/api");
    check_origin("http://h/api///", "http", "h", 80, "/api", "http://h/api");
    check_origin("http://h/a/b/", "http", "h", 80, "/a/b", "http://h/a/b");
    check_origin("http://h///", "http", "h", 80, "", "http://h");
    check_origin("http://h/v1%20x/", "http", "h", 80, "/v1%20x", "http://h/v1%20x");
}

static void origin_ipv6_ipv4(void **state)
{
    (void)state;
    check_origin("http://[::1]:8080/x", "http", "::1", 8080, "/x", "http://[::1]:8080/x");
    check_origin("https://[2001:DB8::1]/", "https", "2001:db8::1", 443, "",
                 "https://[2001:db8::1]");
    check_origin("http://127.0.0.1:3001", "http", "127.0.0.1", 3001, "",
                 "http://127.0.0.1:3001");
}

static void origin_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://example.com/", "file:///etc/passwd", "example.com", "/relative",
        "relative/path", "", "http://", "http:///x", "http:/h/x", "http:h",
        "http://:80/", "http://h/?", "http://h/?a=1", "http://h/#", "http://h/#frag",
        "http://u@h/", "http://u:p@h/", "http://:p@h/", "http://h:0/",
        "http://h:65536/", "http://h:x/", "http://h/a b", "http://[fe80::1%25eth0]/",
        "mailto:x@example.com", "//h/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct origin o;
        memset(&o, 0x5a, sizeof o);
        cp_err err = url_parse_origin(bad[i], &o);
        if (err != CP_ERR_BAD_ORIGIN)
            fail_msg("'%s' gave %d", bad[i], err);
        /* zeroed on failure, so freeing is harmless */
        assert_null(o.scheme);
        assert_null(o.host);
        assert_null(o.base_path);
        assert_null(o.prefix);
        assert_int_equal(o.port, 0);
        url_origin_free(&o);
    }
    struct origin o;
    assert_int_equal(url_parse_origin(NULL, &o), CP_ERR_BAD_ORIGIN);
    url_origin_free(NULL);
}

/* ---- url_for_target ---- */

struct fixture {
    struct origin plain; /* http://example.com */
    struct origin based; /* https://api.example.com:8443/v1 */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || url_parse_origin("http://example.com", &f->plain) != CP_OK ||
        url_parse_origin("https://API.example.com:8443/v1/", &f->based) != CP_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    url_origin_free(&f->plain);
    url_origin_free(&f->based);
    free(f);
    return 0;
}

static void expect_target(const struct origin *o, const char *target, const char *host,
                          const char *want)
{
    char *out = (char *)0x1;
    cp_err err = url_for_target(o, target, host, &out);
    if (err != CP_OK)
        fail_msg("'%s' gave %d", target, err);
    assert_string_equal(out, want);
    free(out);
}

static void expect_bad_target(const struct origin *o, const char *target, const char *host)
{
    char *out = (char *)0x1;
    cp_err err = url_for_target(o, target, host, &out);
    if (err != CP_ERR_BAD_TARGET)
        fail_msg("'%s' gave %d", target, err);
    assert_null(out);
}

static void target_origin_form(void **state)
{
    struct fixture *f = *state;
    expect_target(&f->plain, "/", "localhost:3000", "http://example.com/");
    expect_target(&f->plain, "/products", NULL, "http://example.com/products");
    expect_target(&f->plain, "/p?q=1&r=2", NULL, "http://example.com/p?q=1&r=2");
    expect_target(&f->plain, "/p?", NULL, "http://example.com/p?");
    expect_target(&f->plain, "/?x", NULL, "http://example.com/?x");
    expect_target(&f->plain, "//double", NULL, "http://example.com//double");
    expect_target(&f->based, "/users/1", NULL, "https://api.example.com:8443/v1/users/1");
    expect_target(&f->based, "/", NULL, "https://api.example.com:8443/v1/");
    expect_target(&f->based, "/?a=b", NULL, "https://api.example.com:8443/v1/?a=b");
}

static void target_bytes_kept(void **state)
{
    struct fixture *f = *state;
    /* no decoding, no re-encoding, no case change of escapes, odd characters kept */
    expect_target(&f->plain, "/a%2Fb%2fc", NULL, "http://example.com/a%2Fb%2fc");
    expect_target(&f->plain, "/%7Euser/%zz%", NULL, "http://example.com/%7Euser/%zz%");
    expect_target(&f->plain, "/s?q=a+b%20c&x=%E2%82%AC", NULL,
                  "http://example.com/s?q=a+b%20c&x=%E2%82%AC");
    expect_target(&f->plain, "/p;a=1,b/[x]{y}|z^`'\"", NULL,
                  "http://example.com/p;a=1,b/[x]{y}|z^`'\"");
    expect_target(&f->plain, "/\xc3\xa9t\xc3\xa9", NULL, "http://example.com/\xc3\xa9t\xc3\xa9");
    expect_target(&f->plain, "/a/./b/../c", NULL, "http://example.com/a/./b/../c");
    expect_target(&f->plain, "/q?a=/../b", NULL, "http://example.com/q?a=/../b");
    expect_target(&f->plain, "/A/B?C=D", NULL, "http://example.com/A/B?C=D");
}

static void target_fragment_dropped(void **state)
{
    struct fixture *f = *state;
    expect_target(&f->plain, "/p#frag", NULL, "http://example.com/p");
    expect_target(&f->plain, "/p?q=1#frag?x", NULL, "http://example.com/p?q=1");
}

static void target_stays_under_base(void **state)
{
    struct fixture *f = *state;
    expect_target(&f->based, "/a/../b", NULL, "https://api.example.com:8443/v1/a/../b");
    /* A dot segment next to an encoded slash or a backslash, which curl leaves alone
     * but an origin may take for a separator ("/v1/..%2fsecret" is "/secret" to it). */
    expect_bad_target(&f->based, "/..%2f", NULL);
    expect_bad_target(&f->based, "/..%2Fsecret/s.txt", NULL);
    expect_bad_target(&f->based, "/%2e%2e%2fsecret", NULL);
    expect_bad_target(&f->based, "/a%2f..%2f..%2fx", NULL);
    expect_bad_target(&f->based, "/..\\x", NULL);
    expect_bad_target(&f->based, "/a\\..\\..\\x", NULL);
    expect_bad_target(&f->based, "/..%5cx", NULL);
    expect_bad_target(&f->based, "/x/.%5C", NULL);
    /* ...or with path parameters, which some servers strip before resolving. */
    expect_bad_target(&f->based, "/..;/secret", NULL);
    expect_bad_target(&f->based, "/a/.;x/../..;y/z", NULL);
    expect_target(&f->based, "/a;b/..x;c", NULL, "https://api.example.com:8443/v1/a;b/..x;c");
    expect_target(&f->based, "/a%2fb/c", NULL, "https://api.example.com:8443/v1/a%2fb/c");
    expect_target(&f->based, "/a\\b", NULL, "https://api.example.com:8443/v1/a\\b");
    expect_target(&f->based, "/..x%2f/y", NULL, "https://api.example.com:8443/v1/..x%2f/y");
    expect_target(&f->plain, "/..%2fx", NULL, "http://example.com/..%2fx");
    expect_bad_target(&f->based, "/../admin", NULL);
    expect_bad_target(&f->based, "/a/../../v2/x", NULL);
    expect_bad_target(&f->based, "/..", NULL);
    /* "/v1x" is not under "/v1" */
    expect_bad_target(&f->based, "/../v1x", NULL);
    /* Dots written percent-encoded are dot segments to an origin that decodes them. */
    expect_bad_target(&f->based, "/%2e%2e/admin", NULL);
    expect_bad_target(&f->based, "/a/%2E%2e/%2e./x", NULL);
    expect_bad_target(&f->based, "/.%2e", NULL);
    expect_bad_target(&f->based, "/%2e/x?q", NULL);
    /* ...but not dots that are part of a name, nor anything in the query. */
    expect_target(&f->based, "/%2e%2ex/a", NULL, "https://api.example.com:8443/v1/%2e%2ex/a");
    expect_target(&f->based, "/a%2e/b", NULL, "https://api.example.com:8443/v1/a%2e/b");
    expect_target(&f->based, "/a?x=/%2e%2e/", NULL, "https://api.example.com:8443/v1/a?x=/%2e%2e/");
    expect_target(&f->based, "/%2e%2e%2e/a", NULL, "https://api.example.com:8443/v1/%2e%2e%2e/a");
    /* Without a base path there is nothing to climb out of. */
    expect_target(&f->plain, "/%2e%2e/x", NULL, "http://example.com/%2e%2e/x");
}

/* What curl's URL parser makes of prefix + target: whether it accepts it, and whether
 * the path it resolves stays under `base` (the checks every target once went through). */
static bool curl_accepts_under(const char *prefix, const char *target, const char *base)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", prefix, target);
    CURLU *h = curl_url();
    assert_non_null(h);
    char *path = NULL;
    bool ok = curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_PATH, &path, 0) == CURLUE_OK;
    size_t bl = strlen(base);
    ok = ok && strncmp(path, base, bl) == 0 && (path[bl] == '\0' || path[bl] == '/');
    curl_free(path);
    curl_url_cleanup(h);
    return ok;
}

/* Targets that skip curl's parser are exactly as accepted as those that go through
 * it: every printable character, alone and next to slashes and dots, in the path and
 * in the query, gives the same verdict as curl's parse plus the base-path check, but
 * for a dot segment next to a backslash, which is refused (a separator to some
 * origins, not to curl). */
static void target_same_verdict_as_curl(void **state)
{
    struct fixture *f = *state;
    static const char *const shapes[] = {"/%c", "/a%cb", "/a/%c", "/a/%c%c", "/%c/..",
                                         "/a/%c./b", "/a?%c", "/a?/../%c", "/..%c",
                                         "/.%c", "/a/.%c/../..", "/a%c/.."};
    unsigned accepted = 0;
    for (int c = 0x21; c < 0x7f; c++) {
        if (c == '#')
            continue; /* the fragment is cut off first */
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            char target[32];
            snprintf(target, sizeof target, shapes[i], c, c);
            char *out = NULL;
            cp_err err = url_for_target(&f->based, target, NULL, &out);
            bool want = curl_accepts_under(f->based.prefix, target, f->based.base_path) &&
                        strstr(target, "\\.") == NULL && strstr(target, ".\\") == NULL &&
                        strstr(target, "/.;") == NULL && strstr(target, "/..;") == NULL;
            if ((err == CP_OK) != want)
                fail_msg("'%s': url_for_target gave %d, curl's verdict %d", target, err, want);
            if (err == CP_OK) {
                char joined[256];
                snprintf(joined, sizeof joined, "%s%s", f->based.prefix, target);
                assert_string_equal(out, joined);
                accepted++;
            }
            free(out);
        }
    }
    assert_true(accepted > 500); /* most of the grid is accepted */
}

static void target_absolute_form(void **state)
{
    struct fixture *f = *state;
    /* the proxy itself, as named by the Host header */
    expect_target(&f->plain, "http://localhost:3000/p?q=%41", "localhost:3000",
                  "http://example.com/p?q=%41");
    expect_target(&f->plain, "http://LOCALHOST:3000/p", "localhost:3000",
                  "http://example.com/p");
    expect_target(&f->plain, "HTTP://proxy/x", "Proxy", "http://example.com/x");
    expect_target(&f->plain, "http://proxy:80/x", "proxy", "http://example.com/x");
    expect_target(&f->plain, "http://proxy/x", "proxy:80", "http://example.com/x");
    expect_target(&f->plain, "http://[::1]:3000/x", "[::1]:3000", "http://example.com/x");
    /* the origin's own authority */
    expect_target(&f->plain, "http://example.com/y?z", NULL, "http://example.com/y?z");
    expect_target(&f->plain, "http://EXAMPLE.com:80/y", "localhost:3000",
                  "http://example.com/y");
    expect_target(&f->based, "https://api.example.com:8443/u", NULL,
                  "https://api.example.com:8443/v1/u");
    /* empty path, query only, fragment */
    expect_target(&f->plain, "http://example.com", NULL, "http://example.com/");
    expect_target(&f->plain, "http://example.com?q", NULL, "http://example.com/?q");
    expect_target(&f->plain, "http://example.com/p#f", NULL, "http://example.com/p");
    /* path bytes kept */
    expect_target(&f->plain, "http://example.com/a/%2E%2e/./b", NULL,
                  "http://example.com/a/%2E%2e/./b");
}

static void target_absolute_other_host(void **state)
{
    struct fixture *f = *state;
    expect_bad_target(&f->plain, "http://evil.com/p", "localhost:3000");
    expect_bad_target(&f->plain, "http://localhost:3001/p", "localhost:3000");
    expect_bad_target(&f->plain, "http://localhost/p", "localhost:3000");
    expect_bad_target(&f->plain, "http://example.com:8080/p", "localhost:3000");
    /* the origin on its https port is another authority for an http origin */
    expect_bad_target(&f->plain, "https://example.com/p", NULL);
    expect_bad_target(&f->based, "https://api.example.com/u", NULL);
    expect_bad_target(&f->plain, "http://example.com.evil.com/p", NULL);
    expect_bad_target(&f->plain, "http://user@example.com/p", NULL);
    expect_bad_target(&f->plain, "http://user:pw@localhost:3000/p", "localhost:3000");
    expect_bad_target(&f->plain, "http://evil.com/p", "");
    expect_bad_target(&f->plain, "http://evil.com/p", "evil.com/x");
    expect_bad_target(&f->plain, "ftp://example.com/p", NULL);
    expect_bad_target(&f->plain, "http:/example.com/p", NULL);
    expect_bad_target(&f->plain, "http:///example.com/p", NULL);
}

static void target_bad_forms(void **state)
{
    struct fixture *f = *state;
    expect_bad_target(&f->plain, "*", "localhost:3000");
    expect_bad_target(&f->plain, "example.com:443", "localhost:3000");
    expect_bad_target(&f->plain, "localhost:3000", "localhost:3000");
    expect_bad_target(&f->plain, "", NULL);
    expect_bad_target(&f->plain, NULL, NULL);
    expect_bad_target(&f->plain, "p", NULL);
    expect_bad_target(&f->plain, "?q", NULL);
    expect_bad_target(&f->plain, "/a b", NULL);
    expect_bad_target(&f->plain, "/a?b c", NULL);
    expect_bad_target(&f->plain, "/a\tb", NULL);
    expect_bad_target(&f->plain, "/a\r\nHost: x", NULL);
    expect_bad_target(&f->plain, "/a\x7f", NULL);
    expect_bad_target(&f->plain, "/a\x01", NULL);
    expect_bad_target(&f->plain, " /a", NULL);
    expect_bad_target(&f->plain, "http://example.com/a b", NULL);
}

/* ---- url_resolve ---- */

static void expect_resolve(const char *base, const char *loc, const char *want)
{
    char *out = NULL;
    cp_err err = url_resolve(base, loc, &out);
    if (err != CP_OK)
        fail_msg("'%s' against '%s' gave %d", loc, base, err);
    assert_string_equal(out, want);
    free(out);
}

static void resolve_cases(void **state)
{
    (void)state;
    const char *b = "http://h/a/b?x=1";
    expect_resolve(b, "https://o.example:8443/z", "https://o.example:8443/z");
    expect_resolve(b, "/root?y", "http://h/root?y");
    expect_resolve(b, "c", "http://h/a/c");
    expect_resolve(b, "../c", "http://h/c");
    expect_resolve(b, "?y=2", "http://h/a/b?y=2");
    expect_resolve(b, "//other/x", "http://other/x");
    expect_resolve(b, "#sec", "http://h/a/b?x=1#sec");
    expect_resolve(b, "/p%2Fq", "http://h/p%2Fq");
    /* what libcurl itself sends for spaces in a Location */
    expect_resolve(b, "/a b", "http://h/a%20b");
    expect_resolve("https://h:8443/", "x", "https://h:8443/x");
}

static void resolve_errors(void **state)
{
    (void)state;
    char *out = (char *)0x1;
    assert_int_equal(url_resolve("http://h/", "", &out), CP_ERR_BAD_TARGET);
    assert_null(out);
    out = (char *)0x1;
    assert_int_equal(url_resolve("not a url", "/x", &out), CP_ERR_BAD_TARGET);
    assert_null(out);
    out = (char *)0x1;
    assert_int_equal(url_resolve("http://h/", "http:other", &out), CP_ERR_BAD_TARGET);
    assert_null(out);
    out = (char *)0x1;
    assert_int_equal(url_resolve("http://h/", "/a\x01", &out), CP_ERR_BAD_TARGET);
    assert_null(out);
    assert_int_equal(url_resolve(NULL, "/x", &out), CP_ERR_BAD_TARGET);
    assert_int_equal(url_resolve("http://h/", NULL, &out), CP_ERR_BAD_TARGET);
}

/* ---- url_on_origin ---- */

static void on_origin_http80(void **state)
{
    (void)state;
    struct origin o;
    assert_int_equal(url_parse_origin("http://Example.com/api", &o), CP_OK);
    assert_true(url_on_origin(&o, "http://example.com/x"));
    assert_true(url_on_origin(&o, "http://EXAMPLE.COM:80/other/path?q"));
    /* the base path does not matter, only the host */
    assert_true(url_on_origin(&o, "http://example.com/"));
    /* the upgrade to https on its default port */
    assert_true(url_on_origin(&o, "https://example.com/x"));
    assert_true(url_on_origin(&o, "https://example.com:443/x"));
    assert_false(url_on_origin(&o, "https://example.com:8443/x"));
    assert_false(url_on_origin(&o, "http://example.com:8080/x"));
    assert_false(url_on_origin(&o, "http://www.example.com/x"));
    assert_false(url_on_origin(&o, "http://example.com.evil/x"));
    assert_false(url_on_origin(&o, "ftp://example.com/x"));
    assert_false(url_on_origin(&o, "/relative"));
    assert_false(url_on_origin(&o, "garbage"));
    assert_false(url_on_origin(&o, ""));
    assert_false(url_on_origin(&o, NULL));
    url_origin_free(&o);
}

static void on_origin_other_ports(void **state)
{
    (void)state;
    struct origin o;
    /* http on another port: no upgrade */
    assert_int_equal(url_parse_origin("http://h:8080", &o), CP_OK);
    assert_true(url_on_origin(&o, "http://h:8080/x"));
    assert_false(url_on_origin(&o, "https://h/x"));
    assert_false(url_on_origin(&o, "http://h/x"));
    url_origin_free(&o);

    /* https: never a downgrade */
    assert_int_equal(url_parse_origin("https://h", &o), CP_OK);
    assert_true(url_on_origin(&o, "https://h/x"));
    assert_true(url_on_origin(&o, "https://H:443/x"));
    assert_false(url_on_origin(&o, "http://h/x"));
    assert_false(url_on_origin(&o, "http://h:443/x"));
    url_origin_free(&o);

    /* credentials in a redirect are not followed */
    assert_int_equal(url_parse_origin("http://h:8080", &o), CP_OK);
    assert_true(url_on_origin(&o, "http://h:8080/x"));
    assert_false(url_on_origin(&o, "http://evil:pw@h:8080/x"));
    assert_false(url_on_origin(&o, "http://evil@h:8080/x"));
    url_origin_free(&o);

    assert_int_equal(url_parse_origin("http://[::1]:9000", &o), CP_OK);
    assert_true(url_on_origin(&o, "http://[::1]:9000/x"));
    assert_false(url_on_origin(&o, "http://[::2]:9000/x"));
    url_origin_free(&o);
}

/* The key joins URL and Host; the Host's case does not matter, the URL's does, and the
 * URL comes back out whole. */
static void cache_key_and_back(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *none = NULL, *url = NULL;
    assert_int_equal(url_cache_key("http://o/p?q=1", "Proxy.Example:3000", &a), CP_OK);
    assert_string_equal(a, "http://o/p?q=1 proxy.example:3000");
    assert_int_equal(url_cache_key("http://o/p?q=1", "proxy.example:3000", &b), CP_OK);
    assert_string_equal(a, b);
    assert_int_equal(url_cache_key("http://o/p?q=1", "evil.example", &c), CP_OK);
    assert_string_not_equal(a, c);
    assert_int_equal(url_cache_key("http://o/P?q=1", "proxy.example:3000", &d), CP_OK);
    assert_string_not_equal(a, d);
    assert_int_equal(url_cache_key("http://o/p", NULL, &none), CP_OK);
    assert_string_equal(none, "http://o/p ");

    assert_int_equal(url_of_key(a, &url), CP_OK);
    assert_string_equal(url, "http://o/p?q=1");
    free(url);
    assert_int_equal(url_of_key(none, &url), CP_OK);
    assert_string_equal(url, "http://o/p");
    free(url);
    assert_int_equal(url_of_key("http://o/p", &url), CP_ERR_BAD_TARGET);
    assert_null(url);
    assert_int_equal(url_of_key(" host", &url), CP_ERR_BAD_TARGET);
    assert_null(url);
    free(a);
    free(b);
    free(c);
    free(d);
    free(none);
}

static void target_authority(void **state)
{
    (void)state;
    char *a = (char *)0x1;
    assert_int_equal(url_target_authority("/p?q", &a), CP_OK);
    assert_null(a);
    assert_int_equal(url_target_authority("http://Proxy.Example:3000/p?q", &a), CP_OK);
    assert_string_equal(a, "Proxy.Example:3000");
    free(a);
    assert_int_equal(url_target_authority("HTTPS://[::1]:8443?q", &a), CP_OK);
    assert_string_equal(a, "[::1]:8443");
    free(a);
    assert_int_equal(url_target_authority("http://h", &a), CP_OK);
    assert_string_equal(a, "h");
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(origin_plain),
        cmocka_unit_test(origin_ports),
        cmocka_unit_test(origin_case_and_paths),
        cmocka_unit_test(origin_ipv6_ipv4),
        cmocka_unit_test(origin_rejects),
        cmocka_unit_test_setup_teardown(target_origin_form, setup, teardown),
        cmocka_unit_test_setup_teardown(target_bytes_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(target_fragment_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(target_stays_under_base, setup, teardown),
        cmocka_unit_test_setup_teardown(target_same_verdict_as_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(target_absolute_form, setup, teardown),
        cmocka_unit_test_setup_teardown(target_absolute_other_host, setup, teardown),
        cmocka_unit_test_setup_teardown(target_bad_forms, setup, teardown),
        cmocka_unit_test(resolve_cases),
        cmocka_unit_test(resolve_errors),
        cmocka_unit_test(on_origin_http80),
        cmocka_unit_test(on_origin_other_ports),
        cmocka_unit_test(cache_key_and_back),
        cmocka_unit_test(target_authority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
