/* Integration: how many client connections the proxy takes at once. Well over a
 * thousand idle ones leave room for a request; --max-connections N holds: the next
 * connection waits to be accepted until one of the N closes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define IDLE 1500 /* past libmicrohttpd's own default of about a thousand */
/* The idle connections' descriptors are moved up from here: the origin, in this process,
 * uses select() and so takes no connection on a descriptor past 1023. */
#define HIGH_FD 4096

/* A TCP connection to the proxy that sends nothing. */
static int connect_idle(uint16_t port)
{
    int fd = hx_connect(port);
    assert_true(fd >= 0);
    return fd;
}

/* Sends a GET of `path` on `fd`. */
static void send_get(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
}

/* Whether a status line "HTTP/1.1 200" arrives on `fd` within `timeout_ms`. */
static bool answered_200(int fd, int timeout_ms)
{
    char buf[64];
    size_t got = 0;
    double end = hx_now() + timeout_ms / 1000.0;
    while (got < 12) {
        int left = (int)((end - hx_now()) * 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return false;
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

static void test_many_idle_connections(void **state)
{
    struct hx *h = *state;
    /* Room for the idle connections in this process (the proxy raises its own). */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < HIGH_FD + IDLE + 64) {
        rl.rlim_cur = HIGH_FD + IDLE + 64;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fail_msg("this test needs %d open files: %s", HIGH_FD + IDLE + 64, strerror(errno));
    }
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, NULL);
    assert_non_null(p);
    int *idle = calloc(IDLE, sizeof *idle);
    assert_non_null(idle);
    for (int i = 0; i < IDLE; i++) {
        int fd = connect_idle(p->port);
        idle[i] = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
        assert_true(idle[i] >= HIGH_FD);
        close(fd);
    }

    int fd = connect_idle(p->port);
    send_get(fd, "/cache/many");
    assert_true(answered_200(fd, 10000));
    close(fd);
    for (int i = 0; i < IDLE; i++)
        close(idle[i]);
    free(idle);
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_max_connections_holds(void **state)
{
    struct hx *h = *state;
    const char *const extra[] = {"--threads", "1", "--max-connections", "3", NULL};
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), NULL, extra);
    assert_non_null(p);
    /* Three connections taken, and known to be: each has had an answer. */
    int held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = connect_idle(p->port);
        send_get(held[i], "/cache/held");
        assert_true(answered_200(held[i], 10000));
    }
    int fd = connect_idle(p->port); /* the kernel's queue takes it; the proxy does not */
    send_get(fd, "/cache/waiting");
    assert_false(answered_200(fd, 700));
    assert_int_equal(orig_count(h->origin, "/cache/waiting"), 0);
    close(held[0]);
    assert_true(answered_200(fd, 10000));
    close(fd);
    close(held[1]);
    close(held[2]);
    assert_int_equal(hx_proxy_stop(p), 0);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_idle_connections, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_holds, hx_setup, hx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return rc;
}
