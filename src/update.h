/* How answers from the origin change the cache: turning a response into an entry and
 * storing it (memory and disk) when the rules allow, folding a 304 into a stored entry,
 * invalidating after unsafe methods, and refreshing a stale entry in the background.
 * Runs on whichever thread has the response in hand; never blocks on I/O. */
#ifndef CP_UPDATE_H
#define CP_UPDATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cache.h"
#include "entry.h"
#include "fetch.h"
#include "mirror.h"
#include "policy.h"
#include "store.h"
#include "url.h"

struct updater {
    struct cache *cache;
    struct mirror *mirror;     /* NULL: no disk mirror */
    struct store *store;       /* NULL: no disk mirror */
    const atomic_bool *loading; /* true while the disk is still being loaded */
    struct fetcher *fetcher;   /* for background refreshes */
    const struct origin *origin;
    struct policy_opts popts;
};

/* Builds the entry for the origin's answer `res` to `method` `key` with request fields
 * `request`, taking res's body (no copy). If the method is GET and policy_storable
 * allows it (and Vary is not "*"), stores it in memory and queues it for disk; *stored
 * tells. Returns the entry (one reference for the caller) or NULL (no memory). */
struct entry *update_from_response(const struct updater *u, const char *key,
                                   const char *method, const struct hdrs *request,
                                   struct fetch_result *res, bool *stored);

/* Builds the entry that a 304 `res` makes of the stored `stale` (RFC 9111 section
 * 4.3.4): its fields updated by the 304's, its body shared, its age and freshness
 * computed anew from the 304 exchange; stores it in place of `stale` when still
 * storable. Returns it (a reference for the caller) or NULL (no memory). */
struct entry *update_revalidated(const struct updater *u, struct entry *stale,
                                 const struct hdrs *request, const struct fetch_result *res,
                                 bool *stored);

/* After an unsafe method on `url` with Host `host` (NULL: none) answered with status
 * `status` and fields `response`: a 2xx or 3xx removes the stored entries of `url` and
 * of the same-origin URLs in Location and Content-Location (RFC 9111 section 4.4), for
 * that Host, from memory and disk. */
void update_invalidate(const struct updater *u, const char *url, const char *host, int status,
                       const struct hdrs *response);

/* Looks in the cache, and while the disk mirror is still being loaded also in the
 * file of `key` without Vary (storing what it finds), so a restart never turns a
 * stored response into a miss. Same contract as cache_lookup. */
struct entry *update_lookup(const struct updater *u, const char *key,
                            const struct hdrs *request, bool *uri_known);

/* Starts a background revalidation of `stale` (for stale-while-revalidate) with the
 * request fields `request`; its answer updates the cache when it comes, no client
 * waits for it. Only the first call for a given entry starts one; later calls return
 * CP_OK at once. Returns CP_ERR_NOMEM or CP_ERR_SHUTDOWN. */
cp_err update_refresh(const struct updater *u, struct entry *stale, const struct hdrs *request);

#endif
