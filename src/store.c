/* The cache directory on disk (see store.h). Layout, flat and nothing else:
 *   <dir>/generation         8-byte counter, host byte order (little-endian on every
 *                            machine we build for; the file never leaves the machine)
 *   <dir>/<name>.cpe         one entry, <name> = diskfmt_name(key, vary_key)
 *   <dir>/<name>.tmp.<pid>.<n>  an entry being written; renamed to <name>.cpe when whole
 * Entries are not fsync'ed: a file cut short by a crash fails its checksums at the next
 * load and is dropped, which costs one refetch, far less than a sync per response.
 * The byte bound works on an index kept in memory (name, size, oldest first) rather
 * than on the directory, so a write costs no directory scan. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#undef uthash_fatal
#define uthash_fatal(msg) abort() /* only on allocation failure of the bucket array */
#include <uthash.h>
#include <utlist.h>

/* The counter is shared with other processes through the mapping: only a lock-free
 * atomic is a real atomic there (a lock would live in one process only). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define GEN_FILE "generation"
#define GEN_SIZE ((off_t)sizeof(uint64_t))
#define ENTRY_SUFFIX ".cpe"
#define TMP_MARK ".tmp."

/* One entry file the store knows of. */
struct file_rec {
    char name[DISKFMT_NAME_LEN + 1]; /* without ENTRY_SUFFIX; the uthash key */
    uint64_t size;
    struct file_rec *prev, *next;    /* utlist DL, oldest first */
    UT_hash_handle hh;
};

struct file_index {
    struct file_rec *by_name; /* uthash */
    struct file_rec *oldest;  /* the same records in the order written */
    uint64_t bytes;
};

struct store {
    char *dir;
    _Atomic uint64_t *gen; /* mapping of GEN_FILE */
    atomic_ulong tmp_counter;
    long pid;              /* for temporary file names, asked once */
    uint64_t max_bytes;    /* 0: no bound */
    pthread_mutex_t lock;  /* the index and index_gen */
    struct file_index index;
    uint64_t index_gen;    /* the generation whose files the index lists */
};

static void index_free(struct file_index *ix)
{
    struct file_rec *r, *tmp;
    HASH_ITER(hh, ix->by_name, r, tmp) {
        HASH_DEL(ix->by_name, r);
        free(r);
    }
    ix->oldest = NULL;
    ix->bytes = 0;
}

/* Makes `r` (new, name set) the newest file, replacing a record of the same name. */
static void index_put(struct file_index *ix, struct file_rec *r)
{
    struct file_rec *old = NULL;
    HASH_FIND(hh, ix->by_name, r->name, DISKFMT_NAME_LEN, old);
    if (old != NULL) {
        HASH_DEL(ix->by_name, old);
        DL_DELETE(ix->oldest, old);
        ix->bytes -= old->size;
        free(old);
    }
    HASH_ADD(hh, ix->by_name, name, DISKFMT_NAME_LEN, r);
    DL_APPEND(ix->oldest, r);
    ix->bytes += r->size;
}

static void index_drop(struct file_index *ix, const char *name)
{
    struct file_rec *r = NULL;
    HASH_FIND(hh, ix->by_name, name, DISKFMT_NAME_LEN, r);
    if (r == NULL)
        return;
    HASH_DEL(ix->by_name, r);
    DL_DELETE(ix->oldest, r);
    ix->bytes -= r->size;
    free(r);
}

/* A store_clear elsewhere bumps the generation and removes every file: what the index
 * lists is gone. Files written since are all this process wrote after noticing it. */
static void index_sync_locked(struct store *s)
{
    uint64_t now = atomic_load(s->gen);
    if (now != s->index_gen) {
        index_free(&s->index);
        s->index_gen = now;
    }
}

/* Returns "<dir>/<name><suffix>" (malloc'ed) or NULL. */
static char *join_path(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
    char *p = malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%s%s", dir, name, suffix);
    return p;
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
    char *path = join_path(dir, GEN_FILE, "");
    if (path == NULL)
        return CP_ERR_NOMEM;
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
    atomic_init(&s->tmp_counter, 0);
    s->pid = (long)getpid();
    s->max_bytes = max_bytes;
    /* Creating the generation file is the real proof that the directory is writable
     * (access() does not know about read-only mounts on every system). */
    cp_err err = map_generation(dir, &s->gen);
    if (err != CP_OK) {
        free(s->dir);
        free(s);
        return err;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        munmap((void *)s->gen, (size_t)GEN_SIZE);
        free(s->dir);
        free(s);
        return CP_ERR_NOMEM;
    }
    s->index_gen = atomic_load(s->gen);
    *out = s;
    return CP_OK;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    munmap((void *)s->gen, (size_t)GEN_SIZE);
    index_free(&s->index);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

uint64_t store_bytes(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    index_sync_locked(s);
    uint64_t n = s->index.bytes;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const _Atomic uint64_t *store_generation_ptr(struct store *s)
{
    return s->gen;
}

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

/* Removes the oldest files until the bound holds, sparing `keep`. Caller holds the
 * lock. A file that cannot be removed leaves the index all the same: keeping it there
 * would make every later write try again and the bound count bytes it cannot free. */
static void trim_locked(struct store *s, const struct file_rec *keep)
{
    while (s->max_bytes != 0 && s->index.bytes > s->max_bytes && s->index.oldest != NULL &&
           s->index.oldest != keep) {
        struct file_rec *r = s->index.oldest;
        char *path = join_path(s->dir, r->name, ENTRY_SUFFIX);
        if (path == NULL) {
            log_warn("cannot make room in cache directory %s: out of memory", s->dir);
            return;
        }
        if (unlink(path) == 0)
            log_debug("removed cache file %s to stay within %llu bytes", path,
                      (unsigned long long)s->max_bytes);
        else if (errno != ENOENT)
            log_warn("cannot remove cache file %s: %s", path, strerror(errno));
        free(path);
        index_drop(&s->index, r->name);
    }
}

/* Forgets and removes the file `name` (at `path`), if any. */
static void remove_file(struct store *s, const char *name, const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("cannot remove cache file %s: %s", path, strerror(errno));
    pthread_mutex_lock(&s->lock);
    index_sync_locked(s);
    index_drop(&s->index, name);
    pthread_mutex_unlock(&s->lock);
}

cp_err store_write(struct store *s, const struct entry *e)
{
    char name[DISKFMT_NAME_LEN + 1];
    diskfmt_name(e->key != NULL ? e->key : "", e->vary_key != NULL ? e->vary_key : "", name);
    char *path = join_path(s->dir, name, ENTRY_SUFFIX);
    char suffix[64];
    snprintf(suffix, sizeof suffix, TMP_MARK "%ld.%lu", s->pid,
             atomic_fetch_add(&s->tmp_counter, 1));
    char *tmp = join_path(s->dir, name, suffix);
    unsigned char *head = NULL;
    size_t head_len = 0;
    cp_err err = CP_ERR_NOMEM;
    int fd = -1;
    if (path == NULL || tmp == NULL)
        goto out;
    err = diskfmt_encode_head(e, &head, &head_len);
    if (err == CP_ERR_TOO_LARGE) {
        log_warn("cannot write cache file %s: %s", path, cp_strerror(err));
        err = CP_ERR_IO;
    }
    if (err != CP_OK)
        goto out;
    uint64_t size = (uint64_t)head_len + e->body_len;
    if (s->max_bytes != 0 && size > s->max_bytes) {
        /* What the file holds is outdated by `e`: better no file than that one. */
        log_debug("not writing cache file %s: %llu bytes, more than the %llu allowed", path,
                  (unsigned long long)size, (unsigned long long)s->max_bytes);
        remove_file(s, name, path);
        err = CP_ERR_TOO_LARGE;
        goto out;
    }
    err = CP_ERR_NOMEM;
    struct file_rec *rec = calloc(1, sizeof *rec);
    if (rec == NULL)
        goto out; /* a file the bound does not know of is not written */
    memcpy(rec->name, name, sizeof rec->name);
    rec->size = size;

    err = CP_ERR_IO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("cannot write cache file %s: %s", tmp, strerror(errno));
        free(rec);
        goto out;
    }
    struct iovec iov[2] = {{head, head_len}, {e->body, e->body_len}};
    int failed = write_all(fd, iov, e->body_len > 0 ? 2 : 1);
    int saved = errno;
    /* close() can report a delayed write error (NFS, quota). */
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    fd = -1;
    if (failed) {
        log_warn("cannot write cache file %s: %s", tmp, strerror(saved));
        unlink(tmp);
        free(rec);
        goto out;
    }
    /* rename() replaces the old file atomically: a reader sees the old or the new one. */
    if (rename(tmp, path) != 0) {
        log_warn("cannot write cache file %s: %s", path, strerror(errno));
        unlink(tmp);
        free(rec);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    index_sync_locked(s);
    index_put(&s->index, rec);
    trim_locked(s, rec);
    pthread_mutex_unlock(&s->lock);
    err = CP_OK;
out:
    free(head);
    free(tmp);
    free(path);
    return err;
}

void store_remove(struct store *s, const char *key, const char *vary_key)
{
    char name[DISKFMT_NAME_LEN + 1];
    diskfmt_name(key, vary_key, name);
    char *path = join_path(s->dir, name, ENTRY_SUFFIX);
    if (path == NULL)
        return;
    remove_file(s, name, path);
    free(path);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

static bool is_regular(int dfd, const char *name, struct stat *st)
{
    return fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
}

/* Reads the whole regular file `name` of directory `dfd`. Sets *err to CP_ERR_IO
 * (errno kept) or CP_ERR_NOMEM on failure. */
static unsigned char *read_file(int dfd, const char *name, size_t *len, cp_err *err)
{
    *err = CP_ERR_IO;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    /* One spare byte: a file longer than fstat said is read longer than the lengths in
     * its header and fails decoding, instead of being read cut short. */
    if ((buf = malloc(size + 1)) == NULL) {
        *err = CP_ERR_NOMEM;
        goto fail;
    }
    size_t got = 0;
    while (got < size + 1) {
        ssize_t n = read(fd, buf + got, size + 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    *err = CP_OK;
    return buf;
fail:;
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}

/* Decodes one entry file and checks that it belongs in this cache now. */
static cp_err load_one(int dfd, const char *name, uint64_t gen, struct entry **out)
{
    *out = NULL;
    size_t len = 0;
    cp_err err;
    unsigned char *buf = read_file(dfd, name, &len, &err);
    if (buf == NULL)
        return err;
    struct entry *e;
    err = diskfmt_decode(buf, len, &e);
    free(buf);
    if (err != CP_OK)
        return err;
    char want[DISKFMT_NAME_LEN + 1];
    diskfmt_name(e->key, e->vary_key, want);
    /* The name is how store_write/store_remove find the file: a file under another
     * name would never be replaced or removed, and would shadow the real entry. */
    if (strlen(name) != DISKFMT_NAME_LEN + strlen(ENTRY_SUFFIX) ||
        memcmp(name, want, DISKFMT_NAME_LEN) != 0)
        err = CP_ERR_KEY_MISMATCH;
    else if (e->generation != gen)
        err = CP_ERR_STALE_GEN;
    if (err != CP_OK) {
        entry_unref(e);
        return err;
    }
    *out = e;
    return CP_OK;
}

cp_err store_read(struct store *s, const char *key, const char *vary_key, struct entry **out)
{
    char name[DISKFMT_NAME_LEN + sizeof ENTRY_SUFFIX];
    diskfmt_name(key, vary_key, name);
    strcat(name, ENTRY_SUFFIX);
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return CP_ERR_IO;
    cp_err err = load_one(dfd, name, atomic_load(s->gen), out);
    if (err == CP_ERR_IO && errno == ENOENT)
        err = CP_ERR_NOT_FOUND;
    else if (err != CP_OK && err != CP_ERR_NOMEM && unlinkat(dfd, name, 0) == 0) {
        log_warn("ignoring cache file %s/%s: %s", s->dir, name, cp_strerror(err));
        pthread_mutex_lock(&s->lock);
        index_drop(&s->index, name); /* compares the hash part of the name only */
        pthread_mutex_unlock(&s->lock);
    }
    close(dfd);
    return err;
}

/* An entry file found by store_load, before it is read. */
struct found_file {
    char *name;
    uint64_t size;
    struct timespec mtime;
};

static int by_age(const void *a, const void *b)
{
    const struct found_file *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void found_free(struct found_file *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Lists the entry files of `d` (removing leftover temporary files on the way, counted
 * in *removed), oldest first. */
static cp_err list_entry_files(DIR *d, struct found_file **out, size_t *count, size_t *removed)
{
    int dfd = dirfd(d);
    struct found_file *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    /* Unlinking the entry just returned by readdir is allowed by POSIX and does not
     * make readdir skip or repeat other entries. */
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st;
        if (strstr(name, TMP_MARK) != NULL) {
            if (is_regular(dfd, name, &st) && unlinkat(dfd, name, 0) == 0)
                ++*removed;
            continue;
        }
        if (!has_suffix(name, ENTRY_SUFFIX) || !is_regular(dfd, name, &st))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct found_file *nv = realloc(v, ncap * sizeof *nv);
            if (nv == NULL)
                goto nomem;
            v = nv;
            cap = ncap;
        }
        if ((v[n].name = strdup(name)) == NULL)
            goto nomem;
        v[n].size = (uint64_t)st.st_size;
        v[n].mtime = st.st_mtim;
        n++;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, by_age);
    *out = v;
    *count = n;
    return CP_OK;
nomem:
    found_free(v, n);
    return CP_ERR_NOMEM;
}

cp_err store_load(struct store *s, bool (*cb)(void *arg, struct entry *e), void *arg,
                  size_t *loaded, size_t *removed)
{
    size_t n_loaded = 0, n_removed = 0;
    if (loaded != NULL)
        *loaded = 0;
    if (removed != NULL)
        *removed = 0;
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        log_warn("cannot read cache directory %s: %s", s->dir, strerror(errno));
        return CP_ERR_IO;
    }
    int dfd = dirfd(d);
    uint64_t gen = atomic_load(s->gen);
    struct found_file *files = NULL;
    size_t n_files = 0;
    cp_err err = list_entry_files(d, &files, &n_files, &n_removed);
    if (err != CP_OK) {
        log_warn("cannot read cache directory %s: %s", s->dir, cp_strerror(err));
        closedir(d);
        return err;
    }
    /* Built aside and swapped in at the end: `cb` runs with no lock held. */
    struct file_index ix = {0};
    const size_t whole_name = DISKFMT_NAME_LEN + strlen(ENTRY_SUFFIX);
    for (size_t i = 0; i < n_files; i++) {
        const char *name = files[i].name;
        struct file_rec *rec = calloc(1, sizeof *rec);
        if (rec == NULL) {
            log_warn("cannot load cache file %s/%s: %s", s->dir, name,
                     cp_strerror(CP_ERR_NOMEM));
            continue;
        }
        /* Only names of the right length are ever indexed (load_one checks them). */
        size_t len = strlen(name);
        memcpy(rec->name, name, len < DISKFMT_NAME_LEN ? len : DISKFMT_NAME_LEN);
        rec->size = files[i].size;
        struct entry *e;
        err = load_one(dfd, name, gen, &e);
        if (err == CP_OK) {
            index_put(&ix, rec);
            n_loaded++;
            if (!cb(arg, e))
                break; /* asked to stop: the rest stays on disk, unread */
            continue;
        }
        if (err == CP_ERR_NOMEM) {
            /* Nothing wrong with the file: keep it for the next start, and count it. */
            log_warn("cannot load cache file %s/%s: %s", s->dir, name, cp_strerror(err));
            if (strlen(name) == whole_name)
                index_put(&ix, rec);
            else
                free(rec);
            continue;
        }
        free(rec);
        log_warn("ignoring cache file %s/%s: %s", s->dir, name,
                 err == CP_ERR_IO ? strerror(errno) : cp_strerror(err));
        if (unlinkat(dfd, name, 0) == 0) {
            n_removed++;
            if (strlen(name) >= DISKFMT_NAME_LEN) { /* only such names are indexed */
                pthread_mutex_lock(&s->lock); /* known already if loaded before */
                index_drop(&s->index, name);
                pthread_mutex_unlock(&s->lock);
            }
        }
        else if (errno != ENOENT)
            log_warn("cannot remove cache file %s/%s: %s", s->dir, name, strerror(errno));
    }
    found_free(files, n_files);
    closedir(d);

    /* Merged, not swapped in: files written while loading are already indexed, and
     * newer than anything loaded, so the loaded ones go before them. */
    pthread_mutex_lock(&s->lock);
    index_sync_locked(s);
    if (s->index_gen == gen) {
        struct file_rec *r = ix.oldest ? ix.oldest->prev : NULL; /* the newest */
        while (r != NULL) {
            struct file_rec *prev = r == ix.oldest ? NULL : r->prev;
            struct file_rec *known = NULL;
            HASH_DEL(ix.by_name, r);
            DL_DELETE(ix.oldest, r);
            HASH_FIND(hh, s->index.by_name, r->name, DISKFMT_NAME_LEN, known);
            if (known != NULL) {
                free(r);
            } else {
                HASH_ADD(hh, s->index.by_name, name, DISKFMT_NAME_LEN, r);
                DL_PREPEND(s->index.oldest, r);
                s->index.bytes += r->size;
            }
            r = prev;
        }
    }
    index_free(&ix);
    pthread_mutex_unlock(&s->lock);
    if (loaded != NULL)
        *loaded = n_loaded;
    if (removed != NULL)
        *removed = n_removed;
    return CP_OK;
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

    /* The generation goes up first: a running server that writes an entry while the
     * files are being removed writes it with the old generation, and the next load
     * drops it, so nothing from before the clear comes back. */
    _Atomic uint64_t *gen;
    cp_err err = map_generation(dir, &gen);
    if (err != CP_OK)
        return err;
    atomic_fetch_add(gen, 1);
    if (msync((void *)gen, (size_t)GEN_SIZE, MS_SYNC) != 0)
        log_warn("cannot sync %s/%s: %s", dir, GEN_FILE, strerror(errno));
    munmap((void *)gen, (size_t)GEN_SIZE);

    DIR *d = opendir(dir);
    if (d == NULL) {
        log_warn("cannot read cache directory %s: %s", dir, strerror(errno));
        return CP_ERR_IO;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    err = CP_OK;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (!has_suffix(name, ENTRY_SUFFIX) || !is_regular(dfd, name, &st))
            continue;
        if (unlinkat(dfd, name, 0) == 0) {
            (*entries)++;
            *bytes += (uint64_t)st.st_size;
        } else if (errno != ENOENT) {
            log_warn("cannot remove cache file %s/%s: %s", dir, name, strerror(errno));
            err = CP_ERR_IO;
        }
    }
    closedir(d);
    return err;
}
