/* Which ranks do what, at the start and after failures: spares only when
 * asked for, no stage without a layer, pipelines keep their length while
 * one whole pipeline can be formed. */
#include "borg/topology.h"
#include "check.h"

static borg_topology after(int world, int replicas, int stages, int max_stages)
{
    borg_topology before = {.world = 0, .replicas = replicas, .stages = stages}, t;
    topology_after_failure(world, &before, max_stages, &t);
    return t;
}

#define CHECK_SHAPE(t, r, p, s)                                                                                  \
    CHECKF((t).replicas == (r) && (t).stages == (p) && (t).spares == (s), "got %d x %d + %d, want %d x %d + %d", \
           (t).replicas, (t).stages, (t).spares, r, p, s)

int main(void)
{
    borg_err err;
    borg_topology t;
    CHECK(topology_resolve(1, 0, 0, &t, &err) == BORG_OK && t.replicas == 0);
    CHECK(topology_resolve(1, 2, 0, &t, &err) == BORG_EUSAGE);
    CHECK(topology_resolve(5, 0, 0, &t, &err) == BORG_OK);
    CHECK_SHAPE(t, 1, 4, 0);
    CHECK(topology_resolve(5, 2, 0, &t, &err) == BORG_OK);
    CHECK_SHAPE(t, 2, 2, 0);
    CHECKF(topology_resolve(6, 2, 0, &t, &err) == BORG_EUSAGE,
           "an odd rank out is refused unless spares are asked for");
    CHECK(topology_resolve(6, 0, 2, &t, &err) == BORG_EUSAGE);
    CHECK(topology_resolve(7, 2, 2, &t, &err) == BORG_OK);
    CHECK_SHAPE(t, 2, 2, 2);
    CHECK(topology_resolve(4, 2, 2, &t, &err) == BORG_EUSAGE);
    CHECK_CONTAINS(err.msg, "spares");

    /* A spare takes the failed rank's place: the shape stays. */
    t = after(6, 2, 2, 30);
    CHECK_SHAPE(t, 2, 2, 1);
    /* A replica is lost; the odd rank waits as a spare. */
    t = after(4, 2, 2, 30);
    CHECK_SHAPE(t, 1, 2, 1);
    t = after(31, 10, 3, 30);
    CHECK_SHAPE(t, 10, 3, 0);
    t = after(30, 10, 3, 30);
    CHECK_SHAPE(t, 9, 3, 2);
    /* Fewer survivors than stages: one pipeline over all of them. */
    t = after(4, 1, 4, 30);
    CHECK_SHAPE(t, 1, 3, 0);
    /* Never more stages than layers. */
    t = after(32, 1, 31, 30);
    CHECK_SHAPE(t, 1, 30, 1);
    t = after(25, 1, 30, 18);
    CHECK_SHAPE(t, 1, 18, 6);
    /* No stage rank left: rank 0 runs every layer. */
    t = after(1, 1, 2, 30);
    CHECK(t.replicas == 0 && t.stages == 1);
    return check_report();
}
