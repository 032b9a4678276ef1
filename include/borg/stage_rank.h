/* The life of a stage rank (1..R*P): wait for the run spec from rank 0,
 * build its stage from it and say ready, then receive a batch, run it,
 * pass it on (or sample and return the tokens to the coordinator), until
 * told to shut down; after a failed rank, rejoin and wait for the next
 * spec. The single-process run runs the same loop on a thread. */
#ifndef BORG_STAGE_RANK_H
#define BORG_STAGE_RANK_H

#include "borg/config.h"
#include "borg/error.h"
#include "borg/net.h"

borg_status stage_rank_main(const borg_config *cfg, borg_net *net, borg_err *err);

/* A stage rank on a thread of this process, reached through the in-process
 * pair whose rank-0 end goes to *coordinator_end (net_pair). */
typedef struct stage_thread stage_thread;

borg_status stage_thread_start(const borg_config *cfg, borg_net **coordinator_end, stage_thread **out, borg_err *err);
/* Hangs up coordinator_end (finalizing it) and waits for the thread. */
void stage_thread_join(stage_thread *t, borg_net *coordinator_end);

#endif
