/* A response body in transit between the fetch thread and clients (see relay.h).
 * The bytes [base, base + len) are in buf; each reader has consumed up to its `pos`. */
#include "relay.h"

#include "bytes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_EXACT_MAX (1u << 20) /* largest room reserved on an announced length alone */

struct relay_reader {
    uint64_t pos;
    void (*wake)(void *);
    void *wake_arg;
    bool parked;
    struct relay_reader *next;
};

struct relay {
    pthread_mutex_t lock;
    atomic_int refs;
    size_t keep_limit, window;
    void (*resume)(void *);
    void *resume_arg;
    unsigned char *buf;
    size_t cap, len;
    uint64_t base;       /* offset of buf[0] in the body */
    struct relay_reader *readers;
    bool keeping;        /* the whole body is kept (base stays 0) */
    bool ended, ok;
    bool paused;         /* the writer was refused for a full window */
    bool taken;          /* buf belongs to someone else now */
    bool had_reader;     /* a reader came (and maybe went) */
    size_t first_cap;    /* room of the first allocation (relay_expect); 0: default */
    void *keeper;
    void (*release)(void *);
};

struct relay *relay_new(size_t keep_limit, size_t window, void (*resume)(void *arg),
                        void *resume_arg)
{
    struct relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->refs, 1);
    r->keep_limit = keep_limit;
    r->window = window > 0 ? window : 1;
    r->resume = resume;
    r->resume_arg = resume_arg;
    r->keeping = keep_limit > 0;
    return r;
}

struct relay *relay_ref(struct relay *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void relay_unref(struct relay *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (!r->taken)
        free(r->buf);
    while (r->readers) {
        struct relay_reader *rd = r->readers;
        r->readers = rd->next;
        free(rd);
    }
    if (r->release)
        r->release(r->keeper);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Wakes the parked readers; caller holds the lock, the wake itself is safe under it
 * (it only queues the connection for its thread). */
static void wake_locked(struct relay *r)
{
    for (struct relay_reader *rd = r->readers; rd; rd = rd->next) {
        if (rd->parked) {
            rd->parked = false;
            rd->wake(rd->wake_arg);
        }
    }
}

/* The offset every reader has reached (the end when there is none). */
static uint64_t min_pos_locked(const struct relay *r)
{
    uint64_t m = r->base + r->len;
    for (const struct relay_reader *rd = r->readers; rd; rd = rd->next)
        if (rd->pos < m)
            m = rd->pos;
    return m;
}

/* Drops what every reader has consumed, once the body is no longer kept. */
static void trim_locked(struct relay *r)
{
    if (r->keeping || !r->had_reader)
        return;
    uint64_t upto = min_pos_locked(r);
    if (upto <= r->base)
        return;
    size_t drop = (size_t)(upto - r->base);
    if (drop > r->len)
        drop = r->len;
    memmove(r->buf, r->buf + drop, r->len - drop);
    r->len -= drop;
    r->base += drop;
}

bool relay_write(struct relay *r, const void *p, size_t n)
{
    pthread_mutex_lock(&r->lock);
    if (r->ended) {
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    if (r->keeping && r->base + r->len + n > r->keep_limit)
        r->keeping = false; /* too large to store: from now on a window only */
    if (r->had_reader && r->readers == NULL && !r->keeping) {
        /* Nobody reads any more and nothing is kept: the bytes go nowhere. */
        r->base += r->len + n;
        r->len = 0;
        pthread_mutex_unlock(&r->lock);
        return true;
    }
    trim_locked(r);
    uint64_t unread = r->base + r->len - (r->had_reader ? min_pos_locked(r) : r->base);
    if (!r->keeping && unread > 0 && unread + n > r->window) {
        r->paused = true;
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    if (bytes_reserve(&r->buf, &r->cap, r->len + n, r->first_cap) != CP_OK) {
        r->ended = true;
        r->ok = false;
        wake_locked(r);
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    wake_locked(r);
    pthread_mutex_unlock(&r->lock);
    return true;
}

void relay_end(struct relay *r, bool ok)
{
    pthread_mutex_lock(&r->lock);
    if (!r->ended) {
        r->ended = true;
        r->ok = ok;
    }
    /* The writer is done and may go: a reader that leaves or catches up later must
     * not call back into it. */
    r->resume = NULL;
    r->paused = false;
    wake_locked(r);
    pthread_mutex_unlock(&r->lock);
}

void relay_expect(struct relay *r, uint64_t length)
{
    pthread_mutex_lock(&r->lock);
    /* Up to a point: an origin may announce more than it sends. */
    if (r->keeping && length > 0 && length <= r->keep_limit && r->cap == 0)
        r->first_cap = length < RELAY_EXACT_MAX ? (size_t)length : RELAY_EXACT_MAX;
    pthread_mutex_unlock(&r->lock);
}

const unsigned char *relay_whole(struct relay *r, size_t *len)
{
    const unsigned char *b = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->ended && r->ok && r->keeping) {
        b = r->buf != NULL ? r->buf : (const unsigned char *)"";
        *len = r->len;
    }
    pthread_mutex_unlock(&r->lock);
    return b;
}

bool relay_take(struct relay *r, unsigned char **body, size_t *len)
{
    bool taken = false;
    pthread_mutex_lock(&r->lock);
    if (!(r->ended && !r->ok) && r->keeping && !r->taken) {
        if (r->cap > r->len && r->len > 0) {
            /* Kept for hours from now: give back the slack of the doubling. */
            unsigned char *fit = realloc(r->buf, r->len);
            if (fit != NULL) {
                r->buf = fit;
                r->cap = r->len;
            }
        }
        *body = r->buf;
        *len = r->len;
        r->taken = taken = true;
    }
    pthread_mutex_unlock(&r->lock);
    return taken;
}

void relay_keep(struct relay *r, void *keeper, void (*release)(void *keeper))
{
    pthread_mutex_lock(&r->lock);
    r->keeper = keeper;
    r->release = release;
    pthread_mutex_unlock(&r->lock);
}

struct relay_reader *relay_add_reader(struct relay *r, void (*wake)(void *arg),
                                      void *wake_arg)
{
    struct relay_reader *rd = calloc(1, sizeof *rd);
    if (rd == NULL)
        return NULL;
    rd->wake = wake;
    rd->wake_arg = wake_arg;
    pthread_mutex_lock(&r->lock);
    if (r->base > 0) { /* the start is gone: this reader could never have it */
        pthread_mutex_unlock(&r->lock);
        free(rd);
        return NULL;
    }
    rd->next = r->readers;
    r->readers = rd;
    r->had_reader = true;
    pthread_mutex_unlock(&r->lock);
    return rd;
}

ssize_t relay_read(struct relay *r, struct relay_reader *rd, uint64_t pos, void *buf,
                   size_t max, void (*park)(void *arg), void *park_arg)
{
    bool resume = false;
    ssize_t got;
    pthread_mutex_lock(&r->lock);
    /* The last byte is held back until the end is known: a client that has every
     * byte considers the response complete, and must not ask again before what it got
     * has been stored. */
    uint64_t avail = r->base + r->len - (r->ended || r->len == 0 ? 0 : 1);
    if (pos < r->base) {
        got = RELAY_ERROR; /* already dropped: cannot happen, readers hold it back */
    } else if (pos < avail) {
        size_t off = (size_t)(pos - r->base);
        size_t n = (size_t)(avail - pos) < max ? (size_t)(avail - pos) : max;
        memcpy(buf, r->buf + off, n);
        rd->pos = pos + n;
        got = (ssize_t)n;
        trim_locked(r);
        /* Room again in the window: let the writer go on. */
        if (r->paused && r->base + r->len - min_pos_locked(r) <= r->window / 2) {
            r->paused = false;
            resume = true;
        }
    } else if (r->ended) {
        got = r->ok ? RELAY_END : RELAY_ERROR;
    } else {
        rd->pos = pos;
        rd->parked = true;
        park(park_arg);
        got = RELAY_WAIT;
    }
    /* Under the lock, so that relay_end (and the writer freeing resume_arg) cannot
     * come between the decision and the call. */
    if (resume && r->resume)
        r->resume(r->resume_arg);
    pthread_mutex_unlock(&r->lock);
    return got;
}

void relay_reader_gone(struct relay *r, struct relay_reader *rd)
{
    bool resume = false;
    pthread_mutex_lock(&r->lock);
    for (struct relay_reader **p = &r->readers; *p; p = &(*p)->next) {
        if (*p == rd) {
            *p = rd->next;
            break;
        }
    }
    free(rd);
    trim_locked(r);
    if (r->paused) {
        r->paused = false;
        resume = true;
    }
    if (resume && r->resume) /* under the lock: see relay_read */
        r->resume(r->resume_arg);
    pthread_mutex_unlock(&r->lock);
}

size_t relay_held(struct relay *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->len;
    pthread_mutex_unlock(&r->lock);
    return n;
}

bool relay_keeping(struct relay *r)
{
    pthread_mutex_lock(&r->lock);
    bool k = r->keeping;
    pthread_mutex_unlock(&r->lock);
    return k;
}
