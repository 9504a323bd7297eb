/* Request collapsing: while one request for a URL is at the origin, later requests for
 * the same URL wait for it instead of going to the origin too, then look in the cache
 * again. Thread-safe; knows nothing of HTTP, only keys and waiters. */
#ifndef CP_COLLAPSE_H
#define CP_COLLAPSE_H

#include <stdbool.h>

#include "error.h"

struct collapse;

/* Creates an empty registry. Returns CP_ERR_NOMEM. */
cp_err collapse_new(struct collapse **out);
/* Frees the registry; nothing may be waiting on it. NULL is ignored. */
void collapse_free(struct collapse *c);

/* If a fetch for `key` is under way, queues `waiter` on it and returns true: it will be
 * passed to collapse_finish's `wake` when that fetch ends. Otherwise makes the caller
 * the one fetching `key` (it must call collapse_finish later) and returns false; also
 * false when memory runs out (the caller then simply fetches on its own, without
 * having to call collapse_finish: *leader tells which). */
bool collapse_join(struct collapse *c, const char *key, void *waiter, bool *leader);

/* The fetch of `key` has ended (its answer is in the cache, or not): forgets it and
 * calls wake(waiter) for every waiter queued on it, in the order they came. */
void collapse_finish(struct collapse *c, const char *key, void (*wake)(void *waiter));

#endif
