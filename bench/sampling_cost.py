#!/usr/bin/env python3
"""What sampling costs against greedy decoding.

Two batches (16 jobs x 192 new tokens and 64 jobs x 128, prompts of 8-63
random words, ignore_eos so every job generates all its tokens), each run
greedy and sampled (temperature 0.8, top_p 0.95, seed = the job's number)
alternately (the one that goes first changes each repetition), --repeat
times each, one process per run; prints the median
generated tokens/s of each and the sampled/greedy ratio. The sampled runs
must give the same tokens every time (that the answers are also the same
through pipelines of 1-4 stages, sampled jobs included, is
e2e_split_invariance's job).

    bench/sampling_cost.py [--threads 2] [--repeat 3] [--borg build/borg-infer]
                           [--jobs N --max-tokens M: one batch of N x M instead]
"""
import json
import os
import platform
import statistics
import subprocess
import tempfile

from benchjobs import arguments, command, write_jobs

BATCHES = [(16, 192), (64, 128)]
SAMPLED = {"temperature": 0.8, "top_p": 0.95}


def run(args, jobs, out):
    """One run: its generated tokens/s and each job's tokens."""
    subprocess.run(command(args, jobs, out), check=True,
                   env=dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
    with open(out + ".summary.json") as f:
        tps = json.load(f)["generated_tokens_per_s"]
    with open(out) as f:
        tokens = {r["id"]: r["token_ids"] for r in map(json.loads, f)}
    return tps, tokens


def main():
    args = arguments(__doc__, np=1, jobs=0, max_tokens=128, threads=2, repeat=3).parse_args()
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "r.jsonl")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    print(f"{args.borg}, {args.threads} threads, np {args.np}, median of {args.repeat}, on {cpu}")
    for n, max_tokens in [(args.jobs, args.max_tokens)] if args.jobs else BATCHES:
        files = {}
        for mode, fields in [("greedy", None), ("sampled", lambda i: {**SAMPLED, "seed": i})]:
            files[mode] = os.path.join(tmp, f"{mode}-{n}.jsonl")
            write_jobs(files[mode], n, max_tokens, fields=fields)
        tps = {"greedy": [], "sampled": []}
        answers = []
        for rep in range(args.repeat):
            for mode in ("greedy", "sampled") if rep % 2 == 0 else ("sampled", "greedy"):
                t, tokens = run(args, files[mode], out)
                tps[mode].append(t)
                if mode == "sampled":
                    answers.append(tokens)
        same = all(a == answers[0] for a in answers)
        greedy, sampled = statistics.median(tps["greedy"]), statistics.median(tps["sampled"])
        print(f"{n} jobs x {max_tokens} new tokens: greedy {greedy:.1f} tok/s "
              f"(runs {' '.join(f'{t:.1f}' for t in tps['greedy'])}), sampled {sampled:.1f} tok/s "
              f"(runs {' '.join(f'{t:.1f}' for t in tps['sampled'])}), sampled/greedy {sampled / greedy:.3f}; "
              f"sampled answers {'identical' if same else 'DIFFER'} across runs")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
