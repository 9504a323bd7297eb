/* Tests of the open-file limit: the descriptors a number of connections needs and the
 * connections a number of descriptors allows agree, at the edges too; raising the soft
 * limit goes no further than asked or than the hard limit, and never lowers it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "fdlimit.h"

static void test_files_and_connections_agree(void **state)
{
    (void)state;
    assert_int_equal(fdlimit_files_for(1), 2 + FDLIMIT_RESERVE);
    assert_int_equal(fdlimit_files_for(10000), 20000 + FDLIMIT_RESERVE);
    for (unsigned n = 1; n < 5000; n += 7) {
        uint64_t files = fdlimit_files_for(n);
        assert_int_equal(fdlimit_connections_within(files, UINT32_MAX), n);
        assert_int_equal(fdlimit_connections_within(files + 1, UINT32_MAX), n);
        assert_int_equal(fdlimit_connections_within(files - 1, UINT32_MAX), n - 1);
    }
    /* Not even one, and the cap. */
    assert_int_equal(fdlimit_connections_within(0, 100), 0);
    assert_int_equal(fdlimit_connections_within(fdlimit_files_for(1) - 1, 100), 0);
    assert_int_equal(fdlimit_connections_within(1024, 100), 100);
    assert_int_equal(fdlimit_connections_within(1024, 1000), (1024 - FDLIMIT_RESERVE) / 2);
    assert_int_equal(fdlimit_connections_within(UINT64_MAX, FDLIMIT_DEFAULT_CONNECTIONS),
                     FDLIMIT_DEFAULT_CONNECTIONS);
}

/* On this process's own limit: a soft limit below the hard one is raised as asked,
 * capped at the hard limit; asking for less leaves it as it is. */
static void test_raise(void **state)
{
    (void)state;
    struct rlimit orig;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &orig), 0);
    if (orig.rlim_max != RLIM_INFINITY && orig.rlim_max < 64)
        skip(); /* no room to move the soft limit in */
    rlim_t hard = orig.rlim_max;
    struct rlimit low = {32, hard};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

    uint64_t have = 0;
    assert_int_equal(fdlimit_raise(48, &have), CP_OK);
    assert_int_equal(have, 48);
    assert_int_equal(fdlimit_raise(40, &have), CP_OK); /* never lowered */
    assert_int_equal(have, 48);
    struct rlimit now;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_int_equal(now.rlim_cur, 48);
    assert_int_equal(now.rlim_max, hard);
    if (hard != RLIM_INFINITY) {
        assert_int_equal(fdlimit_raise(UINT64_MAX, &have), CP_OK);
        assert_int_equal(have, (uint64_t)hard);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &orig), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_connections_agree),
        cmocka_unit_test(test_raise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
