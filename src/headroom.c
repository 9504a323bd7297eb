/* The front end's per-connection memory budget (see headroom.h). The figures follow
 * libmicrohttpd 0.9.75's pool: the header block stays where it was read, each field,
 * cookie and query argument gets a record from the pool's other end, and the Cookie
 * value is copied once more to be split; the response head is then written into what
 * is left. Each estimate errs on the large side: refusing a request that would just
 * have fitted is better than a connection closed without an answer. */
#include "headroom.h"

#include <string.h>

#define RECORD 80          /* a record (56 bytes) aligned to 16, plus a guard zone */
#define ALLOCATION_SLOP 32 /* alignment and guard zone of one allocation */
#define EARLY_BYTES 512    /* bytes of a next request read along with this one */
#define HEAD_EXTRA 256     /* status line, Date, Content-Length or chunking, CRLF */
#define OWN_ANSWER 1024    /* the head of a short answer of ours, with room to spare */
#define SMALL_REQUEST 2048 /* what a plain request takes, to tell 431 from 502 */
#define OUR_FIELDS 512     /* Via, X-Cache, Cache-Status, Age as the front end adds them */

size_t headroom_request_use(const struct headroom_request *r)
{
    size_t cookie = r->cookie_len > 0 ? r->cookie_len + 1 + ALLOCATION_SLOP : 0;
    return r->header_size + ALLOCATION_SLOP + cookie + r->records * RECORD + EARLY_BYTES;
}

bool headroom_request_fits(size_t pool, size_t request_use)
{
    return request_use <= pool && pool - request_use >= OWN_ANSWER;
}

enum headroom_verdict headroom_check(size_t pool, size_t request_use, size_t fields_bytes)
{
    size_t head = fields_bytes + HEAD_EXTRA;
    if (head > pool || request_use > pool - head)
        return head > pool || pool - head < SMALL_REQUEST ? HEADROOM_RESPONSE_TOO_LARGE
                                                          : HEADROOM_REQUEST_TOO_LARGE;
    return HEADROOM_FITS;
}

size_t headroom_origin_head_max(size_t pool)
{
    size_t reserved = SMALL_REQUEST + HEAD_EXTRA + OUR_FIELDS;
    return pool > reserved ? pool - reserved : 0;
}

size_t headroom_field_bytes(const char *name, const char *value)
{
    return strlen(name) + 2 + strlen(value) + 2;
}
