/* caching-proxy's entry point: parse the command line, then either clear the cache
 * directory or wire the modules together (disk store, cache, fetcher, front end), serve
 * until SIGINT/SIGTERM, and shut down cleanly. Errors become messages here. */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cli.h"
#include "fdlimit.h"
#include "fetch.h"
#include "headroom.h"
#include "listener.h"
#include "log.h"
#include "mirror.h"
#include "scheduling.h"
#include "server.h"
#include "store.h"

#define EXIT_RUNTIME 1 /* the configuration is valid but something failed */
#define EXIT_USAGE 2   /* the command line is wrong */

/* Prints the one line that explains a failure: "caching-proxy: <what>: <detail>". */
static void report(cp_err err, const char *detail)
{
    if (detail && detail[0])
        fprintf(stderr, "caching-proxy: %s: %s\n", cp_strerror(err), detail);
    else
        fprintf(stderr, "caching-proxy: %s\n", cp_strerror(err));
}

/* Same, for a failure on a path, with the system's reason from errno. */
static void report_path(cp_err err, const char *path)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s: %s", path, strerror(errno));
    report(err, detail);
}

static int clear_cache(const struct config *cfg)
{
    size_t entries = 0;
    uint64_t bytes = 0;
    cp_err err = store_clear(cfg->cache_dir, &entries, &bytes);
    if (err != CP_OK) {
        report_path(err, cfg->cache_dir);
        return EXIT_RUNTIME;
    }
    printf("caching-proxy: removed %zu %s (%llu bytes) from %s\n", entries,
           entries == 1 ? "entry" : "entries", (unsigned long long)bytes, cfg->cache_dir);
    return EXIT_SUCCESS;
}

/* Loading the disk mirror, on a thread of its own: a large cache takes seconds to
 * read, and the proxy serves meanwhile (looking at the disk itself for what is not
 * in memory, see update_lookup). It starts serving once the store has indexed the
 * disk (the first entry handed over, or the end), which takes a fraction of the load:
 * until then a response on disk could not be found, and its request would go to the
 * origin for nothing. Connections made meanwhile wait in the listen queue. */
struct loader {
    struct store *store;
    struct cache *cache;
    pthread_t thread;
    atomic_bool loading;  /* read by the front end */
    atomic_bool stop;     /* shutting down: leave the rest on disk */
    atomic_size_t count;  /* entries loaded so far */
    size_t removed;
    cp_err err;
    double seconds;
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    bool done;            /* guarded by lock */
    bool indexed;         /* guarded by lock: the store can find every entry on disk */
    bool announce;        /* the start-up line did not give the final count: log it */
};

#define INDEX_WAIT_MS 1000 /* start-up waits at most this long for the index */
#define LOAD_WAIT_MS 500   /* and then this long for the load to finish */

/* The store hands entries over only once it has indexed the disk. */
static void set_indexed(struct loader *l)
{
    pthread_mutex_lock(&l->lock);
    if (!l->indexed) {
        l->indexed = true;
        pthread_cond_broadcast(&l->done_cv);
    }
    pthread_mutex_unlock(&l->lock);
}

static bool load_one(void *arg, struct entry *e)
{
    struct loader *l = arg;
    if (atomic_load_explicit(&l->count, memory_order_relaxed) == 0)
        set_indexed(l);
    /* A response fetched, or invalidated, meanwhile wins (CP_ERR_SUPERSEDED). */
    entry_pack(e); /* unpacked (no memory) is only bigger */
    cache_insert_loaded(l->cache, e); /* refused if superseded or invalidated meanwhile */
    entry_unref(e);
    atomic_fetch_add(&l->count, 1);
    return !atomic_load(&l->stop);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void *load_thread(void *arg)
{
    struct loader *l = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t loaded = 0;
    l->err = store_load(l->store, load_one, l, &loaded, &l->removed);
    l->seconds = seconds_since(&t0);
    atomic_store(&l->loading, false); /* long records are no longer read on request */
    cache_load_end(l->cache);
    pthread_mutex_lock(&l->lock);
    l->done = true;
    l->indexed = true;
    bool announce = l->announce;
    pthread_cond_broadcast(&l->done_cv);
    pthread_mutex_unlock(&l->lock);
    if (announce && l->err == CP_OK && !atomic_load(&l->stop))
        log_info("loaded %zu entries in %.1f s%s", loaded, l->seconds,
                 l->removed ? ", damaged files removed" : "");
    return NULL;
}

static struct timespec in_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* Waits up to INDEX_WAIT_MS for the store to have indexed the disk. */
static void index_wait(struct loader *l)
{
    struct timespec until = in_ms(INDEX_WAIT_MS);
    pthread_mutex_lock(&l->lock);
    while (!l->indexed && pthread_cond_timedwait(&l->done_cv, &l->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&l->lock);
}

/* Waits up to LOAD_WAIT_MS for the load; true if it has finished. */
static bool load_wait(struct loader *l)
{
    struct timespec until = in_ms(LOAD_WAIT_MS);
    pthread_mutex_lock(&l->lock);
    while (!l->done && pthread_cond_timedwait(&l->done_cv, &l->lock, &until) == 0)
        ;
    bool done = l->done;
    l->announce = !done;
    pthread_mutex_unlock(&l->lock);
    return done;
}

/* Makes room among open files for the client connections (fdlimit.h): raises the soft
 * limit, and with no --max-connections takes as many as fit, at most the default, the
 * open files then allowed in *files. Returns the number, or 0 after reporting that the
 * number asked for does not fit. */
static unsigned connections_that_fit(const struct config *cfg, uint64_t *files)
{
    unsigned want = cfg->max_connections ? cfg->max_connections : FDLIMIT_DEFAULT_CONNECTIONS;
    uint64_t have = 0;
    *files = 0;
    if (fdlimit_raise(fdlimit_files_for(want), &have) != CP_OK)
        return want; /* cannot tell: accepting fails as the system says, then */
    *files = have;
    unsigned fit = fdlimit_connections_within(have, want);
    if (fit == want)
        return want;
    char detail[160];
    if (cfg->max_connections != 0) {
        snprintf(detail, sizeof detail, "--max-connections %u needs %llu open files; %llu allowed",
                 want, (unsigned long long)fdlimit_files_for(want), (unsigned long long)have);
        report(CP_ERR_FILE_LIMIT, detail);
        return 0;
    }
    if (fit == 0) {
        snprintf(detail, sizeof detail, "%llu open files allowed; one connection needs %llu",
                 (unsigned long long)have, (unsigned long long)fdlimit_files_for(1));
        report(CP_ERR_FILE_LIMIT, detail);
        return 0;
    }
    return fit;
}

static int serve(const struct config *cfg)
{
    int rc = EXIT_RUNTIME;
    char why[256] = "";
    struct store *store = NULL;
    struct cache *cache = NULL;
    struct fetcher *fetcher = NULL;
    struct mirror *mirror = NULL;
    struct server *server = NULL;
    struct loader *loader_started = NULL;
    cp_err err;

    /* Every thread started from here on inherits this mask, so the signals are only
     * ever taken by sigwait() below, never by a worker in the middle of its work. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Likewise the scheduling policy: every thread inherits it. */
    if (cfg->batch_scheduling && scheduling_prefer_batches() != CP_OK)
        log_warn("cannot run under SCHED_BATCH (%s); going on under the normal policy",
                 strerror(errno));

    struct config sized = *cfg; /* the same, with the connections that fit */
    uint64_t files = 0;
    if ((sized.max_connections = connections_that_fit(cfg, &files)) == 0)
        return EXIT_RUNTIME;
    bool fewer_connections = cfg->max_connections == 0 &&
                             sized.max_connections < FDLIMIT_DEFAULT_CONNECTIONS;
    cfg = &sized;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        report(CP_ERR_INTERNAL, "libcurl failed to initialise");
        return EXIT_RUNTIME;
    }
    /* First, so that a port in use is reported at once, whatever else start-up does. */
    int listen_fd = -1;
    char address[80];
    if ((err = listener_open(cfg->bind, cfg->port, &listen_fd, address, sizeof address, why,
                             sizeof why)) != CP_OK) {
        report(err, why);
        curl_global_cleanup();
        return EXIT_RUNTIME;
    }
    if ((err = store_open(cfg->cache_dir, cfg->max_disk, &store)) != CP_OK) {
        report_path(err, cfg->cache_dir);
        goto out;
    }
    if ((err = cache_new(store_generation_ptr(store), cfg->max_memory, &cache)) != CP_OK) {
        report(err, NULL);
        goto out;
    }
    struct loader loader = {.store = store, .cache = cache, .done = false};
    atomic_init(&loader.loading, true);
    atomic_init(&loader.stop, false);
    atomic_init(&loader.count, 0);
    pthread_mutex_init(&loader.lock, NULL);
    pthread_cond_init(&loader.done_cv, NULL);
    cache_load_begin(cache);
    if (pthread_create(&loader.thread, NULL, load_thread, &loader) != 0) {
        report(CP_ERR_INTERNAL, "cannot start the thread loading the cache");
        goto out;
    }
    loader_started = &loader;
    struct fetch_opts fo = {
        .origin = &cfg->origin,
        .cacert = cfg->origin_cacert,
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .timeout_ms = cfg->origin_timeout_ms,
        .follow_redirects = cfg->follow_redirects,
        .max_redirects = 5,
        .max_head = headroom_origin_head_max(cfg->header_memory),
    };
    if ((err = fetcher_start(&fo, &fetcher)) != CP_OK || (err = mirror_start(store, &mirror)) != CP_OK) {
        report(err, NULL);
        goto out;
    }
    index_wait(&loader);
    err = server_start(cfg, listen_fd, address, cache, store, mirror, &loader.loading, fetcher,
                       &server, why, sizeof why);
    listen_fd = -1; /* the server's now, or closed */
    if (err != CP_OK) {
        report(err, why);
        goto out;
    }
    if (load_wait(&loader)) {
        if (loader.err != CP_OK) {
            report(loader.err, cfg->cache_dir);
            goto out;
        }
        log_info("listening on %s, origin %s, cache %s (%zu entries loaded%s)",
                 server_address(server), cfg->origin.prefix, cfg->cache_dir,
                 atomic_load(&loader.count), loader.removed ? ", damaged files removed" : "");
    } else {
        log_info("listening on %s, origin %s, cache %s (%zu entries loaded so far, the rest "
                 "loading in the background)",
                 server_address(server), cfg->origin.prefix, cfg->cache_dir,
                 atomic_load(&loader.count));
    }
    if (fewer_connections)
        log_info("%llu open files allowed: at most %u client connections at once",
                 (unsigned long long)files, cfg->max_connections);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = EXIT_SUCCESS;
out:
    /* Order matters: end the requests waiting on the origin (which resumes their
     * connections), close the front end, then flush the disk mirror. */
    fetcher_stop(fetcher);
    server_stop(server);
    fetcher_free(fetcher);
    if (loader_started != NULL) {
        atomic_store(&loader_started->stop, true);
        store_load_stop(store); /* the index scan too, not only the hand-over */
        pthread_join(loader_started->thread, NULL);
        pthread_mutex_destroy(&loader_started->lock);
        pthread_cond_destroy(&loader_started->done_cv);
    }
    mirror_stop(mirror);
    cache_free(cache);
    store_close(store);
    if (listen_fd >= 0)
        close(listen_fd);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char why[256] = "";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cp_err err = cli_parse(argc, argv, getenv("XDG_CACHE_HOME"), getenv("HOME"),
                           ncpu > 0 ? (unsigned)ncpu : 1, &cfg, why, sizeof why);
    if (err != CP_OK) {
        report(err, why);
        cli_config_free(&cfg);
        return err == CP_ERR_CACHE_DIR || err == CP_ERR_NOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    if (cfg.verbose)
        log_set_level(LOG_LVL_DEBUG);
    else if (cfg.quiet)
        log_set_level(LOG_LVL_WARN);

    int rc = EXIT_SUCCESS;
    switch (cfg.action) {
    case CLI_HELP:
        fputs(cli_usage(), stdout);
        break;
    case CLI_VERSION:
        printf("caching-proxy %s (libmicrohttpd %s, %s)\n", CP_VERSION, MHD_get_version(),
               curl_version());
        break;
    case CLI_CLEAR_CACHE:
        rc = clear_cache(&cfg);
        break;
    case CLI_SERVE:
        rc = serve(&cfg);
        break;
    }
    cli_config_free(&cfg);
    return rc;
}
