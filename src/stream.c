/* libmicrohttpd responses fed by a relay (see stream.h): a content reader that parks the
 * connection when the relay has nothing new, and a zero-copy buffer for a body that is
 * all in before the client is answered. */
#include "stream.h"

#include <stdlib.h>

#define STREAM_BLOCK (64u << 10) /* most bytes handed to libmicrohttpd per read */

/* One client reading the relay. */
struct stream_reader {
    struct relay *relay;
    struct relay_reader *rd;
    struct MHD_Connection *conn;
};

static void park_connection(void *conn) { MHD_suspend_connection(conn); }
static void wake_connection(void *conn) { MHD_resume_connection(conn); }

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_reader *sr = cls;
    ssize_t n = relay_read(sr->relay, sr->rd, pos, buf, max, park_connection, sr->conn);
    if (n == RELAY_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == RELAY_ERROR)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n; /* 0: parked, woken when bytes arrive */
}

static void free_stream(void *cls)
{
    struct stream_reader *sr = cls;
    if (sr->rd != NULL)
        relay_reader_gone(sr->relay, sr->rd);
    relay_unref(sr->relay);
    free(sr);
}

static void release_relay(void *relay) { relay_unref(relay); }

static struct MHD_Response *reader_response(struct relay *r, struct MHD_Connection *conn,
                                            uint64_t size)
{
    struct stream_reader *sr = calloc(1, sizeof *sr);
    if (sr == NULL)
        return NULL;
    sr->relay = relay_ref(r);
    sr->conn = conn;
    sr->rd = relay_add_reader(sr->relay, wake_connection, sr->conn);
    if (sr->rd == NULL) {
        free_stream(sr);
        return NULL;
    }
    /* libmicrohttpd allocates (and clears) a buffer of this size per response. */
    size_t block = STREAM_BLOCK;
    if (size != MHD_SIZE_UNKNOWN && size < block)
        block = size > 0 ? (size_t)size : 1;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, block, read_stream, sr, free_stream);
    if (resp == NULL)
        free_stream(sr);
    return resp;
}

struct MHD_Response *stream_response(struct relay *r, struct MHD_Connection *conn,
                                     uint64_t size)
{
    size_t len;
    const unsigned char *whole = relay_whole(r, &len);
    if (whole == NULL)
        return reader_response(r, conn, size);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        len, (void *)whole, release_relay, relay_ref(r));
    if (resp == NULL)
        relay_unref(r);
    return resp;
}
