/* Where the coordinator's micro-batches run: pipelines of stage ranks,
 * reached over a net (MPI, or the in-process pair of a single-process
 * run: the same stage loop either way). The coordinator submits batches
 * to a pipeline and waits for the sampled tokens to come back, up to
 * exec_depth batches in flight per pipeline. */
#ifndef BORG_EXEC_H
#define BORG_EXEC_H

#include "borg/batch.h"
#include "borg/error.h"
#include "borg/frame.h"
#include "borg/gguf.h"
#include "borg/net.h"
#include "borg/spec.h"
#include "borg/trace.h"

typedef struct borg_exec borg_exec;

typedef struct {
    int pipe;
    int64_t batch_id;
    int retry; /* the batch was damaged on the way: submit it again */
    int n;
    const batch_result *results; /* valid until the next exec call, as are rows and row_data */
    int n_rows, dim;
    const batch_row *rows; /* final hidden states of embed sequences' tokens */
    const float *row_data; /* n_rows x dim */
} exec_done;

/* Sends the run spec to every stage rank of its topology and waits for
 * each to report ready (or fail): a stage that loaded other layers, opened
 * another model file or was asked for another activation mode stops the
 * run before anything is computed (BORG_EINPUT, naming the rank, its host
 * and the difference; spec_check_ready). */
borg_status exec_create(borg_net *net, const borg_spec *spec, borg_exec **out, borg_err *err);

int exec_pipes(const borg_exec *e);
int exec_depth(const borg_exec *e);

borg_status exec_submit(borg_exec *e, int pipe, const borg_batch *b, borg_err *err);
borg_status exec_wait(borg_exec *e, exec_done *done, borg_err *err);

/* With --trace: the batch spans stages send go to t (trace.h). */
void exec_set_trace(borg_exec *e, borg_trace *t);

/* The latest statistics each stage rank sent while running (every few
 * seconds; zeroed until the first), *n of them in rank order. */
const stage_stats *exec_live_stats(const borg_exec *e, int *n);

/* Damaged frames this rank received. */
int64_t exec_crc_errors(const borg_exec *e);

/* Stops the stages and collects their statistics: *stats (malloc'd, one
 * per stage) and *n. */
borg_status exec_finish(borg_exec *e, stage_stats **stats, int *n, borg_err *err);
void exec_free(borg_exec *e);

#endif
