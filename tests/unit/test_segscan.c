/* Unit tests of the segment scan (src/segscan.c): where a segment must be cut, which
 * records are skipped, and that a scan reports every sound record in order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskfmt.h"
#include "segscan.h"

static unsigned char *removal(const char *key, size_t *len)
{
    unsigned char *rec = NULL;
    assert_int_equal(diskfmt_encode_removal(key, "", 7, &rec, len), CP_OK);
    return rec;
}

static void test_check_head(void **state)
{
    (void)state;
    size_t len;
    unsigned char *rec = removal("http://o.test/a", &len);
    struct diskfmt_head h;
    assert_int_equal(segscan_check_head(rec, len, &h), CP_OK);
    assert_int_equal(h.record_len, len);
    assert_int_equal(h.kind, DISKFMT_REMOVAL);
    /* more bytes after it (the next records) change nothing */
    assert_int_equal(segscan_check_head(rec, len + 1000, &h), CP_OK);
    /* cut short anywhere: inside the header, or inside the metadata */
    for (size_t left = 0; left < len; left++)
        assert_int_equal(segscan_check_head(left >= DISKFMT_HEAD_LEN ? rec : NULL, left, &h),
                         CP_ERR_CORRUPT);
    /* any damaged header byte is caught (magic, lengths, or the header's checksum) */
    for (size_t i = 0; i < DISKFMT_HEAD_LEN; i++) {
        rec[i] ^= 0x20;
        cp_err err = segscan_check_head(rec, len, &h);
        assert_true(err == CP_ERR_CORRUPT || err == CP_ERR_VERSION);
        rec[i] ^= 0x20;
    }
    free(rec);
}

struct seen {
    char keys[8][64];
    size_t n;
};

static cp_err visit(void *arg, const struct segscan_rec *r)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    assert_true(r->ref.key_len < 64);
    memcpy(s->keys[s->n], r->ref.key, r->ref.key_len);
    s->keys[s->n][r->ref.key_len] = '\0';
    s->n++;
    return CP_OK;
}

static void test_scan_skips_and_cuts(void **state)
{
    (void)state;
    char path[] = "/tmp/cp-segscan-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    const char *keys[] = {"http://o.test/1", "http://o.test/2", "http://o.test/3",
                          "http://o.test/4"};
    uint64_t ends[4], off = 0;
    for (int i = 0; i < 4; i++) {
        size_t len;
        unsigned char *rec = removal(keys[i], &len);
        if (i == 1)
            rec[DISKFMT_HEAD_LEN + 2] ^= 0x01; /* a metadata byte: its checksum fails */
        size_t put = i == 3 ? len / 2 : len;   /* the last one cut short by a "crash" */
        assert_int_equal(pwrite(fd, rec, put, (off_t)off), (ssize_t)put);
        off += put;
        ends[i] = off;
        free(rec);
    }
    struct segscan_reader rd = {.fd = -1};
    segscan_reader_use(&rd, fd);
    struct seen seen = {0};
    struct segscan_end end;
    assert_int_equal(segscan_each(&rd, off, NULL, visit, &seen, &end), CP_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.keys[0], keys[0]);
    assert_string_equal(seen.keys[1], keys[2]); /* the damaged one skipped, not the rest */
    assert_int_equal(end.skipped, 1);
    assert_int_equal(end.damage, CP_ERR_CORRUPT);
    assert_int_equal(end.whole, ends[2]); /* cut after the last whole record */

    /* the same file up to its whole records: no damage, the file's size */
    seen.n = 0;
    segscan_reader_use(&rd, fd);
    assert_int_equal(segscan_each(&rd, ends[2], NULL, visit, &seen, &end), CP_OK);
    assert_int_equal(end.damage, CP_OK);
    assert_int_equal(end.whole, ends[2]);
    assert_int_equal(seen.n, 2);
    segscan_reader_free(&rd);
    close(fd);
}

/* A read that fails is no damage: the scan says CP_ERR_IO and nothing about where to
 * cut, so the store leaves the segment as it is. */
static void test_scan_read_error(void **state)
{
    (void)state;
    char dir[] = "/tmp/cp-segscan-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int fd = open(dir, O_RDONLY | O_DIRECTORY); /* read() on it fails: EISDIR */
    assert_true(fd >= 0);
    struct segscan_reader rd = {.fd = -1};
    segscan_reader_use(&rd, fd);
    struct seen seen = {0};
    struct segscan_end end = {.damage = CP_ERR_INTERNAL, .whole = 99};
    assert_int_equal(segscan_each(&rd, 4096, NULL, visit, &seen, &end), CP_ERR_IO);
    assert_int_equal(end.damage, CP_OK);
    assert_int_equal(end.whole, 0);
    assert_int_equal(seen.n, 0);
    cp_err err = CP_OK;
    assert_null(segscan_get(&rd, 0, 16, &err));
    assert_int_equal(err, CP_ERR_IO);
    segscan_reader_free(&rd);
    close(fd);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_head),
        cmocka_unit_test(test_scan_skips_and_cuts),
        cmocka_unit_test(test_scan_read_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
