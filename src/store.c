/* The cache directory on disk (see store.h): records packed back to back in a few large
 * append-only segment files, found again through an index kept in memory.
 *
 * Layout, flat and nothing else:
 *   <dir>/generation   8-byte counter, host byte order (little-endian on every machine
 *                      we build for; the file never leaves the machine)
 *   <dir>/<seq>.cps    a segment: <seq> is 16 lower-case hex digits, counting up, so
 *                      name order is age order; records (diskfmt.h) back to back
 * A record costs its bytes and nothing else: a 1 KiB response takes about 1.4 KiB of
 * disk instead of a filesystem block of its own, and a write is one writev() on a file
 * kept open, with no temporary file, rename or fsync.
 *
 * Writing. The current segment takes records until the next would take it over its
 * nominal size (store_segment_bytes); then a new segment is started (a record larger
 * than that has one to itself). A process never appends to a segment it did not
 * create: what a crash left at the end of one is then only ever read. A record cut
 * short by a crash fails its lengths or checksums at the next load and is cut away. A
 * failed write is cut back (ftruncate) or, if even that fails, the segment is closed.
 * An entry that is not written (disk full, too large) must not leave the record it
 * replaces in force, or a restart would serve the older answer: its key leaves the
 * index, the index stops counting as complete, and a removal record is appended. A
 * removal record that cannot be appended either waits in a short list (pending) and is
 * appended before any later record, so that order on disk stays the order of events;
 * only if even that list cannot take it (full, no memory) is it lost, logged as an
 * error: the key's older record is then live again after a restart.
 *
 * Index. One 32-byte slot per key and vary key in an open-addressing table: the 128-bit
 * hash of both (diskfmt_key_hash) and where the newest record lies (segment, offset,
 * length), no strings. The newest record wins, a removal record deletes; a removal of
 * all variants of a key (an invalidation) deletes every slot of the key: the hash's
 * `lo` is of the key alone, so they are found without knowing their vary keys (a walk
 * of the run from their common home slot). Everything
 * read through the index is checked whole (checksums, key, generation), so a hash
 * collision or a file changed behind our back costs a miss, never a wrong answer.
 * A removal is written to disk only when the key may have a record there (it is in
 * the index, or the index does not yet know all of the disk).
 *
 * Bound. When the segments together exceed max_bytes the oldest are deleted whole, FIFO
 * as in a log-structured cache, and their records leave the index in one sweep. The
 * segment being written is spared. Replaced and removed records are garbage that is not
 * compacted: it counts against the bound until its segment is deleted in turn. A
 * segment that cannot be deleted stops the trimming there and stays listed and counted:
 * deleting the newer ones past it could delete the removal of a record it holds, which
 * would come back at the next start. The bound is exceeded until it can be deleted.
 *
 * Generation. --clear-cache (store_clear) bumps the shared counter, then deletes every
 * segment. A running store notices on its next call (an atomic load of the mapping):
 * it forgets its index and segments, and its writer starts a new segment. Records carry
 * their generation; at load those of another generation are garbage.
 *
 * Loading, in two phases. (1) Every segment, oldest first, is read in large sequential
 * chunks (a large body is stepped over) for record headers and keys only, building an
 * index aside; it is then merged with what was written or removed meanwhile and made the
 * index, so store_read finds everything from then on. Before the scan the segment being
 * written is closed to further records, so the scan reads only files nobody appends to.
 * (2) The live records are read whole, oldest first, and handed over.
 * A segment that cannot be read to its end (open or read fails: EACCES, EMFILE, EIO;
 * ENOENT is a segment deleted meanwhile, damage is cut away) may hold newer records and
 * removals of any key in it or in an older segment. Rule: the records of the newest such
 * segment and of every older one are left out of the index (not handed over, not found:
 * they stay on disk for a later load), those of newer segments are sound (nothing
 * unknown is newer than they are). The index is then not complete, so every removal
 * goes to disk, and the unread segment stays listed, counted against the bound and
 * trimmed in its turn. store_load_stop ends phase 1 between segments with the same
 * rule taken to its end: no index is made of what was read.
 *
 * The index's table is recindex.c; reading one segment in sequence, and what damage in
 * it means (where it is cut, which records are skipped), is segscan.c.
 *
 * Threads. store_write/store_remove run on one thread (the mirror's) under write_lock,
 * which a load also takes for a moment to close the segment being written. The index,
 * the segment list and the counters are under `lock`, held for no file I/O but the
 * unlink of trimmed segments. store_read looks up under `lock` and reads unlocked,
 * opening the segment by name: a segment deleted meanwhile is ENOENT (not found), or
 * still readable through the descriptor opened before; either way the record is checked.
 * One process per cache directory (and --clear-cache): a second server would read the
 * first one's segment being written as damaged. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "diskfmt.h"
#include "log.h"
#include "recindex.h"
#include "segfds.h"
#include "segscan.h"

/* The counter is shared with other processes through the mapping: only a lock-free
 * atomic is a real atomic there (a lock would live in one process only). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define GEN_FILE "generation"
#define GEN_SIZE ((off_t)sizeof(uint64_t))
#define SEG_SUFFIX ".cps"
#define SEG_HEX 16
#define SEG_NAME_LEN (SEG_HEX + 4) /* without NUL */
#define OLD_SUFFIX ".cpe"          /* format 1: one file per entry */
#define OLD_TMP_MARK ".tmp."       /* format 1: an entry file being written */
#define SEG_MIN (64u << 10)
#define SEG_MAX (8u << 20)

/* ---- segments -------------------------------------------------------------------- */

struct seg {
    uint64_t seq;
    uint64_t size;
};

/* Sorted by seq: the oldest first. */
struct seg_list {
    struct seg *v;
    size_t n, cap;
};

static cp_err segs_add(struct seg_list *l, uint64_t seq, uint64_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 16;
        struct seg *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return CP_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    size_t i = l->n;
    while (i > 0 && l->v[i - 1].seq > seq) { /* new segments are the newest: no move */
        l->v[i] = l->v[i - 1];
        i--;
    }
    l->v[i] = (struct seg){seq, size};
    l->n++;
    return CP_OK;
}

static int by_seq(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void seg_name(uint64_t seq, char out[SEG_NAME_LEN + 1])
{
    snprintf(out, SEG_NAME_LEN + 1, "%016" PRIx64 SEG_SUFFIX, seq);
}

/* True if `name` is a segment's name; sets *seq. */
static bool parse_seg_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != SEG_NAME_LEN || strcmp(name + SEG_HEX, SEG_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < SEG_HEX; i++) {
        char c = name[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *seq = v;
    return true;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

static bool is_old_format(const char *name)
{
    return has_suffix(name, OLD_SUFFIX) || strstr(name, OLD_TMP_MARK) != NULL;
}

static bool is_regular(int dfd, const char *name, struct stat *st)
{
    return fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
}

/* ---- the store ------------------------------------------------------------------- */

/* Removals made while a load runs: of one record (h), or of every variant of h.lo. */
struct removed {
    struct diskfmt_hash h;
    bool all;
};

struct removed_list {
    struct removed *v;
    size_t n, cap;
};

/* A removal record that could not be appended yet. */
struct pending {
    char *key, *vary;
    uint64_t gen;
    struct diskfmt_hash h;
    bool all; /* of every variant of the key (vary is then "") */
};

/* At most this many removals wait: a disk that stays full is not a reason to fill the
 * memory too, and a few thousand cover a long outage of invalidations. */
#define PENDING_MAX 4096

struct store {
    char *dir;
    int dfd;               /* the directory, for openat/unlinkat */
    _Atomic uint64_t *gen; /* mapping of GEN_FILE */
    uint64_t max_bytes;    /* 0: no bound */
    uint64_t seg_bytes;    /* nominal segment size */

    pthread_mutex_t write_lock; /* one writer, and a load's snapshot between writes */
    int wfd;               /* segment being written, -1: none (under write_lock) */
    uint64_t wseq, wsize;  /* its seq and size (under write_lock; wseq read under lock) */
    uint64_t wepoch;       /* `epoch` when it was opened (under write_lock) */

    pthread_mutex_t lock;  /* all below */
    uint64_t index_gen;    /* the generation that the index and segment list are of */
    uint64_t epoch;        /* bumped when the segment being written takes no more records */
    struct recindex ix;
    struct seg_list segs;
    uint64_t bytes;        /* sum of segs sizes */
    uint64_t next_seq;
    uint64_t trim_cut;     /* every segment before this one was deleted by us */
    bool ix_complete;      /* every record on disk is known to the index */
    bool ix_gap;           /* a record on disk was left out of the index on purpose (a
                              failed write, no memory): no load makes it complete */
    bool loading;          /* between a load's snapshot and its merge */
    bool load_void;        /* the loaded index must not be merged (clear, no memory) */
    struct removed_list load_removed; /* removals since the snapshot */
    uint64_t trim_stuck;   /* the segment trimming last failed to delete (logged once) */

    atomic_bool load_stop; /* store_load_stop: sticky, read without a lock */

    /* Removal records not yet appended, oldest first (under write_lock). */
    struct pending *pend;
    size_t npend, cappend;

    struct segfds rfds;    /* segments kept open for reading records back */
};

static void log_seg(enum log_level lvl, const struct store *s, uint64_t seq, const char *what,
                    cp_err err)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(seq, name);
    log_msg(lvl, "%s %s/%s: %s", what, s->dir, name, cp_strerror(err));
}

/* A store_clear elsewhere bumps the generation and removes every segment: what the
 * index and the segment list describe is gone, and so is the segment being written. */
static void sync_gen_locked(struct store *s)
{
    uint64_t now = atomic_load(s->gen);
    if (now == s->index_gen)
        return;
    s->index_gen = now;
    segfds_forget_all(&s->rfds); /* their space is the clear's to free */
    recindex_free(&s->ix);
    s->segs.n = 0;
    s->bytes = 0;
    s->epoch++;
    s->trim_cut = s->next_seq;
    s->ix_complete = true; /* all there is now is what this store writes */
    s->ix_gap = false;
    if (s->loading)
        s->load_void = true;
}

/* Notes that the record of `h` (`all`: every record of the key of h.lo) must not come
 * back with a load's index: the merge removes it there. Caller holds `lock`. */
static void note_removed_locked(struct store *s, const struct diskfmt_hash *h, bool all)
{
    if (!s->loading)
        return;
    struct removed_list *l = &s->load_removed;
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        struct removed *v = realloc(l->v, cap * sizeof *v);
        if (v != NULL) {
            l->v = v;
            l->cap = cap;
        }
    }
    if (l->n < l->cap)
        l->v[l->n++] = (struct removed){*h, all};
    else
        s->load_void = true; /* loading nothing beats bringing the key back */
}

/* Notes that some record on disk is not in the index (the key's older record, when a
 * newer one could not be written): from now on every removal goes to disk. Caller
 * holds `lock`. */
static void index_gap_locked(struct store *s)
{
    s->ix_gap = true;
    s->ix_complete = false;
}

uint64_t store_segment_bytes(uint64_t max_bytes)
{
    if (max_bytes == 0)
        return SEG_MAX;
    uint64_t n = max_bytes / 8;
    if (n < SEG_MIN)
        n = SEG_MIN;
    if (n > SEG_MAX)
        n = SEG_MAX;
    if (n > max_bytes / 4)
        n = max_bytes / 4;
    return n > 0 ? n : 1;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (p == NULL)
        return -1;
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700);
    free(p);
    if (rc != 0 && errno != EEXIST)
        return -1;
    /* EEXIST may be a regular file of that name. */
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Opens or creates the generation file of `dir` and maps it. */
static cp_err map_generation(const char *dir, _Atomic uint64_t **out)
{
    *out = NULL;
    size_t plen = strlen(dir) + sizeof "/" GEN_FILE;
    char *path = malloc(plen);
    if (path == NULL)
        return CP_ERR_NOMEM;
    snprintf(path, plen, "%s/" GEN_FILE, dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    cp_err err = CP_ERR_CACHE_DIR;
    void *map = MAP_FAILED;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto out;
    /* A new file is all zeros once extended: generation 0. */
    if (st.st_size < GEN_SIZE && ftruncate(fd, GEN_SIZE) != 0)
        goto out;
    map = mmap(NULL, (size_t)GEN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto out;
    *out = map;
    err = CP_OK;
out:
    {
        int saved = errno; /* the caller reports why, from errno */
        if (fd >= 0)
            close(fd);
        free(path);
        errno = saved;
    }
    return err;
}

/* Lists the segments of the directory (names and sizes) into *l, sorted. */
static cp_err list_segments(int dfd, struct seg_list *l)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        errno = saved;
        return errno == ENOMEM ? CP_ERR_NOMEM : CP_ERR_CACHE_DIR;
    }
    rewinddir(d); /* the duplicate shares the original's position */
    struct dirent *de;
    cp_err err = CP_OK;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        struct stat st;
        if (parse_seg_name(de->d_name, &seq) && is_regular(dfd, de->d_name, &st) &&
            (err = segs_add(l, seq, (uint64_t)st.st_size)) != CP_OK)
            break;
    }
    closedir(d);
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, by_seq);
    return err;
}

cp_err store_open(const char *dir, uint64_t max_bytes, struct store **out)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return CP_ERR_CACHE_DIR;
    if (mkdir_p(dir) != 0 || access(dir, W_OK | X_OK) != 0) {
        if (errno == ENOMEM)
            return CP_ERR_NOMEM;
        return CP_ERR_CACHE_DIR;
    }
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        return CP_ERR_NOMEM;
    }
    s->dfd = -1;
    s->wfd = -1;
    s->max_bytes = max_bytes;
    s->seg_bytes = store_segment_bytes(max_bytes);
    bool locks = false;
    /* Creating the generation file is the real proof that the directory is writable
     * (access() does not know about read-only mounts on every system). */
    cp_err err = map_generation(dir, &s->gen);
    if (err != CP_OK)
        goto fail;
    err = CP_ERR_CACHE_DIR;
    if ((s->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        goto fail;
    err = CP_ERR_NOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail;
    if (pthread_mutex_init(&s->write_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto fail;
    }
    locks = true;
    segfds_init(&s->rfds);
    if ((err = list_segments(s->dfd, &s->segs)) != CP_OK)
        goto fail;
    for (size_t i = 0; i < s->segs.n; i++)
        s->bytes += s->segs.v[i].size;
    s->next_seq = s->segs.n > 0 ? s->segs.v[s->segs.n - 1].seq + 1 : 1;
    s->ix_complete = s->segs.n == 0;
    s->index_gen = atomic_load(s->gen);
    s->trim_stuck = UINT64_MAX;
    atomic_init(&s->load_stop, false);
    *out = s;
    return CP_OK;
fail:;
    int saved = errno;
    if (locks) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->write_lock);
        segfds_close_all(&s->rfds);
    }
    free(s->segs.v);
    if (s->dfd >= 0)
        close(s->dfd);
    if (s->gen != NULL)
        munmap((void *)s->gen, (size_t)GEN_SIZE);
    free(s->dir);
    free(s);
    errno = saved;
    return err;
}

static cp_err flush_pending(struct store *s);
static void pending_free(struct pending *p);

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    /* A last try: what is still pending after it is lost, and the entries it removed
     * may come back at the next start. */
    pthread_mutex_lock(&s->write_lock);
    if (s->npend > 0 && flush_pending(s) != CP_OK)
        log_error("cannot record the removal of %zu cache entr%s in %s: %s may come back "
                  "after a restart", s->npend, s->npend == 1 ? "y" : "ies", s->dir,
                  s->npend == 1 ? "it" : "they");
    for (size_t i = 0; i < s->npend; i++)
        pending_free(&s->pend[i]);
    free(s->pend);
    pthread_mutex_unlock(&s->write_lock);
    if (s->wfd >= 0)
        close(s->wfd);
    segfds_close_all(&s->rfds);
    close(s->dfd);
    munmap((void *)s->gen, (size_t)GEN_SIZE);
    recindex_free(&s->ix);
    free(s->segs.v);
    free(s->load_removed.v);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

uint64_t store_bytes(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    uint64_t n = s->bytes;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const _Atomic uint64_t *store_generation_ptr(struct store *s)
{
    return s->gen;
}

/* ---- writing --------------------------------------------------------------------- */

/* Writes all of iov (which it modifies), resuming after partial writes. */
static int write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t done = (size_t)n;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Deletes the oldest segments while the bound is exceeded, sparing the one being
 * written, and forgets their records. A segment that cannot be deleted (other than
 * ENOENT: gone already) ends the trimming and stays listed: a newer segment deleted past
 * it may hold the removal of a record it keeps, which would then come back at the next
 * start. The next write tries again. Caller holds both locks. */
static void trim_locked(struct store *s)
{
    if (s->max_bytes == 0 || s->bytes <= s->max_bytes)
        return;
    size_t k = 0;
    while (s->bytes > s->max_bytes && k < s->segs.n &&
           !(s->wfd >= 0 && s->segs.v[k].seq == s->wseq)) {
        char name[SEG_NAME_LEN + 1];
        seg_name(s->segs.v[k].seq, name);
        if (unlinkat(s->dfd, name, 0) != 0 && errno != ENOENT) {
            /* Once per segment: every write tries again. */
            log_msg(s->trim_stuck == s->segs.v[k].seq ? LOG_LVL_DEBUG : LOG_LVL_WARN,
                    "cannot remove cache segment %s/%s: %s; the cache stays over %" PRIu64
                    " bytes until it can be", s->dir, name, strerror(errno), s->max_bytes);
            s->trim_stuck = s->segs.v[k].seq;
            break;
        }
        log_debug("removed cache segment %s/%s to stay within %" PRIu64 " bytes", s->dir,
                  name, s->max_bytes);
        segfds_forget(&s->rfds, s->segs.v[k].seq);
        s->bytes -= s->segs.v[k].size;
        k++;
    }
    if (k == 0)
        return;
    uint64_t cut = k < s->segs.n ? s->segs.v[k].seq : s->next_seq;
    memmove(s->segs.v, s->segs.v + k, (s->segs.n - k) * sizeof *s->segs.v);
    s->segs.n -= k;
    if (cut > s->trim_cut)
        s->trim_cut = cut;
    recindex_drop_below(&s->ix, cut);
}

static void close_current(struct store *s)
{
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = -1;
}

/* Starts a new segment. Caller holds write_lock. */
static cp_err open_segment(struct store *s)
{
    char name[SEG_NAME_LEN + 1];
    uint64_t seq;
    int fd;
    /* Another store on the directory (a test, a second process) may have taken the
     * next name: the next free one will do. */
    for (int tries = 0;; tries++) {
        pthread_mutex_lock(&s->lock);
        sync_gen_locked(s);
        seq = s->next_seq++;
        pthread_mutex_unlock(&s->lock);
        seg_name(seq, name);
        fd = openat(s->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        if (errno != EEXIST || tries == 1000) {
            log_warn("cannot create cache segment %s/%s: %s", s->dir, name, strerror(errno));
            return CP_ERR_IO;
        }
    }
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    cp_err err = segs_add(&s->segs, seq, 0);
    s->wepoch = s->epoch;
    pthread_mutex_unlock(&s->lock);
    if (err != CP_OK) { /* a segment the bound does not know of is not written */
        close(fd);
        unlinkat(s->dfd, name, 0);
        return err;
    }
    s->wfd = fd;
    s->wseq = seq;
    s->wsize = 0;
    return CP_OK;
}

/* A record to append: its bytes (one or two pieces), and what indexing it needs. */
struct rec {
    struct iovec iov[2];
    int cnt;
    uint64_t len;
    const struct diskfmt_hash *h; /* NULL: not indexed (a removal record) */
    uint64_t gen;                 /* generation it was made in */
    cp_err err;                   /* out */
    bool written;                 /* out: its bytes are in the segment */
};

#define APPEND_IOV 64 /* pieces per writev: up to 32 records of an entry each */

/* Whether a record of `len` bytes may go at offset `at` of the segment being written: a
 * segment takes records while they fit its nominal size (one larger than that has a
 * segment to itself) and their offsets fit in 32 bits. */
static bool fits_at(const struct store *s, uint64_t at, uint64_t len)
{
    return at == 0 || (at <= s->seg_bytes && len <= s->seg_bytes - at && at <= UINT32_MAX);
}

/* Appends the records r[0..n) in order to the segment being written, opening a new one
 * when the next does not fit, with one write for each run of records that fit together
 * (up to APPEND_IOV pieces), and indexes those with a hash. Sets each record's `err`
 * and `written`:
 *   CP_ERR_STALE_GEN, not written: made in a generation that a clear has ended;
 *   CP_ERR_IO, not written: a write failed (logged with the path), for that record and
 *     every one after it; the segment is cut back to its last whole record, or closed
 *     to further records; likewise a segment's error when none can be opened;
 *   CP_ERR_NOMEM, written: the index cannot take it (then it is not found, nor is the
 *     record it replaces).
 * Caller holds write_lock. */
static void append_records(struct store *s, struct rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r[i].err = CP_OK;
        r[i].written = false;
    }
    size_t i = 0;
    while (i < n) {
        /* Read again for each run: a clear may come between two. */
        pthread_mutex_lock(&s->lock);
        sync_gen_locked(s);
        uint64_t epoch = s->epoch;
        uint64_t gen = s->index_gen;
        pthread_mutex_unlock(&s->lock);
        if (r[i].gen != gen) {
            r[i++].err = CP_ERR_STALE_GEN;
            continue;
        }
        if (s->wfd >= 0 && (s->wepoch != epoch || !fits_at(s, s->wsize, r[i].len)))
            close_current(s);
        cp_err err = s->wfd < 0 ? open_segment(s) : CP_OK;
        bool failed = err != CP_OK;
        /* The run: record i and those after it that fit in the segment behind it. */
        struct iovec iov[APPEND_IOV];
        int cnt = 0;
        uint64_t total = 0;
        size_t end = i;
        while (!failed && end < n && r[end].gen == gen && cnt + r[end].cnt <= APPEND_IOV &&
               (end == i || fits_at(s, s->wsize + total, r[end].len))) {
            for (int k = 0; k < r[end].cnt; k++)
                iov[cnt++] = r[end].iov[k];
            total += r[end].len;
            end++;
        }
        if (!failed && write_all(s->wfd, iov, cnt) != 0) {
            char name[SEG_NAME_LEN + 1];
            seg_name(s->wseq, name);
            log_warn("cannot write to cache segment %s/%s: %s", s->dir, name, strerror(errno));
            /* What was written of the run would read as a damaged tail. */
            if (ftruncate(s->wfd, (off_t)s->wsize) != 0 ||
                lseek(s->wfd, (off_t)s->wsize, SEEK_SET) != (off_t)s->wsize)
                close_current(s);
            failed = true;
            err = CP_ERR_IO;
        }
        if (failed) {
            for (; i < n; i++)
                r[i].err = r[i].gen != gen ? CP_ERR_STALE_GEN : err;
            return;
        }
        uint64_t off = s->wsize;
        s->wsize += total;
        pthread_mutex_lock(&s->lock);
        sync_gen_locked(s);
        /* Else the segment went with a clear (which also changes the epoch): nothing of
         * it is counted or indexed, and its records are of the old generation. */
        bool counted = s->wepoch == s->epoch && s->index_gen == gen;
        for (size_t k = s->segs.n; counted && k-- > 0;) {
            if (s->segs.v[k].seq == s->wseq) {
                s->segs.v[k].size += total;
                s->bytes += total;
                break;
            }
        }
        for (; i < end; i++) {
            r[i].written = true;
            if (counted && r[i].h != NULL &&
                (r[i].err = recindex_put(&s->ix, r[i].h, s->wseq, (uint32_t)off,
                                         (uint32_t)r[i].len)) != CP_OK) {
                recindex_delete(&s->ix, r[i].h); /* better not found than an older record */
                note_removed_locked(s, r[i].h, false); /* nor through a load's index */
                index_gap_locked(s);        /* a removal must now be written to disk */
            }
            off += r[i].len;
        }
        if (counted)
            trim_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
}

static void pending_free(struct pending *p)
{
    free(p->key);
    free(p->vary);
}

/* Encodes the removal record of key/vary (`all`: of every variant of key) made in
 * `gen`. */
static cp_err encode_removal(const char *key, const char *vary, bool all, uint64_t gen,
                             unsigned char **rec, size_t *len)
{
    if (all)
        return diskfmt_encode_removal_all(key, gen, rec, len);
    return diskfmt_encode_removal(key, vary, gen, rec, len);
}

/* Appends the removal record of key/vary (`all`: of every variant of key) made in
 * `gen`. Caller holds write_lock. */
static cp_err append_removal(struct store *s, const char *key, const char *vary, bool all,
                             uint64_t gen)
{
    unsigned char *rec;
    size_t len;
    cp_err err = encode_removal(key, vary, all, gen, &rec, &len);
    if (err != CP_OK)
        return err;
    struct rec r = {.iov = {{rec, len}}, .cnt = 1, .len = len, .gen = gen};
    append_records(s, &r, 1);
    free(rec);
    return r.err;
}

/* Appends the pending removals, oldest first, until one fails: it and those after it
 * stay pending. Those of an older generation are dropped (a clear removed what they
 * were about). Returns what the failed one got. Caller holds write_lock. */
static cp_err flush_pending(struct store *s)
{
    size_t done = 0;
    cp_err err = CP_OK;
    while (done < s->npend) {
        struct pending *p = &s->pend[done];
        err = append_removal(s, p->key, p->vary, p->all, p->gen);
        if (err != CP_OK && err != CP_ERR_STALE_GEN)
            break;
        err = CP_OK;
        pending_free(p);
        done++;
    }
    memmove(s->pend, s->pend + done, (s->npend - done) * sizeof *s->pend);
    s->npend -= done;
    return err;
}

/* Keeps the removal of key/vary (hash h; `all`: of every variant of key) for
 * flush_pending. Returns false if it cannot be kept (the list is full, or no memory).
 * Caller holds write_lock. */
static bool pending_add(struct store *s, const char *key, const char *vary, bool all,
                        const struct diskfmt_hash *h, uint64_t gen)
{
    /* Only an identical removal may stand for this one: a later one is placed after
     * records that this one must not remove. Nothing is appended while any waits, so
     * the one kept already is as late as this one. */
    for (size_t i = 0; i < s->npend; i++)
        if (s->pend[i].h.lo == h->lo && s->pend[i].h.hi == h->hi && s->pend[i].gen == gen &&
            s->pend[i].all == all)
            return true; /* one removal record does for both */
    if (s->npend == PENDING_MAX)
        return false;
    if (s->npend == s->cappend) {
        size_t cap = s->cappend != 0 ? s->cappend * 2 : 16;
        struct pending *v = realloc(s->pend, cap * sizeof *v);
        if (v == NULL)
            return false;
        s->pend = v;
        s->cappend = cap;
    }
    struct pending p = {strdup(key), strdup(vary), gen, *h, all};
    if (p.key == NULL || p.vary == NULL) {
        pending_free(&p);
        return false;
    }
    s->pend[s->npend++] = p;
    return true;
}

/* Appends the records r[0..n) as append_records does, but only once every pending
 * removal is on disk: a record must never land before a removal that was asked for
 * earlier (it would remove that record at the next load). When they cannot all be
 * written, every record gets that error, not written. Caller holds write_lock. */
static void append_in_order(struct store *s, struct rec *r, size_t n)
{
    cp_err err = s->npend > 0 ? flush_pending(s) : CP_OK;
    if (err == CP_OK) {
        append_records(s, r, n);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        r[k].err = err;
        r[k].written = false;
    }
}

/* index_gap_locked, taking the lock. */
static void index_gap(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    index_gap_locked(s);
    pthread_mutex_unlock(&s->lock);
}

/* Forgets the record of `h` (`all`: every record of the key, whose vary is then "")
 * and, if one may be on disk, appends a removal record, or keeps it pending when it
 * cannot be appended. Caller holds write_lock. */
static void remove_locked(struct store *s, const char *key, const char *vary, bool all,
                          const struct diskfmt_hash *h)
{
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    bool known = all ? recindex_delete_lo(&s->ix, h->lo) > 0 : recindex_delete(&s->ix, h);
    bool needed = known || !s->ix_complete || s->loading;
    note_removed_locked(s, h, all); /* the load's index may know the key */
    uint64_t gen = s->index_gen;
    pthread_mutex_unlock(&s->lock);
    if (!needed)
        return;
    unsigned char *rec;
    size_t len;
    cp_err err = encode_removal(key, vary, all, gen, &rec, &len);
    if (err == CP_OK) {
        struct rec r = {.iov = {{rec, len}}, .cnt = 1, .len = len, .gen = gen};
        append_in_order(s, &r, 1);
        err = r.err;
        free(rec);
    }
    if (err == CP_OK || err == CP_ERR_STALE_GEN) /* stale: a clear removed it already */
        return;
    if (err != CP_ERR_IO) /* I/O errors are logged with the path */
        log_warn("cannot record the removal of cache entry %s: %s", key, cp_strerror(err));
    if (pending_add(s, key, vary, all, h, gen))
        return;
    /* The index has forgotten the key, so it is not served in this run; a later removal
     * of it must still go to disk. */
    index_gap(s);
    log_error("cannot record the removal of cache entry %s: it may come back after a restart",
              key);
}

/* One entry of a batch store_write_many writes. */
struct wentry {
    const char *key, *vary;
    struct diskfmt_hash h;
    unsigned char *head;   /* its encoded head, then the body after it */
    cp_err err;
    bool ready;            /* passed the checks, its record waits to be appended */
};

/* An entry that was not written: the disk keeps the record it replaces, which must not
 * be served, here or after a restart. The index stops counting as complete, so that a
 * later removal of the key goes to disk even if this one is lost. Caller holds
 * write_lock. */
static void unwritten(struct store *s, const struct wentry *w)
{
    remove_locked(s, w->key, w->vary, false, &w->h);
    index_gap(s);
}

/* Appends the records of the ready entries among wv[from..to) (their recs in rv), after
 * any pending removals, and deals with those not written. `run` has room for to-from
 * records. Caller holds write_lock. */
static void append_ready(struct store *s, struct wentry *wv, const struct rec *rv,
                         struct rec *run, size_t from, size_t to)
{
    size_t m = 0;
    for (size_t i = from; i < to; i++)
        if (wv[i].ready)
            run[m++] = rv[i];
    if (m == 0)
        return;
    append_in_order(s, run, m);
    size_t k = 0;
    for (size_t i = from; i < to; i++) {
        if (!wv[i].ready)
            continue;
        wv[i].ready = false;
        wv[i].err = run[k].err;
        if (run[k].err != CP_OK && run[k].err != CP_ERR_STALE_GEN && !run[k].written)
            unwritten(s, &wv[i]);
        k++;
    }
}

cp_err store_write_many(struct store *s, const struct entry *const *ev, size_t n,
                        cp_err *errs)
{
    struct wentry one_w;
    struct rec one_r[2];
    struct wentry *wv = n == 1 ? &one_w : calloc(n, sizeof *wv);
    struct rec *rv = n == 1 ? one_r : calloc(2 * n, sizeof *rv); /* recs, then a run */
    if (wv == NULL || rv == NULL) {
        if (n != 1) {
            free(wv);
            free(rv);
        }
        /* One at a time, then: nothing is lost but the batching. */
        cp_err first = CP_OK;
        for (size_t i = 0; i < n; i++) {
            cp_err err = store_write_many(s, &ev[i], 1, errs != NULL ? &errs[i] : NULL);
            if (first == CP_OK)
                first = err;
        }
        return first;
    }
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = ev[i];
        struct wentry *w = &wv[i];
        w->key = e->key != NULL ? e->key : "";
        w->vary = e->vary_key != NULL ? e->vary_key : "";
        w->h = diskfmt_key_hash(w->key, strlen(w->key), w->vary, strlen(w->vary));
        w->head = NULL;
        w->ready = false;
        size_t head_len = 0;
        w->err = diskfmt_encode_head(e, &w->head, &head_len);
        rv[i] = (struct rec){.iov = {{w->head, head_len}, {e->body, e->body_len}},
                             .cnt = e->body_len > 0 ? 2 : 1,
                             .len = (uint64_t)head_len + e->body_len,
                             .h = &w->h,
                             .gen = e->generation};
    }
    pthread_mutex_lock(&s->write_lock);
    size_t from = 0; /* entries before it are appended or dealt with */
    for (size_t i = 0; i < n; i++) {
        struct wentry *w = &wv[i];
        uint64_t len = rv[i].len;
        if (ev[i]->generation != atomic_load(s->gen)) {
            w->err = CP_ERR_STALE_GEN; /* it would only be skipped at the next load */
            continue;
        }
        if (w->err == CP_OK && !(s->max_bytes != 0 && len > s->max_bytes) &&
            len <= UINT32_MAX) {
            w->ready = true;
            continue;
        }
        /* What happens to this entry on disk comes after what comes before it. */
        append_ready(s, wv, rv, rv + n, from, i);
        from = i + 1;
        if (w->err == CP_ERR_TOO_LARGE) {
            log_warn("cannot write cache entry %s: a field does not fit the format", w->key);
            remove_locked(s, w->key, w->vary, false, &w->h); /* the disk's is outdated */
        } else if (w->err == CP_OK) {
            log_debug("not writing cache entry %s: %" PRIu64 " bytes, more than the %" PRIu64
                      " allowed", w->key, len, s->max_bytes);
            remove_locked(s, w->key, w->vary, false, &w->h);
            w->err = CP_ERR_TOO_LARGE;
        } else {
            unwritten(s, w);
        }
    }
    append_ready(s, wv, rv, rv + n, from, n);
    pthread_mutex_unlock(&s->write_lock);
    cp_err first = CP_OK;
    for (size_t i = 0; i < n; i++) {
        free(wv[i].head);
        if (errs != NULL)
            errs[i] = wv[i].err;
        if (first == CP_OK)
            first = wv[i].err;
    }
    if (n != 1) {
        free(wv);
        free(rv);
    }
    return first;
}

cp_err store_write(struct store *s, const struct entry *e)
{
    return store_write_many(s, &e, 1, NULL);
}

void store_remove(struct store *s, const char *key, const char *vary_key)
{
    struct diskfmt_hash h = diskfmt_key_hash(key, strlen(key), vary_key, strlen(vary_key));
    pthread_mutex_lock(&s->write_lock);
    remove_locked(s, key, vary_key, false, &h);
    pthread_mutex_unlock(&s->write_lock);
}

void store_remove_all(struct store *s, const char *key)
{
    struct diskfmt_hash h = diskfmt_key_hash(key, strlen(key), "", 0);
    pthread_mutex_lock(&s->write_lock);
    remove_locked(s, key, "", true, &h);
    pthread_mutex_unlock(&s->write_lock);
}

void store_load_stop(struct store *s)
{
    atomic_store(&s->load_stop, true);
}

/* ---- reading --------------------------------------------------------------------- */

/* Checks a decoded record against what the index said it is. */
static cp_err check_record(const struct entry *e, const struct diskfmt_hash *h, uint64_t gen)
{
    struct diskfmt_hash got =
        diskfmt_key_hash(e->key, strlen(e->key), e->vary_key, strlen(e->vary_key));
    if (got.lo != h->lo || got.hi != h->hi)
        return CP_ERR_KEY_MISMATCH;
    return e->generation == gen ? CP_OK : CP_ERR_STALE_GEN;
}

/* Forgets the record at (seq, off) for `h` if the index still points there. */
static void forget_record(struct store *s, const struct diskfmt_hash *h, uint64_t seq,
                          uint32_t off)
{
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    struct recindex_slot *sl = recindex_find(&s->ix, h);
    if (sl != NULL && sl->seq == seq && sl->off == off)
        recindex_delete_at(&s->ix, sl);
    pthread_mutex_unlock(&s->lock);
}

static void warn_record(const struct store *s, uint64_t seq, uint64_t off, cp_err err)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(seq, name);
    log_warn("ignoring the damaged record at byte %" PRIu64 " of cache segment %s/%s: %s", off,
             s->dir, name, cp_strerror(err));
}

/* Logs that segment `seq` could not be opened or read, with the system's reason. */
static void warn_unreadable(const struct store *s, uint64_t seq, int errnum)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(seq, name);
    log_warn("cannot read cache segment %s/%s: %s", s->dir, name, strerror(errnum));
}

/* Opens segment `seq` of store `arg` for reading (a segfds_open_fn; the load's too):
 * a descriptor, or -1 with errno set. */
static int open_for_reading(void *arg, uint64_t seq)
{
    const struct store *s = arg;
    char name[SEG_NAME_LEN + 1];
    seg_name(seq, name);
    return openat(s->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* Reads the record of `slot` (a copy of its index slot, taken in index generation `gen`)
 * whole and checks it; the rest as store_read. */
static cp_err read_record(struct store *s, const struct recindex_slot *slot, uint64_t gen,
                          struct entry **out)
{
    *out = NULL;
    const struct diskfmt_hash h = {slot->lo, slot->hi};
    const struct recindex_slot at = *slot;
    struct segfd_use use;
    if (!segfds_get(&s->rfds, at.seq, open_for_reading, s, &use)) {
        int saved = errno;
        if (saved != ENOENT) {
            warn_unreadable(s, at.seq, saved);
            return saved == ENOMEM ? CP_ERR_NOMEM : CP_ERR_IO;
        }
        forget_record(s, &h, at.seq, at.off); /* the segment is gone */
        return CP_ERR_NOT_FOUND;
    }
    unsigned char *buf = malloc(at.len);
    if (buf == NULL) {
        segfds_put(&s->rfds, &use);
        return CP_ERR_NOMEM;
    }
    ssize_t got = segscan_pread(use.fd, buf, at.len, at.off);
    int saved = errno;
    segfds_put(&s->rfds, &use);
    cp_err err;
    struct entry *e = NULL;
    if (got < 0) {
        warn_unreadable(s, at.seq, saved);
        err = CP_ERR_IO;
    } else if ((size_t)got < at.len) {
        err = CP_ERR_CORRUPT;
    } else if ((err = diskfmt_decode(buf, at.len, &e)) == CP_OK &&
               (err = check_record(e, &h, gen)) == CP_OK) {
        *out = e;
        e = NULL;
    }
    free(buf);
    entry_unref(e);
    if (err != CP_OK && err != CP_ERR_IO && err != CP_ERR_NOMEM) {
        warn_record(s, at.seq, at.off, err);
        forget_record(s, &h, at.seq, at.off);
    }
    return err;
}

/* Takes `lock` for a look at the index, in the generation in force: waiting for it if
 * `wait`, else false at once when it is busy (the writer may hold it for a while). */
static bool lock_for_reading(struct store *s, bool wait)
{
    if (wait)
        pthread_mutex_lock(&s->lock);
    else if (pthread_mutex_trylock(&s->lock) != 0)
        return false;
    sync_gen_locked(s);
    return true;
}

cp_err store_read_within(struct store *s, const char *key, const char *vary_key,
                         size_t max_len, bool wait, size_t *len_left, struct entry **out)
{
    *out = NULL;
    if (len_left != NULL)
        *len_left = 0;
    struct diskfmt_hash h = diskfmt_key_hash(key, strlen(key), vary_key, strlen(vary_key));
    if (!lock_for_reading(s, wait))
        return CP_ERR_NOT_FOUND;
    struct recindex_slot *sl = recindex_find(&s->ix, &h);
    struct recindex_slot at = sl != NULL ? *sl : (struct recindex_slot){0};
    uint64_t gen = s->index_gen;
    pthread_mutex_unlock(&s->lock);
    if (sl == NULL)
        return CP_ERR_NOT_FOUND;
    if (at.len > max_len) {
        if (len_left != NULL)
            *len_left = at.len;
        return CP_ERR_TOO_LARGE;
    }
    return read_record(s, &at, gen, out);
}

cp_err store_read(struct store *s, const char *key, const char *vary_key, struct entry **out)
{
    return store_read_within(s, key, vary_key, SIZE_MAX, true, NULL, out);
}

size_t store_read_variants(struct store *s, const char *key, size_t max_len, bool wait,
                           size_t *shortest_left, struct entry **out, size_t max)
{
    struct recindex_slot at[STORE_MAX_VARIANTS];
    if (shortest_left != NULL)
        *shortest_left = 0;
    if (max > STORE_MAX_VARIANTS)
        max = STORE_MAX_VARIANTS;
    struct diskfmt_hash h = diskfmt_key_hash(key, strlen(key), "", 0);
    if (!lock_for_reading(s, wait))
        return 0;
    size_t found = recindex_find_lo(&s->ix, h.lo, at, max);
    uint64_t gen = s->index_gen;
    pthread_mutex_unlock(&s->lock);
    size_t n = 0;
    for (size_t i = 0; i < found; i++) {
        struct entry *e;
        if (at[i].len > max_len) {
            if (shortest_left != NULL && (*shortest_left == 0 || at[i].len < *shortest_left))
                *shortest_left = at[i].len;
            continue;
        }
        if (read_record(s, &at[i], gen, &e) != CP_OK)
            continue;
        if (strcmp(e->key, key) == 0) /* `lo` is only a hash of it */
            out[n++] = e;
        else
            entry_unref(e);
    }
    return n;
}

/* ---- loading --------------------------------------------------------------------- */

/* A segment as the load found it. */
struct load_seg {
    uint64_t seq;
    uint64_t size;  /* after any damaged tail is cut */
    bool gone;      /* vanished or removed: not in the store's list */
    bool unread;    /* could not be read to its end: what it holds is unknown */
};

/* An entry record seen by phase 1, for phase 2: live if the index still points at it. */
struct load_rec {
    struct diskfmt_hash h;
    uint32_t seg;   /* in load.segs */
    uint32_t off, len;
};

struct load {
    struct store *s;
    uint64_t gen;
    uint64_t snap_seq;      /* segments from here on were started after the snapshot */
    struct load_seg *segs;
    size_t nsegs, capsegs;
    struct load_rec *recs;
    size_t nrecs, caprecs;
    struct recindex ix;     /* built by phase 1, then the store's */
    uint32_t cur;           /* segment being scanned */
    uint64_t unread_cut;    /* records of segments before this one are left out */
    size_t removed;
};

static int load_seg_by_seq(const void *a, const void *b)
{
    const struct load_seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static cp_err load_visit(void *arg, const struct segscan_rec *r)
{
    struct load *l = arg;
    if (r->ref.generation != l->gen)
        return CP_OK; /* garbage from before a clear */
    if (r->ref.kind == DISKFMT_REMOVAL) {
        recindex_delete(&l->ix, &r->h);
        return CP_OK;
    }
    if (r->ref.kind == DISKFMT_REMOVAL_ALL) { /* every variant seen so far */
        recindex_delete_lo(&l->ix, r->h.lo);
        return CP_OK;
    }
    if (r->off > UINT32_MAX || r->len > UINT32_MAX)
        return CP_OK; /* never written so: not indexable */
    if (l->nrecs == l->caprecs) {
        size_t cap = l->caprecs != 0 ? l->caprecs * 2 : 1024;
        struct load_rec *v = realloc(l->recs, cap * sizeof *v);
        if (v == NULL)
            return CP_ERR_NOMEM;
        l->recs = v;
        l->caprecs = cap;
    }
    if (recindex_put(&l->ix, &r->h, l->segs[l->cur].seq, (uint32_t)r->off,
                     (uint32_t)r->len) != CP_OK)
        return CP_ERR_NOMEM;
    l->recs[l->nrecs++] = (struct load_rec){r->h, l->cur, (uint32_t)r->off, (uint32_t)r->len};
    return CP_OK;
}

/* Removes old-format files and .cps files that are no segment. Returns CP_ERR_IO if
 * the directory cannot be read. */
static cp_err load_cleanup(struct load *l)
{
    struct store *s = l->s;
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        log_warn("cannot read cache directory %s: %s", s->dir, strerror(errno));
        return CP_ERR_IO;
    }
    size_t old = 0;
    struct dirent *de;
    /* Unlinking the entry just returned by readdir is allowed by POSIX and does not
     * make readdir skip or repeat other entries. */
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st;
        uint64_t seq;
        if (parse_seg_name(name, &seq) ||
            !(is_old_format(name) || has_suffix(name, SEG_SUFFIX)) ||
            !is_regular(s->dfd, name, &st))
            continue;
        if (unlinkat(s->dfd, name, 0) != 0) {
            log_warn("cannot remove cache file %s/%s: %s", s->dir, name, strerror(errno));
            continue;
        }
        l->removed++;
        if (is_old_format(name))
            old++;
        else
            log_warn("ignoring cache file %s/%s: not a segment; removed", s->dir, name);
    }
    closedir(d);
    /* One line, not one per file: a cache of the older format may hold millions. */
    if (old > 0)
        log_warn("ignoring %zu cache file%s of an older format in %s; removed", old,
                 old == 1 ? "" : "s", s->dir);
    return CP_OK;
}

/* Lists the segments into l->segs, sorted, and sets l->snap_seq past all of them.
 * Caller holds write_lock, so that no segment is started meanwhile. */
static cp_err load_list(struct load *l)
{
    struct store *s = l->s;
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        log_warn("cannot read cache directory %s: %s", s->dir, strerror(errno));
        return CP_ERR_IO;
    }
    struct dirent *de;
    cp_err err = CP_OK;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st;
        uint64_t seq;
        if (!parse_seg_name(name, &seq))
            continue;
        bool unread = false;
        if (fstatat(s->dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) /* deleted meanwhile */
                continue;
            log_warn("cannot read cache segment %s/%s: %s", s->dir, name, strerror(errno));
            unread = true;
            st.st_size = 0; /* unknown */
        } else if (!S_ISREG(st.st_mode)) {
            continue;
        }
        if (l->nsegs == l->capsegs) {
            size_t cap = l->capsegs != 0 ? l->capsegs * 2 : 64;
            struct load_seg *v = realloc(l->segs, cap * sizeof *v);
            if (v == NULL) {
                err = CP_ERR_NOMEM;
                break;
            }
            l->segs = v;
            l->capsegs = cap;
        }
        l->segs[l->nsegs++] = (struct load_seg){seq, (uint64_t)st.st_size, false, unread};
        if (seq >= l->snap_seq)
            l->snap_seq = seq + 1;
    }
    closedir(d);
    if (err != CP_OK)
        return err;
    if (l->nsegs > 1)
        qsort(l->segs, l->nsegs, sizeof *l->segs, load_seg_by_seq);
    if (l->nsegs > UINT32_MAX)
        return CP_ERR_NOMEM; /* the records name their segment in 32 bits */
    return CP_OK;
}

/* Notes that `sg` could not be read to its end: it stays listed (with its size as
 * listed or read), and its records and those of older segments are left out. */
static void load_unread(struct load *l, struct load_seg *sg, const char *what)
{
    log_warn("cannot read cache segment %s: %s; it and older segments are left out of the "
             "index until the next start", what, strerror(errno));
    sg->unread = true;
    if (sg->seq >= l->unread_cut)
        l->unread_cut = sg->seq + 1;
}

/* Phase 1 on one segment: its records into the load's index, its damage cut off. */
static cp_err load_scan_one(struct load *l, struct segscan_reader *rd)
{
    struct store *s = l->s;
    struct load_seg *sg = &l->segs[l->cur];
    char name[SEG_NAME_LEN + 1], what[PATH_MAX];
    seg_name(sg->seq, name);
    if (sg->unread) { /* its listing failed, logged then */
        if (sg->seq >= l->unread_cut)
            l->unread_cut = sg->seq + 1;
        return CP_OK;
    }
    snprintf(what, sizeof what, "%s/%s", s->dir, name);
    /* Writable, to cut a damaged tail; a read-only file is still read. */
    int fd = openat(s->dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        fd = openat(s->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (errno == ENOENT) /* deleted meanwhile */
            sg->gone = true;
        else
            load_unread(l, sg, what);
        if (fd >= 0)
            close(fd);
        return CP_OK;
    }
    sg->size = (uint64_t)st.st_size;
    segscan_reader_use(rd, fd);
    struct segscan_end end;
    cp_err err = segscan_each(rd, sg->size, what, load_visit, l, &end);
    l->removed += end.skipped;
    if (err == CP_ERR_IO) {
        /* What was read may be outdated by what was not; the rest stays for the next
         * start. */
        load_unread(l, sg, what);
        err = CP_OK;
    } else if (err == CP_OK && end.damage != CP_OK) {
        l->removed++;
        if (end.whole == 0) {
            log_warn("ignoring cache segment %s: %s; removed", what, cp_strerror(end.damage));
            if (unlinkat(s->dfd, name, 0) != 0)
                log_warn("cannot remove cache segment %s: %s", what, strerror(errno));
            segfds_forget(&s->rfds, sg->seq);
            sg->gone = true;
        } else {
            log_warn("ignoring cache segment %s from byte %" PRIu64 " on: %s; cut there", what,
                     end.whole, cp_strerror(end.damage));
            if (ftruncate(fd, (off_t)end.whole) == 0)
                sg->size = end.whole;
            else
                log_warn("cannot cut cache segment %s: %s", what, strerror(errno));
        }
    } else if (err == CP_OK && sg->size == 0 && unlinkat(s->dfd, name, 0) == 0) {
        sg->gone = true; /* a segment whose first write failed */
    }
    close(fd);
    segscan_reader_use(rd, -1);
    return err;
}

/* Makes the load's segments the store's list and, if `use_index` and nothing voided it,
 * the load's index the store's, with what was written and removed since the snapshot
 * applied on top. Without the index nothing is handed over, and the store's index stays
 * what it was (what was written since the store was opened). */
static cp_err load_merge(struct load *l, bool use_index)
{
    struct store *s = l->s;
    struct seg_list segs = {0};
    cp_err err = CP_OK;
    pthread_mutex_lock(&s->lock);
    sync_gen_locked(s);
    if (s->index_gen != l->gen) { /* cleared meanwhile: all of it is gone */
        l->nrecs = 0;
        goto out;
    }
    if (s->load_void)
        err = CP_ERR_NOMEM;
    use_index = use_index && !s->load_void;
    if (!use_index)
        l->nrecs = 0; /* nothing of it is handed over */
    if (use_index) {
        if ((err = recindex_reserve(&l->ix, l->ix.n + s->ix.n)) != CP_OK)
            goto out;
        recindex_drop_below(&l->ix, l->unread_cut);
        /* Every removal since the snapshot is newer than every record of l->ix. */
        for (size_t i = 0; i < s->load_removed.n; i++) {
            const struct removed *rm = &s->load_removed.v[i];
            if (rm->all)
                recindex_delete_lo(&l->ix, rm->h.lo);
            else
                recindex_delete(&l->ix, &rm->h);
        }
        for (size_t i = 0; i < s->ix.cap; i++) {
            const struct recindex_slot *sl = &s->ix.v[i];
            if (sl->len != 0 && sl->seq >= l->snap_seq &&
                recindex_put(&l->ix, &(struct diskfmt_hash){sl->lo, sl->hi}, sl->seq, sl->off,
                             sl->len) != CP_OK) {
                err = CP_ERR_NOMEM; /* cannot happen: reserved */
                goto out;
            }
        }
        recindex_drop_below(&l->ix, s->trim_cut);
    }
    cp_err list_err = CP_OK;
    for (size_t i = 0; i < l->nsegs && list_err == CP_OK; i++)
        if (!l->segs[i].gone && l->segs[i].seq >= s->trim_cut)
            list_err = segs_add(&segs, l->segs[i].seq, l->segs[i].size);
    for (size_t i = 0; i < s->segs.n && list_err == CP_OK; i++)
        if (s->segs.v[i].seq >= l->snap_seq)
            list_err = segs_add(&segs, s->segs.v[i].seq, s->segs.v[i].size);
    if (list_err != CP_OK) {
        err = list_err;
        l->nrecs = 0;
        goto out;
    }
    if (use_index) {
        recindex_free(&s->ix);
        s->ix = l->ix;
        l->ix = (struct recindex){0};
        s->ix_complete = l->unread_cut == 0 && !s->ix_gap;
    }
    free(s->segs.v);
    s->segs = segs;
    segs = (struct seg_list){0};
    s->bytes = 0;
    for (size_t i = 0; i < s->segs.n; i++)
        s->bytes += s->segs.v[i].size;
out:
    free(segs.v);
    s->loading = false;
    s->load_void = false;
    free(s->load_removed.v);
    s->load_removed = (struct removed_list){0};
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* Phase 2: the live records whole, oldest first, to `cb`. */
static void load_hand_over(struct load *l, bool (*cb)(void *, struct entry *), void *arg,
                           size_t *loaded)
{
    struct store *s = l->s;
    struct segscan_reader rd = {.fd = -1};
    uint32_t open_seg = UINT32_MAX;
    bool seg_ok = false;
    for (size_t i = 0; i < l->nrecs; i++) {
        const struct load_rec *r = &l->recs[i];
        const struct load_seg *sg = &l->segs[r->seg];
        if (atomic_load(s->gen) != l->gen)
            break; /* cleared meanwhile: all of it is gone */
        if (atomic_load(&s->load_stop))
            break; /* as when cb returns false */
        pthread_mutex_lock(&s->lock);
        const struct recindex_slot *sl = recindex_find(&s->ix, &r->h);
        bool live = sl != NULL && sl->seq == sg->seq && sl->off == r->off;
        pthread_mutex_unlock(&s->lock);
        if (!live)
            continue;
        if (r->seg != open_seg) {
            if (rd.fd >= 0)
                close(rd.fd);
            int fd = open_for_reading(s, sg->seq);
            int saved = errno;
            segscan_reader_use(&rd, fd);
            open_seg = r->seg;
            seg_ok = fd >= 0;
            if (!seg_ok && saved != ENOENT) /* ENOENT: deleted by the bound meanwhile */
                warn_unreadable(s, sg->seq, saved);
        }
        if (!seg_ok)
            continue;
        cp_err err;
        struct entry *e = NULL;
        const unsigned char *p = segscan_get(&rd, r->off, r->len, &err);
        if (p != NULL && (err = diskfmt_decode(p, r->len, &e)) == CP_OK)
            err = check_record(e, &r->h, l->gen);
        segscan_shrink(&rd);
        if (err == CP_ERR_IO || err == CP_ERR_NOMEM) {
            /* Nothing known wrong with the record: it stays for the next start. */
            log_seg(LOG_LVL_WARN, s, sg->seq, "cannot load a record of cache segment", err);
            entry_unref(e);
            continue;
        }
        if (err != CP_OK) {
            warn_record(s, sg->seq, r->off, err);
            entry_unref(e);
            l->removed++;
            forget_record(s, &r->h, sg->seq, r->off);
            continue;
        }
        ++*loaded;
        if (!cb(arg, e))
            break; /* asked to stop: the rest stays on disk, findable */
    }
    if (rd.fd >= 0)
        close(rd.fd);
    segscan_reader_free(&rd);
}

cp_err store_load(struct store *s, bool (*cb)(void *arg, struct entry *e), void *arg,
                  size_t *loaded, size_t *removed)
{
    size_t n_loaded = 0;
    if (loaded != NULL)
        *loaded = 0;
    if (removed != NULL)
        *removed = 0;
    if (atomic_load(&s->load_stop))
        return CP_ERR_SHUTDOWN;
    struct load l = {.s = s};

    cp_err err = load_cleanup(&l);
    if (err != CP_OK)
        return err;
    /* The snapshot: the segments there are now are scanned; records written from here
     * on go to new segments, and removals are noted for the merge. So the scan reads
     * only segments nobody appends to. */
    pthread_mutex_lock(&s->write_lock);
    err = load_list(&l);
    if (err == CP_OK) {
        pthread_mutex_lock(&s->lock);
        sync_gen_locked(s);
        l.gen = s->index_gen;
        s->epoch++;
        if (l.snap_seq < s->next_seq)
            l.snap_seq = s->next_seq;
        s->next_seq = l.snap_seq;
        s->loading = true;
        s->load_void = false;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&s->write_lock);
    if (err != CP_OK) {
        if (err == CP_ERR_NOMEM)
            log_warn("cannot load cache directory %s: %s", s->dir, cp_strerror(err));
        free(l.segs);
        if (removed != NULL)
            *removed = l.removed;
        return err;
    }

    struct segscan_reader rd = {.fd = -1};
    for (size_t i = 0; i < l.nsegs && err == CP_OK; i++) {
        if (atomic_load(&s->load_stop)) {
            err = CP_ERR_SHUTDOWN;
            break;
        }
        l.cur = (uint32_t)i;
        err = load_scan_one(&l, &rd);
    }
    segscan_reader_free(&rd);
    if (err == CP_ERR_NOMEM)
        log_warn("cannot load cache directory %s: %s", s->dir, cp_strerror(err));
    /* The segments found are the store's even when their index is not. */
    cp_err merged = load_merge(&l, err == CP_OK);
    if (err == CP_OK && merged != CP_OK) {
        log_warn("cannot load cache directory %s: %s", s->dir, cp_strerror(merged));
        err = merged;
    }
    if (err == CP_OK)
        load_hand_over(&l, cb, arg, &n_loaded);
    recindex_free(&l.ix);
    free(l.recs);
    free(l.segs);
    if (loaded != NULL)
        *loaded = n_loaded;
    if (removed != NULL)
        *removed = l.removed;
    return err;
}

/* ---- clearing -------------------------------------------------------------------- */

/* Counts the live entries of one generation across segments, as a load would. */
struct counter {
    uint64_t gen;
    struct recindex ix;
};

static cp_err count_visit(void *arg, const struct segscan_rec *r)
{
    struct counter *c = arg;
    if (r->ref.generation != c->gen)
        return CP_OK;
    if (r->ref.kind == DISKFMT_REMOVAL) {
        recindex_delete(&c->ix, &r->h);
        return CP_OK;
    }
    if (r->ref.kind == DISKFMT_REMOVAL_ALL) {
        recindex_delete_lo(&c->ix, r->h.lo);
        return CP_OK;
    }
    return recindex_put(&c->ix, &r->h, 0, 0, 1);
}

cp_err store_clear(const char *dir, size_t *entries, uint64_t *bytes)
{
    *entries = 0;
    *bytes = 0;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return CP_OK;
        return CP_ERR_CACHE_DIR;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return CP_ERR_CACHE_DIR;
    }

    /* The segments to remove are listed before the generation goes up: a running
     * server that sees the new generation starts a segment of its own for what it
     * stores from then on, which must survive the clear. */
    cp_err err = CP_OK;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? opendir(dir) : NULL;
    if (d == NULL) {
        log_warn("cannot read cache directory %s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return CP_ERR_IO;
    }
    struct seg_list segs = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        uint64_t seq;
        if (parse_seg_name(name, &seq)) {
            if (is_regular(dfd, name, &st) && segs_add(&segs, seq, (uint64_t)st.st_size) != CP_OK)
                err = CP_ERR_IO; /* not counted, and left: said as an error */
            continue;
        }
        if (!is_old_format(name) || !is_regular(dfd, name, &st))
            continue;
        if (unlinkat(dfd, name, 0) == 0) {
            if (has_suffix(name, OLD_SUFFIX))
                (*entries)++;
            *bytes += (uint64_t)st.st_size;
        } else if (errno != ENOENT) {
            log_warn("cannot remove cache file %s/%s: %s", dir, name, strerror(errno));
            err = CP_ERR_IO;
        }
    }
    closedir(d);
    if (segs.n > 1)
        qsort(segs.v, segs.n, sizeof *segs.v, by_seq);

    /* Then the generation goes up, before anything is removed: a running server that
     * writes an entry meanwhile writes it with the old generation, and the next load
     * skips it, so nothing from before the clear comes back. */
    _Atomic uint64_t *gen;
    cp_err gerr = map_generation(dir, &gen);
    if (gerr != CP_OK) {
        free(segs.v);
        close(dfd);
        return gerr;
    }
    uint64_t old_gen = atomic_fetch_add(gen, 1);
    if (msync((void *)gen, (size_t)GEN_SIZE, MS_SYNC) != 0)
        log_warn("cannot sync %s/%s: %s", dir, GEN_FILE, strerror(errno));
    munmap((void *)gen, (size_t)GEN_SIZE);

    /* Counted before removed, oldest first, so that replaced and removed records are
     * not counted. A count that runs out of memory is a low count, not a failed clear. */
    struct counter c = {.gen = old_gen};
    struct segscan_reader rd = {.fd = -1};
    for (size_t i = 0; i < segs.n; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(segs.v[i].seq, name);
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        segscan_reader_use(&rd, fd);
        struct segscan_end end;
        segscan_each(&rd, segs.v[i].size, NULL, count_visit, &c, &end);
        close(fd);
    }
    segscan_reader_free(&rd);
    *entries += c.ix.n;
    recindex_free(&c.ix);
    for (size_t i = 0; i < segs.n; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(segs.v[i].seq, name);
        if (unlinkat(dfd, name, 0) == 0) {
            *bytes += segs.v[i].size;
        } else if (errno != ENOENT) {
            log_warn("cannot remove cache segment %s/%s: %s", dir, name, strerror(errno));
            err = CP_ERR_IO;
        }
    }
    free(segs.v);
    close(dfd);
    return err;
}
