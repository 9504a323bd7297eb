/* The epoll set of the fetcher's sockets, kept across requests: a kept-alive origin
 * connection's socket stays in the set between transfers instead of being taken out and
 * put back for each one (two epoll_ctl calls, a good share of the cost of a miss).
 * Only sockets whose whole life the fetcher sees (opened and closed through it) stay
 * in; any other socket curl names is added and removed as curl says. */
#ifndef CP_SOCKWATCH_H
#define CP_SOCKWATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct sockwatch {
    int epfd;             /* the epoll set (not owned) */
    unsigned char *state; /* per socket number: SOCKWATCH_* bits (sockwatch.c) */
    size_t n;
};

/* Starts watching through the epoll set `epfd` (which the caller keeps and closes).
 * Never fails. */
void sockwatch_init(struct sockwatch *w, int epfd);
/* Frees the bookkeeping; the epoll set is left as it is. */
void sockwatch_free(struct sockwatch *w);

/* `fd` was just opened for a connection: from now until sockwatch_closed, it may stay in
 * the set while idle. Forgets whatever an earlier socket of that number left (a closed
 * socket leaves an epoll set by itself). Returns CP_ERR_NOMEM, and then `fd` is
 * watched like any other socket. */
cp_err sockwatch_opened(struct sockwatch *w, int fd);
/* `fd` is about to be closed: forgets it. */
void sockwatch_closed(struct sockwatch *w, int fd);

/* `fd` is to be watched for reading (`in`) and/or writing (`out`). Makes at most one
 * epoll_ctl call, none if the set already watches it so. Returns CP_ERR_NOMEM or
 * CP_ERR_INTERNAL (epoll refused it; the socket is then not watched). */
cp_err sockwatch_want(struct sockwatch *w, int fd, bool in, bool out);
/* `fd` need not be watched any more: a socket opened through sockwatch_opened stays in
 * the set until it stirs (sockwatch_stray); any other leaves it now. */
void sockwatch_done(struct sockwatch *w, int fd);
/* Called for each event the set reports. True if nobody wants `fd` watched (an idle
 * kept-alive connection that the origin closed, or sent stray bytes on): it is then
 * taken out of the set, so that level-triggered events cannot spin, and the event is
 * to be ignored. */
bool sockwatch_stray(struct sockwatch *w, int fd);

#endif
