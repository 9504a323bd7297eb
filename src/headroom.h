/* How much of the front end's per-connection memory a request and the head of its
 * response take. libmicrohttpd keeps both in one fixed pool and, when a response head
 * no longer fits beside the request, closes the connection without a word; these
 * sums let the front end answer 431 or 502 instead. Pure arithmetic, no I/O. */
#ifndef CP_HEADROOM_H
#define CP_HEADROOM_H

#include <stdbool.h>
#include <stddef.h>

/* The pool given to libmicrohttpd for each connection (its default). libmicrohttpd
 * zeroes all of it at every request, so a larger pool costs every request. */
#define HEADROOM_POOL (32u * 1024)

/* What libmicrohttpd keeps of a request while its response is being sent. */
struct headroom_request {
    size_t header_size; /* request line and header block as received, CRLFs included */
    size_t cookie_len;  /* length of the Cookie value (copied once more to be parsed) */
    size_t records;     /* header fields + cookies + query arguments, one record each */
};

enum headroom_verdict {
    HEADROOM_FITS,              /* the response head fits beside the request */
    HEADROOM_REQUEST_TOO_LARGE, /* it would fit beside a small request: 431 */
    HEADROOM_RESPONSE_TOO_LARGE,/* it would not fit beside any request: 502 */
};

/* Bytes of the pool the request `r` takes, rounded up for the pool's alignment and
 * guard zones, with room for a few more bytes the client sent early (pipelining). */
size_t headroom_request_use(const struct headroom_request *r);

/* Whether the request leaves room for a short answer of our own (an error, with a few
 * fields): if not, it is to be refused with 431 before anything else. */
bool headroom_request_fits(size_t request_use);

/* Decides whether a response head whose fields add up to `fields_bytes` (each
 * "Name: value\r\n", see headroom_field_bytes) fits beside a request taking
 * `request_use`; what libmicrohttpd adds (status line, Date, framing) is allowed for. */
enum headroom_verdict headroom_check(size_t request_use, size_t fields_bytes);

/* The largest header block (fields as the origin sent them) that the front end could
 * send beside a plain request, with the fields it adds itself: an origin's response
 * with a larger one can never reach a client, so the fetcher refuses it (502). */
size_t headroom_origin_head_max(void);

/* Bytes one field takes in a response head: name, ": ", value, CRLF. */
size_t headroom_field_bytes(const char *name, const char *value);

#endif
