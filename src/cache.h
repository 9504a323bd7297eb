/* The in-memory cache: a striped hash table from primary key to the variants stored
 * for it (one per Vary secondary key), each a reference-counted entry, kept under a
 * byte bound by CLOCK (second chance) eviction.
 * Thread-safe; locks are held only while the table is looked at or changed. */
#ifndef CP_CACHE_H
#define CP_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"
#include "headers.h"

struct cache;

/* Creates an empty cache. `generation`, if not NULL, points to a counter shared with
 * other processes (store_generation_ptr): whenever it differs from the generation the
 * cache last saw, every entry is dropped before the next lookup or insert, which is how
 * `--clear-cache` empties a running server.
 * `max_bytes` bounds cache_bytes(): an insert that would exceed it first evicts entries
 * that have not been looked up since the clock hand last passed them, oldest first.
 * 0 means no bound. Returns CP_ERR_NOMEM on failure. */
cp_err cache_new(const _Atomic uint64_t *generation, size_t max_bytes, struct cache **out);
/* Drops every entry (clients still holding references keep theirs) and frees the cache. */
void cache_free(struct cache *c);

/* Sets a function called with each entry evicted to respect the bound (not with those
 * removed, replaced or cleared), after it has left the cache and with no lock held, so
 * it may call into the cache. `e` is valid only during the call. Must be set before the
 * cache is shared between threads; NULL turns it off. */
void cache_set_evicted(struct cache *c, void (*evicted)(void *arg, const struct entry *e),
                       void *arg);

/* What `e` counts against max_bytes: the entry, its key, Vary key, fields and body.
 * A body shared with an older entry (body_owner) is counted with the whole owner, which
 * that body keeps alive even after the owner has left the cache (the usual case: a
 * revalidated entry replaces the one it shares with). Allocator and table overhead are
 * not counted. Pure; never fails. */
size_t cache_entry_size(const struct entry *e);
/* Sum of cache_entry_size() over the entries stored now; never above max_bytes (when it
 * is not 0), whenever it is read. */
size_t cache_bytes(struct cache *c);

/* The bound given to cache_new (0: none). */
size_t cache_max_bytes(const struct cache *c);

/* The generation new entries must carry to be accepted by cache_insert. */
uint64_t cache_generation(struct cache *c);

/* The Vary field of the newest stored variant of `key` (the caller frees it), or NULL
 * when none is stored, it has no Vary, or memory ran out. */
char *cache_vary(struct cache *c, const char *key);

/* Finds a stored variant of `key` whose Vary secondary key matches `request` (of
 * several, as when one was stored without Vary, the most recent by response_time).
 * Returns it with a reference the caller drops with entry_unref, or NULL; then
 * *uri_known (if not NULL) tells whether other variants of `key` are stored (a Vary
 * miss) or none (a URI miss). Freshness is the caller's business: stale entries are
 * returned too. A hit marks the entry as used, which spares it once from eviction. */
struct entry *cache_lookup(struct cache *c, const char *key, const struct hdrs *request,
                           bool *uri_known);

/* Variants kept of one URL: a lookup compares each, so past this many a new variant
 * replaces the oldest, and a client that varies a field without end costs no more. */
#define CACHE_MAX_VARIANTS 32

/* Stores `e` (the cache takes its own reference), replacing a variant with the same
 * key and vary_key (or, when the key has CACHE_MAX_VARIANTS, the oldest of them), then
 * evicts other entries until the bound holds again (never the entry this call stores).
 * An entry of an older generation is refused with
 * CP_ERR_STALE_GEN, one whose cache_entry_size() exceeds max_bytes with
 * CP_ERR_TOO_LARGE; returns CP_ERR_NOMEM on allocation failure. On any failure the
 * cache is left as it was. Evicted entries stay valid for whoever holds a reference. */
cp_err cache_insert(struct cache *c, struct entry *e);

/* cache_insert, and when `e` is stored, calls `then` (if not NULL) with it, under the
 * lock of its key: every change to a key and its `then` come in one order, whichever
 * threads make them (e.g. to queue the disk's copy of each change in that order). `then`
 * must be quick and must not call back into the cache. */
cp_err cache_insert_then(struct cache *c, struct entry *e,
                         void (*then)(void *arg, struct entry *e), void *arg);

/* While the disk is being loaded, a copy read from disk may reach the cache after the
 * response was invalidated (cache_remove), or stored afresh and evicted, meanwhile.
 * Between cache_load_begin and cache_load_end, cache_remove and the eviction of a
 * response stored by cache_insert leave a mark on the key, and cache_insert_loaded
 * refuses a copy from disk for a marked key (CP_ERR_SUPERSEDED), as it refuses one no
 * newer (response_time) than the variant stored; otherwise it is cache_insert.
 * cache_load_end drops the marks. None fails: when memory for a mark runs out, every
 * copy from disk is refused until cache_load_end (fetched again, never stale). */
void cache_load_begin(struct cache *c);
void cache_load_end(struct cache *c);
cp_err cache_insert_loaded(struct cache *c, struct entry *e);

/* A response evicted from memory may be read back from disk. A removal (cache_remove)
 * or a fresh response (cache_insert) made while it was being read must win: read
 * cache_changes() for its key before looking on disk, and cache_insert_read refuses the
 * copy (CP_ERR_SUPERSEDED) if a change has been made since to that key (or, when more
 * than 64 changes were made meanwhile to the keys that share its lock, one in 64 of all,
 * to any of them), and otherwise acts as cache_insert_loaded. Never fails beyond
 * cache_insert_loaded's errors. */
uint64_t cache_changes(struct cache *c, const char *key);
cp_err cache_insert_read(struct cache *c, struct entry *e, uint64_t changes);

/* Removes every variant of `key`; returns how many were removed. `removed`, if not
 * NULL, is called with each (under the cache's lock: it must be quick and must not call
 * back into the cache), e.g. to remove its disk file too. */
size_t cache_remove(struct cache *c, const char *key,
                    void (*removed)(void *arg, const struct entry *e), void *arg);
/* cache_remove, calling `then` (if not NULL) with `key` under the lock of the key,
 * whether or not anything was stored (see cache_insert_then). */
size_t cache_remove_then(struct cache *c, const char *key,
                         void (*then)(void *arg, const char *key), void *arg);
/* Removes every entry; returns how many were removed. */
size_t cache_clear(struct cache *c);
/* Number of entries (variants) stored. */
size_t cache_count(struct cache *c);

#endif
