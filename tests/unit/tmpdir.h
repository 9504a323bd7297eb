/* Temporary directories for the unit tests that work on files (the store and what
 * reads it): made fresh under /tmp, removed whole with everything in them. */
#ifndef CP_TEST_TMPDIR_H
#define CP_TEST_TMPDIR_H

#include <stddef.h>

/* Makes /tmp/cp-<name>-test.XXXXXX and writes its path to `dir` (`len` bytes at most).
 * Returns 0, or -1 if it does not fit or cannot be made. */
int tmpdir_make(char *dir, size_t len, const char *name);

/* Removes `dir` and everything in it. Returns 0, or -1 if anything is left. */
int tmpdir_remove(const char *dir);

#endif
