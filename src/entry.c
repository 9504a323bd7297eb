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
    free(e->body);
    free(e);
}

int64_t entry_age(const struct entry *e, time_t now)
{
    return policy_current_age(e->initial_age, e->response_time, now);
}

int entry_is_fresh(const struct entry *e, time_t now)
{
    return e->lifetime > entry_age(e, now);
}
