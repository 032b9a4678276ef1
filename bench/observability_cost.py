#!/usr/bin/env python3
"""What --h5, --metrics, --trace and --run-dir cost together.

One batch of N jobs (64 prompt tokens of varied words, max_tokens new ones,
ignore_eos so each generates all of them), run alternately plain and with
every output on, --repeat times each; prints the median wall time of each
and their ratio. Single process by default (--np K runs K ranks).

    bench/observability_cost.py [--jobs 64] [--max-tokens 128] [--threads 2] [--repeat 3] [--np 1]
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--mpirun", default=os.path.join(ROOT, ".venv", "bin", "mpirun"))
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rng = random.Random(7)
    words = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
    tmp = tempfile.mkdtemp()
    jobs = os.path.join(tmp, "jobs.jsonl")
    with open(jobs, "w") as f:
        for i in range(args.jobs):
            prompt = " ".join(rng.choice(words) for _ in range(60))
            f.write(json.dumps({"id": f"b{i}", "prompt": prompt, "max_tokens": args.max_tokens,
                                "ignore_eos": True}) + "\n")
    out = os.path.join(tmp, "r.jsonl")
    observed = ["--h5", os.path.join(tmp, "r.h5"), "--metrics", os.path.join(tmp, "m.prom"),
                "--trace", os.path.join(tmp, "t.json"), "--run-dir", os.path.join(tmp, "run")]
    times = {"plain": [], "observed": []}
    for _ in range(args.repeat):
        for name, extra in [("plain", []), ("observed", observed)]:
            cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force",
                   "--threads", str(args.threads), "--quiet", *extra]
            if args.np > 1:
                cmd = [args.mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(args.np), *cmd]
            t = time.time()
            subprocess.run(cmd, check=True)
            times[name].append(time.time() - t)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    plain, obs = statistics.median(times["plain"]), statistics.median(times["observed"])
    print(f"{args.jobs} jobs x {args.max_tokens} new tokens, {args.threads} threads, np {args.np}, on {cpu}")
    print(f"plain    median {plain:.2f} s  runs {' '.join(f'{t:.2f}' for t in times['plain'])}")
    print(f"observed median {obs:.2f} s  runs {' '.join(f'{t:.2f}' for t in times['observed'])}")
    print(f"cost: {100 * (obs / plain - 1):+.1f}% of wall time (--h5 --metrics --trace --run-dir together)")


if __name__ == "__main__":
    main()
