/* The fetcher's epoll set, kept across requests (see sockwatch.h): one byte of state per
 * socket number says what the set holds for it and whether it may stay in while idle. */
#include "sockwatch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

enum {
    SOCKWATCH_IN = 1,     /* in the set, for reading */
    SOCKWATCH_OUT = 2,    /* in the set, for writing */
    SOCKWATCH_WANTED = 4, /* someone wants it watched; without it, an event removes it */
    SOCKWATCH_OWNED = 8,  /* opened and to be closed through us: may stay in while idle */
};

void sockwatch_init(struct sockwatch *w, int epfd)
{
    w->epfd = epfd;
    w->state = NULL;
    w->n = 0;
}

void sockwatch_free(struct sockwatch *w)
{
    free(w->state);
    w->state = NULL;
    w->n = 0;
}

/* Makes room for socket `fd`. Returns false if there is none (or fd is negative). */
static bool reserve(struct sockwatch *w, int fd)
{
    if (fd < 0)
        return false;
    if ((size_t)fd < w->n)
        return true;
    size_t n = w->n ? w->n : 64;
    while (n <= (size_t)fd)
        n *= 2;
    unsigned char *s = realloc(w->state, n);
    if (s == NULL)
        return false;
    memset(s + w->n, 0, n - w->n);
    w->state = s;
    w->n = n;
    return true;
}

cp_err sockwatch_opened(struct sockwatch *w, int fd)
{
    if (!reserve(w, fd))
        return CP_ERR_NOMEM;
    w->state[fd] = SOCKWATCH_OWNED;
    return CP_OK;
}

void sockwatch_closed(struct sockwatch *w, int fd)
{
    if (fd >= 0 && (size_t)fd < w->n)
        w->state[fd] = 0;
}

cp_err sockwatch_want(struct sockwatch *w, int fd, bool in, bool out)
{
    if (!reserve(w, fd))
        return CP_ERR_NOMEM;
    unsigned char *st = &w->state[fd];
    unsigned char want = (in ? SOCKWATCH_IN : 0) | (out ? SOCKWATCH_OUT : 0);
    unsigned char have = *st & (SOCKWATCH_IN | SOCKWATCH_OUT);
    if (want != have) {
        struct epoll_event ev = {.data.fd = fd};
        ev.events = (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0);
        int op = have ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        /* Should the state ever be wrong about the set, the other operation is right. */
        if (epoll_ctl(w->epfd, op, fd, &ev) != 0 &&
            epoll_ctl(w->epfd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
            *st &= SOCKWATCH_OWNED;
            return CP_ERR_INTERNAL;
        }
    }
    *st = (unsigned char)(want | SOCKWATCH_WANTED | (*st & SOCKWATCH_OWNED));
    return CP_OK;
}

void sockwatch_done(struct sockwatch *w, int fd)
{
    if (fd < 0 || (size_t)fd >= w->n)
        return;
    unsigned char *st = &w->state[fd];
    if (*st & SOCKWATCH_OWNED) {
        *st &= (unsigned char)~SOCKWATCH_WANTED;
        return;
    }
    /* Not ours to follow to its close: its number could come back as another socket
     * while the state still said "in the set". */
    if (*st & (SOCKWATCH_IN | SOCKWATCH_OUT))
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL); /* may be closed already: no matter */
    *st = 0;
}

bool sockwatch_stray(struct sockwatch *w, int fd)
{
    if (fd < 0 || (size_t)fd >= w->n || (w->state[fd] & SOCKWATCH_WANTED))
        return false;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->state[fd] &= SOCKWATCH_OWNED;
    return true;
}
