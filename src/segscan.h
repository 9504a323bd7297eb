/* Reading one segment file of the store sequentially, in large chunks: its records'
 * headers and keys reported one by one (bodies stepped over), and the rules for what
 * damage means, where the segment must be cut and which records are skipped. */
#ifndef CP_SEGSCAN_H
#define CP_SEGSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diskfmt.h"
#include "error.h"

/* Sequential reads of one file through a buffer: what a record needs is usually there
 * already, and a large body is stepped over (the next read starts after it). All zeros
 * but fd = -1 is a reader with no file and no buffer. It does not own the file. */
struct segscan_reader {
    int fd;
    unsigned char *buf;
    size_t cap;
    uint64_t base; /* file offset of buf[0] */
    size_t len;    /* bytes valid in buf */
};

/* One record met by a scan. The strings of `ref` point into the reader's buffer: valid
 * during the callback only. */
struct segscan_rec {
    struct diskfmt_ref ref;
    struct diskfmt_hash h; /* diskfmt_key_hash of ref's key and vary key */
    uint64_t off, len;     /* where the record lies in the segment, header included */
};

/* How a scan of one segment ended. */
struct segscan_end {
    uint64_t whole;   /* where the whole records end */
    cp_err damage;    /* CP_OK: the file ends there; else why the rest is unreadable */
    size_t skipped;   /* records skipped for a bad metadata checksum */
};

/* Points `rd` at the file `fd` (-1: none), forgetting what it read of another file but
 * keeping its buffer. Never fails. */
void segscan_reader_use(struct segscan_reader *rd, int fd);

/* Frees the reader's buffer; the reader may be used again. The file is not closed. */
void segscan_reader_free(struct segscan_reader *rd);

/* Makes bytes [off, off + n) of the file available and returns them (valid until the
 * next call on `rd`), reading at least 1 MiB at a time. Returns NULL with *err:
 * CP_ERR_CORRUPT (the file ends before), CP_ERR_IO (errno set), CP_ERR_NOMEM. */
const unsigned char *segscan_get(struct segscan_reader *rd, uint64_t off, size_t n,
                                 cp_err *err);

/* Gives back a buffer grown past 1 MiB for one large record. Never fails. */
void segscan_shrink(struct segscan_reader *rd);

/* Reads exactly `len` bytes at `off` of `fd`, resuming after short reads and EINTR.
 * Returns how many it got (fewer at the end of the file), or -1 (errno set). */
ssize_t segscan_pread(int fd, unsigned char *buf, size_t len, uint64_t off);

/* The damage rule for the start of a record, `left` bytes before the end of its
 * segment; `buf` holds its first DISKFMT_HEAD_LEN bytes (not read, and may be NULL,
 * when left is less). Returns CP_OK and sets *out when a whole record lies there as far
 * as its header tells. Else the segment ends before it (its rest is cut away):
 * CP_ERR_CORRUPT (cut short, a damaged header, a length past the end of the file) or
 * CP_ERR_VERSION (a record of another format version). Pure. */
cp_err segscan_check_head(const unsigned char *buf, uint64_t left, struct diskfmt_head *out);

/* Reads the segment `rd` of `size` bytes record by record, headers and metadata only,
 * calling `visit` for each record whose metadata is sound. A record whose metadata
 * fails its checksum is skipped (its lengths are sound: only it is lost), counted in
 * end->skipped and, unless `what` is NULL, logged as a warning naming the segment
 * `what`. A record that segscan_check_head refuses ends the scan: end->damage says why
 * and end->whole where the whole records end (the file's size when undamaged).
 * Returns CP_ERR_IO (errno set), CP_ERR_NOMEM, or what `visit` returned if not CP_OK
 * (the scan then stops at that record); *end is set in every case. */
cp_err segscan_each(struct segscan_reader *rd, uint64_t size, const char *what,
                    cp_err (*visit)(void *arg, const struct segscan_rec *r), void *arg,
                    struct segscan_end *end);

#endif
