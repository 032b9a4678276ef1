#!/usr/bin/env python3
"""What --h5, --metrics, --trace and --run-dir cost together.

One batch of N jobs (64 prompt tokens of varied words, max_tokens new ones,
ignore_eos so each generates all of them), run alternately plain and with
every output on, --repeat times each; prints the median wall time of each
and their ratio. Single process by default (--np K runs K ranks).

    bench/observability_cost.py [--jobs 64] [--max-tokens 128] [--threads 2] [--repeat 3] [--np 1]
"""
import os
import platform
import statistics
import subprocess
import tempfile
import time

from benchjobs import arguments, command, write_jobs


def main():
    args = arguments(__doc__, np=1, jobs=64, max_tokens=128, threads=2, repeat=3).parse_args()
    tmp = tempfile.mkdtemp()
    jobs = os.path.join(tmp, "jobs.jsonl")
    write_jobs(jobs, args.jobs, args.max_tokens, prompt_words=(60, 60))
    out = os.path.join(tmp, "r.jsonl")
    observed = ["--h5", os.path.join(tmp, "r.h5"), "--metrics", os.path.join(tmp, "m.prom"),
                "--trace", os.path.join(tmp, "t.json"), "--run-dir", os.path.join(tmp, "run")]
    times = {"plain": [], "observed": []}
    for _ in range(args.repeat):
        for name, extra in [("plain", []), ("observed", observed)]:
            cmd = command(args, jobs, out, extra)
            t = time.time()
            subprocess.run(cmd, check=True, env=dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
                                                     OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
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
