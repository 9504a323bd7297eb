/* Request collapsing: while one request for a URL is at the origin, later requests for
 * the same URL wait for it instead of going to the origin too, then look in the cache
 * again. A URL whose answer could not be stored is remembered for a while, so that
 * requests for it go to the origin side by side instead of waiting on each other.
 * Thread-safe; knows nothing of HTTP, only keys, waiters and times. */
#ifndef CP_COLLAPSE_H
#define CP_COLLAPSE_H

#include <stdbool.h>
#include <time.h>

#include "error.h"

struct collapse;

/* Creates an empty registry. Returns CP_ERR_NOMEM. */
cp_err collapse_new(struct collapse **out);
/* Frees the registry; nothing may be waiting on it. NULL is ignored. */
void collapse_free(struct collapse *c);

/* If a fetch for `key` is under way, queues `waiter` on it and returns true: it will be
 * passed to collapse_finish's `wake` when that fetch ends. Otherwise makes the caller
 * the one fetching `key` (it must call collapse_finish later) and returns false; also
 * false, with no duty to call collapse_finish (*leader tells which), when `key` is
 * remembered as not storable at `now`, or when memory runs out. */
bool collapse_join(struct collapse *c, const char *key, void *waiter, bool *leader,
                   time_t now);

/* The fetch of `key` has ended: forgets it and calls wake(waiter) for every waiter
 * queued on it, in the order they came. When its answer was not `stored`, the key is
 * remembered as not storable until `now` + COLLAPSE_PASS_SECONDS. */
void collapse_finish(struct collapse *c, const char *key, void (*wake)(void *waiter),
                     bool stored, time_t now);

/* Calls share(waiter, arg) for every waiter queued on `key` so far, in order, and for
 * every request that joins it from now until collapse_finish (with collapse_join
 * returning true). Used when the fetch's body can be read by all as it arrives.
 * `share` runs under the registry's lock: it must be quick and not call back in. */
void collapse_release(struct collapse *c, const char *key,
                      void (*share)(void *waiter, void *arg), void *arg);

#define COLLAPSE_PASS_SECONDS 60 /* how long a not-storable answer keeps a URL apart */
#define COLLAPSE_PASS_MAX 4096   /* URLs remembered so at most; past it, all are forgotten */

#endif
