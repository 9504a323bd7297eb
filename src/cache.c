/* The in-memory cache (see cache.h): a fixed number of stripes, each a hash index of
 * keys under its own mutex, so lookups on different keys rarely contend, and one clock list
 * of every stored variant, in insertion order, that eviction walks. */
#include "cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hindex.h"
#include "http.h"

#define CACHE_STRIPES 64 /* 2^6, indexed by the hash's top 6 bits */
#define CACHE_RECENT 64  /* changes whose keys each stripe remembers */

/* One stored variant. The table and the clock list each hold it once (`holds`); the
 * evictor inherits the clock's hold for the victims it takes, so a victim stays valid
 * however its table slot changes in the meantime. */
struct node {
    struct entry *e;          /* the cache's reference */
    size_t size;              /* cache_entry_size(e) */
    atomic_bool referenced;   /* set by hits, cleared by the clock hand */
    atomic_int holds;
    /* The rest is under the clock lock while the node is on the clock; a victim's
     * victim_next belongs to the evictor that took it. */
    struct node *prev, *next; /* circular clock list */
    bool on_clock;
    struct node *victim_next;
    bool fresh;               /* stored by cache_insert, not a copy from disk */
};

struct slot {
    struct node **variants;
    size_t n, cap;
    bool gone;             /* invalidated while the disk loads: no copy from disk (a slot
                              with no variant is kept for this mark alone) */
    char key[];            /* in the slot: one cache line fewer to compare it */
};

struct stripe {
    pthread_mutex_t lock;
    struct hindex table;   /* of struct slot, by the key's hash (stripe_for) */
    size_t entries;
    /* Fresh inserts and removals of this stripe's keys so far, counted under `lock`
     * (read without it by cache_changes): a copy read from disk meanwhile is refused. */
    _Atomic uint64_t changes;
    /* The key hash of change k (from 0) is recent[k % CACHE_RECENT], for the last
     * CACHE_RECENT changes: a copy is refused for a change to its own key, not to any
     * key of the stripe, which under a load of misses would be nearly every copy that
     * takes a while to read. Under `lock`. */
    uint64_t recent[CACHE_RECENT];
};

/* Locking: a stripe lock may be held while taking the clock lock, never the reverse,
 * so eviction takes its victims off the clock under the clock lock alone and removes
 * them from their stripes only after letting it go. A lookup hit takes no global lock:
 * it only sets the variant's `referenced` flag. */
struct cache {
    struct stripe stripes[CACHE_STRIPES];
    const _Atomic uint64_t *shared_gen; /* NULL: generation never changes */
    _Atomic uint64_t seen_gen;
    atomic_bool loading;               /* between cache_load_begin and cache_load_end */
    atomic_bool marks_lost;            /* a mark could not be made: refuse every copy
                                          from disk until the load ends */
    pthread_mutex_t clear_lock;        /* one thread at a time acts on a generation change */

    size_t max_bytes;                  /* 0: no bound */
    pthread_mutex_t clock_lock;
    struct node *hand;                 /* next node the clock looks at; NULL when empty */
    size_t clock_len;
    size_t bytes;                      /* under clock_lock */
    /* `bytes` as of the end of the last clock critical section: readers never see the
     * moment between an insert's addition and its evictions. */
    _Atomic size_t bytes_seen;

    void (*evicted)(void *arg, const struct entry *e);
    void *evicted_arg;
};

/* The bytes of `e` itself: what it owns besides a body. */
static size_t own_size(const struct entry *e)
{
    size_t n = sizeof *e;
    if (e->key != NULL)
        n += strlen(e->key) + 1;
    if (e->vary_key != NULL)
        n += strlen(e->vary_key) + 1;
    n += e->headers.cap * sizeof *e->headers.v;
    for (size_t i = 0; i < e->headers.n; i++)
        n += strlen(e->headers.v[i].name) + 1 + strlen(e->headers.v[i].value) + 1;
    return n;
}

size_t cache_entry_size(const struct entry *e)
{
    /* A sharer keeps its whole owner alive; counting the body only in the owner would
     * lose it as soon as the sharer replaces the owner, which is what a revalidation
     * does. Both stored at once (rare: a different Vary key) is counted twice: too much,
     * never too little. entry_share_body keeps the chain one link long. */
    const struct entry *owner = e->body_owner;
    if (owner == NULL)
        return own_size(e) + e->body_len;
    return own_size(e) + own_size(owner) + owner->body_len;
}

static struct node *node_new(struct entry *e)
{
    struct node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->e = entry_ref(e);
    n->size = cache_entry_size(e);
    atomic_init(&n->referenced, false);
    atomic_init(&n->holds, 2);
    return n;
}

static void node_release(struct node *n)
{
    if (atomic_fetch_sub_explicit(&n->holds, 1, memory_order_acq_rel) != 1)
        return;
    entry_unref(n->e);
    free(n);
}

/* Puts `n` just behind the hand: the last place it looks at, as the newest. */
static void clock_link_locked(struct cache *c, struct node *n)
{
    if (c->hand == NULL) {
        n->prev = n->next = n;
        c->hand = n;
    } else {
        n->next = c->hand;
        n->prev = c->hand->prev;
        n->prev->next = n;
        c->hand->prev = n;
    }
    n->on_clock = true;
    c->clock_len++;
    c->bytes += n->size;
}

/* Takes `n` off the clock; false if it was not on it (an evictor has it). The caller
 * then owns the clock's hold. */
static bool clock_unlink_locked(struct cache *c, struct node *n)
{
    if (!n->on_clock)
        return false;
    if (n->next == n) {
        c->hand = NULL;
    } else {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        if (c->hand == n)
            c->hand = n->next;
    }
    n->prev = n->next = NULL;
    n->on_clock = false;
    c->clock_len--;
    c->bytes -= n->size;
    return true;
}

static void clock_publish_locked(struct cache *c)
{
    atomic_store_explicit(&c->bytes_seen, c->bytes, memory_order_relaxed);
}

/* Takes nodes off the clock until the bound holds, sparing `keep`; returns them
 * chained through victim_next, oldest first, each with the clock's hold. */
static struct node *clock_evict_locked(struct cache *c, const struct node *keep)
{
    struct node *victims = NULL, **tail = &victims;
    /* Hits may set flags again behind the hand; after one second chance per node the
     * hand stops sparing, so eviction always ends. */
    size_t spared = 0, budget = c->clock_len;
    while (c->max_bytes != 0 && c->bytes > c->max_bytes && c->hand != NULL) {
        struct node *n = c->hand;
        if (n == keep) {
            if (n->next == n)
                break;
            c->hand = n->next;
            continue;
        }
        if (spared < budget && atomic_load_explicit(&n->referenced, memory_order_relaxed)) {
            atomic_store_explicit(&n->referenced, false, memory_order_relaxed);
            c->hand = n->next;
            spared++;
            continue;
        }
        clock_unlink_locked(c, n);
        n->victim_next = NULL;
        *tail = n;
        tail = &n->victim_next;
    }
    return victims;
}

static void slot_free(struct slot *s)
{
    free(s->variants);
    free(s);
}

/* A new slot for `key` (`len` bytes, hash `hash`), with no variant, added to the
 * stripe's table; NULL when out of memory (nothing added). Caller holds the lock. */
static struct slot *slot_add(struct stripe *st, uint64_t hash, const char *key, size_t len)
{
    struct slot *s = calloc(1, sizeof *s + len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s->key, key, len + 1);
    if (hindex_add(&st->table, hash, s) != CP_OK) {
        slot_free(s);
        return NULL;
    }
    return s;
}

static bool slot_is(const void *item, const void *key)
{
    return strcmp(((const struct slot *)item)->key, key) == 0;
}

/* The slot of `key` (whose hash is `hash`) in the stripe, or NULL. Caller holds the
 * stripe's lock. */
static struct slot *slot_find(struct stripe *st, uint64_t hash, const char *key)
{
    return hindex_find(&st->table, hash, slot_is, key);
}

/* Takes `s` out of the stripe's table and frees it. Caller holds the stripe's lock. */
static void slot_drop(struct stripe *st, uint64_t hash, struct slot *s)
{
    hindex_remove(&st->table, hash, s);
    slot_free(s);
}

/* Takes every node of the stripe's table off the clock, empties the table and releases
 * both holds of each. Caller holds the stripe's lock. Returns the number dropped. */
static size_t stripe_clear_locked(struct cache *c, struct stripe *st)
{
    size_t n = st->entries;
    struct hindex *t = &st->table;
    pthread_mutex_lock(&c->clock_lock);
    for (size_t k = 0; k < t->cap; k++) {
        struct slot *s = t->cells[k].item;
        for (size_t i = 0; s != NULL && i < s->n; i++)
            if (clock_unlink_locked(c, s->variants[i]))
                node_release(s->variants[i]);
    }
    clock_publish_locked(c);
    pthread_mutex_unlock(&c->clock_lock);
    for (size_t k = 0; k < t->cap; k++) {
        struct slot *s = t->cells[k].item;
        if (s == NULL)
            continue;
        for (size_t i = 0; i < s->n; i++)
            node_release(s->variants[i]);
        slot_free(s);
    }
    hindex_free(t);
    st->entries = 0;
    return n;
}

cp_err cache_new(const _Atomic uint64_t *generation, size_t max_bytes, struct cache **out)
{
    struct cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        pthread_mutex_init(&c->stripes[i].lock, NULL);
        atomic_init(&c->stripes[i].changes, 0);
    }
    pthread_mutex_init(&c->clear_lock, NULL);
    pthread_mutex_init(&c->clock_lock, NULL);
    c->shared_gen = generation;
    atomic_init(&c->seen_gen, generation ? atomic_load(generation) : 0);
    c->max_bytes = max_bytes;
    atomic_init(&c->bytes_seen, 0);
    atomic_init(&c->loading, false);
    atomic_init(&c->marks_lost, false);
    *out = c;
    return CP_OK;
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        stripe_clear_locked(c, &c->stripes[i]);
        pthread_mutex_destroy(&c->stripes[i].lock);
    }
    pthread_mutex_destroy(&c->clock_lock);
    pthread_mutex_destroy(&c->clear_lock);
    free(c);
}

void cache_set_evicted(struct cache *c, void (*evicted)(void *arg, const struct entry *e),
                       void *arg)
{
    c->evicted = evicted;
    c->evicted_arg = arg;
}

size_t cache_bytes(struct cache *c)
{
    return atomic_load_explicit(&c->bytes_seen, memory_order_relaxed);
}

size_t cache_clear(struct cache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        pthread_mutex_lock(&c->stripes[i].lock);
        n += stripe_clear_locked(c, &c->stripes[i]);
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
    /* High bits pick the stripe: the stripe's index picks its cells by the low ones. */
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
    struct slot *s = slot_find(st, hash, key);
    if (s != NULL) {
        /* Newest first: of several variants that match (one stored without Vary among
         * them), the most recent answers (RFC 9111 section 4.1). */
        for (size_t i = 0; i < s->n; i++) {
            struct node *n = s->variants[i];
            if (n->e->generation == gen && variant_matches(n->e, request)) {
                /* Read before writing: a popular entry's cache line stays shared
                 * between the threads that hit it. */
                if (!atomic_load_explicit(&n->referenced, memory_order_relaxed))
                    atomic_store_explicit(&n->referenced, true, memory_order_relaxed);
                found = entry_ref(n->e);
                break;
            }
        }
    }
    if (uri_known != NULL)
        *uri_known = s != NULL && s->n > 0;
    pthread_mutex_unlock(&st->lock);
    return found;
}

char *cache_vary(struct cache *c, const char *key)
{
    uint64_t hash;
    size_t len = strlen(key);
    struct stripe *st = stripe_for(c, key, len, &hash);
    char *vary = NULL;
    pthread_mutex_lock(&st->lock);
    struct slot *s = slot_find(st, hash, key);
    if (s != NULL && s->n > 0 && hdrs_join(&s->variants[0]->e->headers, "Vary", &vary) != CP_OK)
        vary = NULL;
    pthread_mutex_unlock(&st->lock);
    return vary;
}

/* Removes the victim `v` from its table slot if it is still there (it may have been
 * removed or replaced since it left the clock). Returns true if it was. */
static bool table_forget(struct cache *c, struct node *v)
{
    uint64_t hash;
    size_t len = strlen(v->e->key);
    struct stripe *st = stripe_for(c, v->e->key, len, &hash);
    bool found = false;

    pthread_mutex_lock(&st->lock);
    struct slot *s = slot_find(st, hash, v->e->key);
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (s->variants[i] != v)
            continue;
        /* Order kept: newest first (see variant_place). */
        memmove(&s->variants[i], &s->variants[i + 1], (s->n - i - 1) * sizeof *s->variants);
        s->n--;
        st->entries--;
        found = true;
        break;
    }
    /* A fresh response evicted while the disk loads: a copy the load still brings of
     * this key is no newer, so the key is marked as by a removal (`loading` read under
     * the lock, as cache_remove does) and the slot stays for the mark. Copies from disk
     * leave none: the load evicts them by the thousand when the disk holds more than
     * memory, and brings each key once. */
    if (found && v->fresh && atomic_load(&c->loading))
        s->gone = true;
    if (s != NULL && s->n == 0 && !s->gone)
        slot_drop(st, hash, s);
    pthread_mutex_unlock(&st->lock);
    if (found)
        node_release(v); /* the table's hold; we still have the clock's */
    return found;
}

/* Finishes an eviction, with no lock held. */
static void evict_victims(struct cache *c, struct node *victims)
{
    while (victims != NULL) {
        struct node *v = victims;
        victims = v->victim_next;
        if (table_forget(c, v) && c->evicted != NULL)
            c->evicted(c->evicted_arg, v->e);
        node_release(v);
    }
}

/* Places `n` among the variants of `s` at slot `i` or before it, keeping them newest
 * first by response_time (of the same second, the one placed last first). Slot `i` is
 * free, and every variant after it is no newer than `n`: insert frees the slot of the
 * variant `n` replaces (never a newer one) or the last slot. */
static void variant_place(struct slot *s, size_t i, struct node *n)
{
    time_t t = n->e->response_time;
    for (; i > 0 && s->variants[i - 1]->e->response_time <= t; i--)
        s->variants[i] = s->variants[i - 1];
    s->variants[i] = n;
}

/* Counts a change (a fresh insert, a removal) to the key whose hash is `hash`. Caller
 * holds the stripe's lock. */
static void count_change(struct stripe *st, uint64_t hash)
{
    uint64_t k = atomic_load(&st->changes);
    st->recent[k % CACHE_RECENT] = hash;
    atomic_store(&st->changes, k + 1);
}

/* Whether the key whose hash is `hash` may have changed since the stripe's count was
 * `since`: it did, or too many changes came since to tell. Caller holds the lock. */
static bool changed_since(const struct stripe *st, uint64_t hash, uint64_t since)
{
    uint64_t now = atomic_load(&st->changes);
    if (now - since > CACHE_RECENT)
        return true;
    for (uint64_t k = since; k != now; k++)
        if (st->recent[k % CACHE_RECENT] == hash)
            return true;
    return false;
}

/* `loaded`: a copy from disk, refused when marked (see cache_load_begin); `since`, if not
 * NULL: refused too if the key changed since the stripe's count was *since
 * (changed_since). `then`, if not NULL, is called with `e` under the stripe lock once it
 * is stored. */
static cp_err insert(struct cache *c, struct entry *e, bool loaded, const uint64_t *since,
                     void (*then)(void *arg, struct entry *e), void *then_arg)
{
    uint64_t gen = sync_generation(c);
    if (e->generation != gen)
        return CP_ERR_STALE_GEN;
    struct node *n = node_new(e);
    if (n == NULL)
        return CP_ERR_NOMEM;
    n->fresh = !loaded;
    if (c->max_bytes != 0 && n->size > c->max_bytes) {
        entry_unref(n->e);
        free(n);
        return CP_ERR_TOO_LARGE;
    }
    const char *vk = e->vary_key ? e->vary_key : "";
    uint64_t hash;
    size_t len = strlen(e->key);
    struct stripe *st = stripe_for(c, e->key, len, &hash);
    struct node *old = NULL, *victims = NULL;
    bool old_off_clock = false;

    pthread_mutex_lock(&st->lock);
    struct slot *s = slot_find(st, hash, e->key);
    /* Changes are counted under this lock: one to this key either comes after this
     * insert or is seen here. */
    if ((loaded && ((s != NULL && s->gone) || atomic_load(&c->marks_lost))) ||
        (since != NULL && changed_since(st, hash, *since)))
        goto superseded; /* invalidated since the disk was read */
    if (s == NULL && (s = slot_add(st, hash, e->key, len)) == NULL)
        goto nomem;
    for (size_t i = 0; i < s->n; i++) {
        const char *other = s->variants[i]->e->vary_key ? s->variants[i]->e->vary_key : "";
        if (strcmp(other, vk) == 0) {
            time_t have = s->variants[i]->e->response_time;
            if (have > e->response_time || (loaded && have == e->response_time)) {
                /* An older copy (from disk, loaded late) never hides a newer one, nor
                 * one of the same second: memory's is the later of the two. */
                goto superseded;
            }
            old = s->variants[i];
            variant_place(s, i, n);
            break;
        }
    }
    if (old == NULL && s->n >= CACHE_MAX_VARIANTS) {
        if (loaded && s->variants[s->n - 1]->e->response_time > e->response_time)
            goto superseded; /* older than all it would push out */
        /* The oldest variant makes room; it goes as a replaced one would. */
        old = s->variants[s->n - 1];
        variant_place(s, s->n - 1, n);
    } else if (old == NULL) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 2;
            struct node **v = realloc(s->variants, cap * sizeof *v);
            if (v == NULL) {
                if (s->n == 0 && !s->gone)
                    slot_drop(st, hash, s);
                goto nomem;
            }
            s->variants = v;
            s->cap = cap;
        }
        s->n++;
        variant_place(s, s->n - 1, n);
        st->entries++;
    }
    if (!loaded)
        count_change(st, hash);
    if (then != NULL)
        then(then_arg, e);
    pthread_mutex_lock(&c->clock_lock);
    if (old != NULL)
        old_off_clock = clock_unlink_locked(c, old);
    clock_link_locked(c, n);
    victims = clock_evict_locked(c, n);
    clock_publish_locked(c);
    pthread_mutex_unlock(&c->clock_lock);
    pthread_mutex_unlock(&st->lock);

    /* Freeing happens outside the locks: the last reference may hold a large body. */
    if (old != NULL) {
        if (old_off_clock)
            node_release(old);
        node_release(old);
    }
    evict_victims(c, victims);
    return CP_OK;

superseded:
    pthread_mutex_unlock(&st->lock);
    entry_unref(n->e);
    free(n);
    return CP_ERR_SUPERSEDED;

nomem:
    pthread_mutex_unlock(&st->lock);
    entry_unref(n->e);
    free(n);
    return CP_ERR_NOMEM;
}

cp_err cache_insert(struct cache *c, struct entry *e)
{
    return insert(c, e, false, NULL, NULL, NULL);
}

cp_err cache_insert_then(struct cache *c, struct entry *e,
                         void (*then)(void *arg, struct entry *e), void *arg)
{
    return insert(c, e, false, NULL, then, arg);
}

cp_err cache_insert_loaded(struct cache *c, struct entry *e)
{
    return insert(c, e, true, NULL, NULL, NULL);
}

size_t cache_max_bytes(const struct cache *c) { return c->max_bytes; }

uint64_t cache_changes(struct cache *c, const char *key)
{
    uint64_t hash;
    return atomic_load(&stripe_for(c, key, strlen(key), &hash)->changes);
}

cp_err cache_insert_read(struct cache *c, struct entry *e, uint64_t changes)
{
    return insert(c, e, true, &changes, NULL, NULL);
}

/* cache_remove_then's, and `removed` as cache_remove's. */
static size_t remove_key(struct cache *c, const char *key,
                         void (*removed)(void *arg, const struct entry *e), void *arg,
                         void (*then)(void *arg, const char *key), void *then_arg)
{
    uint64_t hash;
    size_t len = strlen(key);
    struct stripe *st = stripe_for(c, key, len, &hash);
    size_t n = 0;
    struct node **vars = NULL;
    pthread_mutex_lock(&st->lock);
    /* Read under the lock: cache_load_end drops the marks under it after clearing. */
    bool keep = atomic_load(&c->loading);
    count_change(st, hash);
    if (then != NULL)
        then(then_arg, key);
    struct slot *s = slot_find(st, hash, key);
    if (s == NULL && keep) {
        /* Not in memory, maybe not loaded yet: the mark keeps its disk copy out. */
        s = slot_add(st, hash, key, len);
        if (s == NULL)
            atomic_store(&c->marks_lost, true);
        else
            s->gone = true;
        pthread_mutex_unlock(&st->lock);
        return 0;
    }
    if (s != NULL) {
        n = s->n;
        vars = s->variants;
        st->entries -= n;
        for (size_t i = 0; removed != NULL && i < n; i++)
            removed(arg, vars[i]->e);
        pthread_mutex_lock(&c->clock_lock);
        for (size_t i = 0; i < n; i++)
            if (clock_unlink_locked(c, vars[i]))
                node_release(vars[i]); /* never the last hold: the table has one */
        clock_publish_locked(c);
        pthread_mutex_unlock(&c->clock_lock);
        if (keep) { /* the slot stays, empty, as the mark */
            s->variants = NULL;
            s->n = s->cap = 0;
            s->gone = true;
            s = NULL;
        } else {
            hindex_remove(&st->table, hash, s);
        }
    }
    pthread_mutex_unlock(&st->lock);
    for (size_t i = 0; i < n; i++)
        node_release(vars[i]);
    if (s != NULL)
        slot_free(s); /* frees vars too */
    else
        free(vars);
    return n;
}

size_t cache_remove(struct cache *c, const char *key,
                    void (*removed)(void *arg, const struct entry *e), void *arg)
{
    return remove_key(c, key, removed, arg, NULL, NULL);
}

size_t cache_remove_then(struct cache *c, const char *key,
                         void (*then)(void *arg, const char *key), void *arg)
{
    return remove_key(c, key, NULL, NULL, then, arg);
}

void cache_load_begin(struct cache *c) { atomic_store(&c->loading, true); }

void cache_load_end(struct cache *c)
{
    atomic_store(&c->loading, false);
    for (size_t i = 0; i < CACHE_STRIPES; i++) {
        struct stripe *st = &c->stripes[i];
        pthread_mutex_lock(&st->lock);
        /* A removal may move a later slot into cell k: k is looked at again. */
        for (size_t k = 0; k < st->table.cap;) {
            struct slot *s = st->table.cells[k].item;
            if (s != NULL && s->n == 0) {
                hindex_remove_at(&st->table, k);
                slot_free(s);
                continue;
            }
            if (s != NULL)
                s->gone = false;
            k++;
        }
        pthread_mutex_unlock(&st->lock);
    }
    atomic_store(&c->marks_lost, false);
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
