/* The hash index (see hindex.h): linear probing over a power-of-two table, at most half
 * full, so that a key that is not there is known after about two cells; removal shifts
 * the following cells back, so there are no deleted markers to clean. */
#include "hindex.h"

#include <stdlib.h>

#define HINDEX_FIRST_CAP 16

static size_t home_of(const struct hindex *ix, uint64_t hash)
{
    return (size_t)hash & (ix->cap - 1);
}

void *hindex_find(const struct hindex *ix, uint64_t hash,
                  bool (*same)(const void *item, const void *key), const void *key)
{
    if (ix->cap == 0)
        return NULL;
    for (size_t i = home_of(ix, hash);; i = (i + 1) & (ix->cap - 1)) {
        const struct hindex_cell *c = &ix->cells[i];
        if (c->item == NULL)
            return NULL;
        if (c->hash == hash && same(c->item, key))
            return c->item;
    }
}

static void place(struct hindex *ix, uint64_t hash, void *item)
{
    size_t i = home_of(ix, hash);
    while (ix->cells[i].item != NULL)
        i = (i + 1) & (ix->cap - 1);
    ix->cells[i] = (struct hindex_cell){hash, item};
}

/* Doubles the table until `n` items keep it at most half full. */
static cp_err reserve(struct hindex *ix, size_t n)
{
    if (ix->cap != 0 && n <= ix->cap / 2)
        return CP_OK;
    size_t cap = ix->cap != 0 ? ix->cap : HINDEX_FIRST_CAP;
    while (n > cap / 2) {
        if (cap > SIZE_MAX / 2 / sizeof(struct hindex_cell))
            return CP_ERR_NOMEM;
        cap *= 2;
    }
    struct hindex bigger = {calloc(cap, sizeof(struct hindex_cell)), cap, ix->n};
    if (bigger.cells == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->cells[i].item != NULL)
            place(&bigger, ix->cells[i].hash, ix->cells[i].item);
    free(ix->cells);
    *ix = bigger;
    return CP_OK;
}

cp_err hindex_add(struct hindex *ix, uint64_t hash, void *item)
{
    if (item == NULL)
        return CP_ERR_INTERNAL; /* it would read as a free cell and break the table */
    if (reserve(ix, ix->n + 1) != CP_OK)
        return CP_ERR_NOMEM;
    place(ix, hash, item);
    ix->n++;
    return CP_OK;
}

void hindex_remove_at(struct hindex *ix, size_t i)
{
    size_t mask = ix->cap - 1;
    for (size_t j = (i + 1) & mask; ix->cells[j].item != NULL; j = (j + 1) & mask) {
        size_t home = home_of(ix, ix->cells[j].hash);
        /* cells[j] may fill the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->cells[i] = ix->cells[j];
            i = j;
        }
    }
    ix->cells[i].item = NULL;
    ix->n--;
}

bool hindex_remove(struct hindex *ix, uint64_t hash, const void *item)
{
    if (ix->cap == 0)
        return false;
    for (size_t i = home_of(ix, hash); ix->cells[i].item != NULL; i = (i + 1) & (ix->cap - 1)) {
        if (ix->cells[i].item == item) {
            hindex_remove_at(ix, i);
            return true;
        }
    }
    return false;
}

void hindex_free(struct hindex *ix)
{
    free(ix->cells);
    *ix = (struct hindex){0};
}
