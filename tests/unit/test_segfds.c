/* Unit tests of the kept-open segment descriptors: one open for many reads, a
 * forgotten segment's descriptor closed once its last read is done (so a deleted
 * file's space is freed), least recently used ones given up for new segments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segfds.h"
#include "tmpdir.h"

struct fixture {
    char dir[64];
    struct segfds c;
    int opens; /* by open_seg */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tmpdir_make(f->dir, sizeof f->dir, "segfds") != 0)
        return -1;
    segfds_init(&f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    segfds_close_all(&f->c);
    int rc = tmpdir_remove(f->dir);
    free(f);
    return rc;
}

static void path_of(const struct fixture *f, uint64_t seq, char *out, size_t len)
{
    snprintf(out, len, "%s/%llu", f->dir, (unsigned long long)seq);
}

/* Makes segment `seq`: a file holding its number as text. */
static void make_seg(struct fixture *f, uint64_t seq)
{
    char path[128];
    path_of(f, seq, path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "%llu", (unsigned long long)seq);
    assert_int_equal(fclose(fp), 0);
}

static int open_seg(void *arg, uint64_t seq)
{
    struct fixture *f = arg;
    char path[128];
    path_of(f, seq, path, sizeof path);
    f->opens++;
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Reads segment `seq` through the cache and checks it holds its number. */
static void read_seg(struct fixture *f, uint64_t seq)
{
    struct segfd_use u;
    assert_true(segfds_get(&f->c, seq, open_seg, f, &u));
    char buf[32] = "", want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)seq);
    assert_true(pread(u.fd, buf, sizeof buf - 1, 0) > 0);
    assert_string_equal(buf, want);
    segfds_put(&f->c, &u);
}

static bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static void test_one_open_for_many_reads(void **state)
{
    struct fixture *f = *state;
    make_seg(f, 7);
    for (int i = 0; i < 5; i++)
        read_seg(f, 7);
    assert_int_equal(f->opens, 1);
    /* Two reads at once share it too. */
    struct segfd_use a, b;
    assert_true(segfds_get(&f->c, 7, open_seg, f, &a));
    assert_true(segfds_get(&f->c, 7, open_seg, f, &b));
    assert_int_equal(a.fd, b.fd);
    segfds_put(&f->c, &a);
    segfds_put(&f->c, &b);
    assert_int_equal(f->opens, 1);
    /* A segment that cannot be opened fails with the open's errno. */
    struct segfd_use none;
    errno = 0;
    assert_false(segfds_get(&f->c, 99, open_seg, f, &none));
    assert_int_equal(errno, ENOENT);
}

/* A segment deleted while a read uses its descriptor: the read goes on, the descriptor
 * is closed when it ends, and the next read of that number opens the file anew. */
static void test_forgotten_closed_after_last_read(void **state)
{
    struct fixture *f = *state;
    make_seg(f, 3);
    read_seg(f, 3);
    struct segfd_use u;
    assert_true(segfds_get(&f->c, 3, open_seg, f, &u));
    char path[128];
    path_of(f, 3, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    segfds_forget(&f->c, 3);
    char buf[8] = "";
    assert_int_equal(pread(u.fd, buf, 1, 0), 1); /* still readable */
    assert_true(is_open(u.fd));
    segfds_put(&f->c, &u);
    assert_false(is_open(u.fd)); /* the file's space is free now */
    make_seg(f, 3);
    read_seg(f, 3);
    assert_int_equal(f->opens, 2);

    /* Forgotten while unused: closed at once. */
    assert_true(segfds_get(&f->c, 3, open_seg, f, &u));
    segfds_put(&f->c, &u);
    assert_true(is_open(u.fd));
    segfds_forget_all(&f->c);
    assert_false(is_open(u.fd));
}

/* A kept segment deleted or replaced by someone else (no forget): the next read sees
 * the directory as it is, and the old file's descriptor is closed. */
static void test_deleted_behind_back(void **state)
{
    struct fixture *f = *state;
    make_seg(f, 5);
    struct segfd_use u;
    assert_true(segfds_get(&f->c, 5, open_seg, f, &u));
    segfds_put(&f->c, &u);
    char path[128];
    path_of(f, 5, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    struct segfd_use again;
    errno = 0;
    assert_false(segfds_get(&f->c, 5, open_seg, f, &again));
    assert_int_equal(errno, ENOENT);
    assert_false(is_open(u.fd));

    /* Replaced: segment 6's file renamed over segment 5's name. */
    make_seg(f, 5);
    read_seg(f, 5);
    make_seg(f, 6);
    char six[128];
    path_of(f, 6, six, sizeof six);
    assert_int_equal(rename(six, path), 0);
    assert_true(segfds_get(&f->c, 5, open_seg, f, &u));
    char buf[8] = "";
    assert_int_equal(pread(u.fd, buf, sizeof buf - 1, 0), 1);
    assert_string_equal(buf, "6");
    segfds_put(&f->c, &u);
}

/* Opens segment `seq` and, as the store's trimming may do right then, deletes it before
 * the descriptor is kept (its forget comes too early to find it). */
static int open_then_delete(void *arg, uint64_t seq)
{
    struct fixture *f = arg;
    int fd = open_seg(arg, seq);
    char path[128];
    path_of(f, seq, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    segfds_forget(&f->c, seq);
    return fd;
}

/* A segment deleted between its open and the moment it is kept is not kept past the
 * read that opened it. */
static void test_deleted_while_opening(void **state)
{
    struct fixture *f = *state;
    make_seg(f, 9);
    struct segfd_use u;
    assert_true(segfds_get(&f->c, 9, open_then_delete, f, &u));
    char buf[8] = "";
    assert_int_equal(pread(u.fd, buf, sizeof buf - 1, 0), 1); /* the read goes on */
    assert_string_equal(buf, "9");
    segfds_put(&f->c, &u);
    assert_false(is_open(u.fd));
}

/* Past SEGFDS_SLOTS segments, the least recently used one not in use is closed; one in
 * use is never taken, and when every slot is in use a read gets a descriptor of its
 * own, closed when it ends. */
static void test_least_recently_used_given_up(void **state)
{
    struct fixture *f = *state;
    for (uint64_t s = 1; s <= SEGFDS_SLOTS + 1; s++)
        make_seg(f, s);
    for (uint64_t s = 1; s <= SEGFDS_SLOTS; s++)
        read_seg(f, s);
    read_seg(f, 1); /* 1 used again: 2 is now the least recently used */
    assert_int_equal(f->opens, SEGFDS_SLOTS);
    read_seg(f, SEGFDS_SLOTS + 1);
    read_seg(f, 1);
    assert_int_equal(f->opens, SEGFDS_SLOTS + 1);
    read_seg(f, 2); /* given up: opened again */
    assert_int_equal(f->opens, SEGFDS_SLOTS + 2);

    struct segfd_use held[SEGFDS_SLOTS];
    for (int i = 0; i < SEGFDS_SLOTS; i++)
        assert_true(segfds_get(&f->c, (uint64_t)i + 1, open_seg, f, &held[i]));
    struct segfd_use extra;
    assert_true(segfds_get(&f->c, SEGFDS_SLOTS + 1, open_seg, f, &extra));
    assert_int_equal(extra.slot, -1);
    segfds_put(&f->c, &extra);
    assert_false(is_open(extra.fd));
    for (int i = 0; i < SEGFDS_SLOTS; i++) {
        assert_true(is_open(held[i].fd));
        segfds_put(&f->c, &held[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_open_for_many_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forgotten_closed_after_last_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleted_behind_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_while_opening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_least_recently_used_given_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
