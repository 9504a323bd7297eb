/* Command-line parsing (see cli.h): getopt_long with our own messages, so every
 * problem comes back as a cp_err plus a short detail naming the option and value,
 * and the caller alone decides what to print. */
#include "cli.h"
#include "headroom.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_THREADS 1024u
#define CLI_MAX_CONNECTIONS 1000000u
/* Keeps timeouts in milliseconds within a 32-bit long. */
#define CLI_MAX_TIMEOUT_S 1000000L
/* Anything larger is surely a typo, and keeps default_ttl + now far from overflow. */
#define CLI_MAX_TTL ((int64_t)100 * 365 * 24 * 3600)

/* Values of the options that have no short form. */
enum {
    OPT_PORT = 256,
    OPT_ORIGIN,
    OPT_CLEAR_CACHE,
    OPT_CACHE_DIR,
    OPT_DEFAULT_TTL,
    OPT_THREADS,
    OPT_BIND,
    OPT_ORIGIN_CACERT,
    OPT_CONNECT_TIMEOUT,
    OPT_ORIGIN_TIMEOUT,
    OPT_NO_FOLLOW,
    OPT_MAX_OBJECT,
    OPT_MAX_BODY,
    OPT_STRICT,
    OPT_STALE_ON_ERROR,
    OPT_MAX_MEMORY,
    OPT_MAX_DISK,
    OPT_SCHEDULING,
    OPT_MAX_CONNECTIONS,
    OPT_HEADER_MEMORY,
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"clear-cache", no_argument, NULL, OPT_CLEAR_CACHE},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"default-ttl", required_argument, NULL, OPT_DEFAULT_TTL},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"header-memory", required_argument, NULL, OPT_HEADER_MEMORY},
    {"bind", required_argument, NULL, OPT_BIND},
    {"origin-cacert", required_argument, NULL, OPT_ORIGIN_CACERT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"origin-timeout", required_argument, NULL, OPT_ORIGIN_TIMEOUT},
    {"no-follow-redirects", no_argument, NULL, OPT_NO_FOLLOW},
    {"max-object-size", required_argument, NULL, OPT_MAX_OBJECT},
    {"max-request-body", required_argument, NULL, OPT_MAX_BODY},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"max-disk", required_argument, NULL, OPT_MAX_DISK},
    {"scheduling", required_argument, NULL, OPT_SCHEDULING},
    {"serve-stale-on-error", required_argument, NULL, OPT_STALE_ON_ERROR},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Leading ':' so a missing value comes back as ':' rather than '?'. */
static const char short_opts[] = ":vqhV";

static const char usage_text[] =
    "Usage: caching-proxy --port N --origin URL [OPTIONS]\n"
    "       caching-proxy --clear-cache [--cache-dir DIR]\n"
    "       caching-proxy --help | --version\n"
    "\n"
    "A caching HTTP reverse proxy: requests to the port are forwarded to the\n"
    "origin; cacheable responses are kept and served again (X-Cache: HIT).\n"
    "\n"
    "Options:\n"
    "  --port N                  port to listen on, 1-65535 (required to serve)\n"
    "  --origin URL              http:// or https:// URL of the origin, with an\n"
    "                            optional base path (required to serve)\n"
    "  --clear-cache             empty the cache (a running proxy too) and exit\n"
    "  --cache-dir DIR           cache directory (default:\n"
    "                            $XDG_CACHE_HOME/caching-proxy if set, else\n"
    "                            $HOME/.cache/caching-proxy)\n"
    "  --default-ttl SECONDS     freshness of responses with no expiry of their\n"
    "                            own (default: 300; 0 = strict RFC 9111)\n"
    "  --strict                  strict RFC 9111 caching: the same as\n"
    "                            --default-ttl 0\n"
    "  --serve-stale-on-error SECONDS\n"
    "                            serve a response up to SECONDS stale when the\n"
    "                            origin fails or answers 5xx (default: 0, off)\n"
    "  --threads N               request threads, 1-1024 (default: CPU count)\n"
    "  --max-connections N       client connections at once, 1-1000000; more wait\n"
    "                            to be accepted (default: as many as the open-file\n"
    "                            limit allows, at most 10000)\n"
    "  --header-memory BYTES     memory of each client connection for a request's\n"
    "                            header and its response's, 8K-1M, K/M suffixes\n"
    "                            allowed (default: 32K; a request header that\n"
    "                            leaves too little room: 431)\n"
    "  --scheduling POLICY       batch: the proxy's threads hand work to one\n"
    "                            another in batches (SCHED_BATCH, the default);\n"
    "                            normal: they preempt other processes sooner\n"
    "  --bind ADDR               IPv4 or IPv6 address to listen on\n"
    "                            (default: all interfaces)\n"
    "  --origin-cacert FILE      CA certificates for the origin's TLS\n"
    "                            (default: the system's)\n"
    "  --connect-timeout SECONDS limit to connect to the origin, decimals\n"
    "                            allowed (default: 10)\n"
    "  --origin-timeout SECONDS  limit for a whole origin transfer, decimals\n"
    "                            allowed (default: 60)\n"
    "  --no-follow-redirects     pass the origin's redirects to the client\n"
    "                            (default: follow them on the origin's host,\n"
    "                            at most 5)\n"
    "  --max-object-size BYTES   largest response stored, K/M/G suffixes\n"
    "                            allowed (default: 16M; larger: streamed through,\n"
    "                            not stored)\n"
    "  --max-request-body BYTES  largest request body accepted, K/M/G suffixes\n"
    "                            allowed (default: 64M; larger: 413)\n"
    "  --max-memory BYTES        memory for cached responses; the least recently\n"
    "                            used go first, to the disk only (default: 256M;\n"
    "                            0: no limit)\n"
    "  --max-disk BYTES          size of the cache files on disk; the oldest go\n"
    "                            first (default: 1G; 0: no limit)\n"
    "  -v, --verbose             log debug messages too (default: information,\n"
    "                            warnings and errors)\n"
    "  -q, --quiet               log warnings and errors only\n"
    "  -h, --help                show this help and exit\n"
    "  -V, --version             show the version and exit\n";

const char *cli_usage(void)
{
    return usage_text;
}

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static const char *opt_name(int val)
{
    for (const struct option *o = long_opts; o->name != NULL; o++)
        if (o->val == val)
            return o->name;
    return NULL;
}

/* Unsigned decimal digits only: strtoul would also take signs, blanks and hex. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool cli_parse_size(const char *s, size_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    size_t n = strlen(s);
    unsigned shift = 0;
    switch (s[n - 1]) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: break;
    }
    if (shift != 0)
        n--;
    if (n == 0 || n > 24)
        return false;
    char digits[25];
    memcpy(digits, s, n);
    digits[n] = '\0';
    uint64_t v;
    if (!parse_u64(digits, (uint64_t)SIZE_MAX >> shift, &v))
        return false;
    *out = (size_t)(v << shift);
    return true;
}

/* Seconds with an optional fraction ("10", "0.5", ".25") to milliseconds, at least 1.
 * Digits past the third decimal are ignored. Hand-rolled because strtod takes the
 * locale's decimal point, exponents, "inf" and "nan". */
static bool parse_seconds_ms(const char *s, long *out)
{
    long whole = 0, frac = 0;
    int frac_digits = 0;
    bool any = false;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        any = true;
        whole = whole * 10 + (*c - '0');
        if (whole > CLI_MAX_TIMEOUT_S)
            return false;
    }
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++) {
            any = true;
            if (frac_digits < 3) {
                frac = frac * 10 + (*c - '0');
                frac_digits++;
            }
        }
    }
    if (!any || *c != '\0')
        return false;
    for (; frac_digits < 3; frac_digits++)
        frac *= 10;
    long ms = whole * 1000 + frac;
    if (ms < 1 || ms > CLI_MAX_TIMEOUT_S * 1000)
        return false;
    *out = ms;
    return true;
}

static cp_err set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return CP_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return CP_OK;
}

/* Joins a base directory (trailing slashes dropped) and a relative tail. */
static char *join_dir(const char *base, const char *tail)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s", (int)n, base, tail) < 0)
        return NULL;
    return out;
}

/* The XDG base directory rules: a relative XDG_CACHE_HOME is to be ignored. */
static cp_err default_cache_dir(const char *xdg, const char *home, char **out,
                                char *why, size_t why_len)
{
    if (xdg != NULL && xdg[0] == '/')
        *out = join_dir(xdg, "caching-proxy");
    else if (home != NULL && home[0] != '\0')
        *out = join_dir(home, ".cache/caching-proxy");
    else {
        say(why, why_len, "neither XDG_CACHE_HOME nor HOME is set; use --cache-dir");
        return CP_ERR_CACHE_DIR;
    }
    return *out ? CP_OK : CP_ERR_NOMEM;
}

/* Applies one option with its value. Returns the error for it, with `why` filled. */
static cp_err apply(int opt, const char *arg, struct config *cfg, char *why, size_t why_len)
{
    uint64_t u;
    switch (opt) {
    case OPT_PORT:
        if (!parse_u64(arg, 65535, &u) || u == 0) {
            say(why, why_len, "--port '%s'", arg);
            return CP_ERR_BAD_PORT;
        }
        cfg->port = (uint16_t)u;
        return CP_OK;
    case OPT_ORIGIN:
        return set_string(&cfg->origin_url, arg);
    case OPT_CLEAR_CACHE:
        cfg->action = CLI_CLEAR_CACHE;
        return CP_OK;
    case OPT_CACHE_DIR:
        if (arg[0] == '\0') {
            say(why, why_len, "--cache-dir ''");
            return CP_ERR_CACHE_DIR;
        }
        return set_string(&cfg->cache_dir, arg);
    case OPT_DEFAULT_TTL:
        if (!parse_u64(arg, (uint64_t)CLI_MAX_TTL, &u)) {
            say(why, why_len, "--default-ttl '%s'", arg);
            return CP_ERR_BAD_NUMBER;
        }
        cfg->default_ttl = (int64_t)u;
        return CP_OK;
    case OPT_STRICT:
        cfg->default_ttl = 0;
        return CP_OK;
    case OPT_STALE_ON_ERROR:
        if (!parse_u64(arg, (uint64_t)CLI_MAX_TTL, &u)) {
            say(why, why_len, "--serve-stale-on-error '%s'", arg);
            return CP_ERR_BAD_NUMBER;
        }
        cfg->serve_stale_on_error = (int64_t)u;
        return CP_OK;
    case OPT_THREADS:
    case OPT_MAX_CONNECTIONS: {
        unsigned max = opt == OPT_THREADS ? CLI_MAX_THREADS : CLI_MAX_CONNECTIONS;
        if (!parse_u64(arg, max, &u) || u == 0) {
            say(why, why_len, "--%s '%s' (1-%u)", opt_name(opt), arg, max);
            return CP_ERR_BAD_NUMBER;
        }
        if (opt == OPT_THREADS)
            cfg->threads = (unsigned)u;
        else
            cfg->max_connections = (unsigned)u;
        return CP_OK;
    }
    case OPT_HEADER_MEMORY: {
        size_t n;
        if (!cli_parse_size(arg, &n) || n < HEADROOM_POOL_MIN || n > HEADROOM_POOL_MAX) {
            say(why, why_len, "--header-memory '%s' (%uK-%uM)", arg, HEADROOM_POOL_MIN >> 10,
                HEADROOM_POOL_MAX >> 20);
            return CP_ERR_BAD_NUMBER;
        }
        cfg->header_memory = n;
        return CP_OK;
    }
    case OPT_BIND: {
        unsigned char buf[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, arg, buf) != 1 && inet_pton(AF_INET6, arg, buf) != 1) {
            say(why, why_len, "--bind '%s'", arg);
            return CP_ERR_BAD_ADDRESS;
        }
        return set_string(&cfg->bind, arg);
    }
    case OPT_ORIGIN_CACERT:
        if (arg[0] == '\0') {
            say(why, why_len, "option '--origin-cacert' needs a value");
            return CP_ERR_USAGE;
        }
        return set_string(&cfg->origin_cacert, arg);
    case OPT_CONNECT_TIMEOUT:
    case OPT_ORIGIN_TIMEOUT: {
        long ms;
        if (!parse_seconds_ms(arg, &ms)) {
            say(why, why_len, "--%s '%s'", opt_name(opt), arg);
            return CP_ERR_BAD_NUMBER;
        }
        if (opt == OPT_CONNECT_TIMEOUT)
            cfg->connect_timeout_ms = ms;
        else
            cfg->origin_timeout_ms = ms;
        return CP_OK;
    }
    case OPT_NO_FOLLOW:
        cfg->follow_redirects = false;
        return CP_OK;
    case OPT_SCHEDULING:
        if (strcmp(arg, "batch") != 0 && strcmp(arg, "normal") != 0) {
            say(why, why_len, "--scheduling '%s' (batch or normal)", arg);
            return CP_ERR_USAGE;
        }
        cfg->batch_scheduling = strcmp(arg, "batch") == 0;
        return CP_OK;
    case OPT_MAX_MEMORY:
    case OPT_MAX_DISK:
    case OPT_MAX_OBJECT:
    case OPT_MAX_BODY: {
        size_t n;
        if (!cli_parse_size(arg, &n)) {
            say(why, why_len, "--%s '%s'", opt_name(opt), arg);
            return CP_ERR_BAD_NUMBER;
        }
        if (opt == OPT_MAX_OBJECT)
            cfg->max_object_size = n;
        else if (opt == OPT_MAX_BODY)
            cfg->max_request_body = n;
        else if (opt == OPT_MAX_MEMORY)
            cfg->max_memory = n;
        else
            cfg->max_disk = n;
        return CP_OK;
    }
    /* The last of -v and -q wins, so the configuration never says both. */
    case 'v':
        cfg->verbose = true;
        cfg->quiet = false;
        return CP_OK;
    case 'q':
        cfg->quiet = true;
        cfg->verbose = false;
        return CP_OK;
    default:
        say(why, why_len, "unhandled option");
        return CP_ERR_INTERNAL;
    }
}

/* Describes what getopt_long refused. For an unknown long option (and for an
 * ambiguous abbreviation) glibc leaves optopt at 0 and has already stepped past the
 * word; for a value given to an option that takes none it sets optopt to the
 * option's val; for an unknown short option to the character. */
static void describe_bad_option(char **argv, char *why, size_t why_len)
{
    const char *name = opt_name(optopt);
    if (optopt == 0) {
        const char *word = argv[optind - 1];
        int len = (int)strcspn(word, "=");
        say(why, why_len, "unknown option '%.*s'", len, word);
    } else if (name != NULL) {
        say(why, why_len, "option '--%s' takes no value", name);
    } else {
        say(why, why_len, "unknown option '-%c'", optopt);
    }
}

cp_err cli_parse(int argc, char **argv, const char *xdg_cache_home, const char *home,
                 unsigned ncpu, struct config *cfg, char *why, size_t why_len)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->action = CLI_SERVE;
    cfg->default_ttl = CLI_DEFAULT_TTL;
    cfg->max_memory = CLI_DEFAULT_MAX_MEMORY;
    cfg->max_disk = CLI_DEFAULT_MAX_DISK;
    cfg->threads = ncpu == 0 ? 1 : ncpu > CLI_MAX_THREADS ? CLI_MAX_THREADS : ncpu;
    cfg->connect_timeout_ms = CLI_DEFAULT_CONNECT_TIMEOUT * 1000L;
    cfg->origin_timeout_ms = CLI_DEFAULT_ORIGIN_TIMEOUT * 1000L;
    cfg->follow_redirects = true;
    cfg->batch_scheduling = true;
    cfg->max_object_size = CLI_DEFAULT_MAX_OBJECT;
    cfg->max_request_body = CLI_DEFAULT_MAX_BODY;
    cfg->header_memory = HEADROOM_POOL_DEFAULT;
    say(why, why_len, "%s", "");

    /* --help and --version win over any error, so the whole line is read first and
     * only the first problem is kept. */
    bool help = false, version = false;
    cp_err first = CP_OK;
    char first_why[256] = "";
    char detail[256];

    optind = 0;   /* glibc: a full reset, parsing starts over on every call */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        cp_err err = CP_OK;
        detail[0] = '\0';
        if (c == 'h') {
            help = true;
        } else if (c == 'V') {
            version = true;
        } else if (c == ':') {
            const char *name = opt_name(optopt);
            if (name != NULL)
                snprintf(detail, sizeof detail, "option '--%s' needs a value", name);
            else
                snprintf(detail, sizeof detail, "option '-%c' needs a value", optopt);
            err = CP_ERR_USAGE;
        } else if (c == '?') {
            describe_bad_option(argv, detail, sizeof detail);
            err = CP_ERR_USAGE;
        } else {
            err = apply(c, optarg, cfg, detail, sizeof detail);
            if (err == CP_ERR_NOMEM)
                return err;
        }
        if (err != CP_OK && first == CP_OK) {
            first = err;
            memcpy(first_why, detail, sizeof first_why);
        }
    }

    if (help) {
        cfg->action = CLI_HELP;
        return CP_OK;
    }
    if (version) {
        cfg->action = CLI_VERSION;
        return CP_OK;
    }
    if (first != CP_OK) {
        say(why, why_len, "%s", first_why);
        return first;
    }
    if (optind < argc) {
        say(why, why_len, "unexpected argument '%s'", argv[optind]);
        return CP_ERR_USAGE;
    }

    /* A given origin is checked even when only clearing the cache: a typo should
     * not go unnoticed just because the value was not needed this time. */
    if (cfg->origin_url != NULL) {
        cp_err err = url_parse_origin(cfg->origin_url, &cfg->origin);
        if (err != CP_OK) {
            say(why, why_len, "--origin '%s'", cfg->origin_url);
            return err;
        }
    }
    if (cfg->action == CLI_SERVE) {
        if (cfg->port == 0) {
            say(why, why_len, "--port is required");
            return CP_ERR_USAGE;
        }
        if (cfg->origin_url == NULL) {
            say(why, why_len, "--origin is required");
            return CP_ERR_USAGE;
        }
    }
    if (cfg->cache_dir == NULL)
        return default_cache_dir(xdg_cache_home, home, &cfg->cache_dir, why, why_len);
    return CP_OK;
}

void cli_config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->bind);
    free(cfg->origin_url);
    url_origin_free(&cfg->origin);
    free(cfg->cache_dir);
    free(cfg->origin_cacert);
    memset(cfg, 0, sizeof *cfg);
}
