/* The front end: a libmicrohttpd daemon with an internal thread pool (epoll). Hits are
 * answered on the front-end thread from the cache; misses suspend the connection, go to
 * the fetcher, and are resumed when the origin has answered. */
#ifndef CP_SERVER_H
#define CP_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "cache.h"
#include "cli.h"
#include "error.h"
#include "fetch.h"
#include "mirror.h"
#include "store.h"

struct server;

/* Starts answering on `listen_fd` (listener_open's, taken over: closed by server_stop,
 * or at once on failure; `address` is its text) with cfg->threads threads, accepting
 * up to cfg->max_connections client connections at once (0: FDLIMIT_DEFAULT_CONNECTIONS;
 * the caller makes room for them among open files, see fdlimit.h). `cfg`,
 * `cache`, `store` and `mirror` (both may be NULL: no disk mirror), `loading` (true
 * while the disk is still being loaded, may be NULL) and `fetcher` must outlive the
 * server. Returns CP_ERR_NOMEM, or CP_ERR_INTERNAL with the reason written to `why`. */
cp_err server_start(const struct config *cfg, int listen_fd, const char *address,
                    struct cache *cache, struct store *store, struct mirror *mirror,
                    const atomic_bool *loading, struct fetcher *fetcher,
                    struct server **out, char *why, size_t why_len);

/* The address the server listens on, as "http://127.0.0.1:3000" (static to the server). */
const char *server_address(const struct server *s);

/* Stops listening, closes every connection and frees. Call after fetcher_stop, which
 * ends the requests still waiting on the origin (they get 503). NULL is ignored. */
void server_stop(struct server *s);

#endif
