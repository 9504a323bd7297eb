/* Unit tests of the relay: bytes handed from a writer to a reader as they come, kept
 * whole up to a limit, past it a window with the writer paused and resumed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "relay.h"

static int resumes, wakes, parks;
static void on_resume(void *arg) { (void)arg; resumes++; }
static void on_wake(void *arg) { (void)arg; wakes++; }
static void on_park(void *arg) { (void)arg; parks++; }

static void reset(void) { resumes = wakes = parks = 0; }

static void test_read_as_written_and_kept(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(100, 10, on_resume, NULL);
    struct relay_reader *rd = relay_add_reader(r, on_wake, NULL);
    char buf[64];
    /* nothing yet: the reader parks, and the next write wakes it */
    assert_int_equal(relay_read(r, rd, 0, buf, sizeof buf, on_park, NULL), RELAY_WAIT);
    assert_int_equal(parks, 1);
    assert_true(relay_write(r, "hello ", 6));
    assert_int_equal(wakes, 1);
    /* everything but the last byte: that one waits for the end */
    assert_int_equal(relay_read(r, rd, 0, buf, sizeof buf, on_park, NULL), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_true(relay_write(r, "world", 5));
    assert_int_equal(relay_read(r, rd, 5, buf, 3, on_park, NULL), 3); /* at most max */
    assert_memory_equal(buf, " wo", 3);
    assert_int_equal(relay_read(r, rd, 8, buf, sizeof buf, on_park, NULL), 2);
    assert_memory_equal(buf, "rl", 2);
    assert_int_equal(relay_read(r, rd, 10, buf, sizeof buf, on_park, NULL), RELAY_WAIT);
    /* kept whole (under the limit): the bytes can be taken whole for storing */
    assert_true(relay_keeping(r));
    assert_int_equal(relay_held(r), 11);
    size_t len = 0;
    unsigned char *body = NULL;
    assert_true(relay_take(r, &body, &len));
    assert_non_null(body);
    assert_int_equal(len, 11);
    assert_memory_equal(body, "hello world", 11);
    relay_keep(r, body, free);
    relay_end(r, true);
    assert_int_equal(relay_read(r, rd, 10, buf, sizeof buf, on_park, NULL), 1);
    assert_memory_equal(buf, "d", 1);
    assert_int_equal(relay_read(r, rd, 11, buf, sizeof buf, on_park, NULL), RELAY_END);
    /* still readable from the taken bytes */
    assert_int_equal(relay_read(r, rd, 0, buf, 5, on_park, NULL), 5);
    relay_unref(r);
}

/* An empty body kept whole can be taken too (to be stored): there are just no bytes. */
static void test_empty_body_taken(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(100, 10, on_resume, NULL);
    struct relay_reader *rd = relay_add_reader(r, on_wake, NULL);
    char buf[8];
    relay_expect(r, 0);
    unsigned char *body = (unsigned char *)"x";
    size_t len = 99;
    assert_true(relay_take(r, &body, &len));
    assert_null(body);
    assert_int_equal(len, 0);
    relay_keep(r, body, free);
    relay_end(r, true);
    assert_int_equal(relay_read(r, rd, 0, buf, sizeof buf, on_park, NULL), RELAY_END);
    relay_unref(r);
}

static void test_whole_only_when_complete(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(100, 10, on_resume, NULL);
    relay_expect(r, 11);
    size_t len = 99;
    assert_true(relay_write(r, "hello ", 6));
    assert_null(relay_whole(r, &len)); /* still arriving */
    assert_true(relay_write(r, "world", 5));
    assert_null(relay_whole(r, &len)); /* all bytes in, but the end not known yet */
    size_t tlen = 0;
    unsigned char *body = NULL;
    assert_true(relay_take(r, &body, &tlen));
    assert_non_null(body);
    relay_keep(r, body, free);
    relay_end(r, true);
    const unsigned char *w = relay_whole(r, &len);
    assert_ptr_equal(w, body); /* the very bytes, not a copy */
    assert_int_equal(len, 11);
    assert_memory_equal(w, "hello world", 11);
    relay_unref(r);

    /* a failed transfer has no whole body */
    r = relay_new(100, 10, on_resume, NULL);
    assert_true(relay_write(r, "abc", 3));
    relay_end(r, false);
    assert_null(relay_whole(r, &len));
    relay_unref(r);

    /* nor has one that was not kept (too large to store, or never storable) */
    r = relay_new(4, 100, on_resume, NULL);
    relay_expect(r, 6); /* over the limit: no room reserved for keeping */
    assert_true(relay_write(r, "abcdef", 6));
    assert_false(relay_keeping(r));
    relay_end(r, true);
    assert_null(relay_whole(r, &len));
    relay_unref(r);

    /* an empty body, kept, is whole and empty */
    r = relay_new(100, 10, on_resume, NULL);
    relay_end(r, true);
    assert_non_null(relay_whole(r, &len));
    assert_int_equal(len, 0);
    relay_unref(r);
}

static void test_window_pauses_and_resumes(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(8, 16, on_resume, NULL); /* keeps up to 8 bytes only */
    struct relay_reader *rd = relay_add_reader(r, on_wake, NULL);
    char buf[64];
    assert_true(relay_write(r, "0123456789", 10)); /* over 8: no longer kept */
    assert_false(relay_keeping(r));
    assert_true(relay_write(r, "abcdef", 6));       /* 16 unread: the window is full */
    assert_false(relay_write(r, "X", 1));           /* refused: the writer pauses */
    assert_int_equal(relay_held(r), 16);
    assert_int_equal(relay_read(r, rd, 0, buf, 12, on_park, NULL), 12);
    assert_int_equal(resumes, 1);                   /* room again: resumed once */
    assert_true(relay_held(r) <= 4);                /* what was read is dropped */
    assert_true(relay_write(r, "X", 1));
    assert_int_equal(relay_read(r, rd, 12, buf, sizeof buf, on_park, NULL), 4);
    assert_memory_equal(buf, "cdef", 4);
    /* not kept: nothing to take for storing */
    size_t len;
    unsigned char *none = NULL;
    assert_false(relay_take(r, &none, &len));
    assert_null(none);
    relay_end(r, false);
    assert_int_equal(relay_read(r, rd, 16, buf, sizeof buf, on_park, NULL), 1);
    assert_int_equal(relay_read(r, rd, 17, buf, sizeof buf, on_park, NULL), RELAY_ERROR);
    relay_unref(r);
}

static void test_reader_gone(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(0, 4, on_resume, NULL);
    struct relay_reader *rd = relay_add_reader(r, on_wake, NULL);
    assert_true(relay_write(r, "abcd", 4));
    assert_false(relay_write(r, "e", 1)); /* paused for a reader... */
    relay_reader_gone(r, rd);            /* ...who leaves: the writer goes on */
    assert_int_equal(resumes, 1);
    assert_true(relay_write(r, "efghijklmnop", 12)); /* and nothing piles up */
    assert_int_equal(relay_held(r), 0);
    relay_end(r, true);
    relay_unref(r);
}

/* Several readers of a body kept whole each read all of it, at their own pace, and
 * each parked one is woken. A reader cannot join once the start has been dropped. */
static void test_several_readers(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(1000, 10, on_resume, NULL);
    struct relay_reader *a = relay_add_reader(r, on_wake, NULL);
    struct relay_reader *b = relay_add_reader(r, on_wake, NULL);
    char buf[64];
    assert_int_equal(relay_read(r, a, 0, buf, sizeof buf, on_park, NULL), RELAY_WAIT);
    assert_int_equal(relay_read(r, b, 0, buf, sizeof buf, on_park, NULL), RELAY_WAIT);
    assert_true(relay_write(r, "shared", 6));
    assert_int_equal(wakes, 2);
    assert_int_equal(relay_read(r, a, 0, buf, sizeof buf, on_park, NULL), 5);
    assert_true(relay_write(r, " bytes", 6));
    relay_end(r, true);
    assert_int_equal(relay_read(r, b, 0, buf, sizeof buf, on_park, NULL), 12);
    assert_memory_equal(buf, "shared bytes", 12);
    assert_int_equal(relay_read(r, a, 5, buf, sizeof buf, on_park, NULL), 7);
    relay_reader_gone(r, a);
    relay_reader_gone(r, b);
    relay_unref(r);

    /* not kept: once the first reader has moved on, the start is gone */
    struct relay *w = relay_new(0, 100, on_resume, NULL);
    struct relay_reader *first = relay_add_reader(w, on_wake, NULL);
    assert_true(relay_write(w, "0123456789", 10));
    assert_int_equal(relay_read(w, first, 0, buf, 5, on_park, NULL), 5);
    assert_true(relay_held(w) <= 5); /* the start is dropped once read */
    assert_null(relay_add_reader(w, on_wake, NULL));
    relay_reader_gone(w, first);
    relay_unref(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_as_written_and_kept),
        cmocka_unit_test(test_empty_body_taken),
        cmocka_unit_test(test_whole_only_when_complete),
        cmocka_unit_test(test_window_pauses_and_resumes),
        cmocka_unit_test(test_reader_gone),
        cmocka_unit_test(test_several_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
