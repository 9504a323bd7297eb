/* Caching decisions of a shared cache (see policy.h): what may be stored, how long it
 * stays fresh, how old it is and what a stored response may be used for, following
 * RFC 9111 sections 3 and 4 and RFC 5861 (stale-while-revalidate, stale-if-error). */
#include "policy.h"

#include <string.h>

#include "http.h"

/* One day: the cap on a heuristic lifetime, the point where RFC 9111 4.2.2 would
 * have us add a warning we no longer send. */
#define HEURISTIC_MAX 86400

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    if (b == INT64_MIN)
        return a >= 0 ? INT64_MAX : a - b;
    return sat_add(a, -b);
}

bool policy_method_cacheable(const char *method)
{
    /* Methods are case-sensitive (RFC 9110 section 9.1): "get" is not GET. */
    return method != NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

/* The statuses the cache stores on --default-ttl alone, with no freshness of their own. */
static bool status_default_ttl(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 308: case 404: case 410:
        return true;
    default:
        return false;
    }
}

/* Status codes whose semantics RFC 9110 defines: what must-understand asks about. */
static bool status_understood(int status)
{
    return (status >= 200 && status <= 206) || (status >= 300 && status <= 308 && status != 306) ||
           (status >= 400 && status <= 417) || (status >= 421 && status <= 422) ||
           status == 426 || (status >= 500 && status <= 505);
}

/* Heuristically cacheable by default (RFC 9110 section 15.1). */
static bool status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* The response's Date, or `fallback` when it is missing or not a date. */
static time_t date_value(const struct hdrs *response, time_t fallback)
{
    time_t t;
    const char *d = hdrs_get(response, "Date");
    if (d != NULL && http_parse_date(d, &t))
        return t;
    return fallback;
}

/* True if `stored` can be revalidated (RFC 9111 section 4.3.1): a non-empty ETag, or
 * a Last-Modified that is a date (anything else would make If-Modified-Since noise). */
static bool has_validator(const struct hdrs *stored)
{
    const char *etag = hdrs_get(stored, "ETag");
    if (etag != NULL && etag[0] != '\0')
        return true;
    const char *lm = hdrs_get(stored, "Last-Modified");
    time_t t;
    return lm != NULL && http_parse_date(lm, &t);
}

bool policy_storable(int status, const struct hdrs *request, const struct hdrs *response,
                     size_t body_len, time_t response_time, const struct policy_opts *opts)
{
    /* Final responses only; partial and 304 responses are not stored on their own. */
    if (status < 200 || status > 599 || status == 206 || status == 304 ||
        body_len > opts->max_object_size)
        return false;

    struct cache_control req, res;
    http_cache_control(request, &req);
    http_cache_control(response, &res);
    /* must-understand replaces no-store for caches that know the status (5.2.2.3). */
    if (res.must_understand ? !status_understood(status) : res.no_store)
        return false;
    if (req.no_store || res.private_)
        return false;
    /* Any final status may be stored with explicit freshness (RFC 9111 section 3);
     * without it, only those that heuristics or --default-ttl may make fresh. */
    bool explicit_fresh = res.max_age >= 0 || res.s_maxage >= 0 || res.public_ ||
                          hdrs_get(response, "Expires") != NULL;
    if (!explicit_fresh && !status_heuristic(status) && !status_default_ttl(status))
        return false;

    /* A response that sets a cookie, or answers a request with credentials, is
     * someone's own unless the origin says it is for everyone (RFC 9111 3.5). */
    bool shared_ok = res.public_ || res.s_maxage >= 0;
    if (hdrs_get(response, "Set-Cookie") != NULL && !shared_ok)
        return false;
    if (hdrs_get(request, "Authorization") != NULL && !shared_ok && !res.must_revalidate)
        return false;

    /* Stale at once (no-cache, max-age=0, Expires: 0) is still worth keeping when a
     * conditional request can turn the next miss into a 304, or when the origin
     * allows it to be served stale for a while (RFC 5861). */
    return policy_freshness_lifetime(status, response, response_time, opts) > 0 ||
           has_validator(response) || res.stale_if_error > 0 || res.stale_while_revalidate > 0;
}

int64_t policy_freshness_lifetime(int status, const struct hdrs *response,
                                  time_t response_time, const struct policy_opts *opts)
{
    struct cache_control cc;
    http_cache_control(response, &cc);
    /* Without revalidation a no-cache response can only be used fresh for 0 seconds. */
    if (cc.no_cache)
        return 0;
    if (cc.s_maxage >= 0)
        return cc.s_maxage;
    if (cc.max_age >= 0)
        return cc.max_age;

    const char *expires = hdrs_get(response, "Expires");
    if (expires != NULL) {
        time_t exp;
        /* An invalid Expires, "0" above all, means already expired (RFC 9111 5.3). */
        if (!http_parse_date(expires, &exp))
            return 0;
        int64_t life = (int64_t)exp - (int64_t)date_value(response, response_time);
        return life > 0 ? life : 0;
    }

    if (opts->default_ttl > 0 && status_default_ttl(status))
        return opts->default_ttl;

    /* Heuristics: for statuses cacheable by default, or any marked public (4.2.2). */
    const char *lm = hdrs_get(response, "Last-Modified");
    time_t modified;
    if ((status_heuristic(status) || cc.public_) && lm != NULL &&
        http_parse_date(lm, &modified)) {
        int64_t since = (int64_t)date_value(response, response_time) - (int64_t)modified;
        if (since <= 0)
            return 0;
        int64_t life = since / 10;
        return life > HEURISTIC_MAX ? HEURISTIC_MAX : life;
    }
    return 0;
}

/* The request's no-cache. Pragma is the HTTP/1.0 spelling, and only counts when the
 * request has no Cache-Control field at all (RFC 9111 section 5.4). */
static bool request_no_cache(const struct cache_control *req, const struct hdrs *request)
{
    if (req->no_cache)
        return true;
    return hdrs_get(request, "Cache-Control") == NULL &&
           hdrs_has_token(request, "Pragma", "no-cache");
}

/* The origin's word against any stale use. s-maxage counts as proxy-revalidate for a
 * shared cache (RFC 9111 section 5.2.2.10). */
static bool stale_forbidden(const struct cache_control *res)
{
    return res->must_revalidate || res->proxy_revalidate || res->s_maxage >= 0;
}

/* True if `staleness` seconds fall in a window of `window` seconds (-1 = none). A
 * response is stale from age == lifetime on, so staleness 0 is in every window. */
static bool within(int64_t staleness, int64_t window)
{
    return window >= 0 && staleness <= window;
}

enum reuse policy_reuse(const struct hdrs *stored, int64_t lifetime, int64_t age,
                        const struct hdrs *request)
{
    struct cache_control req, res;
    http_cache_control(request, &req);
    http_cache_control(stored, &res);
    enum reuse fallback = has_validator(stored) ? REUSE_REVALIDATE : REUSE_NONE;

    /* A qualified no-cache is treated as a plain one: serving the body while holding
     * back the named fields is not worth its subtlety. */
    if (request_no_cache(&req, request) || res.no_cache)
        return fallback;

    /* The request's max-age bounds the age of whatever is served, stale or not (the
     * client is unwilling to accept anything older, RFC 7234 5.2.1.1). max-age=0 is
     * how clients ask for end-to-end revalidation (a browser's reload), so even a
     * response stored this very second does not satisfy it. */
    if (req.max_age == 0 || (req.max_age > 0 && age > req.max_age))
        return fallback;

    if (lifetime > age) {
        /* min-fresh only judges fresh responses; one that fails it is not stale, so
         * neither max-stale nor stale-while-revalidate can rescue it. */
        if (req.min_fresh >= 0 && sat_sub(lifetime, age) < req.min_fresh)
            return fallback;
        return REUSE_FRESH;
    }

    if (stale_forbidden(&res))
        return fallback;
    int64_t staleness = sat_sub(age, lifetime);
    /* Where both apply, serving and refreshing beats serving alone: the entry the
     * client accepts is the same, and the next request finds it renewed. */
    if (within(staleness, res.stale_while_revalidate))
        return REUSE_STALE_REFRESH;
    if (req.max_stale_any || within(staleness, req.max_stale))
        return REUSE_STALE;
    return fallback;
}

bool policy_stale_on_error(const struct hdrs *stored, int64_t lifetime, int64_t age,
                           const struct hdrs *request, int64_t serve_stale_on_error)
{
    struct cache_control req, res;
    http_cache_control(request, &req);
    http_cache_control(stored, &res);

    /* no-cache forbids any use without a successful validation, and a failed one is
     * not that (RFC 9111 section 4.2.4 names it with must-revalidate). */
    if (res.no_cache)
        return false;
    /* The origin's failure does not make a fresh response any less fresh. */
    if (lifetime > age)
        return true;
    if (stale_forbidden(&res))
        return false;

    int64_t staleness = sat_sub(age, lifetime);
    if (within(staleness, res.stale_if_error) || within(staleness, req.stale_if_error))
        return true;
    if (req.max_stale_any || within(staleness, req.max_stale))
        return true;
    return serve_stale_on_error > 0 && staleness <= serve_stale_on_error;
}

bool policy_request_no_store(const struct hdrs *request)
{
    struct cache_control cc;
    http_cache_control(request, &cc);
    return cc.no_store;
}

bool policy_only_if_cached(const struct hdrs *request)
{
    struct cache_control cc;
    http_cache_control(request, &cc);
    return cc.only_if_cached;
}

int64_t policy_initial_age(const struct hdrs *response, time_t request_time,
                           time_t response_time)
{
    int64_t age_value = 0;
    const char *age = hdrs_get(response, "Age");
    /* An Age that is not one plain number (a list, a second field, a sign, a
     * fraction) cannot be trusted: the response is taken as old as can be, i.e.
     * stale. A huge one saturates like any delta-seconds. */
    if (age != NULL && (hdrs_count(response, "Age") != 1 || !http_parse_uint(age, &age_value)))
        age_value = INT32_MAX;
    if (age_value > INT32_MAX)
        age_value = INT32_MAX;

    int64_t apparent_age = (int64_t)response_time - (int64_t)date_value(response, response_time);
    if (apparent_age < 0)
        apparent_age = 0;
    /* A response cannot arrive before its request; a clock step backwards must not
     * make the age smaller than what the origin reported. */
    int64_t response_delay = (int64_t)response_time - (int64_t)request_time;
    if (response_delay < 0)
        response_delay = 0;
    int64_t corrected_age_value = sat_add(age_value, response_delay);
    return apparent_age > corrected_age_value ? apparent_age : corrected_age_value;
}

int64_t policy_current_age(int64_t initial_age, time_t response_time, time_t now)
{
    int64_t resident_time = (int64_t)now - (int64_t)response_time;
    /* The clock stepping back must not make a stored response younger. */
    if (resident_time < 0)
        resident_time = 0;
    return sat_add(initial_age, resident_time);
}
