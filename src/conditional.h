/* Conditional requests (RFC 9110 section 13, RFC 9111 sections 4.3): answering a
 * client's If-None-Match / If-Modified-Since from a stored response, building the
 * validators the cache sends to revalidate a stale entry, and folding a 304 (Not
 * Modified) into the stored fields. Pure functions, no I/O. */
#ifndef CP_CONDITIONAL_H
#define CP_CONDITIONAL_H

#include <stdbool.h>
#include <time.h>

#include "error.h"
#include "headers.h"

/* True if the entity tags `a` and `b` match by the weak comparison of RFC 9110
 * section 8.8.3.2 (W/ prefixes ignored, opaque tags compared byte for byte).
 * Malformed tags never match. */
bool cond_etag_weak_match(const char *a, const char *b);
/* Same with the strong comparison: neither may be weak. */
bool cond_etag_strong_match(const char *a, const char *b);

/* True if a GET/HEAD `request` carrying If-None-Match or If-Modified-Since can be
 * answered 304 (Not Modified) from a stored `status` 200 response with fields
 * `stored` (RFC 9111 section 4.3.2): If-None-Match ("*" or a list) matched weakly
 * against the stored ETag takes precedence; otherwise If-Modified-Since (a valid date)
 * is compared with the stored Last-Modified, else Date, else `response_time`.
 * False when the request has no such condition or it does not hold. */
bool cond_not_modified(const struct hdrs *request, const struct hdrs *stored, int status,
                       time_t response_time);

/* True if `stored` carries a validator (ETag or Last-Modified) usable to revalidate. */
bool cond_has_validator(const struct hdrs *stored);

/* Adds to `request` (the fields about to be sent to the origin) the validators of
 * `stored`: If-None-Match with its ETag and If-Modified-Since with its Last-Modified,
 * replacing any such conditions the client sent. Returns CP_ERR_NOMEM. */
cp_err cond_add_validators(struct hdrs *request, const struct hdrs *stored);

/* Fields of a stored response updated by a 304 (RFC 9111 section 3.2): every field
 * present in `not_modified` replaces all stored fields of that name, except those
 * describing the stored bytes (Content-Length, Content-Encoding, Content-Range,
 * Content-MD5, ETag: the stored body is the one still sent) and hop-by-hop fields;
 * all other stored fields are kept in order. Fills `out` (initialised, empty).
 * Returns CP_ERR_NOMEM. */
cp_err cond_merge_304(const struct hdrs *stored, const struct hdrs *not_modified,
                      struct hdrs *out);

/* The fields to send with a 304 answered from the cache: the stored ones but
 * Content-Length (and hop-by-hop ones). Fills `out`. Returns CP_ERR_NOMEM. */
cp_err cond_304_fields(const struct hdrs *stored, struct hdrs *out);

#endif
