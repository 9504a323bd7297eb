/* Sequential reading of one segment file of the store (see segscan.h): large chunks
 * through one buffer, record headers and keys handed to a callback, bodies stepped
 * over, damage judged by the record headers alone. */
#include "segscan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

#define READ_CHUNK (1u << 20) /* what a load reads at a time */

ssize_t segscan_pread(int fd, unsigned char *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

void segscan_reader_use(struct segscan_reader *rd, int fd)
{
    rd->fd = fd;
    rd->base = 0;
    rd->len = 0;
}

void segscan_reader_free(struct segscan_reader *rd)
{
    free(rd->buf);
    rd->buf = NULL;
    rd->cap = rd->len = 0;
}

const unsigned char *segscan_get(struct segscan_reader *rd, uint64_t off, size_t n,
                                 cp_err *err)
{
    if (off >= rd->base && off - rd->base <= rd->len && n <= rd->len - (off - rd->base))
        return rd->buf + (off - rd->base);
    size_t want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > rd->cap) {
        free(rd->buf);
        rd->len = 0;
        rd->cap = 0;
        if ((rd->buf = malloc(want)) == NULL) {
            *err = CP_ERR_NOMEM;
            return NULL;
        }
        rd->cap = want;
    }
    ssize_t got = segscan_pread(rd->fd, rd->buf, want, off);
    rd->base = off;
    rd->len = got > 0 ? (size_t)got : 0;
    if (got < 0) {
        *err = CP_ERR_IO;
        return NULL;
    }
    if ((size_t)got < n) {
        *err = CP_ERR_CORRUPT;
        return NULL;
    }
    return rd->buf;
}

void segscan_shrink(struct segscan_reader *rd)
{
    if (rd->cap > READ_CHUNK)
        segscan_reader_free(rd);
}

cp_err segscan_check_head(const unsigned char *buf, uint64_t left, struct diskfmt_head *out)
{
    if (left < DISKFMT_HEAD_LEN)
        return CP_ERR_CORRUPT; /* cut short */
    cp_err err = diskfmt_parse_head(buf, DISKFMT_HEAD_LEN, out);
    if (err != CP_OK)
        return err;
    if (out->record_len > left)
        return CP_ERR_CORRUPT; /* cut short, or a length we cannot believe */
    return CP_OK;
}

cp_err segscan_each(struct segscan_reader *rd, uint64_t size, const char *what,
                    cp_err (*visit)(void *arg, const struct segscan_rec *r), void *arg,
                    struct segscan_end *end)
{
    uint64_t off = 0;
    cp_err err = CP_OK;
    end->damage = CP_OK;
    end->skipped = 0;
    while (off < size) {
        struct diskfmt_head hd;
        const unsigned char *p = NULL;
        uint64_t left = size - off;
        if (left < DISKFMT_HEAD_LEN || (p = segscan_get(rd, off, DISKFMT_HEAD_LEN, &err)) != NULL) {
            if ((err = segscan_check_head(p, left, &hd)) == CP_OK)
                p = segscan_get(rd, off + DISKFMT_HEAD_LEN, hd.meta_len, &err);
        }
        if (p == NULL || err != CP_OK) {
            if (err == CP_ERR_CORRUPT || err == CP_ERR_VERSION) {
                end->damage = err;
                err = CP_OK;
            }
            break;
        }
        struct segscan_rec r = {.off = off, .len = hd.record_len};
        if (diskfmt_parse_meta(&hd, p, &r.ref) != CP_OK) {
            /* The lengths are sound: only this record is lost. */
            end->skipped++;
            if (what != NULL)
                log_warn("ignoring the damaged record at byte %" PRIu64 " of cache segment %s: %s",
                         off, what, cp_strerror(CP_ERR_CORRUPT));
        } else {
            r.h = diskfmt_key_hash(r.ref.key, r.ref.key_len, r.ref.vary_key, r.ref.vary_len);
            if ((err = visit(arg, &r)) != CP_OK)
                break;
        }
        off += hd.record_len;
        segscan_shrink(rd);
    }
    end->whole = off;
    return err;
}
