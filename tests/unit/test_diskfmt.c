/* Tests of the cache record format: exact round trips of entries and removals, the
 * header and key read without the body, and that no damaged or foreign record (cut at
 * any length, any byte changed) is ever read or accepted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskfmt.h"

/* Builds an entry with every field set to a distinctive value. */
static struct entry *make_entry(const char *key, const char *vary, const void *body,
                                size_t body_len, size_t n_headers)
{
    struct entry *e = entry_new();
    assert_non_null(e);
    e->key = strdup(key);
    e->vary_key = strdup(vary);
    assert_non_null(e->key);
    assert_non_null(e->vary_key);
    e->status = 203;
    e->request_time = 1700000000;
    e->response_time = 1700000002;
    e->initial_age = 17;
    e->lifetime = -5; /* negative values must survive too */
    e->generation = 0x0123456789abcdefULL;
    for (size_t i = 0; i < n_headers; i++) {
        char name[32], value[32];
        snprintf(name, sizeof name, "X-Field-%zu", i);
        snprintf(value, sizeof value, "value %zu", i * 7);
        assert_int_equal(hdrs_add(&e->headers, name, value), CP_OK);
    }
    if (body_len > 0) {
        e->body = malloc(body_len);
        assert_non_null(e->body);
        memcpy(e->body, body, body_len);
    }
    e->body_len = body_len;
    return e;
}

/* The whole file: head then body. */
static unsigned char *encode_file(const struct entry *e, size_t *len)
{
    unsigned char *head;
    size_t head_len;
    assert_int_equal(diskfmt_encode_head(e, &head, &head_len), CP_OK);
    unsigned char *file = malloc(head_len + e->body_len + 1);
    assert_non_null(file);
    memcpy(file, head, head_len);
    if (e->body_len > 0)
        memcpy(file + head_len, e->body, e->body_len);
    free(head);
    *len = head_len + e->body_len;
    return file;
}

static void assert_same_entry(const struct entry *a, const struct entry *b)
{
    assert_string_equal(a->key, b->key);
    assert_string_equal(a->vary_key, b->vary_key);
    assert_int_equal(a->status, b->status);
    assert_true(a->request_time == b->request_time);
    assert_true(a->response_time == b->response_time);
    assert_true(a->initial_age == b->initial_age);
    assert_true(a->lifetime == b->lifetime);
    assert_true(a->generation == b->generation);
    assert_int_equal(a->headers.n, b->headers.n);
    for (size_t i = 0; i < a->headers.n; i++) {
        assert_string_equal(a->headers.v[i].name, b->headers.v[i].name);
        assert_string_equal(a->headers.v[i].value, b->headers.v[i].value);
    }
    assert_int_equal(a->body_len, b->body_len);
    if (a->body_len > 0)
        assert_memory_equal(a->body, b->body, a->body_len);
}

static void round_trip(struct entry *e)
{
    size_t len;
    unsigned char *file = encode_file(e, &len);
    struct entry *d = NULL;
    assert_int_equal(diskfmt_decode(file, len, &d), CP_OK);
    assert_non_null(d);
    assert_int_equal(atomic_load(&d->refs), 1);
    assert_same_entry(e, d);
    entry_unref(d);
    free(file);
    entry_unref(e);
}

static void test_round_trip_all_fields(void **state)
{
    (void)state;
    round_trip(make_entry("https://example.com/a?b=c", "accept-encoding=gzip", "hello", 5, 3));
}

static void test_round_trip_empty_body(void **state)
{
    (void)state;
    struct entry *e = make_entry("https://example.com/", "", NULL, 0, 2);
    e->status = 204;
    round_trip(e);
}

static void test_round_trip_empty_headers(void **state)
{
    (void)state;
    round_trip(make_entry("k", "v", "x", 1, 0));
}

static void test_round_trip_binary_body(void **state)
{
    (void)state;
    unsigned char body[1024];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)(i * 31); /* includes NULs and 0xff */
    body[0] = 0;
    body[sizeof body - 1] = 0;
    round_trip(make_entry("https://example.com/bin", "", body, sizeof body, 1));
}

static void test_round_trip_many_headers(void **state)
{
    (void)state;
    round_trip(make_entry("https://example.com/many", "x=1", "b", 1, 500));
}

static void test_round_trip_repeated_and_empty_values(void **state)
{
    (void)state;
    struct entry *e = make_entry("k", "", "b", 1, 0);
    assert_int_equal(hdrs_add(&e->headers, "Set-Cookie", "a=1"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "Set-Cookie", "b=2"), CP_OK);
    assert_int_equal(hdrs_add(&e->headers, "X-Empty", ""), CP_OK);
    round_trip(e);
}

static void test_head_is_file_without_body(void **state)
{
    (void)state;
    struct entry *e = make_entry("k", "", "0123456789", 10, 1);
    unsigned char *head;
    size_t head_len;
    assert_int_equal(diskfmt_encode_head(e, &head, &head_len), CP_OK);
    assert_memory_equal(head, "CPXE", 4);
    /* the version, little-endian */
    assert_int_equal(head[4], DISKFMT_VERSION);
    assert_int_equal(head[5] | head[6] | head[7], 0);
    /* kind 0: an entry */
    assert_int_equal(head[8] | head[9] | head[10] | head[11], 0);
    /* body length at offset 16, little-endian */
    assert_int_equal(head[16], 10);
    /* The head alone is not a valid file: the body is missing. */
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(head, head_len, &d), CP_ERR_CORRUPT);
    assert_null(d);
    free(head);
    entry_unref(e);
}

/* Cutting a valid file anywhere must be noticed, and never read past the cut:
 * each prefix is copied into a buffer of exactly that size so ASan sees overreads. */
static void test_every_truncation(void **state)
{
    (void)state;
    struct entry *e = make_entry("https://example.com/t", "a=b", "some body", 9, 4);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *part = malloc(cut > 0 ? cut : 1);
        assert_non_null(part);
        memcpy(part, file, cut);
        struct entry *d = (struct entry *)1;
        cp_err err = diskfmt_decode(part, cut, &d);
        assert_int_equal(err, CP_ERR_CORRUPT);
        assert_null(d);
        free(part);
    }
    free(file);
    entry_unref(e);
}

/* A trailing extra byte is also a damaged file. */
static void test_extra_byte(void **state)
{
    (void)state;
    struct entry *e = make_entry("k", "", "body", 4, 1);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    file[len] = 'x';
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(file, len + 1, &d), CP_ERR_CORRUPT);
    assert_null(d);
    free(file);
    entry_unref(e);
}

/* Every single-bit pattern change of every byte is caught by a check. */
static void test_every_byte_flip(void **state)
{
    (void)state;
    struct entry *e = make_entry("https://example.com/f", "v=1", "flip me", 7, 3);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    static const unsigned char masks[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(copy, file, len);
            copy[i] ^= masks[k];
            struct entry *d = (struct entry *)1;
            cp_err err = diskfmt_decode(copy, len, &d);
            if (err != CP_ERR_CORRUPT && err != CP_ERR_VERSION)
                fail_msg("byte %zu ^ 0x%02x decoded with %d", i, masks[k], (int)err);
            assert_null(d);
        }
    }
    free(copy);
    free(file);
    entry_unref(e);
}

static void test_wrong_magic(void **state)
{
    (void)state;
    struct entry *e = make_entry("k", "", "b", 1, 0);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    memcpy(file, "CPXF", 4);
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(file, len, &d), CP_ERR_CORRUPT);
    assert_null(d);
    /* Random data of plausible size. */
    memset(file, 0xA5, len);
    assert_int_equal(diskfmt_decode(file, len, &d), CP_ERR_CORRUPT);
    free(file);
    entry_unref(e);
}

static void test_wrong_version(void **state)
{
    (void)state;
    struct entry *e = make_entry("k", "", "b", 1, 0);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    file[4] = DISKFMT_VERSION + 1;
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(file, len, &d), CP_ERR_VERSION);
    assert_null(d);
    /* A newer version may have a shorter header: magic + version suffice to tell. */
    assert_int_equal(diskfmt_decode(file, 8, &d), CP_ERR_VERSION);
    file[4] = 0;
    assert_int_equal(diskfmt_decode(file, len, &d), CP_ERR_VERSION);
    free(file);
    entry_unref(e);
}

/* Sets a little-endian u32/u64 at `p` and fixes the header checksum, as a writer with
 * a bug (or an attacker) would: the decoder must still catch the inconsistency. */
#include <xxhash.h>
static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void reseal_header(unsigned char *file)
{
    put_le(file + 40, XXH64(file, 40, 0), 8);
}
static void reseal_meta(unsigned char *file, size_t meta_len)
{
    put_le(file + 24, XXH64(file + 48, meta_len, 0), 8);
    reseal_header(file);
}

static void test_lengths_lie_with_valid_header_sum(void **state)
{
    (void)state;
    struct entry *e = make_entry("key", "", "body", 4, 1);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    struct entry *d = (struct entry *)1;
    static const uint64_t body_lens[] = {0, 3, 5, UINT64_MAX, UINT64_MAX - 47, 1ULL << 63};
    for (size_t i = 0; i < sizeof body_lens / sizeof body_lens[0]; i++) {
        memcpy(copy, file, len);
        put_le(copy + 16, body_lens[i], 8);
        reseal_header(copy);
        assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
        assert_null(d);
    }
    static const uint32_t meta_lens[] = {0, 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof meta_lens / sizeof meta_lens[0]; i++) {
        memcpy(copy, file, len);
        put_le(copy + 12, meta_lens[i], 4);
        reseal_header(copy);
        assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
        assert_null(d);
    }
    /* Unknown kinds, and the removal kinds on an entry's metadata (and body). */
    static const uint32_t kinds[] = {3, 0x100, DISKFMT_REMOVAL, DISKFMT_REMOVAL_ALL};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        memcpy(copy, file, len);
        put_le(copy + 8, kinds[i], 4);
        reseal_header(copy);
        assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
        assert_null(d);
    }
    free(copy);
    free(file);
    entry_unref(e);
}

/* Metadata whose checksums are right but whose inner lengths are wrong. */
static void test_bad_metadata_with_valid_sums(void **state)
{
    (void)state;
    struct entry *e = make_entry("key", "", "", 0, 1);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    size_t meta_len = len - 48;
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    struct entry *d = (struct entry *)1;

    /* key length beyond the metadata */
    static const uint32_t key_lens[] = {4, 1000, UINT32_MAX};
    for (size_t i = 0; i < 3; i++) {
        memcpy(copy, file, len);
        put_le(copy + 48, key_lens[i], 4);
        reseal_meta(copy, meta_len);
        cp_err err = diskfmt_decode(copy, len, &d);
        assert_int_equal(err, CP_ERR_CORRUPT);
        assert_null(d);
    }
    /* a NUL inside the key */
    memcpy(copy, file, len);
    copy[48 + 4 + 1] = '\0';
    reseal_meta(copy, meta_len);
    assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
    /* header field count too large (it is the u32 before the first field):
     * key(4+3) vary(4+0) status(4) times etc (40) */
    size_t count_off = 48 + 7 + 4 + 4 + 40;
    assert_int_equal(copy[count_off], 1);
    static const uint32_t counts[] = {0, 2, UINT32_MAX};
    for (size_t i = 0; i < 3; i++) {
        memcpy(copy, file, len);
        put_le(copy + count_off, counts[i], 4);
        reseal_meta(copy, meta_len);
        assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
        assert_null(d);
    }
    /* The last string ("value 0", 7 bytes) claims one byte more than is left: the
     * metadata ends there, so reading it would run off the buffer. */
    size_t last_len_off = len - 7 - 4;
    assert_int_equal(file[last_len_off], 7);
    for (uint32_t extra = 1; extra <= 2; extra++) {
        memcpy(copy, file, len);
        put_le(copy + last_len_off, 7 + extra, 4);
        reseal_meta(copy, meta_len);
        assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
        assert_null(d);
    }
    free(copy);
    free(file);
    entry_unref(e);
}

static bool same_hash(struct diskfmt_hash a, struct diskfmt_hash b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

static struct diskfmt_hash hash_of(const char *key, const char *vary)
{
    return diskfmt_key_hash(key, strlen(key), vary, strlen(vary));
}

static void test_key_hash_stable_and_distinct(void **state)
{
    (void)state;
    struct diskfmt_hash a = hash_of("https://example.com/x", "");
    assert_true(same_hash(a, hash_of("https://example.com/x", "")));
    /* The same in every build (lo: XXH3 64 of key; hi: of key, NUL, vary key). */
    struct diskfmt_hash c = hash_of("", "");
    assert_true(c.lo == 0x2d06800538d394c2ULL && c.hi == 0xc44bdff4074eecdbULL);
    c = hash_of("a", "b");
    assert_true(c.lo == 0xe6c632b61e964e1fULL && c.hi == 0xd5a06cd078125351ULL);
    /* Every variant of a key shares lo, and only they do. */
    struct diskfmt_hash v1 = hash_of("https://example.com/x", "accept-language=de");
    assert_true(v1.lo == a.lo && v1.hi != a.hi);
    assert_true(hash_of("https://example.com/y", "accept-language=de").lo != v1.lo);
    assert_true(hash_of("ab", "c").lo != hash_of("a", "bc").lo);

    assert_false(same_hash(a, hash_of("https://example.com/x", "accept-encoding=gzip")));
    assert_false(same_hash(hash_of("https://example.com/x", "accept-encoding=gzip"),
                           hash_of("https://example.com/x", "accept-encoding=br")));
    /* The separator keeps the split between key and vary key significant. */
    assert_false(same_hash(hash_of("ab", "c"), hash_of("a", "bc")));
    assert_false(same_hash(a, hash_of("https://example.com/y", "")));
    /* Only the given lengths count, not what follows. */
    assert_true(same_hash(diskfmt_key_hash("abcdef", 3, "xyz!", 3), hash_of("abc", "xyz")));
    /* Long keys take another path through the hash function: same results. */
    char *long_key = malloc(2001);
    assert_non_null(long_key);
    memset(long_key, 'k', 2000);
    long_key[2000] = '\0';
    struct diskfmt_hash l1 = hash_of(long_key, "v");
    struct diskfmt_hash l2 = hash_of(long_key, "v");
    assert_true(same_hash(l1, l2));
    long_key[1999] = 'j';
    assert_false(same_hash(l1, hash_of(long_key, "v")));
    /* at the border between the two paths: 510 + 1 + 0 fits, 511 + 1 + 0 does not */
    long_key[510] = '\0';
    struct diskfmt_hash b1 = hash_of(long_key, "");
    long_key[510] = 'k';
    long_key[511] = '\0';
    struct diskfmt_hash b2 = hash_of(long_key, "");
    long_key[511] = 'k';
    assert_false(same_hash(b1, b2));
    assert_true(same_hash(b1, diskfmt_key_hash(long_key, 510, "", 0)));
    assert_true(same_hash(b2, diskfmt_key_hash(long_key, 511, "", 0)));
    /* and the variants of a long key still share lo */
    struct diskfmt_hash b3 = diskfmt_key_hash(long_key, 511, "v=1", 3);
    assert_true(b3.lo == b2.lo && b3.hi != b2.hi);
    free(long_key);
}

/* The header and the key of an entry, without its body, as a scan of a segment reads
 * them. */
static void test_parse_head_and_meta_of_entry(void **state)
{
    (void)state;
    struct entry *e = make_entry("https://example.com/p", "ae=gzip", "0123456789", 10, 2);
    size_t len;
    unsigned char *file = encode_file(e, &len);
    struct diskfmt_head h;
    assert_int_equal(diskfmt_parse_head(file, DISKFMT_HEAD_LEN, &h), CP_OK);
    assert_int_equal(h.kind, DISKFMT_ENTRY);
    assert_true(h.body_len == 10);
    assert_true(h.record_len == len);
    assert_true(DISKFMT_HEAD_LEN + h.meta_len + 10 == len);
    struct diskfmt_ref ref;
    /* only the metadata is given: the body may not even be in memory */
    unsigned char *meta = malloc(h.meta_len);
    assert_non_null(meta);
    memcpy(meta, file + DISKFMT_HEAD_LEN, h.meta_len);
    assert_int_equal(diskfmt_parse_meta(&h, meta, &ref), CP_OK);
    assert_int_equal(ref.kind, DISKFMT_ENTRY);
    assert_int_equal(ref.key_len, strlen(e->key));
    assert_memory_equal(ref.key, e->key, ref.key_len);
    assert_int_equal(ref.vary_len, strlen(e->vary_key));
    assert_memory_equal(ref.vary_key, e->vary_key, ref.vary_len);
    assert_true(ref.generation == e->generation);
    /* a flipped metadata byte fails its checksum */
    for (size_t i = 0; i < h.meta_len; i++) {
        meta[i] ^= 0x04;
        assert_int_equal(diskfmt_parse_meta(&h, meta, &ref), CP_ERR_CORRUPT);
        meta[i] ^= 0x04;
    }
    free(meta);
    free(file);
    entry_unref(e);
}

static void test_removal_record(void **state)
{
    (void)state;
    unsigned char *rec;
    size_t len;
    assert_int_equal(diskfmt_encode_removal("https://example.com/r", "v=1", 42, &rec, &len),
                     CP_OK);
    struct diskfmt_head h;
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_OK);
    assert_int_equal(h.kind, DISKFMT_REMOVAL);
    assert_true(h.body_len == 0);
    assert_true(h.record_len == len);
    struct diskfmt_ref ref;
    assert_int_equal(diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref), CP_OK);
    assert_int_equal(ref.kind, DISKFMT_REMOVAL);
    assert_int_equal(ref.key_len, strlen("https://example.com/r"));
    assert_memory_equal(ref.key, "https://example.com/r", ref.key_len);
    assert_int_equal(ref.vary_len, 3);
    assert_memory_equal(ref.vary_key, "v=1", 3);
    assert_true(ref.generation == 42);
    /* A removal is no entry: never decoded into one. */
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(rec, len, &d), CP_ERR_CORRUPT);
    assert_null(d);
    free(rec);

    /* NULL keys are empty ones. */
    assert_int_equal(diskfmt_encode_removal(NULL, NULL, 0, &rec, &len), CP_OK);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_OK);
    assert_int_equal(diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref), CP_OK);
    assert_int_equal(ref.key_len, 0);
    assert_int_equal(ref.vary_len, 0);
    free(rec);
}

/* Every change of every byte of a removal record is caught by the header or the
 * metadata check, whichever a scan applies. */
static void test_removal_every_byte_flip(void **state)
{
    (void)state;
    unsigned char *rec;
    size_t len;
    assert_int_equal(diskfmt_encode_removal("key", "vary", 7, &rec, &len), CP_OK);
    static const unsigned char masks[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            rec[i] ^= masks[k];
            struct diskfmt_head h;
            struct diskfmt_ref ref;
            cp_err err = diskfmt_parse_head(rec, len, &h);
            if (err == CP_OK && h.record_len == len)
                err = diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref);
            else if (err == CP_OK)
                err = CP_ERR_CORRUPT; /* the lengths no longer match the record */
            if (err != CP_ERR_CORRUPT && err != CP_ERR_VERSION)
                fail_msg("byte %zu ^ 0x%02x parsed with %d", i, masks[k], (int)err);
            rec[i] ^= masks[k];
        }
    }
    free(rec);
}

/* Headers whose checksum is right but whose lengths cannot be: the scan of a segment
 * believes record_len, so it must never be out of range. */
static void test_head_lengths_checked(void **state)
{
    (void)state;
    unsigned char *rec;
    size_t len;
    assert_int_equal(diskfmt_encode_removal("key", "", 1, &rec, &len), CP_OK);
    struct diskfmt_head h;
    /* a removal with a body */
    put_le(rec + 16, 1, 8);
    reseal_header(rec);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_ERR_CORRUPT);
    /* an entry whose total length overflows */
    put_le(rec + 8, DISKFMT_ENTRY, 4);
    put_le(rec + 16, UINT64_MAX - 10, 8);
    reseal_header(rec);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_ERR_CORRUPT);
    /* fewer than 48 bytes, more than 8 */
    assert_int_equal(diskfmt_parse_head(rec, DISKFMT_HEAD_LEN - 1, &h), CP_ERR_CORRUPT);
    assert_int_equal(diskfmt_parse_head(rec, 3, &h), CP_ERR_CORRUPT);
    free(rec);
}

/* The removal of every variant of a key: its own kind, no vary key, never an entry. */
static void test_removal_all_record(void **state)
{
    (void)state;
    unsigned char *rec;
    size_t len;
    assert_int_equal(diskfmt_encode_removal_all("https://example.com/r", 7, &rec, &len), CP_OK);
    struct diskfmt_head h;
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_OK);
    assert_int_equal(h.kind, DISKFMT_REMOVAL_ALL);
    assert_true(h.body_len == 0);
    assert_true(h.record_len == len);
    struct diskfmt_ref ref;
    assert_int_equal(diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref), CP_OK);
    assert_int_equal(ref.kind, DISKFMT_REMOVAL_ALL);
    assert_int_equal(ref.key_len, strlen("https://example.com/r"));
    assert_memory_equal(ref.key, "https://example.com/r", ref.key_len);
    assert_int_equal(ref.vary_len, 0);
    assert_true(ref.generation == 7);
    struct entry *d = (struct entry *)1;
    assert_int_equal(diskfmt_decode(rec, len, &d), CP_ERR_CORRUPT);
    assert_null(d);

    /* The same bytes as a plain removal with an empty vary key, but for the kind. */
    unsigned char *plain;
    size_t plain_len;
    assert_int_equal(diskfmt_encode_removal("https://example.com/r", "", 7, &plain, &plain_len),
                     CP_OK);
    assert_int_equal(plain_len, len);
    assert_memory_equal(plain + DISKFMT_HEAD_LEN, rec + DISKFMT_HEAD_LEN, len - DISKFMT_HEAD_LEN);
    assert_int_equal(plain[8], DISKFMT_REMOVAL);
    assert_int_equal(rec[8], DISKFMT_REMOVAL_ALL);
    free(plain);
    free(rec);

    /* A removal-all record carrying a vary key is damaged: it would read as narrower or
     * wider than it was written. */
    assert_int_equal(diskfmt_encode_removal("https://example.com/r", "v=1", 7, &rec, &len), CP_OK);
    put_le(rec + 8, DISKFMT_REMOVAL_ALL, 4);
    reseal_header(rec);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_OK);
    assert_int_equal(diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref), CP_ERR_CORRUPT);
    free(rec);

    /* A body on it is damage in the header. */
    assert_int_equal(diskfmt_encode_removal_all("k", 1, &rec, &len), CP_OK);
    put_le(rec + 16, 1, 8);
    reseal_header(rec);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_ERR_CORRUPT);
    free(rec);

    /* NULL is the empty key. */
    assert_int_equal(diskfmt_encode_removal_all(NULL, 0, &rec, &len), CP_OK);
    assert_int_equal(diskfmt_parse_head(rec, len, &h), CP_OK);
    assert_int_equal(diskfmt_parse_meta(&h, rec + DISKFMT_HEAD_LEN, &ref), CP_OK);
    assert_int_equal(ref.key_len, 0);
    free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_fields),
        cmocka_unit_test(test_round_trip_empty_body),
        cmocka_unit_test(test_round_trip_empty_headers),
        cmocka_unit_test(test_round_trip_binary_body),
        cmocka_unit_test(test_round_trip_many_headers),
        cmocka_unit_test(test_round_trip_repeated_and_empty_values),
        cmocka_unit_test(test_head_is_file_without_body),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_extra_byte),
        cmocka_unit_test(test_every_byte_flip),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_lengths_lie_with_valid_header_sum),
        cmocka_unit_test(test_bad_metadata_with_valid_sums),
        cmocka_unit_test(test_key_hash_stable_and_distinct),
        cmocka_unit_test(test_parse_head_and_meta_of_entry),
        cmocka_unit_test(test_removal_record),
        cmocka_unit_test(test_removal_all_record),
        cmocka_unit_test(test_removal_every_byte_flip),
        cmocka_unit_test(test_head_lengths_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
