/* Unit tests for the fetcher's epoll set (src/sockwatch.c), on a real epoll set and
 * socket pairs: what stays in the set while idle, what leaves it, and that a socket
 * number coming back as another socket is never taken for the old one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockwatch.h"

struct fx {
    int epfd;
    struct sockwatch w;
};

static int setup(void **state)
{
    static struct fx f;
    f.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (f.epfd < 0)
        return -1;
    sockwatch_init(&f.w, f.epfd);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sockwatch_free(&f->w);
    close(f->epfd);
    return 0;
}

/* A connected pair: sv[0] plays curl's socket, sv[1] the origin. */
static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Whether the set reports `fd` readable right now. */
static bool reported(struct fx *f, int fd)
{
    struct epoll_event evs[8];
    int n = epoll_wait(f->epfd, evs, 8, 0);
    for (int i = 0; i < n; i++)
        if (evs[i].data.fd == fd)
            return true;
    return false;
}

/* Whether `fd` is in the set at all (EPOLL_CTL_MOD only succeeds for members). */
static bool in_set(struct fx *f, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(f->epfd, EPOLL_CTL_MOD, fd, &ev) == 0;
}

/* A connection's socket stays in the set between transfers; when it stirs while idle
 * (the origin closed it) it leaves the set and the event is to be ignored. */
static void test_owned_stays_until_stray(void **state)
{
    struct fx *f = *state;
    int sv[2];
    pair(sv);
    assert_int_equal(sockwatch_opened(&f->w, sv[0]), CP_OK);
    assert_int_equal(sockwatch_want(&f->w, sv[0], true, false), CP_OK);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_true(reported(f, sv[0]));
    assert_false(sockwatch_stray(&f->w, sv[0])); /* wanted: the event is curl's */
    char c;
    assert_int_equal(read(sv[0], &c, 1), 1);
    sockwatch_done(&f->w, sv[0]);
    assert_true(in_set(f, sv[0])); /* kept while idle */
    assert_int_equal(sockwatch_want(&f->w, sv[0], true, false), CP_OK); /* next transfer */
    sockwatch_done(&f->w, sv[0]);
    close(sv[1]); /* the origin closes the idle connection */
    assert_true(reported(f, sv[0]));
    assert_true(sockwatch_stray(&f->w, sv[0]));
    assert_false(in_set(f, sv[0])); /* taken out: no more events */
    assert_false(reported(f, sv[0]));
    /* Still ours: watched again on demand. */
    assert_int_equal(sockwatch_want(&f->w, sv[0], true, false), CP_OK);
    assert_true(reported(f, sv[0]));
    sockwatch_closed(&f->w, sv[0]);
    close(sv[0]);
}

/* A socket not opened through the watch (a resolver's socket pair) leaves the set as
 * soon as it is done with. */
static void test_foreign_leaves_when_done(void **state)
{
    struct fx *f = *state;
    int sv[2];
    pair(sv);
    assert_int_equal(sockwatch_want(&f->w, sv[0], true, false), CP_OK);
    assert_true(in_set(f, sv[0]));
    sockwatch_done(&f->w, sv[0]);
    assert_false(in_set(f, sv[0]));
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_false(reported(f, sv[0]));
    close(sv[0]);
    close(sv[1]);
}

/* A connection socket watched, left idle in the set, then closed (the watch told of
 * the close if `told`); then a new pair, whose first socket takes the old number (the
 * lowest free one), in b. */
static void reuse_number(struct fx *f, bool told, int b[2])
{
    int a[2];
    pair(a);
    int fd = a[0];
    assert_int_equal(sockwatch_opened(&f->w, fd), CP_OK);
    assert_int_equal(sockwatch_want(&f->w, fd, true, false), CP_OK);
    sockwatch_done(&f->w, fd); /* idle, kept in the set */
    if (told)
        sockwatch_closed(&f->w, fd);
    close(fd); /* leaves the set by itself */
    close(a[1]);
    pair(b);
    assert_int_equal(b[0], fd);
}

/* The number of a closed connection socket, given next to a foreign socket, is watched
 * for real: nothing the old socket left is taken for the new one. */
static void test_number_reused_by_foreign_socket(void **state)
{
    struct fx *f = *state;
    int b[2];
    reuse_number(f, true, b);
    assert_int_equal(sockwatch_want(&f->w, b[0], true, false), CP_OK);
    assert_true(in_set(f, b[0]));
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_true(reported(f, b[0]));
    sockwatch_done(&f->w, b[0]);
    close(b[0]);
    close(b[1]);
}

/* A number opened again is fresh even if its earlier socket's close was never
 * reported; reading and writing are switched with one call each. */
static void test_reopened_and_directions(void **state)
{
    struct fx *f = *state;
    int b[2];
    reuse_number(f, false, b); /* gone without sockwatch_closed */
    assert_int_equal(sockwatch_opened(&f->w, b[0]), CP_OK);
    assert_int_equal(sockwatch_want(&f->w, b[0], true, false), CP_OK);
    assert_true(in_set(f, b[0]));
    assert_int_equal(sockwatch_want(&f->w, b[0], false, true), CP_OK);
    assert_true(reported(f, b[0])); /* writable at once */
    assert_int_equal(sockwatch_want(&f->w, b[0], true, true), CP_OK);
    assert_true(reported(f, b[0]));
    sockwatch_closed(&f->w, b[0]);
    close(b[0]);
    close(b[1]);
}

/* Bad numbers are refused without touching anything. */
static void test_bad_numbers(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sockwatch_opened(&f->w, -1), CP_ERR_NOMEM);
    assert_int_not_equal(sockwatch_want(&f->w, -1, true, false), CP_OK);
    sockwatch_done(&f->w, -1);
    sockwatch_closed(&f->w, -1);
    assert_false(sockwatch_stray(&f->w, -1));
    assert_false(sockwatch_stray(&f->w, 1 << 20)); /* never seen */
    /* A closed number cannot be added. */
    int sv[2];
    pair(sv);
    int fd = sv[0];
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(sockwatch_want(&f->w, fd, true, false), CP_ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_owned_stays_until_stray, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_leaves_when_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_reused_by_foreign_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopened_and_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_numbers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
