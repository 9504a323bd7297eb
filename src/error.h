/* Error codes shared by every module, and the one place where they become words.
 * Functions return a cp_err; callers that talk to a person turn it into text
 * with cp_strerror() and add the detail (an option, a path) they know about. */
#ifndef CP_ERROR_H
#define CP_ERROR_H

typedef enum {
    CP_OK = 0,
    CP_ERR_NOMEM,          /* an allocation failed */
    CP_ERR_USAGE,          /* unknown option, missing or stray argument */
    CP_ERR_BAD_NUMBER,     /* an option's value is not a number in range */
    CP_ERR_BAD_PORT,       /* port outside 1-65535 */
    CP_ERR_BAD_ORIGIN,     /* origin is not an absolute http(s) URL */
    CP_ERR_BAD_ADDRESS,    /* --bind is not an IP address */
    CP_ERR_CACHE_DIR,      /* cache directory cannot be created or written */
    CP_ERR_LISTEN,         /* the listening socket could not be opened (port in use) */
    CP_ERR_FILE_LIMIT,     /* the open-file limit is too low for --max-connections */
    CP_ERR_IO,             /* a read/write/rename on disk failed */
    CP_ERR_CORRUPT,        /* a cache file fails its checks (magic, checksum, lengths) */
    CP_ERR_VERSION,        /* a cache file of a format version we do not read */
    CP_ERR_KEY_MISMATCH,   /* a cache file's key does not match its name */
    CP_ERR_STALE_GEN,      /* a cache file from before the last --clear-cache */
    CP_ERR_SUPERSEDED,     /* a newer response is stored already */
    CP_ERR_NOT_FOUND,      /* no such entry */
    CP_ERR_BAD_TARGET,     /* a request target we do not forward (other host, bad form) */
    CP_ERR_TOO_LARGE,      /* a body exceeds the configured limit */
    CP_ERR_ORIGIN_CONNECT, /* origin refused, unreachable, name not resolved */
    CP_ERR_ORIGIN_TIMEOUT, /* origin did not answer in time */
    CP_ERR_ORIGIN_TLS,     /* TLS handshake or certificate verification failed */
    CP_ERR_ORIGIN_PROTOCOL,/* origin sent something that is not HTTP */
    CP_ERR_ORIGIN_HEAD_TOO_LARGE, /* origin's header block too large to pass on */
    CP_ERR_REDIRECT_LOOP,  /* too many redirects on the origin */
    CP_ERR_SHUTDOWN,       /* the proxy is shutting down */
    CP_ERR_INTERNAL,       /* a library call failed in a way we did not expect */
    CP_ERR__COUNT
} cp_err;

/* Returns a short, lower-case, static description of `err`; never NULL. */
const char *cp_strerror(cp_err err);

#endif
