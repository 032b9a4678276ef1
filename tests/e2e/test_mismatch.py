#!/usr/bin/env python3
"""A stage rank that would compute something else stops the run before it
computes: launched MPMD (each rank its own command line, as on a cluster
where nodes see their own copy of the model and their own environment),
a stage given another model file, another activation mode or another layer
split makes the run exit 2 with a message naming that rank and the
difference, and no job is answered.

    test_mismatch.py --borg B --model M --other OTHER.gguf --mpiexec MPIEXEC
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
ap.add_argument("--other", required=True, help="another model file")
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--jobs", required=True)
args = ap.parse_args()

c = borgrun.Checker("mismatch")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
out = os.path.join(tmp, "results.jsonl")


def rank(model=None, extra=()):
    return ["-np", "1", args.borg, "run", "--model", model or args.model, "--jobs", args.jobs, "--out", out,
            "--force", "--threads", "1", "--quiet", *extra]


cases = [
    ("another model file", [rank(), rank(), rank(args.other)], ["rank 2", "different model file"]),
    ("another activation mode", [rank(), rank(extra=["--activations", "f32"]), rank()],
     ["rank 1", "f32 activations, rank 0 with q8"]),
    ("another layer split", [rank(), rank(extra=["--layers", "10,20"]), rank(extra=["--layers", "10,20"])],
     ["rank 1", "loaded layers 0-9; rank 0 planned 0-19"]),
]
for name, contexts, expect in cases:
    cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none"]
    for i, ctx in enumerate(contexts):
        cmd += ([":"] if i else []) + ctx
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=borgrun.mpi_env())
    c.check(p.returncode == 2, f"{name}: exit {p.returncode}, expected 2\n{p.stderr}")
    for e in expect:
        c.check(e in p.stderr, f"{name}: the message names {e!r}\n{p.stderr}")
    lines = borgrun.read_results(out) if os.path.exists(out) else []
    c.check(not lines, f"{name}: no job was answered ({len(lines)} lines)")
    print(f"{name}: refused, exit {p.returncode}")
c.done()
