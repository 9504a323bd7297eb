/* A queue of disk reads and the one thread that makes them (see readback.h). One
 * thread is enough: reads come from the page cache, and they are only those of long
 * records evicted from memory; it keeps them off the front end, not parallel. */
#include "readback.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct read_job {
    struct read_job *next;
    char *key;
    const struct hdrs *request; /* the waiting request's, left alone while it waits */
    void (*done)(void *arg, bool made);
    void *arg;
};

struct readback {
    const struct updater *u;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct read_job *head, *tail; /* guarded by lock */
    bool stopping;                /* guarded by lock */
};

static void job_free(struct read_job *j)
{
    free(j->key);
    free(j);
}

static void *reader_main(void *arg)
{
    struct readback *rb = arg;
    pthread_mutex_lock(&rb->lock);
    for (;;) {
        while (rb->head == NULL && !rb->stopping)
            pthread_cond_wait(&rb->wake, &rb->lock);
        if (rb->stopping)
            break; /* what is queued is readback_stop's to answer */
        struct read_job *j = rb->head;
        rb->head = j->next;
        if (rb->head == NULL)
            rb->tail = NULL;
        pthread_mutex_unlock(&rb->lock);
        (void)update_read_back(rb->u, j->key, j->request);
        j->done(j->arg, true);
        job_free(j);
        pthread_mutex_lock(&rb->lock);
    }
    pthread_mutex_unlock(&rb->lock);
    return NULL;
}

cp_err readback_start(const struct updater *u, struct readback **out)
{
    struct readback *rb = calloc(1, sizeof *rb);
    if (rb == NULL)
        return CP_ERR_NOMEM;
    rb->u = u;
    pthread_mutex_init(&rb->lock, NULL);
    pthread_cond_init(&rb->wake, NULL);
    if (pthread_create(&rb->thread, NULL, reader_main, rb) != 0) {
        pthread_cond_destroy(&rb->wake);
        pthread_mutex_destroy(&rb->lock);
        free(rb);
        return CP_ERR_INTERNAL;
    }
    *out = rb;
    return CP_OK;
}

cp_err readback_submit(struct readback *rb, const char *key, const struct hdrs *request,
                       void (*done)(void *arg, bool made), void *arg)
{
    struct read_job *j = calloc(1, sizeof *j);
    if (j == NULL || (j->key = strdup(key)) == NULL) {
        free(j);
        return CP_ERR_NOMEM;
    }
    j->request = request;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&rb->lock);
    bool stopping = rb->stopping;
    if (!stopping) {
        if (rb->tail != NULL)
            rb->tail->next = j;
        else
            rb->head = j;
        rb->tail = j;
        pthread_cond_signal(&rb->wake);
    }
    pthread_mutex_unlock(&rb->lock);
    if (stopping) {
        job_free(j);
        return CP_ERR_SHUTDOWN;
    }
    return CP_OK;
}

void readback_stop(struct readback *rb)
{
    if (rb == NULL)
        return;
    pthread_mutex_lock(&rb->lock);
    bool already = rb->stopping;
    rb->stopping = true;
    pthread_cond_signal(&rb->wake);
    pthread_mutex_unlock(&rb->lock);
    if (already)
        return;
    pthread_join(rb->thread, NULL);
    /* Nothing joins the queue now (submits see `stopping`): it is ours alone. */
    struct read_job *left = rb->head;
    rb->head = rb->tail = NULL;
    while (left != NULL) {
        struct read_job *j = left;
        left = j->next;
        j->done(j->arg, false);
        job_free(j);
    }
}

void readback_free(struct readback *rb)
{
    if (rb == NULL)
        return;
    readback_stop(rb);
    pthread_cond_destroy(&rb->wake);
    pthread_mutex_destroy(&rb->lock);
    free(rb);
}
