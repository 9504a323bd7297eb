/* The origin's URL and the URLs derived from it (see url.h). libcurl's URL API does
 * the parsing; the code here only adds the checks and normalisation the proxy needs
 * and keeps request targets byte for byte, since they are also cache keys. */
#include "url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static cp_err from_curl(CURLUcode rc)
{
    return rc == CURLUE_OUT_OF_MEMORY ? CP_ERR_NOMEM : CP_ERR_BAD_TARGET;
}

static void ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static int default_port(const char *scheme)
{
    return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* Length of "http://" or "https://" at the start of `s` (any case), else 0. libcurl
 * is lenient about the number of slashes ("http:/h", "http:///h"), which would let
 * a target or an origin without an authority slip through as if it had one. */
static size_t scheme_prefix_len(const char *s)
{
    size_t n = 0;
    if (strncasecmp(s, "http://", 7) == 0)
        n = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        n = 8;
    if (n == 0 || s[n] == '\0' || s[n] == '/')
        return 0;
    return n;
}

/* The pieces of a parsed absolute URL the proxy compares. */
struct parts {
    char *scheme;   /* lower case (libcurl's doing) */
    char *host;     /* lower case, IPv6 without brackets */
    int port;       /* explicit or the scheme's default */
    bool has_port;  /* given explicitly */
    bool has_user;  /* user name or password present */
};

static void parts_free(struct parts *p)
{
    free(p->scheme);
    free(p->host);
    memset(p, 0, sizeof *p);
}

/* Moves a libcurl-allocated string into malloc'd memory, so every string the module
 * hands out is freed with free(). */
static char *take(char *curl_str)
{
    char *s = curl_str ? strdup(curl_str) : NULL;
    curl_free(curl_str);
    return s;
}

/* Reads scheme, host and port from a handle that holds an absolute URL. Hosts with an
 * IPv6 zone id are refused (CP_ERR_BAD_TARGET): the proxy has no use for link-local
 * origins and comparing them would need rules of their own. */
static cp_err read_parts(CURLU *h, struct parts *p)
{
    char *v = NULL;
    CURLUcode rc;
    size_t n;

    memset(p, 0, sizeof *p);
    if ((rc = curl_url_get(h, CURLUPART_SCHEME, &v, 0)) != CURLUE_OK)
        return from_curl(rc);
    if ((p->scheme = take(v)) == NULL)
        goto nomem;
    ascii_lower(p->scheme);

    v = NULL;
    if ((rc = curl_url_get(h, CURLUPART_ZONEID, &v, 0)) != CURLUE_NO_ZONEID) {
        curl_free(v);
        parts_free(p);
        return rc == CURLUE_OUT_OF_MEMORY ? CP_ERR_NOMEM : CP_ERR_BAD_TARGET;
    }

    v = NULL;
    if ((rc = curl_url_get(h, CURLUPART_HOST, &v, 0)) != CURLUE_OK) {
        parts_free(p);
        return from_curl(rc);
    }
    n = strlen(v);
    if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
        p->host = strndup(v + 1, n - 2);
        curl_free(v);
    } else {
        p->host = take(v);
    }
    if (p->host == NULL)
        goto nomem;
    ascii_lower(p->host);
    if (p->host[0] == '\0') {
        parts_free(p);
        return CP_ERR_BAD_TARGET;
    }

    v = NULL;
    rc = curl_url_get(h, CURLUPART_PORT, &v, 0);
    if (rc == CURLUE_OK) {
        char *end;
        long port = strtol(v, &end, 10);
        bool junk = *end != '\0';
        curl_free(v);
        if (junk || port < 1 || port > 65535) {
            parts_free(p);
            return CP_ERR_BAD_TARGET;
        }
        p->port = (int)port;
        p->has_port = true;
    } else if (rc == CURLUE_NO_PORT) {
        p->port = default_port(p->scheme);
    } else {
        parts_free(p);
        return from_curl(rc);
    }

    v = NULL;
    rc = curl_url_get(h, CURLUPART_USER, &v, 0);
    curl_free(v);
    if (rc == CURLUE_OUT_OF_MEMORY)
        goto nomem;
    p->has_user = rc == CURLUE_OK;
    v = NULL;
    rc = curl_url_get(h, CURLUPART_PASSWORD, &v, 0);
    curl_free(v);
    if (rc == CURLUE_OUT_OF_MEMORY)
        goto nomem;
    p->has_user = p->has_user || rc == CURLUE_OK;
    return CP_OK;

nomem:
    parts_free(p);
    return CP_ERR_NOMEM;
}

static bool is_http_scheme(const char *scheme)
{
    return strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
}

/* Parses an absolute http(s) URL into its parts. */
static cp_err parse_abs(const char *s, CURLU **hout, struct parts *p)
{
    CURLU *h = curl_url();
    if (h == NULL)
        return CP_ERR_NOMEM;
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, s, 0);
    cp_err err = rc == CURLUE_OK ? read_parts(h, p) : from_curl(rc);
    if (err == CP_OK && !is_http_scheme(p->scheme)) {
        parts_free(p);
        err = CP_ERR_BAD_TARGET;
    }
    if (err != CP_OK || hout == NULL)
        curl_url_cleanup(h);
    else
        *hout = h;
    return err;
}

void url_origin_free(struct origin *o)
{
    if (o == NULL)
        return;
    free(o->scheme);
    free(o->host);
    free(o->base_path);
    free(o->prefix);
    memset(o, 0, sizeof *o);
}

/* Builds scheme://host[:port] with brackets around IPv6 hosts and the port left out
 * when it is the scheme's default, so equal origins always get equal prefixes. */
static char *authority_prefix(const char *scheme, const char *host, int port,
                              const char *path)
{
    bool v6 = strchr(host, ':') != NULL;
    char portbuf[16] = "";
    if (port != default_port(scheme))
        snprintf(portbuf, sizeof portbuf, ":%d", port);
    char *out = NULL;
    if (asprintf(&out, "%s://%s%s%s%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
                 portbuf, path) < 0)
        return NULL;
    return out;
}

/* Fills *o from a parsed origin URL; the base path is the URL's path less its
 * trailing slashes, so "/api/" and "/api" make the same keys. */
static cp_err fill_origin(CURLU *h, struct parts *p, struct origin *o)
{
    char *path = NULL;
    CURLUcode rc = curl_url_get(h, CURLUPART_PATH, &path, 0);
    if (rc != CURLUE_OK)
        return rc == CURLUE_OUT_OF_MEMORY ? CP_ERR_NOMEM : CP_ERR_BAD_ORIGIN;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    o->base_path = strndup(path, n);
    curl_free(path);
    if (o->base_path == NULL)
        return CP_ERR_NOMEM;
    o->prefix = authority_prefix(p->scheme, p->host, p->port, o->base_path);
    if (o->prefix == NULL)
        return CP_ERR_NOMEM;
    o->scheme = p->scheme;
    o->host = p->host;
    o->port = p->port;
    p->scheme = p->host = NULL;
    return CP_OK;
}

cp_err url_parse_origin(const char *s, struct origin *o)
{
    memset(o, 0, sizeof *o);
    /* A '?' or '#' anywhere means a query or fragment (neither can hide in the
     * authority); libcurl silently drops an empty one, so look at the text. */
    if (s == NULL || scheme_prefix_len(s) == 0 || strpbrk(s, "?#") != NULL)
        return CP_ERR_BAD_ORIGIN;

    CURLU *h = NULL;
    struct parts p;
    cp_err err = parse_abs(s, &h, &p);
    if (err != CP_OK)
        return err == CP_ERR_NOMEM ? err : CP_ERR_BAD_ORIGIN;
    err = p.has_user ? CP_ERR_BAD_ORIGIN : fill_origin(h, &p, o);
    parts_free(&p);
    curl_url_cleanup(h);
    if (err != CP_OK)
        url_origin_free(o);
    return err;
}

/* True when host and port name the same authority; host names compare without
 * regard to case (the hosts come lower-cased from read_parts anyway). */
static bool same_authority(const struct parts *a, const char *host, int port)
{
    return a->port == port && strcasecmp(a->host, host) == 0;
}

/* Does the authority of an absolute-form target name the proxy itself, that is the
 * address the client connected to? (Never the client's Host header: a client naming
 * another host sends a Host header to match.) Parsed as an http URL so libcurl does
 * the splitting of host, brackets and port. */
static cp_err is_self(const struct parts *t, const char *self, bool *yes)
{
    *yes = false;
    if (self == NULL || self[0] == '\0' || strpbrk(self, "/?#@\\"))
        return CP_OK;
    char *u = NULL;
    if (asprintf(&u, "http://%s/", self) < 0)
        return CP_ERR_NOMEM;
    struct parts hp;
    cp_err err = parse_abs(u, NULL, &hp);
    free(u);
    if (err == CP_ERR_NOMEM)
        return err;
    if (err != CP_OK)
        return CP_OK;
    /* A Host header without a port means the scheme's default, which for a target
     * sent to this plain-HTTP proxy is the target's own scheme. */
    int port = hp.has_port ? hp.port : default_port(t->scheme);
    *yes = same_authority(t, hp.host, port);
    parts_free(&hp);
    return CP_OK;
}

/* True if an origin-form target (its first `len` bytes) needs no check by curl's URL
 * parser: plain ASCII, no backslash or percent sign, and no segment of its path that
 * starts with a dot (so no dot segment, encoded or not, that could climb out of the
 * base path). curl accepts every such target as it is; the rest goes through it. */
static bool plain_target(const char *target, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c == '?')
            return true; /* the query: nothing in it is resolved */
        if (c >= 0x80 || c == '\\' || c == '%' || (c == '.' && i > 0 && target[i - 1] == '/'))
            return false;
    }
    return true;
}

/* Length of a segment boundary at target[i] that curl does not treat as one but an
 * origin might: "%2f" (a slash once decoded), and a backslash, plain or "%5c" (a slash
 * to some servers). 0 if there is none there. */
static size_t hidden_separator(const char *target, size_t i, size_t len)
{
    if (target[i] == '\\')
        return 1;
    if (target[i] == '%' && i + 2 < len &&
        ((target[i + 1] == '2' && (target[i + 2] == 'f' || target[i + 2] == 'F')) ||
         (target[i + 1] == '5' && (target[i + 2] == 'c' || target[i + 2] == 'C'))))
        return 3;
    return 0;
}

/* True if the target's path (its first `len` bytes, up to the query) has a dot
 * segment ("." or "..") that curl leaves alone but an origin that decodes before it
 * resolves would act on, and so climb out of the base path: one with a dot written
 * "%2e", one next to a hidden separator ("..%2f", "..\\"), or one with path
 * parameters ("..;x", which servers that strip them before resolving read as ".."). */
static bool hidden_dot_segment(const char *target, size_t len)
{
    size_t i = 0;
    bool hidden_start = false; /* the current segment began after a hidden separator */
    while (i < len && target[i] != '?') {
        i++; /* past the separator */
        size_t dots = 0, chars = 0;
        bool encoded = false, only_dots = true, hidden_end = false;
        while (i < len && target[i] != '/' && target[i] != '?') {
            size_t sep = hidden_separator(target, i, len);
            if (sep > 0) {
                hidden_end = true;
                i += sep - 1; /* the loop's i++ steps past the rest */
                break;
            }
            if (target[i] == ';' && only_dots && chars > 0 && dots <= 2)
                return true;
            chars++;
            if (target[i] == '.') {
                dots++;
                i++;
            } else if (target[i] == '%' && i + 2 < len && target[i + 1] == '2' &&
                       (target[i + 2] == 'e' || target[i + 2] == 'E')) {
                dots++;
                encoded = true;
                i += 3;
            } else {
                only_dots = false;
                i++;
            }
        }
        if (only_dots && chars > 0 && dots <= 2 && (encoded || hidden_start || hidden_end))
            return true;
        hidden_start = hidden_end;
    }
    return false;
}

/* Joins the origin prefix and an origin-form target ("/..."), which must already be
 * free of control characters and spaces. */
static cp_err join_origin_form(const struct origin *o, const char *target, char **out)
{
    size_t tlen = strcspn(target, "#");   /* a fragment is never sent */
    size_t plen = strlen(o->prefix);
    char *url = malloc(plen + tlen + 1);
    if (url == NULL)
        return CP_ERR_NOMEM;
    memcpy(url, o->prefix, plen);
    memcpy(url + plen, target, tlen);
    url[plen + tlen] = '\0';
    if (plain_target(target, tlen)) {
        *out = url;
        return CP_OK;
    }
    if (o->base_path[0] != '\0' && hidden_dot_segment(target, tlen)) {
        free(url);
        return CP_ERR_BAD_TARGET;
    }

    /* libcurl must accept the result, or the fetch would fail later on; and the path,
     * once dot segments are resolved, must stay under the base path. */
    CURLU *h = curl_url();
    if (h == NULL) {
        free(url);
        return CP_ERR_NOMEM;
    }
    char *path = NULL;
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, url, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(h, CURLUPART_PATH, &path, 0);
    cp_err err = rc == CURLUE_OK ? CP_OK : from_curl(rc);
    if (err == CP_OK && o->base_path[0] != '\0') {
        size_t bl = strlen(o->base_path);
        if (strncmp(path, o->base_path, bl) != 0 || (path[bl] != '\0' && path[bl] != '/'))
            err = CP_ERR_BAD_TARGET;
    }
    curl_free(path);
    curl_url_cleanup(h);
    if (err != CP_OK) {
        free(url);
        return err;
    }
    *out = url;
    return CP_OK;
}

cp_err url_for_target(const struct origin *o, const char *target, const char *self,
                      char **out)
{
    *out = NULL;
    if (target == NULL || target[0] == '\0')
        return CP_ERR_BAD_TARGET;
    for (const unsigned char *c = (const unsigned char *)target; *c; c++)
        if (*c <= 0x20 || *c == 0x7f)
            return CP_ERR_BAD_TARGET;

    if (target[0] == '/')
        return join_origin_form(o, target, out);

    /* Absolute-form: only for the proxy itself or for the origin, and then it is
     * the same as its path and query in origin-form. */
    size_t skip = scheme_prefix_len(target);
    if (skip == 0)
        return CP_ERR_BAD_TARGET;
    struct parts t;
    cp_err err = parse_abs(target, NULL, &t);
    if (err != CP_OK)
        return err;
    bool ok = !t.has_user;
    if (ok && !same_authority(&t, o->host, o->port)) {
        err = is_self(&t, self, &ok);
        if (err != CP_OK) {
            parts_free(&t);
            return err;
        }
    }
    parts_free(&t);
    if (!ok)
        return CP_ERR_BAD_TARGET;

    /* libcurl accepted the authority and it holds no user info, so it ends at the
     * first '/', '?' or '#'; what follows is taken as sent. */
    const char *rest = target + skip + strcspn(target + skip, "/?#");
    if (rest[0] == '/')
        return join_origin_form(o, rest, out);
    char *slashed = NULL;
    if (asprintf(&slashed, "/%s", rest) < 0)
        return CP_ERR_NOMEM;
    err = join_origin_form(o, slashed, out);
    free(slashed);
    return err;
}

cp_err url_target_authority(const char *target, char **out)
{
    *out = NULL;
    size_t skip = target[0] == '/' ? 0 : scheme_prefix_len(target);
    if (skip == 0)
        return CP_OK;
    /* Accepted by url_for_target: no user info, so the authority ends at the first
     * '/', '?' or '#'. */
    size_t len = strcspn(target + skip, "/?#");
    if ((*out = strndup(target + skip, len)) == NULL)
        return CP_ERR_NOMEM;
    return CP_OK;
}

cp_err url_cache_key(const char *url, const char *host, char **out)
{
    if (host == NULL)
        host = "";
    size_t ul = strlen(url), hl = strlen(host);
    char *k = malloc(ul + 1 + hl + 1);
    if (k == NULL) {
        *out = NULL;
        return CP_ERR_NOMEM;
    }
    memcpy(k, url, ul);
    k[ul] = ' ';
    memcpy(k + ul + 1, host, hl + 1);
    ascii_lower(k + ul + 1);
    *out = k;
    return CP_OK;
}

cp_err url_of_key(const char *key, char **out)
{
    *out = NULL;
    const char *sp = strrchr(key, ' ');
    if (sp == NULL || sp == key)
        return CP_ERR_BAD_TARGET;
    if ((*out = strndup(key, (size_t)(sp - key))) == NULL)
        return CP_ERR_NOMEM;
    return CP_OK;
}

cp_err url_resolve(const char *base, const char *location, char **out)
{
    *out = NULL;
    if (base == NULL || location == NULL || location[0] == '\0')
        return CP_ERR_BAD_TARGET;
    CURLU *h = curl_url();
    if (h == NULL)
        return CP_ERR_NOMEM;
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, base, 0);
    if (rc == CURLUE_OK) {
        if (location[0] == '#')
            /* Only the fragment changes; libcurl would resolve it like a path. */
            rc = curl_url_set(h, CURLUPART_FRAGMENT, location + 1, 0);
        else
            /* The flags libcurl uses when it follows a redirect itself: spaces and
             * non-ASCII bytes that servers put in Location get percent-encoded. */
            rc = curl_url_set(h, CURLUPART_URL, location, CURLU_URLENCODE | CURLU_ALLOW_SPACE);
    }
    char *url = NULL;
    if (rc == CURLUE_OK)
        rc = curl_url_get(h, CURLUPART_URL, &url, 0);
    curl_url_cleanup(h);
    if (rc != CURLUE_OK)
        return from_curl(rc);
    *out = take(url);
    return *out ? CP_OK : CP_ERR_NOMEM;
}

bool url_on_origin(const struct origin *o, const char *url)
{
    if (o == NULL || o->host == NULL || url == NULL || scheme_prefix_len(url) == 0)
        return false;
    struct parts p;
    if (parse_abs(url, NULL, &p) != CP_OK)
        return false;
    /* User info would make curl send credentials the client never gave (and the
     * answer to them would be stored as if it were public). */
    bool on = !p.has_user && strcmp(p.host, o->host) == 0 &&
              ((strcmp(p.scheme, o->scheme) == 0 && p.port == o->port) ||
               (strcmp(o->scheme, "http") == 0 && o->port == 80 &&
                strcmp(p.scheme, "https") == 0 && p.port == 443));
    parts_free(&p);
    return on;
}
