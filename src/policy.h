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
 * status 200/203/204/300/301/308/404/410, no no-store/private, no request no-store,
 * no Set-Cookie and no request Authorization unless the response says public or
 * s-maxage (Authorization also accepts must-revalidate), a body no larger than
 * opts->max_object_size, and a positive freshness lifetime (the proxy does not
 * revalidate yet, so an entry that is stale at once is useless). `body_len` is the
 * response body's size. */
bool policy_storable(int status, const struct hdrs *request, const struct hdrs *response,
                     size_t body_len, time_t response_time, const struct policy_opts *opts);

/* Freshness lifetime in seconds (RFC 9111 section 4.2.1): s-maxage, else max-age,
 * else Expires minus Date (Date defaults to `response_time` when absent or invalid;
 * an invalid Expires means already expired), else opts->default_ttl if > 0,
 * else a heuristic of 10% of (Date - Last-Modified) capped at one day for statuses
 * that are heuristically cacheable, else 0. no-cache in the response gives 0. */
int64_t policy_freshness_lifetime(int status, const struct hdrs *response,
                                  time_t response_time, const struct policy_opts *opts);

/* Corrected initial age (RFC 9111 section 4.2.3) of a response received at
 * `response_time` for a request sent at `request_time`. */
int64_t policy_initial_age(const struct hdrs *response, time_t request_time,
                           time_t response_time);

/* Current age at `now` of a response with the given corrected initial age. */
int64_t policy_current_age(int64_t initial_age, time_t response_time, time_t now);

#endif
