#!/usr/bin/env bash
# A private one-node Slurm for the tests, without systemd:
#   tests/tools/slurm_up.sh DIR      # prints SLURM_CONF=DIR/slurm.conf
#   tests/tools/slurm_down.sh DIR    # stops everything started here
# DIR (created if absent; anything already running from it is stopped
# first, so running this twice is safe) holds the configuration, its own
# munged (own socket, with /etc/munge/munge.key, created if absent), state,
# spool, pid and log files. slurmctld and slurmd listen on their own ports
# (BORG_SLURM_PORT, default 16817, and the next one; the next free pair is
# taken if those are in use), so a Slurm already on the machine is left
# alone. The node is this machine, as `slurmd -C` sees it. Commands reach
# this Slurm through SLURM_CONF=DIR/slurm.conf.
# BORG_SLURM_CRED_EXPIRE (10 here, Slurm's default 120) is also how long a
# requeued job waits before it may start again. Exit 1, with the daemons'
# logs, if the node is not idle within BORG_SLURM_UP_TIMEOUT s (60).
set -euo pipefail
dir=${1:?usage: slurm_up.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
"$here/slurm_down.sh" "$dir" >/dev/null 2>&1 || true

fail() {
  echo "slurm_up: $*" >&2
  for log in "$dir"/munge/munged.log "$dir"/slurmctld.log "$dir"/slurmd.log; do
    [ -s "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}
for tool in munged slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$tool" >/dev/null || fail "$tool not found (tests/setup.sh installs slurm-wlm and munge)"
done
[ "$(id -u)" = 0 ] || fail "needs root (it starts munged, slurmctld and slurmd)"

# munge: the key (as Debian's package makes it), and our own munged on a
# socket in DIR. munged runs as the key's owner and checks that the paths
# to its files are not writable by others.
key=/etc/munge/munge.key
if [ ! -s "$key" ]; then
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then mungekey -c -f -k "$key"; else dd if=/dev/urandom of="$key" bs=1 count=1024 status=none; fi
  if id munge >/dev/null 2>&1; then chown munge:munge "$key"; fi
  chmod 0400 "$key"
fi
owner=$(stat -c %U "$key")
chmod 0755 "$dir"
rm -rf "$dir/munge" "$dir/state" "$dir/spool" "$dir"/*.log "$dir"/*.pid
mkdir -m 0755 "$dir/munge" "$dir/state" "$dir/spool"
chown "$owner" "$dir/munge"
sock=$dir/munge/munge.socket
# munged checks each directory above its socket: none may be writable by others without the sticky bit.
if ! runuser -u "$owner" -- munged --socket="$sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"; then
  fail "munged did not start (a directory above $dir writable by others? its socket path must also stay under 108 characters)"
fi
munge -n -S "$sock" | unmunge -S "$sock" >/dev/null || fail "munge credentials do not round-trip through $sock"

# Two free ports for slurmctld and slurmd.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${BORG_SLURM_PORT:-16817}
for _ in $(seq 20); do
  port_busy "$port" || port_busy $((port + 1)) || break
  port=$((port + 10))
done

node=$(hostname -s)
# slurmd -C: "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
hw=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
[ -n "$hw" ] || fail "slurmd -C told nothing about this machine"
cat >"$dir/slurm.conf" <<EOF
# Written by tests/tools/slurm_up.sh: a private one-node cluster.
ClusterName=borgtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=${BORG_SLURM_CRED_EXPIRE:-10}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
JobRequeue=1
MinJobAge=30
KillWait=30
OverTimeLimit=0
MessageTimeout=10
InactiveLimit=0
Waittime=0
SlurmdTimeout=300
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF" -c -i || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$node" || fail "slurmd did not start"
end=$((SECONDS + ${BORG_SLURM_UP_TIMEOUT:-60}))
state=
while [ $SECONDS -lt $end ]; do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
  case $state in idle*) break ;; esac
  sleep 1
done
case $state in
  idle*) ;;
  *) fail "node $node is '${state:-unknown}', not idle, after ${BORG_SLURM_UP_TIMEOUT:-60} s" ;;
esac
echo "SLURM_CONF=$SLURM_CONF"
