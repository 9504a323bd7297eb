/* Unit tests for cli.c: defaults, each option, each way argv can be wrong (with the
 * code and the detail that names the culprit), the precedence of --help/--version,
 * the cache directory defaults and parsing more than once in a process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_ARGS 32

/* Runs cli_parse on "caching-proxy" followed by the NULL-terminated arguments. The
 * argv array is rebuilt on every call since getopt_long permutes it. */
struct run {
    struct config cfg;
    char why[256];
    cp_err err;
};

static cp_err run_env(struct run *r, const char *xdg, const char *home, unsigned ncpu, ...)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "caching-proxy";
    va_list ap;
    va_start(ap, ncpu);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    memset(r->why, 'x', sizeof r->why);
    r->why[sizeof r->why - 1] = '\0';
    r->err = cli_parse(argc, argv, xdg, home, ncpu, &r->cfg, r->why, sizeof r->why);
    return r->err;
}

#define RUN(r, ...) run_env((r), "/xdg", "/home/u", 4, __VA_ARGS__, (const char *)NULL)
#define SERVE "--port", "3000", "--origin", "http://example.com"

/* Checks code and detail, and that the config can be freed after a failure. */
static void expect_fail(struct run *r, cp_err want, const char *why)
{
    if (r->err != want)
        fail_msg("got %d (%s: %s), wanted %d", r->err, cp_strerror(r->err), r->why, want);
    assert_string_equal(r->why, why);
    cli_config_free(&r->cfg);
}

static void defaults(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, SERVE), CP_OK);
    assert_string_equal(r.why, "");
    assert_int_equal(r.cfg.action, CLI_SERVE);
    assert_int_equal(r.cfg.port, 3000);
    assert_null(r.cfg.bind);
    assert_string_equal(r.cfg.origin_url, "http://example.com");
    assert_string_equal(r.cfg.origin.prefix, "http://example.com");
    assert_string_equal(r.cfg.origin.host, "example.com");
    assert_string_equal(r.cfg.cache_dir, "/xdg/caching-proxy");
    assert_int_equal(r.cfg.default_ttl, CLI_DEFAULT_TTL);
    assert_int_equal(r.cfg.default_ttl, 300);
    assert_int_equal(r.cfg.threads, 4);
    assert_int_equal(r.cfg.max_connections, 0); /* as many as the files allow */
    assert_int_equal(r.cfg.header_memory, 32 * 1024);
    assert_null(r.cfg.origin_cacert);
    assert_int_equal(r.cfg.connect_timeout_ms, 10000);
    assert_int_equal(r.cfg.origin_timeout_ms, 60000);
    assert_true(r.cfg.follow_redirects);
    assert_true(r.cfg.batch_scheduling);
    assert_int_equal(r.cfg.max_object_size, 16u << 20);
    assert_int_equal(r.cfg.max_request_body, 64u << 20);
    assert_false(r.cfg.verbose);
    assert_false(r.cfg.quiet);
    cli_config_free(&r.cfg);
    assert_null(r.cfg.origin_url);
    assert_null(r.cfg.cache_dir);
    cli_config_free(&r.cfg); /* twice is harmless */
    cli_config_free(NULL);
}

static void every_option(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, "--port", "65535", "--origin", "https://API.example.com:8443/v1/",
                         "--cache-dir", "/tmp/c", "--default-ttl", "0", "--threads", "1024",
                         "--bind", "127.0.0.1", "--origin-cacert", "/etc/ca.pem",
                         "--connect-timeout", "0.5", "--origin-timeout", "2.25",
                         "--no-follow-redirects", "--max-object-size", "1K",
                         "--max-request-body", "2M", "--verbose", "--scheduling", "normal",
                         "--max-connections", "1000000", "--header-memory", "1M"),
                     CP_OK);
    assert_int_equal(r.cfg.action, CLI_SERVE);
    assert_int_equal(r.cfg.port, 65535);
    assert_string_equal(r.cfg.origin_url, "https://API.example.com:8443/v1/");
    assert_string_equal(r.cfg.origin.prefix, "https://api.example.com:8443/v1");
    assert_string_equal(r.cfg.origin.base_path, "/v1");
    assert_int_equal(r.cfg.origin.port, 8443);
    assert_string_equal(r.cfg.cache_dir, "/tmp/c");
    assert_int_equal(r.cfg.default_ttl, 0);
    assert_int_equal(r.cfg.threads, 1024);
    assert_int_equal(r.cfg.max_connections, 1000000);
    assert_int_equal(r.cfg.header_memory, 1u << 20);
    assert_string_equal(r.cfg.bind, "127.0.0.1");
    assert_string_equal(r.cfg.origin_cacert, "/etc/ca.pem");
    assert_int_equal(r.cfg.connect_timeout_ms, 500);
    assert_int_equal(r.cfg.origin_timeout_ms, 2250);
    assert_false(r.cfg.follow_redirects);
    assert_false(r.cfg.batch_scheduling);
    assert_int_equal(r.cfg.max_object_size, 1024);
    assert_int_equal(r.cfg.max_request_body, 2u << 20);
    assert_true(r.cfg.verbose);
    assert_false(r.cfg.quiet);
    cli_config_free(&r.cfg);

    /* "--opt=value" and short flags */
    assert_int_equal(RUN(&r, "--port=1", "--origin=http://[::1]:9/", "--bind=::1", "-q",
                         "--threads=1", "--default-ttl=86400", "--max-connections=1",
                         "--header-memory=8192"),
                     CP_OK);
    assert_int_equal(r.cfg.port, 1);
    assert_string_equal(r.cfg.origin.prefix, "http://[::1]:9");
    assert_string_equal(r.cfg.bind, "::1");
    assert_true(r.cfg.quiet);
    assert_false(r.cfg.verbose);
    assert_int_equal(r.cfg.threads, 1);
    assert_int_equal(r.cfg.max_connections, 1);
    assert_int_equal(r.cfg.header_memory, 8192);
    assert_int_equal(r.cfg.default_ttl, 86400);
    cli_config_free(&r.cfg);
}

static void last_value_wins(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, SERVE, "--origin", "https://b.example", "--port", "81",
                         "--cache-dir", "/a", "--cache-dir", "/b", "--bind", "1.2.3.4",
                         "--bind", "::", "--origin-cacert", "x", "--origin-cacert", "y"),
                     CP_OK);
    assert_string_equal(r.cfg.origin.host, "b.example");
    assert_int_equal(r.cfg.port, 81);
    assert_string_equal(r.cfg.cache_dir, "/b");
    assert_string_equal(r.cfg.bind, "::");
    assert_string_equal(r.cfg.origin_cacert, "y");
    cli_config_free(&r.cfg);

    /* -v and -q never both hold */
    assert_int_equal(RUN(&r, SERVE, "-v", "-q"), CP_OK);
    assert_true(r.cfg.quiet);
    assert_false(r.cfg.verbose);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, SERVE, "-qv"), CP_OK);
    assert_true(r.cfg.verbose);
    assert_false(r.cfg.quiet);
    cli_config_free(&r.cfg);
}

static void threads_default(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(run_env(&r, "/x", NULL, 0, SERVE, (const char *)NULL), CP_OK);
    assert_int_equal(r.cfg.threads, 1);
    cli_config_free(&r.cfg);
    assert_int_equal(run_env(&r, "/x", NULL, 4096, SERVE, (const char *)NULL), CP_OK);
    assert_int_equal(r.cfg.threads, 1024);
    cli_config_free(&r.cfg);
    assert_int_equal(run_env(&r, "/x", NULL, 12, SERVE, (const char *)NULL), CP_OK);
    assert_int_equal(r.cfg.threads, 12);
    cli_config_free(&r.cfg);
}

static void usage_errors(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, SERVE, "--foo");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '--foo'");
    RUN(&r, SERVE, "--foo=bar");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '--foo'");
    RUN(&r, SERVE, "-x");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '-x'");
    RUN(&r, "-vz", SERVE);
    expect_fail(&r, CP_ERR_USAGE, "unknown option '-z'");
    RUN(&r, SERVE, "-p", "80");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '-p'");
    /* "--c" could be --clear-cache, --cache-dir or --connect-timeout */
    RUN(&r, SERVE, "--c");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '--c'");
    RUN(&r, SERVE, "--verbose=1");
    expect_fail(&r, CP_ERR_USAGE, "option '--verbose' takes no value");
    RUN(&r, SERVE, "--clear-cache=yes");
    expect_fail(&r, CP_ERR_USAGE, "option '--clear-cache' takes no value");
    RUN(&r, "--origin", "http://example.com", "--port");
    expect_fail(&r, CP_ERR_USAGE, "option '--port' needs a value");
    RUN(&r, SERVE, "--max-object-size");
    expect_fail(&r, CP_ERR_USAGE, "option '--max-object-size' needs a value");
    RUN(&r, SERVE, "stray");
    expect_fail(&r, CP_ERR_USAGE, "unexpected argument 'stray'");
    RUN(&r, "--port", "3000", "extra", "--origin", "http://example.com");
    expect_fail(&r, CP_ERR_USAGE, "unexpected argument 'extra'");
    RUN(&r, SERVE, "--", "--help");
    expect_fail(&r, CP_ERR_USAGE, "unexpected argument '--help'");
    RUN(&r, "--origin", "http://example.com");
    expect_fail(&r, CP_ERR_USAGE, "--port is required");
    RUN(&r, "--port", "3000");
    expect_fail(&r, CP_ERR_USAGE, "--origin is required");
    RUN(&r, "-v");
    expect_fail(&r, CP_ERR_USAGE, "--port is required");
    RUN(&r, SERVE, "--origin-cacert", "");
    expect_fail(&r, CP_ERR_USAGE, "option '--origin-cacert' needs a value");
    /* the first problem is the one reported */
    RUN(&r, "--bogus", "--port", "0", "--origin", "http://example.com");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '--bogus'");
}

static void port_errors(void **state)
{
    (void)state;
    struct run r;
    static const char *const bad[] = {"0", "70000", "65536", "-1", "abc", "", " 80", "80 ",
                                      "0x50", "+80", "99999999999999999999999"};
    char want[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RUN(&r, "--port", bad[i], "--origin", "http://example.com");
        snprintf(want, sizeof want, "--port '%s'", bad[i]);
        expect_fail(&r, CP_ERR_BAD_PORT, want);
    }
    /* a value that looks like the next option is still taken as the value */
    RUN(&r, "--port", "--origin", "http://example.com");
    expect_fail(&r, CP_ERR_BAD_PORT, "--port '--origin'");
    assert_int_equal(RUN(&r, "--port", "080", "--origin", "http://example.com"), CP_OK);
    assert_int_equal(r.cfg.port, 80);
    cli_config_free(&r.cfg);
}

static void origin_errors(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "--port", "1", "--origin", "ftp://example.com");
    expect_fail(&r, CP_ERR_BAD_ORIGIN, "--origin 'ftp://example.com'");
    RUN(&r, "--port", "1", "--origin", "example.com");
    expect_fail(&r, CP_ERR_BAD_ORIGIN, "--origin 'example.com'");
    RUN(&r, "--port", "1", "--origin", "http://h/?q");
    expect_fail(&r, CP_ERR_BAD_ORIGIN, "--origin 'http://h/?q'");
    RUN(&r, "--port", "1", "--origin", "");
    expect_fail(&r, CP_ERR_BAD_ORIGIN, "--origin ''");
    /* checked when given, even if only clearing the cache */
    RUN(&r, "--clear-cache", "--origin", "http://u:p@h/");
    expect_fail(&r, CP_ERR_BAD_ORIGIN, "--origin 'http://u:p@h/'");
}

static void number_errors(void **state)
{
    (void)state;
    struct run r;
    static const struct {
        const char *opt, *value;
        cp_err err;
    } bad[] = {
        {"--threads", "0", CP_ERR_BAD_NUMBER},
        {"--threads", "1025", CP_ERR_BAD_NUMBER},
        {"--threads", "many", CP_ERR_BAD_NUMBER},
        {"--threads", "-2", CP_ERR_BAD_NUMBER},
        {"--max-connections", "0", CP_ERR_BAD_NUMBER},
        {"--max-connections", "1000001", CP_ERR_BAD_NUMBER},
        {"--max-connections", "10k", CP_ERR_BAD_NUMBER},
        {"--max-connections", "", CP_ERR_BAD_NUMBER},
        {"--header-memory", "8191", CP_ERR_BAD_NUMBER},
        {"--header-memory", "7K", CP_ERR_BAD_NUMBER},
        {"--header-memory", "1025K", CP_ERR_BAD_NUMBER},
        {"--header-memory", "2G", CP_ERR_BAD_NUMBER},
        {"--header-memory", "0", CP_ERR_BAD_NUMBER},
        {"--header-memory", "lots", CP_ERR_BAD_NUMBER},
        {"--default-ttl", "-1", CP_ERR_BAD_NUMBER},
        {"--default-ttl", "1.5", CP_ERR_BAD_NUMBER},
        {"--default-ttl", "5m", CP_ERR_BAD_NUMBER},
        {"--default-ttl", "", CP_ERR_BAD_NUMBER},
        {"--default-ttl", "99999999999999999999", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "0", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "0.0001", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "-1", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "1e3", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", ".", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "1,5", CP_ERR_BAD_NUMBER},
        {"--connect-timeout", "", CP_ERR_BAD_NUMBER},
        {"--origin-timeout", "inf", CP_ERR_BAD_NUMBER},
        {"--origin-timeout", "nan", CP_ERR_BAD_NUMBER},
        {"--origin-timeout", "1.2.3", CP_ERR_BAD_NUMBER},
        {"--origin-timeout", "99999999999", CP_ERR_BAD_NUMBER},
        {"--max-object-size", "1T", CP_ERR_BAD_NUMBER},
        {"--max-object-size", "1.5M", CP_ERR_BAD_NUMBER},
        {"--max-object-size", "-1", CP_ERR_BAD_NUMBER},
        {"--max-request-body", "lots", CP_ERR_BAD_NUMBER},
        {"--max-request-body", "99999999999999999999G", CP_ERR_BAD_NUMBER},
        {"--bind", "localhost", CP_ERR_BAD_ADDRESS},
        {"--bind", "[::1]", CP_ERR_BAD_ADDRESS},
        {"--bind", "256.0.0.1", CP_ERR_BAD_ADDRESS},
        {"--bind", "", CP_ERR_BAD_ADDRESS},
        {"--cache-dir", "", CP_ERR_CACHE_DIR},
    };
    char want[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RUN(&r, SERVE, bad[i].opt, bad[i].value);
        if (r.err != bad[i].err)
            fail_msg("%s '%s' gave %d", bad[i].opt, bad[i].value, r.err);
        /* the detail names the option and the value */
        snprintf(want, sizeof want, "%s '%s'", bad[i].opt, bad[i].value);
        if (strncmp(r.why, want, strlen(want)) != 0)
            fail_msg("%s '%s': why is '%s'", bad[i].opt, bad[i].value, r.why);
        cli_config_free(&r.cfg);
    }
    /* A size out of range says which are allowed. */
    RUN(&r, SERVE, "--header-memory", "4K");
    expect_fail(&r, CP_ERR_BAD_NUMBER, "--header-memory '4K' (8K-1M)");
}

static void timeouts(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        long ms;
    } ok[] = {
        {"1", 1000}, {"10", 10000}, {"0.5", 500}, {".25", 250}, {"2.", 2000},
        {"0.001", 1}, {"1.2349", 1234}, {"007", 7000}, {"1000000", 1000000000L},
    };
    struct run r;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(RUN(&r, SERVE, "--connect-timeout", ok[i].value, "--origin-timeout",
                             ok[i].value),
                         CP_OK);
        assert_int_equal(r.cfg.connect_timeout_ms, ok[i].ms);
        assert_int_equal(r.cfg.origin_timeout_ms, ok[i].ms);
        cli_config_free(&r.cfg);
    }
    RUN(&r, SERVE, "--origin-timeout", "1000001");
    expect_fail(&r, CP_ERR_BAD_NUMBER, "--origin-timeout '1000001'");
}

static void sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t v;
    } ok[] = {
        {"0", 0}, {"1", 1}, {"1024", 1024}, {"1K", 1024}, {"1k", 1024},
        {"16M", 16u << 20}, {"16m", 16u << 20}, {"1G", 1u << 30}, {"3g", (size_t)3 << 30},
        {"0K", 0}, {"00012", 12},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t v = 12345;
        if (!cli_parse_size(ok[i].s, &v))
            fail_msg("'%s' refused", ok[i].s);
        assert_int_equal(v, ok[i].v);
    }
    static const char *const bad[] = {
        "", "K", "M", "1KB", "1KiB", "1.5M", "-1", "+1", " 1", "1 ", "1T", "0x10", "1KK",
        "abc", "1e6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v = 777;
        if (cli_parse_size(bad[i], &v))
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(v, 777);
    }
    size_t v = 0;
    assert_false(cli_parse_size(NULL, &v));

    /* the edges of size_t */
    char buf[64];
    snprintf(buf, sizeof buf, "%zu", (size_t)SIZE_MAX);
    assert_true(cli_parse_size(buf, &v));
    assert_true(v == SIZE_MAX);
    snprintf(buf, sizeof buf, "%zu0", (size_t)SIZE_MAX);
    assert_false(cli_parse_size(buf, &v));
    snprintf(buf, sizeof buf, "%zuK", (size_t)(SIZE_MAX >> 10));
    assert_true(cli_parse_size(buf, &v));
    assert_true(v == (SIZE_MAX >> 10) << 10);
    snprintf(buf, sizeof buf, "%zuK", (size_t)(SIZE_MAX >> 10) + 1);
    assert_false(cli_parse_size(buf, &v));
    snprintf(buf, sizeof buf, "%zuG", (size_t)(SIZE_MAX >> 30) + 1);
    assert_false(cli_parse_size(buf, &v));
    assert_false(cli_parse_size("99999999999999999999999999999999", &v));

    struct run r;
    assert_int_equal(RUN(&r, SERVE, "--max-object-size", "0", "--max-request-body", "1G"),
                     CP_OK);
    assert_int_equal(r.cfg.max_object_size, 0);
    assert_int_equal(r.cfg.max_request_body, 1u << 30);
    cli_config_free(&r.cfg);
}

static void help_and_version(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, "--help"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "-h"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "--version"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_VERSION);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "-V"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_VERSION);
    cli_config_free(&r.cfg);

    /* they win over missing, bad and unknown options, wherever they are */
    assert_int_equal(RUN(&r, "--port", "70000", "--help"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "--help", "--foo", "stray", "--origin", "ftp://x"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "--clear-cache", "--version", "--threads", "0"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_VERSION);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, SERVE, "-V", "--port"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_VERSION);
    cli_config_free(&r.cfg);
    /* no cache directory is needed to print help */
    assert_int_equal(run_env(&r, NULL, NULL, 1, "--help", (const char *)NULL), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    /* help over version */
    assert_int_equal(RUN(&r, "--version", "--help"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "-Vh"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_HELP);
    cli_config_free(&r.cfg);
}

static void clear_cache(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, "--clear-cache"), CP_OK);
    assert_int_equal(r.cfg.action, CLI_CLEAR_CACHE);
    assert_string_equal(r.cfg.cache_dir, "/xdg/caching-proxy");
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, "--cache-dir", "/c", "--clear-cache", SERVE), CP_OK);
    assert_int_equal(r.cfg.action, CLI_CLEAR_CACHE);
    assert_string_equal(r.cfg.cache_dir, "/c");
    cli_config_free(&r.cfg);
    RUN(&r, "--clear-cache", "--port", "0");
    expect_fail(&r, CP_ERR_BAD_PORT, "--port '0'");
    run_env(&r, NULL, NULL, 1, "--clear-cache", (const char *)NULL);
    assert_int_equal(r.err, CP_ERR_CACHE_DIR);
    assert_non_null(strstr(r.why, "--cache-dir"));
    cli_config_free(&r.cfg);
}

static void cache_dir_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *xdg, *home, *want;
    } ok[] = {
        {"/xdg", "/home/u", "/xdg/caching-proxy"},
        {"/xdg/", "/home/u", "/xdg/caching-proxy"},
        {"/", NULL, "/caching-proxy"},
        {NULL, "/home/u", "/home/u/.cache/caching-proxy"},
        {NULL, "/home/u//", "/home/u/.cache/caching-proxy"},
        /* an empty or relative XDG_CACHE_HOME is ignored */
        {"", "/home/u", "/home/u/.cache/caching-proxy"},
        {"rel/cache", "/home/u", "/home/u/.cache/caching-proxy"},
        {"/xdg", NULL, "/xdg/caching-proxy"},
    };
    struct run r;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(run_env(&r, ok[i].xdg, ok[i].home, 2, SERVE, (const char *)NULL),
                         CP_OK);
        assert_string_equal(r.cfg.cache_dir, ok[i].want);
        cli_config_free(&r.cfg);
    }
    static const struct {
        const char *xdg, *home;
    } bad[] = {{NULL, NULL}, {"", ""}, {"relative", NULL}, {NULL, ""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_env(&r, bad[i].xdg, bad[i].home, 2, SERVE, (const char *)NULL);
        assert_int_equal(r.err, CP_ERR_CACHE_DIR);
        assert_non_null(strstr(r.why, "HOME"));
        cli_config_free(&r.cfg);
    }
    /* --cache-dir needs neither */
    assert_int_equal(run_env(&r, NULL, NULL, 2, SERVE, "--cache-dir", "rel", (const char *)NULL),
                     CP_OK);
    assert_string_equal(r.cfg.cache_dir, "rel");
    cli_config_free(&r.cfg);
}

static void repeated_parsing(void **state)
{
    (void)state;
    struct run r;
    /* an error half-way through a grouped flag must not leak into the next parse */
    RUN(&r, SERVE, "-vx");
    expect_fail(&r, CP_ERR_USAGE, "unknown option '-x'");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(RUN(&r, SERVE, "-v"), CP_OK);
        assert_int_equal(r.cfg.port, 3000);
        assert_true(r.cfg.verbose);
        cli_config_free(&r.cfg);
        RUN(&r, "--port", "3000");
        expect_fail(&r, CP_ERR_USAGE, "--origin is required");
        assert_int_equal(RUN(&r, "--threads", "7", SERVE), CP_OK);
        assert_int_equal(r.cfg.threads, 7);
        assert_false(r.cfg.verbose);
        cli_config_free(&r.cfg);
    }
}

static void why_buffer(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {"caching-proxy", "--port", "70000", NULL};
    /* no buffer at all */
    assert_int_equal(cli_parse(3, argv, "/x", NULL, 1, &cfg, NULL, 0), CP_ERR_BAD_PORT);
    cli_config_free(&cfg);
    /* a short buffer gets a truncated, terminated detail */
    char small[6];
    memset(small, 'z', sizeof small);
    char *argv2[] = {"caching-proxy", "--port", "70000", NULL};
    assert_int_equal(cli_parse(3, argv2, "/x", NULL, 1, &cfg, small, sizeof small),
                     CP_ERR_BAD_PORT);
    assert_string_equal(small, "--por");
    cli_config_free(&cfg);
}

/* --strict is the preset for RFC 9111 conformance; --serve-stale-on-error is off by
 * default and takes whole seconds. */
static void strict_and_stale_on_error(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, SERVE), CP_OK);
    assert_int_equal(r.cfg.serve_stale_on_error, 0);
    cli_config_free(&r.cfg);

    assert_int_equal(RUN(&r, SERVE, "--strict"), CP_OK);
    assert_int_equal(r.cfg.default_ttl, 0);
    cli_config_free(&r.cfg);
    /* The last word wins, as for every option. */
    assert_int_equal(RUN(&r, SERVE, "--strict", "--default-ttl", "30"), CP_OK);
    assert_int_equal(r.cfg.default_ttl, 30);
    cli_config_free(&r.cfg);

    assert_int_equal(RUN(&r, SERVE, "--serve-stale-on-error", "600"), CP_OK);
    assert_int_equal(r.cfg.serve_stale_on_error, 600);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, SERVE, "--max-memory", "64M", "--max-disk", "2G"), CP_OK);
    assert_int_equal(r.cfg.max_memory, (size_t)64 << 20);
    assert_int_equal(r.cfg.max_disk, (uint64_t)2 << 30);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, SERVE), CP_OK);
    assert_int_equal(r.cfg.max_memory, CLI_DEFAULT_MAX_MEMORY);
    assert_int_equal(r.cfg.max_disk, CLI_DEFAULT_MAX_DISK);
    cli_config_free(&r.cfg);
    RUN(&r, SERVE, "--max-memory", "lots");
    expect_fail(&r, CP_ERR_BAD_NUMBER, "--max-memory 'lots'");
    RUN(&r, SERVE, "--serve-stale-on-error", "-5");
    expect_fail(&r, CP_ERR_BAD_NUMBER, "--serve-stale-on-error '-5'");
    RUN(&r, SERVE, "--serve-stale-on-error");
    expect_fail(&r, CP_ERR_USAGE, "option '--serve-stale-on-error' needs a value");
}

static void scheduling_values(void **state)
{
    (void)state;
    struct run r;
    assert_int_equal(RUN(&r, SERVE, "--scheduling", "normal", "--scheduling=batch"), CP_OK);
    assert_true(r.cfg.batch_scheduling);
    cli_config_free(&r.cfg);
    assert_int_equal(RUN(&r, SERVE, "--scheduling=normal"), CP_OK);
    assert_false(r.cfg.batch_scheduling);
    cli_config_free(&r.cfg);
    RUN(&r, SERVE, "--scheduling", "fifo");
    expect_fail(&r, CP_ERR_USAGE, "--scheduling 'fifo' (batch or normal)");
    RUN(&r, SERVE, "--scheduling", "Batch");
    expect_fail(&r, CP_ERR_USAGE, "--scheduling 'Batch' (batch or normal)");
    RUN(&r, SERVE, "--scheduling");
    expect_fail(&r, CP_ERR_USAGE, "option '--scheduling' needs a value");
}

static void usage_text(void **state)
{
    (void)state;
    const char *u = cli_usage();
    assert_non_null(u);
    assert_ptr_equal(u, cli_usage());
    static const char *const opts[] = {
        "--port", "--origin", "--clear-cache", "--cache-dir", "--default-ttl", "--threads",
        "--bind", "--origin-cacert", "--connect-timeout", "--origin-timeout",
        "--no-follow-redirects", "--max-object-size", "--max-request-body", "-v, --verbose",
        "-q, --quiet", "-h, --help", "-V, --version", "Usage: caching-proxy", "--strict",
        "--serve-stale-on-error", "--max-memory", "--max-disk", "--scheduling POLICY",
        "--max-connections N", "at most 10000", "--header-memory BYTES", "default: 32K",
        "default: 300", "default: 16M", "default: 64M", "default: 10", "default: 60",
        "XDG_CACHE_HOME",
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (strstr(u, opts[i]) == NULL)
            fail_msg("usage lacks '%s'", opts[i]);
    /* lines fit a terminal */
    for (const char *line = u; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 80)
            fail_msg("usage line too long: %.*s", (int)n, line);
        line += n + (line[n] == '\n');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_option),
        cmocka_unit_test(scheduling_values),
        cmocka_unit_test(strict_and_stale_on_error),
        cmocka_unit_test(last_value_wins),
        cmocka_unit_test(threads_default),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(port_errors),
        cmocka_unit_test(origin_errors),
        cmocka_unit_test(number_errors),
        cmocka_unit_test(timeouts),
        cmocka_unit_test(sizes),
        cmocka_unit_test(help_and_version),
        cmocka_unit_test(clear_cache),
        cmocka_unit_test(cache_dir_defaults),
        cmocka_unit_test(repeated_parsing),
        cmocka_unit_test(why_buffer),
        cmocka_unit_test(usage_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
