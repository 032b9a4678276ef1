#!/usr/bin/env python3
"""Coordinator throughput on many tiny jobs, durability kept.

    bench/many_jobs.py [--counts 10000,100000,1000000] [--np 2] [--slots 256] [--repeat 1]

Each job is a one-word prompt with max_tokens 1, run on a tiny random model
(tests/tools/make_tiny_model.py: dim 64, 1 layer, vocabulary 300), so that
what is measured is rank 0: reading and parsing job lines, tokenizing,
scheduling, the round trips to the stage, writing the result lines and
making them durable (group commit: one fdatasync for the lines finished
since the last). Prints, per job count, jobs/s of the whole run (start to
exit, as a user sees it) and of the run's own wall time (the summary's,
from the model being loaded to the last line durable), rank 0's peak
memory, and the file system the results were written to.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def file_system(path):
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
    return out[-1].split()[1] if len(out) > 1 else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--mpirun", default=os.path.join(ROOT, ".venv", "bin", "mpirun"))
    ap.add_argument("--counts", default="10000,100000,1000000")
    ap.add_argument("--np", type=int, default=2, help="ranks: 1 runs the stage on a thread of rank 0")
    ap.add_argument("--slots", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", default=None, help="where the jobs, model and results go (default: a temporary "
                    "directory under $TMPDIR)")
    args = ap.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="borg-many-jobs-")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "tiny.gguf")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "tools", "make_tiny_model.py"), "--out", model,
                    "--dim", "64", "--n-layers", "1", "--n-head", "2", "--n-kv-head", "1", "--ffn", "128",
                    "--ctx", "64", "--wtype", "Q8_0"], check=True)
    print(f"results on {file_system(work)} ({work}); {args.np} rank(s), --slots {args.slots}; "
          f"{os.cpu_count()} CPUs: {cpu_name()}")
    print(f"{'jobs':>9} {'jobs/s (exit)':>14} {'jobs/s (run)':>13} {'rank-0 peak MiB':>16}")
    for n in (int(x) for x in args.counts.split(",")):
        jobs = os.path.join(work, f"jobs{n}.jsonl")
        with open(jobs, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"j{i}", "prompt": "the", "max_tokens": 1}) + "\n")
        out = os.path.join(work, f"out{n}.jsonl")
        cmd = [args.borg, "run", "--model", model, "--jobs", jobs, "--out", out, "--force", "--quiet",
               "--threads", "1", "--slots", str(args.slots)]
        if args.np > 1:
            cmd = [args.mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(args.np)] + cmd
        exits, runs, rss = [], [], []
        for _ in range(args.repeat):
            t0 = time.time()
            subprocess.run(cmd, check=True, env={**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1",
                                                 "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
            exits.append(n / (time.time() - t0))
            with open(out + ".summary.json") as f:
                s = json.load(f)
            if s["jobs"]["ok"] != n:
                sys.exit(f"{n} jobs: the summary counts {s['jobs']['ok']} ok")
            runs.append(n / s["wall_s"])
            rss.append(s["ranks"][0]["peak_rss_mib"])
        with open(out) as f:
            lines = sum(1 for _ in f)
        if lines != n:
            sys.exit(f"{n} jobs: {lines} result lines")
        print(f"{n:>9} {statistics.median(exits):>14.0f} {statistics.median(runs):>13.0f} "
              f"{statistics.median(rss):>16.1f}")
        os.unlink(jobs)
        os.unlink(out)


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
