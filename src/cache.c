/* The in-memory cache (see cache.h): a fixed number of stripes, each a uthash table
 * under its own mutex, so lookups on different keys rarely contend. A table slot holds
 * the variants stored for one primary key (one per Vary secondary key). */
#include "cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "http.h"

#undef uthash_fatal
#define uthash_fatal(msg) abort() /* only on allocation failure of the bucket array */
#include <uthash.h>

#define CACHE_STRIPES 64 /* 2^6, indexed by the hash's top 6 bits */

struct slot {
    char *key;               /* owned; the uthash key */
    struct entry **variants; /* each holds a cache reference */
    size_t n, cap;
    UT_hash_handle hh;
};

struct stripe {
    pthread_mutex_t lock;
    struct slot *table;
    size_t entries;
};

struct cache {
    struct stripe stripes[CACHE_STRIPES];
    const _Atomic uint64_t *shared_gen; /* NULL: generation never changes */
    _Atomic uint64_t seen_gen;
    pthread_mutex_t clear_lock;        /* one thread at a time acts on a generation change */
};

static void slot_free(struct slot *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_unref(s->variants[i]);
    free(s->variants);
    free(s->key);
    free(s);
}

/* Empties one stripe; caller holds its lock. Returns the number of entries dropped. */
static size_t stripe_clear_locked(struct stripe *st)
{
    size_t n = st->entries;
    struct slot *s, *tmp;
    HASH_ITER(hh, st->table, s, tmp) {
        HASH_DEL(st->table, s);
        slot_free(s);
    }
    st->entries = 0;
    return n;
}

cp_err cache_new(const _Atomic uint64_t *generation, struct cache **out)
{
    struct cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&c->stripes[i].lock, NULL);
    pthread_mutex_init(&c->clear_lock, NULL);
    c->shared_gen = generation;
    atomic_init(&c->seen_gen, generation ? atomic_load(generation) : 0);
    *out = c;
    return CP_OK;
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        stripe_clear_locked(&c->stripes[i]);
        pthread_mutex_destroy(&c->stripes[i].lock);
    }
    pthread_mutex_destroy(&c->clear_lock);
    free(c);
}

size_t cache_clear(struct cache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        pthread_mutex_lock(&c->stripes[i].lock);
        n += stripe_clear_locked(&c->stripes[i]);
        pthread_mutex_unlock(&c->stripes[i].lock);
    }
    return n;
}

/* Drops everything if another process bumped the shared generation since we last
 * looked. One relaxed load on the fast path: no system call per request. */
static uint64_t sync_generation(struct cache *c)
{
    if (c->shared_gen == NULL)
        return 0;
    uint64_t now = atomic_load_explicit(c->shared_gen, memory_order_acquire);
    if (now == atomic_load_explicit(&c->seen_gen, memory_order_relaxed))
        return now;
    pthread_mutex_lock(&c->clear_lock);
    if (now != atomic_load(&c->seen_gen)) {
        atomic_store(&c->seen_gen, now);
        cache_clear(c);
    }
    pthread_mutex_unlock(&c->clear_lock);
    return now;
}

uint64_t cache_generation(struct cache *c) { return sync_generation(c); }

static struct stripe *stripe_for(struct cache *c, const char *key, size_t len, uint64_t *hash)
{
    *hash = XXH3_64bits(key, len);
    /* High bits pick the stripe: uthash picks its buckets from the low ones. */
    return &c->stripes[*hash >> 58];
}

/* True if the stored variant `e` was selected by the same request header values that
 * `request` carries (RFC 9111 section 4.1). */
static bool variant_matches(const struct entry *e, const struct hdrs *request)
{
    if (e->vary_key == NULL || e->vary_key[0] == '\0')
        return true;
    char *vary = NULL, *key = NULL;
    bool match = false;
    if (hdrs_join(&e->headers, "Vary", &vary) == CP_OK && vary != NULL &&
        http_vary_key(vary, request, &key) == CP_OK)
        match = strcmp(key, e->vary_key) == 0;
    free(vary);
    free(key);
    return match;
}

struct entry *cache_lookup(struct cache *c, const char *key, const struct hdrs *request,
                           bool *uri_known)
{
    uint64_t gen = sync_generation(c);
    uint64_t hash;
    size_t len = strlen(key);
    struct stripe *st = stripe_for(c, key, len, &hash);
    struct entry *found = NULL;

    pthread_mutex_lock(&st->lock);
    struct slot *s = NULL;
    HASH_FIND_BYHASHVALUE(hh, st->table, key, len, (unsigned)hash, s);
    if (s != NULL) {
        for (size_t i = 0; i < s->n; i++) {
            struct entry *e = s->variants[i];
            if (e->generation == gen && variant_matches(e, request)) {
                found = entry_ref(e);
                break;
            }
        }
    }
    if (uri_known != NULL)
        *uri_known = s != NULL && s->n > 0;
    pthread_mutex_unlock(&st->lock);
    return found;
}

cp_err cache_insert(struct cache *c, struct entry *e)
{
    uint64_t gen = sync_generation(c);
    if (e->generation != gen)
        return CP_ERR_STALE_GEN;
    const char *vk = e->vary_key ? e->vary_key : "";
    uint64_t hash;
    size_t len = strlen(e->key);
    struct stripe *st = stripe_for(c, e->key, len, &hash);
    cp_err err = CP_OK;

    pthread_mutex_lock(&st->lock);
    struct slot *s = NULL;
    HASH_FIND_BYHASHVALUE(hh, st->table, e->key, len, (unsigned)hash, s);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || (s->key = strdup(e->key)) == NULL) {
            free(s);
            err = CP_ERR_NOMEM;
            goto out;
        }
        HASH_ADD_KEYPTR_BYHASHVALUE(hh, st->table, s->key, len, (unsigned)hash, s);
    }
    for (size_t i = 0; i < s->n; i++) {
        const char *other = s->variants[i]->vary_key ? s->variants[i]->vary_key : "";
        if (strcmp(other, vk) == 0) {
            entry_unref(s->variants[i]);
            s->variants[i] = entry_ref(e);
            goto out;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 2;
        struct entry **v = realloc(s->variants, cap * sizeof *v);
        if (v == NULL) {
            err = CP_ERR_NOMEM;
            goto out;
        }
        s->variants = v;
        s->cap = cap;
    }
    s->variants[s->n++] = entry_ref(e);
    st->entries++;
out:
    pthread_mutex_unlock(&st->lock);
    return err;
}

size_t cache_remove(struct cache *c, const char *key,
                    void (*removed)(void *arg, const struct entry *e), void *arg)
{
    uint64_t hash;
    size_t len = strlen(key);
    struct stripe *st = stripe_for(c, key, len, &hash);
    size_t n = 0;

    pthread_mutex_lock(&st->lock);
    struct slot *s = NULL;
    HASH_FIND_BYHASHVALUE(hh, st->table, key, len, (unsigned)hash, s);
    if (s != NULL) {
        n = s->n;
        st->entries -= n;
        for (size_t i = 0; removed != NULL && i < n; i++)
            removed(arg, s->variants[i]);
        HASH_DEL(st->table, s);
        slot_free(s);
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

size_t cache_count(struct cache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        pthread_mutex_lock(&c->stripes[i].lock);
        n += c->stripes[i].entries;
        pthread_mutex_unlock(&c->stripes[i].lock);
    }
    return n;
}
