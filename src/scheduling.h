/* The CPU scheduling policy the proxy's threads run under. The front end, the fetcher
 * and the disk writer hand each request to one another; under Linux's SCHED_BATCH a
 * thread woken by another does not preempt it, so they hand over batches of requests
 * instead of switching back and forth for each one. */
#ifndef CP_SCHEDULING_H
#define CP_SCHEDULING_H

#include "error.h"

/* Puts the calling thread, and so every thread it starts from then on, under
 * SCHED_BATCH, unless it already runs under a policy other than SCHED_OTHER (one chosen
 * with chrt(1), say), which is left as it is. Call it before starting any thread.
 * Returns CP_OK (also when left alone), or CP_ERR_INTERNAL with errno set when the
 * kernel refuses; the threads then run under the policy they had. */
cp_err scheduling_prefer_batches(void);

#endif
