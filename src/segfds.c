/* Kept-open segment descriptors with reference counts (see segfds.h). Sixteen slots
 * searched in a row: less than a hash table costs. No system call is made under the
 * lock: the last close of a deleted file frees its blocks, which can take a while. */
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

/* Frees slot `i` (not in use) and returns its descriptor, for the caller to close once
 * it has let go of the lock. */
static int slot_free(struct segfds *c, int i)
{
    int fd = c->slot[i].fd;
    c->slot[i] = (struct segfd){.fd = -1};
    return fd;
}

/* Whether the file of `fd` is still in the directory: one deleted, or replaced by a
 * rename, has no link left. */
static bool still_linked(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_nlink > 0;
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
        if (still_linked(out->fd))
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
    int evicted = -1;
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
            evicted = slot_free(c, pick);
        c->slot[pick] = (struct segfd){.fd = fd, .seq = seq, .refs = 1, .used = ++c->clock};
        out->slot = pick;
    }
    pthread_mutex_unlock(&c->lock);
    if (evicted >= 0)
        close(evicted);
    /* Kept only now: a segfds_forget of this segment made since the open found nothing
     * to forget, but the segment was deleted before it, which this check sees (and a
     * forget made after it finds the slot). */
    if (out->slot >= 0 && !still_linked(fd))
        segfds_forget(c, seq);
    return true;
}

void segfds_put(struct segfds *c, const struct segfd_use *use)
{
    if (use->slot < 0) {
        close(use->fd);
        return;
    }
    int fd = -1;
    pthread_mutex_lock(&c->lock);
    struct segfd *s = &c->slot[use->slot];
    if (--s->refs == 0 && s->doomed)
        fd = slot_free(c, use->slot);
    pthread_mutex_unlock(&c->lock);
    if (fd >= 0)
        close(fd);
}

/* Forgets the kept descriptors of `seq` (every one if `all`). */
static void forget(struct segfds *c, uint64_t seq, bool all)
{
    int fds[SEGFDS_SLOTS];
    int n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < SEGFDS_SLOTS; i++) {
        struct segfd *s = &c->slot[i];
        if (s->fd < 0 || s->doomed || !(all || s->seq == seq))
            continue;
        if (s->refs == 0)
            fds[n++] = slot_free(c, i);
        else
            s->doomed = true;
    }
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

void segfds_forget(struct segfds *c, uint64_t seq) { forget(c, seq, false); }

void segfds_forget_all(struct segfds *c) { forget(c, 0, true); }
