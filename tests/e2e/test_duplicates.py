#!/usr/bin/env python3
"""Two jobs with the same id: the first runs, each later one gets an error
line naming the line of the first (ids must be unique), so every result
answers one job. A run killed mid-way and resumed still answers every line
of the jobs file exactly once, the first occurrence of each id with its
result and each later one with its error.

    test_duplicates.py --borg B --model M
"""
import argparse
import collections
import json
import os
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

c = borgrun.Checker("duplicates")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
ids = [f"j{i}" for i in range(14)]
ids[2], ids[9], ids[12] = "j1", "j3", "j1"  # j1 on lines 2, 3 and 13; j3 on lines 4 and 10
with open(jobs, "w") as f:
    for n, i in enumerate(ids):
        # j1's first job is long: the error line of its repeat on line 3 is
        # written before its own result, and the run is killed in between.
        long_one = n == 1
        f.write(json.dumps({"id": i, "prompt": f"Say {n} words:", "max_tokens": 160 if long_one else 12,
                            "ignore_eos": long_one}) + "\n")
first_line = {}
for n, i in enumerate(ids, 1):
    first_line.setdefault(i, n)

out = os.path.join(tmp, "r.jsonl")
base = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--threads", "2", "--slots", "2",
        "--quiet"]
p = subprocess.Popen(base + ["--force"])
borgrun.wait_for_lines(out, 3, p)
p.send_signal(signal.SIGKILL)
p.wait()
before = [borgrun.result_id(r) for r in borgrun.read_results(out)]
c.check("j1" in before and not any(borgrun.result_id(r) == "j1" and r["status"] == "ok"
                                   for r in borgrun.read_results(out)),
        f"killed after the repeat's error line and before the first j1's result: {before}")
subprocess.run(base + ["--resume"], check=True, timeout=600)
results = borgrun.read_results(out)
by_id = collections.defaultdict(list)
for r in results:
    by_id[borgrun.result_id(r)].append(r)
c.check(len(results) == len(ids), f"one line per line of the jobs file ({len(results)} for {len(ids)})")
for i, n in collections.Counter(ids).items():
    got = by_id[i]
    ok = [r for r in got if r["status"] == "ok"]
    err = [r for r in got if r["status"] == "error"]
    c.check(len(got) == n and len(ok) == 1 and len(err) == n - 1, f"{i}: one result and {n - 1} error(s): {got}")
    for r in err:
        c.check(f"line {first_line[i]}" in r["error"] and "unique" in r["error"],
                f"{i}: the error names the first line ({r['error']})")
c.done()
