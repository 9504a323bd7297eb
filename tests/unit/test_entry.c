/* Unit tests for entries (src/entry.c): packing moves the fields into one block without
 * changing what they read as, and reference counting frees whatever the entry owns. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "entry.h"

static struct entry *sample(void)
{
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup("http://origin.test/a?b=1");
    e->vary_key = strdup("accept-encoding=gzip");
    assert_int_equal(hdrs_add(&e->headers, "Content-Type", "text/plain"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "Set-Cookie", "a=1"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "Set-Cookie", "b=2"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "ETag", "\"v1\""), CP_OK);
    e->body = (unsigned char *)strdup("hello");
    e->body_len = 5;
    e->status = 200;
    return e;
}

static void test_pack_keeps_fields(void **state)
{
    (void)state;
    struct entry *e = sample();
    char *old_key = e->key;
    assert_int_equal(entry_pack(e), CP_OK);
    assert_non_null(e->packed);
    assert_ptr_not_equal(e->key, old_key); /* moved, not aliased to freed memory */
    assert_string_equal(e->key, "http://origin.test/a?b=1");
    assert_string_equal(e->vary_key, "accept-encoding=gzip");
    assert_int_equal(e->headers.n, 4);
    assert_int_equal(e->headers.cap, 4); /* no slack kept */
    assert_string_equal(hdrs_get(&e->headers, "content-type"), "text/plain");
    assert_int_equal(hdrs_count(&e->headers, "Set-Cookie"), 2);
    assert_string_equal(e->headers.v[1].value, "a=1");
    assert_string_equal(e->headers.v[2].value, "b=2");
    assert_string_equal(hdrs_get(&e->headers, "ETag"), "\"v1\"");
    /* Every string lies inside the one block. */
    const char *lo = e->packed;
    for (size_t i = 0; i < e->headers.n; i++) {
        assert_true(e->headers.v[i].name > lo);
        assert_true(e->headers.v[i].value > lo);
    }
    assert_memory_equal(e->body, "hello", 5);
    assert_int_equal(e->status, 200);
    entry_unref(e); /* frees the block, the body and the entry: ASan checks */
}

static void test_pack_twice_and_copy(void **state)
{
    (void)state;
    struct entry *e = sample();
    assert_int_equal(entry_pack(e), CP_OK);
    void *block = e->packed;
    assert_int_equal(entry_pack(e), CP_OK);
    assert_ptr_equal(e->packed, block);
    /* A packed list copies like any other (forwarding copies stored fields). */
    struct hdrs copy;
    hdrs_init(&copy);
    assert_int_equal(hdrs_copy(&copy, &e->headers), CP_OK);
    assert_int_equal(copy.n, 4);
    assert_string_equal(hdrs_get(&copy, "Content-Type"), "text/plain");
    hdrs_free(&copy);
    entry_unref(e);
}

static bool not_cookie(const struct hdrs *src, const char *name)
{
    (void)src;
    return strcasecmp(name, "Set-Cookie") != 0;
}

/* entry_pack_from copies only what the filter keeps, in order, with the given keys,
 * also when they are the entry's own; packing again replaces the block. */
static void test_pack_from_filter(void **state)
{
    (void)state;
    struct entry *e = sample();
    struct hdrs src;
    hdrs_init(&src);
    assert_int_equal(hdrs_copy(&src, &e->headers), CP_OK);
    assert_int_equal(entry_pack_from(e, e->key, NULL, &src, not_cookie), CP_OK);
    assert_string_equal(e->key, "http://origin.test/a?b=1");
    assert_null(e->vary_key);
    assert_int_equal(e->headers.n, 2);
    assert_string_equal(e->headers.v[0].name, "Content-Type");
    assert_string_equal(e->headers.v[1].name, "ETag");
    void *block = e->packed;
    /* From its own packed fields and keys: everything read before anything is freed. */
    assert_int_equal(entry_pack_from(e, e->key, "v", &e->headers, NULL), CP_OK);
    assert_ptr_not_equal(e->packed, block);
    assert_string_equal(e->key, "http://origin.test/a?b=1");
    assert_string_equal(e->vary_key, "v");
    assert_int_equal(e->headers.n, 2);
    assert_string_equal(hdrs_get(&e->headers, "etag"), "\"v1\"");
    hdrs_free(&src);
    entry_unref(e);
}

static void test_pack_empty(void **state)
{
    (void)state;
    struct entry *e = entry_new();
    assert_non_null(e);
    assert_int_equal(entry_pack(e), CP_OK);
    assert_null(e->key);
    assert_null(e->vary_key);
    assert_int_equal(e->headers.n, 0);
    assert_null(hdrs_get(&e->headers, "Anything"));
    entry_unref(e);
}

static void test_shared_body_survives_owner(void **state)
{
    (void)state;
    struct entry *owner = sample();
    assert_int_equal(entry_pack(owner), CP_OK);
    struct entry *e = entry_new();
    assert_non_null(e);
    entry_share_body(e, owner);
    entry_unref(owner); /* the sharer keeps the bytes alive */
    assert_int_equal(e->body_len, 5);
    assert_memory_equal(e->body, "hello", 5);
    struct entry *e2 = entry_new();
    assert_non_null(e2);
    entry_share_body(e2, e); /* points at the real owner, not at e */
    assert_ptr_equal(e2->body_owner, e->body_owner);
    entry_unref(e);
    assert_memory_equal(e2->body, "hello", 5);
    entry_unref(e2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_keeps_fields),
        cmocka_unit_test(test_pack_twice_and_copy),
        cmocka_unit_test(test_pack_empty),
        cmocka_unit_test(test_pack_from_filter),
        cmocka_unit_test(test_shared_body_survives_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
