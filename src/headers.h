/* An ordered list of HTTP header fields (name, value), as a message carries them.
 * Names compare case-insensitively; repeated fields (Set-Cookie) stay separate entries.
 * Also knows which fields are hop-by-hop (RFC 9110 section 7.6.1). */
#ifndef CP_HEADERS_H
#define CP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

#include "error.h"

/* A field's name and value are one allocation, the value following the name: a field
 * is changed or freed only through the functions below (hdrs_set, hdrs_free...). */
struct hdr {
    char *name;
    char *value;
};

struct hdrs {
    struct hdr *v;
    size_t n, cap;
};

/* Whether two field names are the same (ASCII case-insensitive). Lookups compare a
 * name against every field of a message and most differ in their first letter, so
 * that is checked inline first (folding case only ever makes equal letters equal). */
static inline bool hdrs_name_eq(const char *a, const char *b)
{
    return (*a | 0x20) == (*b | 0x20) && strcasecmp(a, b) == 0;
}

/* Makes `h` an empty list. Never fails. */
void hdrs_init(struct hdrs *h);
/* Frees every field and leaves `h` empty (reusable). */
void hdrs_free(struct hdrs *h);

/* Appends a copy of name/value (value trimmed of surrounding whitespace).
 * Returns CP_ERR_NOMEM, leaving `h` unchanged, if memory runs out. */
cp_err hdrs_add(struct hdrs *h, const char *name, const char *value);
/* Same with explicit lengths (the strings need not be NUL-terminated). */
cp_err hdrs_addn(struct hdrs *h, const char *name, size_t name_len, const char *value,
                 size_t value_len);
/* Same as hdrs_addn for a field received from a peer that is to be passed on rather
 * than refused: any CR, LF or NUL left inside the value becomes a space (RFC 9110
 * section 5.5), so that nothing after can split or cut the field there. */
cp_err hdrs_addn_scrubbed(struct hdrs *h, const char *name, size_t name_len, const char *value,
                          size_t value_len);

/* Returns the value of the first field named `name`, or NULL. */
const char *hdrs_get(const struct hdrs *h, const char *name);
/* Number of fields named `name`. */
size_t hdrs_count(const struct hdrs *h, const char *name);
/* Removes every field named `name`; returns how many were removed. */
size_t hdrs_remove(struct hdrs *h, const char *name);

/* Sets *out to the values of every field named `name` joined with ", " (RFC 9110
 * section 5.3), or to NULL if there is none. The caller frees *out.
 * Returns CP_ERR_NOMEM on allocation failure. */
cp_err hdrs_join(const struct hdrs *h, const char *name, char **out);

/* True if a comma-separated list in any field named `name` holds `token`
 * (case-insensitive, ignoring parameters after ';' and whitespace). */
bool hdrs_has_token(const struct hdrs *h, const char *name, const char *token);

/* Makes `name` a single field holding `value`: it takes the place of the first field
 * of that name (so the order of the others is kept), or goes last. Returns
 * CP_ERR_NOMEM, leaving `h` unchanged, if memory runs out. */
cp_err hdrs_set(struct hdrs *h, const char *name, const char *value);

/* Continues the value of the last field with an obs-fold line (RFC 9112 section 5.2;
 * `len` bytes of `piece`): the fold and the whitespace around it become one space,
 * and so does any CR, LF or NUL inside the piece.
 * Nothing happens to an empty list or for a blank line. Returns CP_ERR_NOMEM, leaving
 * `h` unchanged, if memory runs out. */
cp_err hdrs_continue_last(struct hdrs *h, const char *piece, size_t len);

/* Replaces `dst` (which must be initialised) by a deep copy of `src`.
 * On CP_ERR_NOMEM `dst` is left empty. */
cp_err hdrs_copy(struct hdrs *dst, const struct hdrs *src);

/* True for the fixed hop-by-hop fields: Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*. */
bool hdrs_is_hop_by_hop(const char *name);
/* True if `name` is hop-by-hop in the message whose fields are `h`: a fixed one
 * (hdrs_is_hop_by_hop) or one that h's Connection field names. */
bool hdrs_hop_by_hop_in(const struct hdrs *h, const char *name);
/* Removes the hop-by-hop fields and every field that Connection names. */
void hdrs_strip_hop_by_hop(struct hdrs *h);

#endif
