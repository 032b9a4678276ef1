#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF for the C test suite.

    make_tiny_model.py --out F.gguf [--wtype Q4_K] [--emb-type Q8_0] [--norm-type F32]
                       [--dim 256] [--n-layers 2] [--n-head 4] [--n-kv-head 2] [--ffn 512]
                       [--vocab 300] [--ctx 128] [--rope-base 10000] [--eps 1e-5]
                       [--seed 1] [--tied]

Weights are scaled so that activations stay O(1): matrices ~ N(0, 1/in_dim) (so
W @ x keeps the scale of x), embeddings ~ N(0, 1), norm weights ~ 1 + N(0, 0.1)
(not all ones, so a forward pass that skipped them would be caught).

Matrices are stored as --wtype. gguf-py quantizes F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 from
the random weights; it cannot quantize the K-quants, so for Q4_K/Q5_K/Q6_K the
quantized codes are drawn at random and the scale fields chosen so the weights come
out zero-mean with the intended spread. Either way gguf.quants.dequantize of the
stored bytes defines the model, which is all the reference (ref_llama.py) needs.

The tokenizer is a complete byte-level "gpt2" one: the 256 GPT-2 byte characters in
byte order, a few merges, <|endoftext|> (BOS and EOS), <|im_start|>, <|im_end|>
(EOT) as control tokens, "tok<i>" padding up to --vocab, and a ChatML template.
"""
import argparse
import logging
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import TokenType

# gguf-py warns about every key it writes outside its own schema; not useful here.
logging.disable(logging.WARNING)

WEIGHT_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
NORM_TYPES = ["F32", "F16", "BF16"]

# Merges in priority order; "Ġt he" builds on two earlier merges, so BPE must iterate.
MERGES = ["Ġ t", "h e", "i n", "e r", "a n", "o n", "Ġ a", "Ġ s", "Ġt he"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
          "{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def gpt2_byte_chars():
    """GPT-2's byte -> printable unicode character map, as a list in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def vocabulary(n_vocab):
    """Tokens and token types: bytes, merge results, specials, then padding."""
    tokens = gpt2_byte_chars() + [m.replace(" ", "") for m in MERGES] + SPECIALS
    types = [TokenType.NORMAL] * (len(tokens) - len(SPECIALS)) + [TokenType.CONTROL] * len(SPECIALS)
    pad = [f"tok{i}" for i in range(len(tokens), n_vocab)]
    return tokens + pad, types + [TokenType.NORMAL] * len(pad)


def pack_k_scales(sc, m):
    """Packs 8 six-bit scales and 8 six-bit mins per block into the 12 bytes that
    Q4_K/Q5_K use: bytes 0-3 / 4-7 hold sc[0:4] / m[0:4] in their low 6 bits and
    the top 2 bits of sc[4:8] / m[4:8] in their high 2; bytes 8-11 hold the low
    nibbles of sc[4:8] (low half) and m[4:8] (high half)."""
    out = np.empty(sc.shape[:-1] + (12,), dtype=np.uint8)
    out[..., 0:4] = sc[..., 0:4] | ((sc[..., 4:8] >> 4) << 6)
    out[..., 4:8] = m[..., 0:4] | ((m[..., 4:8] >> 4) << 6)
    out[..., 8:12] = (sc[..., 4:8] & 0xF) | ((m[..., 4:8] & 0xF) << 4)
    return out


def f16_bytes(x):
    return np.asarray(x, dtype=np.float16)[..., None].view(np.uint8)


def random_k_quant(qtype, rows, cols, std, rng):
    """Raw blocks of a K-quant type: random codes, with scales chosen so each weight
    has mean ~0 and standard deviation ~std. Returns a (rows, bytes) uint8 array."""
    nb = cols // 256
    shape = (rows, nb)
    if qtype == QT.Q6_K:
        # w = d * sc * (q - 32), q uniform in 0..63 (std 18.5), sc signed.
        sc = rng.integers(-16, 17, size=shape + (16,)).astype(np.int8)
        rms_sc = np.sqrt(np.mean(sc.astype(np.float64) ** 2))
        d = np.full(shape, std / (rms_sc * 18.5))
        codes = rng.integers(0, 256, size=shape + (128 + 64,), dtype=np.uint8)
        blocks = np.concatenate([codes, sc.view(np.uint8), f16_bytes(d)], axis=-1)
    else:
        # w = d * sc * q - dmin * m, q uniform in 0..qmax. With dmin = k * d and
        # m = round(sc * mean(q) / k) the offset cancels the mean of d * sc * q.
        qmax, n_code_bytes = (15, 128) if qtype == QT.Q4_K else (31, 128 + 32)
        k = 8 if qtype == QT.Q4_K else 16
        sc = rng.integers(8, 32, size=shape + (8,), dtype=np.uint8)
        m = np.round(sc * (qmax / 2) / k).astype(np.uint8)
        q_std = np.sqrt(((qmax + 1) ** 2 - 1) / 12)
        d = std / (np.sqrt(np.mean(sc.astype(np.float64) ** 2)) * q_std)
        codes = rng.integers(0, 256, size=shape + (n_code_bytes,), dtype=np.uint8)
        # Q5_K stores qh (32 bytes) before qs (128); both are random either way.
        blocks = np.concatenate([f16_bytes(np.full(shape, d)), f16_bytes(np.full(shape, k * d)),
                                 pack_k_scales(sc, m), codes], axis=-1)
    return np.ascontiguousarray(blocks.reshape(rows, -1))


def tensor_data(qtype, values, rng):
    """(data, raw_dtype) for GGUFWriter.add_tensor; values is (rows, cols) float32."""
    if qtype == QT.F32:
        return values, None
    if qtype == QT.F16:
        return values.astype(np.float16), None
    if qtype in (QT.Q4_K, QT.Q5_K, QT.Q6_K):
        return random_k_quant(qtype, values.shape[0], values.shape[1], float(values.std()), rng), qtype
    return gguf.quants.quantize(values, qtype), qtype


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wtype", default="Q4_K", choices=WEIGHT_TYPES, help="type of the layer and output matrices")
    ap.add_argument("--emb-type", default="Q8_0", choices=WEIGHT_TYPES, help="type of token_embd")
    ap.add_argument("--norm-type", default="F32", choices=NORM_TYPES, help="type of the norm weights")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-kv-head", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=300)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tied", action="store_true", help="no output.weight: the embedding is the LM head")
    args = ap.parse_args(argv)

    def check(ok, msg):
        if not ok:
            ap.error(msg)

    for name in ("dim", "n_layers", "n_head", "n_kv_head", "ffn", "ctx"):
        check(getattr(args, name) > 0, f"--{name.replace('_', '-')} must be positive")
    check(args.dim % args.n_head == 0, "--dim must be a multiple of --n-head")
    check((args.dim // args.n_head) % 2 == 0, "head size (dim / n-head) must be even for RoPE")
    check(args.n_head % args.n_kv_head == 0, "--n-head must be a multiple of --n-kv-head")
    check(args.rope_base > 0 and args.eps > 0, "--rope-base and --eps must be positive")
    n_fixed = 256 + len(MERGES) + len(SPECIALS)
    check(args.vocab >= n_fixed, f"--vocab must be at least {n_fixed} (bytes, merges and special tokens)")
    # A row (ne0) is a whole number of blocks: dim for every matrix but ffn_down,
    # whose rows are ffn long.
    for opt, qtype, row_lengths in (("--wtype", args.wtype, ("dim", "ffn")), ("--emb-type", args.emb_type, ("dim",))):
        block = gguf.GGML_QUANT_SIZES[QT[qtype]][0]
        for name in row_lengths:
            check(getattr(args, name) % block == 0,
                  f"{opt} {qtype} has blocks of {block}: --{name} ({getattr(args, name)}) must be a multiple of it")
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    wtype, emb_type, norm_type = QT[args.wtype], QT[args.emb_type], QT[args.norm_type]
    head_dim = args.dim // args.n_head
    tokens, token_types = vocabulary(args.vocab)

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name("tiny-llama-test")
    w.add_context_length(args.ctx)
    w.add_embedding_length(args.dim)
    w.add_block_count(args.n_layers)
    w.add_feed_forward_length(args.ffn)
    w.add_head_count(args.n_head)
    w.add_head_count_kv(args.n_kv_head)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(args.rope_base)
    w.add_layer_norm_rms_eps(args.eps)
    w.add_vocab_size(args.vocab)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|endoftext|>"))
    w.add_eot_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    def matrix(name, rows, cols, qtype=wtype, std=None):
        values = (rng.standard_normal((rows, cols)) * (std or cols ** -0.5)).astype(np.float32)
        data, raw_dtype = tensor_data(qtype, values, rng)
        w.add_tensor(name, data, raw_dtype=raw_dtype)

    def norm(name):
        values = (1.0 + 0.1 * rng.standard_normal((1, args.dim))).astype(np.float32)
        data, raw_dtype = tensor_data(norm_type, values, rng)
        w.add_tensor(name, data.reshape(-1), raw_dtype=raw_dtype)

    # Shapes are (rows, cols) = (out, in), i.e. GGUF [ne0 = in, ne1 = out].
    q_dim, kv_dim = args.n_head * head_dim, args.n_kv_head * head_dim
    matrix("token_embd.weight", args.vocab, args.dim, emb_type, std=1.0)
    for i in range(args.n_layers):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight")
        matrix(p + "attn_q.weight", q_dim, args.dim)
        matrix(p + "attn_k.weight", kv_dim, args.dim)
        matrix(p + "attn_v.weight", kv_dim, args.dim)
        matrix(p + "attn_output.weight", args.dim, q_dim)
        norm(p + "ffn_norm.weight")
        matrix(p + "ffn_gate.weight", args.ffn, args.dim)
        matrix(p + "ffn_up.weight", args.ffn, args.dim)
        matrix(p + "ffn_down.weight", args.dim, args.ffn)
    norm("output_norm.weight")
    if not args.tied:
        matrix("output.weight", args.vocab, args.dim)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    sys.exit(main())
