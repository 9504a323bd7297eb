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
    UT_hash_handle hh;
};

struct collapse {
    pthread_mutex_t lock;
    struct flight *flights;
};

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
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool collapse_join(struct collapse *c, const char *key, void *who, bool *leader)
{
    *leader = false;
    pthread_mutex_lock(&c->lock);
    struct flight *f = NULL;
    HASH_FIND_STR(c->flights, key, f);
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

void collapse_finish(struct collapse *c, const char *key, void (*wake)(void *waiter))
{
    pthread_mutex_lock(&c->lock);
    struct flight *f = NULL;
    HASH_FIND_STR(c->flights, key, f);
    if (f != NULL)
        HASH_DEL(c->flights, f);
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
