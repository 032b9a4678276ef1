"""The launcher on a real network: two hosts (network namespaces joined by
a veth pair, tests/tools/netns_hosts.sh), Open MPI started across them
through an rsh agent that enters the other namespace, and the link to the
second host cut mid-batch, under `--with-ft ulfm` and the threaded
heartbeat detector. Ranks 0 and 1 run on host a (where mpirun runs too),
ranks 2 and 3 on host b; --stages 3, so every rank but 0 is a stage.

What must hold: build/borg-mpirun exits 0; every job has exactly one
result line, with the tokens of an undisturbed single-process run; the
`recovered` event names ranks 2 and 3 (host b) as failed and never rank 1
(busy computing on host a, but alive); and the launcher exits within
EXIT_LIMIT_S of the results file's last line (rank 0 ends the batch, the
ranks cut off on host b never answer again, and borg-mpirun ends mpirun
BORG_EXIT_GRACE_S after rank 0 recorded its exit code). Nothing of the run
may be left in either namespace afterwards.

Needs root (ip netns, unshare --uts) and no network beyond the two
namespaces; without them the test fails, saying why (CI runs as root)."""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from borgrun import (Checker, events, mpi_env, rank_pids, read_results, result_id, run, token_ids,
                     wait_for_lines, whole_lines, write_counting_jobs)

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--launcher", required=True, help="build/borg-mpirun")
ap.add_argument("--hosts-tool", required=True, help="tests/tools/netns_hosts.sh")
args = ap.parse_args()

N = 24
# The heartbeat detector on its own thread (as slurm/borg-slurm-run.sh runs
# it), so that rank 1, busy computing, still answers; a host b rank is
# declared dead DETECTOR_TIMEOUT_S after its last heartbeat.
DETECTOR_TIMEOUT_S, DETECTOR_PERIOD_S = 8, 1
# A correctness bound, not a speed one: the launcher ends 5 s
# (BORG_EXIT_GRACE_S) after rank 0 recorded its exit code, plus at most 5 s
# for mpirun to go after SIGTERM; a launcher that waits for the cut-off
# host (TCP time-outs: minutes) is what this catches.
EXIT_LIMIT_S = 30

if os.geteuid() != 0:
    sys.exit(f"FAIL: two_hosts: needs root for ip netns and unshare --uts (running as uid {os.geteuid()}); "
             "CI runs this test as root")

tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
write_counting_jobs(jobs, N)
c = Checker("two_hosts")
_, _, base, _ = run(args.borg, args.model, jobs, extra=["--threads", "2", "--slots", "4"])
want = {result_id(r): token_ids(r) for r in base}

hosts_dir = os.path.join(tmp, "hosts")
os.mkdir(hosts_dir)


def hosts(*cmd, check=True):
    p = subprocess.run([args.hosts_tool, *cmd], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        sys.exit(f"FAIL: two_hosts: {args.hosts_tool} {' '.join(cmd)} exited {p.returncode}: "
                 f"{p.stderr.strip() or p.stdout.strip()}")
    return p


def netns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def ns_processes(env):
    """'NS: pid command' for each process in the two namespaces."""
    found = []
    for ns in (env["NS_A"], env["NS_B"]):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    line = f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
                found.append(f"{ns}: {pid} {line}")
            except OSError:
                pass
    return found


# A SIGTERM (ctest, a user) still takes the namespaces down.
signal.signal(signal.SIGTERM, lambda *_: sys.exit("two_hosts: SIGTERM"))
hosts("up", hosts_dir, str(os.getpid()))
try:
    env = {}
    with open(os.path.join(hosts_dir, "hosts.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    out = os.path.join(tmp, "cut.jsonl")
    # mpirun runs on host a too, so that every byte between the hosts
    # crosses the veth pair; Open MPI is told to use only that network.
    cmd = [args.hosts_tool, "run", hosts_dir, "a", args.launcher, "--with-ft", "ulfm",
           "--mca", "mpi_ft_detector", "true", "--mca", "mpi_ft_detector_thread", "true",
           "--mca", "mpi_ft_detector_timeout", str(DETECTOR_TIMEOUT_S),
           "--mca", "mpi_ft_detector_period", str(DETECTOR_PERIOD_S),
           "--mca", "plm_rsh_agent", env["AGENT"],
           "--prtemca", "oob_tcp_if_include", env["NET"], "--mca", "btl_tcp_if_include", env["NET"],
           "--host", f"{env['ADDR_A']}:2,{env['ADDR_B']}:2",
           "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "4",
           args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force",
           "--stages", "3", "--threads", "1", "--slots", "4", "--log-json"]
    t_start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                            start_new_session=True)
    started = wait_for_lines(out, 3, proc, limit=300)
    pids = rank_pids(args.borg, jobs) if started else {}
    ns_a = netns_inode(f"/run/netns/{env['NS_A']}")
    ns_b = netns_inode(f"/run/netns/{env['NS_B']}")
    placed = {r: netns_inode(f"/proc/{p}/ns/net") for r, p in pids.items()}
    lines_at_cut = whole_lines(out) if started else 0
    if started:
        hosts("cut", hosts_dir)
    t_cut = time.time()
    try:
        _, err = proc.communicate(timeout=300)
        t_exit = time.time()
    except subprocess.TimeoutExpired:
        print("two_hosts: the launcher was still running 300 s after the cut; left in the namespaces:\n"
              + "\n".join(ns_processes(env)))
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
        t_exit = None
    rc = proc.returncode
    time.sleep(1)  # processes the launcher killed on its way out have gone
    left = ns_processes(env)
    hosts("mend", hosts_dir, check=False)
finally:
    hosts("down", hosts_dir, check=False)

c.check(started, f"the run started across both hosts and wrote 3 lines (exit {rc}): {err[-3000:]}")
c.check(placed.get(0) == ns_a and placed.get(1) == ns_a and placed.get(2) == ns_b and placed.get(3) == ns_b,
        f"ranks 0 and 1 on host a, 2 and 3 on host b (found ranks {sorted(pids)})")
c.check(lines_at_cut < N, f"the link was cut mid-batch ({lines_at_cut} of {N} lines written)")
results = read_results(out) if os.path.exists(out) else []
ids = [result_id(r) for r in results]
c.check(rc == 0, f"borg-mpirun exits 0, every job answered (exit {rc}): {err[-3000:]}")
c.check(sorted(ids) == sorted(want), f"every job exactly once ({len(ids)} lines, {len(set(ids))} ids)")
c.check(all(token_ids(r) == want[result_id(r)] for r in results if result_id(r) in want),
        "tokens identical to an undisturbed run")
rec = events(err, "recovered")
failed = set()
for e in rec:
    failed |= {int(v) for v in str(e.get("failed", "")).split(", ") if v}
c.check(rec and failed == {2, 3} and all(e.get("rank") == 0 for e in rec),
        f"recovered names ranks 2 and 3 (host b) as failed: {rec or err[-3000:]}")
c.check(1 not in failed, f"rank 1 (healthy, on host a) is never declared dead: {rec}")
last_line = os.stat(out).st_mtime if os.path.exists(out) else None
after = t_exit - last_line if t_exit and last_line else None
c.check(after is not None and after <= EXIT_LIMIT_S,
        f"the launcher exits within {EXIT_LIMIT_S} s of the last result line (took {after} s)")
c.check(not left, f"nothing of the run is left in either namespace: {left}")
summary = events(err, "run_summary")
if rec and after is not None:
    took = ", ".join("%.1f" % e["took_s"] for e in rec)
    print(f"two_hosts: {lines_at_cut} lines at the cut, {t_cut - t_start:.1f} s in; "
          f"{len(rec)} recovered event(s): failed {'; '.join(e['failed'] for e in rec)}, recovery took {took} s; "
          f"last line {last_line - t_cut:.1f} s after the cut; launcher exit {after:.1f} s after the last line"
          + (f", {t_exit - summary[-1]['time']:.1f} s after rank 0's summary" if summary else ""))
c.done()
