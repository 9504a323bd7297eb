/* Open descriptors of the store's segment files, kept for the reads that come after:
 * a record read back costs an fstat and a pread instead of an open, a pread and a
 * close. A descriptor stays valid for the reads using it when its segment is deleted,
 * and is closed when the last of them is done, so a deleted segment's space is not
 * held by it. One deleted behind the store's back is seen by the fstat of the next
 * read of it (see segfds_get); until then, or until its slot is reused or a clear,
 * its space stays held. */
#ifndef CP_SEGFDS_H
#define CP_SEGFDS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SEGFDS_SLOTS 16 /* segments kept open at most */

struct segfds {
    pthread_mutex_t lock;
    uint64_t clock; /* for least recently used */
    struct segfd {
        int fd;        /* -1: slot free */
        uint64_t seq;
        unsigned refs; /* reads using it now */
        bool doomed;   /* forgotten: closed when refs falls to 0, never handed out again */
        uint64_t used;
    } slot[SEGFDS_SLOTS];
};

/* One read's use of a descriptor, for segfds_put. */
struct segfd_use {
    int fd;
    int slot; /* -1: not kept (every slot was in use): segfds_put closes it */
};

/* Opens a segment for reading: returns a descriptor, or -1 with errno set. */
typedef int (*segfds_open_fn)(void *arg, uint64_t seq);

void segfds_init(struct segfds *c);

/* Closes every descriptor; none may be in use. */
void segfds_close_all(struct segfds *c);

/* A descriptor of segment `seq` for one read: a kept one whose file is still linked
 * (an fstat tells: one deleted or replaced by someone else is given up), or one opened
 * by `open` and kept in a free slot (else in the least recently used one not in use).
 * Returns false with errno set from `open` if it fails. Hand it back with segfds_put. */
bool segfds_get(struct segfds *c, uint64_t seq, segfds_open_fn open, void *arg,
                struct segfd_use *out);

/* Ends the use that segfds_get began; closes the descriptor if it was forgotten
 * meanwhile (or never kept) and this was its last use. */
void segfds_put(struct segfds *c, const struct segfd_use *use);

/* Segment `seq` has been deleted (or cut): its kept descriptor is closed, at once or
 * after the reads using it. */
void segfds_forget(struct segfds *c, uint64_t seq);

/* segfds_forget for every segment (the cache was cleared). */
void segfds_forget_all(struct segfds *c);

#endif
