/* Writes entries to the disk mirror on a background thread, so that neither the
 * front end nor the fetcher ever waits for the disk. */
#ifndef CP_MIRROR_H
#define CP_MIRROR_H

#include <stdbool.h>

#include "entry.h"
#include "error.h"
#include "store.h"

struct mirror;

/* Starts the writer thread over `s` (which must outlive the mirror).
 * Returns CP_ERR_NOMEM or CP_ERR_INTERNAL (thread creation failed). */
cp_err mirror_start(struct store *s, struct mirror **out);
/* Queues `e` to be written as a record (takes a reference; see store_write). Never
 * blocks on I/O. Out of memory, it is not written, logged as an error: the older record
 * of its key, if any, stays in force on disk (mirror_pending then says so). */
void mirror_write(struct mirror *m, struct entry *e);
/* Queues the removal of the records of every variant of `key` (copies it; see
 * store_remove_all), in order with the other operations. Never blocks on I/O. Out of
 * memory, the removal is lost, logged as an error: the records stay in force on disk
 * (mirror_pending then says so). */
void mirror_remove_all(struct mirror *m, const char *key);
/* Whether a write or removal of `key` (mirror_write, mirror_remove_all) may not have
 * reached the store's index yet: until then the store may still find, in force, a
 * record that it replaces or removes. False only when none has, so now and then true
 * for a key that merely shares a counter with a pending one. Also true for every key
 * once an operation could not be queued (out of memory). Lock-free; never fails. */
bool mirror_pending(struct mirror *m, const char *key);
/* Writes everything queued, stops the thread and frees. NULL is ignored. */
void mirror_stop(struct mirror *m);

#endif
