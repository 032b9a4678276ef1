#!/usr/bin/env python3
"""The KV cache's type (--kv-dtype): f16 by default, f32 on request, decided
by rank 0 and shown in the summary. The example batch in one process with
each: the rank_summary and run_summary events and the summary file name the
type and the bytes per token, f16 half of f32, and both answer sensibly;
through a pipeline of 2 stages the stages' shares add up to the single
process's figure; a stage rank started with another --kv-dtype than rank 0
(MPMD) stops the run with exit 2 naming it.

    test_kv_dtype.py --borg B --model M --jobs J --mpiexec MPIEXEC
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--jobs", required=True)
ap.add_argument("--mpiexec", required=True)
args = ap.parse_args()

c = borgrun.Checker("kv-dtype")
per_token = {}
for dtype in ("f16", "f32"):
    extra = ["--threads", "2", "--log-json"] + (["--kv-dtype", dtype] if dtype != "f16" else [])
    _, stderr, results, summary = borgrun.run(args.borg, args.model, args.jobs, extra=extra)
    ranks = borgrun.events(stderr, "rank_summary")
    runs = borgrun.events(stderr, "run_summary")
    c.check(len(ranks) == 1 and ranks[0]["kv_dtype"] == dtype, f"{dtype}: the rank_summary event names it: {ranks}")
    c.check(len(runs) == 1 and runs[0]["kv_dtype"] == dtype, f"{dtype}: the run_summary event names it: {runs}")
    if len(ranks) != 1 or len(runs) != 1:
        continue
    per_token[dtype] = runs[0]["kv_bytes_per_token"]
    c.check(per_token[dtype] > 0 and ranks[0]["kv_bytes_per_token"] == per_token[dtype],
            f"{dtype}: one stage holds the whole {per_token[dtype]} bytes per token")
    stages = [r for r in summary["ranks"] if r["role"].startswith("stage")]
    c.check(summary["kv_dtype"] == dtype and summary["kv_bytes_per_token"] == per_token[dtype] and
            [r["kv_bytes_per_token"] for r in stages] == [per_token[dtype]],
            f"{dtype}: the summary file says the same: {summary.get('kv_dtype')}, {summary.get('kv_bytes_per_token')}")
    texts = {borgrun.result_id(r): borgrun.text_of(r) for r in results}
    c.check("Paris" in texts.get("capital-france", ""), f"{dtype}: capital-france: {texts.get('capital-france')!r}")
    print(f"{dtype}: {per_token[dtype]} KV bytes per token")
c.check(per_token.get("f32") == 2 * per_token.get("f16", -1), f"an f16 cache is half an f32 one: {per_token}")

_, stderr, _, summary = borgrun.run(args.borg, args.model, args.jobs, np=3, mpiexec=args.mpiexec,
                                    extra=["--threads", "1", "--log-json"])
shares = [e["kv_bytes_per_token"] for e in borgrun.events(stderr, "rank_summary")]
c.check(len(shares) == 2 and all(s > 0 for s in shares) and sum(shares) == per_token.get("f16"),
        f"2 stages: their shares {shares} add up to {per_token.get('f16')}")
c.check(summary is not None and summary["kv_bytes_per_token"] == per_token.get("f16"),
        "2 stages: the summary file has the pipeline's total")

with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
    out = os.path.join(tmp, "results.jsonl")

    def rank(extra=()):
        return ["-np", "1", args.borg, "run", "--model", args.model, "--jobs", args.jobs, "--out", out, "--force",
                "--threads", "1", "--quiet", *extra]

    cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", *rank(), ":", *rank(), ":",
           *rank(["--kv-dtype", "f32"])]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=borgrun.mpi_env())
    c.check(p.returncode == 2, f"a stage given another --kv-dtype: exit {p.returncode}, expected 2\n{p.stderr}")
    c.check("rank 2" in p.stderr and "--kv-dtype" in p.stderr,
            f"a stage given another --kv-dtype: the message names the rank and the option\n{p.stderr}")
    lines = borgrun.read_results(out) if os.path.exists(out) else []
    c.check(not lines, f"a stage given another --kv-dtype: no job was answered ({len(lines)} lines)")
c.done()
