#!/usr/bin/env python3
"""How busy each pipeline stage is on a batch of many jobs.

Writes a batch of N jobs (prompts of varied length, max_tokens new tokens
each, ignore_eos so every job generates all of them), runs it through
K ranks (rank 0 coordinating, K-1 stages) and prints, per stage, its layers
and the fraction of its active time spent computing, plus the whole run's
tokens/s. Medians over --repeat runs.

    bench/pipeline_busy.py [--np 3] [--jobs 64] [--max-tokens 32] [--threads 1] [--repeat 3]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--mpirun", default=os.path.join(ROOT, ".venv", "bin", "mpirun"))
    ap.add_argument("--np", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rng = random.Random(7)
    words = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
    tmp = tempfile.mkdtemp()
    jobs = os.path.join(tmp, "jobs.jsonl")
    with open(jobs, "w") as f:
        for i in range(args.jobs):
            prompt = " ".join(rng.choice(words) for _ in range(rng.randrange(8, 64)))
            f.write(json.dumps({"id": f"j{i}", "prompt": prompt, "max_tokens": args.max_tokens,
                                "ignore_eos": True}) + "\n")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    busy, tps = {}, []
    for _ in range(args.repeat):
        out = os.path.join(tmp, "out.jsonl")
        cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force", "--quiet",
               "--threads", str(args.threads)]
        if args.np > 1:
            cmd = [args.mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(args.np)] + cmd
        subprocess.run(cmd, check=True, env=env)
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
