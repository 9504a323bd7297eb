/* Integration: what the cache stores and what it refuses, seen from a client talking
 * HTTP to the real binary in front of an in-process origin: MISS then HIT, default TTL,
 * HEAD from a stored GET, Cache-Control/Set-Cookie/Authorization rules, Vary, bytes kept
 * exact (gzip, large bodies), X-Cache replaced, the start-up line, the scheduling policy
 * its threads run under. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"

static struct proxy *start(struct hx *h, const char *const *extra)
{
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    return p;
}

static void get_ok(struct proxy *p, const char *path, const char *const *hdrs,
                   struct hresp *r)
{
    assert_int_equal(hx_get(p->port, path, hdrs, r), 0);
}

static void assert_xcache(const struct hresp *r, const char *want)
{
    assert_int_equal(hresp_header_count(r, "X-Cache"), 1);
    assert_string_equal(hresp_header(r, "X-Cache", 0), want);
}

/* Fields that may legitimately differ between a MISS and a HIT of the same response. */
static bool varies_per_answer(const char *name)
{
    static const char *const names[] = { "Age", "Date", "X-Cache", "Cache-Status", "Connection", "Keep-Alive",
                                         "Transfer-Encoding", NULL };
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static char **field_lines(const struct hresp *r)
{
    char **v = calloc(r->nhdr + 1, sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (size_t i = 0; i < r->nhdr; i++) {
        if (varies_per_answer(r->names[i]))
            continue;
        size_t l = strlen(r->names[i]) + strlen(r->values[i]) + 3;
        v[k] = malloc(l);
        assert_non_null(v[k]);
        snprintf(v[k], l, "%s: %s", r->names[i], r->values[i]);
        for (char *c = v[k]; *c && *c != ':'; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        k++;
    }
    return v;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The end-to-end fields of `a` and `b` are the same (as multisets, names in any case). */
static void assert_same_fields(const struct hresp *a, const struct hresp *b)
{
    char **va = field_lines(a), **vb = field_lines(b);
    size_t na = hx_strv_len(va), nb = hx_strv_len(vb);
    qsort(va, na, sizeof *va, cmp_line);
    qsort(vb, nb, sizeof *vb, cmp_line);
    for (size_t i = 0; i < na && i < nb; i++)
        assert_string_equal(va[i], vb[i]);
    assert_int_equal(na, nb);
    hx_strv_free(va);
    hx_strv_free(vb);
}

static void assert_age_header(const struct hresp *r)
{
    const char *age = hresp_header(r, "Age", 0);
    assert_non_null(age);
    assert_int_equal(hresp_header_count(r, "Age"), 1);
    char *end;
    long v = strtol(age, &end, 10);
    assert_true(end != age && *end == '\0');
    assert_true(v >= 0 && v <= 60);
}

static void test_miss_then_hit(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/cache/one", NULL, &a);
    get_ok(p, "/cache/one", NULL, &b);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    assert_age_header(&b);
    assert_int_equal(a.body_len, b.body_len);
    assert_memory_equal(a.body, b.body, a.body_len);
    assert_string_equal((char *)a.body, "path=/cache/one n=1\n");
    assert_same_fields(&a, &b);
    assert_string_equal(hresp_header(&b, "Cache-Control", 0), "max-age=60");
    assert_int_equal(orig_count(h->origin, "/cache/one"), 1);
    hresp_free(&a);
    hresp_free(&b);
}

/* The query string is part of what is cached: another query is another object. */
static void test_query_is_part_of_key(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b, c;
    get_ok(p, "/cache/q?x=1", NULL, &a);
    get_ok(p, "/cache/q?x=2", NULL, &b);
    get_ok(p, "/cache/q?x=1", NULL, &c);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "MISS");
    assert_xcache(&c, "HIT");
    assert_string_equal((char *)c.body, (char *)a.body);
    assert_int_equal(orig_count(h->origin, "/cache/q"), 2);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

static void test_default_ttl_caches_plain(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/plain/x", NULL, &a);
    get_ok(p, "/plain/x", NULL, &b);
    assert_int_equal(a.status, 200);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    assert_string_equal((char *)b.body, "plain path=/plain/x n=1\n");
    assert_int_equal(orig_count(h->origin, "/plain/x"), 1);
    hresp_free(&a);
    hresp_free(&b);
}

static void test_default_ttl_zero_is_strict(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--default-ttl", "0", NULL };
    struct proxy *p = start(h, extra);
    struct hresp a, b, c;
    get_ok(p, "/plain/x", NULL, &a);
    get_ok(p, "/plain/x", NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "MISS");
    assert_string_equal((char *)b.body, "plain path=/plain/x n=2\n");
    assert_int_equal(orig_count(h->origin, "/plain/x"), 2);
    /* Explicit freshness still counts in strict mode. */
    get_ok(p, "/cache/strict", NULL, &c);
    hresp_free(&c);
    get_ok(p, "/cache/strict", NULL, &c);
    assert_xcache(&c, "HIT");
    assert_int_equal(orig_count(h->origin, "/cache/strict"), 1);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
}

static void test_head_after_get_is_hit(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp g, hd;
    get_ok(p, "/cache/head", NULL, &g);
    assert_xcache(&g, "MISS");
    struct hreq rq = { .method = "HEAD" };
    assert_int_equal(hx_http(p->port, "/cache/head", &rq, &hd), 0);
    assert_int_equal(hd.status, 200);
    assert_xcache(&hd, "HIT");
    char want[32];
    snprintf(want, sizeof want, "%zu", g.body_len);
    assert_non_null(hresp_header(&hd, "Content-Length", 0));
    assert_string_equal(hresp_header(&hd, "Content-Length", 0), want);
    assert_int_equal(hd.body_len, 0);
    assert_int_equal(orig_count(h->origin, "/cache/head"), 1);

    /* On the wire: nothing follows the header block of a HEAD answer. (The Host is
     * libcurl's, which is part of the cache key.) */
    size_t len;
    char head[128];
    snprintf(head, sizeof head, "HEAD /cache/head HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
             "Connection: close\r\n\r\n", (unsigned)p->port);
    char *raw = hx_raw(p->port, head, &len);
    assert_non_null(raw);
    char *end = strstr(raw, "\r\n\r\n");
    assert_non_null(end);
    assert_int_equal((size_t)(end + 4 - raw), len);
    assert_non_null(strstr(raw, "X-Cache: HIT"));
    assert_int_equal(orig_count(h->origin, "/cache/head"), 1);
    free(raw);
    hresp_free(&g);
    hresp_free(&hd);
}

/* Each of these must reach the origin on every request. */
static void assert_never_cached(struct hx *h, struct proxy *p, const char *path,
                                const char *const *hdrs)
{
    struct hresp a, b;
    get_ok(p, path, hdrs, &a);
    get_ok(p, path, hdrs, &b);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_int_equal(hresp_header_count(&b, "X-Cache"), 1);
    assert_string_not_equal(hresp_header(&b, "X-Cache", 0), "HIT");
    assert_int_equal(orig_count(h->origin, path), 2);
    /* The second body is the origin's second answer, not a copy of the first. */
    assert_non_null(strstr((char *)b.body, "n=2"));
    hresp_free(&a);
    hresp_free(&b);
}

static void test_no_store_not_cached(void **state)
{
    struct hx *h = *state;
    assert_never_cached(h, start(h, NULL), "/nostore", NULL);
}

static void test_private_not_cached(void **state)
{
    struct hx *h = *state;
    assert_never_cached(h, start(h, NULL), "/private", NULL);
}

static void test_set_cookie_not_cached(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    assert_never_cached(h, p, "/cookie", NULL);
    /* Both cookies reach the client as two fields, in order. */
    struct hresp r;
    get_ok(p, "/cookie", NULL, &r);
    assert_int_equal(hresp_header_count(&r, "Set-Cookie"), 2);
    assert_string_equal(hresp_header(&r, "Set-Cookie", 0), "a=1; Path=/");
    assert_string_equal(hresp_header(&r, "Set-Cookie", 1), "b=2; Path=/");
    hresp_free(&r);
}

static void test_authorization_not_cached(void **state)
{
    struct hx *h = *state;
    const char *const hdrs[] = { "Authorization: Bearer secret-token", NULL };
    struct proxy *p = start(h, NULL);
    assert_never_cached(h, p, "/auth", hdrs);
    struct orig_req last;
    assert_true(orig_last(h->origin, &last));
    assert_string_equal(orig_req_header(&last, "Authorization", 0), "Bearer secret-token");
    orig_req_free(&last);
}

static void test_cookie_public_cached(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/cookie-public", NULL, &a);
    get_ok(p, "/cookie-public", NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    assert_string_equal((char *)b.body, "cookie-public n=1\n");
    assert_int_equal(orig_count(h->origin, "/cookie-public"), 1);
    hresp_free(&a);
    hresp_free(&b);
}

/* A stored response with two Set-Cookie fields gives both back, separately, on a HIT. */
static void test_multi_cookie_hit_keeps_both(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/multi", NULL, &a);
    get_ok(p, "/multi", NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    for (int i = 0; i < 2; i++) {
        struct hresp *r = i ? &b : &a;
        assert_int_equal(hresp_header_count(r, "Set-Cookie"), 2);
        assert_string_equal(hresp_header(r, "Set-Cookie", 0), "m1=1; Path=/");
        assert_string_equal(hresp_header(r, "Set-Cookie", 1), "m2=2; Path=/");
    }
    assert_int_equal(orig_count(h->origin, "/multi"), 1);
    hresp_free(&a);
    hresp_free(&b);
}

static void test_vary_variants(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    const char *const gz[] = { "Accept-Encoding: gzip", NULL };
    const char *const id[] = { "Accept-Encoding: identity", NULL };
    struct hresp a, b, c, d;
    get_ok(p, "/vary", gz, &a);
    get_ok(p, "/vary", id, &b);
    get_ok(p, "/vary", gz, &c);
    get_ok(p, "/vary", id, &d);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "MISS");
    assert_xcache(&c, "HIT");
    assert_xcache(&d, "HIT");
    assert_string_equal((char *)a.body, "ae=gzip n=1\n");
    assert_string_equal((char *)b.body, "ae=identity n=2\n");
    assert_string_equal((char *)c.body, "ae=gzip n=1\n");
    assert_string_equal((char *)d.body, "ae=identity n=2\n");
    assert_string_equal(hresp_header(&c, "Vary", 0), "Accept-Encoding");
    assert_int_equal(orig_count(h->origin, "/vary"), 2);
    hresp_free(&a);
    hresp_free(&b);
    hresp_free(&c);
    hresp_free(&d);
}

static void test_vary_star_never_hit(void **state)
{
    struct hx *h = *state;
    assert_never_cached(h, start(h, NULL), "/varystar", NULL);
}

static void test_gzip_bytes_untouched(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    size_t gz_len;
    const unsigned char *gz = orig_gzip_body(h->origin, &gz_len);
    const char *const ae[] = { "Accept-Encoding: gzip", NULL };
    for (int i = 0; i < 2; i++) {
        struct hresp r;
        get_ok(p, "/gzip", ae, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, i ? "HIT" : "MISS");
        assert_int_equal(r.body_len, gz_len);
        assert_memory_equal(r.body, gz, gz_len);
        assert_string_equal(hresp_header(&r, "Content-Encoding", 0), "gzip");
        assert_int_equal(hresp_header_count(&r, "Content-Encoding"), 1);
        assert_string_equal(hresp_header(&r, "ETag", 0), "\"gz-1\"");
        char want[32];
        snprintf(want, sizeof want, "%zu", gz_len);
        assert_non_null(hresp_header(&r, "Content-Length", 0));
        assert_string_equal(hresp_header(&r, "Content-Length", 0), want);
        hresp_free(&r);
    }
    assert_int_equal(orig_count(h->origin, "/gzip"), 1);
}

static void test_big_body_exact(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    const size_t n = 3u << 20;
    for (int i = 0; i < 2; i++) {
        struct hresp r;
        get_ok(p, "/big/3145728", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, i ? "HIT" : "MISS");
        assert_int_equal(r.body_len, n);
        for (size_t k = 0; k < n; k++)
            if (r.body[k] != hx_pattern(k))
                fail_msg("byte %zu differs on request %d", k, i + 1);
        hresp_free(&r);
    }
    assert_int_equal(orig_count(h->origin, "/big/3145728"), 1);
}

/* Above --max-object-size a response is passed through whole but not stored. */
static void test_max_object_size_not_stored(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = {"--max-object-size", "1K", NULL};
    struct proxy *p = start(h, extra);
    for (int i = 0; i < 2; i++) {
        struct hresp r;
        get_ok(p, "/big/2000", NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "MISS");
        assert_int_equal(r.body_len, 2000);
        for (size_t k = 0; k < 2000; k++)
            if (r.body[k] != hx_pattern(k))
                fail_msg("byte %zu differs on request %d", k, i + 1);
        hresp_free(&r);
    }
    assert_int_equal(orig_count(h->origin, "/big/2000"), 2);
    /* At the limit it is still stored. */
    struct hresp a, b;
    get_ok(p, "/big/1024", NULL, &a);
    get_ok(p, "/big/1024", NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    hresp_free(&a);
    hresp_free(&b);
}

/* Requests one after another reuse one kept-alive connection to the origin. */
static void test_origin_connection_reused(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char path[32];
    for (int i = 0; i < 5; i++) {
        struct hresp r;
        snprintf(path, sizeof path, "/cache/reuse%d", i);
        get_ok(p, path, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_xcache(&r, "MISS");
        hresp_free(&r);
    }
    assert_int_equal(orig_total(h->origin), 5);
    assert_int_equal(orig_connections(h->origin), 1);
}

/* CPU time (user + system) the process has used so far, in seconds; -1 if unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = hx_read_file(path, NULL);
    if (stat == NULL)
        return -1;
    /* Fields after the command name, which is in parentheses and may hold spaces. */
    const char *p = strrchr(stat, ')');
    unsigned long utime = 0, stime = 0;
    int got = p ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                         &stime)
                : 0;
    free(stat);
    return got == 2 ? (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* When the origin closes a kept-alive connection while it is idle, the proxy lets go of
 * it without spinning on the socket, and the next request gets a prompt answer. */
static void test_origin_closes_idle_connection(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp r;
    get_ok(p, "/cache/idle", NULL, &r);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
    assert_int_equal(orig_connections(h->origin), 1);
    orig_stop(h->origin); /* closes the idle connection from the origin's side */
    h->origin = NULL;
    /* Work done while idle, not speed: an idle proxy uses next to no CPU however busy
     * the machine is, and a loop on the closed socket would take all of the 0.6 s. */
    double before = cpu_seconds(p->pid);
    assert_true(before >= 0);
    usleep(600 * 1000);
    double used = cpu_seconds(p->pid) - before;
    assert_true(used < 0.3);
    get_ok(p, "/cache/after", NULL, &r); /* the harness's own time limit catches a hang */
    assert_int_equal(r.status, 502);
    hresp_free(&r);
}

/* Checks that every thread of process `pid` runs under `policy`; returns how many
 * threads it looked at. */
static size_t assert_threads_policy(pid_t pid, int policy)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        int got = sched_getscheduler((pid_t)atoi(de->d_name));
        if (got < 0)
            continue; /* the thread ended meanwhile */
        if (got != policy)
            fail_msg("thread %s of %d runs under policy %d, expected %d", de->d_name,
                     (int)pid, got, policy);
        n++;
    }
    closedir(d);
    return n;
}

struct start_under {
    struct hx *h;
    int policy;
    struct proxy *p;
};

/* Starts a proxy from a thread of its own under another policy, which it inherits. */
static void *start_under_policy(void *arg)
{
    struct start_under *su = arg;
    const struct sched_param param = {.sched_priority = 0};
    if (sched_setscheduler(0, su->policy, &param) == 0)
        su->p = hx_proxy_start(su->h, orig_url(su->h->origin), NULL, NULL);
    return NULL;
}

/* The proxy's threads (front end, fetcher, disk writer, loader) run under SCHED_BATCH
 * unless told otherwise, and a policy it was started under on purpose stays. */
static void test_threads_scheduling_policy(void **state)
{
    struct hx *h = *state;
    /* The proxies inherit the test's policy: only SCHED_OTHER tells them apart. */
    if (sched_getscheduler(0) != SCHED_OTHER)
        skip();
    struct proxy *batch = start(h, NULL);
    static const char *const normal_args[] = {"--scheduling", "normal", NULL};
    struct proxy *normal = start(h, normal_args);
    struct hresp r;
    get_ok(batch, "/cache/sched", NULL, &r); /* every thread has started by its answer */
    hresp_free(&r);
    get_ok(normal, "/cache/sched", NULL, &r);
    hresp_free(&r);
    assert_true(assert_threads_policy(batch->pid, SCHED_BATCH) >= 3);
    assert_true(assert_threads_policy(normal->pid, SCHED_OTHER) >= 3);

    struct start_under su = {.h = h, .policy = SCHED_IDLE};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_under_policy, &su), 0);
    pthread_join(t, NULL);
    assert_non_null(su.p);
    get_ok(su.p, "/cache/sched", NULL, &r);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
    assert_true(assert_threads_policy(su.p->pid, SCHED_IDLE) >= 3);
}

static void test_origin_xcache_replaced(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    struct hresp a, b;
    get_ok(p, "/xcache", NULL, &a);
    get_ok(p, "/xcache", NULL, &b);
    assert_xcache(&a, "MISS");
    assert_xcache(&b, "HIT");
    hresp_free(&a);
    hresp_free(&b);
}

static void test_status_passed_through(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    static const struct { const char *path; long status; const char *body; } cases[] = {
        { "/status/404", 404, "status 404\n" },
        { "/status/500", 500, "status 500\n" },
        { "/status/204", 204, "" },
        { "/status/201", 201, "status 201\n" },
        { "/nowhere", 404, "not found\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hresp r;
        get_ok(p, cases[i].path, NULL, &r);
        assert_int_equal(r.status, cases[i].status);
        assert_string_equal((char *)r.body, cases[i].body);
        assert_int_equal(hresp_header_count(&r, "X-Cache"), 1);
        hresp_free(&r);
    }
}

/* A cacheable response with an empty body is stored like any other: the second
 * request is a hit, for a 200 and for a 404 alike. */
static void test_empty_body_cached(void **state)
{
    struct hx *h = *state;
    static const char *const f[] = { "Cache-Control", "max-age=60", NULL };
    orig_route(h->origin, "/empty-200", &(struct orig_route){ .fields = f });
    orig_route(h->origin, "/empty-404", &(struct orig_route){ .status = 404, .fields = f });
    struct proxy *p = start(h, NULL);
    static const struct { const char *path; long status; } cases[] = {
        { "/empty-200", 200 },
        { "/empty-404", 404 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int round = 0; round < 2; round++) {
            struct hresp r;
            get_ok(p, cases[i].path, NULL, &r);
            assert_int_equal(r.status, cases[i].status);
            assert_int_equal(r.body_len, 0);
            assert_xcache(&r, round == 0 ? "MISS" : "HIT");
            hresp_free(&r);
        }
        assert_int_equal(orig_count(h->origin, cases[i].path), 1);
    }
}

/* Lines of `text` naming all of port, origin, cache dir and "loaded". */
static size_t startup_lines(char *text, const char *port, const char *origin, const char *dir)
{
    size_t found = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, port) && strstr(line, origin) && strstr(line, dir) &&
            strstr(line, "loaded"))
            found++;
    return found;
}

static void test_startup_line(void **state)
{
    struct hx *h = *state;
    struct proxy *p = start(h, NULL);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)p->port);
    /* The line may be written just after the socket starts accepting: poll briefly. */
    size_t found = 0;
    double end = hx_now() + 3.0;
    do {
        char *err = hx_proxy_stderr(p);
        char *out = hx_proxy_stdout(p);
        assert_non_null(err);
        assert_non_null(out);
        found = startup_lines(err, port, orig_url(h->origin), p->cache_dir) +
                startup_lines(out, port, orig_url(h->origin), p->cache_dir);
        free(err);
        free(out);
        if (found == 0) {
            struct hresp r;
            hx_get(p->port, "/cache/poll", NULL, &r);
            hresp_free(&r);
        }
    } while (found == 0 && hx_now() < end);
    if (found != 1) {
        char err[2048];
        char *e = hx_proxy_stderr(p);
        snprintf(err, sizeof err, "%s", e ? e : "");
        free(e);
        fail_msg("expected one start-up line naming port %s, %s, %s and 'loaded'; found %zu "
                 "in stderr:\n%s", port, orig_url(h->origin), p->cache_dir, found, err);
    }
    assert_int_equal(hx_proxy_stop(p), 0);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_then_hit, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_body_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_query_is_part_of_key, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_default_ttl_caches_plain, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_default_ttl_zero_is_strict, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_head_after_get_is_hit, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_no_store_not_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_private_not_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_set_cookie_not_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_authorization_not_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_cookie_public_cached, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_multi_cookie_hit_keeps_both, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_vary_variants, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_vary_star_never_hit, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_gzip_bytes_untouched, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_big_body_exact, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_max_object_size_not_stored, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_connection_reused, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_closes_idle_connection, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_origin_xcache_replaced, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_threads_scheduling_policy, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_status_passed_through, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_startup_line, hx_setup, hx_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
