#!/usr/bin/env python3
"""--h5 R.h5: the results again in HDF5, job by job in step with the JSONL.
- ids, statuses and token ids equal the JSONL's; each generated token's
  log-probability in /jobs/token_logprobs equals the one the model gives
  that token when the text is fed back as a prompt (prompt_logprobs);
- embeddings land in /embeddings with the job's row;
- a run killed mid-way leaves a file h5py opens, and --resume completes it
  with every job exactly once.

    test_h5.py --borg B --model M
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
args = ap.parse_args()

c = borgrun.Checker("h5")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
N = 16
with open(jobs, "w") as f:
    for i in range(N):
        job = {"id": f"j{i}", "prompt": f"List {i + 3} colours:", "max_tokens": 24}
        if i % 4 == 1:
            job["embed"] = True
        if i % 4 == 2:
            job.update(temperature=0.8, seed=i)
        f.write(json.dumps(job) + "\n")
out, h5 = os.path.join(tmp, "r.jsonl"), os.path.join(tmp, "r.h5")
base = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--h5", h5, "--threads", "2",
        "--slots", "2", "--quiet"]


def rows(path):
    with h5py.File(path, "r") as f:
        j = f["jobs"]
        r = [{"id": j["id"][k].decode(), "status": j["status"][k].decode(), "token_ids": list(j["token_ids"][k]),
              "lp": list(j["token_logprobs"][k]), "prompt": list(j["prompt_token_ids"][k])}
             for k in range(j["id"].shape[0])]
        emb = {int(k): v for k, v in zip(f["embeddings/job_row"][:], f["embeddings/vector"][:])}
        return r, emb, dict(f.attrs)


# A run killed after a few jobs: the file opens, and --resume finishes it.
p = subprocess.Popen(base + ["--force"], stderr=subprocess.PIPE)
borgrun.wait_for_lines(out, 4, p)
p.send_signal(signal.SIGKILL)
p.wait()
cut, _, _ = rows(h5)
c.check(len(cut) >= 4, f"killed mid-way: h5py opens the file with its {len(cut)} rows")
subprocess.run(base + ["--resume"], check=True, timeout=600)
got, emb, attrs = rows(h5)
lines = borgrun.read_results(out)
c.check(sorted(r["id"] for r in got) == sorted(f"j{i}" for i in range(N)), "after --resume: every job exactly once")
by_id = {borgrun.result_id(r): r for r in lines}
c.check(all(r["token_ids"] == by_id[r["id"]]["token_ids"] and r["status"] == by_id[r["id"]]["status"] for r in got),
        "ids, statuses and token ids equal the JSONL's")
c.check(attrs.get("format") == "borg-infer results 1" and len(attrs.get("model_fingerprint", "")) == 16,
        f"attributes: {sorted(attrs)}")
for k, r in enumerate(got):
    e = by_id[r["id"]].get("embedding")
    c.check((k in emb) == (e is not None), f"{r['id']}: an embedding row exactly when the job asked")
    if e is not None and k in emb:
        c.check(np.array_equal(np.asarray(e, dtype=np.float32), emb[k]), f"{r['id']}: the same vector as the JSONL")

# Teacher forcing: the prompt with the generated tokens, scored.
check = os.path.join(tmp, "check.jsonl")
with open(check, "w") as f:
    for r in got:
        if r["token_ids"]:
            f.write(json.dumps({"id": r["id"], "prompt_token_ids": [int(t) for t in r["prompt"] + r["token_ids"]],
                                "max_tokens": 0, "prompt_logprobs": True}) + "\n")
_, _, scored, _ = borgrun.run(args.borg, args.model, check, extra=["--threads", "2", "--quiet"])
worst = 0.0
for s in scored:
    r = next(x for x in got if x["id"] == borgrun.result_id(s))
    tf = s["prompt_logprobs"][len(r["prompt"]):]
    worst = max(worst, max(abs(a - b) for a, b in zip(tf, r["lp"])))
c.check(worst < 2e-3, f"each token's log-probability is the model's for it (worst difference {worst:.2e})")
c.check(all(lp <= 0 for r in got for lp in r["lp"]), "every log-probability is at most 0")
c.done()
