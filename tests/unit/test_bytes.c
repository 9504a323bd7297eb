/* Unit tests of growable byte buffers: first size, doubling, contents kept, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bytes.h"

static void test_grows_and_keeps(void **state)
{
    (void)state;
    unsigned char *b = NULL;
    size_t cap = 0;
    assert_int_equal(bytes_reserve(&b, &cap, 10, 0), CP_OK);
    assert_int_equal(cap, 4096); /* the default first size */
    memcpy(b, "0123456789", 10);
    assert_int_equal(bytes_reserve(&b, &cap, 4096, 0), CP_OK);
    assert_int_equal(cap, 4096); /* enough already: nothing moves */
    assert_int_equal(bytes_reserve(&b, &cap, 10000, 0), CP_OK);
    assert_int_equal(cap, 16384); /* doubled until it fits */
    assert_memory_equal(b, "0123456789", 10);
    free(b);

    /* an announced size is taken as it is */
    b = NULL;
    cap = 0;
    assert_int_equal(bytes_reserve(&b, &cap, 100, 1500), CP_OK);
    assert_int_equal(cap, 1500);
    assert_int_equal(bytes_reserve(&b, &cap, 1501, 1500), CP_OK);
    assert_int_equal(cap, 3000);
    free(b);
}

static void test_impossible_size(void **state)
{
    (void)state;
    unsigned char *b = NULL;
    size_t cap = 0;
    assert_int_equal(bytes_reserve(&b, &cap, SIZE_MAX, 0), CP_ERR_NOMEM);
    assert_null(b);
    assert_int_equal(cap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_keeps),
        cmocka_unit_test(test_impossible_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
