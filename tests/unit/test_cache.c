/* Unit tests of the in-memory cache: insert, lookup, Vary variants, replacement,
 * removal, and the shared generation counter that empties a running cache. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "http.h"

static struct entry *make_entry(const char *key, const char *vary, const struct hdrs *req,
                                const char *body, uint64_t gen)
{
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup(key);
    e->status = 200;
    e->generation = gen;
    if (vary) {
        assert_int_equal(hdrs_add(&e->headers, "Vary", vary), CP_OK);
        assert_int_equal(http_vary_key(vary, req, &e->vary_key), CP_OK);
    } else {
        e->vary_key = strdup("");
    }
    e->body_len = strlen(body);
    e->body = (unsigned char *)strdup(body);
    return e;
}

static void test_miss_then_hit(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    assert_null(cache_lookup(c, "http://o/a", &req, NULL));

    struct entry *e = make_entry("http://o/a", NULL, &req, "alpha", 0);
    assert_int_equal(cache_insert(c, e), CP_OK);
    entry_unref(e); /* the cache keeps its own reference */

    struct entry *got = cache_lookup(c, "http://o/a", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "alpha", 5);
    assert_null(cache_lookup(c, "http://o/b", &req, NULL));
    assert_int_equal(cache_count(c), 1);
    entry_unref(got);
    cache_free(c);
}

static void test_replace_same_variant(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *a = make_entry("http://o/x", NULL, &req, "old", 0);
    struct entry *b = make_entry("http://o/x", NULL, &req, "new", 0);
    assert_int_equal(cache_insert(c, a), CP_OK);
    /* A reader still holding the old entry keeps it valid after replacement. */
    struct entry *held = cache_lookup(c, "http://o/x", &req, NULL);
    assert_int_equal(cache_insert(c, b), CP_OK);
    assert_int_equal(cache_count(c), 1);
    struct entry *got = cache_lookup(c, "http://o/x", &req, NULL);
    assert_memory_equal(got->body, "new", 3);
    assert_memory_equal(held->body, "old", 3);
    entry_unref(held);
    entry_unref(got);
    entry_unref(a);
    entry_unref(b);
    cache_free(c);
}

static void count_removed(void *arg, const struct entry *e)
{
    assert_string_equal(e->key, "http://o/v");
    ++*(size_t *)arg;
}

static void test_vary_variants(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, &c), CP_OK);
    struct hdrs gz, br, none;
    hdrs_init(&gz);
    hdrs_init(&br);
    hdrs_init(&none);
    hdrs_add(&gz, "Accept-Encoding", "gzip");
    hdrs_add(&br, "accept-encoding", "br");

    struct entry *g = make_entry("http://o/v", "Accept-Encoding", &gz, "GZ", 0);
    assert_int_equal(cache_insert(c, g), CP_OK);
    bool known = false;
    assert_null(cache_lookup(c, "http://o/v", &br, &known));
    assert_true(known); /* a Vary miss: the URL has another variant */
    assert_null(cache_lookup(c, "http://o/v", &none, NULL));
    assert_null(cache_lookup(c, "http://o/elsewhere", &br, &known));
    assert_false(known); /* a URI miss */

    struct entry *b = make_entry("http://o/v", "Accept-Encoding", &br, "BR", 0);
    assert_int_equal(cache_insert(c, b), CP_OK);
    assert_int_equal(cache_count(c), 2);

    struct entry *got = cache_lookup(c, "http://o/v", &gz, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "GZ", 2);
    entry_unref(got);
    got = cache_lookup(c, "http://o/v", &br, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "BR", 2);
    entry_unref(got);

    size_t seen = 0;
    assert_int_equal(cache_remove(c, "http://o/v", count_removed, &seen), 2);
    assert_int_equal(seen, 2);
    assert_int_equal(cache_count(c), 0);
    assert_null(cache_lookup(c, "http://o/v", &gz, NULL));
    entry_unref(g);
    entry_unref(b);
    hdrs_free(&gz);
    hdrs_free(&br);
    cache_free(c);
}

static void test_generation_change_empties(void **state)
{
    (void)state;
    _Atomic uint64_t gen = 7;
    struct cache *c;
    assert_int_equal(cache_new(&gen, &c), CP_OK);
    assert_int_equal(cache_generation(c), 7);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *e = make_entry("http://o/g", NULL, &req, "g", 7);
    assert_int_equal(cache_insert(c, e), CP_OK);
    struct entry *got = cache_lookup(c, "http://o/g", &req, NULL);
    assert_non_null(got);

    atomic_fetch_add(&gen, 1); /* what --clear-cache does from another process */
    assert_null(cache_lookup(c, "http://o/g", &req, NULL));
    assert_int_equal(cache_count(c), 0);
    /* An entry fetched before the clear must not come back. */
    assert_int_equal(cache_insert(c, e), CP_ERR_STALE_GEN);
    assert_int_equal(cache_count(c), 0);
    /* The reader that had it still has valid bytes. */
    assert_memory_equal(got->body, "g", 1);
    entry_unref(got);
    entry_unref(e);
    cache_free(c);
}

struct worker_arg {
    struct cache *c;
    int id;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;
    struct hdrs req;
    hdrs_init(&req);
    char key[64], body[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "http://o/%d", i % 97);
        snprintf(body, sizeof body, "%d-%d", w->id, i);
        struct entry *e = make_entry(key, NULL, &req, body, 0);
        cache_insert(w->c, e);
        entry_unref(e);
        struct entry *got = cache_lookup(w->c, key, &req, NULL);
        if (got) {
            /* Whatever we read is a whole entry for this key, never a torn one. */
            if (strcmp(got->key, key) != 0)
                abort();
            entry_unref(got);
        }
        if (i % 500 == 0)
            cache_remove(w->c, key, NULL, NULL);
    }
    return NULL;
}

static void test_concurrent_use(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, &c), CP_OK);
    pthread_t t[4];
    struct worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct worker_arg){c, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(cache_count(c) <= 97);
    assert_true(cache_count(c) > 0);
    size_t before = cache_count(c);
    assert_int_equal(cache_clear(c), before);
    assert_int_equal(cache_count(c), 0);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miss_then_hit),
        cmocka_unit_test(test_replace_same_variant),
        cmocka_unit_test(test_vary_variants),
        cmocka_unit_test(test_generation_change_empties),
        cmocka_unit_test(test_concurrent_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
