/* The disk mirror's writer thread (see mirror.h): callers append operations to a
 * queue under a mutex and return at once; one thread applies them to the store in
 * order, so a write followed by a removal of the same key ends with no record in force
 * for it (the store appends a removal record after the entry's).
 * The writer lingers a moment after it is woken and then takes the whole queue, so a
 * busy proxy pays one wakeup, and one system call per run of writes, per batch rather
 * than one per response. Operations not yet applied are counted by a hash of their key,
 * so that lookups do not read back a record that is about to be replaced or removed. */
#include "mirror.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#include <xxhash.h>

#define MIRROR_LINGER_NS 2000000L /* how long a woken writer lets a batch gather */
#define MIRROR_RUN 32             /* writes handed to the store at once */
#define MIRROR_PENDING_SLOTS 4096 /* counters of pending keys, by hash: 2^12 */

struct mirror_op {
    struct mirror_op *next;
    struct entry *entry; /* write this entry, or, when NULL, remove every variant of key */
    char key[];
};

struct mirror {
    struct store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct mirror_op *head, *tail; /* FIFO */
    bool stopping;
    bool idle;                     /* the writer waits for work and nobody woke it yet */
    /* Operations the store has not applied yet (queued, or in the writer's hands),
     * counted by a hash of their key: a key whose counter is not 0 may be pending (one
     * in 4096 others shares it), one whose counter is 0 is not. No lock, no memory. */
    _Atomic uint32_t pending[MIRROR_PENDING_SLOTS];
    /* An operation could not be queued (no memory): the disk may hold, in force, a
     * record that memory has replaced or removed, for the rest of the run. */
    atomic_bool lost;
};

static _Atomic uint32_t *pending_of(struct mirror *m, const char *key)
{
    return &m->pending[XXH3_64bits(key, strlen(key)) & (MIRROR_PENDING_SLOTS - 1)];
}

static void op_free(struct mirror_op *op)
{
    entry_unref(op->entry);
    free(op);
}

static void *writer_main(void *arg)
{
    struct mirror *m = arg;
    const struct timespec linger = {0, MIRROR_LINGER_NS};
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (m->head == NULL && !m->stopping) {
            m->idle = true;
            pthread_cond_wait(&m->wake, &m->lock);
        }
        m->idle = false;
        /* Stopping only once the queue is empty: mirror_stop promises a full drain. */
        if (m->head == NULL)
            break;
        if (!m->stopping) {
            pthread_mutex_unlock(&m->lock);
            nanosleep(&linger, NULL);
            pthread_mutex_lock(&m->lock);
        }
        struct mirror_op *batch = m->head;
        m->head = m->tail = NULL;
        /* The disk work happens unlocked so that producers never wait for it. */
        pthread_mutex_unlock(&m->lock);
        while (batch != NULL) {
            if (batch->entry == NULL) {
                struct mirror_op *op = batch;
                batch = op->next;
                store_remove_all(m->store, op->key);
                atomic_fetch_sub(pending_of(m, op->key), 1); /* the index is without it */
                op_free(op);
                continue;
            }
            /* Writes in a row go to the store together: one system call for them all. */
            struct mirror_op *run[MIRROR_RUN];
            const struct entry *entries[MIRROR_RUN];
            size_t n = 0;
            for (; batch != NULL && batch->entry != NULL && n < MIRROR_RUN; batch = batch->next) {
                run[n] = batch;
                entries[n++] = batch->entry;
            }
            store_write_many(m->store, entries, n, NULL); /* failures are logged by the store */
            for (size_t i = 0; i < n; i++) {
                atomic_fetch_sub(pending_of(m, run[i]->entry->key), 1);
                op_free(run[i]);
            }
        }
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

cp_err mirror_start(struct store *s, struct mirror **out)
{
    *out = NULL;
    struct mirror *m = calloc(1, sizeof *m);
    if (m == NULL)
        return CP_ERR_NOMEM;
    m->store = s;
    for (size_t i = 0; i < MIRROR_PENDING_SLOTS; i++)
        atomic_init(&m->pending[i], 0);
    atomic_init(&m->lost, false);
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return CP_ERR_INTERNAL;
    }
    if (pthread_cond_init(&m->wake, NULL) != 0) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return CP_ERR_INTERNAL;
    }
    /* The thread starts with every signal blocked, so that signals meant for the
     * process (SIGINT, SIGTERM) are handled by the threads that expect them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&m->thread, NULL, writer_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return CP_ERR_INTERNAL;
    }
    *out = m;
    return CP_OK;
}

static void enqueue_locked(struct mirror *m, struct mirror_op *op)
{
    if (m->tail != NULL)
        m->tail->next = op;
    else
        m->head = op;
    m->tail = op;
    if (m->idle) {
        m->idle = false; /* one wakeup is enough for everything queued until it acts */
        pthread_cond_signal(&m->wake);
    }
}

/* Queues `op` for `key`, counted as pending. */
static void submit(struct mirror *m, struct mirror_op *op, const char *key)
{
    atomic_fetch_add(pending_of(m, key), 1);
    pthread_mutex_lock(&m->lock);
    enqueue_locked(m, op);
    pthread_mutex_unlock(&m->lock);
}

void mirror_remove_all(struct mirror *m, const char *key)
{
    size_t key_len = strlen(key) + 1;
    struct mirror_op *op = malloc(sizeof *op + key_len);
    if (op == NULL) {
        /* Only the entries in memory are gone: their records stay in force on disk,
         * found by the store and loaded again at the next start, though meant to go. */
        atomic_store(&m->lost, true);
        log_error("cannot queue the removal of cache entries %s for the disk: out of "
                  "memory; they may come back at the next start", key);
        return;
    }
    *op = (struct mirror_op){.entry = NULL};
    memcpy(op->key, key, key_len);
    submit(m, op, op->key);
}

void mirror_write(struct mirror *m, struct entry *e)
{
    struct mirror_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        /* The entry stays in memory, but an older record of its key stays in force on
         * disk, to be found by the store and loaded at the next start. */
        atomic_store(&m->lost, true);
        log_error("cannot queue cache entry %s for the disk: out of memory; an older copy "
                  "may come back at the next start", e->key);
        return;
    }
    op->entry = entry_ref(e);
    submit(m, op, e->key);
}

bool mirror_pending(struct mirror *m, const char *key)
{
    /* The counter first: a 0 read from it comes after any `lost` set before it fell. */
    return atomic_load(pending_of(m, key)) != 0 || atomic_load(&m->lost);
}

void mirror_stop(struct mirror *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
