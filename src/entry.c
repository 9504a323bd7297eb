/* Reference-counted cached responses (see entry.h). */
#include "entry.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct entry *entry_new(void)
{
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    atomic_init(&e->refs, 1);
    atomic_init(&e->refreshing, false);
    hdrs_init(&e->headers);
    return e;
}

struct entry *entry_ref(struct entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

/* Frees what describes `e` (key, Vary key, fields): one block once packed, else each
 * on its own. Leaves the pointers dangling: the caller replaces them or frees `e`. */
static void free_described(struct entry *e)
{
    if (e->packed != NULL) {
        free(e->packed);
    } else {
        free(e->key);
        free(e->vary_key);
        hdrs_free(&e->headers);
    }
}

void entry_unref(struct entry *e)
{
    if (e == NULL)
        return;
    /* acq_rel: the last owner must see every write made before others let go. */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    free_described(e);
    if (e->body_owner != NULL)
        entry_unref(e->body_owner);
    else
        free(e->body);
    free(e);
}

/* Copies s (NULL: none) to *at, advancing it; returns the copy or NULL. */
static char *put_str(char **at, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

cp_err entry_pack_from(struct entry *e, const char *key, const char *vary_key,
                       const struct hdrs *src,
                       bool (*keep)(const struct hdrs *src, const char *name))
{
    size_t nh = 0;
    size_t size = 0;
    _Static_assert(alignof(struct hdr) <= alignof(max_align_t), "array first in the block");
    for (size_t i = 0; i < src->n; i++) {
        if (keep != NULL && !keep(src, src->v[i].name))
            continue;
        nh++;
        size += strlen(src->v[i].name) + strlen(src->v[i].value) + 2;
    }
    size += nh * sizeof(struct hdr);
    if (key != NULL)
        size += strlen(key) + 1;
    if (vary_key != NULL)
        size += strlen(vary_key) + 1;
    char *block = malloc(size > 0 ? size : 1);
    if (block == NULL)
        return CP_ERR_NOMEM;
    /* Built whole before anything of e's goes: src, key and vary_key may be e's own. */
    struct hdr *v = (struct hdr *)(void *)block;
    char *at = block + nh * sizeof(struct hdr);
    for (size_t i = 0, k = 0; i < src->n; i++) {
        if (keep != NULL && !keep(src, src->v[i].name))
            continue;
        v[k].name = put_str(&at, src->v[i].name);
        v[k].value = put_str(&at, src->v[i].value);
        k++;
    }
    char *packed_key = put_str(&at, key);
    char *packed_vary = put_str(&at, vary_key);
    free_described(e);
    e->key = packed_key;
    e->vary_key = packed_vary;
    e->headers.v = nh > 0 ? v : NULL;
    e->headers.n = e->headers.cap = nh;
    e->packed = block;
    return CP_OK;
}

cp_err entry_pack(struct entry *e)
{
    if (e->packed != NULL)
        return CP_OK;
    return entry_pack_from(e, e->key, e->vary_key, &e->headers, NULL);
}

void entry_share_body(struct entry *e, struct entry *from)
{
    /* Point at the bytes' real owner, so chains of revalidations stay one link long. */
    struct entry *owner = from->body_owner ? from->body_owner : from;
    e->body_owner = entry_ref(owner);
    e->body = owner->body;
    e->body_len = owner->body_len;
}

int64_t entry_age(const struct entry *e, time_t now)
{
    return policy_current_age(e->initial_age, e->response_time, now);
}
