/* Byte range requests served from a complete stored response (RFC 9110 section 14):
 * parsing Range against the body's length, honouring If-Range. Pure, no I/O. */
#ifndef CP_RANGE_H
#define CP_RANGE_H

#include <stddef.h>
#include <time.h>

#include "headers.h"

enum range_kind {
    RANGE_FULL,          /* no (usable) Range: send the whole response, 200 */
    RANGE_PARTIAL,       /* one satisfiable range: 206 with Content-Range */
    RANGE_UNSATISFIABLE, /* no range overlaps the body: 416 with Content-Range */
};

struct range {
    enum range_kind kind;
    size_t start;  /* first byte (RANGE_PARTIAL) */
    size_t length; /* number of bytes (RANGE_PARTIAL) */
};

/* Decides how to answer a GET with fields `request` from a stored 200 response with
 * fields `stored` and a body of `body_len` bytes. A Range that is not "bytes=", is
 * malformed, or asks for several ranges is ignored (RANGE_FULL, as RFC 9110 allows);
 * so is any Range when If-Range does not match (strong ETag comparison, or an exact
 * Last-Modified date). "bytes=a-b", "bytes=a-" and "bytes=-n" are understood, with b
 * clamped to the last byte. */
struct range range_select(const struct hdrs *request, const struct hdrs *stored,
                          size_t body_len);

/* Writes the Content-Range value for `r` ("bytes 0-99/1000", or "bytes * /1000" for
 * RANGE_UNSATISFIABLE, without the space) into buf. */
void range_content_range(const struct range *r, size_t body_len, char *buf, size_t len);

#endif
