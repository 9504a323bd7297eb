/* How answers from the origin change the cache: turning a response into an entry and
 * storing it (memory and disk) when the rules allow, folding a 304 into a stored entry,
 * invalidating after unsafe methods, and refreshing a stale entry in the background;
 * and looking up, in memory and then on disk. Runs on whichever thread has the request
 * or response in hand; only update_lookup reads the disk. */
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
    const atomic_bool *loading; /* true while the disk is still being loaded (or NULL) */
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

/* Looks in the cache and, when no variant of `key` is in memory, on disk for the records
 * of its variants: not loaded yet after a restart, or evicted from memory but still
 * within --max-disk; when other variants are in memory but not the one the request
 * selects, for the record of that one alone (the Vary of the newest in memory tells
 * which). What it finds it stores in memory again, and the variant the request selects
 * is returned, so neither a restart nor the memory bound turns a response kept on disk
 * into a miss. Reading the disk blocks the calling thread for as
 * long as the read takes (from the page cache, microseconds), so once the load after a
 * restart is over (u->loading), records longer than UPDATE_READ_BACK_MAX are not read
 * here: *read_later (if not NULL) is set when nothing was found and there are such
 * records that memory could hold, for update_read_back to read on a thread that may
 * wait. Nor is a record whose key may have a write or removal still queued for the
 * disk (mirror_pending) read, nor a damaged one: the caller sees a miss. Same contract
 * as cache_lookup otherwise. */
#define UPDATE_READ_BACK_MAX (1024 * 1024) /* longest record read back, in bytes */
struct entry *update_lookup(const struct updater *u, const char *key,
                            const struct hdrs *request, bool *uri_known, bool *read_later);

/* Reads the records of every variant of `key` from disk, whatever their length (up to
 * what memory can hold), and stores them in memory again, with the same checks as
 * update_lookup; nothing when the variant that `request` selects is in memory already
 * (another request had it read). Waits for the store and the disk: for a thread of its
 * own, never a front-end one. Returns how many variants it read (memory may have
 * refused some, as update_lookup's copies). */
size_t update_read_back(const struct updater *u, const char *key, const struct hdrs *request);

/* Starts a background revalidation of `stale` (for stale-while-revalidate) with the
 * request fields `request`; its answer updates the cache when it comes, no client
 * waits for it. Only the first call for a given entry starts one; later calls return
 * CP_OK at once. Returns CP_ERR_NOMEM or CP_ERR_SHUTDOWN. */
cp_err update_refresh(const struct updater *u, struct entry *stale, const struct hdrs *request);

#endif
