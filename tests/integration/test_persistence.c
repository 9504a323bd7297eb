/* Integration: the disk mirror seen from outside: the cache survives a restart,
 * `--clear-cache` empties a running server's cache, and damaged files in the cache
 * directory are ignored, reported and replaced, never served. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diskfmt.h"
#include "entry.h"
#include "harness.h"

static void assert_xcache(const struct hresp *r, const char *want)
{
    assert_int_equal(hresp_header_count(r, "X-Cache"), 1);
    assert_string_equal(hresp_header(r, "X-Cache", 0), want);
}

static void get_expect(struct proxy *p, const char *path, const char *xcache, const char *body)
{
    struct hresp r;
    assert_int_equal(hx_get(p->port, path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_xcache(&r, xcache);
    assert_string_equal((char *)r.body, body);
    hresp_free(&r);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_restart_keeps_cache(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/keep", "MISS", "path=/cache/keep n=1\n");
    /* No waiting for the disk: a clean stop must write what is queued. */
    assert_int_equal(hx_proxy_stop(p), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/keep", "HIT", "path=/cache/keep n=1\n");
    assert_int_equal(orig_count(h->origin, "/cache/keep"), 1);
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_clear_cache_reaches_running_server(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/a", "MISS", "path=/cache/a n=1\n");
    get_expect(p, "/cache/b", "MISS", "path=/cache/b n=1\n");
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=1\n");
    /* The files are written in the background; the count below needs them on disk. */
    assert_true(hx_wait_files(dir, ".cpe", 2, 5.0));

    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    char *out = NULL, *err = NULL;
    int st = hx_run(argv, 10.0, &out, &err);
    char shown[1024];
    snprintf(shown, sizeof shown, "stdout '%s' stderr '%s'", out ? out : "", err ? err : "");
    bool two = hx_has_number(out, 2);
    free(out);
    free(err);
    if (st != 0)
        fail_msg("--clear-cache exited %d: %s", st, shown);
    if (!two)
        fail_msg("--clear-cache should report the 2 entries removed: %s", shown);
    char **left = hx_list(dir, ".cpe");
    assert_int_equal(hx_strv_len(left), 0);
    hx_strv_free(left);

    /* Same server process, no restart: its memory was emptied too. */
    get_expect(p, "/cache/a", "MISS", "path=/cache/a n=2\n");
    get_expect(p, "/cache/b", "MISS", "path=/cache/b n=2\n");
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=2\n");
    assert_int_equal(orig_count(h->origin, "/cache/a"), 2);
    assert_int_equal(hx_proxy_stop(p), 0);

    /* What was cached after the clear is kept across a restart; what was cleared is not
     * brought back. */
    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=2\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_clear_cache_without_server(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    char *out = NULL, *err = NULL;
    /* A cache directory that does not exist is an empty cache. */
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_true(hx_has_number(out, 0));
    free(out);
    free(err);

    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/z", "MISS", "path=/cache/z n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_true(hx_has_number(out, 1));
    free(out);
    free(err);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/z", "MISS", "path=/cache/z n=2\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

enum damage { TRUNCATE, FLIP_BYTES, REPLACE_WITH_TEXT };

static void corrupt_and_restart(struct hx *h, enum damage how)
{
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/c", "MISS", "path=/cache/c n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);

    char **files = hx_list(dir, ".cpe");
    assert_int_equal(hx_strv_len(files), 1);
    char file[1024];
    snprintf(file, sizeof file, "%s", files[0]);
    hx_strv_free(files);
    const char *base = strrchr(file, '/') + 1;

    size_t len;
    char *bytes = hx_read_file(file, &len);
    assert_non_null(bytes);
    assert_true(len > 40);
    switch (how) {
    case TRUNCATE:
        len /= 2;
        break;
    case FLIP_BYTES:
        for (size_t i = len / 3; i < len / 3 + 8; i++)
            bytes[i] = (char)(bytes[i] ^ 0x5a);
        break;
    case REPLACE_WITH_TEXT:
        len = (size_t)snprintf(bytes, len, "this is not a cache entry\n");
        break;
    }
    assert_int_equal(hx_write_file(file, bytes, len), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/c", "MISS", "path=/cache/c n=2\n");
    assert_int_equal(orig_count(h->origin, "/cache/c"), 2);

    char *err = hx_proxy_stderr(p);
    assert_non_null(err);
    bool reported = false;
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "ignor") && strstr(line, base))
            reported = true;
    free(err);
    if (!reported) {
        char shown[2048];
        char *again = hx_proxy_stderr(p);
        snprintf(shown, sizeof shown, "%s", again ? again : "");
        free(again);
        free(bytes);
        fail_msg("stderr does not report ignoring %s:\n%s", base, shown);
    }

    /* The fresh answer replaces the damaged file with a whole, valid one. */
    struct entry *e = NULL;
    for (int tries = 0; tries < 250 && e == NULL; tries++) {
        size_t now_len;
        unsigned char *now = (unsigned char *)hx_read_file(file, &now_len);
        if (now != NULL && !(now_len == len && memcmp(now, bytes, len) == 0) &&
            diskfmt_decode(now, now_len, &e) != CP_OK)
            e = NULL;
        free(now);
        if (e == NULL)
            sleep_ms(20);
    }
    free(bytes);
    assert_non_null(e);
    assert_int_equal(e->status, 200);
    assert_int_equal(e->body_len, strlen("path=/cache/c n=2\n"));
    assert_memory_equal(e->body, "path=/cache/c n=2\n", e->body_len);
    entry_unref(e);
    assert_int_equal(hx_proxy_stop(p), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/c", "HIT", "path=/cache/c n=2\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_truncated_file_ignored(void **state)
{
    corrupt_and_restart(*state, TRUNCATE);
}

static void test_flipped_bytes_ignored(void **state)
{
    corrupt_and_restart(*state, FLIP_BYTES);
}

static void test_foreign_file_ignored(void **state)
{
    corrupt_and_restart(*state, REPLACE_WITH_TEXT);
}

/* A temporary file left by a writer that died is cleaned up at start. */
static void test_leftover_temp_file_removed(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    assert_int_equal(hx_proxy_stop(p), 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/0123456789abcdef0123456789abcdef.tmp.99999.0", dir);
    assert_int_equal(hx_write_file(tmp, "half-written", 12), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    bool gone = false;
    for (int tries = 0; tries < 250 && !gone; tries++) {
        gone = access(tmp, F_OK) != 0;
        if (!gone)
            sleep_ms(20);
    }
    assert_true(gone);
    get_expect(p, "/cache/t", "MISS", "path=/cache/t n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_keeps_cache, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_clear_cache_reaches_running_server, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_clear_cache_without_server, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_ignored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bytes_ignored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_file_ignored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_leftover_temp_file_removed, hx_setup, hx_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
