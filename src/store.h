/* The disk mirror's files: cache records appended back to back to a few large segment
 * files in the cache directory, found again through an index in memory, loaded back at
 * start, removed on clear, the oldest segments removed when they together exceed a
 * byte bound. Also owns the generation counter file that lets `--clear-cache` reach a
 * running server. One running server per cache directory. */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"

struct store;

/* Opens (creating it and its parents if needed) the cache directory `dir`, maps its
 * generation file and notes the segment files already there (names and sizes only:
 * their records are read by store_load). `max_bytes` bounds the total size of the
 * segment files: a store_write that takes the total over it removes the oldest
 * segments until it fits. 0 means no bound.
 * Returns CP_ERR_CACHE_DIR if the directory cannot be created, read or written (errno
 * then says why; nothing is logged), CP_ERR_NOMEM. */
cp_err store_open(const char *dir, uint64_t max_bytes, struct store **out);
/* Closes the segment being written, unmaps and frees. NULL is ignored. */
void store_close(struct store *s);

/* The nominal size of a segment under the bound `max_bytes` (0: none): a segment takes
 * records until the next one would take it over this size; a record larger than this
 * has a segment to itself. Between 1 byte and 8 MiB, and at most a quarter of the
 * bound (1 byte for a bound under 4 bytes), so that removing the oldest segment never
 * empties much of the cache. Never fails. */
uint64_t store_segment_bytes(uint64_t max_bytes);

/* The shared generation counter, in a memory mapping of the generation file: a
 * `--clear-cache` from another process increments it. Valid until store_close. */
const _Atomic uint64_t *store_generation_ptr(struct store *s);

/* Appends `e` as a record to the segment being written (one write, no sync), making it
 * the one found for its key and vary key; then, if the segments now exceed max_bytes,
 * removes the oldest segments, with all their records, until they fit (never the
 * segment being written; a segment that cannot be deleted stops this, is logged and
 * stays counted, so the bound may be exceeded until it can be).
 * An entry of another generation than the current one (made before a --clear-cache) is
 * not written: CP_ERR_STALE_GEN. Whenever `e` is not written for any other reason, the
 * older record for its key and vary key is removed as by store_remove, so that neither
 * this process nor a restart serves what `e` replaced:
 *   CP_ERR_TOO_LARGE: its record is larger than max_bytes alone or than 4 GiB, or a
 *     field does not fit the format (diskfmt_encode_head);
 *   CP_ERR_IO: the write failed (logged with the path; the segment is then cut back to
 *     its last whole record, or closed to further records), or removals that could not
 *     be written earlier still cannot be (see store_remove): `e` may not pass them;
 *   CP_ERR_NOMEM, also when the record was written but the index could not take it
 *     (then it is not found before a restart, but the older one is not found either).
 * store_write, store_remove and store_remove_all are meant for one thread at a time
 * (the mirror's). */
cp_err store_write(struct store *s, const struct entry *e);

/* Writes the entries ev[0..n) in order, each as store_write would, with the results
 * store_write documents (in errs[i], when errs is not NULL), but with one write for
 * each run of records that go into one segment together (up to 32) instead of one
 * each. Where store_write would have tried each record on its own, a failed write
 * fails the records after it too, up to the next entry that is not written for
 * another reason (too large, not encodable); a clear during the batch makes the
 * records after it CP_ERR_STALE_GEN. Returns the first error, or CP_OK. Same thread
 * rules as store_write. */
cp_err store_write_many(struct store *s, const struct entry *const *ev, size_t n,
                        cp_err *errs);

/* Removes the record of the entry with this key and vary key, if any, by appending a
 * removal record (so that it stays removed after a restart) when one may be on disk.
 * The index forgets the record at once. A removal record that cannot be written (disk
 * full) is kept in memory, up to a few thousand, and written before the next record
 * that store_write or store_remove appends (which is not written until they are); one
 * that cannot even be kept, or is still kept at store_close, is logged as an error: the
 * removed entry may come back after a restart. No result: failures are logged. */
void store_remove(struct store *s, const char *key, const char *vary_key);

/* Removes the records of every variant of `key` (whatever their vary keys, also those
 * this process never saw: evicted from memory, or not loaded yet) as store_remove
 * does, with one record (DISKFMT_REMOVAL_ALL) that a load applies to every record of
 * the key before it. Nothing is written when the index is complete and knows no record
 * of the key. A record of the key written afterwards is live again. Failures as for
 * store_remove (kept pending, or logged). Same thread rules as store_remove. */
void store_remove_all(struct store *s, const char *key);

/* Total size of the segment files the store knows of, live records and garbage alike:
 * those there at store_open or found by store_load, and those written since, less those
 * removed. After a store_clear from elsewhere (a new generation) it counts only what
 * was written since. Safe from any thread. */
uint64_t store_bytes(struct store *s);

/* Calls `cb` with each valid entry on disk (a new reference that `cb` takes over), in
 * the order written, oldest first; `cb` returning false stops the load (what was not
 * handed over stays on disk and findable by store_read). First reads every segment's
 * record headers and keys, not the bodies, to learn which record is the newest for each
 * key (store_read finds them from then on), then reads those records whole.
 * A segment over the bound is brought under it by the next store_write.
 * Damage: a record whose checksum fails is skipped; a record whose header is damaged
 * or that is cut short ends its segment, whose rest is cut off (the whole file removed
 * when nothing before is whole); old-format files (*.cpe, *.tmp.*) and files ending in
 * .cps that are not segments are removed. Each is logged as a warning ("ignoring ...",
 * with the path) and counted in *removed; none is ever passed on. Records of an older
 * generation are garbage, skipped silently.
 * Unreadable segments: a segment that cannot be opened or read to its end (EACCES,
 * EMFILE, EIO; not a damaged one) is logged as a warning and left as it is, still
 * counted by store_bytes and deleted by the bound in its turn. What it holds is
 * unknown, so every record in it or in an older segment is left out of the index (not
 * handed over, not found by store_read), as it may have been replaced or removed in
 * what could not be read; and removals are written to disk for every key from then on.
 * Only records of newer segments are loaded. A later load (the next start) tries it
 * again.
 * Sets *loaded and *removed (may be NULL).
 * One store_load at a time; store_write, store_remove and store_read may run meanwhile.
 * Returns CP_ERR_IO only if the directory itself cannot be read, CP_ERR_NOMEM if the
 * index or the list of records cannot be held, CP_ERR_SHUTDOWN if store_load_stop
 * stopped it before it had read every segment's headers (in both cases no entry is
 * loaded, and store_read finds only what was written since). */
cp_err store_load(struct store *s, bool (*cb)(void *arg, struct entry *e), void *arg,
                  size_t *loaded, size_t *removed);

/* Asks the store_load running now, and any started later, to stop (for shutdown): it
 * stops before its next segment while reading the headers (then as said above), or
 * before its next entry while handing them over (as when `cb` returns false). Returns
 * at once, without waiting for the load. Safe from any thread. */
void store_load_stop(struct store *s);

/* Reads the entry with this key and vary key through the index, checking its record
 * whole as store_load does (a damaged record is logged and forgotten). Sets *out (one
 * reference for the caller). Returns CP_ERR_NOT_FOUND when no record is known (also
 * while store_load has not finished reading the record headers, and when its segment
 * has been removed meanwhile), CP_ERR_CORRUPT and the like for a damaged one,
 * CP_ERR_IO, CP_ERR_NOMEM. Safe from any thread, while store_load and store_write run. */
cp_err store_read(struct store *s, const char *key, const char *vary_key, struct entry **out);

/* store_read, but a record longer than `max_len` bytes is not read: CP_ERR_TOO_LARGE,
 * and *len_left (if not NULL; else 0) is its length. Unless `wait`, CP_ERR_NOT_FOUND at
 * once when the store is busy, as store_read_variants. */
cp_err store_read_within(struct store *s, const char *key, const char *vary_key,
                         size_t max_len, bool wait, size_t *len_left, struct entry **out);

/* Reads every variant of `key` (whatever its vary key) through the index, at most `max`
 * of them and at most STORE_MAX_VARIANTS, each checked as by store_read, into
 * out[0..n); returns n (the caller drops each reference). Records longer than
 * `max_len` bytes are left out unread (if `shortest_left` is not NULL, it is set to the
 * length of the shortest of them, 0 if none), as are those that cannot be read
 * (damaged ones, logged and forgotten as by store_read; out of memory; I/O errors).
 * Unless `wait`, returns 0 at once when the store is busy (as while the writer deletes
 * old segments and sweeps the index), so that the caller can ask the origin instead of
 * waiting. Safe from any thread, as store_read. */
#define STORE_MAX_VARIANTS 32
size_t store_read_variants(struct store *s, const char *key, size_t max_len, bool wait,
                           size_t *shortest_left, struct entry **out, size_t max);

/* Empties the cache directory `dir`: increments its generation counter (so a running
 * server drops its in-memory entries and its index) and removes every segment file and
 * old-format file. Sets *entries (the live entries in the segments removed) and *bytes
 * (the size of the files removed). A missing directory is an empty cache (CP_OK).
 * Returns CP_ERR_CACHE_DIR (errno then says why; nothing is logged) or CP_ERR_IO. */
cp_err store_clear(const char *dir, size_t *entries, uint64_t *bytes);

#endif
