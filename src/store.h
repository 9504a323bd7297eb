/* The disk mirror's files: one file per entry in the cache directory, written
 * atomically (temporary file, then rename), loaded back at start, removed on clear,
 * the oldest removed when the files together exceed a byte bound.
 * Also owns the generation counter file that lets `--clear-cache` reach a running server. */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"

struct store;

/* Opens (creating it and its parents if needed) the cache directory `dir` and maps its
 * generation file. `max_bytes` bounds the total size of the entry files this store
 * knows of (those found by store_load and those written since): a store_write that
 * takes the total over it removes the oldest files until it fits. 0 means no bound.
 * Returns CP_ERR_CACHE_DIR if the directory cannot be created or is not writable (errno
 * then says why; nothing is logged), CP_ERR_NOMEM. */
cp_err store_open(const char *dir, uint64_t max_bytes, struct store **out);
/* Unmaps and frees. NULL is ignored. */
void store_close(struct store *s);

/* The shared generation counter, in a memory mapping of the generation file: a
 * `--clear-cache` from another process increments it. Valid until store_close. */
const _Atomic uint64_t *store_generation_ptr(struct store *s);

/* Writes `e` to its file atomically (an existing file for the same key and vary key is
 * replaced) and counts it as the newest file; then, if the files now exceed max_bytes,
 * removes the oldest until they fit (never this one). An entry whose file would exceed
 * max_bytes alone is not written, and the file it would replace is removed:
 * CP_ERR_TOO_LARGE. Returns CP_ERR_IO (the error is logged with the path), CP_ERR_NOMEM.
 * store_write and store_remove are meant for one thread at a time (the mirror's). */
cp_err store_write(struct store *s, const struct entry *e);

/* Removes the file of the entry with this key and vary key, if any. */
void store_remove(struct store *s, const char *key, const char *vary_key);

/* Total size of the entry files the store knows of: those found by the last store_load
 * and written since, less those removed. After a store_clear from elsewhere (a new
 * generation) it counts only what was written since. Safe from any thread. */
uint64_t store_bytes(struct store *s);

/* Calls `cb` with each valid entry on disk (a new reference that `cb` takes over),
 * oldest file first (by modification time), and makes them the files store_bytes and
 * the bound count, in that order; a directory over the bound is brought under it by the
 * next store_write. A file that is truncated, corrupt, of another version, of an older
 * generation or whose name does not match its key is logged as a warning and removed,
 * never passed on. Leftover temporary files are removed. Sets *loaded and *removed (may
 * be NULL). Returns CP_ERR_IO only if the directory itself cannot be read, CP_ERR_NOMEM
 * if the list of its files cannot be held (then no entry is loaded). */
cp_err store_load(struct store *s, bool (*cb)(void *arg, struct entry *e), void *arg,
                  size_t *loaded, size_t *removed);

/* Reads the entry with this key and vary key from its file, with the checks of
 * store_load (a damaged file is removed). Sets *out (one reference for the caller).
 * Returns CP_ERR_NOT_FOUND when there is no such file, CP_ERR_CORRUPT and the like
 * for a damaged one, CP_ERR_NOMEM. Safe to call while store_load runs. */
cp_err store_read(struct store *s, const char *key, const char *vary_key, struct entry **out);

/* Empties the cache directory `dir`: increments its generation counter (so a running
 * server drops its in-memory entries) and removes every entry file. Sets *entries and
 * *bytes to what was removed. A missing directory is an empty cache (CP_OK).
 * Returns CP_ERR_CACHE_DIR (errno then says why; nothing is logged) or CP_ERR_IO. */
cp_err store_clear(const char *dir, size_t *entries, uint64_t *bytes);

#endif
