/* Reference-counted cached responses (see entry.h). */
#include "entry.h"

#include <stdlib.h>

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

void entry_unref(struct entry *e)
{
    if (e == NULL)
        return;
    /* acq_rel: the last owner must see every write made before others let go. */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(e->key);
    free(e->vary_key);
    hdrs_free(&e->headers);
    if (e->body_owner != NULL)
        entry_unref(e->body_owner);
    else
        free(e->body);
    free(e);
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

int entry_is_fresh(const struct entry *e, time_t now)
{
    return e->lifetime > entry_age(e, now);
}
