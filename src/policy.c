/* Caching decisions of a shared cache (see policy.h): what may be stored, how long it
 * stays fresh and how old it is, following RFC 9111 sections 3 and 4.2. */
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

bool policy_method_cacheable(const char *method)
{
    /* Methods are case-sensitive (RFC 9110 section 9.1): "get" is not GET. */
    return method != NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

static bool status_storable(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 308: case 404: case 410:
        return true;
    default:
        return false;
    }
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

bool policy_storable(int status, const struct hdrs *request, const struct hdrs *response,
                     size_t body_len, time_t response_time, const struct policy_opts *opts)
{
    if (!status_storable(status) || body_len > opts->max_object_size)
        return false;

    struct cache_control req, res;
    http_cache_control(request, &req);
    http_cache_control(response, &res);
    if (req.no_store || res.no_store || res.private_)
        return false;

    /* A response that sets a cookie, or answers a request with credentials, is
     * someone's own unless the origin says it is for everyone (RFC 9111 3.5). */
    bool shared_ok = res.public_ || res.s_maxage >= 0;
    if (hdrs_get(response, "Set-Cookie") != NULL && !shared_ok)
        return false;
    if (hdrs_get(request, "Authorization") != NULL && !shared_ok && !res.must_revalidate)
        return false;

    return policy_freshness_lifetime(status, response, response_time, opts) > 0;
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

    if (opts->default_ttl > 0)
        return opts->default_ttl;

    const char *lm = hdrs_get(response, "Last-Modified");
    time_t modified;
    if (status_heuristic(status) && lm != NULL && http_parse_date(lm, &modified)) {
        int64_t since = (int64_t)date_value(response, response_time) - (int64_t)modified;
        if (since <= 0)
            return 0;
        int64_t life = since / 10;
        return life > HEURISTIC_MAX ? HEURISTIC_MAX : life;
    }
    return 0;
}

int64_t policy_initial_age(const struct hdrs *response, time_t request_time,
                           time_t response_time)
{
    int64_t age_value = 0;
    const char *age = hdrs_get(response, "Age");
    /* An unparsable Age is ignored; a huge one saturates like any delta-seconds. */
    if (age != NULL && http_parse_uint(age, &age_value) && age_value > INT32_MAX)
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
