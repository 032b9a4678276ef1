#!/usr/bin/env python3
"""Writes tests/goldens/continuations.json from llama.cpp (llama-cpp-python),
run by hand; CI only reads the committed output.

For each model (SmolLM2-135M-Instruct Q4_1, gemma-3-270m Q4_K_M) and each job
of inputs/example.jsonl:

  prompt       the job's text; a chat job is rendered with llama.cpp's
               llama_chat_apply_template from the model's template
               (tokenizer.chat_template), assistant turn opened (add_ass)
  prompt_ids   llama.cpp's ids for it: add_special=True (BOS where the vocab
               says add_bos_token), parse_special=True (<|im_start|> etc. become
               their ids), as llama-cli and llama-server tokenize a prompt
  continuation 32 greedy ids (argmax of the logits, lowest id on a tie),
               generated on past an end-of-generation token; eog_at is the
               first step whose id is one (null when none)
  margins      per step, top-1 minus top-2 logit (small = a near tie, where a
               different but correct implementation may pick the other id)
  text         llama.cpp's detokenization of the continuation

The job's own max_tokens, temperature, stop, seed are ignored. KV cache F32
(type_k = type_v = GGML_TYPE_F32), flash attention off, CPU.

llama_chat_apply_template does not run Jinja: it recognises the template's
family (ChatML for SmolLM2) and renders that natively, so SmolLM2's default
system prompt (which its Jinja template adds when the conversation has none)
is not in "prompt". Where the Jinja rendering (jinja2, as llama-server --jinja
and HF transformers render it) differs, the job also has "jinja": the same
fields for that text. gemma-3-270m's GGUF has no chat template: there
llama.cpp's built-in "gemma" template is used (with none, llama.cpp would fall
back to ChatML, whose markers gemma's vocabulary lacks); chat_template in the
output says which.

Also, for gemma: "The capital of France is" with BOS, 16 greedy ids and text
(capital_france).

Usage: make_model_goldens.py [--smollm2 M.gguf] [--gemma3 M.gguf]
                             [--jobs inputs/example.jsonl] [--out tests/goldens/continuations.json]
                             [--llama-cpp-version STR]
"""
import argparse
import ctypes
import json
import os
import re

import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_CONT = 32


def load(path):
    return Llama(model_path=path, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2, n_threads_batch=2,
                 type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, flash_attn=False,
                 logits_all=False, verbose=False)


def model_template(llm):
    t = llama_cpp.llama_model_chat_template(llm.model, None)
    return t.decode("utf-8") if t else None


def apply_template(tmpl, messages):
    arr = (llama_cpp.llama_chat_message * len(messages))()
    keep = []
    for i, m in enumerate(messages):
        role, content = m["role"].encode("utf-8"), m["content"].encode("utf-8")
        keep += [role, content]
        arr[i].role, arr[i].content = role, content
    t = tmpl.encode("utf-8")
    n = llama_cpp.llama_chat_apply_template(t, arr, len(messages), True, None, 0)
    if n < 0:
        raise RuntimeError("llama_chat_apply_template failed (%d)" % n)
    buf = ctypes.create_string_buffer(n + 1)
    n2 = llama_cpp.llama_chat_apply_template(t, arr, len(messages), True, buf, n + 1)
    assert n2 == n
    return buf.raw[:n].decode("utf-8")


def render_jinja(tmpl, messages, llm):
    import jinja2.sandbox
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    tok = lambda i: llm.detokenize([i], special=True).decode("utf-8") if i >= 0 else ""
    return env.from_string(tmpl).render(messages=messages, add_generation_prompt=True,
                                        bos_token=tok(llama_cpp.llama_vocab_bos(vocab)),
                                        eos_token=tok(llama_cpp.llama_vocab_eos(vocab)))


def greedy(llm, ids, n):
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    llm.reset()
    llm.eval(ids)
    out, margins, eog_at = [], [], None
    for step in range(n):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        tok = int(np.argmax(logits))
        top2 = np.partition(logits, n_vocab - 2)[-2:]
        margins.append(round(float(top2[1] - top2[0]), 5))
        out.append(tok)
        if eog_at is None and llama_cpp.llama_vocab_is_eog(vocab, tok):
            eog_at = step
        if step + 1 < n:
            llm.eval([tok])
    text = llm.detokenize(out, special=True).decode("utf-8", errors="replace")
    return {"continuation": out, "margins": margins, "eog_at": eog_at, "text": text}


def run_prompt(llm, text, n=N_CONT):
    ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    return dict({"prompt": text, "prompt_ids": ids}, **greedy(llm, ids, n))


def read_jobs(path):
    jobs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            j = json.loads(line)
            if "custom_id" in j:
                jid, body = j["custom_id"], j["body"]
            else:
                jid, body = j["id"], j
            jobs.append((jid, body.get("messages"), body.get("prompt")))
    return jobs


def model_goldens(name, path, jobs):
    llm = load(path)
    tmpl = model_template(llm)
    used = tmpl if tmpl is not None else "gemma"
    out = {"file": os.path.relpath(path, ROOT),
           "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model))),
           "chat_template": "tokenizer.chat_template of the GGUF" if tmpl is not None else
           "llama.cpp built-in \"gemma\" (the GGUF has no tokenizer.chat_template)",
           "jobs": []}
    for jid, messages, prompt in jobs:
        if messages is not None:
            rec = run_prompt(llm, apply_template(used, messages))
            rec = dict({"id": jid, "kind": "chat", "messages": messages}, **rec)
            if tmpl is not None:
                jt = render_jinja(tmpl, messages, llm)
                if jt != rec["prompt"]:
                    rec["jinja"] = run_prompt(llm, jt)
        else:
            rec = dict({"id": jid, "kind": "prompt"}, **run_prompt(llm, prompt))
        out["jobs"].append(rec)
        print("%s %s: %d prompt ids, %r" % (name, jid, len(rec["prompt_ids"]), rec["text"][:60]))
    return llm, out


def dumps(obj):
    s = json.dumps(obj, indent=2, ensure_ascii=True)
    # number lists on one line
    return re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + re.sub(r",\s+", ",", m.group(1)) + "]", s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--gemma3", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--jobs", default=os.path.join(ROOT, "inputs", "example.jsonl"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "goldens", "continuations.json"))
    ap.add_argument("--llama-cpp-version", default="")
    a = ap.parse_args()
    jobs = read_jobs(a.jobs)
    res = {"generator": "tests/tools/make_model_goldens.py",
           "llama_cpp_python": llama_cpp.__version__,
           "llama_cpp": a.llama_cpp_version,
           "settings": {"kv_cache": "f32 (type_k = type_v = GGML_TYPE_F32)", "flash_attn": False,
                        "device": "CPU", "n_threads": 2,
                        "tokenize": "add_special=True, parse_special=True",
                        "chat": "llama_chat_apply_template(template, messages, add_ass=True)",
                        "decode": "greedy argmax (lowest id on a tie), %d steps, generated on past EOG" % N_CONT,
                        "margins": "top-1 minus top-2 logit at each step"},
           "jobs_file": os.path.relpath(a.jobs, ROOT),
           "models": {}}
    _, res["models"]["smollm2"] = model_goldens("smollm2", a.smollm2, jobs)
    llm, g = model_goldens("gemma3", a.gemma3, jobs)
    cf = run_prompt(llm, "The capital of France is", 16)
    g["capital_france"] = cf
    print("gemma3 capital_france:", cf["prompt_ids"], cf["continuation"], repr(cf["text"]))
    res["models"]["gemma3"] = g
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="ascii") as f:
        f.write(dumps(res) + "\n")


if __name__ == "__main__":
    main()
