/* Unit tests of the in-memory cache: insert, lookup, Vary variants, replacement,
 * removal, the shared generation counter that empties a running cache, and the byte
 * bound: accounting, CLOCK eviction order, and the bound under concurrent use. */
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
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
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

static void tally(void *arg, const struct entry *e)
{
    assert_string_equal(e->key, "http://o/a");
    ++*(int *)arg;
}

/* While the disk loads, an invalidation keeps the disk's copy out, whether the response
 * was in memory already or not yet; a fresh response is stored as usual; once the load
 * ends, the marks are gone. */
static void test_invalidated_while_loading(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    bool known = true;
    cache_load_begin(c);

    /* In memory (loaded), then invalidated: the same copy read again is refused. */
    struct entry *a = make_entry("http://o/a", NULL, &req, "old a", 0);
    assert_int_equal(cache_insert_loaded(c, a), CP_OK);
    int removed = 0;
    assert_int_equal(cache_remove(c, "http://o/a", tally, &removed), 1);
    assert_int_equal(removed, 1);
    assert_int_equal(cache_insert_loaded(c, a), CP_ERR_SUPERSEDED);
    assert_null(cache_lookup(c, "http://o/a", &req, &known));
    assert_false(known); /* the mark is no stored response */
    assert_int_equal(cache_count(c), 0);
    /* A response fetched after the invalidation is stored and found. */
    struct entry *a2 = make_entry("http://o/a", NULL, &req, "new a", 0);
    assert_int_equal(cache_insert(c, a2), CP_OK);
    struct entry *got = cache_lookup(c, "http://o/a", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "new a", 5);
    entry_unref(got);

    /* Not loaded yet when invalidated: its copy from disk never gets in. */
    assert_int_equal(cache_remove(c, "http://o/b", NULL, NULL), 0);
    struct entry *b = make_entry("http://o/b", NULL, &req, "old b", 0);
    assert_int_equal(cache_insert_loaded(c, b), CP_ERR_SUPERSEDED);
    assert_null(cache_lookup(c, "http://o/b", &req, NULL));
    /* Other keys load as usual. */
    struct entry *d = make_entry("http://o/d", NULL, &req, "d", 0);
    assert_int_equal(cache_insert_loaded(c, d), CP_OK);

    cache_load_end(c);
    assert_int_equal(cache_count(c), 2); /* a2 and d; no mark left behind as an entry */
    assert_int_equal(cache_insert_loaded(c, b), CP_OK); /* marks gone with the load */
    /* Outside a load, a removal leaves nothing behind. */
    assert_int_equal(cache_remove(c, "http://o/d", NULL, NULL), 1);
    assert_int_equal(cache_insert_loaded(c, d), CP_OK);
    entry_unref(a);
    entry_unref(a2);
    entry_unref(b);
    entry_unref(d);
    cache_free(c);
}

/* A copy read back from disk is refused when its key was removed, or stored afresh (and
 * perhaps evicted again), after the caller's count was taken; kept otherwise. */
static void test_read_refused_after_change(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *a = make_entry("http://o/a", NULL, &req, "from disk", 0);

    uint64_t before = cache_changes(c, "http://o/a");
    assert_int_equal(cache_remove(c, "http://o/a", NULL, NULL), 0); /* not in memory */
    assert_int_equal(cache_insert_read(c, a, before), CP_ERR_SUPERSEDED);
    assert_null(cache_lookup(c, "http://o/a", &req, NULL));
    /* A fresh response stored meanwhile and evicted at once (before its own copy
     * reaches the disk): the older copy read back is refused all the same. */
    struct entry *fresh = make_entry("http://o/a", NULL, &req, "fresh", 0);
    struct entry *other = make_entry("http://o/b", NULL, &req, "other", 0);
    struct cache *small;
    assert_int_equal(cache_new(NULL, cache_entry_size(fresh) + 8, &small), CP_OK);
    before = cache_changes(small, "http://o/a");
    assert_int_equal(cache_insert(small, fresh), CP_OK);
    assert_int_equal(cache_insert(small, other), CP_OK); /* evicts `fresh` */
    assert_null(cache_lookup(small, "http://o/a", &req, NULL));
    assert_int_equal(cache_insert_read(small, a, before), CP_ERR_SUPERSEDED);
    assert_null(cache_lookup(small, "http://o/a", &req, NULL));
    cache_free(small);
    /* With no change since the count was taken, it is stored and found; the copies
     * read back do not count as changes. */
    before = cache_changes(c, "http://o/a");
    assert_int_equal(cache_insert_read(c, a, before), CP_OK);
    assert_int_equal(cache_changes(c, "http://o/a"), before);
    struct entry *got = cache_lookup(c, "http://o/a", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "from disk", 9);
    entry_unref(got);
    /* A removal after the insert removes it, as any removal would. */
    assert_int_equal(cache_remove(c, "http://o/a", NULL, NULL), 1);
    assert_null(cache_lookup(c, "http://o/a", &req, NULL));
    entry_unref(a);
    entry_unref(fresh);
    entry_unref(other);
    cache_free(c);
}

/* Stores `n` fresh responses for keys "http://o/other/<from + i>". */
static void store_others(struct cache *c, const struct hdrs *req, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char key[64];
        snprintf(key, sizeof key, "http://o/other/%d", i);
        struct entry *e = make_entry(key, NULL, req, "other", 0);
        assert_int_equal(cache_insert(c, e), CP_OK);
        entry_unref(e);
    }
}

/* Changes to other keys made while a copy was read back do not refuse it, even to keys
 * that share its lock (300 keys over 64 locks: several do); a change to its own key
 * among them does. So many changes since that the cache cannot tell refuse it. */
static void test_read_kept_after_other_changes(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *a = make_entry("http://o/a", NULL, &req, "from disk", 0);

    uint64_t before = cache_changes(c, "http://o/a");
    store_others(c, &req, 0, 300);
    assert_int_equal(cache_insert_read(c, a, before), CP_OK);
    struct entry *got = cache_lookup(c, "http://o/a", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "from disk", 9);
    entry_unref(got);

    assert_int_equal(cache_remove(c, "http://o/a", NULL, NULL), 1);
    before = cache_changes(c, "http://o/a");
    store_others(c, &req, 300, 300);
    assert_int_equal(cache_remove(c, "http://o/a", NULL, NULL), 0); /* among the others */
    store_others(c, &req, 600, 300);
    assert_int_equal(cache_insert_read(c, a, before), CP_ERR_SUPERSEDED);
    assert_null(cache_lookup(c, "http://o/a", &req, NULL));

    before = cache_changes(c, "http://o/a");
    store_others(c, &req, 900, 64 * 64 * 3); /* ~192 changes to each lock's keys */
    assert_int_equal(cache_insert_read(c, a, before), CP_ERR_SUPERSEDED);
    entry_unref(a);
    cache_free(c);
}

/* Of two stored variants that both match (one stored without Vary, as before the
 * origin added Vary), the more recent is the answer, whichever was stored first. */
static void test_most_recent_matching_variant(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    assert_int_equal(hdrs_add(&req, "Accept-Language", "de"), CP_OK);
    struct entry *plain = make_entry("http://o/v", NULL, &req, "plain", 0);
    struct entry *varied = make_entry("http://o/v", "Accept-Language", &req, "varied", 0);
    plain->response_time = 100;
    varied->response_time = 200;
    assert_int_equal(cache_insert(c, plain), CP_OK);
    assert_int_equal(cache_insert(c, varied), CP_OK);
    struct entry *got = cache_lookup(c, "http://o/v", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "varied", 6);
    entry_unref(got);
    /* The other way round: the one without Vary is newer. */
    struct entry *plain2 = make_entry("http://o/v", NULL, &req, "plain2", 0);
    plain2->response_time = 300;
    assert_int_equal(cache_insert(c, plain2), CP_OK);
    got = cache_lookup(c, "http://o/v", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "plain2", 6);
    entry_unref(got);
    assert_int_equal(cache_count(c), 2);
    entry_unref(plain);
    entry_unref(varied);
    entry_unref(plain2);
    hdrs_free(&req);
    cache_free(c);
}

/* A copy read from disk does not replace the variant in memory from the same second:
 * that one was stored later (a copy fetched anew is stored, as ever). */
static void test_loaded_copy_of_same_second_refused(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *mem = make_entry("http://o/s", NULL, &req, "memory", 0);
    struct entry *disk = make_entry("http://o/s", NULL, &req, "disk", 0);
    mem->response_time = disk->response_time = 500;
    assert_int_equal(cache_insert(c, mem), CP_OK);
    assert_int_equal(cache_insert_read(c, disk, cache_changes(c, "http://o/s")),
                     CP_ERR_SUPERSEDED);
    assert_int_equal(cache_insert_loaded(c, disk), CP_ERR_SUPERSEDED);
    struct entry *got = cache_lookup(c, "http://o/s", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "memory", 6);
    entry_unref(got);
    assert_int_equal(cache_insert(c, disk), CP_OK);
    got = cache_lookup(c, "http://o/s", &req, NULL);
    assert_non_null(got);
    assert_memory_equal(got->body, "disk", 4);
    entry_unref(got);
    entry_unref(mem);
    entry_unref(disk);
    cache_free(c);
}

/* A copy loaded late from disk never hides the newer response fetched meanwhile. */
static void test_older_does_not_replace_newer(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    struct hdrs req;
    hdrs_init(&req);
    struct entry *fresh = make_entry("http://o/s", NULL, &req, "fetched", 0);
    struct entry *old = make_entry("http://o/s", NULL, &req, "from disk", 0);
    fresh->response_time = 2000;
    old->response_time = 1000;
    assert_int_equal(cache_insert(c, fresh), CP_OK);
    assert_int_equal(cache_insert(c, old), CP_ERR_SUPERSEDED);
    struct entry *got = cache_lookup(c, "http://o/s", &req, NULL);
    assert_memory_equal(got->body, "fetched", 7);
    assert_int_equal(cache_count(c), 1);
    entry_unref(got);
    /* The same second is no reason to keep the older: a new fetch replaces it. */
    old->response_time = 2000;
    assert_int_equal(cache_insert(c, old), CP_OK);
    got = cache_lookup(c, "http://o/s", &req, NULL);
    assert_memory_equal(got->body, "from disk", 9);
    entry_unref(got);
    entry_unref(fresh);
    entry_unref(old);
    cache_free(c);
}

static void test_replace_same_variant(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
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
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
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

/* A URL keeps at most CACHE_MAX_VARIANTS variants: each new one past that replaces
 * the oldest, so lookups stay bounded however many values a client sends. */
/* The request that picks variant `i` of "http://o/many" (field X-V: i), and the body
 * of that variant, in `body`. */
static void variant_request(int i, struct hdrs *rq, char *body, size_t len)
{
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    snprintf(body, len, "body-%d", i);
    hdrs_init(rq);
    assert_int_equal(hdrs_add(rq, "X-V", v), CP_OK);
}

static void test_variants_bounded(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    const int total = CACHE_MAX_VARIANTS + 8;
    for (int i = 0; i < total; i++) {
        struct hdrs rq;
        char body[16];
        variant_request(i, &rq, body, sizeof body);
        struct entry *e = make_entry("http://o/many", "X-V", &rq, body, 0);
        assert_int_equal(cache_insert(c, e), CP_OK);
        entry_unref(e);
        hdrs_free(&rq);
        assert_true(cache_count(c) <= CACHE_MAX_VARIANTS);
    }
    assert_int_equal(cache_count(c), CACHE_MAX_VARIANTS);
    size_t expect_bytes = 0;
    for (int i = 0; i < total; i++) {
        struct hdrs rq;
        char body[16];
        variant_request(i, &rq, body, sizeof body);
        struct entry *got = cache_lookup(c, "http://o/many", &rq, NULL);
        if (i < total - CACHE_MAX_VARIANTS) {
            assert_null(got); /* the oldest went */
        } else {
            assert_non_null(got);
            assert_int_equal(got->body_len, strlen(body));
            assert_memory_equal(got->body, body, strlen(body));
            expect_bytes += cache_entry_size(got);
            entry_unref(got);
        }
        hdrs_free(&rq);
    }
    assert_int_equal(cache_bytes(c), expect_bytes);
    cache_free(c);
}

/* A copy from disk older than every one of a full set of variants pushes none out. */
static void test_loaded_older_than_all_variants_refused(void **state)
{
    (void)state;
    struct cache *c;
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    for (int i = 0; i <= CACHE_MAX_VARIANTS; i++) {
        struct hdrs rq;
        char body[16];
        variant_request(i, &rq, body, sizeof body);
        struct entry *e = make_entry("http://o/many", "X-V", &rq, body, 0);
        e->response_time = 100 + i;
        if (i < CACHE_MAX_VARIANTS) {
            assert_int_equal(cache_insert(c, e), CP_OK);
        } else { /* one more variant, from disk */
            e->response_time = 50;
            assert_int_equal(cache_insert_loaded(c, e), CP_ERR_SUPERSEDED);
            e->response_time = 200;
            assert_int_equal(cache_insert_loaded(c, e), CP_OK);
            struct entry *got = cache_lookup(c, "http://o/many", &rq, NULL);
            assert_ptr_equal(got, e);
            entry_unref(got);
        }
        entry_unref(e);
        hdrs_free(&rq);
    }
    assert_int_equal(cache_count(c), CACHE_MAX_VARIANTS);
    cache_free(c);
}

struct hook_log {
    int inserted, removed;
    const char *last_key;
};

static void on_inserted(void *arg, struct entry *e)
{
    struct hook_log *log = arg;
    log->inserted++;
    log->last_key = e->key;
}

static void on_removed(void *arg, const char *key)
{
    struct hook_log *log = arg;
    log->removed++;
    log->last_key = key;
}

/* The hooks run once per change that happens, stored or removed, also for a removal
 * that finds nothing in memory; not for an insert refused. */
static void test_change_hooks(void **state)
{
    (void)state;
    struct cache *c;
    struct entry *probe = make_entry("http://o/h", NULL, NULL, "hook", 0);
    assert_int_equal(cache_new(NULL, cache_entry_size(probe) + 8, &c), CP_OK);
    struct hook_log log = {0};
    assert_int_equal(cache_insert_then(c, probe, on_inserted, &log), CP_OK);
    assert_int_equal(log.inserted, 1);
    assert_string_equal(log.last_key, "http://o/h");
    struct entry *big = make_entry("http://o/big", NULL, NULL,
                                   "a body too long for this cache's bound of one entry", 0);
    assert_int_equal(cache_insert_then(c, big, on_inserted, &log), CP_ERR_TOO_LARGE);
    assert_int_equal(log.inserted, 1);
    assert_int_equal(cache_remove_then(c, "http://o/h", on_removed, &log), 1);
    assert_int_equal(cache_remove_then(c, "http://o/none", on_removed, &log), 0);
    assert_int_equal(log.removed, 2);
    assert_string_equal(log.last_key, "http://o/none");
    entry_unref(probe);
    entry_unref(big);
    cache_free(c);
}

static void test_generation_change_empties(void **state)
{
    (void)state;
    _Atomic uint64_t gen = 7;
    struct cache *c;
    assert_int_equal(cache_new(&gen, 0, &c), CP_OK);
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
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
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

/* Evictions reported by the cache, in order. */
struct evictions {
    char keys[64][32];
    size_t n;
};

static void record_eviction(void *arg, const struct entry *e)
{
    struct evictions *ev = arg;
    assert_true(ev->n < 64);
    snprintf(ev->keys[ev->n++], sizeof ev->keys[0], "%s", e->key + strlen("http://o/"));
}

/* Entries "http://o/<nn>" of one size: only their order decides which go. */
static struct entry *numbered(int i)
{
    struct hdrs none;
    hdrs_init(&none);
    char key[32];
    snprintf(key, sizeof key, "http://o/%02d", i);
    return make_entry(key, NULL, &none, "0123456789", 0);
}

static void insert_numbered(struct cache *c, int i)
{
    struct entry *e = numbered(i);
    assert_int_equal(cache_insert(c, e), CP_OK);
    entry_unref(e);
}

static bool has_numbered(struct cache *c, int i)
{
    struct hdrs none;
    hdrs_init(&none);
    char key[32];
    snprintf(key, sizeof key, "http://o/%02d", i);
    struct entry *e = cache_lookup(c, key, &none, NULL);
    entry_unref(e);
    return e != NULL;
}

static size_t numbered_size(void)
{
    struct entry *e = numbered(0);
    size_t n = cache_entry_size(e);
    entry_unref(e);
    return n;
}

static void assert_evicted(const struct evictions *ev, const char *const *want, size_t n)
{
    assert_int_equal(ev->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ev->keys[i], want[i]);
}

/* While the disk loads, a response stored afresh and then evicted keeps the older copy
 * the load brings afterwards out of memory; once the load ends, copies get in again. */
static void test_evicted_while_loading_keeps_older_copy_out(void **state)
{
    (void)state;
    struct cache *c;
    struct entry *probe = numbered(0);
    size_t one = cache_entry_size(probe);
    entry_unref(probe);
    assert_int_equal(cache_new(NULL, 2 * one, &c), CP_OK); /* two fit */
    struct hdrs none;
    hdrs_init(&none);
    cache_load_begin(c);
    struct entry *fresh = numbered(0);
    fresh->response_time = 2000;
    assert_int_equal(cache_insert(c, fresh), CP_OK);
    insert_numbered(c, 1);
    insert_numbered(c, 2); /* 00 goes */
    assert_false(has_numbered(c, 0));
    struct entry *older = numbered(0);
    older->response_time = 1000;
    assert_int_equal(cache_insert_loaded(c, older), CP_ERR_SUPERSEDED);
    assert_false(has_numbered(c, 0));
    /* A copy from disk evicted meanwhile leaves no mark: the load evicts its own. */
    struct entry *loaded = numbered(5);
    assert_int_equal(cache_insert_loaded(c, loaded), CP_OK);
    insert_numbered(c, 6);
    insert_numbered(c, 7); /* 05 goes */
    assert_false(has_numbered(c, 5));
    assert_int_equal(cache_insert_loaded(c, loaded), CP_OK);
    cache_load_end(c);
    assert_int_equal(cache_insert_loaded(c, older), CP_OK);
    assert_true(has_numbered(c, 0));
    entry_unref(fresh);
    entry_unref(older);
    entry_unref(loaded);
    cache_free(c);
}

static void test_entry_size(void **state)
{
    (void)state;
    struct hdrs none;
    hdrs_init(&none);
    struct entry *a = make_entry("http://o/a", NULL, &none, "abc", 0);
    struct entry *longer_body = make_entry("http://o/a", NULL, &none, "abcdefgh", 0);
    struct entry *longer_key = make_entry("http://o/abcd", NULL, &none, "abc", 0);
    assert_int_equal(cache_entry_size(longer_body) - cache_entry_size(a), 5);
    assert_int_equal(cache_entry_size(longer_key) - cache_entry_size(a), 3);
    assert_true(cache_entry_size(a) >= sizeof(struct entry) + strlen("http://o/a") + 3);
    /* Fields count: names and values. */
    struct entry *fields = make_entry("http://o/a", NULL, &none, "abc", 0);
    assert_int_equal(hdrs_add(&fields->headers, "Content-Type", "text/plain"), CP_OK);
    assert_true(cache_entry_size(fields) >=
                cache_entry_size(a) + strlen("Content-Type") + strlen("text/plain") + 2);

    /* A revalidated entry keeps its predecessor (and so its body) alive: it counts
     * for itself plus the whole owner, however long the chain of revalidations. */
    struct entry *owner = make_entry("http://o/big", NULL, &none,
                                     "a body much longer than the fields around it", 0);
    struct entry *shared = entry_new();
    shared->key = strdup("http://o/big");
    shared->vary_key = strdup("");
    entry_share_body(shared, owner);
    size_t own = sizeof(struct entry) + strlen("http://o/big") + 1 + 1;
    assert_int_equal(cache_entry_size(shared), own + cache_entry_size(owner));
    struct entry *again = entry_new();
    again->key = strdup("http://o/big");
    again->vary_key = strdup("");
    entry_share_body(again, shared);
    assert_int_equal(cache_entry_size(again), own + cache_entry_size(owner));

    entry_unref(again);
    entry_unref(shared);
    entry_unref(owner);
    entry_unref(fields);
    entry_unref(a);
    entry_unref(longer_body);
    entry_unref(longer_key);
}

static void test_bytes_accounting(void **state)
{
    (void)state;
    _Atomic uint64_t gen = 0;
    struct cache *c;
    assert_int_equal(cache_new(&gen, 0, &c), CP_OK);
    assert_int_equal(cache_bytes(c), 0);
    struct hdrs none, gz, br;
    hdrs_init(&none);
    hdrs_init(&gz);
    hdrs_init(&br);
    hdrs_add(&gz, "Accept-Encoding", "gzip");
    hdrs_add(&br, "Accept-Encoding", "br");
    struct entry *a = make_entry("http://o/a", NULL, &none, "short", 0);
    struct entry *a2 = make_entry("http://o/a", NULL, &none, "a longer replacement", 0);
    struct entry *b = make_entry("http://o/b", NULL, &none, "bee", 0);
    struct entry *v1 = make_entry("http://o/v", "Accept-Encoding", &gz, "GZ", 0);
    struct entry *v2 = make_entry("http://o/v", "Accept-Encoding", &br, "BR!", 0);
    size_t sa = cache_entry_size(a), sa2 = cache_entry_size(a2), sb = cache_entry_size(b);
    size_t sv = cache_entry_size(v1) + cache_entry_size(v2);

    assert_int_equal(cache_insert(c, a), CP_OK);
    assert_int_equal(cache_bytes(c), sa);
    assert_int_equal(cache_insert(c, b), CP_OK);
    assert_int_equal(cache_bytes(c), sa + sb);
    /* a replacement counts instead of what it replaces */
    assert_int_equal(cache_insert(c, a2), CP_OK);
    assert_int_equal(cache_bytes(c), sa2 + sb);
    assert_int_equal(cache_insert(c, a2), CP_OK); /* the same entry again */
    assert_int_equal(cache_bytes(c), sa2 + sb);
    assert_int_equal(cache_insert(c, v1), CP_OK);
    assert_int_equal(cache_insert(c, v2), CP_OK);
    assert_int_equal(cache_bytes(c), sa2 + sb + sv);
    /* removing a URL takes all its variants off */
    assert_int_equal(cache_remove(c, "http://o/v", NULL, NULL), 2);
    assert_int_equal(cache_bytes(c), sa2 + sb);
    assert_int_equal(cache_remove(c, "http://o/nothing", NULL, NULL), 0);
    assert_int_equal(cache_bytes(c), sa2 + sb);
    assert_int_equal(cache_remove(c, "http://o/a", NULL, NULL), 1);
    assert_int_equal(cache_bytes(c), sb);
    assert_int_equal(cache_clear(c), 1);
    assert_int_equal(cache_bytes(c), 0);

    /* A revalidation replaces its predecessor by an entry sharing its body: the body
     * is still in memory and still counted. */
    struct entry *reval = entry_new();
    reval->key = strdup("http://o/a");
    reval->vary_key = strdup("");
    entry_share_body(reval, a2);
    assert_int_equal(cache_insert(c, a2), CP_OK);
    assert_int_equal(cache_insert(c, reval), CP_OK);
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(cache_bytes(c), cache_entry_size(reval));
    assert_true(cache_bytes(c) > sa2);

    /* a generation change empties the cache, and its count */
    assert_int_equal(cache_insert(c, b), CP_OK);
    atomic_fetch_add(&gen, 1);
    assert_int_equal(cache_generation(c), 1);
    assert_int_equal(cache_bytes(c), 0);
    assert_int_equal(cache_count(c), 0);
    /* a refused insert changes nothing */
    assert_int_equal(cache_insert(c, b), CP_ERR_STALE_GEN);
    assert_int_equal(cache_bytes(c), 0);

    entry_unref(reval);
    entry_unref(a);
    entry_unref(a2);
    entry_unref(b);
    entry_unref(v1);
    entry_unref(v2);
    hdrs_free(&gz);
    hdrs_free(&br);
    cache_free(c);
}

static void test_eviction_fifo_without_hits(void **state)
{
    (void)state;
    size_t size = numbered_size();
    struct cache *c;
    /* room for three and a half: the fourth never fits beside three */
    assert_int_equal(cache_new(NULL, 3 * size + size / 2, &c), CP_OK);
    struct evictions ev = {0};
    cache_set_evicted(c, record_eviction, &ev);
    for (int i = 0; i < 3; i++)
        insert_numbered(c, i);
    assert_int_equal(ev.n, 0);
    assert_int_equal(cache_bytes(c), 3 * size);
    for (int i = 3; i < 7; i++)
        insert_numbered(c, i);
    assert_evicted(&ev, (const char *const[]){"00", "01", "02", "03"}, 4);
    assert_int_equal(cache_count(c), 3);
    assert_int_equal(cache_bytes(c), 3 * size);
    for (int i = 0; i < 7; i++)
        assert_true(has_numbered(c, i) == (i >= 4));
    /* removals and clears are not evictions */
    cache_remove(c, "http://o/04", NULL, NULL);
    cache_clear(c);
    assert_int_equal(ev.n, 4);
    assert_int_equal(cache_bytes(c), 0);
    cache_free(c);
}

static void test_eviction_second_chance(void **state)
{
    (void)state;
    size_t size = numbered_size();
    struct cache *c;
    assert_int_equal(cache_new(NULL, 3 * size, &c), CP_OK);
    struct evictions ev = {0};
    cache_set_evicted(c, record_eviction, &ev);
    for (int i = 0; i < 3; i++)
        insert_numbered(c, i);
    assert_true(has_numbered(c, 0)); /* a hit */
    insert_numbered(c, 3);
    /* 00 was used: it is spared and the next one goes */
    assert_evicted(&ev, (const char *const[]){"01"}, 1);
    insert_numbered(c, 4);
    insert_numbered(c, 5);
    /* the second chance is spent: 00 goes after the ones the hand passed it for */
    insert_numbered(c, 6);
    assert_evicted(&ev, (const char *const[]){"01", "02", "03", "00"}, 4);
    assert_int_equal(cache_bytes(c), 3 * size);
    cache_free(c);

    /* Every stored entry used: one round clears the marks, and the entry being
     * inserted is never its own victim; the oldest goes. */
    assert_int_equal(cache_new(NULL, 3 * size, &c), CP_OK);
    ev.n = 0;
    cache_set_evicted(c, record_eviction, &ev);
    for (int i = 0; i < 3; i++)
        insert_numbered(c, i);
    for (int i = 0; i < 3; i++)
        assert_true(has_numbered(c, i));
    insert_numbered(c, 3);
    assert_evicted(&ev, (const char *const[]){"00"}, 1);
    assert_true(has_numbered(c, 3));
    cache_free(c);
}

static void test_replacement_not_evicted_twice(void **state)
{
    (void)state;
    size_t size = numbered_size();
    struct cache *c;
    assert_int_equal(cache_new(NULL, 2 * size, &c), CP_OK);
    struct evictions ev = {0};
    cache_set_evicted(c, record_eviction, &ev);
    insert_numbered(c, 0);
    insert_numbered(c, 1);
    /* replacing 00 makes it the newest: 01 is now the oldest */
    insert_numbered(c, 0);
    assert_int_equal(cache_bytes(c), 2 * size);
    insert_numbered(c, 2);
    assert_evicted(&ev, (const char *const[]){"01"}, 1);
    assert_true(has_numbered(c, 0));
    assert_true(has_numbered(c, 2));
    assert_int_equal(cache_count(c), 2);
    cache_free(c);
}

static void test_too_large_refused(void **state)
{
    (void)state;
    struct hdrs none;
    hdrs_init(&none);
    struct entry *small = make_entry("http://o/k", NULL, &none, "small", 0);
    char body[512];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct entry *big = make_entry("http://o/k", NULL, &none, body, 0);
    size_t max = cache_entry_size(small) + 100;
    assert_true(cache_entry_size(big) > max);

    struct cache *c;
    assert_int_equal(cache_new(NULL, max, &c), CP_OK);
    assert_int_equal(cache_insert(c, small), CP_OK);
    assert_int_equal(cache_insert(c, big), CP_ERR_TOO_LARGE);
    /* the cache is as it was: the smaller variant still answers */
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(cache_bytes(c), cache_entry_size(small));
    struct entry *got = cache_lookup(c, "http://o/k", &none, NULL);
    assert_ptr_equal(got, small);
    entry_unref(got);
    cache_free(c);

    /* An entry of exactly the bound is stored, and everything else makes way. */
    assert_int_equal(cache_new(NULL, cache_entry_size(big), &c), CP_OK);
    struct entry *other = make_entry("http://o/other", NULL, &none, "x", 0);
    assert_int_equal(cache_insert(c, other), CP_OK);
    assert_int_equal(cache_insert(c, big), CP_OK);
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(cache_bytes(c), cache_entry_size(big));
    assert_null(cache_lookup(c, "http://o/other", &none, NULL));
    cache_free(c);

    /* no bound: anything goes */
    assert_int_equal(cache_new(NULL, 0, &c), CP_OK);
    assert_int_equal(cache_insert(c, big), CP_OK);
    assert_int_equal(cache_insert(c, other), CP_OK);
    assert_int_equal(cache_count(c), 2);
    cache_free(c);
    entry_unref(other);
    entry_unref(small);
    entry_unref(big);
}

static void test_evicted_entry_stays_readable(void **state)
{
    (void)state;
    size_t size = numbered_size();
    struct cache *c;
    assert_int_equal(cache_new(NULL, 2 * size, &c), CP_OK);
    struct evictions ev = {0};
    cache_set_evicted(c, record_eviction, &ev);
    insert_numbered(c, 0);
    struct hdrs none;
    hdrs_init(&none);
    struct entry *held = cache_lookup(c, "http://o/00", &none, NULL);
    assert_non_null(held);
    for (int i = 1; i < 5; i++)
        insert_numbered(c, i);
    assert_true(ev.n >= 1);
    bool gone = false;
    for (size_t i = 0; i < ev.n; i++)
        gone = gone || strcmp(ev.keys[i], "00") == 0;
    assert_true(gone);
    assert_null(cache_lookup(c, "http://o/00", &none, NULL));
    /* The reader holds the only reference left: the bytes are still there. */
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_string_equal(held->key, "http://o/00");
    assert_memory_equal(held->body, "0123456789", 10);
    entry_unref(held);
    cache_free(c);
}

struct bound_arg {
    struct cache *c;
    int id;
    size_t max;
    size_t largest_seen;    /* of cache_bytes() during the run */
    atomic_size_t *evictions;
};

static void count_eviction(void *arg, const struct entry *e)
{
    (void)e;
    atomic_fetch_add((atomic_size_t *)arg, 1);
}

static void *bound_worker(void *p)
{
    struct bound_arg *w = p;
    struct hdrs req;
    hdrs_init(&req);
    char key[64], body[256];
    unsigned seed = (unsigned)w->id * 7919u + 1;
    for (int i = 0; i < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        snprintf(key, sizeof key, "http://o/%u", r % 300);
        size_t len = 10 + r % 200;
        memset(body, 'a' + w->id, len);
        body[len] = '\0';
        struct entry *e = make_entry(key, NULL, &req, body, 0);
        if (cache_insert(w->c, e) != CP_OK)
            abort();
        entry_unref(e);
        snprintf(key, sizeof key, "http://o/%u", (r >> 9) % 300);
        struct entry *got = cache_lookup(w->c, key, &req, NULL);
        if (got != NULL) {
            if (strcmp(got->key, key) != 0 || got->body_len < 10)
                abort();
            entry_unref(got);
        }
        if (r % 97 == 0)
            cache_remove(w->c, key, NULL, NULL);
        size_t now = cache_bytes(w->c);
        if (now > w->largest_seen)
            w->largest_seen = now;
    }
    return NULL;
}

static void test_bound_under_concurrency(void **state)
{
    (void)state;
    const size_t max = 16 * 1024;
    struct cache *c;
    assert_int_equal(cache_new(NULL, max, &c), CP_OK);
    atomic_size_t evictions = 0;
    cache_set_evicted(c, count_eviction, &evictions);
    pthread_t t[4];
    struct bound_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct bound_arg){.c = c, .id = i, .max = max, .evictions = &evictions};
        assert_int_equal(pthread_create(&t[i], NULL, bound_worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        /* Readers never see an insert's bytes before its evictions. */
        assert_true(a[i].largest_seen <= max);
        assert_true(a[i].largest_seen > max / 2); /* the bound was in play */
    }
    assert_true(atomic_load(&evictions) > 0);
    assert_true(cache_bytes(c) <= max);
    assert_true(cache_count(c) > 0);
    /* Nothing was counted twice or lost: emptying brings the count to exactly zero. */
    cache_clear(c);
    assert_int_equal(cache_bytes(c), 0);
    assert_int_equal(cache_count(c), 0);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miss_then_hit),
        cmocka_unit_test(test_replace_same_variant),
        cmocka_unit_test(test_older_does_not_replace_newer),
        cmocka_unit_test(test_read_refused_after_change),
        cmocka_unit_test(test_read_kept_after_other_changes),
        cmocka_unit_test(test_most_recent_matching_variant),
        cmocka_unit_test(test_loaded_copy_of_same_second_refused),
        cmocka_unit_test(test_vary_variants),
        cmocka_unit_test(test_variants_bounded),
        cmocka_unit_test(test_loaded_older_than_all_variants_refused),
        cmocka_unit_test(test_change_hooks),
        cmocka_unit_test(test_generation_change_empties),
        cmocka_unit_test(test_concurrent_use),
        cmocka_unit_test(test_entry_size),
        cmocka_unit_test(test_bytes_accounting),
        cmocka_unit_test(test_eviction_fifo_without_hits),
        cmocka_unit_test(test_eviction_second_chance),
        cmocka_unit_test(test_replacement_not_evicted_twice),
        cmocka_unit_test(test_invalidated_while_loading),
        cmocka_unit_test(test_evicted_while_loading_keeps_older_copy_out),
        cmocka_unit_test(test_too_large_refused),
        cmocka_unit_test(test_evicted_entry_stays_readable),
        cmocka_unit_test(test_bound_under_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
