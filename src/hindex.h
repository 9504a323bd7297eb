/* An index from 64-bit hashes to items (pointers), for tables looked up on every request:
 * each cell holds the hash beside the item, so a lookup compares hashes in one or two
 * cache lines and touches an item only when its whole hash matches. Pure: no locks. */
#ifndef CP_HINDEX_H
#define CP_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct hindex_cell {
    uint64_t hash;
    void *item; /* NULL: a free cell */
};

/* All zeros is an empty index. cells[0..cap) may be walked to visit every item (the
 * cells whose item is not NULL, in no particular order); change it only through the
 * functions below. n is the number of items. */
struct hindex {
    struct hindex_cell *cells;
    size_t cap, n;
};

/* The item stored under `hash` for which same(item, key) is true, or NULL. `same` is
 * called only for items whose hash is `hash`. Never fails. */
void *hindex_find(const struct hindex *ix, uint64_t hash,
                  bool (*same)(const void *item, const void *key), const void *key);

/* Stores `item` (not NULL) under `hash`. It does not look for an item already there:
 * the caller finds first. Returns CP_ERR_NOMEM, the index then as it was, or
 * CP_ERR_INTERNAL for a NULL item (nothing is changed). */
cp_err hindex_add(struct hindex *ix, uint64_t hash, void *item);

/* Forgets `item` (the very pointer) stored under `hash`. Returns false if it was not. */
bool hindex_remove(struct hindex *ix, uint64_t hash, const void *item);

/* Forgets the item in cells[i]. An item further on may move into cell i, so a walk that
 * removes looks at cell i again before going on; when the cells of one run wrap around
 * the end, one it has already seen may come back, never one is skipped. */
void hindex_remove_at(struct hindex *ix, size_t i);

/* Forgets every item (the caller frees them) and the cells; the index is empty. */
void hindex_free(struct hindex *ix);

#endif
