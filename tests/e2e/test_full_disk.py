#!/usr/bin/env python3
"""A results file that cannot be written and a disk that fills up.
- A results path that cannot be created (missing directory, a directory, a
  path under a regular file, a read-only file system where one can be
  mounted) is refused with exit 2 and a message naming it, and nothing is
  written.
- When the results file can grow no more mid-run (a file size limit; a
  full tmpfs where one can be mounted), the run stops with exit 3, the file
  ends with its last whole line, and --resume completes it once there is
  room: every job answered exactly once.

    test_full_disk.py --borg B --model M
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
args = ap.parse_args()

c = borgrun.Checker("full_disk")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
N = 12
with open(jobs, "w") as f:
    for i in range(N):
        f.write(json.dumps({"id": f"j{i}", "prompt": f"Write about the number {i}:", "max_tokens": 24}) + "\n")


def run(out, extra=(), preexec=None):
    cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--threads", "2", "--slots", "2",
           "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, preexec_fn=preexec)


def try_mount(path, opts):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True).returncode == 0


plain_file = os.path.join(tmp, "plain")
open(plain_file, "w").close()
bad = [("a missing directory", os.path.join(tmp, "no", "such", "dir", "r.jsonl")),
       ("a directory", tmp),
       ("a path under a regular file", os.path.join(plain_file, "r.jsonl"))]
ro = os.path.join(tmp, "ro")
mounted_ro = try_mount(ro, "ro,size=64k")
if mounted_ro:
    bad.append(("a read-only file system", os.path.join(ro, "r.jsonl")))
else:
    print("read-only case: no tmpfs could be mounted here (not root, or no CAP_SYS_ADMIN); the others cover it")
for name, path in bad:
    p = run(path, ["--force"])
    c.check(p.returncode == 2, f"{name}: exit {p.returncode}, expected 2: {p.stderr[-300:]}")
    c.check(path in p.stderr and "cannot create results file" in p.stderr, f"{name}: the message names the path")
if mounted_ro:
    subprocess.run(["umount", ro])


def check_stopped_and_resume(name, out, p):
    c.check(p.returncode == 3, f"{name}: exit {p.returncode}, expected 3: {p.stderr[-300:]}")
    with open(out, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    c.check(data.endswith(b"\n") and all(json.loads(l) for l in lines if l), f"{name}: the file ends with a whole line")
    c.check(0 < len([l for l in lines if l]) < N, f"{name}: it stopped part way ({len(lines) - 1} lines)")
    return len([l for l in lines if l])


# A file size limit: writes past it fail (EFBIG) as they would on a full disk.
out = os.path.join(tmp, "limited.jsonl")
limit = 1500


def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


p = run(out, ["--force"], limited)
check_stopped_and_resume("file size limit", out, p)
p = run(out, ["--resume"])
ids = [borgrun.result_id(r) for r in borgrun.read_results(out)]
c.check(p.returncode == 0 and sorted(ids) == sorted(f"j{i}" for i in range(N)),
        f"file size limit: --resume completes it, every job once ({len(ids)} lines, exit {p.returncode})")

# A real full tmpfs, where one can be mounted.
small = os.path.join(tmp, "small")
if try_mount(small, "size=4k"):
    out = os.path.join(small, "r.jsonl")
    p = run(out, ["--force"])
    kept = check_stopped_and_resume("full tmpfs", out, p)
    shutil.copy(out, os.path.join(tmp, "moved.jsonl"))
    subprocess.run(["umount", small])
    out = os.path.join(tmp, "moved.jsonl")
    p = run(out, ["--resume"])
    ids = [borgrun.result_id(r) for r in borgrun.read_results(out)]
    c.check(p.returncode == 0 and sorted(ids) == sorted(f"j{i}" for i in range(N)),
            f"full tmpfs: --resume (with room) completes it, every job once ({len(ids)} lines after {kept})")
else:
    print("full tmpfs case: no tmpfs could be mounted here; the file size limit covers it")
c.done()
