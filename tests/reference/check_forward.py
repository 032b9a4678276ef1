#!/usr/bin/env python3
"""Holds the C forward pass (tests/forward_dump) against the numpy reference
(ref_llama.py), three times per prompt:
  - f32 activations (BORG_Q8_ACTIVATIONS=0) and an f32 KV cache: logits at
    every step within compare_logits.py's default tolerance and identical
    greedy continuations;
  - f32 activations and the default f16 KV cache, against a reference that
    stores its keys and values as f16 too (--kv-f16): within F16_RTOL of the
    step's largest logit and identical continuations. It cannot be as tight
    as f32: the reference rounds its float64 keys, the engine its float32
    ones, so now and then an element near a halfway point rounds the other
    way, a step of 2^-11 of it (measured on SmolLM2-135M Q4_1: up to 4.6e-4
    of the largest logit, tiny models up to 6e-5; against the f32 reference
    the f16 cache moves them by up to 9.2e-4, so this pass catches a wrong
    row or scale, not a wrong rounding mode);
  - 8-bit activations and the f16 cache, the engine's defaults, against a
    reference that rounds both the same way (--q8-act --kv-f16): within
    Q8_RTOL of the step's largest logit, and the
    continuations may part only at a near-tie (see compare_logits.py for why
    this cannot be tight; measured on SmolLM2-135M Q4_1: up to 5.6% of the
    largest logit, tiny models up to 0.3%).

    check_forward.py --dump build/tests/forward_dump --model M.gguf --gen 32
        real model: five prompts, prefilled whole, in chunks and in other slots
    check_forward.py --dump ... --tiny DIR
        tiny random models written here: every weight type, GQA ratios 1-3,
        tied and untied heads, odd shapes
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable

# SmolLM2 ids of: "The capital of France is", "def fibonacci(n):", "Photosynthesis
# converts sunlight into", a ChatML turn asking 2+2, "Les montagnes des Alpes sont".
PROMPTS = [
    "504,3575,282,4649,314",
    "1604,3987,46477,24,94,727",
    "33580,14870,18065,8118,618",
    "1,4093,198,1780,314,216,34,27,34,47,2,198,1,520,9531,198",
    "39571,44753,1480,266,708,1065,3030,262,1866",
]
# How forward_dump runs each prompt: threads, prefill chunk, KV slot.
LAYOUTS = [("1", "0", "0"), ("2", "3", "0"), ("2", "0", "2"), ("1", "4", "1"), ("2", "1", "0")]

# Tiny models: (weight type, embedding type, dim, heads, kv heads, ffn, tied, norm type)
TINY = [
    ("F32", "F32", 64, 2, 2, 96, False, "F32"),
    ("F16", "F16", 96, 3, 1, 64, True, "F32"),
    ("BF16", "BF16", 64, 4, 2, 128, False, "BF16"),
    ("Q8_0", "Q8_0", 96, 3, 3, 160, True, "F32"),
    ("Q4_0", "Q4_1", 128, 4, 2, 96, False, "F16"),
    ("Q4_1", "Q8_0", 96, 6, 2, 224, False, "F32"),
    ("Q5_0", "Q5_1", 128, 4, 1, 96, False, "F32"),
    ("Q5_1", "Q5_0", 96, 3, 1, 160, True, "F16"),
    ("Q4_K", "Q4_K", 256, 4, 2, 512, False, "F32"),
    ("Q5_K", "Q8_0", 256, 8, 4, 256, True, "F32"),
    ("Q6_K", "Q6_K", 256, 4, 1, 512, False, "BF16"),
]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.stderr.write(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return p


Q8_RTOL = 0.1
F16_RTOL = 1e-3


def compare(ref, got, label, q8, kv):
    if q8:
        opts = ["--atol", "0", "--rtol", str(Q8_RTOL), "--tie", "1"]
    else:
        opts = ["--atol", "0", "--rtol", str(F16_RTOL)] if kv == "f16" else []
    p = run([PY, os.path.join(HERE, "compare_logits.py"), ref, got] + opts)
    last = (p.stdout.strip().splitlines() or [""])[-1]
    print(f"{label}: {last}")
    return p.returncode == 0


# (8-bit activations, KV cache type) of each pass.
PASSES = [(False, "f32"), (False, "f16"), (True, "f16")]


def check_model(dump, model, prompts, gen, work, label):
    failed = passed = 0
    for q8, kv in PASSES:
        mode = f"{'8-bit' if q8 else 'f32'} act, {kv} KV"
        tag = f"{'q8' if q8 else 'f32'}-kv{kv}"
        refs = []
        cmd = [PY, os.path.join(HERE, "ref_llama.py"), "--model", model, "--gen", str(gen)]
        if q8:
            cmd.append("--q8-act")
        if kv == "f16":
            cmd.append("--kv-f16")
        for i, toks in enumerate(prompts):
            refs.append(os.path.join(work, f"{label}-{tag}-ref{i}.bin"))
            cmd += ["--tokens", toks, "--out", refs[-1]]
        if run(cmd).returncode:
            failed += len(prompts)
            continue
        env = dict(os.environ)
        env["BORG_Q8_ACTIVATIONS"] = "1" if q8 else "0"
        for i, toks in enumerate(prompts):
            threads, chunk, slot = LAYOUTS[i % len(LAYOUTS)]
            out = os.path.join(work, f"{label}-{tag}-c{i}.bin")
            p = subprocess.run([dump, "--model", model, "--tokens", toks, "--gen", str(gen), "--out", out,
                                "--threads", threads, "--chunk", chunk, "--slot", slot, "--kv-dtype", kv],
                               capture_output=True, text=True, env=env)
            if p.returncode:
                sys.stderr.write(f"forward_dump failed ({p.returncode}):\n{p.stdout}{p.stderr}")
                failed += 1
                continue
            ok = compare(refs[i], out, f"{label} {mode} prompt {i} (threads {threads}, chunk {chunk}, slot {slot})", q8, kv)
            passed, failed = passed + ok, failed + (not ok)
    return failed, passed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--model")
    ap.add_argument("--tiny", metavar="DIR")
    ap.add_argument("--gen", type=int, default=32)
    args = ap.parse_args()
    work = args.tiny or os.environ.get("TMPDIR", "/tmp")
    os.makedirs(work, exist_ok=True)
    failed = passed = 0
    if args.model:
        if not os.path.exists(args.model):
            sys.exit(f"{args.model} is missing: run tests/setup.sh first")
        f, p = check_model(args.dump, args.model, PROMPTS, args.gen, work, "model")
        failed, passed = failed + f, passed + p
    if args.tiny:
        for wtype, emb, dim, heads, kv, ffn, tied, norm in TINY:
            path = os.path.join(work, f"tiny-{wtype}.gguf")
            cmd = [PY, os.path.join(ROOT, "tests", "tools", "make_tiny_model.py"), "--out", path, "--wtype", wtype,
                   "--emb-type", emb, "--dim", str(dim), "--n-head", str(heads), "--n-kv-head", str(kv),
                   "--ffn", str(ffn), "--norm-type", norm, "--n-layers", "3", "--vocab", "300", "--seed", "7"]
            if tied:
                cmd.append("--tied")
            if run(cmd).returncode:
                failed += 1
                continue
            f, p = check_model(args.dump, path, ["3,1,4,1,5,9,2,6", "100,200,17"], args.gen, work, f"tiny-{wtype}")
            failed, passed = failed + f, passed + p
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
