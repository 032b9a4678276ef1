#!/usr/bin/env python3
"""Regenerates the tokenizer goldens from llama.cpp (llama-cpp-python), run
by hand; CI only reads the committed output:

  golden_smollm2.json  ids of each corpus.json string with the SmolLM2 model
  golden_gemma3.json   the same with gemma-3-270m (SentencePiece vocab, 262144 tokens)
  golden_spm.json      the same with the vocab make_spm_vocab.py writes
  golden_pre.json      {"<pre>": ids...} for the files make_pre_vocabs.py writes

All encoded with add_bos=False, special=False (special-token text is split
as plain text).

Usage: make_golden.py [SMOLLM2.gguf [GEMMA3.gguf]]
  (defaults: models/SmolLM2-135M-Instruct.Q4_1.gguf, models/gemma-3-270m-q4_k_m.gguf;
  tests/setup.sh fetches both)
"""
import json
import os
import subprocess
import sys
import tempfile

from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def encode_all(model_path, corpus):
    m = Llama(model_path=model_path, vocab_only=True, verbose=False)
    return [m.tokenize(s.encode("utf-8"), add_bos=False, special=False) for s in corpus]


def write(name, text):
    with open(os.path.join(HERE, name), "w", encoding="ascii") as f:
        f.write(text)


def id_lists(lists, indent=""):
    return "[\n" + ",\n".join(indent + "  " + json.dumps(ids, separators=(",", ":")) for ids in lists) + \
        "\n" + indent + "]"


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    gemma = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
    with open(os.path.join(HERE, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    write("golden_smollm2.json", id_lists(encode_all(model, corpus)) + "\n")
    write("golden_gemma3.json", id_lists(encode_all(gemma, corpus)) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(HERE, "make_spm_vocab.py"), tmp], check=True)
        write("golden_spm.json", id_lists(encode_all(os.path.join(tmp, "spm.gguf"), corpus)) + "\n")
        subprocess.run([sys.executable, os.path.join(HERE, "make_pre_vocabs.py"), model, tmp], check=True)
        sys.path.insert(0, HERE)
        from make_pre_vocabs import PRE_NAMES
        parts = ['  "%s": %s' % (p, id_lists(encode_all(os.path.join(tmp, "pre_%s.gguf" % p), corpus), "  "))
                 for p in PRE_NAMES]
        write("golden_pre.json", "{\n" + ",\n".join(parts) + "\n}\n")


if __name__ == "__main__":
    main()
