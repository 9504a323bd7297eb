/* A response body in transit: the fetch thread writes it as it arrives from the origin,
 * a client connection reads it as it can, so the client gets bytes before the origin has
 * sent them all. The whole body is kept while it may still be stored (up to a limit);
 * past that only a window ahead of the reader is kept and the writer is paused when the
 * window is full, so memory stays bounded whatever the origin sends.
 * Thread-safe; knows nothing of HTTP, libcurl or libmicrohttpd: waking a parked reader
 * and resuming a paused writer are callbacks. */
#ifndef CP_RELAY_H
#define CP_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct relay;

/* Creates a relay that keeps the whole body while it is at most `keep_limit` bytes
 * (0: never keep it), and otherwise at most `window` bytes not yet read.
 * `resume(arg)` is called when a paused writer may write again, with the relay's lock
 * held (it must not call into the relay), and never once relay_end has returned: the
 * writer may then free `arg` while readers still hold the relay. Returns NULL if memory
 * runs out. The creator holds one reference. */
struct relay *relay_new(size_t keep_limit, size_t window, void (*resume)(void *arg),
                        void *resume_arg);
struct relay *relay_ref(struct relay *r);
void relay_unref(struct relay *r);

/* The body's announced length (Content-Length): a body that will be kept is given
 * exactly that room up front (up to 1 MiB; more grows as it arrives), with no doubling
 * to trim afterwards. Call before any
 * relay_write; a body that turns out longer still grows as usual. */
void relay_expect(struct relay *r, uint64_t length);

/* Writer side. Appends n bytes; returns false without taking any when the window is
 * full (the writer pauses until `resume`) or memory runs out (then the relay fails). */
bool relay_write(struct relay *r, const void *p, size_t n);
/* No more bytes: `ok` false means the body is incomplete (the reader gets an error).
 * From its return on, `resume` is not called any more. */
void relay_end(struct relay *r, bool ok);
/* Once the writer has written the whole body (before relay_end, so that it can be
 * stored before the reader sees the end), with the whole body kept: hands the bytes
 * over (trimmed to fit) in *body and *len (NULL and 0 for an empty body). The relay
 * still reads from them, so the caller must then call relay_keep with whatever keeps
 * them alive. Returns false, changing nothing, if the body was not kept or the relay
 * failed. */
bool relay_take(struct relay *r, unsigned char **body, size_t *len);
/* Makes the relay hold `keeper` (released with release(keeper) when the relay goes),
 * e.g. a reference to the entry that now owns the taken bytes. */
void relay_keep(struct relay *r, void *keeper, void (*release)(void *keeper));

/* Reader side: any number of readers, each at its own offset (bytes are dropped only
 * once every reader has them). `wake(wake_arg)` is called when the parked reader has
 * something new to read. Returns NULL if memory runs out, or if bytes the new reader
 * would need (from offset 0) have been dropped already. */
struct relay_reader;
struct relay_reader *relay_add_reader(struct relay *r, void (*wake)(void *arg),
                                      void *wake_arg);

enum { RELAY_WAIT = 0, RELAY_END = -1, RELAY_ERROR = -2 };

/* Copies up to `max` bytes from offset `pos` into buf and returns how many; the last
 * byte written only once the end is known (relay_end). With nothing to read yet calls park(park_arg) under the relay's lock (so a write cannot
 * slip in between) and returns RELAY_WAIT; the reader is then woken by `wake`.
 * Returns RELAY_END at the end of a complete body, RELAY_ERROR if it failed or `pos`
 * is no longer held. */
ssize_t relay_read(struct relay *r, struct relay_reader *rd, uint64_t pos, void *buf,
                   size_t max, void (*park)(void *arg), void *park_arg);

/* The reader is gone (and freed): nothing needs to be kept for it any more. */
void relay_reader_gone(struct relay *r, struct relay_reader *rd);

/* The whole body at once, for a reader that comes after the end: when the relay has
 * ended complete with the whole body kept, returns its bytes (valid while the caller
 * holds a reference to the relay) and sets *len; else returns NULL. */
const unsigned char *relay_whole(struct relay *r, size_t *len);

/* Bytes held in memory right now (for tests and accounting). */
size_t relay_held(struct relay *r);
/* True while the whole body is being kept. */
bool relay_keeping(struct relay *r);

#endif
