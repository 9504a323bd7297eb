/* The header rewriting of a reverse proxy, both ways, as pure functions:
 * the request sent to the origin and the fields of the response sent to the client. */
#ifndef CP_FORWARD_H
#define CP_FORWARD_H

#include <stdint.h>

#include "error.h"
#include "headers.h"

/* The cache's verdict reported in X-Cache. */
enum cache_verdict { VERDICT_MISS, VERDICT_HIT, VERDICT_BYPASS };

/* Returns "MISS", "HIT" or "BYPASS". */
const char *forward_verdict_name(enum cache_verdict v);

/* Fills `out` (initialised, empty) with the fields to send to the origin for a client
 * request with fields `in`: hop-by-hop fields and what Connection names are dropped,
 * Host is dropped (the fetcher sets the origin's), Via gains "1.1 caching-proxy",
 * X-Forwarded-For gains `client_ip`, X-Forwarded-Proto is set to "http", and
 * X-Forwarded-Host carries the client's Host. Returns CP_ERR_NOMEM. */
cp_err forward_request_headers(const struct hdrs *in, const char *client_ip,
                               struct hdrs *out);

/* Fills `out` (initialised, empty) with the fields to send to the client for an origin
 * response with fields `in`: hop-by-hop fields and Content-Length are dropped (the front
 * end sets the length of the bytes it sends), any X-Cache and Age from the origin are
 * replaced, X-Cache is set from `verdict`, Age is set to `age` when age >= 0, and Via
 * gains "1.1 caching-proxy". Returns CP_ERR_NOMEM. */
cp_err forward_response_headers(const struct hdrs *in, enum cache_verdict verdict,
                                int64_t age, struct hdrs *out);

/* Fields from an origin response that the cache stores: everything end-to-end
 * (hop-by-hop removed), as received. Returns CP_ERR_NOMEM. */
cp_err forward_storable_headers(const struct hdrs *in, struct hdrs *out);

#endif
