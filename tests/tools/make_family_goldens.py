#!/usr/bin/env python3
"""Greedy goldens from llama.cpp for the tiny family models (tests/goldens/families.json).

    make_family_goldens.py [--out tests/goldens/families.json] [--families a,b]
                           [--model-python PY] [--llama-src DIR] [--steps 40]

Run it with a Python that has llama-cpp-python's low-level API (llama_cpp) bound
to a CPU build of llama.cpp, e.g. LLAMA_CPP_LIB_PATH=<dir of libllama.so>
/work/peers/venv/bin/python. For each family of make_family_model.py it writes the
GGUF into a temporary folder (with --model-python, by default the repository's
.venv python when there is one, so the file is the one the CI regenerates),
records its sha256, and for each fixed prompt of token ids asks llama.cpp for
--steps greedy tokens:

  - F32 KV cache (type_k = type_v = GGML_TYPE_F32), flash attention off,
    2 threads, CPU only, no extra (repacked) buffer types, full-size SWA cache;
  - a fresh context per prompt; the prompt is one llama_decode with logits for
    its last token only, then one llama_decode per generated token;
  - greedy = argmax over the raw logits (first index on an exact tie), EOS not
    special: always --steps tokens.

For every generated step it also stores margin = top-1 minus top-2 logit, so a
later mismatch at a near tie can be told apart from a real bug.

Output: {"llama.cpp": ..., "llama_cpp_python": ..., "gguf_py": ..., "numpy": ...,
"settings": {...}, "families": {NAME: {"gguf_sha256": ..., "make_args": [...],
"prompts": [{"prompt_ids": [...], "ids": [...], "margins": [...]}]}}}.
A family llama.cpp refuses to load is recorded as {"refused": "<log>"}.
"""
import argparse
import ctypes
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

# Fixed prompts (ids below 265: bytes and merges, no control tokens), drawn once
# with numpy default_rng(20251202).integers(0, 265, n) for n = 5, 17, 30.
PROMPTS = [
    [206, 140, 84, 60, 137],
    [170, 250, 202, 47, 175, 2, 115, 117, 167, 205, 161, 200, 9, 49, 186, 88, 247],
    [98, 194, 259, 164, 202, 168, 213, 177, 137, 4, 221, 218, 141, 235, 242, 169, 260, 111, 96, 181,
     255, 173, 130, 139, 112, 32, 149, 6, 136, 68],
]
SEED = 1
N_CTX = 128
N_THREADS = 2


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def llama_cpp_version(src):
    try:
        commit = subprocess.run(["git", "-C", src, "log", "-1", "--format=%H %cs"], capture_output=True,
                                text=True, check=True).stdout.strip()
        return f"{commit} (vendored in llama-cpp-python)"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Peer:
    """The bits of llama.cpp's C API this script uses, through llama_cpp."""

    def __init__(self):
        import llama_cpp as L
        self.L = L
        self.log = []

        @L.llama_log_callback
        def on_log(level, text, user_data):
            self.log.append(text.decode("utf-8", "replace"))

        self._on_log = on_log  # keep the callback alive
        L.llama_log_set(on_log, ctypes.c_void_p(0))
        L.llama_backend_init()

    def load(self, path):
        L = self.L
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.use_extra_bufts = False
        self.log.clear()
        model = L.llama_model_load_from_file(path.encode(), mp)
        if not model:
            raise RuntimeError("".join(self.log[-20:]).strip() or "llama_model_load_from_file failed")
        return model

    def greedy(self, model, prompt, steps):
        L = self.L
        cp = L.llama_context_default_params()
        cp.n_ctx = N_CTX
        cp.n_batch = N_CTX
        cp.n_ubatch = N_CTX
        cp.n_seq_max = 1
        cp.n_threads = N_THREADS
        cp.n_threads_batch = N_THREADS
        cp.type_k = L.GGML_TYPE_F32
        cp.type_v = L.GGML_TYPE_F32
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.swa_full = True
        cp.no_perf = True
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            raise RuntimeError("".join(self.log[-20:]).strip() or "llama_init_from_model failed")
        n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
        batch = L.llama_batch_init(N_CTX, 0, 1)
        ids, margins = [], []
        try:
            tokens, pos = list(prompt), 0
            for _ in range(steps):
                batch.n_tokens = len(tokens)
                for j, t in enumerate(tokens):
                    batch.token[j] = t
                    batch.pos[j] = pos + j
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = 0
                    batch.logits[j] = j == len(tokens) - 1
                rc = L.llama_decode(ctx, batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode returned {rc}")
                pos += len(tokens)
                logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).copy()
                best = int(np.argmax(logits))
                top2 = np.sort(logits)[-2:]
                ids.append(best)
                margins.append(round(float(top2[1] - top2[0]), 6))
                tokens = [best]
        finally:
            L.llama_batch_free(batch)
            L.llama_free(ctx)
        return ids, margins


def main(argv=None):
    import make_family_model as mfm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "goldens", "families.json"))
    ap.add_argument("--families", default=",".join(mfm.FAMILIES))
    venv_py = os.path.join(REPO, ".venv", "bin", "python")
    ap.add_argument("--model-python", default=venv_py if os.path.exists(venv_py) else sys.executable,
                    help="python that runs make_family_model.py (default: the repository's .venv)")
    ap.add_argument("--llama-src", default="/work/peers/llama_cpp_python-0.3.36/vendor/llama.cpp")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)

    peer = Peer()
    import llama_cpp
    versions = subprocess.run([args.model_python, "-c", "import gguf, numpy, importlib.metadata as m;"
                               "print(m.version('gguf'), numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    out = {
        "llama.cpp": llama_cpp_version(args.llama_src),
        "llama_cpp_python": llama_cpp.__version__,
        "gguf_py": versions[0],
        "numpy": versions[1],
        "settings": {"type_k": "F32", "type_v": "F32", "flash_attn": False, "n_threads": N_THREADS,
                     "n_ctx": N_CTX, "greedy": "argmax of raw logits, EOS ignored", "steps": args.steps,
                     "margin": "top-1 minus top-2 logit at each generated step",
                     "system_info": llama_cpp.llama_print_system_info().decode().strip()},
        "families": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families.split(","):
            make_args = ["--family", name, "--seed", str(SEED)]
            path = os.path.join(tmp, name + ".gguf")
            subprocess.run([args.model_python, os.path.join(HERE, "make_family_model.py"), *make_args,
                            "--out", path], check=True)
            entry = {"gguf_sha256": sha256(path), "make_args": make_args}
            try:
                model = peer.load(path)
            except RuntimeError as e:
                entry["refused"] = str(e)
                print(f"{name}: refused: {e}", file=sys.stderr)
                out["families"][name] = entry
                continue
            entry["prompts"] = []
            for prompt in PROMPTS:
                ids, margins = peer.greedy(model, prompt, args.steps)
                entry["prompts"].append({"prompt_ids": prompt, "ids": ids, "margins": margins})
            peer.L.llama_model_free(model)
            out["families"][name] = entry
            low = min(m for p in entry["prompts"] for m in p["margins"])
            print(f"{name}: ok, smallest margin {low:.4g}", file=sys.stderr)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        text = json.dumps(out, indent=1)
        # Keep the number lists (ids, margins) on one line each.
        text = re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s+", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]"), text)
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
