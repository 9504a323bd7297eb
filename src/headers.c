/* Ordered HTTP header lists (see headers.h): a growable array of owned name/value
 * strings, looked up case-insensitively, plus the comma-list and hop-by-hop rules
 * a proxy needs (RFC 9110 sections 5.3, 5.6.1 and 7.6.1). */
#include "headers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* CR, LF and NUL inside a field value are dangerous (a later reader may split or cut
 * the field there): RFC 9110 section 5.5 lets a recipient replace each with SP, which
 * keeps a field that is to be passed on (a Location with a bare CR still redirects)
 * where rejecting it would lose it. */
static void scrub_value(char *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            v[i] = ' ';
}

/* A field's storage: one allocation holding name, NUL, value, NUL (so a field costs
 * one malloc, and a list is copied with one per field), the value scrubbed of CR, LF
 * and NUL if `scrub`. Sets f's pointers into it. Returns false if there is no memory,
 * leaving f untouched. */
static bool field_make(struct hdr *f, const char *name, size_t name_len, const char *value,
                       size_t value_len, bool scrub)
{
    if (name_len > SIZE_MAX / 2 - 2 || value_len > SIZE_MAX / 2)
        return false;
    char *p = malloc(name_len + value_len + 2);
    if (p == NULL)
        return false;
    if (name_len > 0)
        memcpy(p, name, name_len);
    p[name_len] = '\0';
    char *v = p + name_len + 1;
    if (value_len > 0)
        memcpy(v, value, value_len);
    if (scrub)
        scrub_value(v, value_len);
    v[value_len] = '\0';
    f->name = p;
    f->value = v;
    return true;
}

void hdrs_init(struct hdrs *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void hdrs_free(struct hdrs *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].name); /* the value lives in the same allocation */
    free(h->v);
    hdrs_init(h);
}

static cp_err reserve_one(struct hdrs *h)
{
    if (h->n < h->cap)
        return CP_OK;
    size_t cap = h->cap ? h->cap * 2 : 8;
    if (cap < h->cap || cap > SIZE_MAX / sizeof *h->v)
        return CP_ERR_NOMEM;
    struct hdr *v = realloc(h->v, cap * sizeof *v);
    if (v == NULL)
        return CP_ERR_NOMEM;
    h->v = v;
    h->cap = cap;
    return CP_OK;
}

static cp_err add_field(struct hdrs *h, const char *name, size_t name_len, const char *value,
                        size_t value_len, bool scrub)
{
    /* Leading and trailing whitespace is not part of a field value (RFC 9110 5.5);
     * CR/LF are trimmed too so that a raw line ending never leaks into a value. */
    while (value_len > 0 && (is_ows(*value) || *value == '\r' || *value == '\n')) {
        value++;
        value_len--;
    }
    while (value_len > 0 && (is_ows(value[value_len - 1]) || value[value_len - 1] == '\r' ||
                             value[value_len - 1] == '\n'))
        value_len--;

    if (reserve_one(h) != CP_OK ||
        !field_make(&h->v[h->n], name, name_len, value, value_len, scrub))
        return CP_ERR_NOMEM;
    h->n++;
    return CP_OK;
}

cp_err hdrs_addn(struct hdrs *h, const char *name, size_t name_len, const char *value,
                 size_t value_len)
{
    return add_field(h, name, name_len, value, value_len, false);
}

cp_err hdrs_addn_scrubbed(struct hdrs *h, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    return add_field(h, name, name_len, value, value_len, true);
}

cp_err hdrs_add(struct hdrs *h, const char *name, const char *value)
{
    if (value == NULL)
        value = "";
    return hdrs_addn(h, name, strlen(name), value, strlen(value));
}

/* Entries whose name is NULL are being removed (see hdrs_strip_hop_by_hop). */
static bool name_is(const struct hdr *f, const char *name)
{
    return f->name != NULL && hdrs_name_eq(f->name, name);
}

const char *hdrs_get(const struct hdrs *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (name_is(&h->v[i], name))
            return h->v[i].value;
    return NULL;
}

size_t hdrs_count(const struct hdrs *h, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < h->n; i++)
        if (name_is(&h->v[i], name))
            count++;
    return count;
}

/* Drops the entries marked by a NULL name, keeping the others in order. */
static size_t compact(struct hdrs *h)
{
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].name != NULL)
            h->v[j++] = h->v[i];
    size_t removed = h->n - j;
    h->n = j;
    return removed;
}

static void mark_removed(struct hdr *f)
{
    free(f->name);
    f->name = NULL;
    f->value = NULL;
}

size_t hdrs_remove(struct hdrs *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (name_is(&h->v[i], name))
            mark_removed(&h->v[i]);
    return compact(h);
}

cp_err hdrs_join(const struct hdrs *h, const char *name, char **out)
{
    *out = NULL;
    size_t len = 0, count = 0;
    bool found = false;
    /* Empty field lines add no list members, so they are left out of the join
     * rather than producing ", ," (but an all-empty field still yields ""). */
    for (size_t i = 0; i < h->n; i++) {
        if (!name_is(&h->v[i], name))
            continue;
        found = true;
        size_t l = strlen(h->v[i].value);
        if (l == 0)
            continue;
        len += l + (count > 0 ? 2 : 0);
        count++;
    }
    if (!found)
        return CP_OK;
    char *s = malloc(len + 1);
    if (s == NULL)
        return CP_ERR_NOMEM;
    char *p = s;
    count = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (!name_is(&h->v[i], name) || h->v[i].value[0] == '\0')
            continue;
        if (count++ > 0) {
            *p++ = ',';
            *p++ = ' ';
        }
        size_t l = strlen(h->v[i].value);
        memcpy(p, h->v[i].value, l);
        p += l;
    }
    *p = '\0';
    *out = s;
    return CP_OK;
}

/* True if the comma-separated list `list` has a member whose first part (before any
 * ';' parameters, whitespace trimmed) equals `token` case-insensitively. Commas and
 * semicolons inside quoted strings do not separate anything. */
static bool list_has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = list;
    while (*p != '\0') {
        while (is_ows(*p) || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *start = p, *end = NULL;
        bool quoted = false;
        for (; *p != '\0'; p++) {
            if (quoted) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                else if (*p == '"')
                    quoted = false;
            } else if (*p == '"') {
                quoted = true;
            } else if (*p == ';' && end == NULL) {
                end = p;
            } else if (*p == ',') {
                break;
            }
        }
        if (end == NULL)
            end = p;
        while (end > start && is_ows(end[-1]))
            end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

bool hdrs_has_token(const struct hdrs *h, const char *name, const char *token)
{
    for (size_t i = 0; i < h->n; i++)
        if (name_is(&h->v[i], name) && list_has_token(h->v[i].value, token))
            return true;
    return false;
}

cp_err hdrs_copy(struct hdrs *dst, const struct hdrs *src)
{
    /* Built aside first so that dst == src works; sized once, fields copied as they
     * are (already trimmed). */
    struct hdrs tmp;
    hdrs_init(&tmp);
    if (src->n > 0) {
        tmp.v = malloc(src->n * sizeof *tmp.v);
        if (tmp.v == NULL) {
            hdrs_free(dst);
            return CP_ERR_NOMEM;
        }
        tmp.cap = src->n;
    }
    for (size_t i = 0; i < src->n; i++) {
        const struct hdr *f = &src->v[i];
        if (!field_make(&tmp.v[i], f->name, strlen(f->name), f->value, strlen(f->value),
                        false)) {
            hdrs_free(&tmp);
            hdrs_free(dst);
            return CP_ERR_NOMEM;
        }
        tmp.n++;
    }
    hdrs_free(dst);
    *dst = tmp;
    return CP_OK;
}

/* Replaces the value of field `i` by `value_len` bytes of `value`, as they are, keeping
 * its name. Returns CP_ERR_NOMEM, leaving `h` unchanged, if memory runs out. */
static cp_err set_value(struct hdrs *h, size_t i, const char *value, size_t value_len)
{
    struct hdr f;
    if (!field_make(&f, h->v[i].name, strlen(h->v[i].name), value, value_len, false))
        return CP_ERR_NOMEM;
    free(h->v[i].name);
    h->v[i] = f;
    return CP_OK;
}

cp_err hdrs_continue_last(struct hdrs *h, const char *piece, size_t len)
{
    while (len > 0 && is_ows(*piece)) {
        piece++;
        len--;
    }
    while (len > 0 && is_ows(piece[len - 1]))
        len--;
    if (h->n == 0 || len == 0)
        return CP_OK;
    struct hdr *f = &h->v[h->n - 1];
    size_t name_len = strlen(f->name), old = strlen(f->value);
    size_t sep = old > 0 ? 1 : 0;
    if (len > SIZE_MAX / 2 || old > SIZE_MAX / 4 || name_len > SIZE_MAX / 4)
        return CP_ERR_NOMEM;
    char *p = malloc(name_len + 1 + old + sep + len + 1);
    if (p == NULL)
        return CP_ERR_NOMEM;
    memcpy(p, f->name, name_len + 1);
    char *v = p + name_len + 1;
    memcpy(v, f->value, old);
    if (sep)
        v[old] = ' ';
    memcpy(v + old + sep, piece, len);
    scrub_value(v + old + sep, len);
    v[old + sep + len] = '\0';
    free(f->name);
    f->name = p;
    f->value = v;
    return CP_OK;
}

cp_err hdrs_set(struct hdrs *h, const char *name, const char *value)
{
    size_t i = 0;
    while (i < h->n && !name_is(&h->v[i], name))
        i++;
    if (i == h->n)
        return hdrs_add(h, name, value);
    if (set_value(h, i, value, strlen(value)) != CP_OK)
        return CP_ERR_NOMEM;
    for (size_t k = i + 1; k < h->n; k++)
        if (name_is(&h->v[k], name))
            mark_removed(&h->v[k]);
    compact(h);
    return CP_OK;
}

bool hdrs_is_hop_by_hop(const char *name)
{
    static const char *const fixed[] = {
        "Connection", "Keep-Alive", "TE", "Trailer",
        "Trailers", /* the RFC 2616 spelling, still seen in the wild */
        "Transfer-Encoding", "Upgrade",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (hdrs_name_eq(name, fixed[i]))
            return true;
    /* Proxy-Authorization, Proxy-Authenticate, Proxy-Connection: all for the next hop. */
    return strncasecmp(name, "Proxy-", 6) == 0;
}

bool hdrs_hop_by_hop_in(const struct hdrs *h, const char *name)
{
    return hdrs_is_hop_by_hop(name) || hdrs_has_token(h, "Connection", name);
}

void hdrs_strip_hop_by_hop(struct hdrs *h)
{
    /* The Connection fields must stay readable while the fields they name are
     * marked, so they go last. Marking (not compacting) keeps this allocation-free. */
    for (size_t i = 0; i < h->n; i++) {
        struct hdr *f = &h->v[i];
        if (hdrs_name_eq(f->name, "Connection"))
            continue;
        if (hdrs_hop_by_hop_in(h, f->name))
            mark_removed(f);
    }
    for (size_t i = 0; i < h->n; i++)
        if (name_is(&h->v[i], "Connection"))
            mark_removed(&h->v[i]);
    compact(h);
}
