"""build/borg-mpirun, the launcher wrapper. A stage rank killed (kill -9)
mid-batch without ULFM (Open MPI 5 without --with-ft, or Debian's Open MPI
4.1): the run ends within seconds with exit 3 (incomplete, resumable), the
lines already written are intact, and --resume completes the batch with the
tokens of a run without the failure. SIGUSR1 sent to the launcher (as Slurm
sends it before a time limit) reaches rank 0, which drains and exits 3. A
run that finishes and one refused (its jobs file does not exist) keep their
own exit codes, 0 and 2. An mpirun that hangs at start, or fails before
rank 0 began the batch (exit 0 included), is started again."""
import argparse
import os
import re
import signal
import subprocess
import tempfile
import time

from borgrun import (Checker, mpi_env, rank_pids, read_results, result_id, run, token_ids, wait_for_lines,
                     write_counting_jobs)

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--launcher", required=True, help="borg-mpirun of the same build")
args = ap.parse_args()

tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
N = 12
write_counting_jobs(jobs, N)
c = Checker("no-ulfm")
_, _, base, _ = run(args.borg, args.model, jobs, extra=["--threads", "2", "--slots", "4"])
want = {result_id(r): token_ids(r) for r in base}


def launch(out, extra=(), jobs_file=jobs, env=None):
    cmd = [args.launcher, "--oversubscribe", "--bind-to", "none", "-np", "3", args.borg, "run",
           "--model", args.model, "--jobs", jobs_file, "--out", out, "--threads", "1", "--slots", "4", *extra]
    # The launcher's state file goes to the working directory: keep it in tmp.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**mpi_env(), **(env or {})}, cwd=tmp, start_new_session=True)


def finish(proc, timeout=180):
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
    return proc.returncode, err


def check_answered_once(out, what):
    results = read_results(out) if os.path.exists(out) else []
    same = all(token_ids(r) == want[result_id(r)] for r in results)
    c.check(sorted(result_id(r) for r in results) == sorted(want) and same, what)


def stand_in(name, body):
    """An executable sh script in tmp standing in for mpirun."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


out = os.path.join(tmp, "killed.jsonl")
proc = launch(out, ["--force"])
wait_for_lines(out, 3, proc)
pids = rank_pids(args.borg, jobs)
c.check(2 in pids, f"found stage rank 2 to kill (saw {sorted(pids)})")
if 2 in pids:
    os.kill(pids[2], 9)
t_kill = time.time()
rc, err = finish(proc)
took = time.time() - t_kill
c.check(rc == 3, f"the run ends with exit 3, incomplete and resumable (got {rc}): {err[-600:]}")
c.check(took < 60, f"it ends within the detection time ({took:.1f} s)")
c.check("--resume" in err, "the log says how to finish the batch")
before = read_results(out)
c.check(0 < len(before) < N, f"the results written are intact ({len(before)} lines)")
c.check(all(token_ids(r) == want[result_id(r)] for r in before), "the lines written before the kill are right")

rc, err = finish(launch(out, ["--resume"]))
results = read_results(out)
c.check(rc == 0, f"--resume through the launcher exits 0 (got {rc}): {err[-600:]}")
c.check(sorted(result_id(r) for r in results) == sorted(want), "--resume completes the batch, no job twice")
c.check(all(token_ids(r) == want[result_id(r)] for r in results), "the resumed tokens are identical")

# Slurm's warning before a time limit goes to the batch script, i.e. to
# the launcher: it must reach rank 0, which drains and exits 3.
out = os.path.join(tmp, "stopped.jsonl")
proc = launch(out, ["--force", "--drain-s", "0"])
wait_for_lines(out, 3, proc)
proc.send_signal(signal.SIGUSR1)
rc, err = finish(proc)
c.check(rc == 3, f"SIGUSR1 to the launcher: rank 0 drains and the run exits 3 (got {rc}): {err[-600:]}")
rc, err = finish(launch(out, ["--resume"]))
results = read_results(out)
c.check(rc == 0 and sorted(result_id(r) for r in results) == sorted(want), "after SIGUSR1, --resume completes")

rc, err = finish(launch(os.path.join(tmp, "bad-out.jsonl"), ["--force"], jobs_file=os.path.join(tmp, "missing.jsonl")))
c.check(rc == 2, f"bad input keeps exit 2 through the launcher (got {rc}): {err[-300:]}")
c.check("starting it again" not in err, "bad input is not started again")

# Open MPI's start-up now and then hangs with no rank up. A stand-in for
# mpirun that hangs on its first start and is the real one after: the
# launcher ends it after BORG_START_S and starts again, and the batch
# completes; one that always hangs is given up after BORG_START_TRIES
# starts, with exit 3 (nothing was run).
real = re.search(r"^mpirun=\$\{BORG_MPIRUN:-(.*)\}$", open(args.launcher).read(), re.M).group(1)
marker = os.path.join(tmp, "hung-once")
hang = stand_in("hanging-mpirun", f'[ -e "$HANG_ALWAYS" ] || [ ! -e {marker} ] || exec {real} "$@"\ntouch {marker}\n'
                                  'exec sleep 600\n')
out = os.path.join(tmp, "hung.jsonl")
rc, err = finish(launch(out, ["--force"], env={"BORG_MPIRUN": hang, "BORG_START_S": "15"}))
c.check(rc == 0 and "MPI did not start in 15 s" in err and "attempt 2 of 3" in err,
        f"an mpirun that hangs at start is started again and the run completes (exit {rc}): {err[-600:]}")
check_answered_once(out, "after the restart every job is answered once, with the same tokens")
out = os.path.join(tmp, "never.jsonl")
never = {"BORG_MPIRUN": hang, "BORG_START_S": "1", "BORG_START_TRIES": "2", "HANG_ALWAYS": marker}
rc, err = finish(launch(out, ["--force"], env=never))
c.check(rc == 3 and "giving up" in err and not os.path.exists(out),
        f"an mpirun that never starts: given up after 2 starts, exit 3, nothing written (exit {rc}): {err[-600:]}")

# Open MPI 5.0.11 under load has also crashed a rank inside MPI_Init
# (SIGSEGV). A stand-in that dies so on its first start and is the real
# mpirun after: started again, the batch completes; one that always fails
# is given up after BORG_START_TRIES starts with its own exit code, which
# is not 3: a failure that repeats is not an interrupted batch.
marker = os.path.join(tmp, "crashed-once")
crash = stand_in("crashing-mpirun", f'[ -n "$CRASH_ALWAYS" ] && exit 1\n[ ! -e {marker} ] || exec {real} "$@"\n'
                                    f'touch {marker}\nkill -s SEGV $$\n')
out = os.path.join(tmp, "crashed.jsonl")
rc, err = finish(launch(out, ["--force"], env={"BORG_MPIRUN": crash}))
c.check(rc == 0 and "before rank 0 began the batch" in err and "attempt 2 of 3" in err,
        f"an mpirun whose rank crashes at start is started again and the run completes (exit {rc}): {err[-600:]}")
check_answered_once(out, "after the crash at start every job is answered once, with the same tokens")
out = os.path.join(tmp, "always-crashes.jsonl")
rc, err = finish(launch(out, ["--force"], env={"BORG_MPIRUN": crash, "CRASH_ALWAYS": "1", "BORG_START_TRIES": "2"}))
c.check(rc == 1 and err.count("starting it again") == 1 and not os.path.exists(out),
        f"an mpirun that always fails at start: 2 starts, then its own exit 1, nothing written (exit {rc}): {err[-600:]}")

# Open MPI 5.0.11 with --with-ft ulfm has also ended with exit 0 after its
# ranks took SIGSEGV inside MPI_Init, with nothing run. A stand-in that
# exits 0 so on its first start: started again, the batch completes; one
# that always does: given up after BORG_START_TRIES starts with exit 1, not
# 0. A command that ends before MPI (--help) records its exit, so its 0 is
# not taken for a failed start.
marker = os.path.join(tmp, "quiet-once")
quiet = stand_in("quiet-mpirun", f'[ -z "$QUIET_ALWAYS" ] && [ -e {marker} ] && exec {real} "$@"\ntouch {marker}\nexit 0\n')
out = os.path.join(tmp, "quiet.jsonl")
rc, err = finish(launch(out, ["--force"], env={"BORG_MPIRUN": quiet}))
c.check(rc == 0 and "mpirun exited 0 before rank 0 began the batch" in err and "attempt 2 of 3" in err,
        f"an mpirun that exits 0 with nothing run is started again and the run completes (exit {rc}): {err[-600:]}")
check_answered_once(out, "after the silent start every job is answered once, with the same tokens")
out = os.path.join(tmp, "always-quiet.jsonl")
rc, err = finish(launch(out, ["--force"], env={"BORG_MPIRUN": quiet, "QUIET_ALWAYS": "1", "BORG_START_TRIES": "2"}))
c.check(rc == 1 and err.count("starting it again") == 1 and "never began the batch" in err and not os.path.exists(out),
        f"an mpirun that always exits 0 with nothing run: 2 starts, then exit 1, nothing written (exit {rc}): {err[-600:]}")
p = subprocess.run([args.launcher, "--oversubscribe", "-np", "2", args.borg, "--help"], capture_output=True, text=True,
                   env=mpi_env(), cwd=tmp, timeout=120)
c.check(p.returncode == 0 and "starting it again" not in p.stderr and "run" in p.stdout,
        f"--help through the launcher: exit 0, started once (exit {p.returncode}): {p.stderr[-400:]}")
c.check(not any(n.startswith(".borg-state") for n in os.listdir(tmp)), "the launcher removes its state file")
c.done()
