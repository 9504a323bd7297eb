/* The disk mirror's files: one file per entry in the cache directory, written
 * atomically (temporary file, then rename), loaded back at start, removed on clear.
 * Also owns the generation counter file that lets `--clear-cache` reach a running server. */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"

struct store;

/* Opens (creating it and its parents if needed) the cache directory `dir` and maps its
 * generation file. Returns CP_ERR_CACHE_DIR if the directory cannot be created or is not
 * writable (errno then says why; nothing is logged), CP_ERR_NOMEM. */
cp_err store_open(const char *dir, struct store **out);
/* Unmaps and frees. NULL is ignored. */
void store_close(struct store *s);

/* The shared generation counter, in a memory mapping of the generation file: a
 * `--clear-cache` from another process increments it. Valid until store_close. */
const _Atomic uint64_t *store_generation_ptr(struct store *s);

/* Writes `e` to its file atomically (an existing file for the same key and vary key is
 * replaced). Returns CP_ERR_IO (the error is logged with the path), CP_ERR_NOMEM. */
cp_err store_write(struct store *s, const struct entry *e);

/* Removes the file of the entry with this key and vary key, if any. */
void store_remove(struct store *s, const char *key, const char *vary_key);

/* Calls `cb` with each valid entry on disk (a new reference that `cb` takes over).
 * A file that is truncated, corrupt, of another version, of an older generation or
 * whose name does not match its key is logged as a warning and removed, never passed
 * on. Leftover temporary files are removed. Sets *loaded and *removed (may be NULL).
 * Returns CP_ERR_IO only if the directory itself cannot be read. */
cp_err store_load(struct store *s, void (*cb)(void *arg, struct entry *e), void *arg,
                  size_t *loaded, size_t *removed);

/* Empties the cache directory `dir`: increments its generation counter (so a running
 * server drops its in-memory entries) and removes every entry file. Sets *entries and
 * *bytes to what was removed. A missing directory is an empty cache (CP_OK).
 * Returns CP_ERR_CACHE_DIR (errno then says why; nothing is logged) or CP_ERR_IO. */
cp_err store_clear(const char *dir, size_t *entries, uint64_t *bytes);

#endif
