/* What libmicrohttpd's copy of a request's fields tells about the bytes the client
 * sent. libmicrohttpd 0.9.75 parses the header block in place and hands out pointers
 * into it; where it misreads the raw request (obs-fold), the layout of those pointers
 * shows it. Pure pointer arithmetic on that buffer, no I/O. */
#ifndef CP_RAWFIELDS_H
#define CP_RAWFIELDS_H

#include <stdbool.h>

/* Whether the field `name`: `value` (libmicrohttpd's pointers, for a request's header
 * field) was folded over several lines (obs-fold, RFC 9112 5.2). libmicrohttpd appends
 * a continuation line to the field's name, not its value ("X-A: 1\r\n 2" becomes
 * "X-A2: 1", "Content-Length:\r\n 42" no length at all), which an origin, or a proxy
 * in front that unfolds, would read otherwise. Its buffer holds each line as "name\0",
 * blanks, "value\0" (a second NUL for a CRLF): a fold shows as a name moved elsewhere
 * or grown over the blanks and value, or as the next line starting with a blank.
 * `end` is the end of the header block (the method's address plus libmicrohttpd's
 * header size), NULL if unknown: then only the first sign is looked for. Reads only
 * bytes of that buffer between the pointers given. */
bool rawfields_folded(const char *name, const char *value, const char *end);

#endif
