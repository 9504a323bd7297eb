/* Settings for jemalloc, the allocator of the proxy binary (linked only when it is).
 * jemalloc reads this variable when it starts, before main and before MALLOC_CONF,
 * which can still override it. */

/* Transparent huge pages for jemalloc's memory: a miss touches fresh memory (its entry,
 * its body, libcurl's buffers), and fewer TLB misses and page faults make one about 6%
 * cheaper. It costs about 0.16 KiB of resident memory per cached 1 KiB object. */
const char *malloc_conf = "thp:always";
