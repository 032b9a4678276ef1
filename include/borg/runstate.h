/* How far rank 0 got, for the launcher wrapper (borg-mpirun).
 *
 * Without ULFM, mpirun tears the whole job down when any rank dies and
 * exits with that rank's status (137 for kill -9), which says nothing about
 * the batch. Rank 0 therefore records in the file named by BORG_STATE_FILE
 * (when that variable is set) "started" once MPI has started (every rank
 * is up: Open MPI's start-up sometimes hangs, and the launcher restarts a
 * job that never says so), "running" once the results file is open and
 * "exit N" when it ends (every command). A job torn down while "running" is
 * incomplete and resumable: every finished job's line is already durable;
 * one torn down before it has written nothing, and the launcher starts it
 * again. */
#ifndef BORG_RUNSTATE_H
#define BORG_RUNSTATE_H

#include "borg/error.h"

/* Rank 0, once MPI_Init has returned; fails (EIO) as runstate_running. */
borg_status runstate_started(borg_err *err);

/* Rank 0, after the results file is open. Fails (EIO) only when
 * BORG_STATE_FILE is set and cannot be written: the launcher would then
 * misreport the run's end. */
borg_status runstate_running(borg_err *err);

/* Rank 0, at exit, and every process that exits before MPI starts (help,
 * version, cancel, status, a refused command line); best effort (the
 * process is ending either way). */
void runstate_exit(int exit_code);

#endif
