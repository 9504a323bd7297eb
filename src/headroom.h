/* How much of the front end's per-connection memory a request and the head of its
 * response take. libmicrohttpd keeps both in one fixed pool and, when a response head
 * no longer fits beside the request, closes the connection without a word; these
 * sums let the front end answer 431 or 502 instead. Pure arithmetic, no I/O. */
#ifndef CP_HEADROOM_H
#define CP_HEADROOM_H

#include <stdbool.h>
#include <stddef.h>

/* The pool given to libmicrohttpd for each connection (--header-memory): its default
 * (libmicrohttpd's own), and the bounds. Each open connection holds its whole pool, and
 * libmicrohttpd zeroes all of it at every request, so a larger pool costs memory and
 * every request; below the minimum, common responses' heads would not fit. */
#define HEADROOM_POOL_DEFAULT (32u * 1024)
#define HEADROOM_POOL_MIN (8u * 1024)
#define HEADROOM_POOL_MAX (1024u * 1024)

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

/* Whether the request leaves room in a `pool`-byte pool for a short answer of our own
 * (an error, with a few fields): if not, it is to be refused with 431 before anything
 * else. */
bool headroom_request_fits(size_t pool, size_t request_use);

/* Decides whether a response head whose fields add up to `fields_bytes` (each
 * "Name: value\r\n", see headroom_field_bytes) fits beside a request taking
 * `request_use` in a `pool`-byte pool; what libmicrohttpd adds (status line, Date,
 * framing) is allowed for. */
enum headroom_verdict headroom_check(size_t pool, size_t request_use, size_t fields_bytes);

/* The largest header block (fields as the origin sent them) that the front end could
 * send beside a plain request in a `pool`-byte pool (at least HEADROOM_POOL_MIN), with
 * the fields it adds itself: an origin's response with a larger one can never reach a
 * client, so the fetcher refuses it (502). */
size_t headroom_origin_head_max(size_t pool);

/* Bytes one field takes in a response head: name, ": ", value, CRLF. */
size_t headroom_field_bytes(const char *name, const char *value);

#endif
