/* Request collapsing registry (see collapse.h): a hash table from key to the list of
 * requests waiting on the fetch of that key, under one mutex held only to join or end. */
#include "collapse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#undef uthash_fatal
#define uthash_fatal(msg) abort() /* only on allocation failure of the bucket array */
#include <uthash.h>

struct waiter {
    void *who;
    struct waiter *next;
};

struct flight {
    char *key;
    struct waiter *first, *last;
    void (*share)(void *waiter, void *arg); /* set by collapse_release */
    void *share_arg;
    UT_hash_handle hh;
};

/* A URL whose last answer could not be stored. */
struct pass {
    char *key;
    time_t until;
    UT_hash_handle hh;
};

struct collapse {
    pthread_mutex_t lock;
    struct flight *flights;
    struct pass *passes;
    size_t n_passes;
};

static void passes_clear(struct collapse *c)
{
    struct pass *p, *tmp;
    HASH_ITER(hh, c->passes, p, tmp) {
        HASH_DEL(c->passes, p);
        free(p->key);
        free(p);
    }
    c->n_passes = 0;
}

cp_err collapse_new(struct collapse **out)
{
    struct collapse *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CP_ERR_NOMEM;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return CP_OK;
}

void collapse_free(struct collapse *c)
{
    if (c == NULL)
        return;
    struct flight *f, *tmp;
    HASH_ITER(hh, c->flights, f, tmp) {
        HASH_DEL(c->flights, f);
        while (f->first) {
            struct waiter *w = f->first;
            f->first = w->next;
            free(w);
        }
        free(f->key);
        free(f);
    }
    passes_clear(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool collapse_join(struct collapse *c, const char *key, void *who, bool *leader,
                   time_t now)
{
    *leader = false;
    pthread_mutex_lock(&c->lock);
    struct pass *p = NULL;
    HASH_FIND_STR(c->passes, key, p);
    if (p != NULL) {
        if (now < p->until) {
            pthread_mutex_unlock(&c->lock);
            return false; /* not storable lately: nothing to wait for */
        }
        HASH_DEL(c->passes, p);
        c->n_passes--;
        free(p->key);
        free(p);
    }
    struct flight *f = NULL;
    HASH_FIND_STR(c->flights, key, f);
    if (f != NULL && f->share != NULL) {
        /* Its body is being shared: join the readers now. Under the lock, so that the
         * fetch cannot end (and its `share_arg` go) in between. */
        f->share(who, f->share_arg);
        pthread_mutex_unlock(&c->lock);
        return true;
    }
    if (f != NULL) {
        struct waiter *w = malloc(sizeof *w);
        if (w != NULL) {
            w->who = who;
            w->next = NULL;
            if (f->last)
                f->last->next = w;
            else
                f->first = w;
            f->last = w;
        }
        pthread_mutex_unlock(&c->lock);
        return w != NULL;
    }
    f = calloc(1, sizeof *f);
    if (f != NULL && (f->key = strdup(key)) != NULL) {
        HASH_ADD_KEYPTR(hh, c->flights, f->key, strlen(f->key), f);
        *leader = true;
    } else {
        free(f);
    }
    pthread_mutex_unlock(&c->lock);
    return false;
}

/* Remembers `key` as not storable until `until`; caller holds the lock. */
static void pass_put_locked(struct collapse *c, const char *key, time_t until)
{
    struct pass *p = NULL;
    HASH_FIND_STR(c->passes, key, p);
    if (p != NULL) {
        p->until = until;
        return;
    }
    if (c->n_passes >= COLLAPSE_PASS_MAX)
        passes_clear(c); /* crude, but bounded; losing a mark only costs a wait */
    p = malloc(sizeof *p);
    if (p == NULL || (p->key = strdup(key)) == NULL) {
        free(p);
        return;
    }
    p->until = until;
    HASH_ADD_KEYPTR(hh, c->passes, p->key, strlen(p->key), p);
    c->n_passes++;
}

void collapse_finish(struct collapse *c, const char *key, void (*wake)(void *waiter),
                     bool stored, time_t now)
{
    pthread_mutex_lock(&c->lock);
    struct flight *f = NULL;
    HASH_FIND_STR(c->flights, key, f);
    if (f != NULL)
        HASH_DEL(c->flights, f);
    if (!stored)
        pass_put_locked(c, key, now + COLLAPSE_PASS_SECONDS);
    pthread_mutex_unlock(&c->lock);
    if (f == NULL)
        return;
    /* Woken outside the lock: a woken request may join a new flight at once. */
    while (f->first) {
        struct waiter *w = f->first;
        f->first = w->next;
        wake(w->who);
        free(w);
    }
    free(f->key);
    free(f);
}

void collapse_release(struct collapse *c, const char *key,
                      void (*share)(void *waiter, void *arg), void *arg)
{
    pthread_mutex_lock(&c->lock);
    struct flight *f = NULL;
    HASH_FIND_STR(c->flights, key, f);
    if (f != NULL) {
        f->share = share;
        f->share_arg = arg;
        while (f->first) {
            struct waiter *w = f->first;
            f->first = w->next;
            share(w->who, arg);
            free(w);
        }
        f->last = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}
