#include "borg/topology.h"

borg_status topology_resolve(int world, int replicas, int stages, borg_topology *t, borg_err *err)
{
    t->world = world;
    if (world == 1) {
        if (replicas > 1 || stages > 1)
            return borg_fail(err, BORG_EUSAGE,
                             "--replicas/--stages need MPI ranks: run under mpirun with 1 + replicas x stages ranks");
        t->replicas = 0;
        t->stages = 1;
        return BORG_OK;
    }
    int workers = world - 1;
    if (!replicas && !stages)
        replicas = 1;
    if (!stages)
        stages = workers / replicas;
    if (!replicas)
        replicas = workers / stages;
    if (replicas < 1 || stages < 1 || replicas * stages != workers)
        return borg_fail(err, BORG_EUSAGE,
                         "%d ranks cannot form %d replica(s) of %d stage(s): need 1 + replicas x stages ranks", world,
                         replicas, stages);
    t->replicas = replicas;
    t->stages = stages;
    return BORG_OK;
}

void topology_after_failure(int world, const borg_topology *before, borg_topology *after)
{
    after->world = world;
    if (world <= 1) {
        after->replicas = 0;
        after->stages = 1;
        return;
    }
    int workers = world - 1, r = before->replicas < workers ? before->replicas : workers;
    while (r > 1 && workers % r)
        r--;
    after->replicas = r < 1 ? 1 : r;
    after->stages = workers / after->replicas;
}
