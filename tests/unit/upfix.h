/* A fixture for the unit tests of what stores and reads back through an updater
 * (update, readback): a fresh store and cache in a temporary directory. */
#ifndef CP_TEST_UPFIX_H
#define CP_TEST_UPFIX_H

#include <stddef.h>

#include "update.h"

struct upfix {
    char dir[64];
    struct origin origin; /* http://o.test */
    struct cache *cache;  /* unbounded */
    struct store *store;  /* unbounded */
    struct updater up;    /* over both, no mirror: stores go to memory only */
};

/* cmocka setup and teardown: *state is the struct upfix. They return 0, or -1 (a setup
 * that cannot make its directory, store or cache). */
int upfix_setup(void **state);
int upfix_teardown(void **state);

/* Writes a record of `key` (no Vary, fresh for a minute) with `len` bytes of `body`
 * (taken over) straight to the store, as if stored and then evicted from memory.
 * Fails the test if it cannot. */
void upfix_write_record(struct upfix *f, const char *key, unsigned char *body, size_t len);

#endif
