/* A cached response: the immutable object that the cache, the disk mirror and every
 * client being answered from it share by reference count. Once published to the cache
 * an entry is never modified, so readers need no lock. */
#ifndef CP_ENTRY_H
#define CP_ENTRY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "headers.h"

struct entry {
    atomic_int refs;
    char *key;            /* primary key: origin URL and Host (url_cache_key) */
    char *vary_key;       /* secondary key (http_vary_key), "" when no Vary */
    int status;
    struct hdrs headers;  /* end-to-end response fields as the origin sent them */
    unsigned char *body;
    size_t body_len;
    struct entry *body_owner; /* NULL: `body` is ours; else the entry whose body we share
                                 (a revalidated entry keeps its predecessor's bytes) */
    time_t request_time;  /* when the request that fetched it was sent */
    time_t response_time; /* when its response arrived */
    int64_t initial_age;  /* corrected initial age at response_time (seconds) */
    int64_t lifetime;     /* freshness lifetime (seconds) */
    uint64_t generation;  /* cache generation it belongs to (see store.h) */
    atomic_bool refreshing; /* a background revalidation of it has been started */
    void *packed;         /* non-NULL after entry_pack: the one block that holds key,
                             vary_key and the header fields (names, values, array) */
};

/* Returns a zeroed entry with one reference and empty headers, or NULL (no memory). */
struct entry *entry_new(void);
/* Adds a reference; returns `e` for convenience. */
struct entry *entry_ref(struct entry *e);
/* Drops a reference; frees the entry and everything it owns at zero. NULL is ignored. */
void entry_unref(struct entry *e);

/* Moves key, vary key and header fields into a single allocation, so that an entry kept
 * for hours costs three blocks (itself, that one, its body) instead of two per field,
 * with no slack. Call once the entry is complete and before anyone else can see it (the
 * fields move). The fields stay readable as before but must not be changed afterwards.
 * Returns CP_ERR_NOMEM leaving `e` as it was (still valid, just not packed). */
cp_err entry_pack(struct entry *e);
/* Gives `e` the key and Vary key given (either may be NULL) and the fields of `src`
 * that `keep` accepts (NULL: all), in order, packed as entry_pack packs them; what e
 * had of these is freed. They may be e's own. The same rules as entry_pack's apply.
 * Returns CP_ERR_NOMEM leaving `e` as it was. */
cp_err entry_pack_from(struct entry *e, const char *key, const char *vary_key,
                       const struct hdrs *src,
                       bool (*keep)(const struct hdrs *src, const char *name));

/* Makes `e` (new, bodiless) share the body of `from`, holding a reference to it, so a
 * revalidation updates fields without copying the bytes. */
void entry_share_body(struct entry *e, struct entry *from);

/* Current age (seconds) of `e` at `now`. */
int64_t entry_age(const struct entry *e, time_t now);

#endif
