#!/usr/bin/env python3
"""Compares two greedy-decoding logits files (the format ref_llama.py and
forward_dump write: int32 n_steps, int32 n_vocab, then per step int32 argmax
token and float32 logits[n_vocab]).

    compare_logits.py REF.bin TEST.bin [--atol X] [--rtol Y]

Passes when both files have the same shape and token sequence and, at every
step, max|ref - test| <= atol + rtol * max|ref|. The first file is the reference
(its step maximum scales rtol). Prints a line per failing step and a final
"OK ..." or "FAIL ..." line; exits 0 on OK, 1 on FAIL. Once the tokens differ,
the later steps were computed from different inputs, so comparison stops there.

Default tolerances (atol 1e-3, rtol 1e-4): the reference works in float64 on the
dequantized weights, so a float32 engine on the same weights differs from it by
rounding alone. Measured on SmolLM2-135M Q4_1, 5 prompts x 33 steps: the C
engine (any thread count, chunked prefill, any slot) and llama.cpp on a float32
copy with a float32 KV cache are both within 6e-5 (max|a| ~20-38, limit ~4e-3,
so ~70x margin); tiny models are within 2e-5. Small real bugs are larger than
the limit: eps added outside the sqrt in RMSNorm moves logits by 1.3e-2, a wrong
eps (1e-6 for 1e-5) by 1.3e-2. Deliberate precision cuts need a looser --atol:
an f16 KV cache (llama.cpp's default) moves logits by 2.7e-2, f16 rounding of
every norm output by 2.5e-2 (bf16: 0.19), llama.cpp's 8-bit activations by 1.5.

The engine's default 8-bit activations (BORG_Q8_ACTIVATIONS=0 turns them off) are compared
by check_forward.py against a reference that rounds its activations the same
way (ref_llama.py --q8-act), more loosely: it cannot be tight, because the engine's float32 activations differ from the
reference's float64 ones by ~1e-6, enough to move a value across a rounding
boundary now and then, and each such code costs up to |w| times one step.
"""
import argparse
import sys

import numpy as np


def read_steps(path):
    """Returns (tokens int32[n_steps], logits float32[n_steps, n_vocab])."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size < 8:
        raise ValueError(f"{path}: too short for a header")
    n_steps, n_vocab = (int(v) for v in data[:8].view("<i4"))
    record = 4 + 4 * n_vocab
    if n_steps < 0 or n_vocab <= 0 or data.size != 8 + n_steps * record:
        raise ValueError(f"{path}: size {data.size} does not match {n_steps} steps of {n_vocab} logits")
    body = data[8:].reshape(n_steps, record)
    tokens = body[:, :4].copy().view("<i4").reshape(n_steps)
    logits = body[:, 4:].copy().view("<f4").reshape(n_steps, n_vocab)
    return tokens, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref")
    ap.add_argument("test")
    ap.add_argument("--atol", type=float, default=1e-3)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--tie", type=float, default=0.0,
                    help="a divergence where the reference's margin between the two tokens is below this "
                         "is a near-tie: comparison stops there without failing")
    args = ap.parse_args()

    try:
        ref_tokens, ref = read_steps(args.ref)
        test_tokens, test = read_steps(args.test)
    except (OSError, ValueError) as e:
        print(f"FAIL {e}")
        return 1
    if ref.shape != test.shape:
        print(f"FAIL shapes differ: {args.ref} has {ref.shape[0]} steps x {ref.shape[1]} logits, "
              f"{args.test} has {test.shape[0]} x {test.shape[1]}")
        return 1

    failed = compared = 0
    worst_abs = worst_rel = 0.0
    for step in range(ref.shape[0]):
        compared += 1
        if not (np.all(np.isfinite(ref[step])) and np.all(np.isfinite(test[step]))):
            print(f"step {step}: non-finite logits")
            failed += 1
            continue
        diff = np.abs(ref[step].astype(np.float64) - test[step])
        scale = float(np.abs(ref[step]).max())
        max_abs = float(diff.max())
        rel = max_abs / scale if scale > 0 else max_abs
        worst_abs, worst_rel = max(worst_abs, max_abs), max(worst_rel, rel)
        limit = args.atol + args.rtol * scale
        if max_abs > limit:
            failed += 1
            print(f"step {step}: max|a-b| {max_abs:.3g} at logit {int(diff.argmax())}, "
                  f"max|a-b|/max|a| {rel:.3g} (limit {limit:.3g})")
        a, b = int(ref_tokens[step]), int(test_tokens[step])
        if a != b:
            # The reference's margin between the two tells a near-tie from a real error.
            margin = float(ref[step][a]) - float(ref[step][b]) if 0 <= b < ref.shape[1] else float("nan")
            tie = margin < args.tie
            failed += not tie
            print(f"step {step}: token {a} vs {b} (reference margin {margin:.3g}{', a near-tie' if tie else ''}); "
                  f"the sequences diverge, later steps not compared")
            break

    summary = (f"{compared} of {ref.shape[0]} steps x {ref.shape[1]} logits, max|a-b| {worst_abs:.3g}, "
               f"max|a-b|/max|a| {worst_rel:.3g} (atol {args.atol:g}, rtol {args.rtol:g})")
    if failed:
        print(f"FAIL {failed} problem(s) in {summary}")
        return 1
    print(f"OK {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
