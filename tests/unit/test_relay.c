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
    relay_set_reader(r, on_wake, NULL);
    char buf[64];
    /* nothing yet: the reader parks, and the next write wakes it */
    assert_int_equal(relay_read(r, 0, buf, sizeof buf, on_park, NULL), RELAY_WAIT);
    assert_int_equal(parks, 1);
    assert_true(relay_write(r, "hello ", 6));
    assert_int_equal(wakes, 1);
    assert_int_equal(relay_read(r, 0, buf, sizeof buf, on_park, NULL), 6);
    assert_memory_equal(buf, "hello ", 6);
    assert_true(relay_write(r, "world", 5));
    assert_int_equal(relay_read(r, 6, buf, 3, on_park, NULL), 3); /* at most max */
    assert_memory_equal(buf, "wor", 3);
    assert_int_equal(relay_read(r, 9, buf, sizeof buf, on_park, NULL), 2);
    /* kept whole (under the limit): the bytes can be taken whole for storing */
    assert_true(relay_keeping(r));
    assert_int_equal(relay_held(r), 11);
    size_t len = 0;
    unsigned char *body = relay_take(r, &len);
    assert_non_null(body);
    assert_int_equal(len, 11);
    assert_memory_equal(body, "hello world", 11);
    relay_keep(r, body, free);
    relay_end(r, true);
    assert_int_equal(relay_read(r, 11, buf, sizeof buf, on_park, NULL), RELAY_END);
    /* still readable from the taken bytes */
    assert_int_equal(relay_read(r, 0, buf, 5, on_park, NULL), 5);
    relay_unref(r);
}

static void test_window_pauses_and_resumes(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(8, 16, on_resume, NULL); /* keeps up to 8 bytes only */
    relay_set_reader(r, on_wake, NULL);
    char buf[64];
    assert_true(relay_write(r, "0123456789", 10)); /* over 8: no longer kept */
    assert_false(relay_keeping(r));
    assert_true(relay_write(r, "abcdef", 6));       /* 16 unread: the window is full */
    assert_false(relay_write(r, "X", 1));           /* refused: the writer pauses */
    assert_int_equal(relay_held(r), 16);
    assert_int_equal(relay_read(r, 0, buf, 12, on_park, NULL), 12);
    assert_int_equal(resumes, 1);                   /* room again: resumed once */
    assert_true(relay_held(r) <= 4);                /* what was read is dropped */
    assert_true(relay_write(r, "X", 1));
    assert_int_equal(relay_read(r, 12, buf, sizeof buf, on_park, NULL), 5);
    assert_memory_equal(buf, "cdefX", 5);
    /* not kept: nothing to take for storing */
    size_t len;
    assert_null(relay_take(r, &len));
    relay_end(r, false);
    assert_int_equal(relay_read(r, 17, buf, sizeof buf, on_park, NULL), RELAY_ERROR);
    relay_unref(r);
}

static void test_reader_gone(void **state)
{
    (void)state;
    reset();
    struct relay *r = relay_new(0, 4, on_resume, NULL);
    assert_true(relay_write(r, "abcd", 4));
    assert_false(relay_write(r, "e", 1)); /* paused for a reader... */
    relay_reader_gone(r);                /* ...who leaves: the writer goes on */
    assert_int_equal(resumes, 1);
    assert_true(relay_write(r, "efghijklmnop", 12)); /* and nothing piles up */
    assert_int_equal(relay_held(r), 0);
    relay_end(r, true);
    relay_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_as_written_and_kept),
        cmocka_unit_test(test_window_pauses_and_resumes),
        cmocka_unit_test(test_reader_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
