"""What the bench programs share: where things are, a batch of jobs of
random words (ignore_eos, so every job generates all its tokens), and the
borg-infer command line for one run of it."""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from".split()


def arguments(doc, **defaults):
    """The options every bench takes; defaults override their values."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--mpirun", default=os.path.join(ROOT, ".venv", "bin", "mpirun"))
    for name in ("np", "jobs", "max_tokens", "threads", "repeat"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=defaults[name])
    return ap


def write_jobs(path, n, max_tokens, prompt_words=(8, 64), seed=7, fields=None):
    """n jobs of prompt_words (lo, hi) random words each, max_tokens new tokens each; fields(i) (optional)
    gives more fields of job i, e.g. its sampling parameters."""
    rng = random.Random(seed)
    lo, hi = prompt_words
    with open(path, "w") as f:
        for i in range(n):
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(lo, hi) if hi > lo else lo))
            job = {"id": f"j{i}", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
            f.write(json.dumps({**job, **(fields(i) if fields else {})}) + "\n")


def command(args, jobs, out, extra=()):
    """borg-infer run on jobs, under mpirun when args.np > 1."""
    cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs, "--out", out, "--force", "--quiet",
           "--threads", str(args.threads), *extra]
    if args.np > 1:
        cmd = [args.mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(args.np)] + cmd
    return cmd
