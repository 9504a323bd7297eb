/* Tests of the cache file format: exact round trips, and that no damaged or foreign
 * file (cut at any length, any byte changed) is ever read or accepted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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
    /* version 1, little-endian */
    assert_int_equal(head[4], 1);
    assert_int_equal(head[5] | head[6] | head[7], 0);
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
    /* Unknown flags. */
    memcpy(copy, file, len);
    copy[8] = 1;
    reseal_header(copy);
    assert_int_equal(diskfmt_decode(copy, len, &d), CP_ERR_CORRUPT);
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

static void test_name_stable_and_distinct(void **state)
{
    (void)state;
    char a[DISKFMT_NAME_LEN + 1], b[DISKFMT_NAME_LEN + 1], c[DISKFMT_NAME_LEN + 1];
    memset(a, 'Z', sizeof a);
    diskfmt_name("https://example.com/x", "", a);
    assert_int_equal(strlen(a), DISKFMT_NAME_LEN);
    for (size_t i = 0; i < DISKFMT_NAME_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    diskfmt_name("https://example.com/x", "", b);
    assert_string_equal(a, b);
    /* Names are persistent: they must not change between builds or versions of the
     * program, or every cache file would be dropped as mismatched. */
    diskfmt_name("", "", c);
    assert_string_equal(c, "a6cd5e9392000f6ac44bdff4074eecdb");
    diskfmt_name("a", "b", c);
    assert_string_equal(c, "39797789ed4c7ea0d5a06cd078125351");

    diskfmt_name("https://example.com/x", "accept-encoding=gzip", b);
    assert_string_not_equal(a, b);
    diskfmt_name("https://example.com/x", "accept-encoding=br", c);
    assert_string_not_equal(b, c);
    /* The separator keeps the split between key and vary key significant. */
    diskfmt_name("ab", "c", b);
    diskfmt_name("a", "bc", c);
    assert_string_not_equal(b, c);
    diskfmt_name("https://example.com/y", "", b);
    assert_string_not_equal(a, b);
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
        cmocka_unit_test(test_name_stable_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
