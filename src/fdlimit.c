/* The open-file limit (see fdlimit.h): the arithmetic of connections and descriptors,
 * and the one getrlimit/setrlimit pair that raises the soft limit. */
#include "fdlimit.h"

#include <sys/resource.h>

uint64_t fdlimit_files_for(unsigned connections)
{
    return 2 * (uint64_t)connections + FDLIMIT_RESERVE;
}

unsigned fdlimit_connections_within(uint64_t files, unsigned cap)
{
    if (files < fdlimit_files_for(1))
        return 0;
    uint64_t n = (files - FDLIMIT_RESERVE) / 2;
    return n < cap ? (unsigned)n : cap;
}

cp_err fdlimit_raise(uint64_t want, uint64_t *have)
{
    struct rlimit rl;
    *have = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return CP_ERR_INTERNAL;
    rlim_t target = want < (uint64_t)rl.rlim_max ? (rlim_t)want : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && target > rl.rlim_cur) {
        struct rlimit raised = {target, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = target;
    }
    *have = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return CP_OK;
}
