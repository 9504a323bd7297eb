/* End-to-end tests of bodies in transit: a response reaches the client while the origin
 * is still sending it, and one too large to store streams through in bounded memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* A GET that notes when its first body byte came and checks every byte against the
 * origin's pattern as it goes, without keeping the body. */
struct watch {
    double t_first;
    uint64_t got;
    bool bytes_ok;
};

static size_t on_bytes(char *p, size_t sz, size_t nm, void *arg)
{
    struct watch *w = arg;
    size_t n = sz * nm;
    if (w->got == 0 && n > 0)
        w->t_first = hx_now();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] != hx_pattern((size_t)(w->got + i)))
            w->bytes_ok = false;
    w->got += n;
    return n;
}

static long watched_get(uint16_t port, const char *path, long max_speed, struct watch *w,
                        char *xcache, size_t xlen)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    *w = (struct watch){ .bytes_ok = true };
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *none = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (max_speed > 0)
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)max_speed);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    struct curl_header *h = NULL;
    xcache[0] = '\0';
    if (curl_easy_header(c, "X-Cache", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        snprintf(xcache, xlen, "%s", h->value);
    curl_slist_free_all(none);
    curl_easy_cleanup(c);
    return status;
}

/* The client has its first bytes while the origin is still sending the rest; the
 * whole response is stored for the next client all the same. */
static void test_first_bytes_before_origin_finishes(void **state)
{
    struct hx *h = *state;
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, NULL);
    assert_non_null(p);
    struct watch w;
    char xc[32];
    /* 8 pieces of 1 KiB, 150 ms apart: the origin needs over a second. */
    assert_int_equal(watched_get(p->port, "/trickle/8/150", 0, &w, xc, sizeof xc), 200);
    assert_string_equal(xc, "MISS");
    assert_int_equal(w.got, 8 * 1024);
    assert_true(w.bytes_ok);
    double done = orig_trickle_done(h->origin);
    assert_true(done > 0);
    if (!(w.t_first < done))
        fail_msg("first byte %.3f s after the origin finished", w.t_first - done);
    assert_int_equal(watched_get(p->port, "/trickle/8/150", 0, &w, xc, sizeof xc), 200);
    assert_string_equal(xc, "HIT");
    assert_true(w.bytes_ok);
    assert_int_equal(orig_count(h->origin, "/trickle/8/150"), 1);
}

struct client {
    uint16_t port;
    const char *path;
    struct watch w;
    char xcache[32];
    long status;
};

static void *client_thread(void *arg)
{
    struct client *c = arg;
    c->status = watched_get(c->port, c->path, 0, &c->w, c->xcache, sizeof c->xcache);
    return NULL;
}

/* Clients that wait on one origin fetch each get the bytes as they arrive, not once
 * the origin has finished: one origin request, every first byte before its end. */
static void test_waiters_read_while_origin_sends(void **state)
{
    struct hx *h = *state;
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, NULL);
    assert_non_null(p);
    enum { N = 6 };
    struct client c[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        c[i] = (struct client){ .port = p->port, .path = "/trickle/6/200" };
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &c[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    double done = orig_trickle_done(h->origin);
    assert_int_equal(orig_count(h->origin, "/trickle/6/200"), 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].status, 200);
        assert_int_equal(c[i].w.got, 6 * 1024);
        assert_true(c[i].w.bytes_ok);
        if (!(c[i].w.t_first < done))
            fail_msg("client %d (X-Cache %s) had its first byte %.3f s after the origin "
                     "finished", i, c[i].xcache, c[i].w.t_first - done);
    }
}

/* Resident memory of a process, in KiB, from /proc. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

struct sampler {
    pid_t pid;
    volatile bool stop;
    long peak;
};

static void *sample_rss(void *arg)
{
    struct sampler *s = arg;
    while (!s->stop) {
        long k = rss_kib(s->pid);
        if (k > s->peak)
            s->peak = k;
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* A body far above --max-object-size, read by a slow client: it streams through with
 * the proxy holding a window of it, not the whole, and is not stored. */
static void test_large_body_streams_in_bounded_memory(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--max-object-size", "1M", NULL };
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    long before = rss_kib(p->pid);
    assert_true(before > 0);
    struct sampler s = { .pid = p->pid };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sample_rss, &s), 0);
    struct watch w;
    char xc[32];
    /* 96 MiB at 64 MiB/s: the origin could send it far faster than the client reads. */
    long status = watched_get(p->port, "/huge/100663296", 64L << 20, &w, xc, sizeof xc);
    s.stop = true;
    pthread_join(t, NULL);
    assert_int_equal(status, 200);
    assert_int_equal(w.got, (uint64_t)100663296);
    assert_true(w.bytes_ok);
    assert_string_equal(xc, "MISS");
    /* The window is 1 MiB; allow the allocator and libcurl their buffers. */
    if (s.peak - before > 24 * 1024)
        fail_msg("resident memory grew by %ld KiB while streaming 96 MiB", s.peak - before);
    /* Too large to keep: the next request goes to the origin again. */
    assert_int_equal(watched_get(p->port, "/huge/2000000", 0, &w, xc, sizeof xc), 200);
    assert_int_equal(watched_get(p->port, "/huge/2000000", 0, &w, xc, sizeof xc), 200);
    assert_string_equal(xc, "MISS");
    assert_int_equal(orig_count(h->origin, "/huge/2000000"), 2);
}

/* Clients of a body too large to keep that read a little and leave while the origin
 * is still sending: the transfer ends and frees what it had while the clients' side
 * of the stream lets go of it, in either order. The proxy stays up and answers. */
static void test_slow_clients_leave_mid_stream(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = { "--max-object-size", "1M", NULL };
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    for (int round = 0; round < 3; round++) {
        int fds[3];
        for (int i = 0; i < 3; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            assert_true(fds[i] >= 0);
            int small = 4096;
            setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
            struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->port),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
            assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
            static const char req[] = "GET /huge/40000000 HTTP/1.1\r\nHost: x\r\n\r\n";
            assert_int_equal(send(fds[i], req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
        }
        usleep(round == 0 ? 1000000 : 300000);
        char buf[1000];
        for (int i = 0; i < 3; i++) {
            assert_true(recv(fds[i], buf, sizeof buf, 0) > 0);
            close(fds[i]);
        }
    }
    usleep(500000);
    struct hresp r;
    assert_int_equal(hx_get(p->port, "/cache/after-leaving", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* A client that reads nothing of a body too large to keep holds nobody else up: a
 * request for the same URL meanwhile does not wait for that fetch to end (it would
 * not be stored anyway) but gets the body from the origin on its own. */
static void stalled_client(struct hx *h, const char *path)
{
    const char *const extra[] = { "--max-object-size", "1M", NULL };
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[128]; /* the Host libcurl sends below: the same cache key */
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", path,
             (unsigned)p->port);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    /* The stalled client's fetch is under way (and paused) once the origin has it. */
    for (int i = 0; i < 200 && orig_count(h->origin, path) < 1; i++)
        usleep(10000);
    assert_int_equal(orig_count(h->origin, path), 1);
    struct watch w;
    char xc[32];
    assert_int_equal(watched_get(p->port, path, 0, &w, xc, sizeof xc), 200);
    assert_int_equal(w.got, (uint64_t)8000000);
    assert_true(w.bytes_ok);
    assert_int_equal(orig_count(h->origin, path), 2);
    close(fd);
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_stalled_client_holds_nobody(void **state)
{
    stalled_client(*state, "/huge/8000000");
}

/* The same when the length is not known up front: the body is found too large to
 * keep only as it arrives. */
static void test_stalled_client_holds_nobody_chunked(void **state)
{
    stalled_client(*state, "/hugechunked/8000000");
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_bytes_before_origin_finishes, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_large_body_streams_in_bounded_memory, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_waiters_read_while_origin_sends, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_slow_clients_leave_mid_stream, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_stalled_client_holds_nobody, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_stalled_client_holds_nobody_chunked, hx_setup,
                                        hx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return rc;
}
