/* The on-disk format of the cache's records: encode and decode, no I/O.
 * A record is a cache entry, the removal of one (a tombstone), or the removal of every
 * variant of a key (every vary key: an invalidation). Records are self-delimiting, so a
 * segment file of the store is simply records back to back.
 * Layout (all integers little-endian):
 *   fixed header: magic "CPXE", format version, kind, lengths, XXH64 checksums
 *   metadata:     entry:   key, vary key, status, times, lifetime, generation, fields
 *                 removal: key, vary key, generation
 *                 removal of all variants: key, empty vary key, generation
 *   body:         the response body, byte for byte (a removal has none)
 * The header, the metadata and the body have their own checksums, so a record can be
 * stepped over and its key read without reading its body. */
#ifndef CP_DISKFMT_H
#define CP_DISKFMT_H

#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"

#define DISKFMT_VERSION 3u   /* 2: keys without the Host; 1: one entry per file */
#define DISKFMT_HEAD_LEN 48u /* bytes of the fixed header */

/* Kind 2 came with format version 2, which was never released without it. */
enum diskfmt_kind { DISKFMT_ENTRY = 0, DISKFMT_REMOVAL = 1, DISKFMT_REMOVAL_ALL = 2 };

/* What a record's fixed header says. */
struct diskfmt_head {
    enum diskfmt_kind kind;
    uint32_t meta_len;
    uint64_t body_len;
    uint64_t record_len; /* DISKFMT_HEAD_LEN + meta_len + body_len */
    uint64_t meta_sum;   /* checksums, for diskfmt_parse_meta and diskfmt_decode */
    uint64_t body_sum;
};

/* What identifies a record, read from its metadata: pointers into that metadata
 * (the strings are not NUL-terminated). */
struct diskfmt_ref {
    enum diskfmt_kind kind;
    const char *key;
    size_t key_len;
    const char *vary_key;
    size_t vary_len;
    uint64_t generation;
};

/* A 128-bit hash of a key and vary key: how the store finds records. `lo` depends on
 * the key alone, so every variant of a key has the same `lo` (and can be found by it);
 * `hi` on both. */
struct diskfmt_hash {
    uint64_t lo, hi;
};

/* Encodes everything of `e` but its body: the fixed header and the metadata of an
 * entry record. The record is this followed by e->body. Sets *out (caller frees) and
 * *len. Returns CP_ERR_NOMEM or CP_ERR_TOO_LARGE (a field does not fit the format). */
cp_err diskfmt_encode_head(const struct entry *e, unsigned char **out, size_t *len);

/* Encodes a whole removal record for this key and vary key (NULL is ""), made in
 * `generation`. Sets *out (caller frees) and *len. Returns CP_ERR_NOMEM or
 * CP_ERR_TOO_LARGE. */
cp_err diskfmt_encode_removal(const char *key, const char *vary_key, uint64_t generation,
                              unsigned char **out, size_t *len);

/* Encodes a whole record removing every variant of `key` (NULL is ""), whatever its
 * vary key, made in `generation`. Sets *out (caller frees) and *len. Returns
 * CP_ERR_NOMEM or CP_ERR_TOO_LARGE. */
cp_err diskfmt_encode_removal_all(const char *key, uint64_t generation, unsigned char **out,
                                  size_t *len);

/* Reads the fixed header at `buf` (`len` bytes available, normally DISKFMT_HEAD_LEN):
 * checks magic, version, its own checksum, kind and that the lengths add up.
 * Returns CP_ERR_VERSION (magic right, another version: 8 bytes suffice to tell) or
 * CP_ERR_CORRUPT; *out is then unspecified. */
cp_err diskfmt_parse_head(const unsigned char *buf, size_t len, struct diskfmt_head *out);

/* Checks the metadata `meta` (h->meta_len bytes, following the header `h`) against its
 * checksum and reads the kind, key, vary key and generation into *out, without
 * copying. The rest of an entry's metadata is checked by diskfmt_decode only. A
 * removal of all variants with a vary key is damaged.
 * Returns CP_ERR_CORRUPT. */
cp_err diskfmt_parse_meta(const struct diskfmt_head *h, const unsigned char *meta,
                          struct diskfmt_ref *out);

/* Decodes a whole entry record of exactly `len` bytes into a new entry (one reference,
 * caller unrefs). Checks magic, version, lengths and every checksum; never reads past
 * `len`. A removal record (of either kind) is not an entry: CP_ERR_CORRUPT.
 * Returns CP_ERR_CORRUPT, CP_ERR_VERSION or CP_ERR_NOMEM; *out is then NULL. */
cp_err diskfmt_decode(const unsigned char *buf, size_t len, struct entry **out);

/* The hash of a key and a vary key given with their lengths (NUL not needed): `lo` is
 * XXH3 64-bit of the key, `hi` XXH3 64-bit of key, a NUL, vary key, so ("ab", "c") and
 * ("a", "bc") differ. Never written to disk, but the same in every build; never fails. */
struct diskfmt_hash diskfmt_key_hash(const char *key, size_t key_len, const char *vary_key,
                                     size_t vary_len);

#endif
