/* Moving frames between ranks over MPI point-to-point.
 *
 * Sends are non-blocking: net_send takes the frame's buffer (swapping in a
 * spare) and returns at once; a bounded number may be outstanding. A rank
 * waiting for a frame polls with short sleeps rather than blocking inside
 * MPI, whose progress loop would keep a core busy that the compute threads
 * of this or another rank need. */
#ifndef BORG_NET_H
#define BORG_NET_H

#include "borg/error.h"
#include "borg/frame.h"

typedef struct borg_net borg_net;

/* Joins the MPI job when the process was started by an MPI launcher
 * (mpirun, srun); otherwise returns a single-rank net without MPI. */
borg_status net_init(int *argc, char ***argv, borg_net **out, borg_err *err);
/* Two ends of a two-rank job inside this process: *a is rank 0, *b rank
 * 1, joined by an in-process queue instead of MPI, so that a stage on a
 * thread of rank 0's process runs the same loop as a stage rank. When one
 * end is finalized the other's receive returns BORG_EPEER. */
borg_status net_pair(borg_net **a, borg_net **b, borg_err *err);

/* Waits for outstanding sends, then leaves MPI; exit_code is what the
 * process will exit with (used if leaving MPI hangs after a failure). */
void net_finalize(borg_net *n, int exit_code);

/* Ends every rank of the job at once (after a failure that leaves ranks
 * waiting on each other); returns only without MPI. */
void net_abort(borg_net *n, int code);

int net_rank(const borg_net *n);
int net_size(const borg_net *n);

/* Collective over every rank: the compute threads a rank should use when
 * --threads is not given. A rank left unbound by the launcher (or bound to
 * a whole package) sees every CPU of its node, and so do the other ranks
 * there: each of them starting that many threads would oversubscribe the
 * node several times over. So the CPUs this rank may use are divided among
 * the ranks of its node that compute (computes != 0) and may use any of the
 * same CPUs. A rank bound to its own cores keeps them all. At least 1. */
borg_status net_default_threads(borg_net *n, int computes, int *threads, borg_err *err);

/* Sends f's frame to dest. f is left holding a spare buffer to reuse. */
borg_status net_send(borg_net *n, int dest, frame_buf *f, borg_err *err);

/* Receives the next frame from any rank into f (grown as needed); *src
 * gets the sender. Waits at most timeout_s seconds (< 0: no limit);
 * returns BORG_EINCOMPLETE when the time runs out. */
borg_status net_recv(borg_net *n, frame_buf *f, int *src, double timeout_s, borg_err *err);

/* Waits until every send made so far has completed. */
borg_status net_flush(borg_net *n, borg_err *err);

/* Sends, receives and flushes return BORG_EPEER when a rank of the job has
 * failed, which only an MPI with ULFM (Open MPI 5 run with
 * `mpirun --with-ft ulfm`) reports; others end the whole job instead.
 * 1 when this build can recover from that. */
int net_can_recover(const borg_net *n);

/* After BORG_EPEER, on every surviving rank: revokes the communicator so
 * every survivor learns of the failure, shrinks it to the survivors
 * (keeping their order, so rank 0 stays rank 0 while it lives), and agrees
 * on the result. *coordinator_lost is set when old rank 0 was among the
 * failed. failed (room for the old size) gets the world ranks (as the
 * launcher numbered them) of the ranks that failed. */
borg_status net_recover(borg_net *n, int *failed, int *n_failed, int *coordinator_lost, borg_err *err);

#endif
