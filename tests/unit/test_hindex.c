/* Tests of the hash index: what is added is found by hash and key, items that share a
 * hash are told apart by the key, removal in the middle of a run (wrapping or not) keeps
 * every later item findable, a walk that removes sees every item, and growth loses
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hindex.h"

/* Items are strings; an item is the one for a key when the strings are equal. */
static bool same_string(const void *item, const void *key)
{
    return strcmp(item, key) == 0;
}

/* A hash spread over the table, as XXH3's would be. */
static uint64_t spread(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return x * 0xbf58476d1ce4e5b9ull;
}

/* A hash whose home cell in a table of `cap` cells is `home` (cap a power of two):
 * `tag` in the high bits keeps hashes with one home apart. */
static uint64_t hash_at(size_t home, uint64_t tag)
{
    return (tag << 32) | home;
}

static size_t walk_count(const struct hindex *ix)
{
    size_t n = 0;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->cells[i].item != NULL)
            n++;
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    struct hindex ix = {0};
    assert_null(hindex_find(&ix, 1, same_string, "a"));
    assert_false(hindex_remove(&ix, 1, "a"));
    hindex_free(&ix);
    assert_null(ix.cells);
    assert_int_equal(ix.n, 0);
}

static void test_add_find(void **state)
{
    (void)state;
    struct hindex ix = {0};
    char a[] = "alpha", b[] = "beta";
    assert_int_equal(hindex_add(&ix, spread(1), a), CP_OK);
    assert_int_equal(hindex_add(&ix, spread(2), b), CP_OK);
    assert_int_equal(ix.n, 2);
    assert_ptr_equal(hindex_find(&ix, spread(1), same_string, "alpha"), a);
    assert_ptr_equal(hindex_find(&ix, spread(2), same_string, "beta"), b);
    /* The right hash is not enough, nor the right key under another hash. */
    assert_null(hindex_find(&ix, spread(1), same_string, "beta"));
    assert_null(hindex_find(&ix, spread(3), same_string, "alpha"));
    assert_int_equal(hindex_add(&ix, spread(3), NULL), CP_ERR_INTERNAL);
    assert_int_equal(ix.n, 2);
    hindex_free(&ix);
}

/* Two keys with one hash: each is found by its key, and removing one leaves the other. */
static void test_shared_hash(void **state)
{
    (void)state;
    struct hindex ix = {0};
    char a[] = "one", b[] = "two";
    assert_int_equal(hindex_add(&ix, 42, a), CP_OK);
    assert_int_equal(hindex_add(&ix, 42, b), CP_OK);
    assert_ptr_equal(hindex_find(&ix, 42, same_string, "one"), a);
    assert_ptr_equal(hindex_find(&ix, 42, same_string, "two"), b);
    assert_true(hindex_remove(&ix, 42, a));
    assert_false(hindex_remove(&ix, 42, a));
    assert_null(hindex_find(&ix, 42, same_string, "one"));
    assert_ptr_equal(hindex_find(&ix, 42, same_string, "two"), b);
    hindex_free(&ix);
}

/* Items crowded onto neighbouring homes (`homes`, in a table of 16 cells) so that they
 * form one run of cells: removing any one of them leaves all the others findable. */
static void check_runs(const size_t *homes, size_t n)
{
    char keys[8][24];
    assert_true(n <= 8);
    for (size_t victim = 0; victim < n; victim++) {
        struct hindex ix = {0};
        for (size_t i = 0; i < n; i++) {
            snprintf(keys[i], sizeof keys[i], "k%zu", i);
            assert_int_equal(hindex_add(&ix, hash_at(homes[i], i), keys[i]), CP_OK);
        }
        assert_int_equal(ix.cap, 16); /* the homes are cells of this table */
        assert_true(hindex_remove(&ix, hash_at(homes[victim], victim), keys[victim]));
        for (size_t i = 0; i < n; i++) {
            void *found = hindex_find(&ix, hash_at(homes[i], i), same_string, keys[i]);
            if (i == victim)
                assert_null(found);
            else
                assert_ptr_equal(found, keys[i]);
        }
        assert_int_equal(walk_count(&ix), n - 1);
        assert_int_equal(ix.n, n - 1);
        hindex_free(&ix);
    }
}

static void test_remove_in_run(void **state)
{
    (void)state;
    const size_t homes[] = {3, 3, 4, 5, 5, 7, 7};
    check_runs(homes, sizeof homes / sizeof *homes);
}

/* The run goes past the last cell to the first ones, where items have their homes too:
 * a hole left at the end must not take them back from the start. */
static void test_remove_in_wrapping_run(void **state)
{
    (void)state;
    const size_t homes[] = {14, 14, 0, 0, 1, 1, 15};
    check_runs(homes, sizeof homes / sizeof *homes);
}

typedef char number_text[24];

/* Adds the items "0" .. "n-1", each under spread(i), checking that the table never gets
 * more than half full. Returns the items' texts, to free. */
static number_text *add_numbers(struct hindex *ix, size_t n)
{
    number_text *keys = calloc(n, sizeof *keys);
    assert_non_null(keys);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "%zu", i);
        assert_int_equal(hindex_add(ix, spread(i), keys[i]), CP_OK);
        assert_true(ix->n * 2 <= ix->cap);
    }
    assert_int_equal(ix->n, n);
    return keys;
}

/* Checks that of add_numbers' items exactly the odd ones are left, each found, and
 * that walking the cells counts them. */
static void assert_odd_left(const struct hindex *ix, number_text *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *found = hindex_find(ix, spread(i), same_string, keys[i]);
        if (i % 2 == 0)
            assert_null(found);
        else
            assert_ptr_equal(found, keys[i]);
    }
    assert_int_equal(ix->n, n / 2);
    assert_int_equal(walk_count(ix), n / 2);
}

/* A walk that removes every other item, looking at a cell again after a removal as
 * hindex.h says, leaves exactly the others, findable, in a table whose runs wrap. */
static void test_walk_removing(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct hindex ix = {0};
    number_text *keys = add_numbers(&ix, N);
    size_t seen_odd = 0;
    for (size_t k = 0; k < ix.cap;) {
        char *item = ix.cells[k].item;
        if (item != NULL && atoi(item) % 2 == 0) {
            hindex_remove_at(&ix, k);
            continue;
        }
        if (item != NULL)
            seen_odd++;
        k++;
    }
    assert_true(seen_odd >= N / 2); /* a wrapped run may show one again, never hide one */
    assert_odd_left(&ix, keys, N);
    hindex_free(&ix);
    free(keys);
}

/* Many items: the table grows, stays at most half full, and every item stays findable
 * through growth and removal of half of them. */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct hindex ix = {0};
    number_text *keys = add_numbers(&ix, N);
    for (size_t i = 0; i < N; i += 2)
        assert_true(hindex_remove(&ix, spread(i), keys[i]));
    assert_odd_left(&ix, keys, N);
    hindex_free(&ix);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_find),
        cmocka_unit_test(test_shared_hash),
        cmocka_unit_test(test_remove_in_run),
        cmocka_unit_test(test_remove_in_wrapping_run),
        cmocka_unit_test(test_walk_removing),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
