#!/usr/bin/env python3
"""Independent numpy reference for the Llama forward pass.

Reads a llama-architecture GGUF with gguf-py (GGUFReader + gguf.quants.dequantize),
so nothing here shares code with the C engine: the weights, the hyper-parameters
and the arithmetic are all taken from the file and the textbook definitions.
Everything is computed in float64; the C engine's float32 results are compared
against it with compare_logits.py. With --q8-act one step copies the engine's
8-bit activation mode (its default) on purpose: a matrix stored in a quantized type then
multiplies 8-bit activations, so apply() rounds its input the way the engine's
quantizer does (per 32 values, scale max|x| / 127, codes rounded to nearest
even, in float32) before the float64 product. With --kv-f16 another does:
the keys and values are stored as the engine's default cache stores them,
rounded to float32 and then to IEEE half (nearest even), and read back.

    ref_llama.py --model M.gguf --tokens 1,2,3 [--gen 32] --out F.bin [--print] [--q8-act] [--kv-f16]

runs the prompt, then greedy-decodes --gen tokens (argmax, no EOS stop), and writes

    int32 n_steps (= gen + 1), int32 n_vocab,
    then per step: int32 argmax token, float32 logits[n_vocab]

where step 0 holds the logits at the last prompt position and step s those after
the s-th generated token was fed back (all little-endian). --tokens/--out may be
repeated to run several prompts with one load of the model.
"""
import argparse
import logging
import sys

import numpy as np
import gguf

# gguf-py logs a warning for every metadata key it does not know; not useful here.
logging.disable(logging.WARNING)


QUANTIZED = {gguf.GGMLQuantizationType[n] for n in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K")}


def act_q8(x):
    """x (..., cols) as the engine's 8-bit activations see it: codes times scales."""
    xf = np.asarray(x, dtype=np.float32).reshape(*x.shape[:-1], -1, 32)
    amax = np.abs(xf).max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(xf * inv)
    d = (amax / np.float32(127)).astype(np.float64)
    return (q.astype(np.float64) * d).reshape(x.shape)


class Matrix:
    """A weight matrix (out, in) in float64, and whether the engine feeds it 8-bit activations."""

    def __init__(self, w, quantized):
        self.w, self.quantized = w, quantized


Q8_ACTIVATIONS = False  # --q8-act: the engine's default 8-bit activations
KV_F16 = False  # --kv-f16: the engine's default f16 KV cache


def kv_store(x):
    """x as the KV cache holds it."""
    return x.astype(np.float32).astype(np.float16).astype(np.float64) if KV_F16 else x


def apply(x, mat):
    return (act_q8(x) if mat.quantized and Q8_ACTIVATIONS else x) @ mat.w.T


class LlamaModel:
    """Hyper-parameters and float64 weights of a llama GGUF, dequantized once at load."""

    def __init__(self, path):
        reader = gguf.GGUFReader(path)
        fields = reader.fields

        def meta(key, default=None):
            if key in fields:
                return fields[key].contents()
            if default is None:
                raise SystemExit(f"{path}: missing metadata key {key}")
            return default

        arch = meta("general.architecture")
        if arch != "llama":
            raise SystemExit(f"{path}: architecture {arch!r}, this reference only does 'llama'")
        # Scaled RoPE variants would make this reference silently wrong; refuse them.
        scaling = meta(f"{arch}.rope.scaling.type", "none")
        if scaling != "none" or "rope_freqs.weight" in {t.name for t in reader.tensors}:
            raise SystemExit(f"{path}: RoPE scaling ({scaling}) is not implemented in the reference")

        self.n_layer = int(meta(f"{arch}.block_count"))
        self.dim = int(meta(f"{arch}.embedding_length"))
        self.n_ff = int(meta(f"{arch}.feed_forward_length"))
        self.n_head = int(meta(f"{arch}.attention.head_count"))
        self.n_kv_head = int(meta(f"{arch}.attention.head_count_kv", self.n_head))
        self.eps = float(meta(f"{arch}.attention.layer_norm_rms_epsilon"))
        self.n_ctx = int(meta(f"{arch}.context_length"))
        self.k_dim = int(meta(f"{arch}.attention.key_length", self.dim // self.n_head))
        self.v_dim = int(meta(f"{arch}.attention.value_length", self.k_dim))
        self.rope_base = float(meta(f"{arch}.rope.freq_base", 10000.0))
        self.rope_dim = int(meta(f"{arch}.rope.dimension_count", self.k_dim))
        if self.n_head % self.n_kv_head or self.rope_dim % 2 or self.rope_dim > self.k_dim:
            raise SystemExit(f"{path}: inconsistent head counts or RoPE dimension")

        tensors = {t.name: t for t in reader.tensors}

        def weight(name, *expected):
            t = tensors[name]
            # GGUF lists shapes innermost first: [ne0, ne1] is a row-major (ne1, ne0)
            # array, i.e. (out, in) for a matrix applied as W @ x.
            shape = tuple(int(n) for n in reversed(t.shape))
            if any(e is not None and e != n for e, n in zip(expected, shape)) or len(shape) != len(expected):
                raise SystemExit(f"{path}: tensor {name} has shape {shape}, the metadata says {expected}")
            w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float64)
            return Matrix(w, t.tensor_type in QUANTIZED) if len(shape) == 2 else w

        dim, q_dim = self.dim, self.n_head * self.k_dim
        embd = weight("token_embd.weight", None, dim)
        self.tok_embd = embd.w
        self.n_vocab = self.tok_embd.shape[0]
        # Tied embeddings: without output.weight the embedding matrix is the LM head.
        if "output.weight" in tensors:
            self.output = weight("output.weight", self.n_vocab, dim)
        else:
            self.output = embd
        self.output_norm = weight("output_norm.weight", dim)
        shapes = {
            "attn_norm": (dim,),
            "attn_q": (q_dim, dim),
            "attn_k": (self.n_kv_head * self.k_dim, dim),
            "attn_v": (self.n_kv_head * self.v_dim, dim),
            "attn_output": (dim, self.n_head * self.v_dim),
            "ffn_norm": (dim,),
            "ffn_gate": (self.n_ff, dim),
            "ffn_up": (self.n_ff, dim),
            "ffn_down": (dim, self.n_ff),
        }
        self.layers = [{name: weight(f"blk.{i}.{name}.weight", *shape) for name, shape in shapes.items()}
                       for i in range(self.n_layer)]

def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, rot_dim, base):
    """llama.cpp's "normal" RoPE (arch llama): rotates adjacent pairs (x[2i], x[2i+1])
    of the first rot_dim components by pos * base^(-2i/rot_dim). x: (n, heads, head_dim).
    The GGUF converter permutes HF's q/k rows so that this pairing matches HF's
    rotate-half form; the NeoX pairing (x[i], x[i + rot_dim/2]) would be wrong here."""
    inv_freq = base ** (-np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    angle = pos[:, None, None] * inv_freq  # (n, 1, rot_dim/2), broadcast over heads
    cos, sin = np.cos(angle), np.sin(angle)
    x0, x1 = x[..., 0:rot_dim:2], x[..., 1:rot_dim:2]
    out = x.copy()
    out[..., 0:rot_dim:2] = x0 * cos - x1 * sin
    out[..., 1:rot_dim:2] = x0 * sin + x1 * cos
    return out


def silu(x):
    return x / (1.0 + np.exp(-x))


class Session:
    """One sequence with its KV cache; forward() appends tokens and returns the
    logits at the last of them."""

    def __init__(self, model, n_ctx):
        m = self.m = model
        self.k_cache = np.zeros((m.n_layer, n_ctx, m.n_kv_head, m.k_dim))
        self.v_cache = np.zeros((m.n_layer, n_ctx, m.n_kv_head, m.v_dim))
        self.n_past = 0

    def forward(self, tokens):
        m = self.m
        n, start = len(tokens), self.n_past
        end = start + n
        if end > self.k_cache.shape[1]:
            raise SystemExit(f"sequence of {end} tokens exceeds the cache ({self.k_cache.shape[1]})")
        pos = np.arange(start, end, dtype=np.float64)
        group = m.n_head // m.n_kv_head
        # Causal mask: query i (at position start + i) sees cache positions <= start + i.
        visible = np.arange(end)[None, :] <= (start + np.arange(n))[:, None]  # (n, end)

        x = m.tok_embd[np.asarray(tokens)]
        for li, w in enumerate(m.layers):
            h = rms_norm(x, w["attn_norm"], m.eps)
            q = apply(h, w["attn_q"]).reshape(n, m.n_head, m.k_dim)
            k = apply(h, w["attn_k"]).reshape(n, m.n_kv_head, m.k_dim)
            v = apply(h, w["attn_v"]).reshape(n, m.n_kv_head, m.v_dim)
            self.k_cache[li, start:end] = kv_store(rope(k, pos, m.rope_dim, m.rope_base))
            self.v_cache[li, start:end] = kv_store(v)
            keys, values = self.k_cache[li, :end], self.v_cache[li, :end]

            # Grouped-query attention: head h reads kv head h // group, so the
            # query heads are viewed as (kv head, index within its group).
            q = rope(q, pos, m.rope_dim, m.rope_base).reshape(n, m.n_kv_head, group, m.k_dim)
            scores = np.einsum("qkgd,tkd->kgqt", q, keys) / np.sqrt(m.k_dim)
            scores = np.where(visible, scores, -np.inf)
            probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            attn = np.einsum("kgqt,tkd->qkgd", probs, values).reshape(n, m.n_head * m.v_dim)
            x = x + apply(attn, w["attn_output"])

            h = rms_norm(x, w["ffn_norm"], m.eps)
            x = x + apply(silu(apply(h, w["ffn_gate"])) * apply(h, w["ffn_up"]), w["ffn_down"])

        self.n_past = end
        return apply(rms_norm(x[-1], m.output_norm, m.eps), m.output)


def generate(model, prompt, n_gen):
    """Greedy decoding: returns a list of (argmax token, float64 logits) per step."""
    if len(prompt) + n_gen > model.n_ctx:
        raise SystemExit(f"{len(prompt)} + {n_gen} tokens exceed the model's context length {model.n_ctx}")
    session = Session(model, len(prompt) + n_gen)
    logits = session.forward(prompt)
    steps = []
    for step in range(n_gen + 1):
        token = int(np.argmax(logits))
        steps.append((token, logits))
        if step < n_gen:
            logits = session.forward([token])
    return steps


def write_steps(path, n_vocab, steps):
    with open(path, "wb") as f:
        f.write(np.array([len(steps), n_vocab], dtype="<i4").tobytes())
        for token, logits in steps:
            f.write(np.array([token], dtype="<i4").tobytes())
            f.write(logits.astype("<f4").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    # Repeatable (paired in order with --out): loading the GGUF costs seconds,
    # so several prompts are best run by one process.
    ap.add_argument("--tokens", required=True, action="append", help="comma-separated prompt token ids")
    ap.add_argument("--out", action="append", help="binary logits file to write, one per --tokens")
    ap.add_argument("--gen", type=int, default=32, help="greedy tokens to generate (default 32)")
    ap.add_argument("--print", action="store_true", help="print the generated token ids, a line per prompt")
    ap.add_argument("--q8-act", action="store_true",
                    help="round activations to 8 bits as the engine does by default")
    ap.add_argument("--kv-f16", action="store_true",
                    help="store keys and values as f16, as the engine's default KV cache does")
    args = ap.parse_args()
    if args.out is not None and len(args.out) != len(args.tokens):
        ap.error("give one --out per --tokens")
    if args.gen < 0:
        ap.error("--gen must be >= 0")

    global Q8_ACTIVATIONS, KV_F16
    Q8_ACTIVATIONS = args.q8_act
    KV_F16 = args.kv_f16
    model = LlamaModel(args.model)
    for i, text in enumerate(args.tokens):
        try:
            prompt = [int(t) for t in text.split(",")]
        except ValueError:
            ap.error(f"--tokens {text!r} is not a comma-separated list of integers")
        if min(prompt) < 0 or max(prompt) >= model.n_vocab:
            ap.error(f"prompt token ids must be in [0, {model.n_vocab})")
        steps = generate(model, prompt, args.gen)
        if args.out:
            write_steps(args.out[i], model.n_vocab, steps)
        if args.print:
            print(",".join(str(token) for token, _ in steps[:-1]))


if __name__ == "__main__":
    sys.exit(main())
