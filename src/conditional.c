/* Conditional requests against stored responses (see conditional.h): entity-tag
 * comparison, If-None-Match / If-Modified-Since evaluation by the cache (RFC 9111
 * 4.3.2), the validators of a revalidation, and the fields of a 304. */
#include "conditional.h"

#include <string.h>
#include <strings.h>

#include "http.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc of RFC 9110 section 8.8.3: visible characters but DQUOTE, and obs-text. */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* An entity-tag split into its parts; opaque excludes the quotes. */
struct etag {
    bool weak;
    const char *opaque;
    size_t len;
};

/* Parses s[0..len) (surrounding whitespace allowed) as one entity-tag. The weak
 * prefix is case-sensitive ("W/"), as the grammar says; anything else is malformed. */
static bool etag_parse(const char *s, size_t len, struct etag *out)
{
    while (len > 0 && is_ows(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    out->weak = len >= 2 && s[0] == 'W' && s[1] == '/';
    if (out->weak) {
        s += 2;
        len -= 2;
    }
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!is_etagc((unsigned char)s[i]))
            return false;
    out->opaque = s + 1;
    out->len = len - 2;
    return true;
}

static bool etag_parse_str(const char *s, struct etag *out)
{
    return s != NULL && etag_parse(s, strlen(s), out);
}

static bool opaque_equal(const struct etag *a, const struct etag *b)
{
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

bool cond_etag_weak_match(const char *a, const char *b)
{
    struct etag ta, tb;
    return etag_parse_str(a, &ta) && etag_parse_str(b, &tb) && opaque_equal(&ta, &tb);
}

bool cond_etag_strong_match(const char *a, const char *b)
{
    struct etag ta, tb;
    return etag_parse_str(a, &ta) && etag_parse_str(b, &tb) && !ta.weak && !tb.weak &&
           opaque_equal(&ta, &tb);
}

/* True if the comma-separated list of entity-tags `list` has one that matches
 * `stored` weakly. A comma inside a quoted opaque-tag belongs to the tag (etagc
 * allows it), so members end only at commas outside quotes; members that are not
 * an entity-tag (including a "*" inside a list) are skipped. */
static bool list_matches(const char *list, const struct etag *stored)
{
    const char *p = list;
    while (*p != '\0') {
        const char *start = p;
        bool quoted = false;
        for (; *p != '\0' && (quoted || *p != ','); p++)
            if (*p == '"')
                quoted = !quoted;
        struct etag t;
        if (etag_parse(start, (size_t)(p - start), &t) && opaque_equal(&t, stored))
            return true;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Evaluates If-None-Match (RFC 9110 section 13.1.2) for GET/HEAD: true when it
 * holds *not*, i.e. the stored representation matches and a 304 is due. */
static bool none_match_fails(const struct hdrs *request, const struct hdrs *stored)
{
    /* "*" is only the whole field value; a stored 200 is a current representation,
     * with or without an ETag. */
    if (hdrs_count(request, "If-None-Match") == 1) {
        const char *v = hdrs_get(request, "If-None-Match");
        while (is_ows(*v))
            v++;
        size_t len = strlen(v);
        while (len > 0 && is_ows(v[len - 1]))
            len--;
        if (len == 1 && v[0] == '*')
            return true;
    }
    struct etag st;
    if (!etag_parse_str(hdrs_get(stored, "ETag"), &st))
        return false;
    for (size_t i = 0; i < request->n; i++)
        if (hdrs_name_eq(request->v[i].name, "If-None-Match") &&
            list_matches(request->v[i].value, &st))
            return true;
    return false;
}

bool cond_not_modified(const struct hdrs *request, const struct hdrs *stored, int status,
                       time_t response_time)
{
    if (status != 200)
        return false;
    /* RFC 9110 13.2.2: when If-None-Match is present, whatever its value,
     * If-Modified-Since is not evaluated. */
    if (hdrs_get(request, "If-None-Match") != NULL)
        return none_match_fails(request, stored);

    /* More than one If-Modified-Since, or one that is not a date, is ignored
     * (RFC 9110 13.1.3). */
    time_t since;
    if (hdrs_count(request, "If-Modified-Since") != 1 ||
        !http_parse_date(hdrs_get(request, "If-Modified-Since"), &since))
        return false;
    /* RFC 9111 4.3.2: Last-Modified, else Date, else the time we received it. An
     * unreadable field is treated as absent rather than failing the whole test. */
    time_t modified;
    if (!http_parse_date(hdrs_get(stored, "Last-Modified"), &modified) &&
        !http_parse_date(hdrs_get(stored, "Date"), &modified))
        modified = response_time;
    return modified <= since;
}

/* The ETag of `stored` if it is a well-formed entity-tag, else NULL. */
static const char *usable_etag(const struct hdrs *stored)
{
    struct etag t;
    const char *v = hdrs_get(stored, "ETag");
    return etag_parse_str(v, &t) ? v : NULL;
}

/* The Last-Modified of `stored` if it is a valid HTTP-date, else NULL: an origin
 * ignores an If-Modified-Since it cannot read, so sending one would be useless. */
static const char *usable_last_modified(const struct hdrs *stored)
{
    time_t t;
    const char *v = hdrs_get(stored, "Last-Modified");
    return http_parse_date(v, &t) ? v : NULL;
}

bool cond_has_validator(const struct hdrs *stored)
{
    return usable_etag(stored) != NULL || usable_last_modified(stored) != NULL;
}

cp_err cond_add_validators(struct hdrs *request, const struct hdrs *stored)
{
    /* The client's own conditions are about its copy, not ours: a 304 for them
     * would tell the cache nothing about the stored response. */
    hdrs_remove(request, "If-None-Match");
    hdrs_remove(request, "If-Modified-Since");
    const char *etag = usable_etag(stored);
    const char *lm = usable_last_modified(stored);
    if ((etag != NULL && hdrs_add(request, "If-None-Match", etag) != CP_OK) ||
        (lm != NULL && hdrs_add(request, "If-Modified-Since", lm) != CP_OK)) {
        /* Without half a set of validators the request is at least a plain one. */
        hdrs_remove(request, "If-None-Match");
        hdrs_remove(request, "If-Modified-Since");
        return CP_ERR_NOMEM;
    }
    return CP_OK;
}

/* True if the field `name` of the 304 `nm` may update a stored response: not one
 * that describes the stored bytes themselves (RFC 9111 section 3.2: "header fields
 * that the cache's stored response depends upon"; the body sent is still the stored
 * one), and nothing meant for the hop that carried the 304 alone, fixed or named by
 * its Connection field. */
static bool takes_from_304(const struct hdrs *nm, const char *name)
{
    static const char *const body_fields[] = {"Content-Length", "Content-Encoding",
                                              "Content-Range", "Content-MD5", "ETag"};
    for (size_t i = 0; i < sizeof body_fields / sizeof body_fields[0]; i++)
        if (hdrs_name_eq(name, body_fields[i]))
            return false;
    return !hdrs_hop_by_hop_in(nm, name);
}

static bool has_before(const struct hdrs *h, size_t end, const char *name)
{
    for (size_t i = 0; i < end; i++)
        if (hdrs_name_eq(h->v[i].name, name))
            return true;
    return false;
}

static cp_err add_field(struct hdrs *out, const struct hdr *f)
{
    return hdrs_add(out, f->name, f->value);
}

/* Appends every field of the 304 named `name`, in the 304's order. */
static cp_err add_all_named(struct hdrs *out, const struct hdrs *nm, const char *name)
{
    for (size_t j = 0; j < nm->n; j++)
        if (hdrs_name_eq(nm->v[j].name, name) && add_field(out, &nm->v[j]) != CP_OK)
            return CP_ERR_NOMEM;
    return CP_OK;
}

/* Placement: the updated fields of a name take the place of the first stored field
 * of that name (later stored ones of that name go), so that the order of the stored
 * response survives; names new with the 304 follow at the end in the 304's order. */
cp_err cond_merge_304(const struct hdrs *stored, const struct hdrs *not_modified,
                      struct hdrs *out)
{
    for (size_t i = 0; i < stored->n; i++) {
        const struct hdr *f = &stored->v[i];
        cp_err err = CP_OK;
        if (hdrs_get(not_modified, f->name) == NULL || !takes_from_304(not_modified, f->name))
            err = add_field(out, f);
        else if (!has_before(stored, i, f->name))
            err = add_all_named(out, not_modified, f->name);
        if (err != CP_OK)
            goto fail;
    }
    for (size_t j = 0; j < not_modified->n; j++) {
        const struct hdr *f = &not_modified->v[j];
        if (hdrs_get(stored, f->name) == NULL && takes_from_304(not_modified, f->name) &&
            add_field(out, f) != CP_OK)
            goto fail;
    }
    return CP_OK;
fail:
    hdrs_free(out);
    return CP_ERR_NOMEM;
}

cp_err cond_304_fields(const struct hdrs *stored, struct hdrs *out)
{
    for (size_t i = 0; i < stored->n; i++) {
        const struct hdr *f = &stored->v[i];
        if (hdrs_name_eq(f->name, "Content-Length") || hdrs_hop_by_hop_in(stored, f->name))
            continue;
        if (add_field(out, f) != CP_OK) {
            hdrs_free(out);
            return CP_ERR_NOMEM;
        }
    }
    return CP_OK;
}
