#!/usr/bin/env python3
"""borg-infer perplexity against llama-perplexity on the same model and text.

tests/goldens/perplexity.json holds llama-perplexity's estimate on
tests/perplexity/text.txt after each chunk, with an F32 and with an F16
(llama.cpp's default) KV cache. This test runs `borg-infer perplexity` on
the first --chunks chunks (in one process, or through a pipeline) with the
KV cache --kv-dtype names (f16, the default, when not given) and requires
its estimate within --tol (relative) of llama.cpp's with the same cache
after as many chunks; it also checks the summary it writes.

    test_perplexity.py --borg B --model M --model-name smollm2 [--ctx 512] [--chunks 4]
                       [--activations q8|f32] [--kv-dtype f16|f32] [--np 3 --mpiexec M] [--tol 0.01]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--borg", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-name", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--activations", default="q8")
    ap.add_argument("--kv-dtype", default="f16")
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--mpiexec")
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument("--text", default=os.path.join(ROOT, "tests", "perplexity", "text.txt"))
    ap.add_argument("--goldens", default=os.path.join(ROOT, "tests", "goldens", "perplexity.json"))
    args = ap.parse_args()
    with open(args.goldens) as f:
        run = next(r for r in json.load(f)["runs"]
                   if r["model"] == args.model_name and r["n_ctx"] == args.ctx and r["kv_cache"] == args.kv_dtype)
    want = run["chunk_trace"][args.chunks - 1]
    c = borgrun.Checker("perplexity")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        summary = os.path.join(tmp, "ppl.json")
        cmd = [args.borg, "perplexity", "--model", args.model, "--text", args.text, "--ctx", str(args.ctx),
               "--chunks", str(args.chunks), "--activations", args.activations, "--kv-dtype", args.kv_dtype,
               "--out", summary, "--quiet"]
        if args.np > 1:
            cmd = [args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(args.np), *cmd, "--threads", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           env=borgrun.mpi_env() if args.np > 1 else os.environ)
        print(p.stdout.strip())
        if p.returncode:
            sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
        with open(summary) as f:
            s = json.load(f)
    got = s["perplexity"]
    print(f"{args.model_name} ctx {args.ctx}, {args.chunks} chunks, {args.activations} activations, "
          f"{args.kv_dtype} KV: borg {got:.4f}, llama.cpp {want:.4f} ({got / want - 1:+.3%})")
    c.check(abs(got / want - 1) <= args.tol, f"perplexity {got:.4f} within {args.tol:.0%} of llama.cpp's {want:.4f}")
    c.check(s["chunks"] == args.chunks and s["ctx"] == args.ctx, "the summary names the chunks and context")
    c.check(s["scored_tokens"] == args.chunks * (args.ctx - 1 - args.ctx // 2), "the second half of each chunk is scored")
    c.check(len(s["chunk_perplexity"]) == args.chunks, "a figure per chunk")
    c.check(s["activations"] == args.activations, "the summary names the activation mode")
    c.check(s["kv_dtype"] == args.kv_dtype, "the summary names the KV cache type")
    c.done()


if __name__ == "__main__":
    main()
