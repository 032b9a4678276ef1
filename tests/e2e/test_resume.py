"""Nothing lost: a results file is never overwritten by accident; a torn
last line is dropped on --resume; a run stopped by SIGTERM, by its deadline
or by kill -9 is finished by --resume with every job answered exactly once
and the same tokens as an uninterrupted run; per-job timeouts and
cancellation end just those jobs."""
import argparse
import json
import os
import signal
import subprocess
import tempfile
import time

from borgrun import Checker, mpi_env, read_results, result_id, run, token_ids, wait_for_lines

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--np", type=int, default=1)
ap.add_argument("--mpiexec")
args = ap.parse_args()

tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
c = Checker("resume")
threads = ["--threads", "1" if args.np > 1 else "2", "--slots", "4"]
N = 10
jobs = os.path.join(tmp, "jobs.jsonl")
with open(jobs, "w") as f:
    for i in range(N):
        f.write(json.dumps({"id": f"job{i}", "prompt": f"Count slowly from {i} to {i + 40}:", "max_tokens": 24,
                            "ignore_eos": True}) + "\n")


def launch(out, *extra):
    cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, *threads, *extra]
    if args.np > 1:
        cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(args.np), *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                            start_new_session=True)


def finish_with_resume(out, name):
    rc, err, results, _ = run(args.borg, args.model, jobs, out=out, np=args.np, mpiexec=args.mpiexec,
                              extra=[*threads, "--resume"], check=False)
    c.check(rc == 0, f"{name}: --resume finishes (exit {rc}): {err[-500:]}")
    ids = [result_id(r) for r in results]
    c.check(sorted(ids) == sorted(baseline), f"{name}: every job exactly once ({len(ids)} lines)")
    for r in results:
        c.check(token_ids(r) == baseline.get(result_id(r)), f"{name}: {result_id(r)} same tokens as uninterrupted")


base_out = os.path.join(tmp, "base.jsonl")
_, _, base, _ = run(args.borg, args.model, jobs, out=base_out, np=args.np, mpiexec=args.mpiexec, extra=threads)
baseline = {result_id(r): token_ids(r) for r in base}
c.check(len(baseline) == N, "the uninterrupted run answers every job")

# Never overwritten without --force or --resume.
before = open(base_out).read()
p = subprocess.run([args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", base_out],
                   capture_output=True, text=True)
c.check(p.returncode == 2 and "--resume" in p.stderr, f"an existing results file is refused: {p.stderr}")
c.check(open(base_out).read() == before, "and left untouched")

# A torn last line (a crash in the middle of a write) is dropped, then redone.
torn = os.path.join(tmp, "torn.jsonl")
lines = before.splitlines(keepends=True)
with open(torn, "w") as f:
    f.writelines(lines[:3])
    f.write(lines[3][: len(lines[3]) // 2])
finish_with_resume(torn, "torn line")

# A stop signal (what Slurm sends before a time limit): drain, exit 3,
# resumable. mpirun passes SIGUSR1 on to the ranks (SIGTERM it takes as an
# order to kill them, which the kill -9 case below covers).
stop = signal.SIGUSR1 if args.np > 1 else signal.SIGTERM
out = os.path.join(tmp, "sigterm.jsonl")
proc = launch(out, "--drain-s", "0.5")
c.check(wait_for_lines(out, 2, proc), "signalled run produced results first")
proc.send_signal(stop)
_, err = proc.communicate(timeout=120)
c.check(proc.returncode == 3, f"{stop.name} exits 3 (got {proc.returncode}): {err[-400:]}")
c.check(len(read_results(out)) < N, f"{stop.name} stopped the run before the end")
finish_with_resume(out, stop.name)

# kill -9 of rank 0 (or of mpirun): whatever was written is kept.
out = os.path.join(tmp, "kill.jsonl")
proc = launch(out)
c.check(wait_for_lines(out, 3, proc), "killed run produced results first")
os.killpg(os.getpgid(proc.pid), signal.SIGKILL) if args.np > 1 else proc.kill()
proc.communicate(timeout=60)
c.check(len(read_results(out)) < N, "kill -9 stopped the run before the end")
finish_with_resume(out, "kill -9")

# --deadline: jobs running then end as timeout; jobs not yet read (more
# than the coordinator reads ahead) are left for --resume.
many = os.path.join(tmp, "many.jsonl")
with open(many, "w") as f:
    for i in range(60):
        f.write(json.dumps({"id": f"m{i}", "prompt": f"Say {i}.", "max_tokens": 24, "ignore_eos": True}) + "\n")
out = os.path.join(tmp, "deadline.jsonl")
rc, _, results, _ = run(args.borg, args.model, many, out=out, np=args.np, mpiexec=args.mpiexec,
                        extra=[*threads, "--deadline", "1.5"], check=False)
c.check(rc == 3, f"--deadline exits 3 with jobs unread (got {rc})")
c.check(any(r.get("status") == "timeout" for r in results), "jobs running at the deadline end as timeout")
rc, _, results, _ = run(args.borg, args.model, many, out=out, np=args.np, mpiexec=args.mpiexec,
                        extra=[*threads, "--resume"], check=False)
ids = [result_id(r) for r in results]
c.check(rc == 0 and sorted(ids) == sorted(f"m{i}" for i in range(60)), "--resume answers the rest, each job once")

# Per-job timeout and cancellation: only those jobs.
tc_jobs = os.path.join(tmp, "tc.jsonl")
with open(tc_jobs, "w") as f:
    f.write(json.dumps({"id": "slow", "prompt": "Tell a long story.", "max_tokens": 4000, "ignore_eos": True,
                        "timeout_s": 2}) + "\n")
    f.write(json.dumps({"id": "doomed", "prompt": "Another long story.", "max_tokens": 4000, "ignore_eos": True}) + "\n")
    f.write(json.dumps({"id": "fine", "prompt": "The capital of France is", "max_tokens": 5}) + "\n")
run_dir = os.path.join(tmp, "rundir")
out = os.path.join(tmp, "tc.jsonl.out")
cmd = [args.borg, "run", "--model", args.model, "--jobs", tc_jobs, "--out", out, "--run-dir", run_dir, *threads,
       "--ctx", "4096"]
if args.np > 1:
    cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(args.np), *cmd]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                        start_new_session=True)
c.check(wait_for_lines(out, 1, proc), "the quick job finishes first")
time.sleep(0.5)
p = subprocess.run([args.borg, "cancel", "--run-dir", run_dir, "doomed"], capture_output=True, text=True)
c.check(p.returncode == 0, f"cancel accepted: {p.stderr}")
_, err = proc.communicate(timeout=120)
c.check(proc.returncode == 0, f"the run ends normally (exit {proc.returncode}): {err[-400:]}")
res = {result_id(r): r for r in read_results(out)}
c.check(res.get("fine", {}).get("status") == "ok", "the other job is unaffected")
slow = res.get("slow", {})
c.check(slow.get("status") == "timeout" and 0 < len(slow.get("token_ids", [])) < 4000,
        f"timeout_s ends its job with the text so far: {slow.get('status')}, {len(slow.get('token_ids', []))} tokens")
doomed = res.get("doomed", {})
c.check(doomed.get("status") == "cancelled" and len(doomed.get("token_ids", [])) > 0,
        f"cancel ends its job: {doomed.get('status')}")
c.check(len(res) == 3, "one line per job")
c.done()
