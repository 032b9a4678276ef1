/* Rank 0: reads jobs, tokenizes, schedules micro-batches, applies stop
 * rules and writes results. */
#ifndef BORG_COORDINATOR_H
#define BORG_COORDINATOR_H

#include "borg/config.h"
#include "borg/error.h"

/* Runs cfg's jobs to completion in this process, every layer on one local
 * stage. Jobs that cannot run get error result lines; the return value is
 * about the run itself (unreadable model, jobs or results file). */
borg_status coordinator_run(const borg_config *cfg, borg_err *err);

#endif
