/* The origin's URL and the URLs built from it: parsing --origin, appending a request
 * target to the origin's base path, the primary cache key (that URL and the Host), and
 * checking that a URL (a request target, a redirect) stays on the origin. Uses libcurl's
 * URL API. */
#ifndef CP_URL_H
#define CP_URL_H

#include <stdbool.h>

#include "error.h"

struct origin {
    char *scheme;    /* "http" or "https" */
    char *host;      /* lower-case host name or IP literal (IPv6 without brackets) */
    int port;        /* explicit or the scheme's default */
    char *base_path; /* "" or "/api" (never a trailing slash) */
    char *prefix;    /* scheme://host[:port]base_path, normalised; keys start with it */
};

/* Parses `s` (an absolute http:// or https:// URL with a host, optionally a path;
 * no query, fragment or credentials) into *o. Returns CP_ERR_BAD_ORIGIN for
 * anything else, CP_ERR_NOMEM on allocation failure; *o is then zeroed. */
cp_err url_parse_origin(const char *s, struct origin *o);
/* Frees what url_parse_origin allocated. */
void url_origin_free(struct origin *o);

/* Turns the raw request target of a client request into the origin URL to fetch.
 * `target` is origin-form ("/path?query"), or absolute-form ("http://host/path") which
 * is accepted only when its authority is `self` ("host:port" of the address the client
 * connected to, i.e. the proxy itself; may be NULL) or the origin's. The path and query are kept byte for byte, appended to the base path.
 * Sets *out (caller frees). Returns CP_ERR_BAD_TARGET for any other target
 * (another host, "*", authority-form, control characters), CP_ERR_NOMEM. */
cp_err url_for_target(const struct origin *o, const char *target, const char *self,
                      char **out);

/* The authority ("host[:port]", as sent) of an absolute-form request target that
 * url_for_target accepted, which stands for the request's Host (RFC 9112 3.2.2). Sets
 * *out (caller frees), NULL for an origin-form target. Returns CP_ERR_NOMEM, else
 * CP_OK. */
cp_err url_target_authority(const char *target, char **out);

/* Builds the primary cache key of a request: its origin URL (from url_for_target), a
 * space, and the value of its Host field in lower case ("" for none). The Host is in
 * the key because it reaches the origin (as X-Forwarded-Host), so a response made
 * for one Host must not answer a request with another. `host` must have passed
 * http_request_fields_ok (no spaces), so the key splits at its last space. Sets *out
 * (caller frees). Returns CP_ERR_NOMEM, else CP_OK. */
cp_err url_cache_key(const char *url, const char *host, char **out);

/* The origin URL in a key made by url_cache_key. Sets *out (caller frees). Returns
 * CP_ERR_BAD_TARGET for a string that is not such a key, CP_ERR_NOMEM, else CP_OK. */
cp_err url_of_key(const char *key, char **out);

/* Resolves `location` (absolute or relative) against `base`. Sets *out (caller frees).
 * Returns CP_ERR_BAD_TARGET if it cannot be parsed, CP_ERR_NOMEM. */
cp_err url_resolve(const char *base, const char *location, char **out);

/* True if `url` is on the origin's own host: same host name and either the same
 * scheme and port, or an upgrade from http to https on the default https port; and
 * without user info (credentials). */
bool url_on_origin(const struct origin *o, const char *url);

#endif
