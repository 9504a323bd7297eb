/* The header rewriting of a reverse proxy, both ways, as pure functions:
 * the request sent to the origin and the fields of the response sent to the client. */
#ifndef CP_FORWARD_H
#define CP_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "headers.h"

/* The cache's verdict reported in X-Cache. */
enum cache_verdict {
    VERDICT_MISS,        /* looked up, not usable: the origin answered */
    VERDICT_HIT,         /* served fresh from the cache */
    VERDICT_STALE,       /* served stale from the cache (allowed by max-stale,
                            stale-while-revalidate or stale-if-error) */
    VERDICT_REVALIDATED, /* stored response confirmed by the origin (304), then served */
    VERDICT_BYPASS,      /* never looked up (method other than GET/HEAD) */
};

/* Returns "MISS", "HIT", "STALE", "REVALIDATED" or "BYPASS". */
const char *forward_verdict_name(enum cache_verdict v);

/* How the cache handled one request: what X-Cache, Cache-Status (RFC 9211) and Age
 * report about it. */
struct cache_outcome {
    enum cache_verdict verdict;
    const char *fwd;      /* Cache-Status fwd= reason when the origin was asked ("uri-miss",
                             "vary-miss", "miss", "stale", "request", "bypass"), else NULL */
    int fwd_status;       /* the origin's status when it was asked, else 0 */
    bool has_ttl;
    int64_t ttl;          /* remaining freshness in seconds (negative when stale) */
    bool stored;          /* the response was stored in the cache */
    bool collapsed;       /* the request waited on another request's origin fetch */
    const char *detail;   /* NULL, or a token for detail= */
    int64_t age;          /* the Age to send, -1 for none */
};

/* Writes the Cache-Status list member of this cache for `o` into buf, e.g.
 * "caching-proxy; hit; ttl=42" or "caching-proxy; fwd=uri-miss; fwd-status=200; stored". */
void forward_cache_status(const struct cache_outcome *o, char *buf, size_t len);

/* Fills `out` (initialised, empty) with the fields to send to the origin for a client
 * request with fields `in`: hop-by-hop fields and what Connection names are dropped,
 * Host is dropped (the fetcher sets the origin's), Via gains "1.1 caching-proxy",
 * X-Forwarded-For gains `client_ip`, X-Forwarded-Proto is set to "http", and
 * X-Forwarded-Host carries the Host of `in` (the one in the cache key), replacing any
 * the client sent, and is left out when that Host is missing or empty; the client's
 * Forwarded (RFC 7239) is dropped. Returns CP_ERR_NOMEM. */
cp_err forward_request_headers(const struct hdrs *in, const char *client_ip,
                               struct hdrs *out);

/* The largest Age sent: 2^31 seconds (RFC 9111 section 1.2.2). */
#define FORWARD_AGE_MAX INT64_C(2147483648)

/* Receives one field to send; returns CP_OK, or an error that stops the emitting. */
typedef cp_err (*forward_emit_fn)(void *arg, const char *name, const char *value);

/* Calls emit(arg, name, value) with each field to send to the client for a response
 * with fields `in`, without building a list: hop-by-hop fields and Content-Length are
 * dropped (the front end sets the length of the bytes it sends), any X-Cache and Age
 * from upstream are replaced, X-Cache is set from o->verdict, Age to o->age when it is
 * >= 0 (at most FORWARD_AGE_MAX), our member is appended to Cache-Status, and Via
 * gains "1.1 caching-proxy". The strings passed are valid during the call only.
 * Returns CP_ERR_NOMEM (a long Via or Cache-Status), or the first error `emit`
 * returns. */
cp_err forward_response_emit(const struct hdrs *in, const struct cache_outcome *o,
                             forward_emit_fn emit, void *arg);

/* Whether the cache stores field `name` of an origin response whose fields are
 * `response`: every end-to-end field is kept as received, no hop-by-hop one (fixed,
 * or named by its Connection field). */
bool forward_field_storable(const struct hdrs *response, const char *name);

#endif
