#!/usr/bin/env python3
"""Writes a small SentencePiece-style ("llama" model) vocab-only GGUF file,
deterministically, for the SPM tokenizer test: OUT_DIR/spm.gguf.

Vocabulary: <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, one
user-defined token, single characters (Latin, accented, a few CJK) and the
most useful substrings of the words of SAMPLE below, scored by log frequency.
Texts outside it fall back to bytes, which the test wants too.

Also writes malformed variants, spm_bad_<what>.gguf, and lists them in
OUT_DIR/spm_bad.txt as "<file> <substring the error must contain>".

Usage: make_spm_vocab.py OUT_DIR
"""
import collections
import logging
import math
import os
import re
import sys

import gguf

SAMPLE = """
The quick brown fox jumps over the lazy dog. Machine learning models are trained on large
datasets, and the inference program reads prompts, tokenizes them, and generates text one
token at a time. Once upon a time, in a land far away, there lived a king who loved numbers
and words. What is the capital of France? Paris is the capital of France. It's not what you
think: they're here, we've seen them, I'm sure you'll agree and he'd say so. Hello world!
This is a test of the tokenizer with some common English words: time, people, year, way,
day, thing, man, world, life, hand, part, child, eye, woman, place, work, week, case, point,
government, company, number, group, problem, fact, question, answer, program, model, data.
Le renard brun rapide saute par-dessus le chien paresseux. El niño comió piña en España.
Der schnelle braune Fuchs springt über den faulen Hund. Grüße aus München, café naïve résumé.
def main(): return 0 for i in range(10): print(i) if x == y: pass else: continue
"""
ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            ".,;:!?'\"()-/&%$@#*+=<>[]{}_|~^`\\"
            "\u00e9\u00e8\u00ea\u00e0\u00e2\u00e4\u00e7\u00f1\u00fc\u00f6\u00f8\u00e5\u00df\u00ed\u00f3\u00fa\u00e1"
            "\u4f60\u597d\u4e16\u754c\u4e2d\u6587")  # 你好世界中文
SPACE = "\u2581"
N_PIECES = 1700
USER_DEFINED = "<sep>"

TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER, TYPE_BYTE = 1, 2, 3, 4, 6


def vocabulary():
    """(text, score, type) for every token, in id order."""
    toks = [("<unk>", 0.0, TYPE_UNKNOWN), ("<s>", 0.0, TYPE_CONTROL), ("</s>", 0.0, TYPE_CONTROL)]
    toks += [("<0x%02X>" % b, 0.0, TYPE_BYTE) for b in range(256)]
    toks.append((USER_DEFINED, 0.0, TYPE_USER))
    counts = collections.Counter()
    for word in re.findall(r"\w+|[^\w\s]", SAMPLE):
        w = SPACE + word
        for i in range(len(w)):
            for j in range(i + 2, min(len(w), i + 10) + 1):
                counts[w[i:j]] += 1
    total = sum(counts.values())
    # keep the pieces that save most (count x length), ties by text
    best = sorted(counts, key=lambda p: (-counts[p] * (len(p) - 1), p))[:N_PIECES]
    for p in sorted(best, key=lambda p: (-counts[p], p)):
        toks.append((p, math.log(counts[p] / total), TYPE_NORMAL))
    seen = {t[0] for t in toks}
    for i, ch in enumerate(SPACE + ALPHABET):
        if ch not in seen:
            toks.append((ch, -20.0 - i / 100.0, TYPE_NORMAL))
    return toks


def write(path, toks, model="llama", scores_cut=0, types_as_strings=False, skip_tokens=False):
    w = gguf.GGUFWriter(path + ".tmp", arch="llama")
    # hyperparameters llama.cpp reads even for a vocab-only load
    w.add_context_length(256)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model(model)
    if not skip_tokens:
        w.add_token_list([t[0] for t in toks])
    w.add_token_scores([t[1] for t in toks][:len(toks) - scores_cut])
    if types_as_strings:
        w.add_array("tokenizer.ggml.token_type", [str(t[2]) for t in toks])
    else:
        w.add_token_types([t[2] for t in toks])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def main():
    logging.disable(logging.WARNING)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    toks = vocabulary()
    write(os.path.join(out, "spm.gguf"), toks)
    bad = [
        ("spm_bad_model.gguf", "tokenizer.ggml.model", dict(model="bert")),
        ("spm_bad_dup.gguf", "tokenizer.ggml.tokens", dict(toks=toks + [toks[-1]])),
        ("spm_bad_scores.gguf", "tokenizer.ggml.scores", dict(scores_cut=1)),
        ("spm_bad_types.gguf", "tokenizer.ggml.token_type", dict(types_as_strings=True)),
        ("spm_no_tokens.gguf", "tokenizer.ggml.tokens", dict(skip_tokens=True)),
    ]
    lines = []
    for name, key, kw in bad:
        write(os.path.join(out, name), kw.pop("toks", toks), **kw)
        lines.append("%s %s\n" % (name, key))
    with open(os.path.join(out, "spm_bad.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
