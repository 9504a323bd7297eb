/* HTTP parsing for caching decisions (see http.h): Cache-Control directives, HTTP
 * dates (through libcurl's curl_getdate, behind a shape check), and the secondary
 * cache key that a response's Vary field asks for. */
#include "http.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* tchar of RFC 9110 section 5.6.2: what field names and directive names are made of. */
static bool is_tchar(unsigned char c)
{
    if (isalnum(c) && c < 0x80)
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Digits of s[0..len), where in a quoted-string argument a backslash escapes the
 * next character (RFC 9110 section 5.6.4). Saturates at `limit`. */
static bool parse_digits(const char *s, size_t len, bool quoted, int64_t limit, int64_t *out)
{
    int64_t v = 0;
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (quoted && c == '\\' && i + 1 < len)
            c = s[++i];
        if (c < '0' || c > '9')
            return false;
        int d = c - '0';
        v = v > (limit - d) / 10 ? limit : v * 10 + d;
        digits++;
    }
    if (digits == 0)
        return false;
    *out = v;
    return true;
}

bool http_parse_uint(const char *s, int64_t *out)
{
    return s != NULL && parse_digits(s, strlen(s), false, INT64_MAX / 2, out);
}

/* Whether every Transfer-Encoding of `h` (if any) comes to the single coding
 * "chunked": one field, exactly that value (any case). */
static bool only_chunked(const struct hdrs *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (!hdrs_name_eq(h->v[i].name, "Transfer-Encoding"))
            continue;
        if (++n > 1 || strcasecmp(h->v[i].value, "chunked") != 0)
            return false;
    }
    return true;
}

bool http_request_coding_ok(const struct hdrs *request)
{
    return only_chunked(request);
}

/* Whether every Content-Length of `h` holds the same decimal number, short of the
 * saturation of http_parse_uint. */
static bool lengths_agree(const struct hdrs *h)
{
    int64_t length = -1;
    for (size_t i = 0; i < h->n; i++) {
        if (!hdrs_name_eq(h->v[i].name, "Content-Length"))
            continue;
        int64_t n;
        if (!http_parse_uint(h->v[i].value, &n) || n >= INT64_MAX / 2 ||
            (length >= 0 && n != length))
            return false;
        length = n;
    }
    return true;
}

/* Whether `c` may stand in a URI host outside brackets: unreserved, sub-delims, and
 * the '%' of pct-encoded (RFC 3986 3.2.2). */
static bool is_host_char(unsigned char c)
{
    return (isalnum(c) && c < 0x80) || (c != '\0' && strchr("-._~!$&'()*+,;=%", c) != NULL);
}

/* Whether `v` is a Host field value: uri-host [":" port] (RFC 9110 7.2): an IP literal
 * in brackets, or a name or IPv4 address, then an optional port of digits. Empty is
 * allowed (a target without authority). */
static bool host_value_ok(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    if (*p == '[') {
        for (p++; *p != ']'; p++)
            if (*p != ':' && !is_host_char(*p))
                return false; /* includes the end of the string */
        p++;
    } else {
        for (; *p != '\0' && *p != ':'; p++)
            if (!is_host_char(*p))
                return false;
    }
    if (*p == ':')
        for (p++; isdigit(*p); p++)
            ;
    return *p == '\0';
}

bool http_request_fields_ok(const struct hdrs *request)
{
    size_t hosts = 0;
    for (size_t i = 0; i < request->n; i++) {
        const char *name = request->v[i].name;
        if (name[0] == '\0')
            return false;
        for (const char *c = name; *c; c++)
            if (!is_tchar((unsigned char)*c))
                return false;
        /* A bare CR inside a value reads as a line break to some origins: a field
         * the client hid there would reach them (RFC 9110 5.5). */
        if (strpbrk(request->v[i].value, "\r\n") != NULL)
            return false;
        if (hdrs_name_eq(name, "Host") && (++hosts > 1 || !host_value_ok(request->v[i].value)))
            return false;
    }
    return lengths_agree(request);
}

bool http_request_framing_ok(const struct hdrs *request, bool http_1_0)
{
    if (hdrs_get(request, "Transfer-Encoding") == NULL)
        return true;
    return !http_1_0 && hdrs_get(request, "Content-Length") == NULL;
}

bool http_response_framing_ok(const struct hdrs *response, bool http_1_0)
{
    if (hdrs_get(response, "Transfer-Encoding") == NULL)
        return lengths_agree(response);
    return !http_1_0 && only_chunked(response);
}

int64_t http_field_uint(const struct hdrs *h, const char *name)
{
    int64_t v;
    return http_parse_uint(hdrs_get(h, name), &v) ? v : -1;
}

/* ---- Cache-Control ---------------------------------------------------------------- */

/* One directive as found in a field line; name and argument point into the line,
 * so parsing needs no memory and cannot fail half-way. */
struct directive {
    const char *name;
    size_t name_len;
    bool has_arg;
    bool arg_ok;     /* the argument is a well-formed token or quoted-string */
    bool arg_quoted; /* arg is the inside of a quoted-string, escapes still in it */
    const char *arg;
    size_t arg_len;
};

/* Moves past the rest of a list member: up to the next comma that is not inside a
 * quoted string, or the end. */
static const char *skip_member(const char *q)
{
    bool quoted = false;
    for (; *q != '\0'; q++) {
        if (quoted) {
            if (*q == '\\' && q[1] != '\0')
                q++;
            else if (*q == '"')
                quoted = false;
        } else if (*q == '"') {
            quoted = true;
        } else if (*q == ',') {
            break;
        }
    }
    return q;
}

/* Reads the next directive of the list at *pp; false at the end of the list.
 * Members that do not start with a token are skipped. A directive followed by
 * junk ("max-age=60 x") is returned with a bad argument, so that it counts as
 * present but invalid. Whitespace around '=' is tolerated. */
static bool next_directive(const char **pp, struct directive *d)
{
    const char *p = *pp;
    for (;;) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (*p == '\0') {
            *pp = p;
            return false;
        }
        memset(d, 0, sizeof *d);
        d->name = p;
        while (is_tchar((unsigned char)*p))
            p++;
        d->name_len = (size_t)(p - d->name);
        if (d->name_len == 0) {
            p = skip_member(p);
            continue;
        }
        const char *q = p;
        while (is_ows(*q))
            q++;
        if (*q == '=') {
            q++;
            while (is_ows(*q))
                q++;
            d->has_arg = true;
            if (*q == '"') {
                d->arg_quoted = true;
                d->arg = ++q;
                for (; *q != '\0' && *q != '"'; q++)
                    if (*q == '\\' && q[1] != '\0')
                        q++;
                d->arg_len = (size_t)(q - d->arg);
                d->arg_ok = *q == '"';
                if (d->arg_ok)
                    q++;
            } else {
                d->arg = q;
                while (is_tchar((unsigned char)*q))
                    q++;
                d->arg_len = (size_t)(q - d->arg);
                d->arg_ok = d->arg_len > 0;
            }
            while (is_ows(*q))
                q++;
        }
        if (*q != ',' && *q != '\0') {
            d->has_arg = true;
            d->arg_ok = false;
            q = skip_member(q);
        }
        *pp = q;
        return true;
    }
}

static bool dir_is(const struct directive *d, const char *name)
{
    return strlen(name) == d->name_len && strncasecmp(d->name, name, d->name_len) == 0;
}

/* delta-seconds (RFC 9111 section 1.2.2), saturating at INT32_MAX. */
static bool parse_delta(const struct directive *d, int64_t *out)
{
    return d->has_arg && d->arg_ok &&
           parse_digits(d->arg, d->arg_len, d->arg_quoted, INT32_MAX, out);
}

/* First valid value wins for the delta directives without a safer direction. */
static void set_first(int64_t *field, const struct directive *d)
{
    int64_t v;
    if (*field < 0 && parse_delta(d, &v))
        *field = v;
}

/* For max-age and s-maxage the lowest value wins: the shortest lifetime is the safe one. */
static void set_lowest(int64_t *field, int64_t v)
{
    if (*field < 0 || v < *field)
        *field = v;
}

/* The state of a parse that spans several field lines. */
struct cc_parse {
    bool no_cache_plain, private_plain;
};

static void parse_cc_line(const char *line, struct cache_control *cc, struct cc_parse *st)
{
    struct directive d;
    const char *p = line;
    while (next_directive(&p, &d)) {
        int64_t v;
        /* Directives that only restrict caching count even with a stray argument:
         * ignoring "no-store=1" would store what the origin asked us not to. */
        if (dir_is(&d, "no-store")) {
            cc->no_store = true;
        } else if (dir_is(&d, "no-cache")) {
            cc->no_cache = true;
            if (d.has_arg && d.arg_ok)
                cc->no_cache_fields = true;
            else
                st->no_cache_plain = true;
        } else if (dir_is(&d, "private")) {
            cc->private_ = true;
            if (d.has_arg && d.arg_ok)
                cc->private_fields = true;
            else
                st->private_plain = true;
        } else if (dir_is(&d, "must-revalidate")) {
            cc->must_revalidate = true;
        } else if (dir_is(&d, "proxy-revalidate")) {
            cc->proxy_revalidate = true;
        } else if (dir_is(&d, "no-transform")) {
            cc->no_transform = true;
        } else if (dir_is(&d, "only-if-cached")) {
            cc->only_if_cached = true;
        } else if (dir_is(&d, "public")) {
            /* These widen what may be cached, so a malformed one is ignored. */
            if (!d.has_arg)
                cc->public_ = true;
        } else if (dir_is(&d, "immutable")) {
            if (!d.has_arg)
                cc->immutable = true;
        } else if (dir_is(&d, "must-understand")) {
            cc->must_understand = true;
        } else if (dir_is(&d, "max-age")) {
            set_lowest(&cc->max_age, parse_delta(&d, &v) ? v : 0);
        } else if (dir_is(&d, "s-maxage")) {
            if (parse_delta(&d, &v))
                set_lowest(&cc->s_maxage, v);
        } else if (dir_is(&d, "max-stale")) {
            if (cc->max_stale < 0 && !cc->max_stale_any) {
                if (!d.has_arg)
                    cc->max_stale_any = true;
                else
                    set_first(&cc->max_stale, &d);
            }
        } else if (dir_is(&d, "min-fresh")) {
            set_first(&cc->min_fresh, &d);
        } else if (dir_is(&d, "stale-while-revalidate")) {
            set_first(&cc->stale_while_revalidate, &d);
        } else if (dir_is(&d, "stale-if-error")) {
            set_first(&cc->stale_if_error, &d);
        }
    }
}

void http_cache_control(const struct hdrs *h, struct cache_control *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = -1;
    cc->stale_while_revalidate = cc->stale_if_error = -1;

    /* Line by line is the same as parsing the joined field (RFC 9110 5.3), except
     * that an unterminated quote cannot swallow the next line; and it needs no memory. */
    struct cc_parse st = {false, false};
    for (size_t i = 0; i < h->n; i++)
        if (hdrs_name_eq(h->v[i].name, "Cache-Control"))
            parse_cc_line(h->v[i].value, cc, &st);

    /* An unqualified no-cache/private overrides a qualified one: the qualified
     * flags end up set only if every occurrence named fields. */
    if (st.no_cache_plain)
        cc->no_cache_fields = false;
    if (st.private_plain)
        cc->private_fields = false;
}

/* ---- dates ------------------------------------------------------------------------ */

static const char *const day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* True if the n letters at w are a day or month name (setting *month for the
 * latter) or the GMT zone under one of its names. */
static bool known_word(const char *w, size_t n, bool *month)
{
    static const char *const long_days[7] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                             "Thursday", "Friday", "Saturday"};
    static const char *const zones[3] = {"GMT", "UTC", "UT"};
    for (int m = 0; m < 12; m++)
        if (n == 3 && strncasecmp(w, month_names[m], 3) == 0) {
            *month = true;
            return true;
        }
    for (int d = 0; d < 7; d++)
        if ((n == 3 && strncasecmp(w, day_names[d], 3) == 0) ||
            (n == strlen(long_days[d]) && strncasecmp(w, long_days[d], n) == 0))
            return true;
    for (int z = 0; z < 3; z++)
        if (n == strlen(zones[z]) && strncasecmp(w, zones[z], n) == 0)
            return true;
    return false;
}

/* curl_getdate is generous: it makes a time out of a bare number, a lone time of day
 * or a string that is mostly garbage. Every HTTP-date (all three formats) has a month
 * name, a year, and a time of day hh:mm:ss, no words but day and month names and
 * GMT, and nothing but letters, digits, spaces, commas, dashes and colons (plus '+'
 * for a numeric zone some servers send). */
static bool looks_like_http_date(const char *s, size_t len)
{
    if (len < 20 || len > 64)
        return false;
    bool month = false, time_of_day = false, year = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == ' ' || c == ',' || c == '-' || c == ':' || c == '+') || c >= 0x80)
            return false;
    }
    for (size_t i = 0; i < len;) {
        if (isalpha((unsigned char)s[i])) {
            size_t j = i;
            while (j < len && isalpha((unsigned char)s[j]))
                j++;
            if (!known_word(s + i, j - i, &month))
                return false;
            i = j;
        } else if (isdigit((unsigned char)s[i])) {
            size_t j = i;
            while (j < len && isdigit((unsigned char)s[j]))
                j++;
            /* hh:mm:ss */
            if ((j - i == 1 || j - i == 2) && j + 6 <= len && s[j] == ':' &&
                isdigit((unsigned char)s[j + 1]) && isdigit((unsigned char)s[j + 2]) &&
                s[j + 3] == ':' && isdigit((unsigned char)s[j + 4]) &&
                isdigit((unsigned char)s[j + 5])) {
                time_of_day = true;
                j += 6;
            } else if (j - i == 4 && (i == 0 || s[i - 1] != '+')) {
                year = true;
            } else if (j - i == 2 && i > 0 && s[i - 1] == '-') {
                year = true; /* RFC 850: dd-Mon-yy */
            }
            i = j;
        } else {
            i++;
        }
    }
    return month && time_of_day && year;
}

/* Days from 1970-01-01 to the given date of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The n digits at s as a number, or -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The preferred format, IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), which is what
 * nearly every server sends, read exactly and without a library call: dates are
 * parsed several times for each response that is stored. Returns false for anything
 * else, which the general path then judges. */
static bool parse_imf_fixdate(const char *s, size_t len, time_t *out)
{
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' ||
        memcmp(s + 26, "GMT", 3) != 0)
        return false;
    bool day = false;
    for (int d = 0; d < 7 && !day; d++)
        day = memcmp(s, day_names[d], 3) == 0;
    int month = -1;
    for (int m = 0; m < 12 && month < 0; m++)
        if (memcmp(s + 8, month_names[m], 3) == 0)
            month = m + 1;
    int mday = digits(s + 5, 2), year = digits(s + 12, 4);
    int hh = digits(s + 17, 2), mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* Before 1583 (no Gregorian calendar) curl_getdate fails too. */
    if (!day || month < 0 || mday < 1 || year < 1583 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60 || mday > month_days[month - 1])
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && mday == 29 && !leap)
        return false;
    /* A leap second (:60) is read as the next second, as curl_getdate does. */
    *out = (time_t)(days_from_civil(year, month, mday) * 86400 + hh * 3600 + mm * 60 + ss);
    return true;
}

bool http_parse_date(const char *s, time_t *out)
{
    if (s == NULL)
        return false;
    while (is_ows(*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    if (parse_imf_fixdate(s, len, out))
        return true;
    if (!looks_like_http_date(s, len))
        return false;
    char buf[65];
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* -1 is curl's failure value; the one real second it also names (1969-12-31
     * 23:59:59) is lost, which costs nothing: such a date is in the past anyway. */
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return false;
    *out = t;
    return true;
}

void http_format_date(time_t t, char buf[30])
{
    /* Years outside 1..9999 do not fit the format; clamp to its ends. */
    const time_t lo = (time_t)-62135596800LL; /* 0001-01-01T00:00:00Z */
    const time_t hi = (time_t)253402300799LL; /* 9999-12-31T23:59:59Z */
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        memcpy(buf, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
        return;
    }
    /* Names from our own tables, not strftime: the locale must not leak into HTTP. */
    snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday % 7],
             tm.tm_mday % 100, month_names[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
}

/* ---- Vary --------------------------------------------------------------------------- */

/* A growable string for building keys. */
struct buf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_putc(struct buf *b, char c)
{
    buf_put(b, &c, 1);
}

/* Appends `v` normalised: surrounding whitespace dropped, whitespace around commas
 * (outside quoted strings) collapsed to ", ", and control characters turned into
 * spaces so that the '\n' framing of the key cannot be forged by a value. */
static void put_normalised(struct buf *b, const char *v)
{
    while (is_ows(*v) || (unsigned char)*v < 0x20) {
        if (*v == '\0')
            return;
        v++;
    }
    size_t start = b->len;
    bool quoted = false;
    for (; *v != '\0'; v++) {
        char c = *v;
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = ' ';
        if (quoted) {
            if (c == '\\' && v[1] != '\0') {
                buf_putc(b, c);
                c = *++v;
                if ((unsigned char)c < 0x20 || c == 0x7f)
                    c = ' ';
            } else if (c == '"') {
                quoted = false;
            }
            buf_putc(b, c);
            continue;
        }
        if (c == '"') {
            quoted = true;
            buf_putc(b, c);
        } else if (c == ',') {
            while (!b->failed && b->len > start && b->s[b->len - 1] == ' ')
                b->len--;
            buf_put(b, ", ", 2);
            while (is_ows(v[1]) || (v[1] != '\0' && (unsigned char)v[1] < 0x20))
                v++;
        } else {
            buf_putc(b, c);
        }
    }
    while (!b->failed && b->len > start && b->s[b->len - 1] == ' ')
        b->len--;
    if (!b->failed)
        b->s[b->len] = '\0';
}

cp_err http_vary_key(const char *vary, const struct hdrs *request, char **out)
{
    *out = NULL;
    struct buf b = {0};
    buf_put(&b, "", 0);
    const char *p = vary != NULL ? vary : "";
    cp_err err = CP_OK;
    /* Key layout, per listed field: the lower-cased name, then ":" and the normalised
     * value if the request has the field, then "\n". Names are tokens (no ':' or
     * '\n') and values hold no control characters, so distinct requests never share
     * a key, and an absent field ("name\n") differs from an empty one ("name:\n"). */
    while (*p != '\0' && err == CP_OK) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *s = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *e = p;
        while (e > s && is_ows(e[-1]))
            e--;
        size_t n = (size_t)(e - s);
        if (n == 1 && *s == '*') {
            err = CP_ERR_BAD_TARGET;
            break;
        }
        /* A member that is not a field name cannot be matched against the request
         * reliably, so the response is treated as one that can never be reused. */
        char name[256];
        if (n >= sizeof name) {
            err = CP_ERR_BAD_TARGET;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (!is_tchar((unsigned char)s[i])) {
                err = CP_ERR_BAD_TARGET;
                break;
            }
            name[i] = (char)tolower((unsigned char)s[i]);
        }
        if (err != CP_OK)
            break;
        name[n] = '\0';
        char *value = NULL;
        if (hdrs_join(request, name, &value) != CP_OK) {
            err = CP_ERR_NOMEM;
            break;
        }
        buf_put(&b, name, n);
        if (value != NULL) {
            buf_putc(&b, ':');
            put_normalised(&b, value);
            free(value);
        }
        buf_putc(&b, '\n');
    }
    if (err == CP_OK && b.failed)
        err = CP_ERR_NOMEM;
    if (err != CP_OK) {
        free(b.s);
        return err;
    }
    *out = b.s;
    return CP_OK;
}
