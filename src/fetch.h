/* Requests to the origin with libcurl's multi interface, on a thread of its own, so
 * no front-end thread ever waits for the origin. Connections (and DNS and TLS
 * sessions) are reused across requests. Redirects are followed here, but only while
 * they stay on the origin's host. */
#ifndef CP_FETCH_H
#define CP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"
#include "headers.h"
#include "url.h"

struct fetch_opts {
    const struct origin *origin;  /* redirects are followed only onto its host */
    const char *cacert;           /* extra CA bundle file, or NULL for the system's */
    long connect_timeout_ms;
    long timeout_ms;              /* whole transfer, redirects included */
    bool follow_redirects;
    int max_redirects;
    size_t max_head;              /* bytes of a response's fields ("Name: value\r\n"
                                     each); a final response with more fails with
                                     CP_ERR_ORIGIN_HEAD_TOO_LARGE. 0: no limit */
};

/* What to send. The fetcher takes ownership of every pointer in it. */
struct fetch_request {
    char *method;
    char *url;             /* absolute URL on the origin */
    struct hdrs headers;   /* sent as given (Host is set by the fetcher from url) */
    unsigned char *body;   /* may be NULL */
    size_t body_len;
};

/* What came back: the final response after any redirects followed. */
struct fetch_result {
    cp_err err;            /* CP_OK, or why there is no response (timeout, connect...) */
    int status;
    struct hdrs headers;   /* every field of the final response, in order */
    unsigned char *body;
    size_t body_len;
    time_t request_time;   /* when the (last) request was sent */
    time_t response_time;  /* when its response was complete */
};

/* Frees what a fetch_result owns (not the struct itself). */
void fetch_result_free(struct fetch_result *r);
/* Frees what a fetch_request owns (not the struct itself). */
void fetch_request_free(struct fetch_request *r);

struct fetcher;

/* Starts the fetch thread. `opts` is copied; the origin it points to must outlive the
 * fetcher. Returns CP_ERR_NOMEM or CP_ERR_INTERNAL. */
cp_err fetcher_start(const struct fetch_opts *opts, struct fetcher **out);

/* Queues `req` (ownership taken, even on failure). `done` is later called exactly once,
 * on the fetch thread, with the result. `res` is valid only during that call: `done`
 * may take its headers and body by moving them out (the usual way: copy the struct,
 * then zero it); whatever is left in it is freed afterwards. Returns CP_ERR_SHUTDOWN if the fetcher is stopping, in which
 * case `done` is not called. */
cp_err fetch_submit(struct fetcher *f, struct fetch_request *req,
                    void (*done)(void *arg, struct fetch_result *res), void *arg);

/* A receiver of the final response as it arrives, instead of whole at the end. */
struct fetch_sink {
    /* The final response's status and fields are in (res's body is empty). Returns true
     * to take its body through `data`; false to get it whole in the result as usual.
     * Called on the fetch thread; `res` is valid only during the call, but a head that
     * returns true may take res->headers (leaving the list empty): the fetcher needs
     * them no more. */
    bool (*head)(void *arg, struct fetch_result *res);
    /* A piece of the body. Returns false to refuse it: the transfer pauses, and the
     * same bytes are offered again after fetch_resume(f, arg). */
    bool (*data)(void *arg, const unsigned char *p, size_t n);
};

/* fetch_submit with a sink (which must outlive the transfer). `done` is still called
 * once at the end; after a head that took the body, its result has no body. */
cp_err fetch_submit_sink(struct fetcher *f, struct fetch_request *req,
                         const struct fetch_sink *sink,
                         void (*done)(void *arg, struct fetch_result *res), void *arg);

/* Unpauses the transfer whose sink refused bytes, for the submit `arg`. Safe from any
 * thread; a transfer that has ended meanwhile is simply not found. */
void fetch_resume(struct fetcher *f, void *arg);

/* Aborts transfers still under way (their `done` gets CP_ERR_SHUTDOWN) and stops the
 * thread. Later fetch_submit calls fail with CP_ERR_SHUTDOWN, so front-end threads may
 * still call it until the front end is stopped. NULL is ignored. */
void fetcher_stop(struct fetcher *f);
/* Frees a stopped fetcher. NULL is ignored. */
void fetcher_free(struct fetcher *f);

#endif
