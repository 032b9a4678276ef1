#include "borg/topology.h"

borg_status topology_resolve(int world, int replicas, int stages, borg_topology *t, borg_err *err)
{
    const int given_replicas = replicas, given_stages = stages;
    t->world = world;
    t->spares = 0;
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
    /* Ranks past replicas x stages are spares only when both were asked
     * for: otherwise a miscounted -np would leave ranks idle unnoticed. */
    int spares_asked = given_replicas && given_stages;
    if (replicas < 1 || stages < 1 || replicas * stages > workers || (!spares_asked && replicas * stages != workers))
        return borg_fail(err, BORG_EUSAGE,
                         "%d ranks cannot form %d replica(s) of %d stage(s): need 1 + replicas x stages ranks "
                         "(more are spares when both --replicas and --stages are given)",
                         world, replicas, stages);
    t->replicas = replicas;
    t->stages = stages;
    t->spares = workers - replicas * stages;
    return BORG_OK;
}

void topology_after_failure(int world, const borg_topology *before, int max_stages, borg_topology *after)
{
    after->world = world;
    after->spares = 0;
    if (world <= 1) {
        after->replicas = 0;
        after->stages = 1;
        return;
    }
    /* Stages are how the model fits in memory, replicas how the run
     * scales: while one whole pipeline of the old length can be formed,
     * the pipelines keep their length and a replica is lost, the ranks
     * left over waiting as spares; with fewer survivors, one pipeline
     * over all of them. No stage without a layer. */
    int workers = world - 1, p = before->stages < max_stages ? before->stages : max_stages;
    int r = p >= 1 ? workers / p : 0, most = before->replicas > 1 ? before->replicas : 1;
    if (r > most)
        r = most;
    if (r < 1) {
        r = 1;
        p = workers < max_stages ? workers : max_stages;
    }
    after->replicas = r;
    after->stages = p;
    after->spares = workers - r * p;
}
