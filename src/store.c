/* The cache directory on disk (see store.h). Layout, flat and nothing else:
 *   <dir>/generation         8-byte counter, host byte order (little-endian on every
 *                            machine we build for; the file never leaves the machine)
 *   <dir>/<name>.cpe         one entry, <name> = diskfmt_name(key, vary_key)
 *   <dir>/<name>.tmp.<pid>.<n>  an entry being written; renamed to <name>.cpe when whole
 * Entries are not fsync'ed: a file cut short by a crash fails its checksums at the next
 * load and is dropped, which costs one refetch, far less than a sync per response. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* The counter is shared with other processes through the mapping: only a lock-free
 * atomic is a real atomic there (a lock would live in one process only). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define GEN_FILE "generation"
#define GEN_SIZE ((off_t)sizeof(uint64_t))
#define ENTRY_SUFFIX ".cpe"
#define TMP_MARK ".tmp."

struct store {
    char *dir;
    _Atomic uint64_t *gen; /* mapping of GEN_FILE */
    atomic_ulong tmp_counter;
};

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

cp_err store_open(const char *dir, struct store **out)
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
    /* Creating the generation file is the real proof that the directory is writable
     * (access() does not know about read-only mounts on every system). */
    cp_err err = map_generation(dir, &s->gen);
    if (err != CP_OK) {
        free(s->dir);
        free(s);
        return err;
    }
    *out = s;
    return CP_OK;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    munmap((void *)s->gen, (size_t)GEN_SIZE);
    free(s->dir);
    free(s);
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

cp_err store_write(struct store *s, const struct entry *e)
{
    char name[DISKFMT_NAME_LEN + 1];
    diskfmt_name(e->key != NULL ? e->key : "", e->vary_key != NULL ? e->vary_key : "", name);
    char *path = join_path(s->dir, name, ENTRY_SUFFIX);
    char suffix[64];
    snprintf(suffix, sizeof suffix, TMP_MARK "%ld.%lu", (long)getpid(),
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

    err = CP_ERR_IO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("cannot write cache file %s: %s", tmp, strerror(errno));
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
        goto out;
    }
    /* rename() replaces the old file atomically: a reader sees the old or the new one. */
    if (rename(tmp, path) != 0) {
        log_warn("cannot write cache file %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
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
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("cannot remove cache file %s: %s", path, strerror(errno));
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

cp_err store_load(struct store *s, void (*cb)(void *arg, struct entry *e), void *arg,
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
    struct dirent *de;
    /* Unlinking the entry just returned by readdir is allowed by POSIX and does not
     * make readdir skip or repeat other entries. */
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st;
        if (strstr(name, TMP_MARK) != NULL) {
            if (is_regular(dfd, name, &st) && unlinkat(dfd, name, 0) == 0)
                n_removed++;
            continue;
        }
        if (!has_suffix(name, ENTRY_SUFFIX) || !is_regular(dfd, name, &st))
            continue;
        struct entry *e;
        cp_err err = load_one(dfd, name, gen, &e);
        if (err == CP_OK) {
            cb(arg, e);
            n_loaded++;
            continue;
        }
        if (err == CP_ERR_NOMEM) {
            /* Nothing wrong with the file: keep it for the next start. */
            log_warn("cannot load cache file %s/%s: %s", s->dir, name, cp_strerror(err));
            continue;
        }
        log_warn("ignoring cache file %s/%s: %s", s->dir, name,
                 err == CP_ERR_IO ? strerror(errno) : cp_strerror(err));
        if (unlinkat(dfd, name, 0) == 0)
            n_removed++;
        else if (errno != ENOENT)
            log_warn("cannot remove cache file %s/%s: %s", s->dir, name, strerror(errno));
    }
    closedir(d);
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
