#!/usr/bin/env python3
"""Writes a 1B-class, Llama-3.2-shaped GGUF with random weights for benches.

    bench/make_llama1b.py [--out models/llama1b-random-q4k.gguf] [--seed 1]
                          [--layers 16] [--force]

Shape (Llama-3.2-1B): arch "llama", dim 2048, 16 layers, 32 heads / 8 KV heads
(head 64), FFN 8192, vocabulary 128,256, rope base 500000 with Llama 3.x
rope_freqs (factor 32, low 1, high 4, original context 8192), rms eps 1e-5,
context length 131072 (benches pass their own --ctx / -c).

Tensors: every layer matrix Q4_K, the token embedding Q6_K and tied (no
output.weight, as Llama-3.2-1B), norms F32 ~ 1 + N(0, 0.1^2). About 766 MB.
gguf-py cannot quantize the K-quants, so the blocks are written raw by
tests/tools/make_tiny_model.random_k_quant: random 4-/6-bit codes and scales,
f16 d (and dmin for Q4_K) chosen so that each matrix has mean ~0 and
standard deviation 1/sqrt(in_dim) (the embedding 1/sqrt(dim), so the tied
logits stay O(1)); the forward pass stays finite.

Tokenizer: make_tiny_model's byte-level "gpt2" vocabulary (256 byte tokens,
a few merges, <|endoftext|> / <|im_start|> / <|im_end|>) padded with
synthetic "tok<i>" tokens to 128,256; llama.cpp, ik_llama.cpp and borg-infer
all load it. The weights are noise: the file is for speed, not for answers.
The file is a deterministic function of the seed and the gguf-py version.
"""
import argparse
import logging
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
import make_family_model as mfm  # noqa: E402  (tests/tools)
import make_tiny_model as mtm  # noqa: E402  (tests/tools)

logging.disable(logging.WARNING)

DIM, N_HEAD, N_KV_HEAD, FFN, VOCAB = 2048, 32, 8, 8192, 128256
ROPE_BASE, CTX, EPS = 500000.0, 131072, 1e-5
ROPE_SCALING = dict(factor=32.0, low=1.0, high=4.0, orig_ctx=8192)


def write(out, seed, n_layers):
    rng = np.random.default_rng(seed)
    hd = DIM // N_HEAD
    kv_dim = N_KV_HEAD * hd
    w = gguf.GGUFWriter(out, "llama")
    w.add_name("llama1b-random-q4k")
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_KV_HEAD)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(EPS)
    w.add_vocab_size(VOCAB)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    mfm.write_tokenizer(w, VOCAB)

    def kquant(name, qtype, rows, cols, std):
        w.add_tensor(name, mtm.random_k_quant(qtype, rows, cols, std, rng), raw_dtype=qtype)

    def norm(name, n=DIM):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    # (rows, cols) = (out, in), i.e. GGUF [ne0 = in, ne1 = out].
    kquant("token_embd.weight", QT.Q6_K, VOCAB, DIM, DIM ** -0.5)
    w.add_tensor("rope_freqs.weight", mfm.llama3_rope_factors(hd, ROPE_BASE, **ROPE_SCALING))
    for i in range(n_layers):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight")
        kquant(p + "attn_q.weight", QT.Q4_K, DIM, DIM, DIM ** -0.5)
        kquant(p + "attn_k.weight", QT.Q4_K, kv_dim, DIM, DIM ** -0.5)
        kquant(p + "attn_v.weight", QT.Q4_K, kv_dim, DIM, DIM ** -0.5)
        kquant(p + "attn_output.weight", QT.Q4_K, DIM, DIM, DIM ** -0.5)
        norm(p + "ffn_norm.weight")
        kquant(p + "ffn_gate.weight", QT.Q4_K, FFN, DIM, DIM ** -0.5)
        kquant(p + "ffn_up.weight", QT.Q4_K, FFN, DIM, DIM ** -0.5)
        kquant(p + "ffn_down.weight", QT.Q4_K, DIM, FFN, FFN ** -0.5)
    norm("output_norm.weight")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "llama1b-random-q4k.gguf"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=16, help="layers (16 as Llama-3.2-1B; fewer for a quick file)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = ap.parse_args(argv)
    if os.path.exists(args.out) and not args.force:
        print(f"{args.out} exists (--force to overwrite)", file=sys.stderr)
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".part"
    write(tmp, args.seed, args.layers)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
