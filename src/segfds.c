/* Kept-open segment descriptors with reference counts (see segfds.h). Sixteen slots
 * searched in a row: less than a hash table costs, and a lock held for no system call
 * but the close of a descriptor nobody uses. */
#include "segfds.h"

#include <sys/stat.h>
#include <unistd.h>

void segfds_init(struct segfds *c)
{
    pthread_mutex_init(&c->lock, NULL);
    c->clock = 0;
    for (int i = 0; i < SEGFDS_SLOTS; i++)
        c->slot[i] = (struct segfd){.fd = -1};
}

void segfds_close_all(struct segfds *c)
{
    for (int i = 0; i < SEGFDS_SLOTS; i++) {
        if (c->slot[i].fd >= 0)
            close(c->slot[i].fd);
        c->slot[i] = (struct segfd){.fd = -1};
    }
    pthread_mutex_destroy(&c->lock);
}

/* Frees slot `i` (not in use), closing its descriptor. Caller holds the lock. */
static void slot_free(struct segfds *c, int i)
{
    close(c->slot[i].fd);
    c->slot[i] = (struct segfd){.fd = -1};
}

bool segfds_get(struct segfds *c, uint64_t seq, segfds_open_fn open, void *arg,
                struct segfd_use *out)
{
    bool kept = false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < SEGFDS_SLOTS && !kept; i++) {
        struct segfd *s = &c->slot[i];
        if (s->fd >= 0 && s->seq == seq && !s->doomed) {
            s->refs++;
            s->used = ++c->clock;
            *out = (struct segfd_use){.fd = s->fd, .slot = i};
            kept = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (kept) {
        /* The file may have been deleted, or replaced, by someone else since it was
         * opened: then it is read as the directory has it now, as if never kept. */
        struct stat st;
        if (fstat(out->fd, &st) == 0 && st.st_nlink > 0)
            return true;
        segfds_forget(c, seq);
        segfds_put(c, out);
    }

    /* Opened without the lock: another read of the same segment may open it too, and
     * then both are kept for a while, which is harmless. */
    int fd = open(arg, seq);
    if (fd < 0)
        return false;
    *out = (struct segfd_use){.fd = fd, .slot = -1};
    pthread_mutex_lock(&c->lock);
    int pick = -1;
    for (int i = 0; i < SEGFDS_SLOTS; i++) {
        const struct segfd *s = &c->slot[i];
        if (s->fd < 0) {
            pick = i;
            break;
        }
        if (s->refs == 0 && (pick < 0 || s->used < c->slot[pick].used))
            pick = i;
    }
    if (pick >= 0) {
        if (c->slot[pick].fd >= 0)
            slot_free(c, pick);
        c->slot[pick] = (struct segfd){.fd = fd, .seq = seq, .refs = 1, .used = ++c->clock};
        out->slot = pick;
    }
    pthread_mutex_unlock(&c->lock);
    return true;
}

void segfds_put(struct segfds *c, const struct segfd_use *use)
{
    if (use->slot < 0) {
        close(use->fd);
        return;
    }
    pthread_mutex_lock(&c->lock);
    struct segfd *s = &c->slot[use->slot];
    if (--s->refs == 0 && s->doomed)
        slot_free(c, use->slot);
    pthread_mutex_unlock(&c->lock);
}

/* Forgets slot `i`. Caller holds the lock. */
static void forget_slot(struct segfds *c, int i)
{
    if (c->slot[i].refs == 0)
        slot_free(c, i);
    else
        c->slot[i].doomed = true;
}

void segfds_forget(struct segfds *c, uint64_t seq)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < SEGFDS_SLOTS; i++)
        if (c->slot[i].fd >= 0 && c->slot[i].seq == seq && !c->slot[i].doomed)
            forget_slot(c, i);
    pthread_mutex_unlock(&c->lock);
}

void segfds_forget_all(struct segfds *c)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < SEGFDS_SLOTS; i++)
        if (c->slot[i].fd >= 0 && !c->slot[i].doomed)
            forget_slot(c, i);
    pthread_mutex_unlock(&c->lock);
}
