/* libmicrohttpd responses whose body comes from a relay (relay.h): the whole body in
 * one buffer when it is all in already, else read as it arrives, with the client's
 * connection parked while there is nothing new and woken when bytes come. */
#ifndef CP_STREAM_H
#define CP_STREAM_H

#include <microhttpd.h>
#include <stdint.h>

#include "relay.h"

/* Returns a response (no fields yet) for the body in `r`, of `size` bytes
 * (MHD_SIZE_UNKNOWN if not known), to be queued on `conn`. The response holds its own
 * reference to `r`. When `r` has ended with its whole body kept, the body is handed
 * over without a copy and goes out with the head in a single write; otherwise it is
 * read from `r` as it arrives, `conn` suspended while `r` has nothing new.
 * Returns NULL if memory runs out. */
struct MHD_Response *stream_response(struct relay *r, struct MHD_Connection *conn,
                                     uint64_t size);

#endif
