/* Integration: the disk mirror seen from outside: the cache survives a restart, a
 * response evicted from memory is read back from disk, `--clear-cache` empties a
 * running server's cache, and damaged records in the cache's segment files are
 * ignored, reported and replaced, never served, while the intact records around them
 * still are. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diskfmt.h"
#include "entry.h"
#include "harness.h"

static void assert_xcache(const struct hresp *r, const char *want)
{
    assert_int_equal(hresp_header_count(r, "X-Cache"), 1);
    assert_string_equal(hresp_header(r, "X-Cache", 0), want);
}

static void get_expect(struct proxy *p, const char *path, const char *xcache, const char *body)
{
    struct hresp r;
    assert_int_equal(hx_get(p->port, path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_xcache(&r, xcache);
    assert_string_equal((char *)r.body, body);
    hresp_free(&r);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* One record of a segment file, as found by walking its headers. */
struct rec {
    char url[256]; /* of the record's key: the URL before the Host */
    size_t off, len, body_off;
};

/* Walks the records of a segment's bytes (until the end or the first bad header);
 * returns how many entry records were found (at most `max` kept in `v`). */
static size_t walk_segment(const unsigned char *bytes, size_t len, struct rec *v, size_t max)
{
    size_t n = 0, off = 0;
    while (len - off >= DISKFMT_HEAD_LEN) {
        struct diskfmt_head h;
        struct diskfmt_ref ref;
        if (diskfmt_parse_head(bytes + off, DISKFMT_HEAD_LEN, &h) != CP_OK ||
            h.record_len > len - off)
            break;
        if (diskfmt_parse_meta(&h, bytes + off + DISKFMT_HEAD_LEN, &ref) == CP_OK &&
            ref.kind == DISKFMT_ENTRY) {
            if (n < max) {
                size_t ul = ref.key_len;
                while (ul > 0 && ref.key[ul - 1] != ' ')
                    ul--;
                snprintf(v[n].url, sizeof v[n].url, "%.*s", ul > 0 ? (int)ul - 1 : 0, ref.key);
                v[n].off = off;
                v[n].len = (size_t)h.record_len;
                v[n].body_off = off + DISKFMT_HEAD_LEN + h.meta_len;
            }
            n++;
        }
        off += (size_t)h.record_len;
    }
    return n;
}

/* Entry records in all the segments of `dir`; if `suffix` is given, *found says
 * whether the URL of one of them ends with it. */
static size_t scan_records(const char *dir, const char *suffix, bool *found)
{
    char **segs = hx_list(dir, ".cps");
    size_t n = 0;
    if (found != NULL)
        *found = false;
    for (size_t i = 0; segs[i] != NULL; i++) {
        size_t len;
        unsigned char *bytes = (unsigned char *)hx_read_file(segs[i], &len);
        size_t here = bytes != NULL ? walk_segment(bytes, len, NULL, 0) : 0;
        n += here;
        if (found != NULL && here > 0) {
            struct rec *v = calloc(here, sizeof *v);
            assert_non_null(v);
            walk_segment(bytes, len, v, here);
            size_t sl = strlen(suffix);
            for (size_t k = 0; k < here; k++) {
                size_t ul = strlen(v[k].url);
                *found = *found || (ul >= sl && strcmp(v[k].url + ul - sl, suffix) == 0);
            }
            free(v);
        }
        free(bytes);
    }
    hx_strv_free(segs);
    return n;
}

static size_t count_records(const char *dir)
{
    return scan_records(dir, NULL, NULL);
}

/* Whether an entry record whose URL ends with `suffix` is in a segment of `dir`. */
static bool has_record(const char *dir, const char *suffix)
{
    bool found;
    scan_records(dir, suffix, &found);
    return found;
}

/* The mirror writes in the background: polls until `n` records are on disk. */
static bool wait_records(const char *dir, size_t n, double timeout_s)
{
    double end = hx_now() + timeout_s;
    while (count_records(dir) < n) {
        if (hx_now() > end)
            return false;
        sleep_ms(20);
    }
    return true;
}

/* Starts the proxy on a cache directory that has records. No waiting for its load: the
 * front end takes its first request only once the disk is indexed, so that request
 * already finds what is on disk (connections made before wait in the listen queue). */
static struct proxy *start_loaded(struct hx *h, const char *dir)
{
    return hx_proxy_start(h, orig_url(h->origin), dir, NULL);
}

/* Polls the proxy's stderr until a line says it ignored something in `name`. */
static bool wait_reported(struct proxy *p, const char *name, double timeout_s)
{
    double end = hx_now() + timeout_s;
    for (;;) {
        char *err = hx_proxy_stderr(p);
        bool reported = false;
        for (char *line = err ? strtok(err, "\n") : NULL; line; line = strtok(NULL, "\n"))
            if (strstr(line, "ignor") && strstr(line, name))
                reported = true;
        free(err);
        if (reported)
            return true;
        if (hx_now() > end)
            return false;
        sleep_ms(20);
    }
}

static void test_restart_keeps_cache(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/keep", "MISS", "path=/cache/keep n=1\n");
    /* No waiting for the disk: a clean stop must write what is queued. */
    assert_int_equal(hx_proxy_stop(p), 0);

    p = start_loaded(h, dir);
    assert_non_null(p);
    get_expect(p, "/cache/keep", "HIT", "path=/cache/keep n=1\n");
    assert_int_equal(orig_count(h->origin, "/cache/keep"), 1);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* GETs `path` (with `range`, e.g. "bytes=5-9", or NULL) and checks the bytes are
 * [start, start + n) of hx_pattern, with the given X-Cache. */
static void get_pattern(struct proxy *p, const char *path, const char *range, size_t start,
                        size_t n, const char *xcache)
{
    char field[64];
    const char *hdrs[] = {field, NULL};
    if (range != NULL)
        snprintf(field, sizeof field, "Range: %s", range);
    struct hresp r;
    assert_int_equal(hx_get(p->port, path, range ? hdrs : NULL, &r), 0);
    assert_int_equal(r.status, range ? 206 : 200);
    assert_xcache(&r, xcache);
    assert_int_equal(r.body_len, n);
    for (size_t k = 0; k < n; k++)
        if (r.body[k] != hx_pattern(start + k))
            fail_msg("%s: byte %zu differs", path, start + k);
    hresp_free(&r);
}

/* Large bodies, whole and in ranges, the same bytes before and after a restart; and
 * past --max-disk, where whole segments go, the entries still in memory still serve
 * theirs (only the disk copy is gone). */
static void test_large_bodies_restart_and_bound(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    const char *const args[] = {"--max-disk", "2500K", NULL};
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, args);
    assert_non_null(p);
    const size_t n = 1u << 20;
    get_pattern(p, "/big/1048576", NULL, 0, n, "MISS");
    assert_true(wait_records(dir, 1, 10.0));
    get_pattern(p, "/big/1048576", NULL, 0, n, "HIT");
    get_pattern(p, "/big/1048576", "bytes=1000-70999", 1000, 70000, "HIT");
    get_pattern(p, "/big/1048576", "bytes=-100", n - 100, 100, "HIT");
    assert_int_equal(hx_proxy_stop(p), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, args);
    assert_non_null(p);
    get_pattern(p, "/big/1048576", NULL, 0, n, "HIT");
    get_pattern(p, "/big/1048576", "bytes=524288-655359", 524288, 131072, "HIT");
    /* Two more such bodies take the segments past the bound: the oldest, with the
     * first body, is deleted. */
    get_pattern(p, "/big/1048576?b", NULL, 0, n, "MISS");
    get_pattern(p, "/big/1048576?c", NULL, 0, n, "MISS");
    /* Until the last one is written and the trimming it set off is done (two records
     * can also be the moment before the last one lands). */
    double end = hx_now() + 10.0;
    while ((!has_record(dir, "/big/1048576?c") || count_records(dir) > 2) && hx_now() < end)
        sleep_ms(20);
    assert_true(has_record(dir, "/big/1048576?c"));
    assert_true(count_records(dir) <= 2);
    get_pattern(p, "/big/1048576", NULL, 0, n, "HIT");
    get_pattern(p, "/big/1048576", "bytes=100-199", 100, 100, "HIT");
    /* One fetch each (the origin counts by path, query aside): none fetched again. */
    assert_int_equal(orig_count(h->origin, "/big/1048576"), 3);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* POSTs to `path` through the proxy and checks the origin's 200 came back. */
static void post_ok(struct proxy *p, const char *path)
{
    struct hreq post = {.method = "POST", .body = "x", .body_len = 1};
    struct hresp r;
    assert_int_equal(hx_http(p->port, path, &post, &r), 0);
    assert_int_equal(r.status, 200);
    hresp_free(&r);
}

/* The records are in the segment a moment before the writer has put them in the
 * store's index and counted them done (a read-back finds them only then): lets that
 * moment pass, with a wide margin. */
static void settle(void)
{
    sleep_ms(100);
}

/* Starts a proxy on a fresh cache directory (its path written to `dir`) with
 * --max-memory `memory`. */
static struct proxy *start_bounded(struct hx *h, char *dir, size_t dir_len, const char *memory)
{
    hx_fresh_dir(h, dir, dir_len);
    const char *const args[] = {"--max-memory", memory, NULL};
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, args);
    assert_non_null(p);
    return p;
}

/* start_bounded with memory for two of the 4000-byte responses of these tests (12K): a
 * third one evicts the least recently used. */
static struct proxy *start_small(struct hx *h, char *dir, size_t dir_len)
{
    return start_bounded(h, dir, dir_len, "12K");
}

/* Stores `n` responses of `size` bytes (/big/<size>?n=0..n-1, all misses) and waits
 * until their records are on disk. */
static void store_n(struct proxy *p, const char *dir, size_t size, int n)
{
    for (int i = 0; i < n; i++) {
        char path[48];
        snprintf(path, sizeof path, "/big/%zu?n=%d", size, i);
        get_pattern(p, path, NULL, 0, size, "MISS");
    }
    assert_true(wait_records(dir, (size_t)n, 10.0));
    settle();
}

/* Starts a proxy whose memory holds two of the /big/4000 responses, and stores four
 * (n=0..3): n=0 and n=1 are then on disk only. */
static struct proxy *start_four_stored(struct hx *h, char *dir, size_t dir_len)
{
    struct proxy *p = start_small(h, dir, dir_len);
    store_n(p, dir, 4000, 4); /* 4 x 4000 bytes do not fit in 12 KiB */
    return p;
}

/* Past --max-memory a response leaves memory, the least recently used first, but not
 * the cache: it is read back from its record on disk (a HIT, the origin not asked).
 * Once its disk copy is gone too, it is a miss, while the newest stays in memory. */
static void test_evicted_served_from_disk(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_four_stored(h, dir, sizeof dir);
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "HIT"); /* from disk, back in memory */
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "HIT");
    assert_int_equal(orig_count(h->origin, "/big/4000"), 4);

    char **segs = hx_list(dir, ".cps"); /* the disk copies go */
    assert_true(hx_strv_len(segs) > 0);
    for (size_t i = 0; segs[i] != NULL; i++)
        assert_int_equal(unlink(segs[i]), 0);
    hx_strv_free(segs);
    get_pattern(p, "/big/4000?n=3", NULL, 0, 4000, "HIT");  /* newest: in memory */
    get_pattern(p, "/big/4000?n=1", NULL, 0, 4000, "MISS"); /* older: evicted */
    assert_int_equal(orig_count(h->origin, "/big/4000"), 5);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* A client fetching /big/2097152?n=<n> and checking what it got. */
struct long_get {
    struct proxy *p;
    const char *path;
    bool ok; /* a 200 HIT with every byte right */
};

static void *get_long(void *arg)
{
    struct long_get *g = arg;
    struct hresp r;
    if (hx_get(g->p->port, g->path, NULL, &r) != 0)
        return NULL;
    const char *xc = hresp_header(&r, "X-Cache", 0);
    g->ok = r.status == 200 && xc != NULL && strcmp(xc, "HIT") == 0 && r.body_len == 2097152;
    for (size_t k = 0; g->ok && k < r.body_len; k++)
        g->ok = r.body[k] == hx_pattern(k);
    hresp_free(&r);
    return NULL;
}

/* The cache directory `dir` holds one segment of `nrec` records, the first of `url`:
 * flips 8 bytes of its body from byte `at` on, and writes the segment's path to `file`. */
static void damage_first_body(const char *dir, size_t nrec, const char *url, size_t at,
                              char *file, size_t file_len)
{
    char **segs = hx_list(dir, ".cps");
    assert_int_equal(hx_strv_len(segs), 1);
    snprintf(file, file_len, "%s", segs[0]);
    hx_strv_free(segs);
    size_t len;
    char *bytes = hx_read_file(file, &len);
    assert_non_null(bytes);
    struct rec recs[4];
    assert_true(nrec <= 4);
    assert_int_equal(walk_segment((unsigned char *)bytes, len, recs, nrec), nrec);
    assert_non_null(strstr(recs[0].url, url));
    for (size_t i = recs[0].body_off + at; i < recs[0].body_off + at + 8; i++)
        bytes[i] = (char)(bytes[i] ^ 0x5a);
    assert_int_equal(hx_write_file(file, bytes, len), 0);
    free(bytes);
}

/* Starts a proxy whose memory holds one 2 MiB response (3M) and stores two (n=0 and
 * n=1): n=0 is then on disk only. */
static struct proxy *start_two_long_stored(struct hx *h, char *dir, size_t dir_len)
{
    struct proxy *p = start_bounded(h, dir, dir_len, "3M");
    store_n(p, dir, 2u << 20, 2);
    return p;
}

/* A record too long to read on a front-end thread (over 1 MiB) is read back all the
 * same once its response has left memory, by the disk reader while the request waits:
 * a HIT, the origin not asked, for one client and for several at once. */
static void test_long_evicted_served_from_disk(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_two_long_stored(h, dir, sizeof dir);
    const size_t n = 2u << 20;
    get_pattern(p, "/big/2097152?n=0", NULL, 0, n, "HIT"); /* read back; n=1 leaves */
    get_pattern(p, "/big/2097152?n=0", "bytes=2000000-2000099", 2000000, 100, "HIT");
    assert_int_equal(orig_count(h->origin, "/big/2097152"), 2);

    struct long_get g[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        g[i] = (struct long_get){.p = p, .path = "/big/2097152?n=1"};
        assert_int_equal(pthread_create(&t[i], NULL, get_long, &g[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_true(g[i].ok);
    }
    assert_int_equal(orig_count(h->origin, "/big/2097152"), 2);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* A damaged long record is not served either: the origin answers, and its response is
 * stored anew. */
static void test_damaged_long_record_not_read_back(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_two_long_stored(h, dir, sizeof dir);
    const size_t n = 2u << 20;
    char file[1024];
    damage_first_body(dir, 2, "/big/2097152?n=0", 1500000, file, sizeof file);

    get_pattern(p, "/big/2097152?n=0", NULL, 0, n, "MISS");
    assert_int_equal(orig_count(h->origin, "/big/2097152"), 3);
    assert_true(wait_reported(p, strrchr(file, '/') + 1, 10.0));
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* An invalidation reaches the disk copy of a response evicted from memory at once: the
 * request right after it is a miss, not the copy read back. */
static void test_invalidated_not_read_back(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_four_stored(h, dir, sizeof dir);
    post_ok(p, "/big/4000?n=0");
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "MISS");
    get_pattern(p, "/big/4000?n=1", NULL, 0, 4000, "HIT"); /* the other is read back */
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* A damaged record of a response evicted from memory is reported and not served: the
 * response is fetched again, and stored anew. */
static void test_damaged_record_not_read_back(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_four_stored(h, dir, sizeof dir);
    char file[1024];
    damage_first_body(dir, 4, "/big/4000?n=0", 100, file, sizeof file);

    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "MISS");
    assert_int_equal(orig_count(h->origin, "/big/4000"), 5);
    assert_true(wait_reported(p, strrchr(file, '/') + 1, 10.0));
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "HIT");
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* An unsafe method invalidates what is stored on disk too, also when the response had
 * already been evicted from memory: it must not come back at the next start. */
static void test_invalidation_of_evicted_response(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_small(h, dir, sizeof dir);
    char path[32];
    for (int i = 0; i < 4; i++) { /* 4 x 4000 bytes do not fit in 12 KiB: n=0 leaves */
        snprintf(path, sizeof path, "/big/4000?n=%d", i);
        get_pattern(p, path, NULL, 0, 4000, "MISS");
    }
    assert_true(wait_records(dir, 4, 10.0));
    post_ok(p, "/big/4000?n=0");
    assert_int_equal(hx_proxy_stop(p), 0); /* a clean stop writes what is queued */

    p = start_loaded(h, dir);
    assert_non_null(p);
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "MISS");
    get_pattern(p, "/big/4000?n=1", NULL, 0, 4000, "HIT"); /* the others stay */
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* GET with Accept-Language `lang`; checks X-Cache and the body. */
static void get_lang(struct proxy *p, const char *path, const char *lang, const char *xcache,
                     const char *body)
{
    char field[64];
    snprintf(field, sizeof field, "Accept-Language: %s", lang);
    const char *const hdrs[] = {field, NULL};
    struct hresp r;
    assert_int_equal(hx_get(p->port, path, hdrs, &r), 0);
    assert_int_equal(r.status, 200);
    assert_xcache(&r, xcache);
    assert_int_equal(r.body_len, strlen(body));
    assert_memory_equal(r.body, body, r.body_len);
    hresp_free(&r);
}

/* GETs `path` with extra request fields `hdrs` (NULL-terminated; or NULL) and checks
 * the 200 carries `body`, whether from the cache or not. */
static void get_body(struct proxy *p, const char *path, const char *const *hdrs,
                     const char *body)
{
    struct hresp r;
    assert_int_equal(hx_get(p->port, path, hdrs, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(body));
    assert_memory_equal(r.body, body, r.body_len);
    hresp_free(&r);
}

/* A response replaced (here by a reload the client forced) and then evicted from memory
 * at once, before the new copy reaches the disk, is never answered with the old copy
 * still on disk. */
static void test_replaced_then_evicted_not_read_back(void **state)
{
    struct hx *h = *state;
    char dir[512];
    static char one[4001], two[4001];
    memset(one, '1', sizeof one - 1);
    memset(two, '2', sizeof two - 1);
    const char *const fields[] = {"Cache-Control", "max-age=60", NULL};
    struct orig_route r1 = {.fields = fields, .body = one};
    struct orig_route r2 = {.fields = fields, .body = two};
    struct proxy *p = start_small(h, dir, sizeof dir);
    orig_route(h->origin, "/rel", &r1);
    get_body(p, "/rel", NULL, one);
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "MISS");
    get_pattern(p, "/big/4000?n=1", NULL, 0, 4000, "MISS"); /* /rel is on disk only */
    assert_true(wait_records(dir, 3, 10.0));

    orig_route(h->origin, "/rel", &r2);
    const char *const reload[] = {"Cache-Control: no-cache", NULL};
    get_body(p, "/rel", reload, two);
    get_pattern(p, "/big/4000?n=2", NULL, 0, 4000, "MISS");
    get_pattern(p, "/big/4000?n=3", NULL, 0, 4000, "MISS"); /* the new copy leaves memory */
    get_body(p, "/rel", NULL, two);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* The answers of /lang for de and for fr (Vary: Accept-Language), 4000 bytes each. */
static char de[4001], fr[4001];

/* Starts a proxy as start_small does and stores /lang for de, then for fr (misses: the
 * origin answers fr differently). */
static struct proxy *start_two_variants(struct hx *h, char *dir, size_t dir_len)
{
    memset(de, 'd', sizeof de - 1);
    memset(fr, 'f', sizeof fr - 1);
    static const char *const fields[] = {"Cache-Control", "max-age=60", "Vary",
                                         "Accept-Language", NULL};
    static struct orig_route rde = {.fields = fields, .body = de};
    static struct orig_route rfr = {.fields = fields, .body = fr};
    struct proxy *p = start_small(h, dir, dir_len);
    orig_route(h->origin, "/lang", &rde);
    get_lang(p, "/lang", "de", "MISS", de);
    orig_route(h->origin, "/lang", &rfr);
    get_lang(p, "/lang", "fr", "MISS", fr);
    return p;
}

/* Variants evicted from memory come back from disk too, each to the request that
 * selects it (Vary), without asking the origin. */
static void test_evicted_variants_served_from_disk(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_two_variants(h, dir, sizeof dir);
    char path[32];
    for (int i = 0; i < 3; i++) { /* 5 x 4000 bytes do not fit in 12 KiB: both leave */
        snprintf(path, sizeof path, "/big/4000?n=%d", i);
        get_pattern(p, path, NULL, 0, 4000, "MISS");
    }
    assert_true(wait_records(dir, 5, 10.0));
    settle();
    get_lang(p, "/lang", "fr", "HIT", fr);
    get_lang(p, "/lang", "de", "HIT", de);
    get_lang(p, "/lang", "it", "MISS", fr); /* a variant never stored is no hit */
    assert_int_equal(orig_count(h->origin, "/lang"), 3);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* A variant evicted while another of its URL stays in memory comes back from disk to
 * the request that selects it, without asking the origin. */
static void test_evicted_variant_beside_one_in_memory(void **state)
{
    struct hx *h = *state;
    char dir[512];
    struct proxy *p = start_two_variants(h, dir, sizeof dir);
    get_lang(p, "/lang", "de", "HIT", de); /* used: the clock passes it over once */
    get_pattern(p, "/big/4000?n=0", NULL, 0, 4000, "MISS"); /* fr leaves memory */
    assert_true(wait_records(dir, 3, 10.0));
    settle();
    get_lang(p, "/lang", "fr", "HIT", fr);
    get_lang(p, "/lang", "de", "HIT", de);
    assert_int_equal(orig_count(h->origin, "/lang"), 2);
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* An invalidation reaches every Vary variant on disk, also those evicted from memory
 * (whose vary keys this process no longer knows): none comes back after a restart,
 * while the variant of another URL, evicted alike, does. */
static void test_invalidation_of_evicted_variants(void **state)
{
    struct hx *h = *state;
    char dir[512];
    static char body[4001];
    memset(body, 'v', sizeof body - 1);
    const char *const fields[] = {"Cache-Control", "max-age=60", "Vary", "Accept-Language",
                                  NULL};
    struct orig_route rt = {.fields = fields, .body = body};
    orig_route(h->origin, "/lang", &rt);
    orig_route(h->origin, "/lang-other", &rt);
    struct proxy *p = start_small(h, dir, sizeof dir);
    get_lang(p, "/lang", "de", "MISS", body);
    get_lang(p, "/lang", "fr", "MISS", body);
    get_lang(p, "/lang", "de", "HIT", body);
    get_lang(p, "/lang-other", "de", "MISS", body);
    char path[32];
    for (int i = 0; i < 3; i++) { /* 6 x 4000 bytes do not fit in 12 KiB: the variants leave */
        snprintf(path, sizeof path, "/big/4000?n=%d", i);
        get_pattern(p, path, NULL, 0, 4000, "MISS");
    }
    assert_true(wait_records(dir, 6, 10.0));
    post_ok(p, "/lang");
    assert_int_equal(hx_proxy_stop(p), 0); /* a clean stop writes what is queued */

    p = start_loaded(h, dir);
    assert_non_null(p);
    get_lang(p, "/lang-other", "de", "HIT", body); /* evicted variants do come back */
    get_lang(p, "/lang", "de", "MISS", body);
    get_lang(p, "/lang", "fr", "MISS", body);
    assert_int_equal(orig_count(h->origin, "/lang"), 5); /* 2 + POST + 2 */
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_clear_cache_reaches_running_server(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/a", "MISS", "path=/cache/a n=1\n");
    get_expect(p, "/cache/b", "MISS", "path=/cache/b n=1\n");
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=1\n");
    /* The records are written in the background; the count below needs them on disk. */
    assert_true(wait_records(dir, 2, 5.0));

    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    char *out = NULL, *err = NULL;
    int st = hx_run(argv, 10.0, &out, &err);
    char shown[1024];
    snprintf(shown, sizeof shown, "stdout '%s' stderr '%s'", out ? out : "", err ? err : "");
    bool two = hx_has_number(out, 2);
    free(out);
    free(err);
    if (st != 0)
        fail_msg("--clear-cache exited %d: %s", st, shown);
    if (!two)
        fail_msg("--clear-cache should report the 2 entries removed: %s", shown);
    char **left = hx_list(dir, ".cps");
    assert_int_equal(hx_strv_len(left), 0);
    hx_strv_free(left);

    /* Same server process, no restart: its memory was emptied too. */
    get_expect(p, "/cache/a", "MISS", "path=/cache/a n=2\n");
    get_expect(p, "/cache/b", "MISS", "path=/cache/b n=2\n");
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=2\n");
    assert_int_equal(orig_count(h->origin, "/cache/a"), 2);
    assert_int_equal(hx_proxy_stop(p), 0);

    /* What was cached after the clear is kept across a restart; what was cleared is not
     * brought back. */
    p = start_loaded(h, dir);
    assert_non_null(p);
    get_expect(p, "/cache/a", "HIT", "path=/cache/a n=2\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

/* Misses sent one after another until told to stop, counting those answered. */
struct loader {
    uint16_t port;
    atomic_int done;
    atomic_int next;
    atomic_bool stop;
};

static void *load_misses(void *arg)
{
    struct loader *l = arg;
    for (int i = atomic_fetch_add(&l->next, 1); i < 100000 && !atomic_load(&l->stop);
         i = atomic_fetch_add(&l->next, 1)) {
        char path[64];
        snprintf(path, sizeof path, "/cache/load-%d", i);
        struct hresp r;
        if (hx_get(l->port, path, NULL, &r) == 0)
            hresp_free(&r);
        atomic_fetch_add(&l->done, 1);
    }
    return NULL;
}

/* A clear while the server stores responses: what the server stores after it has seen
 * the clear goes to a segment of its own that the clear does not remove (the clear
 * used to list the directory after raising the generation, and so removed that
 * segment too, and every later entry was lost at the next start). */
static void test_clear_during_stores_keeps_later_entries(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    for (int round = 0; round < 5; round++) {
        struct loader l = { .port = p->port };
        atomic_init(&l.done, 0);
        atomic_init(&l.next, round * 10000);
        atomic_init(&l.stop, false);
        pthread_t t[4];
        for (int k = 0; k < 4; k++)
            assert_int_equal(pthread_create(&t[k], NULL, load_misses, &l), 0);
        while (atomic_load(&l.done) < 200)
            sleep_ms(1);
        int st = hx_run(argv, 10.0, NULL, NULL);
        atomic_store(&l.stop, true);
        for (int k = 0; k < 4; k++)
            pthread_join(t[k], NULL);
        assert_int_equal(st, 0);
        char path[64];
        snprintf(path, sizeof path, "/cache/after-clear-%d", round);
        struct hresp r;
        assert_int_equal(hx_get(p->port, path, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        hresp_free(&r);
        /* Its record reaches a segment that is still in the directory. */
        double end = hx_now() + 5.0;
        while (!has_record(dir, path) && hx_now() < end)
            sleep_ms(20);
        if (!has_record(dir, path))
            fail_msg("round %d: %s was stored after the clear, but not in any segment", round,
                     path);
    }
    assert_int_equal(hx_proxy_stop(p), 0);
    p = start_loaded(h, dir);
    assert_non_null(p);
    get_expect(p, "/cache/after-clear-4", "HIT", "path=/cache/after-clear-4 n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_clear_cache_without_server(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    const char *argv[] = { hx_proxy_path(), "--clear-cache", "--cache-dir", dir, NULL };
    char *out = NULL, *err = NULL;
    /* A cache directory that does not exist is an empty cache. */
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_true(hx_has_number(out, 0));
    free(out);
    free(err);

    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    get_expect(p, "/cache/z", "MISS", "path=/cache/z n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);
    assert_int_equal(hx_run(argv, 10.0, &out, &err), 0);
    assert_true(hx_has_number(out, 1));
    free(out);
    free(err);

    p = start_loaded(h, dir);
    assert_non_null(p);
    get_expect(p, "/cache/z", "MISS", "path=/cache/z n=2\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

enum damage {
    TRUNCATE,      /* the last record cut short, as by a crash while writing it */
    FLIP_BODY,     /* bytes changed in the middle record's body */
    FLIP_HEADER,   /* a byte changed in the middle record's header: its lengths */
    REPLACE_WITH_TEXT /* the whole segment is something else */
};

/* Three responses cached in one segment; the segment damaged as `how` says; after a
 * restart, the damaged ones are fresh misses (never a damaged body) and the intact ones
 * hits; then the fresh copies are on disk for the next restart. */
static void corrupt_and_restart(struct hx *h, enum damage how)
{
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    static const char *paths[] = {"/cache/c1", "/cache/c2", "/cache/c3"};
    char body[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "path=%s n=1\n", paths[i]);
        get_expect(p, paths[i], "MISS", body);
    }
    assert_int_equal(hx_proxy_stop(p), 0);

    char **files = hx_list(dir, ".cps");
    assert_int_equal(hx_strv_len(files), 1);
    char file[1024];
    snprintf(file, sizeof file, "%s", files[0]);
    hx_strv_free(files);
    const char *base = strrchr(file, '/') + 1;

    size_t len;
    char *bytes = hx_read_file(file, &len);
    assert_non_null(bytes);
    struct rec recs[3];
    assert_int_equal(walk_segment((unsigned char *)bytes, len, recs, 3), 3);
    bool damaged[3] = {false, false, false}; /* by position in the segment */
    switch (how) {
    case TRUNCATE:
        len = recs[2].off + recs[2].len / 2;
        damaged[2] = true;
        break;
    case FLIP_BODY:
        for (size_t i = recs[1].body_off + 2; i < recs[1].body_off + 10; i++)
            bytes[i] = (char)(bytes[i] ^ 0x5a);
        damaged[1] = true;
        break;
    case FLIP_HEADER:
        bytes[recs[1].off + 17] ^= 0x01; /* the body length */
        damaged[1] = damaged[2] = true;   /* what follows cannot be found any more */
        break;
    case REPLACE_WITH_TEXT:
        len = (size_t)snprintf(bytes, len, "this is not a cache segment\n");
        damaged[0] = damaged[1] = damaged[2] = true;
        break;
    }
    assert_int_equal(hx_write_file(file, bytes, len), 0);
    free(bytes);

    p = start_loaded(h, dir);
    assert_non_null(p);
    /* The load reports the damage by itself, naming the segment. */
    if (!wait_reported(p, base, 10.0)) {
        char *err = hx_proxy_stderr(p);
        char shown[2048];
        snprintf(shown, sizeof shown, "%s", err ? err : "");
        free(err);
        fail_msg("stderr does not report ignoring %s:\n%s", base, shown);
    }
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s", recs[i].url + strlen(orig_url(h->origin)));
        unsigned n = damaged[i] ? 2 : 1;
        snprintf(body, sizeof body, "path=%s n=%u\n", path, n);
        get_expect(p, path, damaged[i] ? "MISS" : "HIT", body);
        assert_int_equal(orig_count(h->origin, path), n);
    }
    /* A clean stop writes what is queued: the fresh copies are on disk. */
    assert_int_equal(hx_proxy_stop(p), 0);

    p = start_loaded(h, dir);
    assert_non_null(p);
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s", recs[i].url + strlen(orig_url(h->origin)));
        snprintf(body, sizeof body, "path=%s n=%u\n", path, damaged[i] ? 2u : 1u);
        get_expect(p, path, "HIT", body);
    }
    /* and no complaint this time: the damage was cut away or is garbage now */
    char *err = hx_proxy_stderr(p);
    assert_non_null(err);
    assert_null(strstr(err, "ignor"));
    free(err);
    assert_int_equal(hx_proxy_stop(p), 0);
}

static void test_truncated_segment_tail(void **state)
{
    corrupt_and_restart(*state, TRUNCATE);
}

static void test_flipped_body_bytes(void **state)
{
    corrupt_and_restart(*state, FLIP_BODY);
}

static void test_flipped_header_byte(void **state)
{
    corrupt_and_restart(*state, FLIP_HEADER);
}

static void test_foreign_segment(void **state)
{
    corrupt_and_restart(*state, REPLACE_WITH_TEXT);
}

/* Files of the format before segments (one per entry, and their temporary files) are
 * removed at start. */
static void test_old_format_files_removed(void **state)
{
    struct hx *h = *state;
    char dir[512];
    hx_fresh_dir(h, dir, sizeof dir);
    struct proxy *p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    assert_int_equal(hx_proxy_stop(p), 0);
    char tmp[600], old[600];
    snprintf(tmp, sizeof tmp, "%s/0123456789abcdef0123456789abcdef.tmp.99999.0", dir);
    assert_int_equal(hx_write_file(tmp, "half-written", 12), 0);
    snprintf(old, sizeof old, "%s/0123456789abcdef0123456789abcdef.cpe", dir);
    static const char format1[] = "CPXE\1\0\0\0 an entry of format 1";
    assert_int_equal(hx_write_file(old, format1, sizeof format1 - 1), 0);

    p = hx_proxy_start(h, orig_url(h->origin), dir, NULL);
    assert_non_null(p);
    bool gone = false;
    for (int tries = 0; tries < 250 && !gone; tries++) {
        gone = access(tmp, F_OK) != 0 && access(old, F_OK) != 0;
        if (!gone)
            sleep_ms(20);
    }
    assert_true(gone);
    get_expect(p, "/cache/t", "MISS", "path=/cache/t n=1\n");
    assert_int_equal(hx_proxy_stop(p), 0);
}

int main(void)
{
    if (hx_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_keeps_cache, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_evicted_served_from_disk, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_invalidated_not_read_back, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_long_evicted_served_from_disk, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_long_record_not_read_back, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_replaced_then_evicted_not_read_back, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_evicted_variants_served_from_disk, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_evicted_variant_beside_one_in_memory, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_not_read_back, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_invalidation_of_evicted_response, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_invalidation_of_evicted_variants, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_large_bodies_restart_and_bound, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_clear_cache_reaches_running_server, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_clear_during_stores_keeps_later_entries, hx_setup,
                                        hx_teardown),
        cmocka_unit_test_setup_teardown(test_clear_cache_without_server, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_segment_tail, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_body_bytes, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_header_byte, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_segment, hx_setup, hx_teardown),
        cmocka_unit_test_setup_teardown(test_old_format_files_removed, hx_setup, hx_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hx_global_cleanup();
    return failed;
}
