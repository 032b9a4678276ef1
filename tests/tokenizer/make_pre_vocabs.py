#!/usr/bin/env python3
"""Writes vocab-only GGUF files that reuse the SmolLM2 vocabulary under other
pre-tokenizers: OUT_DIR/pre_<name>.gguf for each name in PRE_NAMES, plus
pre_unknown.gguf (a name llama.cpp rejects and we treat as "default").

A few tokens and merges are appended so the variants can differ: merges for
digit groups (llama-bpe splits numbers in threes, qwen2 one by one) and two
whole words no merge path reaches (only llama-bpe, which looks words up
before merging, finds them).

Usage: make_pre_vocabs.py MODEL.gguf OUT_DIR
"""
import logging
import os
import sys

import gguf
from gguf import GGUFValueType as VT

PRE_NAMES = ["llama-bpe", "qwen2", "gpt-2", "default"]
UNKNOWN = "no-such-pre-tokenizer"

EXTRA_TOKENS = ["12", "123", "45", "Lorem", "sm\u00c3\u00b8rrebr\u00c3\u00b8d"]  # the last: "smørrebrød", byte-mapped
EXTRA_MERGES = ["1 2", "12 3", "4 5"]


def copy_fields(reader, writer, pre):
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "tokenizer.ggml.pre"):
            continue
        value = field.contents()
        vtype = field.types[0]
        if key == "tokenizer.ggml.tokens":
            value = value + EXTRA_TOKENS
        elif key == "tokenizer.ggml.token_type":
            value = value + [1] * len(EXTRA_TOKENS)
        elif key == "tokenizer.ggml.merges":
            value = value + EXTRA_MERGES
        if vtype == VT.ARRAY:
            writer.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, vtype)
    writer.add_string("tokenizer.ggml.pre", pre)


def main():
    logging.disable(logging.WARNING)
    model, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    reader = gguf.GGUFReader(model)
    arch = reader.fields["general.architecture"].contents()
    for name, pre in [(n, n) for n in PRE_NAMES] + [("unknown", UNKNOWN)]:
        path = os.path.join(out_dir, "pre_%s.gguf" % name)
        w = gguf.GGUFWriter(path + ".tmp", arch=arch)
        copy_fields(reader, w, pre)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
