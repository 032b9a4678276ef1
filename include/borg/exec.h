/* Where the coordinator's micro-batches run: on a stage inside this
 * process, or on pipelines of stage ranks reached over MPI. Either way the
 * coordinator submits batches to a pipeline and waits for the sampled
 * tokens to come back, up to exec_depth batches in flight per pipeline. */
#ifndef BORG_EXEC_H
#define BORG_EXEC_H

#include "borg/batch.h"
#include "borg/error.h"
#include "borg/frame.h"
#include "borg/gguf.h"
#include "borg/net.h"
#include "borg/plan.h"
#include "borg/stage.h"
#include "borg/topology.h"

typedef struct borg_exec borg_exec;

typedef struct {
    int pipe;
    int64_t batch_id;
    int retry;                   /* the batch was damaged on the way: submit it again */
    int n;
    const batch_result *results; /* valid until the next exec call */
} exec_done;

borg_status exec_create_local(const gguf_file *f, const stage_config *sc, borg_exec **out, borg_err *err);

/* What rank 0 decided and every stage must have done: the layers of each
 * stage, the model (by fingerprint), the activation mode, the context per
 * sequence. */
typedef struct {
    const borg_plan *plan;
    uint64_t model_hash;
    int q8_activations;
    int32_t slot_ctx;
} exec_expect;

/* Waits for every stage rank to report ready (or fail), and checks what
 * each reports against want: a stage that loaded other layers, another
 * model file or computes in another mode stops the run before anything is
 * computed (BORG_EINPUT, naming the rank, its host and the difference). */
borg_status exec_create_mpi(borg_net *net, const borg_topology *topo, const exec_expect *want, borg_exec **out,
                            borg_err *err);

/* The KV capacity every stage reported: sequences and positions each. */
void exec_kv_capacity(const borg_exec *e, int *slots, int32_t *slot_ctx);

int exec_pipes(const borg_exec *e);
int exec_depth(const borg_exec *e);

borg_status exec_submit(borg_exec *e, int pipe, const borg_batch *b, borg_err *err);
borg_status exec_wait(borg_exec *e, exec_done *done, borg_err *err);

/* Damaged frames this rank received. */
int64_t exec_crc_errors(const borg_exec *e);

/* Stops the stages and collects their statistics: *stats (malloc'd, one
 * per stage) and *n. */
borg_status exec_finish(borg_exec *e, stage_stats **stats, int *n, borg_err *err);
void exec_free(borg_exec *e);

#endif
