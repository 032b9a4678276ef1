#!/usr/bin/env python3
"""Embeddings ("embed": true): the prompt's final hidden states (after the
final norm) pooled (mean, or the last token's) and L2-normalized.
Two identical prompts give bitwise identical vectors, and the vectors are
the same bits in one process and through 1 and 2 pipeline stages (K = 1, 2,
3 ranks), with prompts cut into chunks at different places (--batch-tokens).

    test_embeddings.py --borg B --model M --mpiexec MPIEXEC
"""
import argparse
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--mpiexec", required=True)
args = ap.parse_args()

c = borgrun.Checker("embeddings")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "jobs.jsonl")
fox = "The quick brown fox jumps over the lazy dog, and then it runs into the forest to hide."
rows = [
    {"id": "fox-1", "prompt": fox, "embed": True},
    {"id": "fox-2", "prompt": fox, "embed": True},
    {"id": "fox-last", "prompt": fox, "embed": True, "pooling": "last"},
    {"id": "paris", "prompt": "Paris is the capital of France.", "embed": True},
    {"id": "paris-gen", "prompt": "Paris is the capital of France.", "embed": True, "max_tokens": 4},
    {"id": "plain", "prompt": "Paris is the capital of France.", "max_tokens": 4},
    {"id": "bad-pooling", "prompt": "x", "embed": True, "pooling": "max"},
]
with open(jobs, "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")

runs = {}
for name, np, extra in [("1 process", 1, ["--batch-tokens", "512"]), ("2 ranks", 2, ["--batch-tokens", "7"]),
                        ("3 ranks", 3, ["--batch-tokens", "5"])]:
    _, _, results, _ = borgrun.run(args.borg, args.model, jobs, np=np, mpiexec=args.mpiexec,
                                   extra=["--threads", "1", "--quiet", *extra])
    runs[name] = {borgrun.result_id(r): r for r in results}

one = runs["1 process"]
c.check(len(one) == len(rows), f"every job answered ({len(one)})")
for i in ("fox-1", "fox-last", "paris", "paris-gen"):
    e = one[i].get("embedding")
    c.check(e is not None and len(e) > 0 and abs(math.sqrt(sum(x * x for x in e)) - 1) < 1e-5,
            f"{i}: an L2-normalized embedding")
c.check(one["fox-1"]["embedding"] == one["fox-2"]["embedding"], "identical prompts: identical bits")
c.check(one["fox-1"]["embedding"] != one["fox-last"]["embedding"], "last-token pooling differs from the mean")
c.check(one["paris"]["embedding"] == one["paris-gen"]["embedding"], "generating after the prompt: the same embedding")
c.check(one["paris"]["token_ids"] == [] and len(one["paris-gen"]["token_ids"]) == 4,
        "an embed job generates nothing unless it asks for max_tokens")
c.check(one["paris-gen"]["token_ids"] == one["plain"]["token_ids"], "and then the same tokens as a plain job")
c.check("embedding" not in one["plain"], "a plain job has no embedding")
c.check(one["bad-pooling"]["status"] == "error" and "pooling" in one["bad-pooling"]["error"],
        "an unknown pooling is refused by name")
for name, res in runs.items():
    for i in ("fox-1", "fox-last", "paris", "paris-gen"):
        c.check(res[i].get("embedding") == one[i]["embedding"], f"{name}: {i} has the same bits as in one process")
c.done()
