#!/usr/bin/env python3
"""Writes tiny GGUFs that ask for something borg-infer does not implement.

    make_refused_models.py --dir D

Each is a llama3 tiny model from make_family_model.py with one change, or
a family borg-infer does not run; borg-infer must refuse each by name
(exit 2) before computing anything. The files, and what each asks for:

  rope_yarn.gguf        llama.rope.scaling.type = "yarn"
  unknown_tensor.gguf   a tensor blk.0.attn_gate.weight no llama layer has
  unknown_arch.gguf     general.architecture = "mamba"
  unknown_key.gguf      llama.attention.clamp_kqv = 8 (clamps q/k/v in some ports)
  llama_window.gguf     llama.attention.sliding_window = 16 (Mistral style)
  phi3.gguf             the phi3 family (fused qkv, fused gate/up), which
                        llama.cpp runs and borg-infer does not
"""
import argparse
import logging
import os
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_family_model  # noqa: E402

logging.disable(logging.WARNING)


def copy_with(src, dst, arch=None, extra_keys=(), extra_tensors=()):
    """dst = src with general.architecture replaced, keys added (key, value,
    type) and F32 tensors added (name, array)."""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch or r.fields["general.architecture"].contents())
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == VT.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub)
    for key, value, vtype in extra_keys:
        w.add_key_value(key, value, vtype)
    for t in r.tensors:
        w.add_tensor(t.name, np.array(t.data))
    for name, values in extra_tensors:
        w.add_tensor(name, values)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    base = os.path.join(args.dir, "llama3_base.gguf")
    make_family_model.main(["--family", "llama3", "--out", base])
    out = lambda name: os.path.join(args.dir, name)  # noqa: E731
    copy_with(base, out("rope_yarn.gguf"), extra_keys=[("llama.rope.scaling.type", "yarn", VT.STRING)])
    copy_with(base, out("unknown_tensor.gguf"),
              extra_tensors=[("blk.0.attn_gate.weight", np.ones((128, 128), dtype=np.float32))])
    copy_with(base, out("unknown_arch.gguf"), arch="mamba")
    copy_with(base, out("unknown_key.gguf"), extra_keys=[("llama.attention.clamp_kqv", 8.0, VT.FLOAT32)])
    copy_with(base, out("llama_window.gguf"), extra_keys=[("llama.attention.sliding_window", 16, VT.UINT32)])
    make_family_model.main(["--family", "phi3", "--out", out("phi3.gguf")])


if __name__ == "__main__":
    main()
