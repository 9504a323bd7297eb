/* Growable byte buffers: the one rule by which request bodies, origin bodies and bodies
 * in transit make room for more bytes. */
#ifndef CP_BYTES_H
#define CP_BYTES_H

#include <stddef.h>

#include "error.h"

/* Makes *buf (of capacity *cap, possibly NULL and 0) hold at least `need` bytes,
 * keeping its contents. A new buffer starts at `first_cap` (or 4096 if 0); capacity
 * then doubles, so appending n bytes costs O(n) overall. Returns CP_ERR_NOMEM, with
 * *buf and *cap unchanged, if memory runs out. */
cp_err bytes_reserve(unsigned char **buf, size_t *cap, size_t need, size_t first_cap);

#endif
