#!/usr/bin/env bash
# Stops what tests/tools/slurm_up.sh DIR started (by the pid files in DIR
# only): jobs still running on it, slurmd, slurmctld, munged. Safe to run
# twice, or on a DIR where nothing runs.
set -uo pipefail
dir=${1:?usage: slurm_down.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)

if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
  # Cancel what is left, so that no job outlives its cluster (KillWait is 30 s).
  export SLURM_CONF=$dir/slurm.conf
  if timeout 10 scancel --full --user=root >/dev/null 2>&1; then
    for _ in $(seq 40); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
fi

stop() { # stop NAME PIDFILE: SIGTERM, then SIGKILL after 10 s
  local pidfile=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$1" "/proc/$pid/comm" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}
stop slurmd "$dir/slurmd.pid"
# Job steps (slurmstepd, started by this slurmd: its SLURM_CONF in their
# environment) outlive slurmd: end them and whatever they still run.
descendants() {
  local kid
  for kid in $(pgrep -P "$1" 2>/dev/null); do descendants "$kid"; echo "$kid"; done
}
for pid in $(pgrep -x slurmstepd 2>/dev/null); do
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$dir/slurm.conf"; then
    kill -9 $(descendants "$pid") "$pid" 2>/dev/null
  fi
done
stop slurmctld "$dir/slurmctld.pid"
stop munged "$dir/munge/munged.pid"
exit 0
