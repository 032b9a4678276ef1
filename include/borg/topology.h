/* Which rank does what: rank 0 coordinates; ranks 1..R*P are R replicas
 * (independent pipelines) of P stages each, replica r's stage s being rank
 * 1 + r*P + s. */
#ifndef BORG_TOPOLOGY_H
#define BORG_TOPOLOGY_H

#include "borg/error.h"

typedef struct {
    int world;    /* ranks in the job */
    int replicas; /* R; 0 when rank 0 runs every layer itself */
    int stages;   /* P */
} borg_topology;

/* From the job size and the optional --replicas / --stages (0: not given).
 * Default: one replica over every stage rank. */
borg_status topology_resolve(int world, int replicas, int stages, borg_topology *t, borg_err *err);

/* The shape survivors take after a failure left `world` ranks: as many
 * replicas as before if the stage ranks still divide evenly, else the most
 * that do, so that every surviving rank has work. */
void topology_after_failure(int world, const borg_topology *before, borg_topology *after);

static inline int topology_rank(const borg_topology *t, int replica, int stage)
{
    return 1 + replica * t->stages + stage;
}

#endif
