/* Pure HTTP parsing helpers for caching: Cache-Control directives (RFC 9111 section 5.2),
 * HTTP dates (RFC 9110 section 5.6.7) and Vary secondary keys (RFC 9111 section 4.1).
 * No I/O, no global state: every function is safe to call from any thread. */
#ifndef CP_HTTP_H
#define CP_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "headers.h"

/* Directives of a Cache-Control field (request or response). Delta-seconds
 * directives are -1 when absent; a value too large saturates at INT32_MAX
 * (RFC 9111 section 1.2.2). A directive with an invalid argument is treated as
 * absent, except that an invalid max-age on a response counts as max-age=0
 * (stale), which is the RFC's advice for the safe side. */
struct cache_control {
    bool no_store;
    bool no_cache;          /* no-cache with or without field names */
    bool no_cache_fields;   /* no-cache="field,..." (qualified form) */
    bool private_;          /* private with or without field names */
    bool private_fields;    /* private="field,..." */
    bool public_;
    bool must_revalidate;
    bool proxy_revalidate;
    bool no_transform;
    bool only_if_cached;
    bool immutable;
    bool must_understand;   /* store only if the status code is understood (5.2.2.3) */
    bool max_stale_any;     /* max-stale without a value */
    int64_t max_age;
    int64_t s_maxage;
    int64_t max_stale;
    int64_t min_fresh;
    int64_t stale_while_revalidate;
    int64_t stale_if_error;
};

/* Parses every Cache-Control field of `h` (joined) into *cc. Unknown directives
 * are ignored. When a directive appears twice with different values the first
 * one wins, except for max-age/s-maxage where the lowest (most conservative) wins.
 * Never fails; a missing field gives all-false / -1. */
void http_cache_control(const struct hdrs *h, struct cache_control *cc);

/* Parses an HTTP-date in any of the three formats of RFC 9110 section 5.6.7
 * (IMF-fixdate, RFC 850, asctime). Returns true and sets *out, or false if `s`
 * is not a valid date. */
bool http_parse_date(const char *s, time_t *out);

/* Writes `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf. */
void http_format_date(time_t t, char buf[30]);

/* Builds the secondary cache key of a response's Vary field for a request:
 * for each field name listed in `vary` (lower-cased, in the order listed) the
 * request's value(s) for it, normalised (joined with ", ", whitespace
 * around commas collapsed). Sets *out to a newly allocated string (the empty
 * string if `vary` is NULL or empty) that the caller frees.
 * Returns CP_ERR_BAD_TARGET if `vary` contains "*" (the response can never be
 * reused), CP_ERR_NOMEM on allocation failure. */
cp_err http_vary_key(const char *vary, const struct hdrs *request, char **out);

/* Parses a non-negative decimal integer (delta-seconds, Age, Content-Length).
 * Returns false for empty input, signs, or trailing garbage; saturates at INT64_MAX/2. */
bool http_parse_uint(const char *s, int64_t *out);

/* The first field `name` of `h` as http_parse_uint reads it (Age, Content-Length), or
 * -1 when there is none or it is not such a number. */
int64_t http_field_uint(const struct hdrs *h, const char *name);

/* Whether a request's fields may be forwarded: every name is a token (no whitespace
 * before the colon, which an origin might read past, RFC 9112 5.1), every
 * Content-Length holds the same decimal number (RFC 9112 6.3), so that the origin
 * frames the request as the proxy did, no value holds a CR or LF (RFC 9110 5.5),
 * and there is at most one Host, a well-formed host and optional port (RFC 9112 3.2;
 * it goes into the cache key and to the origin). False: the request is to be
 * answered 400. */
bool http_request_fields_ok(const struct hdrs *request);

/* Whether a request with a Transfer-Encoding is framed beyond doubt: not beside a
 * Content-Length (RFC 9112 6.1: a request smuggling pattern, where the hops before
 * may have read another length) and not in HTTP/1.0 (`http_1_0`), which has no
 * transfer codings. False: the request is to be answered 400, and the connection
 * closed. */
bool http_request_framing_ok(const struct hdrs *request, bool http_1_0);

/* Whether a response's body can be passed on as it was meant: with a Transfer-Encoding
 * (which wins over any Content-Length), the single coding "chunked", which libcurl
 * decodes, and not in HTTP/1.0 (`http_1_0`), which has no transfer codings (RFC 9112
 * 6.1); without, every Content-Length holding the same decimal number, below 2^62.
 * False: the origin's response is not to be passed on or stored (502); any other
 * coding would reach the client still coded, and unlabelled. */
bool http_response_framing_ok(const struct hdrs *response, bool http_1_0);

/* Whether the request's body, if any, is framed in a way the front end reads: no
 * Transfer-Encoding, or a single one that is exactly "chunked" (any case). Any other
 * coding or list is to be answered 501 (RFC 9112 6.1): the front end would wait for a
 * body it cannot delimit. */
bool http_request_coding_ok(const struct hdrs *request);

#endif
