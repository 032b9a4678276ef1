#!/usr/bin/env python3
"""Soak: many stage kills across one long batch under ULFM (not in CI).

    tests/soak/soak.py [--kills 30] [--np 32] [--replicas 10] [--stages 3]
                       [--jobs 1500] [--seed 1] [--gap 1.0,4.0] [--borg build/borg-infer]
                       [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
                       [--mpiexec .venv/bin/mpiexec]

One run of --jobs greedy jobs (30 tokens each, ignore_eos) starts with --np
ranks under `mpirun --with-ft ulfm`: rank 0, --replicas pipelines of
--stages stage ranks, and the ranks left over as spares, which take a
failed rank's place. Each kill then costs a spare, a replica, or at the
end a stage, down to rank 0 running every layer itself. While
it runs, a stage rank chosen at random is killed (SIGKILL) at a random
moment: the first a random gap (uniform in --gap, seconds) after the first
result line (Open MPI's own start-up does not survive a kill), each next one
a random gap after the previous recovery was logged, so the kills land in
prefill, decode and dispatch alike. After --kills kills (or
when one rank is left, or the batch ends) the run is left to finish.

Checks, then prints one line for RESULTS.md: every job answered exactly
once; every answer's token ids equal those of an undisturbed single-process
run of the same jobs; one `recovered` event per kill, naming the killed
rank; the run's exit code 0. Exit 0 only if all hold.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from borgrun import events, mpi_env, rank_pids, read_results, result_id, token_ids, wait_for_lines  # noqa: E402


def write_jobs(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"job{i}", "prompt": f"Count from {i} to {i + 30}:", "max_tokens": 30,
                                "ignore_eos": True}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--mpiexec", default=os.path.join(ROOT, ".venv", "bin", "mpiexec"))
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--np", type=int, default=32)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--stages", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap", default="1.0,4.0", help="seconds between a recovery and the next kill: lo,hi")
    args = ap.parse_args()
    lo, hi = (float(x) for x in args.gap.split(","))
    rng = random.Random(args.seed)

    tmp = tempfile.mkdtemp(prefix="borg-soak-")
    jobs = os.path.join(tmp, "jobs.jsonl")
    write_jobs(jobs, args.jobs)
    base_out = os.path.join(tmp, "base.jsonl")
    t0 = time.time()
    subprocess.run([args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", base_out, "--force", "--quiet",
                    "--threads", "2", "--slots", "16"], check=True)
    want = {result_id(r): token_ids(r) for r in read_results(base_out)}
    print(f"undisturbed run: {len(want)} jobs in {time.time() - t0:.0f} s", flush=True)

    out = os.path.join(tmp, "soak.jsonl")
    cmd = [args.mpiexec, "--with-ft", "ulfm", "--oversubscribe", "--bind-to", "none", "-np", str(args.np),
           args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force", "--threads", "1",
           "--slots", "16", "--replicas", str(args.replicas), "--stages", str(args.stages), "--log-json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=mpi_env(),
                            start_new_session=True)
    lines, recovered = [], []
    cond = threading.Condition()

    def read_stderr():
        for line in proc.stderr:
            with cond:
                lines.append(line)
                recovered.extend(events(line, "recovered"))
                cond.notify_all()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    t_start = time.time()
    killed = []  # (rank, seconds since the start)
    # Open MPI's own start-up does not survive a kill (mpirun hangs): the
    # first kill waits for the run's first result line.
    wait_for_lines(out, 1, proc, limit=600)
    time.sleep(rng.uniform(lo, hi))
    while len(killed) < args.kills and proc.poll() is None:
        pids = {r: p for r, p in rank_pids(args.borg, jobs).items() if r != 0}
        if not pids:
            print("no stage rank left: no more kills", flush=True)
            break
        victim = rng.choice(sorted(pids))
        try:
            os.kill(pids[victim], 9)
        except ProcessLookupError:
            continue
        killed.append((victim, time.time() - t_start))
        with cond:
            cond.wait_for(lambda: len(recovered) >= len(killed) or proc.poll() is not None, timeout=300)
        if len(recovered) < len(killed):
            print(f"kill {len(killed)} (rank {victim}): no recovery logged", flush=True)
            break
        e = recovered[len(killed) - 1]
        print(f"kill {len(killed)}: rank {victim} at {killed[-1][1]:.1f} s; recovered in {e['took_s']:.2f} s: "
              f"{e['layers']}", flush=True)
        time.sleep(rng.uniform(lo, hi))
    try:
        proc.wait(timeout=3600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    reader.join(timeout=10)
    wall = time.time() - t_start

    results = read_results(out) if os.path.exists(out) else []
    ids = [result_id(r) for r in results]
    failures = []
    if proc.returncode != 0:
        failures.append(f"exit {proc.returncode}: {''.join(lines[-5:])}")
    if sorted(ids) != sorted(want):
        failures.append(f"{len(ids)} lines, {len(set(ids))} distinct ids, {len(want)} jobs")
    differ = [i for i, r in zip(ids, results) if want.get(i) != token_ids(r)]
    if differ:
        failures.append(f"{len(differ)} answers differ from the undisturbed run, e.g. {differ[:3]}")
    named = [int(v) for e in recovered for v in str(e["failed"]).split(", ")]
    if sorted(named) != sorted(r for r, _ in killed):
        failures.append(f"recovered events name ranks {sorted(named)}, killed {sorted(r for r, _ in killed)}")
    if len(killed) < args.kills:
        failures.append(f"only {len(killed)} of {args.kills} kills happened before the batch ended")
    took = [e["took_s"] for e in recovered]
    print(f"soak: {len(killed)}/{args.kills} kills survived across {args.jobs} jobs on {args.np} ranks in {wall:.0f} s; "
          f"{len(ids)} lines, {len(set(ids))} distinct; {len(differ)} answers differ; recovery median "
          f"{statistics.median(took) if took else float('nan'):.2f} s, max {max(took) if took else float('nan'):.2f} s")
    for f in failures:
        print("FAILED:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
