/* Unit tests of the disk reader: reads made on its thread bring long records back into
 * memory, and every request for a read is answered once, made or not (at a stop). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "readback.h"
#include "upfix.h"

/* Counts the calls of `done`, and which thread made the last one, and what it said. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int calls;
    pthread_t by;
    bool made;
};

static void on_done(void *arg, bool made)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->calls++;
    w->by = pthread_self();
    w->made = made;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cv, NULL);
}

/* Waits up to 10 s for `n` calls; returns how many came. */
static int wait_calls(struct waiter *w, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&w->lock);
    while (w->calls < n && pthread_cond_timedwait(&w->cv, &w->lock, &until) == 0)
        ;
    int calls = w->calls;
    pthread_mutex_unlock(&w->lock);
    return calls;
}

/* A record longer than a front-end thread reads, as if stored and then evicted, with
 * a body that tells its bytes apart. */
static void write_long_record(struct upfix *f, const char *key, size_t len)
{
    unsigned char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (unsigned char)(i * 7);
    upfix_write_record(f, key, body, len);
}

/* The read is made on the reader's thread, and what it read is in memory when `done`
 * is called: the lookup the woken request makes then finds it. */
static void test_read_lands_in_memory_before_done(void **state)
{
    struct upfix *f = *state;
    const size_t len = UPDATE_READ_BACK_MAX + 100;
    write_long_record(f, "http://o.test/long", len);
    struct hdrs req;
    hdrs_init(&req);
    bool later = false;
    assert_null(update_lookup(&f->up, "http://o.test/long", &req, NULL, &later));
    assert_true(later);

    struct readback *rb;
    assert_int_equal(readback_start(&f->up, &rb), CP_OK);
    struct waiter w;
    waiter_init(&w);
    assert_int_equal(readback_submit(rb, "http://o.test/long", &req, on_done, &w), CP_OK);
    assert_int_equal(wait_calls(&w, 1), 1);
    assert_false(pthread_equal(w.by, pthread_self()));
    assert_true(w.made);
    struct entry *e = cache_lookup(f->cache, "http://o.test/long", &req, NULL);
    assert_non_null(e);
    assert_int_equal(e->body_len, len);
    assert_int_equal(e->body[len - 1], (unsigned char)((len - 1) * 7));
    entry_unref(e);
    /* A key with nothing on disk is answered all the same. */
    assert_int_equal(readback_submit(rb, "http://o.test/none", &req, on_done, &w), CP_OK);
    assert_int_equal(wait_calls(&w, 2), 2);
    readback_stop(rb);
    assert_int_equal(w.calls, 2);
    readback_free(rb);
}

/* Every read asked for is answered exactly once, by the thread or by the stop (which
 * says it was not made), however many are still queued when it comes; after the stop,
 * a read is refused and never answered. */
static void test_stop_answers_every_read(void **state)
{
    struct upfix *f = *state;
    write_long_record(f, "http://o.test/long", UPDATE_READ_BACK_MAX + 1);
    enum { N = 200 };
    static struct waiter w[N];
    struct hdrs req;
    hdrs_init(&req);
    struct readback *rb;
    assert_int_equal(readback_start(&f->up, &rb), CP_OK);
    for (int i = 0; i < N; i++) {
        waiter_init(&w[i]);
        assert_int_equal(readback_submit(rb, "http://o.test/long", &req, on_done, &w[i]), CP_OK);
    }
    readback_stop(rb);
    /* Reads are made in the order asked: those made come first, then those never made. */
    bool lost = false;
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        if (lost)
            assert_false(w[i].made);
        lost = !w[i].made;
    }
    struct waiter late;
    waiter_init(&late);
    assert_int_equal(readback_submit(rb, "http://o.test/long", &req, on_done, &late),
                     CP_ERR_SHUTDOWN);
    readback_stop(rb); /* again: nothing more to do */
    readback_free(rb);
    assert_int_equal(late.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_lands_in_memory_before_done, upfix_setup,
                                        upfix_teardown),
        cmocka_unit_test_setup_teardown(test_stop_answers_every_read, upfix_setup,
                                        upfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
