/* Command-line options to configuration: parsing and validation of argv (getopt_long),
 * the defaults, and the --help text. No I/O but building strings. */
#ifndef CP_CLI_H
#define CP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "url.h"

#define CLI_DEFAULT_TTL 300                   /* seconds; see --default-ttl */
#define CLI_DEFAULT_MAX_OBJECT (16u << 20)    /* bytes; see --max-object-size */
#define CLI_DEFAULT_MAX_BODY (64u << 20)      /* bytes; see --max-request-body */
#define CLI_DEFAULT_MAX_MEMORY (256u << 20)   /* bytes; see --max-memory */
#define CLI_DEFAULT_MAX_DISK (1024ull << 20)  /* bytes; see --max-disk */
#define CLI_DEFAULT_CONNECT_TIMEOUT 10        /* seconds */
#define CLI_DEFAULT_ORIGIN_TIMEOUT 60         /* seconds */

enum cli_action { CLI_SERVE, CLI_CLEAR_CACHE, CLI_HELP, CLI_VERSION };

struct config {
    enum cli_action action;
    uint16_t port;
    char *bind;                  /* NULL: all interfaces */
    char *origin_url;            /* as given */
    struct origin origin;        /* parsed */
    char *cache_dir;
    int64_t default_ttl;         /* seconds, 0 = strict (also set by --strict) */
    int64_t serve_stale_on_error; /* seconds of staleness served when the origin fails */
    unsigned threads;            /* front-end threads */
    unsigned max_connections;    /* client connections at once; 0: as many as the
                                    open-file limit allows, at most
                                    FDLIMIT_DEFAULT_CONNECTIONS (see fdlimit.h) */
    size_t header_memory;        /* each connection's room for a request's header and
                                    its response's (headroom.h) */
    char *origin_cacert;         /* NULL: system CAs */
    long connect_timeout_ms;
    long origin_timeout_ms;
    bool follow_redirects;
    bool batch_scheduling;       /* threads under SCHED_BATCH (see scheduling.h) */
    size_t max_object_size;
    size_t max_request_body;
    size_t max_memory;           /* bytes of cached responses kept in memory, 0: no limit */
    uint64_t max_disk;           /* bytes of cache files, 0: no limit */
    bool verbose;
    bool quiet;
};

/* Parses argv into *cfg (which it initialises; free it with cli_config_free even on
 * failure). Fills defaults: cache dir from $XDG_CACHE_HOME or $HOME (env values
 * passed in so tests can control them; NULL means unset), threads = `ncpu`.
 * On failure returns the code and writes into `why` (size `why_len`) the detail that
 * names the problem, e.g. "--port '70000'"; the caller prints
 * "caching-proxy: <cp_strerror>: <why>". Errors: CP_ERR_USAGE (unknown option, missing
 * value or required option, stray argument), CP_ERR_BAD_NUMBER, CP_ERR_BAD_PORT,
 * CP_ERR_BAD_ORIGIN, CP_ERR_BAD_ADDRESS, CP_ERR_CACHE_DIR (no way to pick a default),
 * CP_ERR_NOMEM. */
cp_err cli_parse(int argc, char **argv, const char *xdg_cache_home, const char *home,
                 unsigned ncpu, struct config *cfg, char *why, size_t why_len);

/* Frees what cli_parse allocated. */
void cli_config_free(struct config *cfg);

/* The --help text (static). */
const char *cli_usage(void);

/* Parses a size with an optional K/M/G suffix (powers of 1024) into *out.
 * Returns false on anything else or overflow. */
bool cli_parse_size(const char *s, size_t *out);

#endif
