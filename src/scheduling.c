/* The CPU scheduling policy of the proxy's threads (see scheduling.h). Only the policy
 * changes: the nice value, and with it the share of CPU the proxy gets against other
 * processes, stays what it was. */
#include "scheduling.h"

#include <sched.h>

cp_err scheduling_prefer_batches(void)
{
    int policy = sched_getscheduler(0);
    if (policy < 0)
        return CP_ERR_INTERNAL;
    if (policy != SCHED_OTHER)
        return CP_OK; /* somebody chose one on purpose */
    const struct sched_param param = {.sched_priority = 0};
    return sched_setscheduler(0, SCHED_BATCH, &param) == 0 ? CP_OK : CP_ERR_INTERNAL;
}
