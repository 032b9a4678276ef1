#!/usr/bin/env python3
"""A stage rank that would compute something else stops the run before it
computes: launched MPMD (each rank its own command line, as on a cluster
where nodes see their own copy of the model and their own environment),
a stage given another model file, another activation mode (by option or by
its environment's default) or other run options (a layer split) makes the
run exit 2 with a message naming that rank and the difference, and no job is
answered. A copy of the model under another path is the same model: that
run completes.

    test_mismatch.py --borg B --model M --other OTHER.gguf --mpiexec MPIEXEC
"""
import argparse
import os
import shutil
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


def rank(model=None, extra=(), env=()):
    return ["-np", "1", *(["env", *env] if env else []), args.borg, "run", "--model", model or args.model, "--jobs", args.jobs, "--out", out,
            "--force", "--threads", "1", "--quiet", *extra]


cases = [
    ("another model file", [rank(), rank(), rank(args.other)], ["rank 2", "different model file"]),
    ("another activation mode", [rank(), rank(extra=["--activations", "f32"]), rank()],
     ["rank 1", "asking for f32 activations", "rank 0 runs with q8"]),
    ("another environment default for the activation mode",
     [rank(), rank(), rank(env=["BORG_Q8_ACTIVATIONS=0"])],
     ["rank 2", "asking for f32 activations", "rank 0 runs with q8"]),
    ("another layer split", [rank(), rank(extra=["--layers", "10,20"]), rank(extra=["--layers", "10,20"])],
     ["rank 1", "other run options than rank 0"]),
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

copy = os.path.join(tmp, "copy-of-model.gguf")
shutil.copyfile(args.model, copy)
cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", *rank(), ":", *rank(), ":", *rank(copy)]
p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=borgrun.mpi_env())
c.check(p.returncode == 0, f"a copy under another path: exit {p.returncode}, expected 0\n{p.stderr}")
lines = borgrun.read_results(out) if os.path.exists(out) else []
c.check(len(lines) == borgrun.count_jobs(args.jobs), f"a copy under another path: every job answered ({len(lines)})")
print(f"a copy of the model under another path: accepted, exit {p.returncode}")

# A stage on another kind of CPU (here: one told to take the portable
# kernels) is accepted, with a warning event naming it.
cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", *rank(extra=["--log-json"]), ":",
       *rank(extra=["--log-json"]), ":", *rank(extra=["--log-json"], env=["BORG_ISA=portable"])]
p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=borgrun.mpi_env())
warned = borgrun.events(p.stderr, "kernel_paths_differ")
c.check(p.returncode == 0, f"another kernel path on one stage: exit {p.returncode}, expected 0\n{p.stderr[-500:]}")
c.check(len(warned) == 1 and warned[0]["stage_rank"] == 2 and warned[0]["isa"] == "portable",
        f"another kernel path on one stage: a warning event names rank 2: {warned}")
print(f"another kernel path on one stage: accepted with a warning, exit {p.returncode}")

# One byte changed where the fingerprint does not look (between two of its
# 64 data samples): --verify-model, which hashes every byte, refuses it.
from gguf import GGUFReader  # noqa: E402

data_off = GGUFReader(args.model).data_offset
size = os.path.getsize(args.model)
step = (size - data_off - 64) // 63
flip = data_off + 10 * step + step // 2
changed = os.path.join(tmp, "changed-model.gguf")
shutil.copyfile(args.model, changed)
with open(changed, "r+b") as f:
    f.seek(flip)
    b = f.read(1)
    f.seek(flip)
    f.write(bytes([b[0] ^ 0x01]))
vm = ["--verify-model"]
cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", *rank(extra=vm), ":", *rank(extra=vm), ":",
       *rank(changed, extra=vm)]
p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=borgrun.mpi_env())
c.check(p.returncode == 2, f"--verify-model, one byte changed: exit {p.returncode}, expected 2\n{p.stderr}")
c.check("rank 2" in p.stderr and "--verify-model" in p.stderr,
        f"--verify-model, one byte changed: the message names rank 2 and the full hash\n{p.stderr}")
print(f"--verify-model with one byte changed off the fingerprint's samples: refused, exit {p.returncode}")
c.done()
