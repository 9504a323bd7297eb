/* The open-file limit and the client connections it allows: each client connection is
 * a descriptor, and its misses may hold one more to the origin, so the proxy raises its
 * soft limit as far as the hard one lets it and sizes the front end to fit. */
#ifndef CP_FDLIMIT_H
#define CP_FDLIMIT_H

#include <stdint.h>

#include "error.h"

#define FDLIMIT_DEFAULT_CONNECTIONS 10000u /* --max-connections when not given */
#define FDLIMIT_RESERVE 128u /* listening socket, epoll sets, eventfds, segment files */

/* The descriptors that `connections` client connections need at most: two each (the
 * client's, an origin connection for its miss), and the reserve. Pure. */
uint64_t fdlimit_files_for(unsigned connections);

/* The most client connections, at most `cap`, whose fdlimit_files_for fits in `files`;
 * 0 if not even one does. Pure. */
unsigned fdlimit_connections_within(uint64_t files, unsigned cap);

/* Raises the process's soft limit on open files toward `want`, no further than the hard
 * limit and never lowering it, and puts the soft limit then in force into *have.
 * Returns CP_ERR_INTERNAL, *have 0, if the limit cannot be read; a limit that cannot be
 * raised is not an error (*have says what there is). */
cp_err fdlimit_raise(uint64_t want, uint64_t *have);

#endif
