/* Header rewriting between client and origin (see forward.h): what a reverse proxy
 * removes (hop-by-hop fields, framing), and what it adds about itself (Via,
 * X-Forwarded-*, X-Cache, Age). */
#include "forward.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VIA_SELF "1.1 caching-proxy"

const char *forward_verdict_name(enum cache_verdict v)
{
    switch (v) {
    case VERDICT_HIT:
        return "HIT";
    case VERDICT_STALE:
        return "STALE";
    case VERDICT_REVALIDATED:
        return "REVALIDATED";
    case VERDICT_BYPASS:
        return "BYPASS";
    case VERDICT_MISS:
    default:
        return "MISS";
    }
}

/* Appends `member` to the comma list of every field `name` (joined into one field),
 * or creates the field. */
static cp_err append_member(struct hdrs *h, const char *name, const char *member)
{
    char *old = NULL;
    if (hdrs_join(h, name, &old) != CP_OK)
        return CP_ERR_NOMEM;
    if (old == NULL || old[0] == '\0') {
        free(old);
        return hdrs_set(h, name, member);
    }
    size_t len = strlen(old) + 2 + strlen(member) + 1;
    char *joined = malloc(len);
    if (joined == NULL) {
        free(old);
        return CP_ERR_NOMEM;
    }
    snprintf(joined, len, "%s, %s", old, member);
    free(old);
    cp_err err = hdrs_set(h, name, joined);
    free(joined);
    return err;
}

cp_err forward_request_headers(const struct hdrs *in, const char *client_ip,
                               struct hdrs *out)
{
    cp_err err = hdrs_copy(out, in);
    if (err != CP_OK)
        return err;
    hdrs_strip_hop_by_hop(out);

    /* The client's Host names us; the origin gets its own from the fetcher, and
     * learns ours from X-Forwarded-Host, which is always the Host of the cache key:
     * read before hop-by-hop stripping (a "Connection: Host" must not let one the
     * client made up through), and none at all for a request without a Host. */
    const char *host = hdrs_get(in, "Host");
    hdrs_remove(out, "Host");
    hdrs_remove(out, "X-Forwarded-Host");
    /* RFC 7239's Forwarded says the same (host=, proto=) to origins that read it: one
     * the client made up would be outside the cache key too. */
    hdrs_remove(out, "Forwarded");
    if (host != NULL && host[0] != '\0' &&
        (err = hdrs_set(out, "X-Forwarded-Host", host)) != CP_OK)
        goto fail;
    if ((err = append_member(out, "Via", VIA_SELF)) != CP_OK)
        goto fail;
    if (client_ip != NULL && client_ip[0] != '\0' &&
        (err = append_member(out, "X-Forwarded-For", client_ip)) != CP_OK)
        goto fail;
    if ((err = hdrs_set(out, "X-Forwarded-Proto", "http")) != CP_OK)
        goto fail;
    return CP_OK;

fail:
    hdrs_free(out);
    return err;
}

void forward_cache_status(const struct cache_outcome *o, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "caching-proxy");
#define PUT(...)                                                                     \
    do {                                                                             \
        if (n < len)                                                                 \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                    \
    } while (0)
    if (o->fwd == NULL)
        PUT("; hit");
    else
        PUT("; fwd=%s", o->fwd);
    if (o->fwd_status > 0)
        PUT("; fwd-status=%d", o->fwd_status);
    if (o->has_ttl)
        PUT("; ttl=%" PRId64, o->ttl);
    if (o->stored)
        PUT("; stored");
    if (o->collapsed)
        PUT("; collapsed");
    if (o->detail != NULL)
        PUT("; detail=%s", o->detail);
#undef PUT
}

/* Emits `name` once, with the values of every field so named in `in` and then
 * `member`, joined with ", " (RFC 9110 section 5.3). On the stack unless it is long. */
static cp_err emit_appended(const struct hdrs *in, const char *name, const char *member,
                            forward_emit_fn emit, void *arg)
{
    size_t need = strlen(member) + 1;
    for (size_t i = 0; i < in->n; i++)
        if (hdrs_name_eq(in->v[i].name, name) && in->v[i].value[0] != '\0')
            need += strlen(in->v[i].value) + 2;
    char stack[512];
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (buf == NULL)
        return CP_ERR_NOMEM;
    char *at = buf;
    for (size_t i = 0; i < in->n; i++) {
        if (!hdrs_name_eq(in->v[i].name, name) || in->v[i].value[0] == '\0')
            continue;
        size_t n = strlen(in->v[i].value);
        memcpy(at, in->v[i].value, n);
        memcpy(at + n, ", ", 2);
        at += n + 2;
    }
    strcpy(at, member);
    cp_err err = emit(arg, name, buf);
    if (buf != stack)
        free(buf);
    return err;
}

/* Fields of a response that we set ourselves, or that do not go further. */
static bool replaced_in_response(const struct hdrs *in, const char *name)
{
    /* The front end frames the body it sends itself, and X-Cache / Age describe this
     * cache, not one further up; Via and Cache-Status gain our member. */
    static const char *const ours[] = {"Content-Length", "X-Cache", "Age", "Via",
                                       "Cache-Status"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (hdrs_name_eq(name, ours[i]))
            return true;
    return hdrs_hop_by_hop_in(in, name);
}

cp_err forward_response_emit(const struct hdrs *in, const struct cache_outcome *o,
                             forward_emit_fn emit, void *arg)
{
    cp_err err;
    for (size_t i = 0; i < in->n; i++) {
        if (replaced_in_response(in, in->v[i].name))
            continue;
        if ((err = emit(arg, in->v[i].name, in->v[i].value)) != CP_OK)
            return err;
    }
    if ((err = emit_appended(in, "Via", VIA_SELF, emit, arg)) != CP_OK)
        return err;
    char status[160];
    forward_cache_status(o, status, sizeof status);
    if ((err = emit_appended(in, "Cache-Status", status, emit, arg)) != CP_OK)
        return err;
    if ((err = emit(arg, "X-Cache", forward_verdict_name(o->verdict))) != CP_OK)
        return err;
    if (o->age >= 0) {
        /* No cache may send more than 2^31 seconds, whatever it received or added
         * (RFC 9111 section 1.2.2): past that an Age means "infinitely old". */
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRId64, o->age < FORWARD_AGE_MAX ? o->age : FORWARD_AGE_MAX);
        if ((err = emit(arg, "Age", buf)) != CP_OK)
            return err;
    }
    return CP_OK;
}

bool forward_field_storable(const struct hdrs *response, const char *name)
{
    return !hdrs_hop_by_hop_in(response, name);
}
