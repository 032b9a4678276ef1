/* Which rank does what: rank 0 coordinates; ranks 1..R*P are R replicas
 * (independent pipelines) of P stages each, replica r's stage s being rank
 * 1 + r*P + s; any ranks after those are spares, which wait for a failure
 * to give them a place. */
#ifndef BORG_TOPOLOGY_H
#define BORG_TOPOLOGY_H

#include "borg/error.h"

typedef struct {
    int world;    /* ranks in the job */
    int replicas; /* R; 0 when rank 0 runs every layer itself */
    int stages;   /* P */
    int spares;   /* ranks after the replicas' */
} borg_topology;

/* From the job size and the optional --replicas / --stages (0: not given).
 * Default: one replica over every stage rank. With both given, ranks past
 * 1 + replicas x stages are spares. */
borg_status topology_resolve(int world, int replicas, int stages, borg_topology *t, borg_err *err);

/* The shape survivors take after a failure left `world` ranks: pipelines
 * of the old length (at most max_stages, the model's layers), at most as
 * many as before, while one can be formed, the rest spares; else one
 * pipeline over every survivor. */
void topology_after_failure(int world, const borg_topology *before, int max_stages, borg_topology *after);

static inline int topology_rank(const borg_topology *t, int replica, int stage)
{
    return 1 + replica * t->stages + stage;
}

#endif
