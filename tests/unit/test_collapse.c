/* Unit tests of the collapsing registry: one fetch per key, waiters woken in order,
 * and keys remembered as not storable for a while. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "collapse.h"

static int woken[8];
static int n_woken;

static void wake(void *waiter)
{
    woken[n_woken++] = *(int *)waiter;
}

static void test_one_leader_waiters_in_order(void **state)
{
    (void)state;
    struct collapse *c;
    assert_int_equal(collapse_new(&c), CP_OK);
    int a = 1, b = 2, d = 3;
    bool leader;
    assert_false(collapse_join(c, "k", &a, &leader, 100));
    assert_true(leader);
    assert_true(collapse_join(c, "k", &b, &leader, 100));
    assert_false(leader);
    assert_true(collapse_join(c, "k", &d, &leader, 100));
    /* another key is independent */
    assert_false(collapse_join(c, "other", &a, &leader, 100));
    assert_true(leader);

    n_woken = 0;
    collapse_finish(c, "k", wake, true, 101);
    assert_int_equal(n_woken, 2);
    assert_int_equal(woken[0], 2);
    assert_int_equal(woken[1], 3);
    /* stored: the next request for it leads a new fetch */
    assert_false(collapse_join(c, "k", &a, &leader, 102));
    assert_true(leader);
    collapse_finish(c, "k", wake, true, 103);
    collapse_finish(c, "other", wake, true, 103);
    collapse_free(c);
}

static void test_not_storable_remembered(void **state)
{
    (void)state;
    struct collapse *c;
    assert_int_equal(collapse_new(&c), CP_OK);
    int a = 1, b = 2;
    bool leader;
    assert_false(collapse_join(c, "dyn", &a, &leader, 1000));
    assert_true(leader);
    n_woken = 0;
    collapse_finish(c, "dyn", wake, false, 1000);
    /* within the window: nobody leads, nobody waits */
    assert_false(collapse_join(c, "dyn", &a, &leader, 1000 + COLLAPSE_PASS_SECONDS - 1));
    assert_false(leader);
    assert_false(collapse_join(c, "dyn", &b, &leader, 1000 + COLLAPSE_PASS_SECONDS - 1));
    assert_false(leader);
    /* after it: collapsing again */
    assert_false(collapse_join(c, "dyn", &a, &leader, 1000 + COLLAPSE_PASS_SECONDS));
    assert_true(leader);
    assert_true(collapse_join(c, "dyn", &b, &leader, 1000 + COLLAPSE_PASS_SECONDS));
    collapse_finish(c, "dyn", wake, true, 1000 + COLLAPSE_PASS_SECONDS);
    assert_int_equal(n_woken, 1);
    collapse_free(c);
}

static void test_pass_marks_bounded(void **state)
{
    (void)state;
    struct collapse *c;
    assert_int_equal(collapse_new(&c), CP_OK);
    char key[32];
    bool leader;
    int a = 1;
    for (int i = 0; i <= COLLAPSE_PASS_MAX; i++) {
        snprintf(key, sizeof key, "u%d", i);
        assert_false(collapse_join(c, key, &a, &leader, 5));
        assert_true(leader);
        collapse_finish(c, key, wake, false, 5);
    }
    /* Past the bound the marks were dropped: the first key collapses again. */
    assert_false(collapse_join(c, "u0", &a, &leader, 6));
    assert_true(leader);
    collapse_finish(c, "u0", wake, true, 6);
    collapse_free(c);
}

static int shared[8];
static int n_shared;

static void share(void *waiter, void *arg)
{
    (void)arg;
    shared[n_shared++] = *(int *)waiter;
}

/* Once the body can be shared, queued and later waiters alike are handed it; the
 * end still wakes nobody twice. */
static void test_release_shares_now_and_later(void **state)
{
    (void)state;
    struct collapse *c;
    assert_int_equal(collapse_new(&c), CP_OK);
    int a = 1, b = 2, d = 3;
    bool leader;
    assert_false(collapse_join(c, "s", &a, &leader, 10));
    assert_true(collapse_join(c, "s", &b, &leader, 10));
    n_shared = 0;
    collapse_release(c, "s", share, NULL);
    assert_int_equal(n_shared, 1);
    assert_int_equal(shared[0], 2);
    assert_true(collapse_join(c, "s", &d, &leader, 11)); /* joins the readers at once */
    assert_int_equal(n_shared, 2);
    assert_int_equal(shared[1], 3);
    n_woken = 0;
    collapse_finish(c, "s", wake, true, 12);
    assert_int_equal(n_woken, 0);
    collapse_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_leader_waiters_in_order),
        cmocka_unit_test(test_not_storable_remembered),
        cmocka_unit_test(test_pass_marks_bounded),
        cmocka_unit_test(test_release_shares_now_and_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
