#!/usr/bin/env python3
"""Writes a tiny random-weight GGUF of one model family that llama.cpp loads.

    make_family_model.py --family NAME --out F.gguf [--seed 1]
    make_family_model.py --list

Every tensor is F32. The file is a deterministic function of (family, seed) and
the gguf-py version: numpy's default_rng(seed) draws the weights in a fixed order.
Scales follow make_tiny_model.py (whose vocabulary this reuses): matrices
~ N(0, 1/in_dim), embeddings ~ N(0, 1) (smaller for the tied families, see
qwen3 and gemma3), biases ~ N(0, 0.1^2), norm weights ~ 1 + N(0, 0.1^2) (all
norms, per-head q/k norms included).

The tensor names and metadata keys are the ones the llama.cpp that tests/goldens/
families.json was made with reads (src/llama-arch.cpp, src/llama-model.cpp,
src/models/<arch>.cpp, src/llama-hparams.*). Matrices are GGUF [ne0 = in,
ne1 = out] (numpy (out, in)). Families, and what llama.cpp does with them:

llama3 (arch "llama"): 4 layers, dim 128, 4 heads, 2 KV heads (GQA), head 32,
  rope.freq_base 500000, and a global "rope_freqs.weight" F32 [head_dim/2]
  computed with Llama 3.1's formula (factor 8, low_freq_factor 1,
  high_freq_factor 4, original context 128): 1 for the high frequencies, 8 for
  the low ones, a smooth step between (here 1, 1, 1.015, 2.935, 8, ...).
  llama.cpp: rope type NORM (rotates adjacent pairs x[2i], x[2i+1]); the
  factors DIVIDE the angle: theta_i = p * base^(-2i/d) / rope_freqs[i].
llama_linear (arch "llama"): 3 layers, dim 64, 4 heads, 4 KV heads (MHA),
  rope base 10000, llama.rope.scaling.type = "linear",
  llama.rope.scaling.factor = 4.0. llama.cpp sets freq_scale = 1/factor and
  (ext_factor 0 unless the type is yarn) theta_i = freq_scale * p * base^(-2i/d);
  no attention-factor change. (An absent scaling.type means "linear" with
  factor 1; the older key llama.rope.scale_linear is read if .factor is absent.)
qwen2: 3 layers, dim 64, 4 heads, 2 KV heads, rope base 1e6, rms eps 1e-6,
  attn_q/attn_k/attn_v.bias (optional in llama.cpp, present here), untied
  output.weight. Rope type NEOX (rotates x[i] with x[i + d/2]). Attention out
  is [dim, dim], so head size must be dim / heads.
qwen3: 3 layers, dim 64, 4 heads, 2 KV heads, head size 32 set apart from
  dim/heads by qwen3.attention.key_length = value_length = 32 (so q is 128 wide
  and attn_output.weight is [128 -> 64]); blk.N.attn_q_norm.weight and
  attn_k_norm.weight [32]: RMSNorm per head (eps = rms eps) applied to q and k
  BEFORE rope; no biases; rope NEOX, base 1e6, eps 1e-6; tied embeddings (no
  output.weight, like Qwen3-0.6B), embeddings ~ N(0, 1/dim) so that the
  current token's own row does not dominate the tied logits. Attention scale
  1/sqrt(head size).
gemma3: 8 layers, dim 64, 4 heads, 2 KV heads, gemma3.attention.key_length =
  value_length = 32 (dim/heads would be 16), feed_forward_length 192, rms eps
  1e-6, gemma3.attention.sliding_window = 8, rope.freq_base 1e6 and
  gemma3.rope.scaling.type "linear", factor 8 (as Gemma 3 4B/12B/27B ship),
  tied embeddings. Per layer: attn_norm, attn_q_norm, attn_k_norm ([32]),
  post_attention_norm, ffn_norm, post_ffw_norm (all blk.N.<name>.weight).
  Facts from llama.cpp (src/models/gemma3.cpp, llama-hparams.cpp):
  - Which layers are local: load_swa_pattern(ml, 6): unless the file has
    gemma3.attention.sliding_window_pattern (a bool array per layer, or a uint
    period) the period is 6 with the dense layer last: layer il is sliding-window
    iff il % 6 < 5. Here layers 0-4 and 6-7 are local, layer 5 global. Only
    when sliding_window is present and > 0; without it no layer is local.
  - Window: query at position p sees key positions p' with p - p' < 8 (itself
    and the 7 before it); global layers are plain causal.
  - Local rope base: gemma3.rope.freq_base_swa if present, else the default
    10000 (the HF converter does not write the key, so real files get 10000).
    Local layers never get the linear scaling (freq_scale_swa = 1); global
    layers use rope.freq_base and 1/rope.scaling.factor.
  - Attention scale: q is multiplied by 1/sqrt(key_length) (1/sqrt(32) here)
    before q.k, except for the 62-layer 27B type which uses
    1/sqrt(dim/heads). query_pre_attn_scalar is not read (the converter does not
    write it), so it is not in the file.
  - The embedding rows are multiplied by sqrt(dim) (a float32 sqrtf(n_embd)).
    Embeddings here are ~ N(0, 0.25/dim): the scaled input has rms 0.5 and
    the tied LM head gives logits ~ O(1).
  - Norms multiply plainly by the stored weight (the converter stored 1 + w).
    Layer: h = x + post_attention_norm(attn(attn_norm(x)));
    out = h + post_ffw_norm(ffn(ffn_norm(h))).
  - FFN: down(gelu(gate(x)) * up(x)), gelu = the tanh approximation, which the
    CPU backend evaluates through an F16 table: x is rounded to F16, looked up,
    the F16 result widened (|x| >= 10 passes through, x <= -10 gives 0).
  - No final logit softcapping unless gemma3.final_logit_softcapping is set.
  - Rope NEOX.
phi3: 3 layers, dim 64, 4 heads, 2 KV heads, ffn 128, rope base 10000,
  untied output. Fused blk.N.attn_qkv.weight [64 -> 64 + 2*32] (rows: q, then
  k, then v) and blk.N.ffn_up.weight [64 -> 2*128] holding gate rows then up
  rows: ffn = down(silu(gate) * up). Rope NEOX, scale 1/sqrt(head size).

Tokenizer for all: make_tiny_model's byte-level gpt2 vocabulary (300 tokens).
"""
import argparse
import logging
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_model as mtm  # noqa: E402  (same folder)
import gguf  # noqa: E402

logging.disable(logging.WARNING)

# Shared defaults; each family overrides what it needs.
BASE = dict(dim=64, n_layers=3, n_head=4, n_kv_head=2, head_dim=None, ffn=192, vocab=300,
            ctx=256, rope_base=10000.0, eps=1e-5, tied=False, emb_std=1.0)

FAMILIES = {
    "llama3": dict(arch="llama", dim=128, n_layers=4, n_head=4, n_kv_head=2, ffn=256,
                   rope_base=500000.0, rope_freqs=dict(factor=8.0, low=1.0, high=4.0, orig_ctx=128)),
    "llama_linear": dict(arch="llama", n_kv_head=4, ffn=128, rope_scaling=("linear", 4.0)),
    "qwen2": dict(arch="qwen2", rope_base=1e6, eps=1e-6, qkv_bias=True),
    "qwen3": dict(arch="qwen3", head_dim=32, rope_base=1e6, eps=1e-6, qk_norm=True, tied=True,
                  emb_std=64 ** -0.5),
    "gemma3": dict(arch="gemma3", n_layers=8, head_dim=32, rope_base=1e6, eps=1e-6, qk_norm=True,
                   tied=True, sliding_window=8, rope_scaling=("linear", 8.0), gemma=True,
                   emb_std=0.5 * 64 ** -0.5),
    "phi3": dict(arch="phi3", ffn=128, fused=True),
}


def config(family):
    cfg = dict(BASE)
    cfg.update(FAMILIES[family])
    if cfg["head_dim"] is None:
        cfg["head_dim"] = cfg["dim"] // cfg["n_head"]
    return cfg


def llama3_rope_factors(head_dim, base, factor, low, high, orig_ctx):
    """Llama 3.1 rope scaling as per-frequency divisors of the angle."""
    out = []
    low_wavelen, high_wavelen = orig_ctx / low, orig_ctx / high
    for i in range(head_dim // 2):
        wavelen = 2 * math.pi * base ** (2 * i / head_dim)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (orig_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_tokenizer(w, n_vocab):
    """make_tiny_model's tokenizer metadata (byte-level gpt2, ChatML template)."""
    tokens, token_types = mtm.vocabulary(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(mtm.MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|endoftext|>"))
    w.add_eot_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(mtm.CHATML)


def write_family(family, out, seed):
    c = config(family)
    rng = np.random.default_rng(seed)
    dim, hd, nh, nkv, ffn, nv = c["dim"], c["head_dim"], c["n_head"], c["n_kv_head"], c["ffn"], c["vocab"]
    q_dim, kv_dim = nh * hd, nkv * hd

    w = gguf.GGUFWriter(out, c["arch"])
    # Not "tiny-phi3-...": llama.cpp's vocab loader keys token attributes off a
    # general.name containing "phi3"/"phi-3" and then needs a "</s>" token.
    w.add_name("tiny-family-test")
    w.add_context_length(c["ctx"])
    w.add_embedding_length(dim)
    w.add_block_count(c["n_layers"])
    w.add_feed_forward_length(ffn)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    if hd != dim // nh:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(c["rope_base"])
    if "rope_scaling" in c:
        kind, factor = c["rope_scaling"]
        w.add_rope_scaling_type(gguf.RopeScalingType(kind))
        w.add_rope_scaling_factor(factor)
    if "sliding_window" in c:
        w.add_sliding_window(c["sliding_window"])
    w.add_layer_norm_rms_eps(c["eps"])
    w.add_vocab_size(nv)
    write_tokenizer(w, nv)

    def add(name, values):
        w.add_tensor(name, np.ascontiguousarray(values, dtype=np.float32))

    def matrix(name, rows, cols, std=None):
        add(name, rng.standard_normal((rows, cols)) * (std if std is not None else cols ** -0.5))

    def vector(name, n, std):
        add(name, rng.standard_normal(n) * std)

    def norm(name, n=dim):
        add(name, 1.0 + 0.1 * rng.standard_normal(n))

    matrix("token_embd.weight", nv, dim, std=c["emb_std"])
    if "rope_freqs" in c:
        r = c["rope_freqs"]
        add("rope_freqs.weight", llama3_rope_factors(hd, c["rope_base"], r["factor"], r["low"], r["high"],
                                                      r["orig_ctx"]))
    for i in range(c["n_layers"]):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight")
        if c.get("fused"):
            matrix(p + "attn_qkv.weight", q_dim + 2 * kv_dim, dim)
        else:
            matrix(p + "attn_q.weight", q_dim, dim)
            matrix(p + "attn_k.weight", kv_dim, dim)
            matrix(p + "attn_v.weight", kv_dim, dim)
        if c.get("qkv_bias"):
            vector(p + "attn_q.bias", q_dim, 0.1)
            vector(p + "attn_k.bias", kv_dim, 0.1)
            vector(p + "attn_v.bias", kv_dim, 0.1)
        if c.get("qk_norm"):
            norm(p + "attn_q_norm.weight", hd)
            norm(p + "attn_k_norm.weight", hd)
        matrix(p + "attn_output.weight", dim, q_dim)
        if c.get("gemma"):
            norm(p + "post_attention_norm.weight")
        norm(p + "ffn_norm.weight")
        if c.get("fused"):
            matrix(p + "ffn_up.weight", 2 * ffn, dim)  # gate rows, then up rows
        else:
            matrix(p + "ffn_gate.weight", ffn, dim)
            matrix(p + "ffn_up.weight", ffn, dim)
        matrix(p + "ffn_down.weight", dim, ffn)
        if c.get("gemma"):
            norm(p + "post_ffw_norm.weight")
    norm("output_norm.weight")
    if not c["tied"]:
        matrix("output.weight", nv, dim)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=sorted(FAMILIES))
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the family names and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(FAMILIES))
        return 0
    if not args.family or not args.out:
        ap.error("--family and --out are required")
    write_family(args.family, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
