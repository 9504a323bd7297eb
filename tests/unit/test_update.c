/* Unit tests of how origin answers change the cache: storing, 304 merging, invalidation,
 * and lookups that reach the disk while it is still being loaded. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "upfix.h"

/* An origin answer with the given fields (name, value, ..., NULL) and body. */
static struct fetch_result answer(int status, const char *body, ...)
{
    struct fetch_result r = {.status = status};
    hdrs_init(&r.headers);
    va_list ap;
    va_start(ap, body);
    for (const char *n; (n = va_arg(ap, const char *)) != NULL;)
        assert_int_equal(hdrs_add(&r.headers, n, va_arg(ap, const char *)), CP_OK);
    va_end(ap);
    r.body_len = strlen(body);
    r.body = (unsigned char *)strdup(body);
    r.request_time = r.response_time = time(NULL);
    return r;
}

static void test_stored_when_allowed(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    struct fetch_result res = answer(200, "hello", "Cache-Control", "max-age=60", NULL);
    bool stored = false;
    struct entry *e = update_from_response(&f->up, "http://o.test/a", "GET", &req, &res, &stored);
    assert_non_null(e);
    assert_true(stored);
    assert_int_equal(e->lifetime, 60);
    assert_null(res.body); /* taken, not copied */
    struct entry *got = cache_lookup(f->cache, "http://o.test/a", &req, NULL);
    assert_ptr_equal(got, e);
    entry_unref(got);
    entry_unref(e);
    fetch_result_free(&res);

    /* The same answer to a POST is passed on, never stored. */
    res = answer(200, "posted", "Cache-Control", "max-age=60", NULL);
    e = update_from_response(&f->up, "http://o.test/p", "POST", &req, &res, &stored);
    assert_false(stored);
    assert_null(cache_lookup(f->cache, "http://o.test/p", &req, NULL));
    entry_unref(e);
    fetch_result_free(&res);
}

static void test_revalidated_shares_body(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    struct fetch_result res =
        answer(200, "the body", "Cache-Control", "max-age=0", "ETag", "\"v1\"", "X-V", "1", NULL);
    bool stored;
    struct entry *old = update_from_response(&f->up, "http://o.test/r", "GET", &req, &res, &stored);
    assert_true(stored); /* stale at once, but it has a validator */
    fetch_result_free(&res);

    struct fetch_result nm = answer(304, "", "Cache-Control", "max-age=30", "X-V", "2", NULL);
    struct entry *e = update_revalidated(&f->up, old, &req, &nm, &stored);
    assert_non_null(e);
    assert_true(stored);
    assert_ptr_equal(e->body, old->body); /* the bytes are shared, not copied */
    assert_string_equal(hdrs_get(&e->headers, "X-V"), "2");
    assert_string_equal(hdrs_get(&e->headers, "ETag"), "\"v1\"");
    assert_int_equal(e->lifetime, 30);
    struct entry *got = cache_lookup(f->cache, "http://o.test/r", &req, NULL);
    assert_ptr_equal(got, e);
    entry_unref(got);
    entry_unref(old); /* the new entry keeps the bytes alive */
    assert_memory_equal(e->body, "the body", 8);
    entry_unref(e);
    fetch_result_free(&nm);
}

static void test_invalidate_same_origin_only(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    /* Keys are URL and Host (url_cache_key); the last one is x for another Host. */
    const char *keys[] = {"http://o.test/x h.test", "http://o.test/y h.test",
                          "http://o.test/z h.test", "http://o.test/x other.test"};
    for (int i = 0; i < 4; i++) {
        struct fetch_result res = answer(200, "b", "Cache-Control", "max-age=60", NULL);
        bool stored;
        entry_unref(update_from_response(&f->up, keys[i], "GET", &req, &res, &stored));
        assert_true(stored);
        fetch_result_free(&res);
    }
    struct hdrs resp;
    hdrs_init(&resp);
    hdrs_add(&resp, "Location", "/y");
    hdrs_add(&resp, "Content-Location", "http://elsewhere.test/z");
    /* A failed unsafe request changes nothing. */
    update_invalidate(&f->up, "http://o.test/x", "H.test", 500, &resp);
    assert_int_equal(cache_count(f->cache), 4);
    update_invalidate(&f->up, "http://o.test/x", "H.test", 201, &resp);
    assert_null(cache_lookup(f->cache, keys[0], &req, NULL));
    assert_null(cache_lookup(f->cache, keys[1], &req, NULL));
    struct entry *z = cache_lookup(f->cache, keys[2], &req, NULL);
    assert_non_null(z); /* another host's URL is not ours to drop */
    entry_unref(z);
    struct entry *x = cache_lookup(f->cache, keys[3], &req, NULL);
    assert_non_null(x); /* nor is what was stored for another Host */
    entry_unref(x);
    hdrs_free(&resp);
}

/* A miss in memory looks at the entry's record on disk (not loaded yet, or evicted), and
 * keeps what it finds in memory. */
static void test_lookup_reads_disk(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    upfix_write_record(f, "http://o.test/disk", (unsigned char *)strdup("on disk"), 7);

    assert_int_equal(cache_count(f->cache), 0);
    bool known = true;
    struct entry *got = update_lookup(&f->up, "http://o.test/disk", &req, &known, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "on disk", 7);
    entry_unref(got);
    /* ...and it is in memory from then on. */
    assert_int_equal(cache_count(f->cache), 1);
    got = cache_lookup(f->cache, "http://o.test/disk", &req, NULL);
    assert_non_null(got);
    entry_unref(got);
    assert_null(update_lookup(&f->up, "http://o.test/nowhere", &req, &known, NULL));
    assert_false(known);
}

/* A record longer than UPDATE_READ_BACK_MAX is read back by the lookup only while the
 * disk is still being loaded after a restart (so a restart turns no response into a
 * miss); otherwise the lookup is a miss that says the record is there to be read by
 * update_read_back, which keeps it in memory, once however often it is asked. */
static void test_long_record_read_back_while_loading_only(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    upfix_write_record(f, "http://o.test/long", calloc(1, UPDATE_READ_BACK_MAX + 1),
                 UPDATE_READ_BACK_MAX + 1);

    bool known = true, later = false;
    assert_null(update_lookup(&f->up, "http://o.test/long", &req, &known, &later));
    assert_false(known);
    assert_true(later);
    atomic_bool loading;
    atomic_init(&loading, true);
    f->up.loading = &loading;
    struct entry *got = update_lookup(&f->up, "http://o.test/long", &req, NULL, &later);
    assert_non_null(got);
    assert_false(later);
    assert_int_equal(got->body_len, UPDATE_READ_BACK_MAX + 1);
    entry_unref(got);
    f->up.loading = NULL;

    upfix_write_record(f, "http://o.test/long2", calloc(1, UPDATE_READ_BACK_MAX + 1),
                 UPDATE_READ_BACK_MAX + 1);
    assert_null(update_lookup(&f->up, "http://o.test/long2", &req, NULL, &later));
    assert_true(later);
    assert_int_equal(update_read_back(&f->up, "http://o.test/long2", &req), 1);
    assert_int_equal(update_read_back(&f->up, "http://o.test/long2", &req), 0); /* in memory */
    got = update_lookup(&f->up, "http://o.test/long2", &req, NULL, &later);
    assert_non_null(got);
    assert_false(later);
    assert_int_equal(got->body_len, UPDATE_READ_BACK_MAX + 1);
    entry_unref(got);
    assert_int_equal(update_read_back(&f->up, "http://o.test/nowhere", &req), 0);
}

/* Writes a record of `key` varying on Accept-Language, for a request in `lang`, with
 * `len` zero bytes of body. */
static void write_variant(struct upfix *f, const char *key, const char *lang, size_t len)
{
    struct hdrs req;
    hdrs_init(&req);
    assert_int_equal(hdrs_add(&req, "Accept-Language", lang), CP_OK);
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup(key);
    assert_int_equal(http_vary_key("Accept-Language", &req, &e->vary_key), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "Vary", "Accept-Language"), CP_OK);
    e->status = 200;
    e->lifetime = 60;
    e->response_time = time(NULL);
    e->generation = cache_generation(f->cache);
    e->body = calloc(1, len);
    e->body_len = len;
    assert_non_null(e->body);
    assert_int_equal(store_write(f->store, e), CP_OK);
    entry_unref(e);
    hdrs_free(&req);
}

/* Of a URL's variants, the short one is read back by the lookup and the long one left
 * for later; the later read brings the long one, which the request selects, although
 * the short one is in memory already. */
static void test_long_variant_read_later(void **state)
{
    struct upfix *f = *state;
    write_variant(f, "http://o.test/v", "de", 10);
    write_variant(f, "http://o.test/v", "fr", UPDATE_READ_BACK_MAX + 1);
    struct hdrs fr;
    hdrs_init(&fr);
    assert_int_equal(hdrs_add(&fr, "Accept-Language", "fr"), CP_OK);
    bool known = false, later = false;
    assert_null(update_lookup(&f->up, "http://o.test/v", &fr, &known, &later));
    assert_true(later);
    assert_int_equal(cache_count(f->cache), 1); /* the short one */
    assert_int_equal(update_read_back(&f->up, "http://o.test/v", &fr), 2);
    struct entry *got = update_lookup(&f->up, "http://o.test/v", &fr, NULL, &later);
    assert_non_null(got);
    assert_int_equal(got->body_len, UPDATE_READ_BACK_MAX + 1);
    entry_unref(got);
    assert_int_equal(update_read_back(&f->up, "http://o.test/v", &fr), 0); /* in memory */

    /* A lookup that finds what it asked for leaves nothing to read later, whatever
     * else of the URL stays on disk. */
    write_variant(f, "http://o.test/w", "de", 10);
    write_variant(f, "http://o.test/w", "fr", UPDATE_READ_BACK_MAX + 1);
    struct hdrs de;
    hdrs_init(&de);
    assert_int_equal(hdrs_add(&de, "Accept-Language", "de"), CP_OK);
    later = true;
    got = update_lookup(&f->up, "http://o.test/w", &de, NULL, &later);
    assert_non_null(got);
    assert_int_equal(got->body_len, 10);
    assert_false(later);
    entry_unref(got);
    hdrs_free(&de);
    hdrs_free(&fr);
}

/* A Vary miss reads the selected variant's record alone: one in memory, the other on
 * disk only (evicted), the request for the other is answered from disk; a long one is
 * left for a later read, which brings it. */
static void test_vary_miss_reads_variant(void **state)
{
    struct upfix *f = *state;
    write_variant(f, "http://o.test/x", "fr", 10);
    write_variant(f, "http://o.test/x", "it", UPDATE_READ_BACK_MAX + 1);
    struct hdrs de, fr, it;
    hdrs_init(&de);
    hdrs_init(&fr);
    hdrs_init(&it);
    assert_int_equal(hdrs_add(&de, "Accept-Language", "de"), CP_OK);
    assert_int_equal(hdrs_add(&fr, "Accept-Language", "fr"), CP_OK);
    assert_int_equal(hdrs_add(&it, "Accept-Language", "it"), CP_OK);
    /* de comes from the origin: in memory only, with its Vary. */
    struct fetch_result res = answer(200, "deutsch", "Cache-Control", "max-age=60", "Vary",
                                     "Accept-Language", NULL);
    bool stored = false;
    entry_unref(update_from_response(&f->up, "http://o.test/x", "GET", &de, &res, &stored));
    fetch_result_free(&res);
    assert_true(stored);
    assert_int_equal(cache_count(f->cache), 1);

    bool known = false, later = true;
    struct entry *got = update_lookup(&f->up, "http://o.test/x", &fr, &known, &later);
    assert_non_null(got); /* read back, not a Vary miss */
    assert_int_equal(got->body_len, 10);
    assert_false(later);
    entry_unref(got);
    assert_int_equal(cache_count(f->cache), 2);

    assert_null(update_lookup(&f->up, "http://o.test/x", &it, &known, &later));
    assert_true(known);
    assert_true(later);
    assert_int_equal(update_read_back(&f->up, "http://o.test/x", &it), 2);
    got = update_lookup(&f->up, "http://o.test/x", &it, NULL, &later);
    assert_non_null(got);
    assert_int_equal(got->body_len, UPDATE_READ_BACK_MAX + 1);
    entry_unref(got);

    struct hdrs es;
    hdrs_init(&es);
    assert_int_equal(hdrs_add(&es, "Accept-Language", "es"), CP_OK);
    assert_null(update_lookup(&f->up, "http://o.test/x", &es, &known, &later)); /* none */
    assert_true(known);
    assert_false(later);
    hdrs_free(&es);
    hdrs_free(&de);
    hdrs_free(&fr);
    hdrs_free(&it);
}

/* A record longer than memory can hold is not one to read later: memory would refuse
 * it, and the origin answers as for any response too large to keep. */
static void test_record_beyond_memory_not_read_later(void **state)
{
    struct upfix *f = *state;
    struct cache *small;
    assert_int_equal(cache_new(store_generation_ptr(f->store), 64 * 1024, &small), CP_OK);
    struct updater up = f->up;
    up.cache = small;
    struct hdrs req;
    hdrs_init(&req);
    upfix_write_record(f, "http://o.test/huge", calloc(1, UPDATE_READ_BACK_MAX + 1),
                 UPDATE_READ_BACK_MAX + 1);
    upfix_write_record(f, "http://o.test/fits", calloc(1, 1000), 1000);
    bool later = true;
    assert_null(update_lookup(&up, "http://o.test/huge", &req, NULL, &later));
    assert_false(later);
    assert_int_equal(update_read_back(&up, "http://o.test/huge", &req), 0);
    struct entry *got = update_lookup(&up, "http://o.test/fits", &req, NULL, &later);
    assert_non_null(got);
    entry_unref(got);
    cache_free(small);
}

/* An invalidation wins over the disk copy at once: the lookup right after it (while the
 * mirror's writer still lingers before it removes the record) finds nothing, and so does
 * one after the removal is on disk. */
static void test_lookup_after_invalidation(void **state)
{
    struct upfix *f = *state;
    assert_int_equal(mirror_start(f->store, &f->up.mirror), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    const char *key = "http://o.test/inv h.test";
    upfix_write_record(f, key, (unsigned char *)strdup("old"), 3);

    struct hdrs resp;
    hdrs_init(&resp);
    update_invalidate(&f->up, "http://o.test/inv", "h.test", 204, &resp);
    assert_null(update_lookup(&f->up, key, &req, NULL, NULL));
    mirror_stop(f->up.mirror); /* writes the removal */
    f->up.mirror = NULL;
    assert_null(update_lookup(&f->up, key, &req, NULL, NULL));
    assert_int_equal(cache_count(f->cache), 0);
    hdrs_free(&resp);
}

/* A stored response is refreshed in the background once, not once per stale hit. */
static void test_refresh_started_once(void **state)
{
    struct upfix *f = *state;
    struct hdrs req;
    hdrs_init(&req);
    struct entry *e = entry_new();
    e->key = strdup("http://o.test/swr");
    atomic_store(&e->refreshing, true); /* as after a first refresh */
    /* No fetcher in this fixture: a second refresh that went ahead would crash. */
    assert_null(f->up.fetcher);
    assert_int_equal(update_refresh(&f->up, e, &req), CP_OK);
    assert_true(atomic_load(&e->refreshing));
    entry_unref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_when_allowed, upfix_setup, upfix_teardown),
        cmocka_unit_test_setup_teardown(test_revalidated_shares_body, upfix_setup, upfix_teardown),
        cmocka_unit_test_setup_teardown(test_invalidate_same_origin_only, upfix_setup, upfix_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_reads_disk, upfix_setup, upfix_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_after_invalidation, upfix_setup, upfix_teardown),
        cmocka_unit_test_setup_teardown(test_long_record_read_back_while_loading_only, upfix_setup,
                                        upfix_teardown),
        cmocka_unit_test_setup_teardown(test_long_variant_read_later, upfix_setup,
                                        upfix_teardown),
        cmocka_unit_test_setup_teardown(test_vary_miss_reads_variant, upfix_setup,
                                        upfix_teardown),
        cmocka_unit_test_setup_teardown(test_record_beyond_memory_not_read_later, upfix_setup,
                                        upfix_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_started_once, upfix_setup, upfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
