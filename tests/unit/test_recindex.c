/* Tests of the store's index of records: what is put is found, replaced and deleted;
 * deleting in the middle of a probe chain keeps every later record of it findable;
 * growth, the sweep of deleted segments, the removal of every variant of a key and
 * crowds of colliding hashes lose nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "recindex.h"

/* A hash whose home slot in a table of `cap` slots is `home` (cap a power of two):
 * the low bits of lo pick the slot, so `tag` in the high bits and in hi keeps hashes
 * with one home apart. */
static struct diskfmt_hash hash_at(size_t home, uint64_t tag)
{
    return (struct diskfmt_hash){(tag << 32) | home, ~tag};
}

/* A hash spread over the table as diskfmt_key_hash's would be. */
static struct diskfmt_hash hash_of(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return (struct diskfmt_hash){x * 0xbf58476d1ce4e5b9ull, i};
}

static void assert_at(const struct recindex *ix, const struct diskfmt_hash *h, uint64_t seq,
                      uint32_t off, uint32_t len)
{
    const struct recindex_slot *sl = recindex_find(ix, h);
    assert_non_null(sl);
    assert_true(sl->lo == h->lo && sl->hi == h->hi);
    assert_int_equal(sl->seq, seq);
    assert_int_equal(sl->off, off);
    assert_int_equal(sl->len, len);
}

/* Counts the records by walking the table, as the store's merge does. */
static size_t walk_count(const struct recindex *ix)
{
    size_t n = 0;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->v[i].len != 0)
            n++;
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct diskfmt_hash h = hash_of(1);
    assert_null(recindex_find(&ix, &h));
    assert_false(recindex_delete(&ix, &h));
    recindex_drop_below(&ix, 100);
    assert_int_equal(ix.n, 0);
    recindex_free(&ix);
    recindex_free(&ix); /* an empty index again */
    assert_null(ix.v);
    assert_int_equal(ix.cap, 0);
}

static void test_put_find_replace(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct diskfmt_hash a = hash_of(1), b = hash_of(2);
    assert_int_equal(recindex_put(&ix, &a, 3, 100, 50), CP_OK);
    assert_int_equal(recindex_put(&ix, &b, 4, 0, 60), CP_OK);
    assert_int_equal(ix.n, 2);
    assert_at(&ix, &a, 3, 100, 50);
    assert_at(&ix, &b, 4, 0, 60);

    /* The newer record replaces the older: still one record for the key. */
    assert_int_equal(recindex_put(&ix, &a, 7, UINT32_MAX - 1, UINT32_MAX), CP_OK);
    assert_int_equal(ix.n, 2);
    assert_at(&ix, &a, 7, UINT32_MAX - 1, UINT32_MAX);
    assert_at(&ix, &b, 4, 0, 60);

    /* Equal low halves are not enough: the whole 128 bits must match. */
    struct diskfmt_hash a2 = {a.lo, a.hi + 1};
    assert_null(recindex_find(&ix, &a2));
    assert_int_equal(recindex_put(&ix, &a2, 9, 1, 2), CP_OK);
    assert_int_equal(ix.n, 3);
    assert_at(&ix, &a, 7, UINT32_MAX - 1, UINT32_MAX);
    assert_at(&ix, &a2, 9, 1, 2);
    recindex_free(&ix);
}

static void test_put_zero_length_refused(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct diskfmt_hash a = hash_of(1), b = hash_of(2);
    assert_int_equal(recindex_put(&ix, &a, 1, 0, 0), CP_ERR_INTERNAL);
    assert_int_equal(ix.n, 0);
    assert_null(recindex_find(&ix, &a));

    /* Nor may it turn a record into a free slot in the middle of the table. */
    assert_int_equal(recindex_put(&ix, &b, 1, 5, 10), CP_OK);
    assert_int_equal(recindex_put(&ix, &b, 2, 0, 0), CP_ERR_INTERNAL);
    assert_int_equal(ix.n, 1);
    assert_at(&ix, &b, 1, 5, 10);
    recindex_free(&ix);
}

static void test_delete(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct diskfmt_hash a = hash_of(1), b = hash_of(2);
    assert_int_equal(recindex_put(&ix, &a, 1, 0, 10), CP_OK);
    assert_int_equal(recindex_put(&ix, &b, 1, 10, 10), CP_OK);
    assert_true(recindex_delete(&ix, &a));
    assert_int_equal(ix.n, 1);
    assert_null(recindex_find(&ix, &a));
    assert_false(recindex_delete(&ix, &a)); /* once only */
    assert_at(&ix, &b, 1, 10, 10);
    /* A deleted key may come back. */
    assert_int_equal(recindex_put(&ix, &a, 2, 0, 30), CP_OK);
    assert_at(&ix, &a, 2, 0, 30);
    assert_int_equal(ix.n, 2);
    recindex_free(&ix);
}

/* A chain of records with one home, then records whose homes follow (pushed on by the
 * chain): deleting from the middle of it must move the later ones back so that a probe
 * from their home still reaches them. */
static void test_delete_in_probe_chain(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_reserve(&ix, 10), CP_OK);
    size_t cap = ix.cap;
    assert_true(cap >= 16);
    struct diskfmt_hash h[8];
    for (uint64_t t = 0; t < 4; t++) /* home 5: slots 5, 6, 7, 8 */
        h[t] = hash_at(5, t + 1);
    h[4] = hash_at(6, 10); /* home 6, pushed to slot 9 */
    h[5] = hash_at(9, 11); /* home 9, pushed to slot 10 */
    h[6] = hash_at(11, 12); /* home 11, in place: must stay */
    h[7] = hash_at(4, 13); /* home 4, before the chain: untouched */
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(recindex_put(&ix, &h[i], i, i * 100, i + 1), CP_OK);
    assert_int_equal(ix.cap, cap); /* reserved: no growth reshuffled them */

    /* Out of the middle, then the head, then one pushed from another home. */
    assert_true(recindex_delete(&ix, &h[1]));
    for (uint32_t i = 0; i < 8; i++)
        if (i != 1)
            assert_at(&ix, &h[i], i, i * 100, i + 1);
    assert_true(recindex_delete(&ix, &h[0]));
    assert_true(recindex_delete(&ix, &h[4]));
    assert_null(recindex_find(&ix, &h[0]));
    assert_null(recindex_find(&ix, &h[1]));
    assert_null(recindex_find(&ix, &h[4]));
    for (uint32_t i = 2; i < 8; i++)
        if (i != 4)
            assert_at(&ix, &h[i], i, i * 100, i + 1);
    assert_int_equal(ix.n, 5);
    assert_int_equal(walk_count(&ix), 5);
    /* A record never moves before its home: the one at home 11 is still there. */
    assert_true(ix.v[11].lo == h[6].lo && ix.v[11].hi == h[6].hi);
    recindex_free(&ix);
}

/* A chain that runs past the last slot into the first ones. */
static void test_delete_in_wrapping_chain(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_reserve(&ix, 4), CP_OK);
    size_t last = ix.cap - 1;
    struct diskfmt_hash h[5];
    for (uint64_t t = 0; t < 3; t++) /* slots last, 0, 1 */
        h[t] = hash_at(last, t + 1);
    h[3] = hash_at(0, 20); /* home 0, pushed to 2 */
    h[4] = hash_at(1, 21); /* home 1, pushed to 3 */
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(recindex_put(&ix, &h[i], 1, i, 1), CP_OK);
    assert_true(recindex_delete(&ix, &h[0]));
    for (uint32_t i = 1; i < 5; i++)
        assert_at(&ix, &h[i], 1, i, 1);
    assert_true(recindex_delete(&ix, &h[3]));
    assert_at(&ix, &h[1], 1, 1, 1);
    assert_at(&ix, &h[2], 1, 2, 1);
    assert_at(&ix, &h[4], 1, 4, 1);
    assert_int_equal(ix.n, 3);
    assert_int_equal(walk_count(&ix), 3);
    recindex_free(&ix);

    /* The hole in the last slot, and after the wrap a record at its own home, which
     * must stay, then one of the last slot's chain, which must move back. */
    assert_int_equal(recindex_reserve(&ix, 4), CP_OK);
    struct diskfmt_hash a = hash_at(last, 1), b = hash_at(0, 2), c = hash_at(last, 3);
    assert_int_equal(recindex_put(&ix, &a, 1, 0, 1), CP_OK); /* slot last */
    assert_int_equal(recindex_put(&ix, &b, 1, 1, 1), CP_OK); /* slot 0 */
    assert_int_equal(recindex_put(&ix, &c, 1, 2, 1), CP_OK); /* slot 1 */
    assert_true(recindex_delete(&ix, &a));
    assert_at(&ix, &b, 1, 1, 1);
    assert_at(&ix, &c, 1, 2, 1);
    assert_true(ix.v[0].lo == b.lo && ix.v[0].hi == b.hi);
    recindex_free(&ix);
}

static void test_delete_at_found_slot(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct diskfmt_hash h[3] = {hash_at(2, 1), hash_at(2, 2), hash_at(2, 3)};
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(recindex_put(&ix, &h[i], 1, i, 1), CP_OK);
    struct recindex_slot *sl = recindex_find(&ix, &h[0]);
    assert_non_null(sl);
    recindex_delete_at(&ix, sl);
    assert_null(recindex_find(&ix, &h[0]));
    assert_at(&ix, &h[1], 1, 1, 1);
    assert_at(&ix, &h[2], 1, 2, 1);
    assert_int_equal(ix.n, 2);
    recindex_free(&ix);
}

/* Past 3/4 full the table doubles, and every record is found in the new one. */
static void test_growth(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_put(&ix, &(struct diskfmt_hash){1, 1}, 1, 0, 1), CP_OK);
    size_t cap = ix.cap;
    assert_true(cap > 0 && (cap & (cap - 1)) == 0);
    assert_true(recindex_delete(&ix, &(struct diskfmt_hash){1, 1}));

    const uint32_t n = (uint32_t)cap * 20;
    for (uint32_t i = 0; i < n; i++) {
        struct diskfmt_hash h = hash_of(i);
        assert_int_equal(recindex_put(&ix, &h, i / 100, i, i + 1), CP_OK);
        assert_true(ix.n * 4 <= ix.cap * 3); /* never more than 3/4 full */
    }
    assert_int_equal(ix.n, n);
    assert_true(ix.cap > cap);
    assert_true((ix.cap & (ix.cap - 1)) == 0);
    assert_int_equal(walk_count(&ix), n);
    for (uint32_t i = 0; i < n; i++) {
        struct diskfmt_hash h = hash_of(i);
        assert_at(&ix, &h, i / 100, i, i + 1);
    }
    recindex_free(&ix);
}

static void test_reserve(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_put(&ix, &(struct diskfmt_hash){7, 7}, 1, 2, 3), CP_OK);
    assert_int_equal(recindex_reserve(&ix, 1000), CP_OK);
    size_t cap = ix.cap;
    assert_true(cap * 3 / 4 >= 1000);
    assert_at(&ix, &(struct diskfmt_hash){7, 7}, 1, 2, 3); /* kept across the move */
    for (uint32_t i = 1; i < 1000; i++) {
        struct diskfmt_hash h = hash_of(i);
        assert_int_equal(recindex_put(&ix, &h, 1, i, 1), CP_OK);
    }
    assert_int_equal(ix.cap, cap); /* the room was there */
    assert_int_equal(recindex_reserve(&ix, 10), CP_OK); /* never shrinks */
    assert_int_equal(ix.cap, cap);
    /* A count no memory can hold fails and leaves the index as it was. */
    assert_int_equal(recindex_reserve(&ix, SIZE_MAX), CP_ERR_NOMEM);
    assert_int_equal(ix.cap, cap);
    assert_int_equal(ix.n, 1000);
    assert_at(&ix, &(struct diskfmt_hash){7, 7}, 1, 2, 3);
    recindex_free(&ix);
}

/* The sweep after deleted segments: only records of older segments go, however they lie
 * in the probe chains (interleaved, wrapping), and the rest stay findable. */
static void test_drop_below(void **state)
{
    (void)state;
    struct recindex ix = {0};
    const uint32_t n = 3000;
    for (uint32_t i = 0; i < n; i++) {
        struct diskfmt_hash h = hash_of(i);
        assert_int_equal(recindex_put(&ix, &h, i % 7, i, 1), CP_OK);
    }
    recindex_drop_below(&ix, 3); /* segments 0, 1, 2 */
    size_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct diskfmt_hash h = hash_of(i);
        if (i % 7 < 3) {
            assert_null(recindex_find(&ix, &h));
        } else {
            assert_at(&ix, &h, i % 7, i, 1);
            kept++;
        }
    }
    assert_int_equal(ix.n, kept);
    assert_int_equal(walk_count(&ix), kept);
    for (size_t i = 0; i < ix.cap; i++)
        assert_true(ix.v[i].len == 0 || ix.v[i].seq >= 3);

    recindex_drop_below(&ix, 3); /* nothing more to drop */
    assert_int_equal(ix.n, kept);
    recindex_drop_below(&ix, UINT64_MAX); /* everything */
    assert_int_equal(ix.n, 0);
    assert_int_equal(walk_count(&ix), 0);
    recindex_free(&ix);
}

/* Many records with one home, and a few with the next homes, in a table kept full up
 * to its bound: long chains that wrap, then deletions and a sweep through them. */
static void test_colliding_homes(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_reserve(&ix, 48), CP_OK);
    const size_t cap = ix.cap; /* 64 */
    const uint32_t n = (uint32_t)(cap / 4 * 3);
    struct diskfmt_hash h[64];
    for (uint32_t i = 0; i < n; i++)
        h[i] = hash_at(i % 4 == 0 ? cap - 2 + (i / 4) % 3 : cap - 3, i + 1);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(recindex_put(&ix, &h[i], i % 2, i, i + 1), CP_OK);
    assert_int_equal(ix.cap, cap);
    for (uint32_t i = 0; i < n; i++)
        assert_at(&ix, &h[i], i % 2, i, i + 1);

    /* Every third one out, from the front of the chains. */
    for (uint32_t i = 0; i < n; i += 3)
        assert_true(recindex_delete(&ix, &h[i]));
    for (uint32_t i = 0; i < n; i++) {
        if (i % 3 == 0)
            assert_null(recindex_find(&ix, &h[i]));
        else
            assert_at(&ix, &h[i], i % 2, i, i + 1);
    }
    /* Then the records of segment 0. */
    recindex_drop_below(&ix, 1);
    size_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i % 3 == 0 || i % 2 == 0) {
            assert_null(recindex_find(&ix, &h[i]));
        } else {
            assert_at(&ix, &h[i], 1, i, i + 1);
            kept++;
        }
    }
    assert_int_equal(ix.n, kept);
    assert_int_equal(walk_count(&ix), kept);
    recindex_free(&ix);
}

/* Every variant of a key (one lo, several hi) is found, wherever the chain put it, and
 * only those; at most as many as asked for. */
static void test_find_lo(void **state)
{
    (void)state;
    struct recindex ix = {0};
    struct recindex_slot out[8];
    assert_int_equal(recindex_find_lo(&ix, 5, out, 8), 0); /* no table at all */
    assert_int_equal(recindex_reserve(&ix, 40), CP_OK);
    size_t last = ix.cap - 1;
    struct diskfmt_hash key = hash_at(last, 7);
    /* Variants and other keys of the same home, interleaved, running over the wrap. */
    struct diskfmt_hash h[6] = {key, hash_at(last, 8), {key.lo, key.hi + 1},
                                hash_at(0, 9), {key.lo, key.hi + 2}, hash_at(1, 10)};
    for (uint32_t i = 0; i < 6; i++)
        assert_int_equal(recindex_put(&ix, &h[i], 1, i, i + 1), CP_OK);
    assert_int_equal(recindex_find_lo(&ix, key.lo, out, 8), 3);
    bool seen[6] = {false};
    for (size_t k = 0; k < 3; k++) {
        assert_true(out[k].lo == key.lo);
        assert_true(out[k].off == 0 || out[k].off == 2 || out[k].off == 4);
        assert_int_equal(out[k].len, out[k].off + 1);
        assert_false(seen[out[k].off]);
        seen[out[k].off] = true;
    }
    assert_int_equal(recindex_find_lo(&ix, key.lo, out, 2), 2);
    assert_int_equal(recindex_find_lo(&ix, h[3].lo, out, 8), 1);
    assert_int_equal(out[0].off, 3);
    assert_int_equal(recindex_find_lo(&ix, hash_at(last, 99).lo, out, 8), 0);
    recindex_free(&ix);
}

/* Every variant of a key (one lo, several hi) goes, wherever the chain put it; other
 * keys of the same home, and those pushed past it across the wrap, stay findable. */
static void test_delete_lo(void **state)
{
    (void)state;
    struct recindex ix = {0};
    assert_int_equal(recindex_delete_lo(&ix, 5), 0); /* no table at all */
    assert_int_equal(recindex_reserve(&ix, 40), CP_OK);
    size_t last = ix.cap - 1;
    struct diskfmt_hash key = hash_at(last - 1, 7);
    struct diskfmt_hash h[12];
    /* Variants and another key of the same home, interleaved, running over the wrap;
     * then records of the homes they crowd, and one far away. */
    h[0] = key;
    h[1] = hash_at(last - 1, 8);
    h[2] = (struct diskfmt_hash){key.lo, key.hi + 1};
    h[3] = hash_at(last - 1, 9);
    h[4] = (struct diskfmt_hash){key.lo, key.hi + 2};
    h[5] = hash_at(0, 10);
    h[6] = (struct diskfmt_hash){key.lo, key.hi + 3};
    h[7] = hash_at(1, 11);
    h[8] = hash_at(last, 12);
    h[9] = hash_at(2, 13);
    h[10] = hash_at(20, 14);
    h[11] = hash_at(3, 15);
    for (uint32_t i = 0; i < 12; i++)
        assert_int_equal(recindex_put(&ix, &h[i], 1, i, i + 1), CP_OK);
    /* One of the variants replaced: still one record. */
    assert_int_equal(recindex_put(&ix, &h[4], 2, 40, 41), CP_OK);
    assert_int_equal(ix.n, 12);

    assert_int_equal(recindex_delete_lo(&ix, key.lo), 4);
    for (uint32_t i = 0; i < 12; i++) {
        if (h[i].lo == key.lo)
            assert_null(recindex_find(&ix, &h[i]));
        else
            assert_at(&ix, &h[i], 1, i, i + 1);
    }
    assert_int_equal(ix.n, 8);
    assert_int_equal(walk_count(&ix), 8);
    /* Nothing left of it; an unknown lo, even of a used home, forgets nothing. */
    assert_int_equal(recindex_delete_lo(&ix, key.lo), 0);
    assert_int_equal(recindex_delete_lo(&ix, hash_at(last - 1, 99).lo), 0);
    assert_int_equal(recindex_delete_lo(&ix, hash_at(30, 99).lo), 0);
    assert_int_equal(ix.n, 8);
    /* The other key of that home goes alone. */
    assert_int_equal(recindex_delete_lo(&ix, h[1].lo), 1);
    assert_null(recindex_find(&ix, &h[1]));
    for (uint32_t i = 3; i < 12; i++)
        if (h[i].lo != key.lo)
            assert_at(&ix, &h[i], 1, i, i + 1);
    assert_int_equal(walk_count(&ix), 7);
    recindex_free(&ix);

    /* Spread hashes: deleting many keys one by one leaves exactly the others. */
    struct diskfmt_hash v[300];
    for (uint64_t i = 0; i < 300; i++) {
        v[i] = hash_of(i / 3);           /* three variants per key */
        v[i].hi = i;
    }
    for (uint32_t i = 0; i < 300; i++)
        assert_int_equal(recindex_put(&ix, &v[i], 1, i, 1), CP_OK);
    for (uint32_t i = 0; i < 300; i += 6)   /* every other key */
        assert_int_equal(recindex_delete_lo(&ix, v[i].lo), 3);
    for (uint32_t i = 0; i < 300; i++) {
        if ((i / 3) % 2 == 0)
            assert_null(recindex_find(&ix, &v[i]));
        else
            assert_at(&ix, &v[i], 1, i, 1);
    }
    assert_int_equal(ix.n, 150);
    assert_int_equal(walk_count(&ix), 150);
    recindex_free(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_find_replace),
        cmocka_unit_test(test_put_zero_length_refused),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_delete_in_probe_chain),
        cmocka_unit_test(test_delete_in_wrapping_chain),
        cmocka_unit_test(test_delete_at_found_slot),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_drop_below),
        cmocka_unit_test(test_colliding_homes),
        cmocka_unit_test(test_find_lo),
        cmocka_unit_test(test_delete_lo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
