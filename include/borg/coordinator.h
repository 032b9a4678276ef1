/* Rank 0: reads jobs, tokenizes, schedules micro-batches, applies stop
 * rules and writes results. */
#ifndef BORG_COORDINATOR_H
#define BORG_COORDINATOR_H

#include "borg/config.h"
#include "borg/error.h"
#include "borg/net.h"

/* Runs cfg's jobs to completion: on the stage ranks of net when it has
 * more than one rank, else on a stage in this process holding every layer.
 * Jobs that cannot run get error result lines; the return value is about
 * the run itself (unreadable model, jobs or results file, a failed rank). */
borg_status coordinator_run(const borg_config *cfg, borg_net *net, borg_err *err);

#endif
