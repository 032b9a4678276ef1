# slurm/borg-slurm-run.sh: what slurm/borg-infer.sbatch and
# slurm/borg-infer-multinode.sbatch share, sourced by them (not run on its
# own): one segment of a batch through build/borg-mpirun, and its
# continuation. slurm/README.md describes the knobs.
#
# The sbatch script sets, before calling borg_main "$@":
#   borg_np       the number of MPI ranks (rank 0 plus the stage ranks)
#   borg_layout   an array of mpirun arguments that place and bind them
#   borg_threads  --threads of each rank (empty: borg-infer's own default)
#
# A segment ends in one of four ways:
#   exit 0  every job has its line: done.
#   exit 2  bad input (no jobs file, no model, a bad option): not continued.
#   exit 3  incomplete and resumable (the warning signal before the time
#           limit, a preemption, a stage lost without ULFM): the job
#           continues with --resume, by `scontrol requeue` (same job id,
#           same log, after Slurm's requeue delay), or where Slurm refuses
#           that, by a new job that depends on this one
#           (sbatch --dependency=afterany:<this job>), until the batch is
#           done, at most BORG_MAX_CONTINUATIONS times, and not after
#           BORG_MAX_STALLED segments in a row that added no line.
#   other   the run failed: not continued.
# A job cancelled by its user (scancel) is not continued either.

borg_log() { echo "borg-slurm: $(date '+%F %T') $*" >&2; }

borg_abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

borg_lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# borg_job_field NAME: a field of `scontrol show job` for this job (empty if unknown).
borg_job_field() {
  scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

# How many segments at the end of the segments file, in this chain, added no line.
borg_stalled() {
  [ -f "$borg_segments" ] || { echo 0; return; }
  awk -v chain="chain=$borg_chain" '
    $0 !~ ("(^| )" chain "( |$)") { next }
    { added = 0; for (i = 1; i <= NF; i++) if ($i ~ /^added=/) added = substr($i, 7) + 0
      stalled = (added == 0) ? stalled + 1 : 0 }
    END { print stalled + 0 }' "$borg_segments"
}

# borg_continue WHY: continue the batch after this segment. 0 if a
# continuation is on its way, 1 if not (the limit reached, or Slurm refused).
borg_continue() {
  local why=$1 next=$((borg_done_continuations + 1)) stalled
  if [ "$next" -gt "$borg_max_continuations" ]; then
    borg_log "$why, but this batch has been continued $borg_done_continuations times (BORG_MAX_CONTINUATIONS=$borg_max_continuations):" \
      "not continuing; $borg_results keeps every finished job: submit the same command again to go on"
    return 1
  fi
  stalled=$(borg_stalled)
  # Asked for while the segment still runs (SIGTERM): it counts too, if it added nothing.
  [ -z "$borg_recorded" ] && [ "$(borg_lines "$borg_results")" = "$borg_before" ] && stalled=$((stalled + 1))
  if [ "$stalled" -ge "$borg_max_stalled" ]; then
    borg_log "$why, but the last $stalled segments added no result line (BORG_MAX_STALLED=$borg_max_stalled): not continuing;" \
      "is a job longer than the time limit (less the drain time)? Raise --time and submit again"
    return 1
  fi
  if [ "$borg_how" = none ]; then
    borg_log "$why; BORG_CONTINUE=none: submit the same command again to finish $borg_results"
    return 1
  fi
  borg_continuing=1
  if [ "$borg_how" = requeue ]; then
    local out
    # Logged before the call: Slurm may end this script before scontrol returns.
    borg_log "$why: requeueing job $SLURM_JOB_ID to continue with --resume (continuation $next of at most $borg_max_continuations;" \
      "it waits Slurm's requeue delay first); results in $borg_results"
    if out=$(scontrol requeue "$SLURM_JOB_ID" 2>&1); then
      return 0
    fi
    borg_log "scontrol requeue $SLURM_JOB_ID refused (${out//$'\n'/ }): submitting a continuation instead"
  fi
  borg_resubmit "$why" "$next" && return 0
  borg_continuing=
  return 1
}

# A new job, after this one, with this one's resources: the script's own
# #SBATCH lines, the options Slurm reports for this job (time, partition,
# nodes, tasks, CPUs, log files, working directory) and BORG_SIGNAL for
# --signal; SBATCH_* variables in the environment count as before.
borg_resubmit() {
  local why=$1 next=$2 info id v opts=() unset=()
  info=" $(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null) "
  field() { sed -n "s/.* $1=\([^ ]*\) .*/\1/p" <<<"$info" | head -n 1; }
  opts+=(--parsable --dependency="afterany:$SLURM_JOB_ID" --open-mode=append)
  v=$(field JobName) && [ -n "$v" ] && opts+=(--job-name="$v")
  v=$(field Partition) && [ -n "$v" ] && opts+=(--partition="$v")
  v=$(field TimeLimit) && [ -n "$v" ] && [ "$v" != UNLIMITED ] && opts+=(--time="$v")
  v=$(field Account) && [ -n "$v" ] && [ "$v" != "(null)" ] && opts+=(--account="$v")
  v=$(field QOS) && [ -n "$v" ] && [ "$v" != "(null)" ] && opts+=(--qos="$v")
  v=$(field StdOut) && [ -n "$v" ] && opts+=(--output="$v")
  v=$(field StdErr) && [ -n "$v" ] && opts+=(--error="$v")
  v=$(field WorkDir) && [ -n "$v" ] && opts+=(--chdir="$v")
  [ -n "${SLURM_JOB_NUM_NODES:-}" ] && opts+=(--nodes="$SLURM_JOB_NUM_NODES")
  [ -n "${SLURM_NTASKS:-}" ] && opts+=(--ntasks="$SLURM_NTASKS")
  [ -n "${SLURM_NTASKS_PER_NODE:-}" ] && opts+=(--ntasks-per-node="$SLURM_NTASKS_PER_NODE")
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && opts+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  [ -n "${BORG_SIGNAL:-}" ] && opts+=(--signal="$BORG_SIGNAL")
  # This job's SLURM_* variables would read as options of the new one.
  for v in $(compgen -e | grep '^SLURM_' | grep -v '^SLURM_CONF$'); do unset+=(-u "$v"); done
  if id=$(env "${unset[@]}" BORG_CONTINUATION="$next" BORG_CHAIN="$borg_chain" BORG_SLURM_DIR="$borg_slurm_dir" \
      sbatch "${opts[@]}" "$borg_script" "$borg_jobs" "$borg_results" 2>&1); then
    borg_log "$why: submitted job ${id%%;*} to continue with --resume after job $SLURM_JOB_ID ends" \
      "(continuation $next of at most $borg_max_continuations); results in $borg_results"
    return 0
  fi
  borg_log "$why, but sbatch refused the continuation (${id//$'\n'/ }): submit the same command again to finish $borg_results"
  return 1
}

borg_on_signal() {
  local sig=$1 reason
  [ -n "$borg_continuing" ] && return # our own requeue ends this segment
  if [ "$sig" = TERM ]; then
    borg_termed=1
    reason="$(borg_job_field Reason) $(borg_job_field JobState)"
    # SIGTERM: the time limit reached, a preemption, or scancel. Slurm
    # sends SIGKILL KillWait seconds later, so a continuation is asked for
    # now, before the drain; after a scancel there is none.
    case $reason in
      *TimeLimit* | *TIMEOUT* | *Preempt* | *PREEMPT*)
        borg_log "SIGTERM ($reason): passing it on; the ranks drain until Slurm kills them"
        [ -n "$borg_continued" ] || { borg_continue "stopped by Slurm ($reason)" && borg_continued=1; } ;;
      *) borg_log "SIGTERM (${reason% }, e.g. scancel): passing it on; this batch will not be continued" ;;
    esac
  else
    borg_warned=1
    borg_log "SIG$sig (the warning before the time limit, or scancel --signal): rank 0 stops reading jobs and drains for up to $borg_drain_s s"
  fi
  [ -n "$borg_child" ] && kill -s "$sig" "$borg_child" 2>/dev/null
}

borg_main() {
  borg_jobs=$(borg_abspath "${1:-inputs/example.jsonl}")
  borg_results=$(borg_abspath "${2:-results-${SLURM_JOB_ID:-local}.jsonl}")
  borg_segments=$borg_results.segments
  borg_script=$0
  borg_build=$(borg_abspath "${BORG_BUILD:-build}")
  borg_model=$(borg_abspath "${BORG_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}")
  borg_drain_s=${BORG_DRAIN_S:-90}
  borg_max_continuations=${BORG_MAX_CONTINUATIONS:-20}
  borg_max_stalled=${BORG_MAX_STALLED:-3}
  borg_how=${BORG_CONTINUE:-requeue}
  borg_chain=${BORG_CHAIN:-${SLURM_JOB_ID:-local}}
  borg_done_continuations=$((${BORG_CONTINUATION:-0} + ${SLURM_RESTART_COUNT:-0}))
  borg_child='' borg_warned='' borg_termed='' borg_continuing='' borg_continued='' borg_recorded=''
  case $borg_how in requeue | resubmit | none) ;; *)
    borg_log "BORG_CONTINUE=$borg_how: expected requeue, resubmit or none"
    exit 2 ;;
  esac

  local before after start rc segment=$((borg_done_continuations + 1)) logfile
  before=$(borg_lines "$borg_results")
  borg_before=$before
  logfile=$(borg_job_field StdOut)
  borg_log "job ${SLURM_JOB_ID:-?} segment $segment (continuations so far $borg_done_continuations, at most $borg_max_continuations)" \
    "on ${SLURM_JOB_NODELIST:-$(hostname)}: $borg_np ranks, jobs $borg_jobs"
  borg_log "results: $borg_results ($before lines so far); segments: $borg_segments; log: ${logfile:-stdout}"
  local f
  for f in "$borg_build/borg-mpirun" "$borg_build/borg-infer"; do
    [ -x "$f" ] || { borg_log "$f not found: build the project (tests/setup.sh) or set BORG_BUILD"; exit 2; }
  done
  [ -f "$borg_model" ] || { borg_log "model $borg_model not found (BORG_MODEL)"; exit 2; }
  [ -f "$borg_jobs" ] || { borg_log "jobs file $borg_jobs not found"; exit 2; }
  mkdir -p "$(dirname "$borg_results")"

  # ULFM: a failed stage rank is survived instead of ending the job. The
  # heartbeat detector runs on its own thread, so a rank busy computing
  # still answers, with a generous timeout; BORG_FT=none runs without.
  local ft=()
  case ${BORG_FT:-ulfm} in
    ulfm)
      ft=(--with-ft ulfm)
      case ${BORG_FT_DETECTOR:-thread} in
        thread) ft+=(--mca mpi_ft_detector true --mca mpi_ft_detector_thread true) ;;
        main) ft+=(--mca mpi_ft_detector true --mca mpi_ft_detector_thread false) ;;
        off) ft+=(--mca mpi_ft_detector false) ;;
      esac
      [ "${BORG_FT_DETECTOR:-thread}" = off ] ||
        ft+=(--mca mpi_ft_detector_timeout "${BORG_FT_TIMEOUT:-60}" --mca mpi_ft_detector_period "${BORG_FT_PERIOD:-5}")
      ;;
    none) ;;
    *) borg_log "BORG_FT=${BORG_FT}: expected ulfm or none"; exit 2 ;;
  esac
  local threads=()
  [ -n "${borg_threads:-}" ] && threads=(--threads "$borg_threads")
  local extra_mpi=() extra_run=()
  read -r -a extra_mpi <<<"${BORG_MPIRUN_ARGS:-}"
  read -r -a extra_run <<<"${BORG_INFER_ARGS:-}"
  # --resume keeps the lines already written (none on a first run: a
  # results file that does not exist yet is simply created).
  local cmd=("$borg_build/borg-mpirun" "${ft[@]}" -np "$borg_np" "${borg_layout[@]}" "${extra_mpi[@]}"
    "$borg_build/borg-infer" run --model "$borg_model" --jobs "$borg_jobs" --out "$borg_results" --resume
    --drain-s "$borg_drain_s" "${threads[@]}" "${extra_run[@]}")
  export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
  borg_log "running: ${cmd[*]}"

  local sig
  for sig in USR1 USR2 INT HUP TERM; do trap "borg_on_signal $sig" "$sig"; done
  start=$SECONDS
  "${cmd[@]}" &
  borg_child=$!
  while :; do
    wait "$borg_child"
    rc=$?
    kill -0 "$borg_child" 2>/dev/null && continue
    # It has ended; a wait cut short by a signal has not told its status yet.
    wait "$borg_child" 2>/dev/null
    local late=$?
    [ "$late" != 127 ] && rc=$late
    break
  done
  borg_recorded=1
  borg_child=
  after=$(borg_lines "$borg_results")
  # A warning that reached a rank before it could drain (very early in a
  # segment) ends the run some other way; it is as resumable as exit 3.
  if [ -n "$borg_warned$borg_termed" ] && [ "$rc" != 0 ] && [ "$rc" != 2 ] && [ "$rc" != 3 ]; then
    borg_log "the run ended with exit $rc after a stop signal: treating it as incomplete (3)"
    rc=3
  fi
  # Exit 0 means every job has its line; for a JSONL jobs file that is
  # checked here too (a line per non-blank job line), so that nothing can
  # end a batch early.
  if [ "$rc" = 0 ] && [ "$(head -c 4096 "$borg_jobs" | tr -d ' \t\r\n' | head -c 1)" != "[" ]; then
    local want have
    want=$(grep -c '[^[:space:]]' "$borg_jobs")
    have=$(grep -c '[^[:space:]]' "$borg_results" 2>/dev/null)
    if [ "${have:-0}" -lt "$want" ]; then
      borg_log "the run exited 0 but $borg_results has $have result lines for $want jobs: treating it as incomplete (3)"
      rc=3
    fi
  fi
  echo "$(date '+%F %T') job=${SLURM_JOB_ID:-local} segment=$segment chain=$borg_chain exit=$rc lines=$after added=$((after - before)) seconds=$((SECONDS - start)) nodes=${SLURM_JOB_NODELIST:-$(hostname)}" >>"$borg_segments"
  borg_log "segment $segment ended with exit $rc after $((SECONDS - start)) s: $borg_results has $after lines (+$((after - before)))"

  case $rc in
    0)
      borg_log "done: every job of $borg_jobs has its line in $borg_results (summary: $borg_results.summary.json)"
      exit 0 ;;
    2)
      borg_log "bad input (exit 2): not continued; see the errors above"
      exit 2 ;;
    3)
      if [ -n "$borg_continued" ]; then
        borg_log "incomplete (exit 3); the continuation was asked for when Slurm stopped this segment"
      elif [ -n "$borg_termed" ]; then
        : # cancelled: said so when the signal came
      else
        borg_continue "incomplete (exit 3)"
      fi
      exit 3 ;;
    *)
      borg_log "the run failed (exit $rc): not continued; $borg_results keeps every finished job (--resume)"
      exit "$rc" ;;
  esac
}
