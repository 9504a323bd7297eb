/* Reads responses back from the disk on a thread of its own, for requests whose
 * records are too long to read on a front-end thread (see update_lookup): the request
 * waits, suspended, and looks in memory again when its read is done. */
#ifndef CP_READBACK_H
#define CP_READBACK_H

#include "error.h"
#include "update.h"

struct readback;

/* Starts the reading thread, which reads through `u` (kept by pointer: it must outlive
 * the reader). Returns CP_ERR_NOMEM, or CP_ERR_INTERNAL if no thread could start. */
cp_err readback_start(const struct updater *u, struct readback **out);

/* Queues the read of the records of `key` for a request with fields `request`
 * (update_read_back; they must stay as they are until `done`): reads run one at a
 * time, in the order asked. `done(arg, true)` is called once the read is over, whatever
 * it found, on the reading thread; `done(arg, false)` by readback_stop for a read never
 * made. Returns CP_ERR_NOMEM, or CP_ERR_SHUTDOWN once readback_stop has begun, and then
 * `done` is never called. */
cp_err readback_submit(struct readback *rb, const char *key, const struct hdrs *request,
                       void (*done)(void *arg, bool made), void *arg);

/* Stops the thread after the read it is making and calls `done(arg, false)` for each
 * read still queued (on the calling thread). `rb` stays valid: submits fail from then
 * on, until readback_free. NULL is ignored. */
void readback_stop(struct readback *rb);

/* Frees a stopped reader, once nothing can submit to it any more. NULL is ignored. */
void readback_free(struct readback *rb);

#endif
