/* A response body in transit between the fetch thread and a client (see relay.h).
 * The bytes [base, base + len) are in buf; the reader has consumed up to `pos`. */
#include "relay.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct relay {
    pthread_mutex_t lock;
    atomic_int refs;
    size_t keep_limit, window;
    void (*resume)(void *);
    void *resume_arg;
    unsigned char *buf;
    size_t cap, len;
    uint64_t base;       /* offset of buf[0] in the body */
    uint64_t pos;        /* the reader's next offset */
    bool keeping;        /* the whole body is kept (base stays 0) */
    bool ended, ok;
    bool paused;         /* the writer was refused for a full window */
    bool taken;          /* buf belongs to someone else now */
    bool reader_gone;
    void (*wake)(void *);
    void *wake_arg;
    bool parked;
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
    if (r->release)
        r->release(r->keeper);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Wakes a parked reader; caller holds the lock, the wake itself is safe under it
 * (it only queues the connection for its thread). */
static void wake_locked(struct relay *r)
{
    if (r->parked && r->wake) {
        r->parked = false;
        r->wake(r->wake_arg);
    }
}

/* Drops what the reader has consumed, once the body is no longer kept. */
static void trim_locked(struct relay *r)
{
    if (r->keeping || r->pos <= r->base)
        return;
    size_t drop = (size_t)(r->pos - r->base);
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
    if (r->reader_gone && !r->keeping) {
        /* Nobody reads and nothing is kept: the bytes go nowhere. */
        r->base += r->len + n;
        r->pos = r->base;
        r->len = 0;
        pthread_mutex_unlock(&r->lock);
        return true;
    }
    trim_locked(r);
    if (!r->keeping && r->len > 0 && r->len + n > r->window) {
        r->paused = true;
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        unsigned char *b = realloc(r->buf, cap);
        if (b == NULL) {
            r->ended = true;
            r->ok = false;
            wake_locked(r);
            pthread_mutex_unlock(&r->lock);
            return false;
        }
        r->buf = b;
        r->cap = cap;
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
    wake_locked(r);
    pthread_mutex_unlock(&r->lock);
}

unsigned char *relay_take(struct relay *r, size_t *len)
{
    unsigned char *b = NULL;
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
        b = r->buf;
        *len = r->len;
        r->taken = true;
    }
    pthread_mutex_unlock(&r->lock);
    return b;
}

void relay_keep(struct relay *r, void *keeper, void (*release)(void *keeper))
{
    pthread_mutex_lock(&r->lock);
    r->keeper = keeper;
    r->release = release;
    pthread_mutex_unlock(&r->lock);
}

void relay_set_reader(struct relay *r, void (*wake)(void *arg), void *wake_arg)
{
    pthread_mutex_lock(&r->lock);
    r->wake = wake;
    r->wake_arg = wake_arg;
    pthread_mutex_unlock(&r->lock);
}

ssize_t relay_read(struct relay *r, uint64_t pos, void *buf, size_t max,
                   void (*park)(void *arg), void *park_arg)
{
    bool resume = false;
    ssize_t got;
    pthread_mutex_lock(&r->lock);
    if (pos < r->base) {
        got = RELAY_ERROR; /* already dropped: cannot happen with one reader */
    } else if (pos < r->base + r->len) {
        size_t off = (size_t)(pos - r->base);
        size_t n = r->len - off < max ? r->len - off : max;
        memcpy(buf, r->buf + off, n);
        r->pos = pos + n;
        got = (ssize_t)n;
        trim_locked(r);
        /* Room again in the window: let the writer go on. */
        if (r->paused && r->len <= r->window / 2) {
            r->paused = false;
            resume = true;
        }
    } else if (r->ended) {
        got = r->ok ? RELAY_END : RELAY_ERROR;
    } else {
        r->parked = true;
        park(park_arg);
        got = RELAY_WAIT;
    }
    pthread_mutex_unlock(&r->lock);
    if (resume && r->resume)
        r->resume(r->resume_arg);
    return got;
}

void relay_reader_gone(struct relay *r)
{
    bool resume = false;
    pthread_mutex_lock(&r->lock);
    r->reader_gone = true;
    r->parked = false;
    r->wake = NULL;
    if (!r->keeping) {
        r->pos = r->base + r->len;
        trim_locked(r);
    }
    if (r->paused) {
        r->paused = false;
        resume = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (resume && r->resume)
        r->resume(r->resume_arg);
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
