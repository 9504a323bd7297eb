/* Tests of the cache directory and its writer thread, on a real temporary directory:
 * what is written comes back (in order, across restarts, removals included, also of
 * every variant of a key at once), what is
 * damaged, foreign or cleared never does, and the segments stay within the byte bound,
 * the oldest going first. Failures of the disk are real ones: a file made unreadable,
 * a file size limit (RLIMIT_FSIZE) for a full disk, a directory where a segment was. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "diskfmt.h"
#include "log.h"
#include "mirror.h"
#include "store.h"
#include "tmpdir.h"

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    if (tmpdir_make(f->dir, sizeof f->dir, "store") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = tmpdir_remove(f->dir);
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

static uint64_t gen_of(struct store *s)
{
    return atomic_load(store_generation_ptr(s));
}

/* Writes an entry with this key and body, of the store's generation. */
static void put(struct store *s, const char *key, const char *body)
{
    struct entry *e = make_entry(key, "", body, gen_of(s));
    assert_int_equal(store_write(s, e), CP_OK);
    entry_unref(e);
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

static bool is_segment(const char *name)
{
    size_t len = strlen(name);
    return len > 4 && strcmp(name + len - 4, ".cps") == 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The segment files of `dir`, sorted (oldest first). */
struct seglist {
    char name[64][32];
    size_t n;
};

static void list_segments(const char *dir, struct seglist *l)
{
    l->n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (!is_segment(de->d_name) || len >= sizeof l->name[0])
            continue;
        assert_true(l->n < 64);
        memcpy(l->name[l->n++], de->d_name, len + 1);
    }
    closedir(d);
    qsort(l->name, l->n, sizeof l->name[0], cmp_name);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Total size of the segment files in `dir`: what the bound is about. */
static uint64_t disk_bytes(const char *dir)
{
    struct seglist l;
    list_segments(dir, &l);
    uint64_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += file_size(path_of(dir, l.name[i]));
    return n;
}

/* The size of the record store_write makes of `e`. */
static uint64_t record_size(const struct entry *e)
{
    unsigned char *head;
    size_t len;
    assert_int_equal(diskfmt_encode_head(e, &head, &len), CP_OK);
    free(head);
    return (uint64_t)len + e->body_len;
}

/* Where the last entry record of `key` lies on disk: segment path, offset, length. */
struct where {
    char path[256];
    uint64_t off, len, head_and_meta;
};

static bool find_record(const char *dir, const char *key, struct where *w)
{
    struct seglist l;
    list_segments(dir, &l);
    bool found = false;
    for (size_t i = 0; i < l.n; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s", path_of(dir, l.name[i]));
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        uint64_t off = 0;
        unsigned char head[DISKFMT_HEAD_LEN];
        while (fread(head, 1, sizeof head, fp) == sizeof head) {
            struct diskfmt_head h;
            if (diskfmt_parse_head(head, sizeof head, &h) != CP_OK)
                break;
            unsigned char *meta = malloc(h.meta_len);
            assert_non_null(meta);
            struct diskfmt_ref ref;
            if (fread(meta, 1, h.meta_len, fp) == h.meta_len &&
                diskfmt_parse_meta(&h, meta, &ref) == CP_OK && ref.kind == DISKFMT_ENTRY &&
                ref.key_len == strlen(key) && memcmp(ref.key, key, ref.key_len) == 0) {
                snprintf(w->path, sizeof w->path, "%s", path);
                w->off = off;
                w->len = h.record_len;
                w->head_and_meta = DISKFMT_HEAD_LEN + h.meta_len;
                found = true;
            }
            free(meta);
            off += h.record_len;
            assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
        }
        fclose(fp);
    }
    return found;
}

/* What store_load hands over, kept for inspection. */
struct loaded {
    struct entry **v;
    size_t n, cap;
};

static bool collect(void *arg, struct entry *e)
{
    struct loaded *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    l->v[l->n++] = e;
    return true;
}

static void loaded_free(struct loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        entry_unref(l->v[i]);
    free(l->v);
    *l = (struct loaded){0};
}

static struct entry *find_loaded(struct loaded *l, const char *key, const char *vary)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->key, key) == 0 && strcmp(l->v[i]->vary_key, vary) == 0)
            return l->v[i];
    return NULL;
}

/* Opens the directory anew (as a restart does) and loads it. */
static struct store *reopen_and_load(const char *dir, uint64_t max_bytes, struct loaded *l,
                                     size_t *removed)
{
    struct store *s;
    assert_int_equal(store_open(dir, max_bytes, &s), CP_OK);
    size_t loaded = 0;
    assert_int_equal(store_load(s, collect, l, &loaded, removed), CP_OK);
    assert_int_equal(loaded, l->n);
    return s;
}

/* store_read's verdict, the body checked when found. */
static bool readable(struct store *s, const char *key, const char *body)
{
    struct entry *e = NULL;
    cp_err err = store_read(s, key, "", &e);
    if (err != CP_OK) {
        assert_null(e);
        return false;
    }
    assert_string_equal(e->key, key);
    if (body != NULL) {
        assert_int_equal(e->body_len, strlen(body));
        assert_memory_equal(e->body, body, e->body_len);
    }
    entry_unref(e);
    return true;
}

/* Rewrites byte `off` of a file. */
static void damage(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
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
    assert_true(store_bytes(s) == 0);
    store_close(s);
    store_close(NULL);
    /* opening creates no segment: only a write does */
    assert_int_equal(count_files(dir), 1);
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

static void test_segment_bytes(void **state)
{
    (void)state;
    assert_true(store_segment_bytes(0) == 8u << 20);         /* no bound */
    assert_true(store_segment_bytes(1ull << 30) == 8u << 20); /* the default bound */
    assert_true(store_segment_bytes(16u << 20) == 2u << 20);  /* an eighth */
    assert_true(store_segment_bytes(1u << 20) == 128u << 10);
    assert_true(store_segment_bytes(256u << 10) == 64u << 10);
    /* small bounds: at most a quarter, never 0 */
    assert_true(store_segment_bytes(100000) == 25000);
    assert_true(store_segment_bytes(3) == 1);
    assert_true(store_segment_bytes(1) == 1);
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
    struct entry *expect[] = {a, b1, b2, empty};
    uint64_t total = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(store_write(s, expect[i]), CP_OK);
        total += record_size(expect[i]);
    }
    /* one segment holding the four records back to back, and the generation file */
    assert_int_equal(count_files(f->dir), 2);
    assert_true(disk_bytes(f->dir) == total);
    assert_true(store_bytes(s) == total);

    struct loaded l = {0};
    size_t loaded = 99, removed = 99;
    assert_int_equal(store_load(s, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 4);
    assert_int_equal(removed, 0);
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < 4; i++) {
        struct entry *got = l.v[i]; /* in the order written */
        assert_string_equal(got->key, expect[i]->key);
        assert_string_equal(got->vary_key, expect[i]->vary_key);
        assert_int_equal(got->status, 200);
        assert_true(got->lifetime == 600);
        assert_true(got->initial_age == 3);
        assert_true(got->generation == gen);
        assert_int_equal(got->headers.n, 2);
        assert_string_equal(got->headers.v[1].value, expect[i]->key);
        assert_int_equal(got->body_len, expect[i]->body_len);
        if (got->body_len > 0)
            assert_memory_equal(got->body, expect[i]->body, got->body_len);
    }
    loaded_free(&l);
    /* Loading again finds the same records: loading does not consume them. */
    assert_int_equal(store_load(s, collect, &l, NULL, NULL), CP_OK);
    assert_int_equal(l.n, 4);
    loaded_free(&l);
    assert_true(store_bytes(s) == total);
    store_close(s);

    /* A restart: the records come back; new ones go to a new segment, never appended
     * to one another process wrote. */
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 4);
    loaded_free(&l);
    assert_true(store_bytes(s) == total);
    put(s, "https://example.com/c", "body c");
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_int_equal(segs.n, 2);
    assert_true(strcmp(segs.name[0], segs.name[1]) < 0);
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.v[4]->key, "https://example.com/c"); /* the newest, last */
    loaded_free(&l);
    store_close(s);

    entry_unref(a);
    entry_unref(b1);
    entry_unref(b2);
    entry_unref(empty);
}

/* Records spread over several segments come back in the order written. */
static void test_many_segments_load_in_order(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 1u << 20; /* segments of 128 KiB */
    char body[10001];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%02d", i);
        body[0] = (char)('A' + i % 26);
        put(s, key, body);
    }
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_true(segs.n >= 4);
    for (size_t i = 0; i < segs.n; i++) /* none over its nominal size */
        assert_true(file_size(path_of(f->dir, segs.name[i])) <= store_segment_bytes(bound));
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, bound, &l, NULL);
    assert_int_equal(l.n, 50);
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%02d", i);
        assert_string_equal(l.v[i]->key, key);
        assert_int_equal(l.v[i]->body[0], 'A' + i % 26);
    }
    loaded_free(&l);
    store_close(s);
}

/* One entry read by its key, as the front end does while the disk is still loading. */
static void test_read_one(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t gen = gen_of(s);
    struct entry *a = make_entry("http://o/one", "", "one body", gen);
    struct entry *b = make_entry("http://o/two", "", "two body", gen);
    struct entry *c = make_entry("http://o/three", "", "three body", gen);
    assert_int_equal(store_write(s, a), CP_OK);
    assert_int_equal(store_write(s, b), CP_OK);
    assert_int_equal(store_write(s, c), CP_OK);

    struct entry *got = NULL;
    assert_int_equal(store_read(s, "http://o/one", "", &got), CP_OK);
    assert_string_equal(got->key, "http://o/one");
    assert_int_equal(got->body_len, strlen("one body"));
    assert_memory_equal(got->body, "one body", got->body_len);
    assert_int_equal(atomic_load(&got->refs), 1);
    entry_unref(got);
    assert_int_equal(store_read(s, "http://o/none", "", &got), CP_ERR_NOT_FOUND);
    assert_null(got);
    /* Within a length: a longer record is not read, and its length is told. */
    size_t left = 0;
    assert_int_equal(store_read_within(s, "http://o/one", "", 10, false, &left, &got),
                     CP_ERR_TOO_LARGE);
    assert_null(got);
    assert_int_equal(left, record_size(a));
    assert_int_equal(store_read_within(s, "http://o/one", "", left, false, &left, &got), CP_OK);
    assert_int_equal(left, 0);
    entry_unref(got);
    assert_int_equal(store_read(s, "http://o/one", "other variant", &got), CP_ERR_NOT_FOUND);

    /* A damaged record is never handed out, and is forgotten; its neighbours stay. */
    struct where w;
    assert_true(find_record(f->dir, "http://o/two", &w));
    damage(w.path, w.off + w.len - 1); /* the last byte of its body */
    got = (struct entry *)1;
    assert_int_equal(store_read(s, "http://o/two", "", &got), CP_ERR_CORRUPT);
    assert_null(got);
    assert_int_equal(store_read(s, "http://o/two", "", &got), CP_ERR_NOT_FOUND);
    assert_true(readable(s, "http://o/one", "one body"));
    assert_true(readable(s, "http://o/three", "three body"));
    /* and a fresh copy is found again */
    put(s, "http://o/two", "two again");
    assert_true(readable(s, "http://o/two", "two again"));
    entry_unref(a);
    entry_unref(b);
    entry_unref(c);
    store_close(s);
}

/* Every variant of a key is read, whatever its vary key, and only that key's; a damaged
 * one is left out (and forgotten); at most as many as asked for. */
static void test_read_variants(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t gen = gen_of(s);
    const char *vary[3] = {"accept-language=de", "accept-language=fr", ""};
    for (int i = 0; i < 3; i++) {
        struct entry *e = make_entry("http://o/v", vary[i], vary[i], gen);
        assert_int_equal(store_write(s, e), CP_OK);
        entry_unref(e);
    }
    put(s, "http://o/other", "other");
    struct entry *got[STORE_MAX_VARIANTS];
    size_t n = store_read_variants(s, "http://o/v", SIZE_MAX, true, NULL, got, STORE_MAX_VARIANTS);
    assert_int_equal(n, 3);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(got[i]->key, "http://o/v");
        for (int k = 0; k < 3; k++) {
            if (strcmp(got[i]->vary_key, vary[k]) == 0) {
                assert_false(seen[k]);
                seen[k] = true;
                assert_int_equal(got[i]->body_len, strlen(vary[k]));
                assert_memory_equal(got[i]->body, vary[k], got[i]->body_len);
            }
        }
        entry_unref(got[i]);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    assert_int_equal(store_read_variants(s, "http://o/v", SIZE_MAX, true, NULL, got, 2), 2);
    entry_unref(got[0]);
    entry_unref(got[1]);
    assert_int_equal(
        store_read_variants(s, "http://o/none", SIZE_MAX, true, NULL, got, STORE_MAX_VARIANTS), 0);
    /* Records longer than asked for are left out: here all but the one of the
     * shortest body, "" (each record is its metadata and body). */
    struct where w0;
    assert_true(find_record(f->dir, "http://o/v", &w0)); /* the variant without Vary */
    size_t shortest = 0;
    n = store_read_variants(s, "http://o/v", (size_t)w0.len, false, &shortest, got,
                            STORE_MAX_VARIANTS);
    assert_int_equal(n, 1);
    assert_string_equal(got[0]->vary_key, "");
    entry_unref(got[0]);
    /* ...and the caller is told how long the shortest of them is: w0's, and the vary
     * key and the body "accept-language=de" (or "-fr", as long). */
    assert_int_equal(shortest, w0.len + 2 * strlen("accept-language=de"));
    n = store_read_variants(s, "http://o/v", SIZE_MAX, true, &shortest, got, STORE_MAX_VARIANTS);
    assert_int_equal(shortest, 0); /* none left out */
    for (size_t i = 0; i < n; i++)
        entry_unref(got[i]);

    /* find_record finds the last record of the key: the variant without Vary. */
    struct where w;
    assert_true(find_record(f->dir, "http://o/v", &w));
    damage(w.path, w.off + w.len - 1);
    for (int round = 0; round < 2; round++) { /* damaged, then forgotten */
        n = store_read_variants(s, "http://o/v", SIZE_MAX, true, NULL, got, STORE_MAX_VARIANTS);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(got[i]->vary_key[0] != '\0');
            entry_unref(got[i]);
        }
    }
    store_close(s);
}

/* The index may point at a record that is no longer what it was: a segment deleted or
 * replaced behind the store's back. It answers "not found" or "damaged", never another
 * record. */
static void test_read_never_wrong_record(void **state)
{
    struct fixture *f = *state;
    char other[128];
    snprintf(other, sizeof other, "%s/other", f->dir);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/main", f->dir);
    struct store *s, *o;
    assert_int_equal(store_open(dir, 0, &s), CP_OK);
    assert_int_equal(store_open(other, 0, &o), CP_OK);
    /* same lengths, same place in a segment of the same name */
    put(s, "http://o/key-x", "body x");
    put(o, "http://o/key-y", "body y");
    put(s, "http://o/next", "next");
    store_close(s);
    store_close(o);
    struct loaded l = {0};
    s = reopen_and_load(dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    loaded_free(&l);
    struct seglist a, b;
    list_segments(dir, &a);
    list_segments(other, &b);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.name[0], b.name[0]);
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/%s", other, b.name[0]);
    snprintf(to, sizeof to, "%s/%s", dir, a.name[0]);
    assert_int_equal(rename(from, to), 0);

    struct entry *e = (struct entry *)1;
    assert_int_equal(store_read(s, "http://o/key-x", "", &e), CP_ERR_KEY_MISMATCH);
    assert_null(e);
    assert_int_equal(store_read(s, "http://o/key-x", "", &e), CP_ERR_NOT_FOUND);
    /* the second record lies beyond the end of the file now */
    assert_int_equal(store_read(s, "http://o/next", "", &e), CP_ERR_CORRUPT);
    assert_null(e);
    store_close(s);

    /* A segment gone (deleted by someone else): not found. */
    assert_int_equal(store_open(dir, 0, &s), CP_OK);
    put(s, "http://o/later", "later");
    store_close(s);
    s = reopen_and_load(dir, 0, &l, NULL);
    assert_int_equal(l.n, 2); /* later, and key-y: the moved segment is sound */
    loaded_free(&l);
    assert_true(readable(s, "http://o/later", "later"));
    list_segments(dir, &a);
    for (size_t i = 0; i < a.n; i++)
        assert_int_equal(unlink(path_of(dir, a.name[i])), 0);
    assert_int_equal(store_read(s, "http://o/later", "", &e), CP_ERR_NOT_FOUND);
    assert_null(e);
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
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "http://o/%d", i);
        put(s, key, "x");
    }
    store_close(s);
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    int calls = 0;
    size_t loaded = 0;
    assert_int_equal(store_load(s, take_one, &calls, &loaded, NULL), CP_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(loaded, 1);
    /* What was not handed over is still on disk, and findable. */
    assert_int_equal(count_files(f->dir), 2);
    assert_true(readable(s, "http://o/4", "x"));
    store_close(s);
}

/* Replacement and removal are records too: they hold across a restart. */
static void test_replace_and_remove_survive_restart(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "old");
    put(s, "gone", "to be removed");
    put(s, "k", "newer body");
    put(s, "stays", "stays");
    assert_true(readable(s, "k", "newer body"));
    store_remove(s, "gone", "");
    assert_false(readable(s, "gone", NULL));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    /* the newest record wins, at its own place in the order */
    assert_string_equal(l.v[0]->key, "k");
    assert_memory_equal(l.v[0]->body, "newer body", 10);
    assert_string_equal(l.v[1]->key, "stays");
    assert_null(find_loaded(&l, "gone", ""));
    loaded_free(&l);
    assert_false(readable(s, "gone", NULL));

    /* Written again after its removal, it is back. */
    put(s, "gone", "back");
    store_remove(s, "stays", "");
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0]->key, "k");
    assert_string_equal(l.v[1]->key, "gone");
    assert_memory_equal(l.v[1]->body, "back", 4);
    loaded_free(&l);
    store_close(s);
}

/* A removal record is written only when a record may be on disk. */
static void test_removal_written_only_when_needed(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    /* an empty directory: everything on disk is known */
    store_remove(s, "never", "");
    assert_true(store_bytes(s) == 0);
    assert_int_equal(count_files(f->dir), 1);
    put(s, "k", "body");
    uint64_t before = store_bytes(s);
    store_remove(s, "k", "");
    assert_true(store_bytes(s) > before);
    before = store_bytes(s);
    store_remove(s, "k", ""); /* already removed */
    assert_true(store_bytes(s) == before);
    store_close(s);

    /* Not loaded yet: the disk may hold it, so the removal is written. */
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    before = store_bytes(s);
    store_remove(s, "unknown", "");
    assert_true(store_bytes(s) > before);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    /* Once loaded, the index knows all of the disk. */
    struct loaded l = {0};
    assert_int_equal(store_load(s, collect, &l, NULL, NULL), CP_OK);
    assert_int_equal(l.n, 0);
    before = store_bytes(s);
    store_remove(s, "unknown-too", "");
    assert_true(store_bytes(s) == before);
    store_close(s);
}

/* A damaged record in the middle of a segment is skipped; the others load. */
static void test_corrupt_record_in_middle(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    const char *keys[] = {"a", "body-flip", "c", "meta-flip", "e"};
    for (size_t i = 0; i < 5; i++)
        put(s, keys[i], "some body text");
    store_close(s);
    struct where w;
    assert_true(find_record(f->dir, "body-flip", &w));
    damage(w.path, w.off + w.head_and_meta + 3);
    assert_true(find_record(f->dir, "meta-flip", &w));
    damage(w.path, w.off + DISKFMT_HEAD_LEN + 2);
    uint64_t size = file_size(w.path);

    struct loaded l = {0};
    size_t removed = 0;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 3);
    assert_int_equal(removed, 2);
    assert_string_equal(l.v[0]->key, "a");
    assert_string_equal(l.v[1]->key, "c");
    assert_string_equal(l.v[2]->key, "e");
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(l.v[i]->body, "some body text", 14);
    loaded_free(&l);
    assert_false(readable(s, "body-flip", NULL));
    assert_false(readable(s, "meta-flip", NULL));
    assert_true(readable(s, "e", "some body text"));
    /* the damaged records stay as garbage: the segment is not rewritten */
    assert_true(file_size(w.path) == size);
    /* a fresh copy is loaded the next time */
    put(s, "body-flip", "fresh");
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 4);
    assert_int_equal(removed, 1); /* meta-flip, still there; body-flip is replaced */
    assert_string_equal(l.v[3]->key, "body-flip");
    assert_memory_equal(l.v[3]->body, "fresh", 5);
    loaded_free(&l);
    store_close(s);
}

/* A damaged header: the lengths after it cannot be believed, so the rest of its segment
 * is cut off; the records before it load. */
static void test_damaged_header_ends_segment(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    const char *keys[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        put(s, keys[i], "body");
    store_close(s);
    struct where w;
    assert_true(find_record(f->dir, "c", &w));
    damage(w.path, w.off + 13); /* in the metadata length */

    struct loaded l = {0};
    size_t removed = 0;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 2);
    assert_int_equal(removed, 1);
    assert_string_equal(l.v[0]->key, "a");
    assert_string_equal(l.v[1]->key, "b");
    loaded_free(&l);
    assert_true(file_size(w.path) == w.off); /* cut after b */
    assert_true(store_bytes(s) == w.off);
    assert_false(readable(s, "d", NULL));
    store_close(s);

    /* Damage at the very start: the whole segment is removed. */
    damage(w.path, 0);
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 0);
    assert_int_equal(removed, 1);
    assert_int_equal(count_files(f->dir), 1);
    assert_true(store_bytes(s) == 0);
    store_close(s);
}

/* What a crash in the middle of a write leaves: a record cut short at the end. */
static void test_truncated_tail(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "a", "body a");
    put(s, "b", "body b");
    put(s, "c", "body c, cut short");
    store_close(s);
    struct where w;
    assert_true(find_record(f->dir, "c", &w));
    assert_int_equal(truncate(w.path, (off_t)(w.off + w.len - 5)), 0);

    struct loaded l = {0};
    size_t removed = 0;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 2);
    assert_int_equal(removed, 1);
    assert_string_equal(l.v[0]->key, "a");
    assert_string_equal(l.v[1]->key, "b");
    loaded_free(&l);
    assert_true(file_size(w.path) == w.off); /* the damaged tail is gone */
    assert_false(readable(s, "c", NULL));
    /* New writes work, and everything loads again, without complaint. */
    put(s, "d", "body d");
    put(s, "c", "body c again");
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(removed, 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[0]->key, "a");
    assert_string_equal(l.v[1]->key, "b");
    assert_string_equal(l.v[2]->key, "d");
    assert_string_equal(l.v[3]->key, "c");
    loaded_free(&l);
    store_close(s);

    /* A cut inside the fixed header, too. */
    assert_true(find_record(f->dir, "c", &w));
    assert_int_equal(truncate(w.path, (off_t)(w.off + 20)), 0);
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 3);
    assert_int_equal(removed, 1);
    loaded_free(&l);
    store_close(s);
}

/* Files of the old format, and files named like segments that are none, are removed at
 * load; other files are left alone. */
static void test_foreign_files_removed(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "good", "good body");
    store_close(s);
    static const char *foreign[] = {
        "0123456789abcdef0123456789abcdef.cpe",           /* one entry, format 1 */
        "0123456789abcdef0123456789abcdef.tmp.1234.0",    /* its temporary file */
        "junk.cps",                                       /* not a segment name */
        "00000000000000ff.cps",                           /* not a segment inside */
    };
    for (size_t i = 0; i < 4; i++)
        write_file(path_of(f->dir, foreign[i]), "this is not a cache record\n", 27);
    write_file(path_of(f->dir, "README"), "mine", 4);

    struct loaded l = {0};
    size_t removed = 0;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, "good");
    loaded_free(&l);
    assert_int_equal(removed, 4);
    for (size_t i = 0; i < 4; i++)
        assert_false(exists(f->dir, foreign[i]));
    assert_true(exists(f->dir, "README"));
    assert_int_equal(count_files(f->dir), 3); /* generation, the segment, README */
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

/* Records of an older generation that survived a clear are garbage: skipped quietly. */
static void test_stale_generation_skipped(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "old", "from before the clear");
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_int_equal(segs.n, 1);
    char path[256];
    snprintf(path, sizeof path, "%s", path_of(f->dir, segs.name[0]));
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char bytes[4096];
    size_t len = fread(bytes, 1, sizeof bytes, fp);
    fclose(fp);
    store_close(s);

    size_t entries;
    uint64_t cleared;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 1);
    write_file(path, bytes, len); /* as if the clear had missed it */

    struct loaded l = {0};
    size_t removed = 99;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(l.n, 0);
    assert_int_equal(removed, 0);
    assert_false(readable(s, "old", NULL));
    store_close(s);
}

static void test_clear(void **state)
{
    struct fixture *f = *state;
    struct store *server, *other;
    assert_int_equal(store_open(f->dir, 0, &server), CP_OK);
    assert_int_equal(store_open(f->dir, 0, &other), CP_OK);
    uint64_t gen = gen_of(server);
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put(server, key, "0123456789");
    }
    uint64_t bytes = disk_bytes(f->dir);

    size_t entries = 99;
    uint64_t cleared = 99;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 3);
    assert_true(cleared == bytes);
    assert_int_equal(count_files(f->dir), 1);
    /* Both running mappings see the new generation at once. */
    assert_true(gen_of(server) == gen + 1);
    assert_true(gen_of(other) == gen + 1);
    /* The open store stops seeing what it wrote before. */
    assert_false(readable(server, "k0", NULL));
    assert_true(store_bytes(server) == 0);

    /* An entry made before the clear and written after it is not written; one of the
     * new generation is, to a new segment, and loads. */
    struct entry *late = make_entry("late", "", "old data", gen);
    struct entry *fresh = make_entry("fresh", "", "new data", gen + 1);
    assert_int_equal(store_write(server, late), CP_ERR_STALE_GEN);
    assert_int_equal(count_files(f->dir), 1);
    assert_int_equal(store_write(server, fresh), CP_OK);
    assert_true(readable(server, "fresh", "new data"));
    assert_true(store_bytes(server) == disk_bytes(f->dir));
    struct loaded l = {0};
    size_t loaded, removed;
    assert_int_equal(store_load(other, collect, &l, &loaded, &removed), CP_OK);
    assert_int_equal(loaded, 1);
    assert_int_equal(removed, 0);
    assert_string_equal(l.v[0]->key, "fresh");
    loaded_free(&l);

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

/* The count is of live entries: replaced and removed records are not counted, and
 * files of the old format are, one entry each. */
static void test_clear_counts_live_entries(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "a", "1");
    put(s, "a", "2");
    put(s, "b", "1");
    put(s, "c", "1");
    store_remove(s, "c", "");
    store_close(s);
    write_file(path_of(f->dir, "0123456789abcdef0123456789abcdef.cpe"), "old", 3);
    write_file(path_of(f->dir, "README"), "mine", 4);
    uint64_t bytes = disk_bytes(f->dir) + 3;
    size_t entries;
    uint64_t cleared;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 3); /* a, b and the old file */
    assert_true(cleared == bytes);
    assert_int_equal(count_files(f->dir), 2); /* generation, README */
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

static void test_bytes_after_clear(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "key-0", "ten bytes!");
    put(s, "key-1", "ten bytes!");
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    assert_true(store_bytes(s) > 0);
    /* what --clear-cache does from another process */
    size_t entries;
    uint64_t cleared;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 2);
    assert_true(store_bytes(s) == 0);
    put(s, "key-2", "ten bytes!");
    struct entry *e = make_entry("key-2", "", "ten bytes!", gen_of(s));
    assert_true(store_bytes(s) == record_size(e));
    entry_unref(e);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

/* Two stores on one directory (a test, or --clear-cache's count meanwhile) never write
 * to the same segment. */
static void test_two_stores_one_directory(void **state)
{
    struct fixture *f = *state;
    struct store *a, *b;
    assert_int_equal(store_open(f->dir, 0, &a), CP_OK);
    assert_int_equal(store_open(f->dir, 0, &b), CP_OK);
    put(a, "from-a", "a");
    put(b, "from-b", "b");
    put(a, "from-a2", "a2");
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_int_equal(segs.n, 2);
    store_close(a);
    store_close(b);
    struct loaded l = {0};
    struct store *s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 3);
    assert_non_null(find_loaded(&l, "from-a", ""));
    assert_non_null(find_loaded(&l, "from-b", ""));
    assert_non_null(find_loaded(&l, "from-a2", ""));
    loaded_free(&l);
    store_close(s);
}

/* Polls until store_read finds `key` (the mirror writes in the background). */
static bool wait_readable(struct store *s, const char *key, double seconds)
{
    struct timespec start, now, nap = {0, 2000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (readable(s, key, NULL))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
            seconds)
            return false;
        nanosleep(&nap, NULL);
    }
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
    /* Written in the background: found once the writer got to it. */
    assert_true(wait_readable(s, "https://example.com/9", 10.0));
    /* Order is kept: written then removed ends with no record; removed then written
     * ends with the record. */
    mirror_remove_all(m, "https://example.com/3");
    struct entry *e = make_entry("https://example.com/gone", "", "x", gen_of(s));
    mirror_remove_all(m, "https://example.com/gone");
    mirror_write(m, e);
    entry_unref(e);
    mirror_stop(m);
    mirror_stop(NULL);

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "https://example.com/%d", i);
        assert_true(readable(s, key, "mirrored") == (i != 3));
    }
    assert_true(readable(s, "https://example.com/gone", "x"));
    store_close(s);
    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 10);
    assert_null(find_loaded(&l, "https://example.com/3", ""));
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

/* A written key counts as pending until its record is in the store's index (never
 * false before), and most other keys do not (they share its counter 1 time in 4096);
 * a write and a removal reach the store in order. */
static void test_mirror_pending(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct mirror *m;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    const char *key = "https://example.com/p";
    assert_false(mirror_pending(m, key));
    struct entry *e = make_entry(key, "", "body", gen_of(s));
    mirror_write(m, e);
    entry_unref(e);
    size_t others = 0;
    char other[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(other, sizeof other, "https://example.com/o%d", i);
        others += mirror_pending(m, other);
    }
    assert_true(others < 10);
    struct entry *got = NULL;
    struct timespec nap = {0, 1000000};
    for (int i = 0; i < 5000 && mirror_pending(m, key); i++)
        nanosleep(&nap, NULL);
    assert_false(mirror_pending(m, key));
    assert_int_equal(store_read(s, key, "", &got), CP_OK); /* no longer pending: there */
    assert_memory_equal(got->body, "body", 4);
    entry_unref(got);

    mirror_remove_all(m, key);
    mirror_write(m, e = make_entry(key, "", "again", gen_of(s)));
    entry_unref(e);
    mirror_remove_all(m, "https://example.com/gone");
    mirror_stop(m); /* writes everything queued, in order */
    assert_int_equal(store_read(s, key, "", &got), CP_OK);
    assert_memory_equal(got->body, "again", 5);
    entry_unref(got);
    store_close(s);
}

static void key_of(int i, char *out, size_t len)
{
    snprintf(out, len, "key-%d", i);
}

/* The body of every record fill_segments writes: 20,000 'y's. */
static const char *seg_body(void)
{
    static char body[20001];
    if (body[0] == '\0')
        memset(body, 'y', sizeof body - 1);
    return body;
}

/* Writes key-0 .. key-<10 * segments - 1> (seg_body each) into `segments` segments of
 * their own (a store never appends to a segment it did not start: a restart after every
 * ten records), with no bound, and closes the store. */
static void fill_segments(const char *dir, int segments)
{
    const char *body = seg_body();
    for (int seg = 0; seg < segments; seg++) {
        struct store *s;
        assert_int_equal(store_open(dir, 0, &s), CP_OK);
        for (int i = seg * 10; i < seg * 10 + 10; i++) {
            char key[32];
            key_of(i, key, sizeof key);
            put(s, key, body);
        }
        store_close(s);
    }
}

/* How many of this process's descriptors are of files under `dir` deleted since they
 * were opened: held, their space is not freed. */
static int deleted_fds(const char *dir)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, dir, strlen(dir)) == 0 && strstr(target, " (deleted)") != NULL)
            n++;
    }
    closedir(d);
    return n;
}

/* Which of key-0 .. key-<n-1> store_read finds; checks that they are the newest ones
 * (the oldest go first) and returns the first found (n: none). */
static int check_newest_kept(struct store *s, int n)
{
    int first = n;
    for (int i = 0; i < n; i++) {
        char key[32];
        key_of(i, key, sizeof key);
        bool found = readable(s, key, NULL);
        if (found && first == n)
            first = i;
        if (first < n && !found)
            fail_msg("key-%d is gone while the older key-%d is kept", i, first);
    }
    return first;
}

static void test_bound_removes_oldest_segments(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 1u << 20;
    const uint64_t seg = store_segment_bytes(bound);
    char *body = malloc(16001);
    assert_non_null(body);
    memset(body, 'x', 16000);
    body[16000] = '\0';
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    struct entry *probe = make_entry("key-0", "", body, 0);
    uint64_t rec = record_size(probe);
    entry_unref(probe);
    const int n = 150; /* over twice the bound */
    for (int i = 0; i < n; i++) {
        char key[32];
        key_of(i, key, sizeof key);
        put(s, key, body);
        assert_true(store_bytes(s) <= bound);
        assert_true(store_bytes(s) == disk_bytes(f->dir));
        assert_true(readable(s, key, NULL)); /* the segment being written is spared */
    }
    /* The segments read from are kept open, but not those deleted. */
    assert_int_equal(deleted_fds(f->dir), 0);
    int first = check_newest_kept(s, n);
    assert_true(first > 0);
    /* Whole segments go: what is left uses the room but for about one segment. */
    assert_true((uint64_t)(n - first) * rec + seg + rec >= bound);
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_true(segs.n <= bound / seg + 1);
    store_close(s);

    /* A restart loads exactly what is left, in order. */
    struct loaded l = {0};
    s = reopen_and_load(f->dir, bound, &l, NULL);
    assert_int_equal(l.n, (size_t)(n - first));
    for (size_t i = 0; i < l.n; i++) {
        char key[32];
        key_of(first + (int)i, key, sizeof key);
        assert_string_equal(l.v[i]->key, key);
    }
    loaded_free(&l);

    /* Rewriting an old key makes it the newest: it outlives the ones after it. */
    char key[32];
    key_of(first, key, sizeof key);
    put(s, key, "rewritten");
    for (int i = n; i < n + 20; i++) { /* more than a segment: the oldest goes */
        char k[32];
        key_of(i, k, sizeof k);
        put(s, k, body);
    }
    assert_true(readable(s, key, "rewritten"));
    key_of(first + 1, key, sizeof key);
    assert_false(readable(s, key, NULL));
    free(body);
    store_close(s);
}

static void test_bound_too_large_record(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 256u << 10;
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    put(s, "key-0", "small");
    put(s, "key-1", "small");

    char *body = malloc(bound + 1);
    assert_non_null(body);
    memset(body, 'x', bound);
    body[bound] = '\0';
    /* A newer, larger answer for key-0: not written, and the older record goes too. */
    struct entry *big = make_entry("key-0", "", body, gen_of(s));
    assert_true(record_size(big) > bound);
    uint64_t before = disk_bytes(f->dir);
    assert_int_equal(store_write(s, big), CP_ERR_TOO_LARGE);
    assert_false(readable(s, "key-0", NULL));
    assert_true(readable(s, "key-1", "small"));
    assert_true(disk_bytes(f->dir) < before + 1000); /* a removal record at most */
    /* for a key with no record, nothing moves */
    struct entry *other = make_entry("key-7", "", body, gen_of(s));
    before = store_bytes(s);
    assert_int_equal(store_write(s, other), CP_ERR_TOO_LARGE);
    assert_true(store_bytes(s) == before);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
    /* and the older record of key-0 does not come back after a restart */
    struct loaded l = {0};
    s = reopen_and_load(f->dir, bound, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, "key-1");
    loaded_free(&l);

    /* A record of exactly the bound is kept, alone, in a segment of its own. */
    body[bound - (record_size(big) - bound)] = '\0';
    struct entry *exact = make_entry("key-0", "", body, gen_of(s));
    assert_true(record_size(exact) == bound);
    assert_int_equal(store_write(s, exact), CP_OK);
    assert_true(store_bytes(s) == bound);
    assert_true(disk_bytes(f->dir) == bound);
    assert_true(readable(s, "key-0", NULL));
    assert_false(readable(s, "key-1", NULL));
    /* and the next record starts a segment of its own, which takes its room */
    put(s, "key-2", "small");
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_int_equal(segs.n, 1);
    assert_true(readable(s, "key-2", "small"));
    assert_false(readable(s, "key-0", NULL));
    free(body);
    entry_unref(big);
    entry_unref(other);
    entry_unref(exact);
    store_close(s);
}

/* A directory over the bound (a smaller --max-disk than before) loads whole; the next
 * write brings it under the bound, oldest segments first. */
static void test_load_then_bound(void **state)
{
    struct fixture *f = *state;
    fill_segments(f->dir, 6);
    struct store *s;
    uint64_t all = disk_bytes(f->dir);

    const uint64_t bound = all / 2;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    assert_true(store_bytes(s) == all); /* known from the names and sizes at open */
    struct loaded l = {0};
    size_t loaded;
    assert_int_equal(store_load(s, collect, &l, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 60);
    assert_string_equal(l.v[0]->key, "key-0"); /* oldest first */
    loaded_free(&l);
    assert_true(store_bytes(s) == all);
    put(s, "key-60", "small");
    assert_true(store_bytes(s) <= bound);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    int first = check_newest_kept(s, 61);
    assert_int_equal(first % 10, 0); /* whole segments went */
    assert_true(first >= 30);
    store_close(s);
}

static void test_mirror_bounded(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 256u << 10;
    char body[8001];
    memset(body, 'm', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    struct mirror *m;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    for (int i = 0; i < 100; i++) {
        char key[32];
        key_of(i, key, sizeof key);
        struct entry *e = make_entry(key, "", body, gen_of(s));
        mirror_write(m, e);
        entry_unref(e);
    }
    mirror_stop(m);
    /* written in order, so the newest are what is left */
    int first = check_newest_kept(s, 100);
    assert_true(first > 0 && first < 100);
    assert_true(readable(s, "key-99", body));
    assert_true(store_bytes(s) <= bound);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);
}

/* What the load's callback does meanwhile, as the front end and the mirror would. */
struct during {
    struct store *s;
    struct loaded got;
    int calls;
};

static bool meanwhile(void *arg, struct entry *e)
{
    struct during *d = arg;
    if (d->calls++ == 0) {
        /* phase 2 has begun: every record is findable, also those not handed over yet */
        assert_true(readable(d->s, "key-9", "body 9"));
        assert_true(readable(d->s, "key-1", "body 1"));
        /* a newer answer and a removal for keys not handed over yet */
        put(d->s, "key-5", "newer 5");
        store_remove(d->s, "key-6", "");
        put(d->s, "key-new", "new");
    }
    return collect(&d->got, e);
}

static void test_read_and_write_during_load(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (int i = 0; i < 10; i++) {
        char key[32], body[32];
        key_of(i, key, sizeof key);
        snprintf(body, sizeof body, "body %d", i);
        put(s, key, body);
    }
    store_close(s);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    /* before the load, the index does not know the disk yet */
    assert_false(readable(s, "key-1", NULL));
    struct during d = {.s = s};
    size_t loaded;
    assert_int_equal(store_load(s, meanwhile, &d, &loaded, NULL), CP_OK);
    /* the superseded and the removed record are not handed over */
    assert_int_equal(loaded, 8);
    assert_non_null(find_loaded(&d.got, "key-4", ""));
    assert_null(find_loaded(&d.got, "key-5", ""));
    assert_null(find_loaded(&d.got, "key-6", ""));
    assert_null(find_loaded(&d.got, "key-new", ""));
    loaded_free(&d.got);
    assert_true(readable(s, "key-5", "newer 5"));
    assert_false(readable(s, "key-6", NULL));
    assert_true(readable(s, "key-new", "new"));
    assert_true(readable(s, "key-9", "body 9"));
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 10);
    assert_null(find_loaded(&l, "key-6", ""));
    assert_memory_equal(find_loaded(&l, "key-5", "")->body, "newer 5", 7);
    loaded_free(&l);
    store_close(s);
}

/* Readers on other threads while the writer fills the bound and deletes segments: what
 * they get is always the right entry, whole. */
struct reader_arg {
    struct store *s;
    atomic_bool *stop;
    unsigned seed;
    long found;
};

static void body_for(int i, char *out, size_t len)
{
    int n = snprintf(out, len, "body-%d/", i);
    memset(out + n, 'a' + i % 26, len - 1 - (size_t)n);
    out[len - 1] = '\0';
}

static void *reader_main(void *arg)
{
    struct reader_arg *r = arg;
    char body[3001];
    while (!atomic_load(r->stop)) {
        int i = (int)(rand_r(&r->seed) % 400);
        char key[32];
        key_of(i, key, sizeof key);
        struct entry *e = NULL;
        if (store_read(r->s, key, "", &e) == CP_OK) {
            body_for(i, body, sizeof body);
            if (strcmp(e->key, key) != 0 || e->body_len != strlen(body) ||
                memcmp(e->body, body, e->body_len) != 0)
                abort(); /* cmocka's asserts are for the main thread */
            entry_unref(e);
            r->found++;
        }
    }
    return NULL;
}

static void test_reads_while_trimming(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 256u << 10, &s), CP_OK);
    atomic_bool stop;
    atomic_init(&stop, false);
    pthread_t t[3];
    struct reader_arg ra[3];
    for (int i = 0; i < 3; i++) {
        ra[i] = (struct reader_arg){s, &stop, (unsigned)i + 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &ra[i]), 0);
    }
    char body[3001];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 400; i++) {
            char key[32];
            key_of(i, key, sizeof key);
            body_for(i, body, sizeof body);
            put(s, key, body);
            if (i % 50 == 0)
                store_remove(s, key, "");
        }
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_true(store_bytes(s) <= 256u << 10);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    assert_true(readable(s, "key-399", NULL));
    store_close(s);
}

/* ---- failures of the disk ---------------------------------------------------------- */

/* Turns on or off, for this thread, what lets root open any file (CAP_DAC_OVERRIDE,
 * CAP_DAC_READ_SEARCH), within what it is permitted; for anyone else a no-op. */
static void permission_override(bool on)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return;
    uint32_t bits = 1u << CAP_DAC_OVERRIDE | 1u << CAP_DAC_READ_SEARCH;
    if (on)
        data[0].effective |= bits & data[0].permitted;
    else
        data[0].effective &= ~bits;
    (void)syscall(SYS_capset, &hdr, data);
}

static void make_readable(const char *path)
{
    permission_override(true);
    assert_int_equal(chmod(path, 0600), 0);
}

/* Makes the file `path` unreadable, as chmod 000 does for anyone but root (who, on this
 * thread, is then treated like anyone else). False if it can still be opened here. */
static bool make_unreadable(const char *path)
{
    assert_int_equal(chmod(path, 0), 0);
    permission_override(false);
    int fd = open(path, O_RDONLY);
    if (fd < 0 && errno == EACCES)
        return true;
    if (fd >= 0)
        close(fd);
    make_readable(path);
    return false;
}

/* A full disk, for this process: no regular file grows past `bytes` (writes past it
 * fail with EFBIG instead of raising SIGXFSZ). Undone by disk_unlimited. */
struct fsize_limit {
    struct rlimit old;
    void (*old_handler)(int);
};

static void disk_full_at(uint64_t bytes, struct fsize_limit *saved)
{
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved->old), 0);
    saved->old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {(rlim_t)bytes, saved->old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

static void disk_unlimited(const struct fsize_limit *saved)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved->old), 0);
    signal(SIGXFSZ, saved->old_handler);
}

/* The one segment of `dir` written last (the newest). */
static void newest_segment(const char *dir, char *path, size_t len)
{
    struct seglist segs;
    list_segments(dir, &segs);
    assert_true(segs.n > 0);
    snprintf(path, len, "%s", path_of(dir, segs.name[segs.n - 1]));
}

/* A segment that cannot be read may hold newer records and removals of the keys in
 * older segments: those are left out, the newer segments load, the unreadable one stays
 * counted, and every removal goes to disk meanwhile. */
static void test_unreadable_segment(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    /* three segments, a restart after each: A, U (to be unreadable), N */
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "k from A");
    put(s, "r", "r from A");
    put(s, "a-only", "a");
    store_close(s);
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "k from U");
    store_remove(s, "r", "");
    put(s, "u-only", "u");
    store_close(s);
    char upath[256];
    newest_segment(f->dir, upath, sizeof upath);
    uint64_t usize = file_size(upath);
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "n", "n from N");
    store_close(s);
    uint64_t all = disk_bytes(f->dir);

    if (!make_unreadable(upath))
        skip();
    struct loaded l = {0};
    size_t removed = 99;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    /* only what no unread record can outdate */
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, "n");
    assert_int_equal(removed, 0);
    loaded_free(&l);
    assert_false(readable(s, "k", NULL)); /* not "k from A": U has a newer one */
    assert_false(readable(s, "r", NULL)); /* U removed it */
    assert_false(readable(s, "a-only", NULL));
    assert_false(readable(s, "u-only", NULL));
    assert_true(readable(s, "n", "n from N"));
    /* left as it was, and still counted */
    assert_true(file_size(upath) == usize);
    assert_true(store_bytes(s) == all);
    /* a removal is written even for a key the index does not know */
    store_remove(s, "u-only", "");
    assert_true(store_bytes(s) > all);
    uint64_t before = store_bytes(s);
    store_remove(s, "never-written", "");
    assert_true(store_bytes(s) > before);
    store_close(s);
    make_readable(upath);

    /* Readable again: everything is where it belongs, the removal included. */
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(removed, 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0]->key, "a-only");
    assert_string_equal(l.v[1]->key, "k");
    assert_memory_equal(l.v[1]->body, "k from U", 8);
    assert_string_equal(l.v[2]->key, "n");
    loaded_free(&l);
    assert_false(readable(s, "r", NULL));
    assert_false(readable(s, "u-only", NULL));
    store_close(s);
}

/* An unreadable segment is still under the bound: deleted in its turn, oldest first. */
static void test_unreadable_segment_trimmed(void **state)
{
    struct fixture *f = *state;
    fill_segments(f->dir, 4);
    struct store *s;
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_int_equal(segs.n, 4);
    char oldest[256];
    snprintf(oldest, sizeof oldest, "%s", path_of(f->dir, segs.name[0]));
    uint64_t all = disk_bytes(f->dir);

    if (!make_unreadable(oldest))
        skip();
    const uint64_t bound = all - all / 8; /* the oldest must go */
    struct loaded l = {0};
    s = reopen_and_load(f->dir, bound, &l, NULL);
    assert_int_equal(l.n, 30); /* the three newer segments */
    loaded_free(&l);
    assert_true(store_bytes(s) == all);
    put(s, "key-40", "small");
    assert_false(exists(f->dir, segs.name[0]));
    assert_true(store_bytes(s) <= bound);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    assert_true(readable(s, "key-39", seg_body()));
    permission_override(true);
    store_close(s);
}

/* After a restart, the directory (with no bound) loads one entry: the one of `key`. */
static void assert_restart_loads_only(const char *dir, const char *key)
{
    struct loaded l = {0};
    struct store *s = reopen_and_load(dir, 0, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, key);
    loaded_free(&l);
    store_close(s);
}

/* A newer answer that cannot be written (a full disk) must not leave the older one to
 * be served, now or after a restart. */
static void test_failed_write_removes_older(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "older body");
    put(s, "other", "other body");
    char seg[256];
    newest_segment(f->dir, seg, sizeof seg);
    /* room for a removal record, not for the newer entry */
    char body[1001];
    memset(body, 'n', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct entry *newer = make_entry("k", "", body, gen_of(s));
    struct fsize_limit saved;
    disk_full_at(file_size(seg) + 200, &saved);
    cp_err err = store_write(s, newer);
    disk_unlimited(&saved);
    assert_int_equal(err, CP_ERR_IO);
    assert_false(readable(s, "k", NULL));
    assert_true(readable(s, "other", "other body"));
    assert_true(store_bytes(s) == disk_bytes(f->dir)); /* the failed record cut back */
    entry_unref(newer);
    store_close(s);
    assert_restart_loads_only(f->dir, "other");
}

/* The body of entry `i` of a batch, `size` bytes, telling which entry it is. */
static char *batch_body(int i, size_t size)
{
    char *b = malloc(size + 1);
    assert_non_null(b);
    memset(b, 'a' + i % 26, size);
    int n = snprintf(b, size + 1, "entry %d ", i);
    b[n] = '.';
    b[size] = '\0';
    return b;
}

/* A batch written at once ends as the same entries written one by one would: in order
 * across several segments and runs of records, a later record of a key winning over an
 * earlier one, an entry of an old generation skipped, and a removal (an entry too large
 * to keep) landing after the records written before it in the batch, not before. */
static void test_write_many_in_order(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 1u << 20; /* segments of 256 KiB */
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    uint64_t gen = gen_of(s);
    put(s, "m-41", "older"); /* so that entry 40's removal of m-41 goes to disk */
    enum { N = 90 };
    struct entry *ev[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        char *body = batch_body(i, i == 30 || i == 40 ? bound : 4000);
        snprintf(key, sizeof key, "m-%d", i == 10 ? 3 : i == 30 ? 5 : i == 40 ? 41 : i);
        ev[i] = make_entry(key, "", body, i == 20 ? gen - 1 : gen);
        free(body);
    }
    cp_err errs[N];
    assert_int_equal(store_write_many(s, (const struct entry *const *)ev, N, errs),
                     CP_ERR_STALE_GEN);
    for (int i = 0; i < N; i++) {
        cp_err want = i == 20 ? CP_ERR_STALE_GEN : i == 30 || i == 40 ? CP_ERR_TOO_LARGE
                                                                       : CP_OK;
        if (errs[i] != want)
            fail_msg("entry %d: %s, expected %s", i, cp_strerror(errs[i]), cp_strerror(want));
    }
    struct seglist segs;
    list_segments(f->dir, &segs);
    assert_true(segs.n >= 2);
    for (size_t i = 0; i < segs.n; i++) /* each filled up to its nominal size only */
        assert_true(file_size(path_of(f->dir, segs.name[i])) <= store_segment_bytes(bound));
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    /* What each key should give: the last entry of it written, none for m-5 (removed
     * after its record) and m-20 (never written); m-41's record follows the removal of
     * its older one. */
    for (int pass = 0; pass < 2; pass++) {
        struct loaded l = {0};
        if (pass == 1) {
            store_close(s);
            s = reopen_and_load(f->dir, bound, &l, NULL);
        }
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof key, "m-%d", i);
            int from = i == 3 ? 10 : i;
            bool gone = i == 5 || i == 20 || i == 10 || i == 30 || i == 40;
            char *body = batch_body(from, 4000);
            if (pass == 0) {
                assert_int_equal(readable(s, key, gone ? NULL : body), !gone);
            } else {
                struct entry *e = find_loaded(&l, key, "");
                assert_int_equal(e != NULL, !gone);
                if (e != NULL) {
                    assert_int_equal(e->body_len, 4000);
                    assert_memory_equal(e->body, body, 4000);
                }
            }
            free(body);
        }
        if (pass == 1) {
            assert_int_equal(l.n, N - 5);
            loaded_free(&l);
        }
    }
    for (int i = 0; i < N; i++)
        entry_unref(ev[i]);
    store_close(s);
}

/* A batch that the disk cannot take: its run of records fails as a whole, cut back from
 * the segment, and the older records of its keys are removed, so that none is served
 * now or after a restart; what was there before of other keys stays. */
static void test_write_many_disk_full(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    char key[32];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k-%d", i);
        put(s, key, "older body");
    }
    put(s, "other", "other body");
    char seg[256];
    newest_segment(f->dir, seg, sizeof seg);
    struct entry *ev[4];
    for (int i = 0; i < 4; i++) {
        char *body = batch_body(i, 1000);
        snprintf(key, sizeof key, "k-%d", i);
        ev[i] = make_entry(key, "", body, gen_of(s));
        free(body);
    }
    cp_err errs[4];
    struct fsize_limit saved;
    /* room for the first record, or for the four removal records, not for the batch */
    disk_full_at(file_size(seg) + 1200, &saved);
    cp_err err = store_write_many(s, (const struct entry *const *)ev, 4, errs);
    disk_unlimited(&saved);
    assert_int_equal(err, CP_ERR_IO);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(errs[i], CP_ERR_IO);
        snprintf(key, sizeof key, "k-%d", i);
        assert_false(readable(s, key, NULL));
    }
    assert_true(readable(s, "other", "other body"));
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    for (int i = 0; i < 4; i++)
        entry_unref(ev[i]);
    store_close(s);
    assert_restart_loads_only(f->dir, "other");
}

/* When not even the removal record fits, it waits, and is written before anything
 * written after it: at the next record, or at the latest when the store is closed. */
static void test_failed_removal_waits(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "older k");
    put(s, "j", "older j");
    put(s, "stays", "stays");
    char seg[256];
    newest_segment(f->dir, seg, sizeof seg);
    uint64_t full = file_size(seg);
    struct entry *newer = make_entry("k", "", "newer k", gen_of(s));
    struct fsize_limit saved;
    disk_full_at(full, &saved); /* not one more byte */
    cp_err err = store_write(s, newer);
    store_remove(s, "j", "");
    struct entry *other = make_entry("other", "", "other", gen_of(s));
    cp_err err_other = store_write(s, other); /* cannot pass the waiting removals */
    disk_unlimited(&saved);
    assert_int_equal(err, CP_ERR_IO);
    assert_int_equal(err_other, CP_ERR_IO);
    assert_true(file_size(seg) == full);
    assert_false(readable(s, "k", NULL));
    assert_false(readable(s, "j", NULL));
    assert_false(readable(s, "other", NULL));
    /* room again: the removals go first, then j's newer record, which stays */
    put(s, "j", "newer j");
    assert_true(readable(s, "j", "newer j"));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0]->key, "stays");
    assert_string_equal(l.v[1]->key, "j");
    assert_memory_equal(l.v[1]->body, "newer j", 7);
    loaded_free(&l);

    /* Pending at close: written then. */
    put(s, "m", "m"); /* a segment of this store's own */
    newest_segment(f->dir, seg, sizeof seg);
    disk_full_at(file_size(seg), &saved);
    store_remove(s, "stays", "");
    disk_unlimited(&saved);
    assert_false(readable(s, "stays", NULL));
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    assert_null(find_loaded(&l, "stays", ""));
    loaded_free(&l);
    store_close(s);
    entry_unref(newer);
    entry_unref(other);
}

/* A field the format cannot hold is like a record over the bound: not written, and the
 * older record goes. */
static void test_unencodable_entry_removes_older(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "k", "older");
    struct entry *bad = make_entry("k", "", "newer", gen_of(s));
    bad->status = -1; /* no such status in the format */
    assert_int_equal(store_write(s, bad), CP_ERR_TOO_LARGE);
    assert_false(readable(s, "k", NULL));
    entry_unref(bad);
    store_close(s);
    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 0);
    store_close(s);
}

/* A segment that cannot be deleted stops the trimming: the newer ones, which may hold
 * removals of its records, stay until it is gone. */
static void test_trim_stops_at_undeletable_segment(void **state)
{
    struct fixture *f = *state;
    const uint64_t bound = 256u << 10;
    char body[15001];
    memset(body, 't', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    struct store *s;
    assert_int_equal(store_open(f->dir, bound, &s), CP_OK);
    int n = 0;
    struct seglist segs;
    do { /* two segments */
        char key[32];
        key_of(n++, key, sizeof key);
        put(s, key, body);
        list_segments(f->dir, &segs);
    } while (segs.n < 2);
    /* The oldest segment cannot be deleted: a directory stands in its place. */
    char oldest[256];
    snprintf(oldest, sizeof oldest, "%s", path_of(f->dir, segs.name[0]));
    assert_int_equal(unlink(oldest), 0);
    assert_int_equal(mkdir(oldest, 0700), 0);
    char second[32], in_second[32];
    snprintf(second, sizeof second, "%s", segs.name[1]);
    key_of(n - 1, in_second, sizeof in_second); /* the record that started it */
    for (int i = 0; i < 40; i++, n++) { /* over twice the bound */
        char key[32];
        key_of(n, key, sizeof key);
        put(s, key, body);
    }
    assert_true(exists(f->dir, second));
    assert_true(store_bytes(s) > bound);
    assert_true(readable(s, in_second, body));

    /* Gone at last: the next write trims down to the bound. */
    assert_int_equal(rmdir(oldest), 0);
    char key[32];
    key_of(n, key, sizeof key);
    put(s, key, body);
    assert_true(store_bytes(s) <= bound);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    assert_true(readable(s, key, body));
    store_close(s);
}

static bool stop_at_first(void *arg, struct entry *e)
{
    struct during *d = arg;
    store_load_stop(d->s);
    return collect(&d->got, e); /* asks to go on: the stop request is what ends it */
}

/* A load asked to stop (a shutdown): before reading the headers it loads nothing, and
 * the store goes on as before a load; while handing over it stops there. */
static void test_load_stop_request(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (int i = 0; i < 6; i++) {
        char key[32];
        key_of(i, key, sizeof key);
        put(s, key, "x");
        if (i == 2) {
            store_close(s);
            assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
        }
    }
    store_close(s);
    uint64_t all = disk_bytes(f->dir);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    store_load_stop(s);
    struct loaded l = {0};
    size_t loaded = 99;
    assert_int_equal(store_load(s, collect, &l, &loaded, NULL), CP_ERR_SHUTDOWN);
    assert_int_equal(loaded, 0);
    assert_int_equal(l.n, 0);
    assert_false(readable(s, "key-0", NULL));
    assert_true(store_bytes(s) == all);
    store_remove(s, "key-0", ""); /* the disk may hold it: written */
    assert_true(store_bytes(s) > all);
    store_close(s);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct during d = {.s = s};
    assert_int_equal(store_load(s, stop_at_first, &d, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 1);
    assert_int_equal(d.got.n, 1);
    assert_string_equal(d.got.v[0]->key, "key-1");
    loaded_free(&d.got);
    /* the rest is indexed, and found */
    assert_true(readable(s, "key-5", "x"));
    assert_false(readable(s, "key-0", NULL));
    store_close(s);
}

/* ---- removal of every variant of a key ------------------------------------------ */

/* Writes a variant (key, vary) with this body, of the store's generation. */
static void put_variant(struct store *s, const char *key, const char *vary, const char *body)
{
    struct entry *e = make_entry(key, vary, body, gen_of(s));
    assert_int_equal(store_write(s, e), CP_OK);
    entry_unref(e);
}

/* store_read's verdict on a variant, the body checked when found. */
static bool variant_readable(struct store *s, const char *key, const char *vary,
                             const char *body)
{
    struct entry *e = NULL;
    cp_err err = store_read(s, key, vary, &e);
    if (err != CP_OK) {
        assert_null(e);
        return false;
    }
    assert_string_equal(e->key, key);
    assert_string_equal(e->vary_key, vary);
    if (body != NULL) {
        assert_int_equal(e->body_len, strlen(body));
        assert_memory_equal(e->body, body, e->body_len);
    }
    entry_unref(e);
    return true;
}

static const char *const langs[] = {"", "accept-language=de", "accept-language=fr"};
#define NLANGS (sizeof langs / sizeof langs[0])

/* Every variant goes, in this run and after a restart; other keys, also one that is a
 * prefix or an extension of it and one with the same vary key, stay. */
static void test_remove_all_variants(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (size_t i = 0; i < NLANGS; i++)
        put_variant(s, "https://o/u", langs[i], langs[i]);
    put_variant(s, "https://o/u2", "accept-language=de", "u2");
    put_variant(s, "https://o/", "", "root");
    put_variant(s, "https://o/u", "accept-language=it", "it");
    store_remove_all(s, "https://o/u");
    for (size_t i = 0; i < NLANGS; i++)
        assert_false(variant_readable(s, "https://o/u", langs[i], NULL));
    assert_false(variant_readable(s, "https://o/u", "accept-language=it", NULL));
    assert_true(variant_readable(s, "https://o/u2", "accept-language=de", "u2"));
    assert_true(variant_readable(s, "https://o/", "", "root"));
    store_close(s);

    struct loaded l = {0};
    size_t removed = 0;
    s = reopen_and_load(f->dir, 0, &l, &removed);
    assert_int_equal(removed, 0); /* a removal is no damage */
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0]->key, "https://o/u2");
    assert_string_equal(l.v[1]->key, "https://o/");
    loaded_free(&l);
    for (size_t i = 0; i < NLANGS; i++)
        assert_false(variant_readable(s, "https://o/u", langs[i], NULL));
    store_close(s);

    /* A clear counts what the removal left. */
    size_t entries;
    uint64_t cleared;
    assert_int_equal(store_clear(f->dir, &entries, &cleared), CP_OK);
    assert_int_equal(entries, 2);
}

/* Variants this run never knew of (not loaded yet): the record is written all the same,
 * and the load of the next start applies it to every record of the key before it. */
static void test_remove_all_unloaded_variants(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (size_t i = 0; i < NLANGS; i++)
        put_variant(s, "https://o/v", langs[i], "v");
    put_variant(s, "https://o/w", "accept-language=de", "w");
    store_close(s);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    uint64_t before = store_bytes(s);
    store_remove_all(s, "https://o/v");
    assert_true(store_bytes(s) > before);
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->key, "https://o/w");
    loaded_free(&l);
    for (size_t i = 0; i < NLANGS; i++)
        assert_false(variant_readable(s, "https://o/v", langs[i], NULL));
    store_close(s);
}

/* Order counts: a variant written after the removal is live again, after a restart
 * too, and only it; one written before a second removal is gone again. */
static void test_write_after_remove_all(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (size_t i = 0; i < NLANGS; i++)
        put_variant(s, "https://o/x", langs[i], "old");
    store_remove_all(s, "https://o/x");
    put_variant(s, "https://o/x", "accept-language=de", "new de");
    assert_true(variant_readable(s, "https://o/x", "accept-language=de", "new de"));
    assert_false(variant_readable(s, "https://o/x", "", NULL));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->vary_key, "accept-language=de");
    assert_memory_equal(l.v[0]->body, "new de", 6);
    loaded_free(&l);
    assert_false(variant_readable(s, "https://o/x", "", NULL));
    assert_false(variant_readable(s, "https://o/x", "accept-language=fr", NULL));

    /* Removed again, then another variant: only that one. */
    store_remove_all(s, "https://o/x");
    put_variant(s, "https://o/x", "", "new plain");
    store_close(s);
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->vary_key, "");
    assert_memory_equal(l.v[0]->body, "new plain", 9);
    loaded_free(&l);
    store_close(s);
}

/* Nothing is written for a key the index knows it does not hold. */
static void test_remove_all_written_only_when_needed(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    store_remove_all(s, "never"); /* an empty directory: the index is complete */
    assert_true(store_bytes(s) == 0);
    put_variant(s, "k", "accept-language=de", "k");
    put_variant(s, "other", "", "other");
    store_close(s);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct loaded l = {0};
    assert_int_equal(store_load(s, collect, &l, NULL, NULL), CP_OK);
    assert_int_equal(l.n, 2);
    loaded_free(&l);
    uint64_t before = store_bytes(s);
    store_remove_all(s, "unknown");
    store_remove_all(s, "k/"); /* another key that k is a prefix of */
    assert_true(store_bytes(s) == before);
    store_remove_all(s, "k"); /* only a variant with a vary key is known */
    assert_true(store_bytes(s) > before);
    before = store_bytes(s);
    store_remove_all(s, "k"); /* nothing left of it */
    assert_true(store_bytes(s) == before);
    assert_true(store_bytes(s) == disk_bytes(f->dir));
    assert_true(variant_readable(s, "other", "", "other"));
    store_close(s);
}

/* A removal of all variants during a load: the load's index, made of older records,
 * loses them too; what was written after it stays. */
static bool remove_all_meanwhile(void *arg, struct entry *e)
{
    struct during *d = arg;
    if (d->calls++ == 0) {
        store_remove_all(d->s, "https://o/late");
        put_variant(d->s, "https://o/late", "accept-language=fr", "after");
    }
    return collect(&d->got, e);
}

static void test_remove_all_during_load(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    put(s, "https://o/first", "first");
    for (size_t i = 0; i < NLANGS; i++)
        put_variant(s, "https://o/late", langs[i], "before");
    store_close(s);

    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct during d = {.s = s};
    size_t loaded;
    assert_int_equal(store_load(s, remove_all_meanwhile, &d, &loaded, NULL), CP_OK);
    assert_int_equal(loaded, 1); /* the variants were removed before their turn */
    assert_string_equal(d.got.v[0]->key, "https://o/first");
    loaded_free(&d.got);
    assert_false(variant_readable(s, "https://o/late", "", NULL));
    assert_false(variant_readable(s, "https://o/late", "accept-language=de", NULL));
    assert_true(variant_readable(s, "https://o/late", "accept-language=fr", "after"));
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[1]->key, "https://o/late");
    assert_memory_equal(l.v[1]->body, "after", 5);
    loaded_free(&l);
    store_close(s);
}

/* A full disk: the removal waits, is written before the next record, and holds. */
static void test_remove_all_waits_for_room(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    for (size_t i = 0; i < NLANGS; i++)
        put_variant(s, "https://o/y", langs[i], "y");
    char seg[256];
    newest_segment(f->dir, seg, sizeof seg);
    struct fsize_limit saved;
    disk_full_at(file_size(seg), &saved);
    store_remove_all(s, "https://o/y");
    disk_unlimited(&saved);
    assert_false(variant_readable(s, "https://o/y", "accept-language=de", NULL));
    put_variant(s, "https://o/y", "accept-language=fr", "after");
    store_close(s);

    struct loaded l = {0};
    s = reopen_and_load(f->dir, 0, &l, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0]->vary_key, "accept-language=fr");
    assert_memory_equal(l.v[0]->body, "after", 5);
    loaded_free(&l);
    store_close(s);
}

/* Through the mirror, in order with the writes. */
static void test_mirror_remove_all(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->dir, 0, &s), CP_OK);
    struct mirror *m = NULL;
    assert_int_equal(mirror_start(s, &m), CP_OK);
    for (size_t i = 0; i < NLANGS; i++) {
        struct entry *e = make_entry("https://o/z", langs[i], "z", gen_of(s));
        mirror_write(m, e);
        entry_unref(e);
    }
    mirror_remove_all(m, "https://o/z");
    struct entry *e = make_entry("https://o/z", "accept-language=de", "again", gen_of(s));
    mirror_write(m, e);
    entry_unref(e);
    mirror_stop(m);
    assert_false(variant_readable(s, "https://o/z", "", NULL));
    assert_false(variant_readable(s, "https://o/z", "accept-language=fr", NULL));
    assert_true(variant_readable(s, "https://o/z", "accept-language=de", "again"));
    store_close(s);
}

int main(void)
{
    /* The damaged files below are reported as warnings, which are expected here. */
    log_set_level(LOG_LVL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_unusable_path, setup, teardown),
        cmocka_unit_test(test_segment_bytes),
        cmocka_unit_test_setup_teardown(test_write_then_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_segments_load_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_never_wrong_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_remove_survive_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_removal_written_only_when_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_in_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_header_ends_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_generation_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_counts_live_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_missing_and_unusable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_without_generation_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_after_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_stores_one_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_stop_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_removes_oldest_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_too_large_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_then_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_and_write_during_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_while_trimming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_segment_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_removes_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_many_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_many_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_removal_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unencodable_entry_removes_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_stops_at_undeletable_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_stop_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_unloaded_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_after_remove_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_written_only_when_needed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_during_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_waits_for_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_remove_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
