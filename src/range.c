/* Single byte ranges out of a stored response (see range.h): the Range grammar of
 * RFC 9110 section 14.2, satisfiability against the body length (14.1.2), and the
 * If-Range precondition (13.1.5). */
#include "range.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conditional.h"
#include "http.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_ows(const char *p)
{
    while (is_ows(*p))
        p++;
    return p;
}

/* Reads 1*DIGIT at *pp, saturating at UINT64_MAX so that a position past any body
 * stays past it instead of wrapping. Parsed in place, which http_parse_uint (whole
 * strings only) cannot do. */
static bool read_pos(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *pp = p;
    *out = v;
    return true;
}

/* One range-spec: first-pos "-" [last-pos] or "-" suffix-length. */
struct spec {
    bool suffix;
    bool has_last;
    uint64_t first, last; /* last is the suffix length when `suffix` */
};

/* Parses the range-spec at *pp, ending at a comma or the end of the field; OWS is
 * accepted around each part since it costs no ambiguity. */
static bool read_spec(const char **pp, struct spec *s)
{
    const char *p = skip_ows(*pp);
    s->suffix = *p == '-';
    s->has_last = false;
    s->first = s->last = 0;
    if (s->suffix) {
        p = skip_ows(p + 1);
        if (!read_pos(&p, &s->last))
            return false;
    } else {
        if (!read_pos(&p, &s->first))
            return false;
        p = skip_ows(p);
        if (*p++ != '-')
            return false;
        p = skip_ows(p);
        s->has_last = read_pos(&p, &s->last);
        if (s->has_last && s->last < s->first)
            return false; /* RFC 9110 14.1.1: invalid, so the whole field is */
    }
    p = skip_ows(p);
    if (*p != ',' && *p != '\0')
        return false;
    *pp = p;
    return true;
}

/* Parses a Range field value holding exactly one byte range-spec (empty list
 * members aside, which lists allow). False for another unit, bad syntax or more
 * than one range. */
static bool parse_range(const char *v, struct spec *s)
{
    const char *p = skip_ows(v);
    if (strncasecmp(p, "bytes", 5) != 0)
        return false;
    p = skip_ows(p + 5);
    if (*p++ != '=')
        return false;
    size_t count = 0;
    for (;;) {
        p = skip_ows(p);
        if (*p == '\0')
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        if (++count > 1 || !read_spec(&p, s))
            return false;
    }
    return count == 1;
}

/* Within the same second a representation can change with its Last-Modified
 * unchanged; RFC 9110 8.8.2.2 lets a cache call a date strong only if it is at
 * least 60 seconds before the stored Date. */
static bool date_is_strong(const struct hdrs *stored, time_t last_modified)
{
    time_t date;
    return http_parse_date(hdrs_get(stored, "Date"), &date) && last_modified <= date - 60;
}

/* If-Range (RFC 9110 13.1.5): true if absent or if it names the stored response. */
static bool if_range_holds(const struct hdrs *request, const struct hdrs *stored)
{
    size_t n = hdrs_count(request, "If-Range");
    if (n == 0)
        return true;
    if (n > 1)
        return false;
    const char *v = skip_ows(hdrs_get(request, "If-Range"));
    /* An entity-tag starts with DQUOTE or W/, which no HTTP-date does. */
    if (v[0] == '"' || (v[0] == 'W' && v[1] == '/'))
        return cond_etag_strong_match(v, hdrs_get(stored, "ETag"));
    time_t want, have;
    return http_parse_date(v, &want) &&
           http_parse_date(hdrs_get(stored, "Last-Modified"), &have) && want == have &&
           date_is_strong(stored, have);
}

struct range range_select(const struct hdrs *request, const struct hdrs *stored,
                          size_t body_len)
{
    struct range full = {RANGE_FULL, 0, 0};
    struct spec s;
    /* Range is a singleton field: two of them are as unusable as a bad one. */
    if (hdrs_count(request, "Range") != 1 || !parse_range(hdrs_get(request, "Range"), &s))
        return full;
    if (!if_range_holds(request, stored))
        return full;

    const uint64_t len = body_len;
    struct range r = {RANGE_UNSATISFIABLE, 0, 0};
    if (s.suffix) {
        /* RFC 9110 14.1.2: a zero suffix, or any suffix of an empty body, selects
         * nothing; a longer one selects the whole body. */
        if (s.last == 0 || len == 0)
            return r;
        uint64_t n = s.last < len ? s.last : len;
        r.start = (size_t)(len - n);
        r.length = (size_t)n;
    } else {
        if (s.first >= len)
            return r;
        uint64_t last = s.has_last && s.last < len - 1 ? s.last : len - 1;
        r.start = (size_t)s.first;
        r.length = (size_t)(last - s.first + 1);
    }
    r.kind = RANGE_PARTIAL;
    return r;
}

void range_content_range(const struct range *r, size_t body_len, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (r->kind == RANGE_PARTIAL && r->length > 0)
        snprintf(buf, len, "bytes %zu-%zu/%zu", r->start, r->start + (r->length - 1), body_len);
    else if (r->kind == RANGE_UNSATISFIABLE)
        snprintf(buf, len, "bytes */%zu", body_len);
    else
        buf[0] = '\0'; /* a full response carries no Content-Range */
}
