#!/usr/bin/env python3
"""How a long batch tells how it is going: under a pseudo-terminal, one
progress line rewritten in place; with stderr piped, a `progress` event
every --progress-s seconds; while it runs, `borg-infer status --run-dir D`
shows a running batch and the --metrics file parses with prometheus_client's
own parser.

    test_progress.py --borg B --model M
"""
import argparse
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
args = ap.parse_args()

c = borgrun.Checker("progress")
N_JOBS = 24  # a few seconds on 2 cores; the event count asked for follows the run's own length
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
with open(jobs, "w") as f:
    for i in range(N_JOBS):
        f.write(json.dumps({"id": f"j{i}", "prompt": f"Count from {i} to {i + 40}:", "max_tokens": 64,
                            "ignore_eos": True}) + "\n")
base = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--force", "--threads", "2", "--slots", "4"]

# 1. A pseudo-terminal: the line is rewritten in place (\r, erase to the end).
master, slave = pty.openpty()
p = subprocess.Popen(base + ["--out", os.path.join(tmp, "tty.jsonl"), "--progress-s", "1"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=slave, close_fds=True)
os.close(slave)
seen = b""
while True:
    r, _, _ = select.select([master], [], [], 1.0)
    if r:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    elif p.poll() is not None:
        break
p.wait(timeout=300)
os.close(master)
text = seen.decode("utf-8", "replace")
c.check(p.returncode == 0, f"terminal run: exit {p.returncode}")
c.check("\r" in text and "\x1b[K" in text and "jobs" in text,
        f"terminal run: a progress line rewritten in place: {text[:300]!r}")

# 2. Piped stderr: a progress event every second, with typed fields.
# 3. While it runs: status shows it running; the metrics file parses.
run_dir = os.path.join(tmp, "run")
metrics = os.path.join(tmp, "metrics.prom")
started = time.time()
p = subprocess.Popen(base + ["--out", os.path.join(tmp, "piped.jsonl"), "--progress-s", "0.5", "--log-json",
                             "--run-dir", run_dir, "--metrics", metrics],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
status_running, families = None, None
deadline = time.time() + 120
while p.poll() is None and time.time() < deadline:
    time.sleep(0.5)
    s = subprocess.run([args.borg, "status", "--run-dir", run_dir], capture_output=True, text=True)
    if s.returncode == 0 and "running" in s.stdout and status_running is None:
        status_running = s.stdout
    if os.path.exists(metrics) and families is None and status_running:
        with open(metrics) as f:
            families = {m.name: m for m in text_string_to_metric_families(f.read())}
_, err = p.communicate(timeout=300)
wall = time.time() - started
c.check(p.returncode == 0, f"piped run: exit {p.returncode}: {err[-300:]}")
prog = borgrun.events(err, "progress")
# a faster host runs the batch in fewer periods; start-up and the last
# partial period may hold none
want = max(1, min(3, int(wall / 0.5) - 3))
c.check(len(prog) >= want, f"piped run: a progress event every --progress-s ({len(prog)} events in {wall:.1f} s)")
c.check(all(isinstance(e.get("jobs_done", e.get("done")), int) for e in prog) if prog else False,
        f"progress events carry typed fields: {prog[:1]}")
c.check(status_running is not None, "status shows the batch running")
if status_running:
    print(status_running.strip())
c.check(families is not None and "borg_jobs" in families and "borg_job_latency_seconds" in families,
        f"the metrics file parses with prometheus_client ({sorted(families or {})[:6]})")
with open(os.path.join(run_dir, "status.json")) as f:
    final = json.load(f)
c.check(final["state"] == "finished" and final["jobs"]["done"] == N_JOBS, f"the status file at the end: {final}")
c.done()
