"""A stage rank killed (kill -9) mid-batch under ULFM (mpirun --with-ft
ulfm): the run finishes, every job has exactly one result line, the tokens
are those of a run without the failure, and the log names the failed rank,
the new layer map and the recovery time. For the first, a middle and the
last stage of one pipeline, a stage of one of two replicas, and every
stage rank of a 1-stage pipeline (rank 0 then runs the layers itself).
test_launcher.py covers the same kill without ULFM. What the test reads
from the log are structured events (--log-json): a `recovered` event and
its fields, and the run spec sent again (`config_sent`, generation 1)."""
import argparse
import os
import subprocess
import tempfile
import time

from borgrun import (Checker, end_at_exit, events, mpi_env, rank_pids, read_results, result_id, run, token_ids,
                     wait_for_lines, whole_lines, write_counting_jobs)

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--mpiexec", required=True)
args = ap.parse_args()

tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
N = 12
write_counting_jobs(jobs, N)
common = ["--threads", "1", "--slots", "4", "--log-json"]
c = Checker("ulfm")
_, _, base, _ = run(args.borg, args.model, jobs, extra=["--threads", "2", "--slots", "4"])
want = {result_id(r): token_ids(r) for r in base}


def kill_run(name, np, victims, extra=(), after=3):
    out = os.path.join(tmp, name + ".jsonl")
    cmd = [args.mpiexec, "--with-ft", "ulfm", "--oversubscribe", "--bind-to", "none",
           "-np", str(np), args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force",
           *common, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                            start_new_session=True)
    end_at_exit(proc, args.borg, jobs)
    wait_for_lines(out, after, proc)
    pids = rank_pids(args.borg, jobs)
    for v in victims:
        if v in pids:
            os.kill(pids[v], 9)
    t_kill = time.time()
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
    c.check(all(v in pids for v in victims), f"{name}: found ranks {victims} to kill (saw {sorted(pids)})")
    return proc.returncode, err, out, time.time() - t_kill


def check_recovered(name, np, victims, extra=(), want_map=None):
    rc, err, out, _ = kill_run(name, np, victims, extra)
    results = read_results(out)
    ids = [result_id(r) for r in results]
    c.check(rc == 0, f"{name}: the run finishes (exit {rc}): {err[-600:]}")
    c.check(sorted(ids) == sorted(want), f"{name}: every job exactly once ({len(ids)} lines)")
    c.check(all(token_ids(r) == want[result_id(r)] for r in results if result_id(r) in want),
            f"{name}: tokens identical to a run without the failure")
    rec = events(err, "recovered")
    c.check(len(rec) == 1 and sorted(int(v) for v in rec[0]["failed"].split(", ")) == sorted(victims)
            and rec[0]["took_s"] >= 0 and rec[0]["layers"] and rec[0]["rank"] == 0,
            f"{name}: one recovered event naming the failed rank, the new layer map and the recovery time: {rec}")
    if want_map:
        c.check(bool(rec) and rec[0]["layers"].startswith(want_map), f"{name}: the new map is {want_map}: {rec}")
    sent = [e for e in events(err, "config_sent") if e.get("generation") == 1]
    c.check(len(sent) == 1, f"{name}: the new run spec was sent (config_sent, generation 1): {sent}")
    if rec:
        print(f"{name}: failed {rec[0]['failed']}; new map: {rec[0]['layers']}; recovery {rec[0]['took_s']:.2f} s")


check_recovered("first stage of 3", 4, [1])
check_recovered("middle stage of 3", 4, [2])
check_recovered("last stage of 3", 4, [3])
check_recovered("a stage of replica 1 of 2", 5, [3], ["--replicas", "2"])
check_recovered("the only stage", 2, [1])
check_recovered("a stage, with a spare to take its place", 6, [1], ["--replicas", "2", "--stages", "2"],
                want_map="2 replica(s) of 2 stage(s)")

# A stage that is alive but stops answering (SIGSTOP) is declared dead by
# ULFM's heartbeat detector: the run completes without it.
# The detector runs on its own thread, so that a rank busy computing (or a
# slow, loaded machine) still answers heartbeats and only the stopped one
# is declared dead.
def start_sigstop_run(out):
    cmd = [args.mpiexec, "--with-ft", "ulfm", "--mca", "mpi_ft_detector", "true", "--mca", "mpi_ft_detector_thread",
           "true", "--mca", "mpi_ft_detector_timeout", "4", "--mca", "mpi_ft_detector_period", "1", "--oversubscribe",
           "--bind-to", "none", "-np", "4", args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out,
           "--force", *common]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                            start_new_session=True)
    end_at_exit(proc, args.borg, jobs)
    return proc


# A start that ends before its third line is not the case under test (once
# seen in CI, with no output file and no stderr kept); it is reported with
# its stderr and tried once more, so the next occurrence says why.
out = os.path.join(tmp, "sigstop.jsonl")
started = False
for attempt in (1, 2):
    proc = start_sigstop_run(out)
    started = wait_for_lines(out, 3, proc)
    if started:
        break
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    _, err = proc.communicate()
    print(f"SIGSTOP: start {attempt} ended before 3 result lines (exit {proc.returncode}): {err[-2000:]}")
c.check(started, "SIGSTOP: the run started and wrote its first lines")
stopped = rank_pids(args.borg, jobs).get(2) if started else None
if stopped:
    os.kill(stopped, 19)  # SIGSTOP
end = time.time() + 120
while time.time() < end and whole_lines(out) < N:
    time.sleep(0.1)
results = read_results(out) if os.path.exists(out) else []
c.check(stopped is not None, "SIGSTOP: found rank 2")
c.check(sorted(result_id(r) for r in results) == sorted(want), "SIGSTOP: every job answered without the stopped stage")
c.check(all(token_ids(r) == want[result_id(r)] for r in results), "SIGSTOP: tokens identical")
if stopped:
    os.kill(stopped, 9)  # let mpirun collect it
try:
    _, err = proc.communicate(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, 9)
    _, err = proc.communicate()
rec = events(err, "recovered")
c.check(len(rec) == 1 and rec[0]["failed"] == "2", f"SIGSTOP: the stopped rank is reported failed: {rec or err[-300:]}")

c.done()
