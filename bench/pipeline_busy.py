#!/usr/bin/env python3
"""How busy each pipeline stage is on a batch of many jobs.

Writes a batch of N jobs (prompts of varied length, max_tokens new tokens
each, ignore_eos so every job generates all of them), runs it through
K ranks (rank 0 coordinating, K-1 stages) and prints, per stage, its layers
and the fraction of its active time spent computing, plus the whole run's
tokens/s. Medians over --repeat runs.

    bench/pipeline_busy.py [--np 3] [--jobs 64] [--max-tokens 32] [--threads 1] [--repeat 3]
"""
import json
import os
import statistics
import subprocess
import tempfile

from benchjobs import arguments, command, write_jobs


def main():
    args = arguments(__doc__, np=3, jobs=64, max_tokens=32, threads=1, repeat=3).parse_args()
    tmp = tempfile.mkdtemp()
    jobs = os.path.join(tmp, "jobs.jsonl")
    write_jobs(jobs, args.jobs, args.max_tokens)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    busy, tps = {}, []
    for _ in range(args.repeat):
        out = os.path.join(tmp, "out.jsonl")
        subprocess.run(command(args, jobs, out), check=True, env=env)
        with open(out + ".summary.json") as f:
            s = json.load(f)
        tps.append(s["generated_tokens_per_s"])
        for r in s["ranks"]:
            if r["role"] == "stage":
                key = (r["replica"], r["stage"], r["layer_begin"], r["layer_end"])
                busy.setdefault(key, []).append(r["busy_fraction"])
    print(f"{args.jobs} jobs x {args.max_tokens} new tokens, {args.np} ranks, {args.threads} thread(s) per stage, "
          f"median of {args.repeat}")
    print(f"generated tokens/s: {statistics.median(tps):.1f}")
    for (rep, stage, lb, le), vals in sorted(busy.items()):
        print(f"replica {rep} stage {stage} (layers {lb}-{le - 1}): busy {100 * statistics.median(vals):.0f}%")


if __name__ == "__main__":
    main()
