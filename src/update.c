/* How origin answers change the cache (see update.h). */
#include "update.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conditional.h"
#include "forward.h"
#include "http.h"
#include "log.h"

/* Whether a response (status, fields `response`, body of `body_len` bytes) to a GET
 * with fields `request` may be stored; if so, sets *vary_key (the caller frees it) to
 * its Vary key. A Vary of "*" (or no memory) means it is never reused: not stored. */
static bool may_store(const struct updater *u, int status, const struct hdrs *request,
                      const struct hdrs *response, size_t body_len, time_t response_time,
                      char **vary_key)
{
    *vary_key = NULL;
    if (!policy_storable(status, request, response, body_len, response_time, &u->popts))
        return false;
    char *vary = NULL;
    bool ok = hdrs_join(response, "Vary", &vary) == CP_OK &&
              http_vary_key(vary, request, vary_key) == CP_OK;
    free(vary);
    if (!ok) {
        free(*vary_key);
        *vary_key = NULL;
    }
    return ok;
}

static void queue_write(void *mirror, struct entry *e) { mirror_write(mirror, e); }

static void queue_removal(void *mirror, const char *key) { mirror_remove_all(mirror, key); }

/* Puts `e` (packed, complete) in the cache and hands it to the disk mirror. The write is
 * queued under the key's lock in the cache, with the insert: the disk gets the changes
 * of a key in the order memory got them (an invalidation racing with this store ends
 * with neither holding `e`), and only what memory kept. From then on the key counts as
 * pending for the disk, so a lookup that misses in memory (the entry evicted at once)
 * does not read back the older record `e` replaces. */
static bool keep(const struct updater *u, struct entry *e)
{
    return cache_insert_then(u->cache, e, u->mirror ? queue_write : NULL, u->mirror) == CP_OK;
}

/* Age and freshness of `e` from the exchange that produced `response`. */
static void set_times(const struct updater *u, struct entry *e, const struct hdrs *response,
                      time_t request_time, time_t response_time)
{
    e->request_time = request_time;
    e->response_time = response_time;
    e->initial_age = policy_initial_age(response, request_time, response_time);
    e->lifetime = policy_freshness_lifetime(e->status, &e->headers, response_time, &u->popts);
    e->generation = cache_generation(u->cache);
}

struct entry *update_from_response(const struct updater *u, const char *key,
                                   const char *method, const struct hdrs *request,
                                   struct fetch_result *res, bool *stored)
{
    *stored = false;
    struct entry *e = entry_new();
    if (e == NULL)
        return NULL;
    char *vary_key = NULL;
    bool storable = strcmp(method, "GET") == 0 &&
                    may_store(u, res->status, request, &res->headers, res->body_len,
                              res->response_time, &vary_key);
    /* The stored fields are copied once, straight into the entry's single block. */
    cp_err err = entry_pack_from(e, key, vary_key, &res->headers, forward_field_storable);
    free(vary_key);
    if (err != CP_OK) {
        entry_unref(e);
        return NULL;
    }
    e->status = res->status;
    e->body = res->body;
    e->body_len = res->body_len;
    res->body = NULL;
    res->body_len = 0;
    set_times(u, e, &res->headers, res->request_time, res->response_time);
    if (storable)
        *stored = keep(u, e);
    return e;
}

struct entry *update_revalidated(const struct updater *u, struct entry *stale,
                                 const struct hdrs *request, const struct fetch_result *res,
                                 bool *stored)
{
    *stored = false;
    struct entry *e = entry_new();
    if (e == NULL)
        return NULL;
    e->key = strdup(stale->key);
    e->status = stale->status;
    if (e->key == NULL || cond_merge_304(&stale->headers, &res->headers, &e->headers) != CP_OK) {
        entry_unref(e);
        return NULL;
    }
    entry_share_body(e, stale);
    set_times(u, e, &res->headers, res->request_time, res->response_time);
    /* The merged fields are the response now: they decide whether it may be kept. */
    char *vary_key = NULL;
    if (may_store(u, e->status, request, &e->headers, e->body_len, e->response_time,
                  &vary_key)) {
        e->vary_key = vary_key;
        entry_pack(e); /* unpacked (no memory) is only bigger */
        *stored = keep(u, e);
    }
    return e;
}

static void invalidate_one(const struct updater *u, const char *url, const char *host)
{
    char *key = NULL;
    if (url_cache_key(url, host, &key) != CP_OK) {
        log_error("no memory to invalidate the stored responses of %s", url);
        return;
    }
    /* Every variant on disk goes, also those no longer (or not yet) in memory: evicted
     * from memory they would come back from disk. (The store writes nothing for a key
     * it knows it does not hold.) Queued under the key's lock, with the removal from
     * memory (see keep): a lookup reading the disk meanwhile sees the removal pending
     * or the change counted (update_lookup). */
    size_t n = cache_remove_then(u->cache, key, u->mirror ? queue_removal : NULL, u->mirror);
    if (n > 0)
        log_debug("invalidated %zu stored response(s) of %s", n, key);
    free(key);
}

void update_invalidate(const struct updater *u, const char *url, const char *host, int status,
                       const struct hdrs *response)
{
    if (status < 200 || status >= 400)
        return;
    invalidate_one(u, url, host);
    static const char *const fields[] = {"Location", "Content-Location"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *loc = hdrs_get(response, fields[i]);
        char *abs = NULL;
        /* Only URLs on the origin: another host's entries are not ours to drop (and
         * an attacker-chosen Location must not empty the cache of other hosts). */
        if (loc != NULL && url_resolve(url, loc, &abs) == CP_OK && url_on_origin(u->origin, abs))
            invalidate_one(u, abs, host);
        free(abs);
    }
}

/* Stores in memory the copy `e` read from disk (and drops the caller's reference),
 * refused if its key was fetched anew, invalidated or cleared since `changes` was
 * taken: then memory is right as it is. */
static void keep_read(const struct updater *u, struct entry *e, uint64_t changes)
{
    entry_pack(e);
    (void)cache_insert_read(u->cache, e, changes);
    entry_unref(e);
}

/* Whether the disk's records of `key` may be read back now, taking into *changes the
 * count that keep_read needs. The count is taken before the disk is looked at (not
 * before the memory lookup, which hits need not pay for): a change made since is either
 * counted there, or made before, and then its disk operation, queued with it under the
 * key's lock, is pending here or applied to the store's index already. A write or
 * removal on its way to the disk would not stop the store from finding the record it
 * replaces or removes (memory may have evicted the newer copy already): until it gets
 * there, the origin answers instead. */
static bool disk_may_answer(const struct updater *u, const char *key, uint64_t *changes)
{
    *changes = cache_changes(u->cache, key);
    return u->mirror == NULL || !mirror_pending(u->mirror, key);
}

/* Reads back from disk the variants of `key` no longer than `max_len` bytes (waiting
 * for a busy store if `wait`) and stores them in memory; *shortest_left as for
 * store_read_variants. Returns how many it read (memory may have refused some). */
static size_t read_back(const struct updater *u, const char *key, size_t max_len, bool wait,
                        size_t *shortest_left)
{
    if (shortest_left != NULL)
        *shortest_left = 0;
    uint64_t changes;
    if (!disk_may_answer(u, key, &changes))
        return 0;
    /* Every variant: which one the request selects is the cache's to tell (Vary). */
    struct entry *found[CACHE_MAX_VARIANTS];
    size_t n = store_read_variants(u->store, key, max_len, wait, shortest_left, found,
                                   CACHE_MAX_VARIANTS);
    for (size_t i = 0; i < n; i++)
        keep_read(u, found[i], changes);
    return n;
}

/* The longest record memory could take: past it, it would refuse the entry anyway. */
static size_t memory_bound(const struct updater *u, size_t max_len)
{
    size_t bound = cache_max_bytes(u->cache);
    return bound != 0 && bound < max_len ? bound : max_len;
}

/* A Vary miss: other variants of `key` are in memory, not the one `request` selects.
 * Only its record is looked for on disk (the Vary of the newest variant in memory tells
 * which), as read_back does; *left is the record's length if it is longer than
 * `max_len` and so left unread. Returns the variant, or NULL. */
static struct entry *read_variant_back(const struct updater *u, const char *key,
                                       const struct hdrs *request, size_t max_len,
                                       bool wait, size_t *left)
{
    struct entry *e = NULL;
    char *vary = cache_vary(u->cache, key), *vary_key = NULL;
    if (vary == NULL || http_vary_key(vary, request, &vary_key) != CP_OK)
        goto out;
    uint64_t changes;
    if (!disk_may_answer(u, key, &changes))
        goto out;
    struct entry *found = NULL;
    if (store_read_within(u->store, key, vary_key, max_len, wait, left, &found) == CP_OK) {
        keep_read(u, found, changes);
        e = cache_lookup(u->cache, key, request, NULL);
    }
out:
    free(vary);
    free(vary_key);
    return e;
}

struct entry *update_lookup(const struct updater *u, const char *key,
                            const struct hdrs *request, bool *uri_known, bool *read_later)
{
    if (read_later != NULL)
        *read_later = false;
    bool known = false;
    struct entry *e = cache_lookup(u->cache, key, request, &known);
    if (uri_known != NULL)
        *uri_known = known;
    if (e != NULL || u->store == NULL)
        return e;
    /* While loading, a restart must turn no response into a miss: wait for the store. */
    bool loading = u->loading != NULL && atomic_load(u->loading);
    size_t max_len = memory_bound(u, loading ? SIZE_MAX : UPDATE_READ_BACK_MAX);
    size_t left = 0; /* the shortest record left unread for its length */
    if (known)
        e = read_variant_back(u, key, request, max_len, loading, &left);
    else if (read_back(u, key, max_len, loading, &left) > 0)
        e = cache_lookup(u->cache, key, request, uri_known);
    if (read_later != NULL)
        *read_later = e == NULL && left != 0 && left <= memory_bound(u, SIZE_MAX);
    return e;
}

size_t update_read_back(const struct updater *u, const char *key, const struct hdrs *request)
{
    if (u->store == NULL)
        return 0;
    struct entry *e = cache_lookup(u->cache, key, request, NULL);
    if (e != NULL) {
        entry_unref(e);
        return 0;
    }
    return read_back(u, key, memory_bound(u, SIZE_MAX), true, NULL);
}

struct refresh {
    const struct updater *u;
    struct entry *stale;
    struct hdrs request;
};

static void refresh_done(void *arg, struct fetch_result *res)
{
    struct refresh *r = arg;
    bool stored = false;
    struct entry *e = NULL;
    if (res->err == CP_OK && res->status == 304)
        e = update_revalidated(r->u, r->stale, &r->request, res, &stored);
    else if (res->err == CP_OK && res->status < 500)
        e = update_from_response(r->u, r->stale->key, "GET", &r->request, res, &stored);
    /* A failed refresh leaves the stale entry as it is, for its windows to decide. */
    log_debug("background refresh of %s: %s%s", r->stale->key,
              res->err == CP_OK ? "answered" : cp_strerror(res->err), stored ? ", stored" : "");
    entry_unref(e);
    entry_unref(r->stale);
    hdrs_free(&r->request);
    free(r);
}

cp_err update_refresh(const struct updater *u, struct entry *stale, const struct hdrs *request)
{
    /* One refresh per stored response: a busy URL would otherwise start one per hit.
     * A refresh that fails leaves the flag set; the response then ages out of its
     * window and is revalidated in the foreground. */
    if (atomic_exchange(&stale->refreshing, true))
        return CP_OK;
    struct refresh *r = calloc(1, sizeof *r);
    struct fetch_request fr = {0};
    hdrs_init(&fr.headers);
    if (r == NULL)
        return CP_ERR_NOMEM;
    r->u = u;
    hdrs_init(&r->request);
    if (hdrs_copy(&r->request, request) != CP_OK ||
        forward_request_headers(request, NULL, &fr.headers) != CP_OK ||
        cond_add_validators(&fr.headers, &stale->headers) != CP_OK ||
        (fr.method = strdup("GET")) == NULL || url_of_key(stale->key, &fr.url) != CP_OK) {
        fetch_request_free(&fr);
        hdrs_free(&r->request);
        free(r);
        return CP_ERR_NOMEM;
    }
    /* Conditions and ranges of the client are its own; the refresh wants the whole
     * response or a 304 for our validators. */
    hdrs_remove(&fr.headers, "Range");
    hdrs_remove(&fr.headers, "If-Range");
    hdrs_remove(&fr.headers, "If-Match");
    hdrs_remove(&fr.headers, "If-Unmodified-Since");
    r->stale = entry_ref(stale);
    cp_err err = fetch_submit(u->fetcher, &fr, refresh_done, r);
    if (err != CP_OK) {
        entry_unref(r->stale);
        hdrs_free(&r->request);
        free(r);
    }
    return err;
}
