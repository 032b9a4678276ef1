#!/usr/bin/env python3
"""Compare borg-infer with llama.cpp (llama-cpp-python) on the same GGUF.

Same model file, same thread count, same prompt token ids, greedy decoding,
ignore EOS.  The two engines are alternated inside every repetition (the one
that goes first swaps each repetition); medians over the repetitions are
reported with the ratio borg / llama.cpp (> 1 means borg-infer is faster).

Workloads:
  decode-b1   1 job, 16-token prompt, 128 new tokens; decode tokens/s after
              the first token (borg: from the result line's timings;
              llama.cpp: timed greedy loop of 1-token llama_decode calls).
  prefill     1 job, 512-token prompt, 1 new token; prompt tokens/s
              (borg: prompt_tokens / first_token_ms; llama.cpp: one
              llama_decode of the 512 tokens, n_batch = 512).
  batch B     B jobs (--batches, default 8,32,64), 16-48-token prompts,
              --batch-new-tokens (128) new tokens each; generated tokens/s
              over the whole batch, prefill included (borg: the summary's
              generated_tokens / wall_s, which also includes the model load;
              llama.cpp: batched llama_decode with one sequence per job, the
              whole batch in one context, timed from the first prefill to
              the last token, model load excluded). B = 64 is the
              whole-batch throughput figure; smaller B is decode at batch B
              (16-48 prompt tokens per 128 generated).

If llama_cpp does not import with this interpreter, bench/.venv is created,
llama-cpp-python is pip-installed there (compiles; ~10 min) and the script
re-executes itself with that interpreter.

Usage: python3 bench/compare_llamacpp.py [--threads 2] [--reps 3] [--write]
       [--llama-threads 1,2]   (llama.cpp's best thread count of these counts)
"""
import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ensure_llama_cpp():
    try:
        import llama_cpp  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.path.join(HERE, ".venv")
    vpy = os.path.join(venv, "bin", "python3")
    if os.environ.get("BORG_COMPARE_REEXEC") == "1":
        sys.exit("llama_cpp still does not import in %s" % sys.executable)
    if not os.path.exists(vpy):
        print("llama_cpp not importable; creating %s" % venv, file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    chk = subprocess.run([vpy, "-c", "import llama_cpp"], capture_output=True)
    if chk.returncode != 0:
        print("pip install llama-cpp-python numpy into %s (compiles, slow)" % venv,
              file=sys.stderr)
        subprocess.check_call([vpy, "-m", "pip", "install", "-q",
                               "llama-cpp-python", "numpy"])
    os.environ["BORG_COMPARE_REEXEC"] = "1"
    os.execv(vpy, [vpy, os.path.abspath(__file__)] + sys.argv[1:])


# ---------------------------------------------------------------- workloads

def make_prompts(n, lo, hi, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        L = rng.randint(lo, hi)
        out.append([rng.randrange(100, 40000) for _ in range(L)])
    return out


# ---------------------------------------------------------------- borg-infer

def borg_run(args, prompts, max_tokens, extra=()):
    with tempfile.TemporaryDirectory(prefix="borgcmp") as td:
        jobs = os.path.join(td, "jobs.jsonl")
        out = os.path.join(td, "out.jsonl")
        with open(jobs, "w") as f:
            for i, p in enumerate(prompts):
                f.write(json.dumps({"id": "j%d" % i, "prompt_token_ids": p,
                                    "max_tokens": max_tokens,
                                    "ignore_eos": True}) + "\n")
        cmd = [args.borg, "run", "--model", args.model, "--jobs", jobs,
               "--out", out, "--force", "--threads", str(args.threads),
               "--quiet"] + list(extra)
        env = dict(os.environ)
        if getattr(args, "llama_omp_passive", False):
            env.pop("OMP_WAIT_POLICY", None)  # meant for llama.cpp only
        subprocess.run(cmd, check=True, env=env)
        with open(out) as f:
            res = [json.loads(l) for l in f if l.strip()]
        with open(out + ".summary.json") as f:
            summ = json.load(f)
    for r in res:
        if r.get("status") != "ok":
            raise RuntimeError("borg job failed: %r" % r)
    return res, summ


def borg_decode_b1(args, prompt, n_new):
    res, _ = borg_run(args, [prompt], n_new)
    r = res[0]
    t = r["timings"]
    n = r["usage"]["completion_tokens"]
    return (n - 1) / (t["total_ms"] - t["first_token_ms"]) * 1000.0, r["token_ids"]


def borg_prefill(args, prompt):
    res, _ = borg_run(args, [prompt], 1)
    r = res[0]
    return r["usage"]["prompt_tokens"] / r["timings"]["first_token_ms"] * 1000.0


def borg_batch(args, prompts, n_new, slots):
    res, summ = borg_run(args, prompts, n_new, ["--slots", str(slots)])
    assert summ["generated_tokens"] == len(prompts) * n_new, summ
    toks = {r["id"]: r["token_ids"] for r in res}
    return summ["generated_tokens"] / summ["wall_s"], toks


# ---------------------------------------------------------------- llama.cpp

class LlamaEngine:
    def __init__(self, model_path, threads, kv_unified):
        import llama_cpp as lc
        import numpy as np
        self.lc, self.np, self.threads, self.kv_unified = lc, np, threads, kv_unified
        lc.llama_backend_init()
        # silence llama.cpp's own logging
        self._log_cb = lc.llama_log_callback(lambda level, text, ud: None)
        lc.llama_log_set(self._log_cb, None)
        mp = lc.llama_model_default_params()
        self.model = lc.llama_model_load_from_file(model_path.encode(), mp)
        if not self.model:
            raise RuntimeError("llama.cpp could not load %s" % model_path)
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.ctxs = {}

    def ctx(self, n_ctx, n_batch, n_seq):
        key = (n_ctx, n_batch, n_seq)
        if key not in self.ctxs:
            lc = self.lc
            cp = lc.llama_context_default_params()
            cp.n_ctx = n_ctx
            cp.n_batch = n_batch
            cp.n_ubatch = n_batch
            cp.n_seq_max = n_seq
            # unified: one KV buffer that every sequence's attention spans
            # (masked); split: a stream per sequence (llama.cpp's default)
            cp.kv_unified = self.kv_unified
            cp.n_threads = self.threads
            cp.n_threads_batch = self.threads
            c = lc.llama_init_from_model(self.model, cp)
            if not c:
                raise RuntimeError("llama_init_from_model failed")
            batch = lc.llama_batch_init(max(n_batch, n_seq), 0, 1)
            self.ctxs[key] = (c, batch)
        c, batch = self.ctxs[key]
        self.lc.llama_memory_clear(self.lc.llama_get_memory(c), True)
        return c, batch

    def _fill(self, batch, items):
        # items: (token, pos, seq, want_logits)
        for i, (tok, pos, seq, lg) in enumerate(items):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = 1 if lg else 0
        batch.n_tokens = len(items)

    def _decode(self, c, batch, items):
        self._fill(batch, items)
        rc = self.lc.llama_decode(c, batch)
        if rc != 0:
            raise RuntimeError("llama_decode returned %d" % rc)

    def _argmax(self, c, i):
        p = self.lc.llama_get_logits_ith(c, i)
        return int(self.np.ctypeslib.as_array(p, shape=(self.n_vocab,)).argmax())

    def prefill(self, prompt, n_batch=512):
        c, batch = self.ctx(max(1024, len(prompt) + 8), n_batch, 1)
        t0 = time.perf_counter()
        for s in range(0, len(prompt), n_batch):
            chunk = prompt[s:s + n_batch]
            self._decode(c, batch, [(t, s + j, 0, s + j == len(prompt) - 1)
                                    for j, t in enumerate(chunk)])
        self.lc.llama_synchronize(c)
        dt = time.perf_counter() - t0
        return len(prompt) / dt

    def decode_b1(self, prompt, n_new):
        c, batch = self.ctx(1024, 512, 1)
        self._decode(c, batch, [(t, j, 0, j == len(prompt) - 1)
                                for j, t in enumerate(prompt)])
        tok = self._argmax(c, len(prompt) - 1)
        out = [tok]
        pos = len(prompt)
        t0 = time.perf_counter()
        for _ in range(n_new - 1):
            self._decode(c, batch, [(tok, pos, 0, True)])
            tok = self._argmax(c, 0)
            out.append(tok)
            pos += 1
        dt = time.perf_counter() - t0
        return (n_new - 1) / dt, out

    def batch(self, prompts, n_new, n_batch=512):
        n = len(prompts)
        maxlen = max(len(p) for p in prompts) + n_new + 8
        c, batch = self.ctx(n * maxlen, n_batch, n)
        t0 = time.perf_counter()
        # prefill: pack whole prompts into micro-batches of <= n_batch tokens
        nxt = [None] * n
        items, owners = [], []

        def flush():
            if not items:
                return
            self._decode(c, batch, items)
            for idx, s in owners:
                nxt[s] = self._argmax(c, idx)
            items.clear()
            owners.clear()

        for s, p in enumerate(prompts):
            if len(items) + len(p) > n_batch:
                flush()
            for j, t in enumerate(p):
                last = j == len(p) - 1
                if last:
                    owners.append((len(items), s))
                items.append((t, j, s, last))
        flush()
        outs = [[t] for t in nxt]
        pos = [len(p) for p in prompts]
        for _ in range(n_new - 1):
            self._decode(c, batch, [(outs[s][-1], pos[s], s, True)
                                    for s in range(n)])
            for s in range(n):
                outs[s].append(self._argmax(c, s))
                pos[s] += 1
        dt = time.perf_counter() - t0
        return n * n_new / dt, outs


# ---------------------------------------------------------------- driver

def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def med(xs):
    return statistics.median(xs)


def fmt(xs):
    return "%.1f (%s)" % (med(xs), ", ".join("%.1f" % x for x in xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(
        ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-threads", default=None,
                    help="llama.cpp thread counts to try (comma list, each <= "
                    "--threads); its best median per workload is the reference. "
                    "Default: --threads")
    ap.add_argument("--llama-kv", default="split",
                    help="llama.cpp KV layouts to try: split (a stream per sequence, its "
                    "default), unified, or both as 'split,unified'")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=128,
                    help="new tokens in the decode-b1 workload")
    ap.add_argument("--batch-new-tokens", type=int, default=128,
                    help="new tokens per job in the batch workloads")
    ap.add_argument("--batches", default="8,32,64",
                    help="batch sizes of the batch workloads (comma list)")
    ap.add_argument("--llama-omp-passive", action="store_true",
                    help="set OMP_WAIT_POLICY=passive for llama.cpp (its OpenMP "
                    "threads otherwise spin, which hurts on an oversubscribed host)")
    ap.add_argument("--skip", default="", help="comma list of workloads to skip: "
                    "decode,prefill,batch")
    ap.add_argument("--write", action="store_true",
                    help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    ensure_llama_cpp()
    if args.llama_omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "passive"  # read when libgomp loads
    import llama_cpp
    load0 = os.getloadavg()[0]

    skip = set(x for x in args.skip.split(",") if x)
    lthreads = [int(x) for x in (args.llama_threads or str(args.threads)).split(",")]
    kvs = [x for x in args.llama_kv.split(",") if x]
    if any(x not in ("split", "unified") for x in kvs):
        sys.exit("--llama-kv: split and/or unified")
    configs = [(t, kv) for t in lthreads for kv in kvs]  # llama.cpp's configurations

    def label(cfg):
        return "%d thr, %s KV" % cfg
    batches = [int(x) for x in args.batches.split(",") if x]
    bn_new = args.batch_new_tokens
    p16 = make_prompts(1, 16, 16, 1)[0]
    p512 = make_prompts(1, 512, 512, 2)[0]
    pb = make_prompts(max(batches or [1]), 16, 48, 3)

    print("loading llama.cpp %s ..." % llama_cpp.__version__, file=sys.stderr)
    engs = {c: LlamaEngine(args.model, c[0], c[1] == "unified") for c in configs}
    # warm both (page cache, llama.cpp contexts/graphs)
    for eng in engs.values():
        eng.decode_b1(p16, 4)
        eng.prefill(p512)
    borg_decode_b1(args, p16, 4)

    # workload -> ("borg" | llama thread count) -> [figure per rep]
    work = []
    if "decode" not in skip:
        work.append(("decode-b1", "decode, batch 1 (16-token prompt, %d new; tok/s after the first token)"
                     % args.new_tokens,
                     lambda: borg_decode_b1(args, p16, args.new_tokens),
                     lambda e: e.decode_b1(p16, args.new_tokens)))
    if "prefill" not in skip:
        work.append(("prefill", "prefill, 512-token prompt (prompt tok/s; llama.cpp n_batch 512)",
                     lambda: (borg_prefill(args, p512), None),
                     lambda e: (e.prefill(p512), None)))
    if "batch" not in skip:
        for b in batches:
            work.append(("batch-%d" % b,
                         "batch %d: %d jobs x %d new, 16-48-token prompts (generated tok/s, prefill "
                         "incl.; borg --slots %d, llama.cpp %d sequences per llama_decode)"
                         % (b, b, bn_new, b, b),
                         lambda b=b: borg_batch(args, pb[:b], bn_new, b),
                         lambda e, b=b: e.batch(pb[:b], bn_new)))
    R = {w[0]: {} for w in work}
    agree = {}
    T0 = time.time()
    for rep in range(args.reps):
        for key, _, fb, fl in work:
            runs = [("borg", fb)] + [(c, (lambda c=c: fl(engs[c]))) for c in configs]
            if rep % 2:
                runs.reverse()  # neither engine always goes first
            toks = {}
            for who, f in runs:
                rate, toks[who] = f()
                R[key].setdefault(who, []).append(rate)
                print("rep %d %s: %s %.1f tok/s" % (rep, key, "borg" if who == "borg"
                                                     else "llama.cpp " + label(who), rate),
                      file=sys.stderr)
            tb, tl = toks["borg"], toks[configs[-1]]
            if tb is not None and tl is not None:
                if isinstance(tb, dict):
                    agree[key] = sum(tb["j%d" % i] == tl[i] for i in range(len(tl))), len(tl), "jobs' sequences"
                else:
                    agree[key] = sum(a == b for a, b in zip(tb, tl)), len(tl), "tokens"
    elapsed = time.time() - T0
    load1 = os.getloadavg()[0]

    lines = ["| workload | borg-infer | llama.cpp (its best configuration) | borg / llama.cpp |",
             "|---|---|---|---|"]
    for key, name, _, _ in work:
        b = R[key]["borg"]
        best = max(configs, key=lambda c: med(R[key][c]))
        others = "".join("; %s: %.1f" % (label(c), med(R[key][c])) for c in configs if c != best)
        lines.append("| %s | %s | %s [%s%s] | %.2f |" % (name, fmt(b), fmt(R[key][best]), label(best), others,
                                                       med(b) / med(R[key][best])))
    table = "\n".join(lines)
    notes = ["%s: %d/%d %s identical between the engines (last rep)" % (k, s, n, what)
             for k, (s, n, what) in agree.items()]
    print(table)
    for n in notes:
        print(n)
    print("(%d reps in %.0f s; 1-min load average %.1f before, %.1f after; %d CPUs)"
          % (args.reps, elapsed, load0, load1, os.cpu_count()))

    if args.write:
        cmd = "python3 bench/compare_llamacpp.py " + " ".join(sys.argv[1:])
        head = ("\n## borg-infer vs llama.cpp\n\n"
                "%s, %s, %d threads for borg-infer, llama.cpp the best of %s threads x %s KV, model `%s`, "
                "llama-cpp-python %s; median of %d alternating repetitions (each run listed in "
                "brackets), tokens/s. Command: `%s`.\n\n" %
                (cpu_model(), datetime.date.today().isoformat(), args.threads,
                 ",".join(map(str, lthreads)), "/".join(kvs), os.path.relpath(args.model, ROOT),
                 llama_cpp.__version__, args.reps, cmd.strip()))
        tail = ("\n\nborg's batch figures are the summary's generated_tokens / wall_s "
                "(process start and model load included); llama.cpp's exclude its model load. "
                "Prompts are random token ids in [100, 40000), identical for both; "
                "greedy, ignore EOS. llama.cpp OMP_WAIT_POLICY: %s. "
                "1-min load average %.1f before and %.1f after the runs on %d CPUs.\n"
                % (os.environ.get("OMP_WAIT_POLICY", "default (spinning)"),
                   load0, load1, os.cpu_count()) + "".join("\n- " + n for n in notes) + "\n")
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(head + table + tail)
        print("appended to bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
