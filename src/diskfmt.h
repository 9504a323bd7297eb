/* The on-disk format of one cache entry: encode and decode, no I/O.
 * Layout (all integers little-endian):
 *   fixed header: magic "CPXE", format version, lengths, XXH64 checksums
 *   metadata:     key, vary key, status, times, lifetime, generation, header fields
 *   body:         the response body, byte for byte
 * The metadata and the body have their own checksums so the metadata can be read
 * without the body. */
#ifndef CP_DISKFMT_H
#define CP_DISKFMT_H

#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "error.h"

#define DISKFMT_VERSION 1u
#define DISKFMT_NAME_LEN 32 /* hex characters of a file name, without NUL */

/* Encodes everything of `e` but its body: the fixed header and the metadata. The file
 * is this followed by e->body. Sets *out (caller frees) and *len.
 * Returns CP_ERR_NOMEM or CP_ERR_TOO_LARGE (a field does not fit the format). */
cp_err diskfmt_encode_head(const struct entry *e, unsigned char **out, size_t *len);

/* Decodes a whole file's bytes into a new entry (one reference, caller unrefs).
 * Checks magic, version, lengths and both checksums; never reads past `len`.
 * Returns CP_ERR_CORRUPT, CP_ERR_VERSION or CP_ERR_NOMEM; *out is then NULL. */
cp_err diskfmt_decode(const unsigned char *buf, size_t len, struct entry **out);

/* Writes the file name (DISKFMT_NAME_LEN lower-case hex chars and a NUL) for the
 * entry with this key and secondary key: a 128-bit hash of both. */
void diskfmt_name(const char *key, const char *vary_key, char out[DISKFMT_NAME_LEN + 1]);

#endif
