/* What can change a run from outside while it runs: a stop signal (what
 * Slurm sends before a time limit: SIGTERM, SIGUSR1; or SIGINT) and
 * cancellations written into the run directory by `borg-infer cancel`. */
#ifndef BORG_CONTROL_H
#define BORG_CONTROL_H

#include "borg/error.h"

/* Rank 0: a stop signal sets a flag, read by control_stop_requested. */
void control_catch_signals(void);
/* Stage ranks: stop signals are ignored; the coordinator drains and then
 * shuts the stages down, so none dies with work in flight. */
void control_ignore_signals(void);
int control_stop_requested(void);

typedef struct run_control run_control;

/* Watches run_dir/cancel (run_dir is created if missing; NULL: nothing to
 * watch). */
borg_status control_open(const char *run_dir, run_control **out, borg_err *err);
void control_close(run_control *c);

/* Reads ids appended to the cancel file since the last poll (at most every
 * quarter second). */
borg_status control_poll(run_control *c, borg_err *err);
/* 1 if id has been cancelled. */
int control_cancelled(const run_control *c, const char *id);

/* `borg-infer cancel`: appends ids to run_dir/cancel, one write per id. */
borg_status control_request_cancel(const char *run_dir, char *const *ids, int n, borg_err *err);

#endif
