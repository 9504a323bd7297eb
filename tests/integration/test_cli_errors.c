/* Integration: the binary's command line as a person meets it: each bad input ends the
 * program with a non-zero status and one line on stderr naming the problem; --help and
 * --version succeed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* Runs `argv` (the binary's arguments from argv[first_arg] on); expects a failure with
 * one stderr line containing `needle` (any case). */
static void check_failure(const char *const *argv, size_t first_arg, const char *needle)
{
    char *out = NULL, *err = NULL;
    int st = hx_run(argv, 10.0, &out, &err);
    char cmd[1024] = "";
    for (size_t i = first_arg; argv[i] != NULL; i++) {
        size_t l = strlen(cmd);
        snprintf(cmd + l, sizeof cmd - l, " %s", argv[i]);
    }
    char shown[1024];
    snprintf(shown, sizeof shown, "%s", err ? err : "");
    size_t lines = hx_count_lines(err);
    bool named = err != NULL && strcasestr(err, needle) != NULL;
    free(out);
    free(err);
    if (st <= 0 || st >= 128)
        fail_msg("caching-proxy%s: want a non-zero exit, got %d; stderr: %s", cmd, st, shown);
    if (lines != 1)
        fail_msg("caching-proxy%s: want exactly one stderr line, got %zu:\n%s", cmd, lines,
                 shown);
    if (!named)
        fail_msg("caching-proxy%s: stderr does not name '%s': %s", cmd, needle, shown);
}

/* Runs the binary with `args` (NULL-terminated, after argv[0]); expects a failure with
 * one stderr line containing `needle` (any case). */
static void expect_failure(const char *const *args, const char *needle)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = hx_proxy_path();
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    check_failure(argv, 1, needle);
}

/* The same, the binary run by a shell that first limits open files to `files`, soft
 * and hard limits both, so that the binary cannot raise it. */
static void expect_failure_with_files(unsigned files, const char *const *args,
                                      const char *needle)
{
    char script[64];
    snprintf(script, sizeof script, "ulimit -n %u && exec \"$0\" \"$@\"", files);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = "/bin/sh";
    argv[n++] = "-c";
    argv[n++] = script;
    argv[n++] = hx_proxy_path();
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    check_failure(argv, 4, needle);
}

struct valid {
    char port[16];
    char origin[64];
    char cache[600];
};

/* Arguments that would start a server, so each case below differs by one problem. */
static void valid_args(struct hx *h, struct valid *v)
{
    snprintf(v->port, sizeof v->port, "%u", (unsigned)hx_free_port());
    snprintf(v->origin, sizeof v->origin, "%s", orig_url(h->origin));
    hx_fresh_dir(h, v->cache, sizeof v->cache);
}

static void test_unknown_flag(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--origin", v.origin, "--cache-dir", v.cache,
                              "--bogus-flag", NULL };
    expect_failure(a, "--bogus-flag");
}

static void test_port_missing_value(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--origin", v.origin, "--cache-dir", v.cache, "--port", NULL };
    expect_failure(a, "--port");
}

static void test_port_out_of_range(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", "70000", "--origin", v.origin, "--cache-dir", v.cache,
                              NULL };
    expect_failure(a, "70000");
    const char *const zero[] = { "--port", "0", "--origin", v.origin, "--cache-dir", v.cache,
                                 NULL };
    expect_failure(zero, "port");
}

static void test_port_not_a_number(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", "80x", "--origin", v.origin, "--cache-dir", v.cache,
                              NULL };
    expect_failure(a, "80x");
}

static void test_origin_wrong_scheme(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--origin", "ftp://x", "--cache-dir", v.cache,
                              NULL };
    expect_failure(a, "origin");
}

static void test_origin_not_a_url(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--origin", "notaurl", "--cache-dir", v.cache,
                              NULL };
    expect_failure(a, "origin");
}

static void test_origin_missing(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--cache-dir", v.cache, NULL };
    expect_failure(a, "origin");
}

static void test_stray_argument(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--origin", v.origin, "--cache-dir", v.cache,
                              "leftover", NULL };
    expect_failure(a, "leftover");
}

static void test_port_in_use(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(v.port, sizeof v.port, "%u", (unsigned)ntohs(sa.sin_port));
    const char *const a[] = { "--port", v.port, "--origin", v.origin, "--cache-dir", v.cache,
                              NULL };
    expect_failure(a, "in use");
    close(fd);
}

static void test_cache_dir_unusable(void **state)
{
    struct hx *h = *state;
    struct valid v;
    valid_args(h, &v);
    char file[600], dir[700];
    snprintf(file, sizeof file, "%s/a-regular-file", h->tmp);
    assert_int_equal(hx_write_file(file, "x", 1), 0);
    snprintf(dir, sizeof dir, "%s/cache", file);
    const char *const a[] = { "--port", v.port, "--origin", v.origin, "--cache-dir", dir, NULL };
    expect_failure(a, "cache");
    /* The same for --clear-cache, which needs no origin. */
    char *out = NULL, *err = NULL;
    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    int st = hx_run(argv, 10.0, &out, &err);
    char shown[1024];
    snprintf(shown, sizeof shown, "%s", err ? err : "");
    bool ok = st > 0 && st < 128 && hx_count_lines(err) == 1 && strcasestr(err, "cache") != NULL;
    free(out);
    free(err);
    if (!ok)
        fail_msg("--clear-cache on %s: want failure with one line naming the cache, got %d: %s",
                 dir, st, shown);
}

/* More connections than the open-file limit can hold: the binary says so at start,
 * rather than failing later on a connection. */
static void test_max_connections_beyond_file_limit(void **state)
{
    struct valid v;
    valid_args(*state, &v);
    const char *const a[] = { "--port", v.port, "--origin", v.origin, "--cache-dir", v.cache,
                              "--max-connections", "1000", NULL };
    expect_failure_with_files(200, a, "--max-connections 1000");
    const char *const dflt[] = { "--port", v.port, "--origin", v.origin, "--cache-dir",
                                 v.cache, NULL };
    expect_failure_with_files(64, dflt, "open files");
}

static void test_help_lists_every_option(void **state)
{
    (void)state;
    const char *argv[] = { hx_proxy_path(), "--help", NULL };
    char *out = NULL, *err = NULL;
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_non_null(out);
    static const char *const opts[] = {
        "--port", "--origin", "--cache-dir", "--default-ttl", "--clear-cache",
        "--origin-cacert", "--origin-timeout", "--no-follow-redirects", "--help", "--version",
        "--threads", "--bind", "--connect-timeout", "--max-object-size", "--max-request-body",
        "--verbose", "--quiet", "--max-connections", "--header-memory", NULL
    };
    const char *missing = NULL;
    for (size_t i = 0; opts[i] && missing == NULL; i++)
        if (strstr(out, opts[i]) == NULL)
            missing = opts[i];
    free(out);
    free(err);
    if (missing)
        fail_msg("--help does not mention %s", missing);
}

static void test_version(void **state)
{
    (void)state;
    const char *argv[] = { hx_proxy_path(), "--version", NULL };
    char *out = NULL, *err = NULL;
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_non_null(out);
    bool has = strstr(out, CP_VERSION) != NULL;
    free(out);
    free(err);
    if (!has)
        fail_msg("--version does not print %s", CP_VERSION);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_flag, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_port_missing_value, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_port_out_of_range, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_port_not_a_number, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_wrong_scheme, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_not_a_url, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_missing, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_stray_argument, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_cache_dir_unusable, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_beyond_file_limit, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_help_lists_every_option, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_version, hx_setup, hx_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
