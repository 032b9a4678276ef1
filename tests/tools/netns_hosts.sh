#!/usr/bin/env bash
# netns_hosts.sh: two "hosts" on one machine for multi-host MPI tests: two
# network namespaces joined by a veth pair, each with its own hostname (a
# UTS namespace per process started in it) and its own TMPDIR. Root only.
#
#   netns_hosts.sh up DIR [TAG]   make hosts a and b; write DIR/hosts.env and DIR/agent
#   netns_hosts.sh run DIR a|b CMD ARGS...   run CMD on host a or b (arguments kept as they are)
#   netns_hosts.sh cut DIR        take host b's end of the link down (ip link set ... down)
#   netns_hosts.sh mend DIR       bring it up again
#   netns_hosts.sh down DIR       end every process left in either namespace, delete both
#
# TAG (default: the caller's pid) makes the names unique: namespaces
# borg-a-TAG and borg-b-TAG, hostnames the same. `up` first deletes
# namespaces of this pattern whose TAG is the pid of a process that no
# longer exists (left behind by a run that was killed). The link is
# 10.213.77.0/24 (BORG_NETNS_NET overrides the first three octets): a is
# .1 on veth-a, b is .2 on veth-b. The addresses exist only inside the
# namespaces, so they clash with nothing outside.
#
# DIR/agent is Open MPI's rsh agent (--mca plm_rsh_agent DIR/agent): it is
# called as `agent HOST WORDS...`, HOST an address or hostname of a or b,
# and runs WORDS as a remote shell would (joined by spaces, read by sh) in
# that host's network namespace, under a fresh UTS namespace with the
# host's hostname (two hosts with one hostname collide in PMIx:
# PMIX_ERR_UNREACH) and with TMPDIR set to the host's own directory
# (DIR/a or DIR/b), where PRRTE and PMIx keep their session directories.

# shellcheck disable=SC2153 # NS_A, NS_B, ... come from DIR/hosts.env (load)
set -euo pipefail

die() { echo "netns_hosts.sh: $*" >&2; exit 1; }
usage() { sed -n '2,10p' "$0" >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2

load() {
  [ -f "$dir/hosts.env" ] || die "$dir/hosts.env not found: run \`netns_hosts.sh up $dir\` first"
  # shellcheck disable=SC1091
  . "$dir/hosts.env"
}

# runs "$@" in namespace $1 with hostname $2 and TMPDIR $3
in_host() {
  local ns=$1 name=$2 tmp=$3
  shift 3
  # shellcheck disable=SC2016 # expanded by the inner sh
  exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$1" && TMPDIR=$2 && export TMPDIR && shift 2 && exec "$@"' \
    netns-host "$name" "$tmp" "$@"
}

case $cmd in
  up)
    [ "$(id -u)" = 0 ] || die "needs root (ip netns, unshare --uts); running as uid $(id -u)"
    command -v ip >/dev/null || die "ip (iproute2) not found"
    command -v unshare >/dev/null || die "unshare (util-linux) not found"
    tag=${1:-$PPID}
    net=${BORG_NETNS_NET:-10.213.77}
    # namespaces of killed runs
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^borg-[ab]-[0-9]+$' || true); do
      owner=${ns##*-}
      [ "$owner" = "$tag" ] || ! kill -0 "$owner" 2>/dev/null || continue
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns delete "$ns" 2>/dev/null || true
    done
    mkdir -p "$dir/a" "$dir/b"
    ns_a=borg-a-$tag ns_b=borg-b-$tag
    cat >"$dir/hosts.env" <<EOF
NS_A=$ns_a
NS_B=$ns_b
NAME_A=$ns_a
NAME_B=$ns_b
ADDR_A=$net.1
ADDR_B=$net.2
NET=$net.0/24
IF_A=veth-a
IF_B=veth-b
TMP_A=$dir/a
TMP_B=$dir/b
AGENT=$dir/agent
EOF
    ip netns add "$ns_a" || die "ip netns add $ns_a failed (is this a container without CAP_SYS_ADMIN?)"
    if ! ip netns add "$ns_b"; then
      ip netns delete "$ns_a"
      die "ip netns add $ns_b failed"
    fi
    {
      ip link add veth-a netns "$ns_a" type veth peer name veth-b netns "$ns_b" &&
        ip -n "$ns_a" link set lo up && ip -n "$ns_b" link set lo up &&
        ip -n "$ns_a" addr add "$net.1/24" dev veth-a && ip -n "$ns_b" addr add "$net.2/24" dev veth-b &&
        ip -n "$ns_a" link set veth-a up && ip -n "$ns_b" link set veth-b up
    } || {
      ip netns delete "$ns_a" 2>/dev/null
      ip netns delete "$ns_b" 2>/dev/null
      die "could not make the veth link between $ns_a and $ns_b"
    }
    cat >"$dir/agent" <<EOF
#!/bin/sh
# Open MPI's rsh agent for the hosts of $dir (see tests/tools/netns_hosts.sh).
host=\$1
shift
case \$host in
  $net.1 | $ns_a) ns=$ns_a tmp=$dir/a ;;
  $net.2 | $ns_b) ns=$ns_b tmp=$dir/b ;;
  *) echo "netns agent: no host \$host (known: $net.1 $ns_a, $net.2 $ns_b)" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c 'hostname "\$1" && TMPDIR=\$2 && export TMPDIR && shift 2 && eval "\$*"' \\
  netns-agent "\$ns" "\$tmp" "\$@"
EOF
    chmod +x "$dir/agent"
    # both ends up (carrier on) before anyone uses the link
    for _ in $(seq 50); do
      ip -n "$ns_a" -br link show veth-a | grep -qw UP && ip -n "$ns_b" -br link show veth-b | grep -qw UP && break
      sleep 0.1
    done
    echo "netns_hosts.sh: hosts $ns_a ($net.1) and $ns_b ($net.2) up; agent $dir/agent"
    ;;
  run)
    load
    [ $# -ge 2 ] || usage
    host=$1
    shift
    case $host in
      a) in_host "$NS_A" "$NAME_A" "$TMP_A" "$@" ;;
      b) in_host "$NS_B" "$NAME_B" "$TMP_B" "$@" ;;
      *) die "host $host: expected a or b" ;;
    esac
    ;;
  cut)
    load
    ip -n "$NS_B" link set "$IF_B" down
    ;;
  mend)
    load
    ip -n "$NS_B" link set "$IF_B" up
    ;;
  down)
    [ -f "$dir/hosts.env" ] || exit 0
    load
    for ns in "$NS_A" "$NS_B"; do
      ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns delete "$ns" 2>/dev/null || echo "netns_hosts.sh: could not delete namespace $ns" >&2
    done
    ;;
  *) usage ;;
esac
