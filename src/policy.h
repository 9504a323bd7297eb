/* Caching decisions: may a request use the cache, may a response be stored, how long it
 * stays fresh, and how old a stored response is (RFC 9111 sections 3, 4.2).
 * Pure functions over parsed messages and times; no I/O. */
#ifndef CP_POLICY_H
#define CP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "headers.h"

struct policy_opts {
    /* Lifetime in seconds given to a storable response with no explicit freshness;
     * 0 = strict RFC 9111 (explicit or heuristic freshness only). */
    int64_t default_ttl;
    /* Largest body stored; larger responses are passed through unstored. */
    size_t max_object_size;
};

/* True if a request with this method may be answered from the cache (GET, HEAD).
 * Everything else is forwarded and reported as X-Cache: BYPASS. */
bool policy_method_cacheable(const char *method);

/* True if the response to this GET request may be stored (RFC 9111 section 3):
 * a final status other than 206 and 304 that is heuristically cacheable, or one of
 * 200/203/204/300/301/308/404/410, or any final status with explicit freshness
 * (max-age, s-maxage, Expires, public); must-understand stores only statuses RFC 9110
 * defines (and then overrides no-store); no no-store/private, no request no-store,
 * no Set-Cookie and no request Authorization unless the response says public or
 * s-maxage (Authorization also accepts must-revalidate), a body no larger than
 * opts->max_object_size, and either a positive freshness lifetime, a validator
 * (ETag or Last-Modified) to revalidate it with, or a stale-if-error or
 * stale-while-revalidate window in which it may be served stale; a response with no-cache is stored
 * under the same conditions (it is revalidated before every use).
 * `body_len` is the response body's size. */
bool policy_storable(int status, const struct hdrs *request, const struct hdrs *response,
                     size_t body_len, time_t response_time, const struct policy_opts *opts);

/* Freshness lifetime in seconds (RFC 9111 section 4.2.1): s-maxage, else max-age,
 * else Expires minus Date (Date defaults to `response_time` when absent or invalid;
 * an invalid Expires means already expired), else opts->default_ttl if > 0 for the
 * statuses 200/203/204/300/301/308/404/410, else a heuristic of 10% of
 * (Date - Last-Modified) capped at one day for statuses that are heuristically
 * cacheable or responses marked public, else 0. no-cache in the response gives 0. */
int64_t policy_freshness_lifetime(int status, const struct hdrs *response,
                                  time_t response_time, const struct policy_opts *opts);

/* What a stored response can be used for, given the request (RFC 9111 section 4). */
enum reuse {
    REUSE_FRESH,         /* fresh, and acceptable to the request: serve it */
    REUSE_STALE,         /* stale, but the request's max-stale accepts it: serve it */
    REUSE_STALE_REFRESH, /* stale within its stale-while-revalidate window: serve it
                            and revalidate in the background */
    REUSE_REVALIDATE,    /* must be validated with the origin before use */
    REUSE_NONE,          /* unusable and cannot be validated: fetch anew */
};

/* Decides the use of a stored response with fields `stored`, freshness `lifetime` and
 * current `age` (seconds) for a request with fields `request`:
 * - the request's no-cache (or Pragma: no-cache without Cache-Control), the response's
 *   no-cache (qualified or not): validate;
 * - fresh when lifetime > age, subject to the request's max-age (age <= max-age) and
 *   min-fresh (lifetime - age >= min-fresh);
 * - stale: must-revalidate, proxy-revalidate and s-maxage forbid serving it stale;
 *   otherwise the request's max-stale (any, or staleness <= its value) allows
 *   REUSE_STALE, and the response's stale-while-revalidate (staleness <= its value)
 *   REUSE_STALE_REFRESH;
 * - anything else: REUSE_REVALIDATE when `stored` has a validator (ETag or
 *   Last-Modified), else REUSE_NONE. */
enum reuse policy_reuse(const struct hdrs *stored, int64_t lifetime, int64_t age,
                        const struct hdrs *request);

/* True if a stale stored response (fields `stored`, `lifetime`, `age`) may be served
 * because the origin failed (no answer, or a 500/502/503/504): within the response's
 * or the request's stale-if-error window (RFC 5861 section 4), or within
 * `serve_stale_on_error` seconds of staleness (the --serve-stale-on-error option; 0 =
 * off), but never when must-revalidate, proxy-revalidate or s-maxage forbid stale use
 * (the option overrides nothing of the origin's). A fresh response always may. */
bool policy_stale_on_error(const struct hdrs *stored, int64_t lifetime, int64_t age,
                           const struct hdrs *request, int64_t serve_stale_on_error);

/* True if the request forbids storing its response (Cache-Control: no-store). */
bool policy_request_no_store(const struct hdrs *request);

/* True if the request insists on an answer from the cache (only-if-cached). */
bool policy_only_if_cached(const struct hdrs *request);

/* Corrected initial age (RFC 9111 section 4.2.3) of a response received at
 * `response_time` for a request sent at `request_time`. An Age that is not a single
 * field holding one non-negative integer makes the response as old as can be
 * (INT32_MAX seconds): it cannot be trusted to be fresh. */
int64_t policy_initial_age(const struct hdrs *response, time_t request_time,
                           time_t response_time);

/* Current age at `now` of a response with the given corrected initial age. */
int64_t policy_current_age(int64_t initial_age, time_t response_time, time_t now);

#endif
