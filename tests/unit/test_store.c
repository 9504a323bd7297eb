/* Tests of the cache directory and its writer thread, on a real temporary directory:
 * what is written comes back, what is damaged, misnamed or cleared never does, and
 * the files stay within the byte bound, the oldest going first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskfmt.h"
#include "log.h"
#include "mirror.h"
#include "store.h"

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cp-store-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static char *path_of(const char *dir, const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static struct entry *make_entry(const char *key, const char *vary, const char *body,
                                uint64_t generation)
{
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup(key);
    e->vary_key = strdup(vary);
    assert_non_null(e->key);
    assert_non_null(e->vary_key);
    e->status = 200;
    e->request_time = 1700000000;
    e->response_time = 1700000001;
    e->initial_age = 3;
    e->lifetime = 600;
    e->generation = generation;
    assert_int_equal(hdrs_add(&e->headers, "Content-Type", "text/plain"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "X-Key", key), CP_OK);
    e->body_len = strlen(body);
    e->body = (unsigned char *)strdup(body);
    assert_non_null(e->body);
    return e;
}

static char *file_name(const char *key, const char *vary)
{
    static char buf[DISKFMT_NAME_LEN + 8];
    diskfmt_name(key, vary, buf);
    strcat(buf, ".cpe");
    return buf;
}

static bool exists(const char *dir, const char *name)
{
    struct stat st;
    return stat(path_of(dir, name), &st) == 0;
}

/* Number of directory entries other than "." and "..". */
static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* What store_load hands over, kept for inspection. */
struct loaded {
    struct entry *v[16];
    size_t n;
};

static bool collect(void *arg, struct entry *e)
{
    struct loaded *l = arg;
    assert_true(l->n < 16);
    l->v[l->n++] = e;
    return true;
}

static void loaded_free(struct loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        entry_unref(l->v[i]);
    l->n = 0;
}

static struct entry *find_loaded(struct loaded *l, const char *key, const char *vary)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->key, key) == 0 && strcmp(l->v[i]->vary_key, vary) == 0)
            return l->v[i];
    return NULL;
}

static uint64_t gen_of(struct store *s)
{
    return atomic_load(store_generation_ptr(s));
}

static void test_open_creates_directory(void **state)
{
    struct fixture *f = *state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/a/b/c", f->dir);
    struct store *s = NULL;
    assert_int_equal(store_open(dir, 0, &s), CP_OK);
    assert_non_null(s);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path_of(dir, "generation"), &st), 0);
    assert_int_equal(st.st_size, 8);
    assert_true(gen_of(s) == 0);
    store_close(s);
    store_close(NULL);
}

static void test_open_unusable_path(void **state)
{
    struct fixture *f = *state;
    const char *file = path_of(f->dir, "plain");
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    char dir[128];
    struct store *s = (struct store *)1;

    /* the directory itself is a regular file */
    snprintf(dir, sizeof dir, "%s/plain", f->dir);
    assert_int_equal(store_open(dir, 0, &s), CP_ERR_CACHE_DIR);
    assert_null(s);
    /* a parent is a regular file */
    snprintf(dir, sizeof dir, "%s/plain/cache", f->dir);
    s = (struct store *)1;
    assert_int_equal(store_open(dir, 0, &s), CP_ERR_CACHE_DIR);
    assert_null(s);
    assert_int_equal(store_open("", 0, &s), CP_ERR_CACHE_DIR);
}

static void test_write_then_load(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t gen = gen_of(s);
    struct entry *a = make_entry("https://example.com/a", "", "body a", gen);
    struct entry *b1 = make_entry("https://example.com/b", "accept-encoding=gzip", "gz", gen);
    struct entry *b2 = make_entry("https://example.com/b", "accept-encoding=br", "br", gen);
    struct entry *empty = make_entry("https://example.com/empty", "", "", gen);
    assert_int_equal(store_write(s, a), CP_OK);
    assert_int_equal(store_write(s, b1), CP_OK);
    assert_int_equal(store_write(s, b2), CP_OK);
    assert_int_equal(store_write(s, empty), CP_OK);
    assert_true(exists(f->dir, file_name("https://example.com/a", "")));
    /* four entries and the generation file: no temporary file left behind */
    assert_int_equal(count_files(f->dir), 5);

    struct loaded l = {0};
    size_t loaded = 99, removed = 99;
    assert_int_equal(store_load(s, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 4);
    assert_int_equal(removed, 0);
    assert_int_equal(l.n, 4);
    struct entry *expect[] = {a, b1, b2, empty};
    for (size_t i = 0; i < 4; i++) {
        struct entry *got = find_loaded(&l, expect[i]->key, expect[i]->vary_key);
        assert_non_null(got);
        assert_int_equal(got->status, 200);
        assert_true(got->lifetime == 600);
        assert_true(got->generation == gen);
        assert_int_equal(got->headers.n, 2);
        assert_string_equal(got->headers.v[1].value, expect[i]->key);
        assert_int_equal(got->body_len, expect[i]->body_len);
        if (got->body_len > 0)
            assert_memory_equal(got->body, expect[i]->body, got->body_len);
    }
    loaded_free(&l);
    /* Loading again finds the same files: loading does not consume them. */
    assert_int_equal(store_load(s, collect, &l, NULL, NULL), CP_OK);
    assert_int_equal(l.n, 4);
    loaded_free(&l);

    entry_unref(a);
    entry_unref(b1);
    entry_unref(b2);
    entry_unref(empty);
    store_close(s);
}

static void test_write_replaces_and_remove(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct entry *old = make_entry("k", "", "old", gen_of(s));
    struct entry *new = make_entry("k", "", "newer body", gen_of(s));
    assert_int_equal(store_write(s, old), CP_OK);
    assert_int_equal(store_write(s, new), CP_OK);
    struct loaded l = {0};
    assert_int_equal(store_load(s, collect, &l, NULL, NULL), CP_OK);
    assert_int_equal(l.n, 1);
    assert_memory_equal(l.v[0]->body, "newer body", 10);
    loaded_free(&l);

    store_remove(s, "k", "");
    assert_false(exists(f->dir, file_name("k", "")));
    store_remove(s, "k", ""); /* already gone: nothing happens */
    assert_int_equal(count_files(f->dir), 1);
    entry_unref(old);
    entry_unref(new);
    store_close(s);
}

/* Rewrites byte `off` of a file (negative: from the end). */
static void damage(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t pos = lseek(fd, off, off < 0 ? SEEK_END : SEEK_SET);
    assert_true(pos >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, pos), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    close(fd);
}

static void test_corrupt_files_removed(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    const char *keys[] = {"good", "body-flip", "meta-flip", "truncated", "empty"};
    for (size_t i = 0; i < 5; i++) {
        struct entry *e = make_entry(keys[i], "", "some body text", gen_of(s));
        assert_int_equal(store_write(s, e), CP_OK);
        entry_unref(e);
    }
    char p[320];
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("body-flip", "")));
    damage(p, -1);
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("meta-flip", "")));
    damage(p, 60);
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("truncated", "")));
    assert_int_equal(truncate(p, 30), 0);
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("empty", "")));
    assert_int_equal(truncate(p, 0), 0);
    /* a leftover from a write that never finished */
    snprintf(p, sizeof p, "%s.tmp.1234.0", path_of(f->dir, file_name("x", "")));
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("partial", fp);
    fclose(fp);
    /* a file that is not ours is left alone */
    fp = fopen(path_of(f->dir, "README"), "w");
    assert_non_null(fp);
    fclose(fp);

    struct loaded l = {0};
    size_t loaded, removed;
    assert_int_equal(store_load(s, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 1);
    assert_int_equal(removed, 5);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, "good");
    loaded_free(&l);
    for (size_t i = 1; i < 5; i++)
        assert_false(exists(f->dir, file_name(keys[i], "")));
    assert_false(exists(f->dir, p + strlen(f->dir) + 1));
    assert_true(exists(f->dir, "README"));
    assert_true(exists(f->dir, file_name("good", "")));
    assert_int_equal(count_files(f->dir), 3); /* generation, good, README */
    store_close(s);
}

static void test_renamed_file_removed(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct entry *a = make_entry("key-a", "", "a", gen_of(s));
    struct entry *b = make_entry("key-b", "", "b", gen_of(s));
    assert_int_equal(store_write(s, a), CP_OK);
    assert_int_equal(store_write(s, b), CP_OK);
    char from[256], to[256];
    snprintf(from, sizeof from, "%s", path_of(f->dir, file_name("key-a", "")));
    snprintf(to, sizeof to, "%s", path_of(f->dir, file_name("key-b", "")));
    /* a's file now sits under b's name: it must not be served as b */
    assert_int_equal(rename(from, to), 0);
    /* and a valid file under a name that is no entry name at all */
    assert_int_equal(store_write(s, a), CP_OK);
    snprintf(to, sizeof to, "%s", path_of(f->dir, "other.cpe"));
    assert_int_equal(rename(from, to), 0);

    struct loaded l = {0};
    size_t loaded, removed;
    assert_int_equal(store_load(s, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 0);
    assert_int_equal(removed, 2);
    assert_int_equal(l.n, 0);
    assert_int_equal(count_files(f->dir), 1);
    entry_unref(a);
    entry_unref(b);
    store_close(s);
}

static void test_clear(void **state)
{
    struct fixture *f = *state;
    struct store *server, *other;
    assert_int_equal(store_open(f->dir, 0, &server), CP_OK);
    assert_int_equal(store_open(f->dir, 0, &other), CP_OK);
    uint64_t gen = gen_of(server);
    uint64_t bytes = 0;
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        struct entry *e = make_entry(key, "", "0123456789", gen);
        assert_int_equal(store_write(server, e), CP_OK);
        struct stat st;
        assert_int_equal(stat(path_of(f->dir, file_name(key, "")), &st), 0);
        bytes += (uint64_t)st.st_size;
        entry_unref(e);
    }

    size_t entries = 99;
    uint64_t cleared = 99;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 3);
    assert_true(cleared == bytes);
    assert_int_equal(count_files(f->dir), 1);
    /* Both running mappings see the new generation at once. */
    assert_true(gen_of(server) == gen + 1);
    assert_true(gen_of(other) == gen + 1);

    /* A server that had not yet noticed writes an entry of the old generation after
     * the clear: it must not come back. One of the new generation does. */
    struct entry *late = make_entry("late", "", "old data", gen);
    struct entry *fresh = make_entry("fresh", "", "new data", gen + 1);
    assert_int_equal(store_write(server, late), CP_OK);
    assert_int_equal(store_write(server, fresh), CP_OK);
    struct loaded l = {0};
    size_t loaded, removed;
    assert_int_equal(store_load(other, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 1);
    assert_int_equal(removed, 1);
    assert_string_equal(l.v[0]->key, "fresh");
    loaded_free(&l);
    assert_false(exists(f->dir, file_name("late", "")));

    /* Clearing again counts only what is there; the generation keeps counting. */
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 1);
    assert_true(gen_of(other) == gen + 2);
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 0);
    assert_true(cleared == 0);
    assert_true(gen_of(server) == gen + 3);

    entry_unref(late);
    entry_unref(fresh);
    store_close(server);
    store_close(other);

    /* A new process reads the counter from the file. */
    struct store *again;
    assert_int_equal(store_open(f->dir, 0, &again), CP_OK);
    assert_true(gen_of(again) == gen + 3);
    store_close(again);
}

static void test_clear_missing_and_unusable(void **state)
{
    struct fixture *f = *state;
    size_t entries = 99;
    uint64_t bytes = 99;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/never-created", f->dir);
    assert_int_equal(store_clear(dir, &entries, &bytes), CP_OK);
    assert_int_equal(entries, 0);
    assert_true(bytes == 0);
    /* and it is not created by a clear */
    assert_false(exists(f->dir, "never-created"));

    FILE *fp = fopen(path_of(f->dir, "plain"), "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/plain", f->dir);
    assert_int_equal(store_clear(dir, &entries, &bytes), CP_ERR_CACHE_DIR);
}

static void test_clear_without_generation_file(void **state)
{
    struct fixture *f = *state;
    size_t entries;
    uint64_t bytes;
    /* a directory that never had a server: the counter is created at 1 */
    assert_int_equal(store_clear(f->dir, &entries, &bytes), CP_OK);
    assert_int_equal(entries, 0);
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    assert_true(gen_of(s) == 1);
    store_close(s);
}

static void test_mirror(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct mirror *m = NULL;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    assert_non_null(m);
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "https://example.com/%d", i);
        struct entry *e = make_entry(key, "", "mirrored", gen_of(s));
        mirror_write(m, e);
        /* the mirror holds its own reference */
        entry_unref(e);
    }
    /* Order is kept: written then removed ends with no file; removed then written
     * ends with the file. */
    mirror_remove(m, "https://example.com/3", "");
    struct entry *e = make_entry("https://example.com/gone", "", "x", gen_of(s));
    mirror_remove(m, "https://example.com/gone", "");
    mirror_write(m, e);
    entry_unref(e);
    mirror_stop(m);
    mirror_stop(NULL);

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "https://example.com/%d", i);
        assert_true(exists(f->dir, file_name(key, "")) == (i != 3));
    }
    assert_true(exists(f->dir, file_name("https://example.com/gone", "")));
    struct loaded l = {0};
    size_t loaded;
    assert_int_equal(store_load(s, collect, &l, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 10);
    loaded_free(&l);
    store_close(s);
}

static void test_mirror_stop_idle(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct mirror *m;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    mirror_stop(m); /* nothing queued: returns without waiting for work */
    assert_int_equal(count_files(f->dir), 1);
    store_close(s);
}

/* Total size of the entry files in `dir`: what the bound is about. */
static uint64_t disk_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    uint64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct stat st;
        if (len > 4 && strcmp(de->d_name + len - 4, ".cpe") == 0 &&
            stat(path_of(dir, de->d_name), &st) == 0)
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

/* Entries "key-<n>" whose files all have the same size. */
static struct entry *sized_entry(int i, const char *body)
{
    char key[16];
    snprintf(key, sizeof key, "key-%d", i);
    return make_entry(key, "", body, 0);
}

static bool has_sized(const char *dir, int i)
{
    char key[16];
    snprintf(key, sizeof key, "key-%d", i);
    return exists(dir, file_name(key, ""));
}

/* The size of the file store_write makes of `e`. */
static uint64_t file_size_of(const struct entry *e)
{
    unsigned char *head;
    size_t len;
    assert_int_equal(diskfmt_encode_head(e, &head, &len), CP_OK);
    free(head);
    return (uint64_t)len + e->body_len;
}

static void write_sized(struct store *s, int i)
{
    struct entry *e = sized_entry(i, "ten bytes!");
    assert_int_equal(store_write(s, e), CP_OK);
    entry_unref(e);
}

static uint64_t sized_file_size(void)
{
    struct entry *e = sized_entry(0, "ten bytes!");
    uint64_t n = file_size_of(e);
    entry_unref(e);
    return n;
}

static void test_bound_removes_oldest(void **state)
{
    struct fixture *f = *state;
    uint64_t size = sized_file_size();
    struct store *s;
    /* room for three and a half */
    assert_int_equal(store_open(f->dir, 3 * size + size / 2, &s), CP_OK);
    assert_true(store_bytes(s) == 0);
    for (int i = 0; i < 5; i++) {
        write_sized(s, i);
        assert_true(store_bytes(s) == disk_bytes(f->dir));
    }
    for (int i = 0; i < 5; i++)
        assert_true(has_sized(f->dir, i) == (i >= 2));
    assert_true(store_bytes(s) == 3 * size);

    /* Rewriting a file makes it the newest: the next oldest goes instead. */
    write_sized(s, 2);
    write_sized(s, 5);
    assert_false(has_sized(f->dir, 3));
    assert_true(has_sized(f->dir, 2));
    assert_true(has_sized(f->dir, 4));
    assert_true(has_sized(f->dir, 5));
    assert_true(store_bytes(s) == 3 * size);

    /* A removal frees its room. */
    store_remove(s, "key-4", "");
    assert_true(store_bytes(s) == 2 * size);
    store_remove(s, "key-4", ""); /* again: nothing to free */
    assert_true(store_bytes(s) == 2 * size);
    write_sized(s, 6);
    assert_true(has_sized(f->dir, 2)); /* there was room: nothing else removed */
    assert_true(store_bytes(s) == 3 * size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));

    /* A larger file (about two) may take the room of several. */
    char *body = calloc(1, size + 11);
    assert_non_null(body);
    memset(body, 'x', size + 10);
    struct entry *big = make_entry("big", "", body, 0);
    free(body);
    uint64_t big_size = file_size_of(big);
    assert_true(big_size > size + size / 2 && big_size + size <= 3 * size + size / 2);
    assert_int_equal(store_write(s, big), CP_OK);
    assert_false(has_sized(f->dir, 2));
    assert_false(has_sized(f->dir, 5));
    assert_true(has_sized(f->dir, 6));
    assert_true(store_bytes(s) == big_size + size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    entry_unref(big);
    store_close(s);
}

static void test_bound_too_large_file(void **state)
{
    struct fixture *f = *state;
    uint64_t size = sized_file_size();
    struct store *s;
    assert_int_equal(store_open(f->dir, 2 * size, &s), CP_OK);
    write_sized(s, 0);
    write_sized(s, 1);

    char body[256];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    /* A newer, larger answer for key-0: not written, and the older file goes too. */
    struct entry *big = sized_entry(0, body);
    assert_true(file_size_of(big) > 2 * size);
    assert_int_equal(store_write(s, big), CP_ERR_TOO_LARGE);
    assert_false(has_sized(f->dir, 0));
    assert_true(has_sized(f->dir, 1));
    assert_true(store_bytes(s) == size);
    /* for a key with no file, nothing else moves */
    struct entry *other = sized_entry(7, body);
    assert_int_equal(store_write(s, other), CP_ERR_TOO_LARGE);
    assert_false(has_sized(f->dir, 7));
    assert_true(has_sized(f->dir, 1));
    assert_true(store_bytes(s) == size);
    assert_int_equal(count_files(f->dir), 2); /* generation, key-1: no temporary file */

    /* A file of exactly the bound is kept, alone. */
    store_close(s);
    assert_int_equal(store_open(f->dir, file_size_of(big), &s), CP_OK);
    assert_int_equal(store_write(s, big), CP_OK);
    assert_true(store_bytes(s) == file_size_of(big));
    entry_unref(big);
    entry_unref(other);
    store_close(s);
}

/* Sets the modification time of key-<i>'s file to `when`. */
static void set_age(const char *dir, int i, time_t when)
{
    char key[16];
    snprintf(key, sizeof key, "key-%d", i);
    struct timespec t[2] = {{when, 0}, {when, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path_of(dir, file_name(key, "")), t, 0), 0);
}

static void test_load_fills_index(void **state)
{
    struct fixture *f = *state;
    uint64_t size = sized_file_size();
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (int i = 0; i < 3; i++)
        write_sized(s, i);
    store_close(s);
    /* Age comes from the files: key-2 was written first, key-0 last. */
    time_t now = time(NULL);
    set_age(f->dir, 2, now - 300);
    set_age(f->dir, 1, now - 200);
    set_age(f->dir, 0, now - 100);

    /* A smaller bound than what is there: loading keeps everything, the next write
     * makes room, oldest first. */
    assert_int_equal(store_open(f->dir, 2 * size + size / 2, &s), CP_OK);
    assert_true(store_bytes(s) == 0); /* nothing known before loading */
    struct loaded l = {0};
    size_t loaded;
    assert_int_equal(store_load(s, collect, &l, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 3);
    /* handed over oldest first, so that a cache filled from them keeps their age */
    assert_string_equal(l.v[0]->key, "key-2");
    assert_string_equal(l.v[1]->key, "key-1");
    assert_string_equal(l.v[2]->key, "key-0");
    loaded_free(&l);
    assert_true(store_bytes(s) == 3 * size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    write_sized(s, 3);
    assert_false(has_sized(f->dir, 2));
    assert_false(has_sized(f->dir, 1));
    assert_true(has_sized(f->dir, 0));
    assert_true(has_sized(f->dir, 3));
    assert_true(store_bytes(s) == 2 * size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));

    /* Damaged files are removed by the load, not counted. */
    char p[320];
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("key-0", "")));
    damage(p, -1);
    assert_int_equal(store_load(s, collect, &l, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 1);
    loaded_free(&l);
    assert_true(store_bytes(s) == size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

/* One entry read by its key, as the front end does while the disk is still loading. */
static void test_read_one(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t gen = atomic_load(store_generation_ptr(s));
    struct entry *a = make_entry("http://o/one", "", "one body", gen);
    struct entry *b = make_entry("http://o/two", "", "two body", gen);
    assert_int_equal(store_write(s, a), CP_OK);
    assert_int_equal(store_write(s, b), CP_OK);

    struct entry *got = NULL;
    assert_int_equal(store_read(s, "http://o/one", "", &got), CP_OK);
    assert_string_equal(got->key, "http://o/one");
    assert_int_equal(got->body_len, strlen("one body"));
    assert_memory_equal(got->body, "one body", got->body_len);
    entry_unref(got);
    assert_int_equal(store_read(s, "http://o/none", "", &got), CP_ERR_NOT_FOUND);
    assert_int_equal(store_read(s, "http://o/one", "other variant", &got), CP_ERR_NOT_FOUND);

    /* A damaged file is never handed out, and is removed. */
    char p[320];
    snprintf(p, sizeof p, "%s", path_of(f->dir, file_name("http://o/two", "")));
    damage(p, -1);
    assert_int_not_equal(store_read(s, "http://o/two", "", &got), CP_OK);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(store_read(s, "http://o/two", "", &got), CP_ERR_NOT_FOUND);
    entry_unref(a);
    entry_unref(b);
    store_close(s);
}

static bool take_one(void *arg, struct entry *e)
{
    ++*(int *)arg;
    entry_unref(e);
    return false; /* stop after the first */
}

/* Loading stops when asked (a shutdown while the disk is still loading). */
static void test_load_stops(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t gen = atomic_load(store_generation_ptr(s));
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "http://o/%d", i);
        struct entry *e = make_entry(key, "", "x", gen);
        assert_int_equal(store_write(s, e), CP_OK);
        entry_unref(e);
    }
    store_close(s);
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    int calls = 0;
    size_t loaded = 0;
    assert_int_equal(store_load(s, take_one, &calls, &loaded, NULL), CP_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(loaded, 1);
    /* What was not read is still on disk for the next start. */
    assert_int_equal(count_files(f->dir), 5 + 1); /* and the generation file */
    store_close(s);
}

static void test_bytes_after_clear(void **state)
{
    struct fixture *f = *state;
    uint64_t size = sized_file_size();
    struct store *s;
    assert_int_equal(store_open(f->dir, 2 * size, &s), CP_OK);
    write_sized(s, 0);
    write_sized(s, 1);
    assert_true(store_bytes(s) == 2 * size);
    /* what --clear-cache does from another process */
    size_t entries;
    uint64_t cleared;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 2);
    assert_true(store_bytes(s) == 0);
    struct entry *e = make_entry("key-2", "", "ten bytes!", gen_of(s));
    assert_int_equal(store_write(s, e), CP_OK);
    entry_unref(e);
    assert_true(store_bytes(s) == size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

static void test_mirror_bounded(void **state)
{
    struct fixture *f = *state;
    uint64_t size = sized_file_size();
    struct store *s;
    assert_int_equal(store_open(f->dir, 3 * size, &s), CP_OK);
    struct mirror *m;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    for (int i = 0; i < 10; i++) {
        struct entry *e = sized_entry(i, "ten bytes!");
        mirror_write(m, e);
        entry_unref(e);
    }
    mirror_stop(m);
    /* written in order, so the last three are what is left */
    for (int i = 0; i < 10; i++)
        assert_true(has_sized(f->dir, i) == (i >= 7));
    assert_true(store_bytes(s) == 3 * size);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

int main(void)
{
    /* The damaged files below are reported as warnings, which are expected here. */
    log_set_level(LOG_LVL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_unusable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_then_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_replaces_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renamed_file_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_missing_and_unusable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_without_generation_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_stop_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_removes_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_too_large_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fills_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_after_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
