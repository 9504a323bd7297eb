/* The store's index of records (see recindex.h): linear probing over a power-of-two
 * table, at most 3/4 full; deletion shifts the following slots back, so there are no
 * deleted markers to clean. */
#include "recindex.h"

#include <stdlib.h>

static size_t slot_home(const struct recindex *ix, uint64_t lo)
{
    return (size_t)lo & (ix->cap - 1);
}

struct recindex_slot *recindex_find(const struct recindex *ix, const struct diskfmt_hash *h)
{
    if (ix->cap == 0)
        return NULL;
    for (size_t i = slot_home(ix, h->lo);; i = (i + 1) & (ix->cap - 1)) {
        struct recindex_slot *sl = &ix->v[i];
        if (sl->len == 0)
            return NULL;
        if (sl->lo == h->lo && sl->hi == h->hi)
            return sl;
    }
}

/* The records of one home all lie in the run from there (see recindex_delete_lo). */
size_t recindex_find_lo(const struct recindex *ix, uint64_t lo, struct recindex_slot *out,
                        size_t max)
{
    if (ix->cap == 0)
        return 0;
    size_t n = 0;
    for (size_t i = slot_home(ix, lo); ix->v[i].len != 0 && n < max; i = (i + 1) & (ix->cap - 1))
        if (ix->v[i].lo == lo)
            out[n++] = ix->v[i];
    return n;
}

void recindex_free(struct recindex *ix)
{
    free(ix->v);
    ix->v = NULL;
    ix->cap = ix->n = 0;
}

static void slot_insert(struct recindex *ix, const struct recindex_slot *sl)
{
    size_t i = slot_home(ix, sl->lo);
    while (ix->v[i].len != 0)
        i = (i + 1) & (ix->cap - 1);
    ix->v[i] = *sl;
}

cp_err recindex_reserve(struct recindex *ix, size_t n)
{
    if (ix->cap != 0 && n <= ix->cap / 4 * 3)
        return CP_OK;
    size_t cap = ix->cap != 0 ? ix->cap : 64;
    while (n > cap / 4 * 3) {
        if (cap > SIZE_MAX / 2 / sizeof(struct recindex_slot))
            return CP_ERR_NOMEM;
        cap *= 2;
    }
    struct recindex bigger = {calloc(cap, sizeof(struct recindex_slot)), cap, ix->n};
    if (bigger.v == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->v[i].len != 0)
            slot_insert(&bigger, &ix->v[i]);
    free(ix->v);
    *ix = bigger;
    return CP_OK;
}

cp_err recindex_put(struct recindex *ix, const struct diskfmt_hash *h, uint64_t seq,
                    uint32_t off, uint32_t len)
{
    if (len == 0)
        return CP_ERR_INTERNAL; /* it would read as a free slot and break the table */
    struct recindex_slot *sl = recindex_find(ix, h);
    if (sl == NULL) {
        if (recindex_reserve(ix, ix->n + 1) != CP_OK)
            return CP_ERR_NOMEM;
        struct recindex_slot fresh = {h->lo, h->hi, seq, off, len};
        slot_insert(ix, &fresh);
        ix->n++;
        return CP_OK;
    }
    sl->seq = seq;
    sl->off = off;
    sl->len = len;
    return CP_OK;
}

/* Frees slot i, moving back the following slots that would no longer be found. */
static void delete_at(struct recindex *ix, size_t i)
{
    size_t mask = ix->cap - 1;
    for (size_t j = (i + 1) & mask; ix->v[j].len != 0; j = (j + 1) & mask) {
        size_t home = slot_home(ix, ix->v[j].lo);
        /* v[j] may fill the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->v[i] = ix->v[j];
            i = j;
        }
    }
    ix->v[i].len = 0;
    ix->n--;
}

void recindex_delete_at(struct recindex *ix, struct recindex_slot *sl)
{
    delete_at(ix, (size_t)(sl - ix->v));
}

bool recindex_delete(struct recindex *ix, const struct diskfmt_hash *h)
{
    struct recindex_slot *sl = recindex_find(ix, h);
    if (sl == NULL)
        return false;
    delete_at(ix, (size_t)(sl - ix->v));
    return true;
}

/* Linear probing keeps every record between its home and the first free slot after it,
 * and deletion keeps it so: the records of one home all lie in the run from there. */
size_t recindex_delete_lo(struct recindex *ix, uint64_t lo)
{
    if (ix->cap == 0)
        return 0;
    size_t n = 0;
    /* After a delete the same slot is looked at again: a later one may have moved in. */
    for (size_t i = slot_home(ix, lo); ix->v[i].len != 0;) {
        if (ix->v[i].lo == lo) {
            delete_at(ix, i);
            n++;
        } else {
            i = (i + 1) & (ix->cap - 1);
        }
    }
    return n;
}

/* One pass: after a delete the same slot is looked at again, as a later one may have
 * moved into it. */
void recindex_drop_below(struct recindex *ix, uint64_t cut)
{
    for (size_t i = 0; i < ix->cap;) {
        if (ix->v[i].len != 0 && ix->v[i].seq < cut)
            delete_at(ix, i);
        else
            i++;
    }
}
