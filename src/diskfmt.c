/* Encoding and decoding of the cache's records (see diskfmt.h), with explicit
 * little-endian byte writes so that the format does not depend on the compiler's
 * struct layout. The decoder trusts nothing it reads: every length is checked
 * against what is left of the buffer before it is used. */
#include "diskfmt.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: diskfmt_key_hash cannot fail */
#include <xxhash.h>

/* Fixed header, 48 bytes:
 *   0  magic "CPXE"        4  u32 version        8  u32 kind (0 entry, 1 removal,
 *                                                   2 removal of all variants)
 *  12  u32 meta_len       16  u64 body_len      24  u64 XXH64 of the metadata
 *  32  u64 XXH64 of body  40  u64 XXH64 of bytes 0..39, so a damaged length is caught
 *                             before it is believed.
 * Entry metadata: u32 key length + key, u32 vary key length + vary key, u32 status,
 *   i64 request_time, i64 response_time, i64 initial_age, i64 lifetime, u64 generation,
 *   u32 field count, then per field u32 name length + name, u32 value length + value.
 * Removal metadata (both kinds): key and vary key as above, u64 generation; body_len
 *   is 0. A removal of all variants has an empty vary key.
 * Strings carry no NUL terminator and may not contain NUL. */
#define FIXED_LEN DISKFMT_HEAD_LEN
#define OFF_HEADER_SUM 40u
#define ENTRY_FIXED_META (4 + 4 * 8) /* status and the four times, before the generation */
static const unsigned char magic[4] = {'C', 'P', 'X', 'E'};

/* ---- writing ------------------------------------------------------------------ */

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_str(unsigned char *p, const char *s, size_t len)
{
    p = put_u32(p, (uint32_t)len);
    if (len > 0)
        memcpy(p, s, len);
    return p + len;
}

/* Adds a length-prefixed string's size to *total; false if it does not fit. */
static bool add_str_len(size_t *total, size_t len)
{
    if (len > UINT32_MAX || *total > SIZE_MAX - 4 - len)
        return false;
    *total += 4 + len;
    return true;
}

/* Fills the fixed header of `buf`, whose metadata (meta bytes) follows it. */
static void put_head(unsigned char *buf, enum diskfmt_kind kind, size_t meta,
                     const unsigned char *body, size_t body_len)
{
    unsigned char *p = buf;
    memcpy(p, magic, sizeof magic);
    p = put_u32(p + 4, DISKFMT_VERSION);
    p = put_u32(p, (uint32_t)kind);
    p = put_u32(p, (uint32_t)meta);
    p = put_u64(p, (uint64_t)body_len);
    p = put_u64(p, XXH64(buf + FIXED_LEN, meta, 0));
    p = put_u64(p, XXH64(body_len > 0 ? body : (const unsigned char *)"", body_len, 0));
    put_u64(p, XXH64(buf, OFF_HEADER_SUM, 0));
}

cp_err diskfmt_encode_head(const struct entry *e, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    const char *key = e->key != NULL ? e->key : "";
    const char *vary = e->vary_key != NULL ? e->vary_key : "";
    size_t key_len = strlen(key), vary_len = strlen(vary);

    if (e->status < 0 || e->headers.n > UINT32_MAX)
        return CP_ERR_TOO_LARGE;
    size_t meta = 0;
    if (!add_str_len(&meta, key_len) || !add_str_len(&meta, vary_len))
        return CP_ERR_TOO_LARGE;
    meta += ENTRY_FIXED_META + 8 + 4; /* and generation, field count */
    for (size_t i = 0; i < e->headers.n; i++) {
        if (!add_str_len(&meta, strlen(e->headers.v[i].name)) ||
            !add_str_len(&meta, strlen(e->headers.v[i].value)))
            return CP_ERR_TOO_LARGE;
    }
    if (meta > UINT32_MAX)
        return CP_ERR_TOO_LARGE;

    unsigned char *buf = malloc(FIXED_LEN + meta);
    if (buf == NULL)
        return CP_ERR_NOMEM;

    unsigned char *p = buf + FIXED_LEN;
    p = put_str(p, key, key_len);
    p = put_str(p, vary, vary_len);
    p = put_u32(p, (uint32_t)e->status);
    p = put_u64(p, (uint64_t)(int64_t)e->request_time);
    p = put_u64(p, (uint64_t)(int64_t)e->response_time);
    p = put_u64(p, (uint64_t)e->initial_age);
    p = put_u64(p, (uint64_t)e->lifetime);
    p = put_u64(p, e->generation);
    p = put_u32(p, (uint32_t)e->headers.n);
    for (size_t i = 0; i < e->headers.n; i++) {
        const struct hdr *h = &e->headers.v[i];
        p = put_str(p, h->name, strlen(h->name));
        p = put_str(p, h->value, strlen(h->value));
    }
    put_head(buf, DISKFMT_ENTRY, meta, e->body, e->body_len);

    *out = buf;
    *len = FIXED_LEN + meta;
    return CP_OK;
}

static cp_err encode_removal(enum diskfmt_kind kind, const char *key, const char *vary_key,
                             uint64_t generation, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (key == NULL)
        key = "";
    if (vary_key == NULL)
        vary_key = "";
    size_t key_len = strlen(key), vary_len = strlen(vary_key);
    size_t meta = 0;
    if (!add_str_len(&meta, key_len) || !add_str_len(&meta, vary_len) || meta > UINT32_MAX - 8)
        return CP_ERR_TOO_LARGE;
    meta += 8;
    unsigned char *buf = malloc(FIXED_LEN + meta);
    if (buf == NULL)
        return CP_ERR_NOMEM;
    unsigned char *p = buf + FIXED_LEN;
    p = put_str(p, key, key_len);
    p = put_str(p, vary_key, vary_len);
    put_u64(p, generation);
    put_head(buf, kind, meta, NULL, 0);
    *out = buf;
    *len = FIXED_LEN + meta;
    return CP_OK;
}

cp_err diskfmt_encode_removal(const char *key, const char *vary_key, uint64_t generation,
                              unsigned char **out, size_t *len)
{
    return encode_removal(DISKFMT_REMOVAL, key, vary_key, generation, out, len);
}

cp_err diskfmt_encode_removal_all(const char *key, uint64_t generation, unsigned char **out,
                                  size_t *len)
{
    return encode_removal(DISKFMT_REMOVAL_ALL, key, "", generation, out, len);
}

/* ---- reading ------------------------------------------------------------------ */

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A bounded reader over the metadata: once `ok` is false every read fails, so the
 * parser can check once at the end instead of after each field. */
struct reader {
    const unsigned char *p;
    size_t left;
    bool ok;
};

static uint32_t rd_u32(struct reader *r)
{
    if (!r->ok || r->left < 4) {
        r->ok = false;
        return 0;
    }
    uint32_t v = get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t rd_u64(struct reader *r)
{
    if (!r->ok || r->left < 8) {
        r->ok = false;
        return 0;
    }
    uint64_t v = get_u64(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

static void rd_skip(struct reader *r, size_t n)
{
    if (!r->ok || r->left < n) {
        r->ok = false;
        return;
    }
    r->p += n;
    r->left -= n;
}

/* Points *s at a length-prefixed string inside the buffer (not terminated). */
static void rd_str(struct reader *r, const char **s, size_t *len)
{
    size_t n = rd_u32(r);
    *s = NULL;
    *len = 0;
    if (!r->ok)
        return;
    /* An embedded NUL would silently shorten the string once it is a C string. */
    if (n > r->left || memchr(r->p, '\0', n) != NULL) {
        r->ok = false;
        return;
    }
    *s = (const char *)r->p;
    *len = n;
    r->p += n;
    r->left -= n;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* time_t may be narrower than the format's 64 bits. */
static bool fits_time_t(int64_t v)
{
    time_t t = (time_t)v;
    return (int64_t)t == v;
}

cp_err diskfmt_parse_head(const unsigned char *buf, size_t len, struct diskfmt_head *out)
{
    if (len < 8 || memcmp(buf, magic, sizeof magic) != 0)
        return CP_ERR_CORRUPT;
    /* The version comes before anything else is trusted: another version may not
     * even have the same fixed header. */
    if (get_u32(buf + 4) != DISKFMT_VERSION)
        return CP_ERR_VERSION;
    if (len < FIXED_LEN || XXH64(buf, OFF_HEADER_SUM, 0) != get_u64(buf + OFF_HEADER_SUM))
        return CP_ERR_CORRUPT;
    uint32_t kind = get_u32(buf + 8);
    out->meta_len = get_u32(buf + 12);
    out->body_len = get_u64(buf + 16);
    out->meta_sum = get_u64(buf + 24);
    out->body_sum = get_u64(buf + 32);
    if (kind != DISKFMT_ENTRY && kind != DISKFMT_REMOVAL && kind != DISKFMT_REMOVAL_ALL)
        return CP_ERR_CORRUPT;
    out->kind = (enum diskfmt_kind)kind;
    if (out->kind != DISKFMT_ENTRY && out->body_len != 0)
        return CP_ERR_CORRUPT;
    /* The record length must be representable, and in memory too. */
    if (out->body_len > SIZE_MAX - FIXED_LEN - out->meta_len)
        return CP_ERR_CORRUPT;
    out->record_len = FIXED_LEN + (uint64_t)out->meta_len + out->body_len;
    return CP_OK;
}

cp_err diskfmt_parse_meta(const struct diskfmt_head *h, const unsigned char *meta,
                          struct diskfmt_ref *out)
{
    if (XXH64(meta, h->meta_len, 0) != h->meta_sum)
        return CP_ERR_CORRUPT;
    struct reader r = {meta, h->meta_len, true};
    out->kind = h->kind;
    rd_str(&r, &out->key, &out->key_len);
    rd_str(&r, &out->vary_key, &out->vary_len);
    if (h->kind == DISKFMT_ENTRY)
        rd_skip(&r, ENTRY_FIXED_META);
    out->generation = rd_u64(&r);
    if (!r.ok || (h->kind != DISKFMT_ENTRY && r.left != 0) ||
        (h->kind == DISKFMT_REMOVAL_ALL && out->vary_len != 0))
        return CP_ERR_CORRUPT;
    return CP_OK;
}

static cp_err decode_meta(const unsigned char *meta, size_t meta_len, struct entry *e)
{
    struct reader r = {meta, meta_len, true};
    const char *s;
    size_t n;

    rd_str(&r, &s, &n);
    if (!r.ok)
        return CP_ERR_CORRUPT;
    if ((e->key = dup_n(s, n)) == NULL)
        return CP_ERR_NOMEM;
    rd_str(&r, &s, &n);
    if (!r.ok)
        return CP_ERR_CORRUPT;
    if ((e->vary_key = dup_n(s, n)) == NULL)
        return CP_ERR_NOMEM;

    uint32_t status = rd_u32(&r);
    int64_t req = (int64_t)rd_u64(&r);
    int64_t resp = (int64_t)rd_u64(&r);
    e->initial_age = (int64_t)rd_u64(&r);
    e->lifetime = (int64_t)rd_u64(&r);
    e->generation = rd_u64(&r);
    uint32_t count = rd_u32(&r);
    if (!r.ok || status > INT_MAX || !fits_time_t(req) || !fits_time_t(resp))
        return CP_ERR_CORRUPT;
    e->status = (int)status;
    e->request_time = (time_t)req;
    e->response_time = (time_t)resp;

    /* Each field takes at least 8 bytes: a huge count is caught before any work. */
    if (count > r.left / 8)
        return CP_ERR_CORRUPT;
    for (uint32_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t name_len, value_len;
        rd_str(&r, &name, &name_len);
        rd_str(&r, &value, &value_len);
        if (!r.ok)
            return CP_ERR_CORRUPT;
        if (hdrs_addn(&e->headers, name, name_len, value, value_len) != CP_OK)
            return CP_ERR_NOMEM;
    }
    /* Trailing bytes mean the writer and this reader disagree on the layout. */
    return r.left == 0 ? CP_OK : CP_ERR_CORRUPT;
}

cp_err diskfmt_decode(const unsigned char *buf, size_t len, struct entry **out)
{
    *out = NULL;
    struct diskfmt_head h;
    cp_err err = diskfmt_parse_head(buf, len, &h);
    if (err != CP_OK)
        return err;
    if (h.kind != DISKFMT_ENTRY || h.record_len != len)
        return CP_ERR_CORRUPT;
    const unsigned char *meta = buf + FIXED_LEN;
    const unsigned char *body = meta + h.meta_len;
    if (XXH64(meta, h.meta_len, 0) != h.meta_sum ||
        XXH64(body, (size_t)h.body_len, 0) != h.body_sum)
        return CP_ERR_CORRUPT;

    struct entry *e = entry_new();
    if (e == NULL)
        return CP_ERR_NOMEM;
    err = decode_meta(meta, h.meta_len, e);
    if (err == CP_OK && h.body_len > 0) {
        if ((e->body = malloc((size_t)h.body_len)) == NULL)
            err = CP_ERR_NOMEM;
        else
            memcpy(e->body, body, (size_t)h.body_len);
    }
    if (err != CP_OK) {
        entry_unref(e);
        return err;
    }
    e->body_len = (size_t)h.body_len;
    *out = e;
    return CP_OK;
}

struct diskfmt_hash diskfmt_key_hash(const char *key, size_t key_len, const char *vary_key,
                                     size_t vary_len)
{
    /* lo of the key alone: every variant of a key shares it, so that the store can
     * find (and remove) them all through it without knowing their vary keys. */
    struct diskfmt_hash h = {XXH3_64bits(key_len > 0 ? key : "", key_len), 0};
    unsigned char small[512];
    /* One call over a copy is several times faster than the streaming interface for
     * the short keys that are the rule; both give the same hash. */
    if (key_len < sizeof small && vary_len < sizeof small - 1 - key_len) {
        if (key_len > 0)
            memcpy(small, key, key_len);
        small[key_len] = '\0';
        if (vary_len > 0)
            memcpy(small + key_len + 1, vary_key, vary_len);
        h.hi = XXH3_64bits(small, key_len + 1 + vary_len);
    } else {
        XXH3_state_t st;
        XXH3_INITSTATE(&st);
        XXH3_64bits_reset(&st);
        XXH3_64bits_update(&st, key, key_len);
        XXH3_64bits_update(&st, "", 1);
        XXH3_64bits_update(&st, vary_key, vary_len);
        h.hi = XXH3_64bits_digest(&st);
    }
    return h;
}
