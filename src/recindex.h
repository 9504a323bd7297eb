/* The store's index of records in memory: for the 128-bit hash of a key and vary key
 * (diskfmt_key_hash), where the newest record lies (segment, offset, length), no
 * strings. Pure: no I/O and no locks (the store locks around it). */
#ifndef CP_RECINDEX_H
#define CP_RECINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diskfmt.h"
#include "error.h"

/* One record: 32 bytes. */
struct recindex_slot {
    uint64_t lo, hi;  /* diskfmt_key_hash */
    uint64_t seq;     /* segment */
    uint32_t off;     /* record offset in the segment */
    uint32_t len;     /* record length; 0: free slot (a record is never empty) */
};

/* An open-addressing table; all zeros is an empty index. v[0..cap) may be walked to
 * visit every record (the slots with len != 0, in no particular order), but is changed
 * only through the functions below. n is the number of records. */
struct recindex {
    struct recindex_slot *v;
    size_t cap, n;
};

/* The slot of `h`, or NULL. The pointer is valid until the index next changes. */
struct recindex_slot *recindex_find(const struct recindex *ix, const struct diskfmt_hash *h);

/* Copies into out[0..max) the slots of every record whose hash has this `lo` (every
 * variant of a key), found in the run of slots from their home; returns how many were
 * copied (at most `max`, the others are left out). Never fails. */
size_t recindex_find_lo(const struct recindex *ix, uint64_t lo, struct recindex_slot *out,
                        size_t max);

/* Makes room for `n` records in all, so that that many puts cannot fail. Returns
 * CP_ERR_NOMEM leaving the index as it was. */
cp_err recindex_reserve(struct recindex *ix, size_t n);

/* Makes (seq, off, len) the record of `h`, replacing the one it had. Returns
 * CP_ERR_NOMEM (the index is then as it was), or CP_ERR_INTERNAL if len is 0 (that
 * marks a free slot: nothing is changed). */
cp_err recindex_put(struct recindex *ix, const struct diskfmt_hash *h, uint64_t seq,
                    uint32_t off, uint32_t len);

/* Forgets the record of `h`. Returns false if there was none. */
bool recindex_delete(struct recindex *ix, const struct diskfmt_hash *h);

/* Forgets the record in `sl`, a slot just returned by recindex_find on this index. */
void recindex_delete_at(struct recindex *ix, struct recindex_slot *sl);

/* Forgets every record whose hash has this `lo` (diskfmt_key_hash: every variant of a
 * key). They all share a home slot, so only the run of slots from there is walked.
 * Returns how many were forgotten. */
size_t recindex_delete_lo(struct recindex *ix, uint64_t lo);

/* Forgets the records of the segments before `cut` (deleted), in one pass. */
void recindex_drop_below(struct recindex *ix, uint64_t cut);

/* Frees the table, leaving an empty index that may be used again. */
void recindex_free(struct recindex *ix);

#endif
