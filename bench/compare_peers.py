#!/usr/bin/env python3
"""borg-infer side by side with llama.cpp and ik_llama.cpp (the peers) on one GGUF.

    .venv/bin/python bench/compare_peers.py [--model M.gguf] [--threads 2] [--reps 3]
        [--borg build/borg-infer] [--borg-env BORG_ISA=avx2 ...] [--borg-base OLD/borg-infer]
        [--peers-dir /work/peers]
        [--peers llama.cpp,ik_llama.cpp] [--skip batch,prefill,decode] [--batches 1,8,32,64]
        [--bandwidth] [--write [--results bench/RESULTS.md]]

Same model file, same thread count for every engine. Within every repetition
each row runs every engine once, one process at a time, in an order rotated
each repetition (so the engine that goes first changes); the table gives the
median over --reps with every run listed in brackets, and borg / best peer
(> 1 means borg-infer is faster; for rows in seconds that is peer s / borg s).

Rows:
  batch B     (B = --batches, default 1, 8, 32, 64): B jobs, each a 64-token
              prompt (random ids) and 128 new tokens; wall seconds for the
              whole batch, prefill included, model load excluded.
              borg: one `borg-infer run --slots B --threads T` process on a
              JSONL of B jobs (prompt_token_ids, max_tokens 128, ignore_eos,
              greedy); the time from the (last) stage_ready event to the
              run_summary event of --log-json --verbose, i.e. the run's own
              timing of the batch after the model is loaded (if the events
              are missing, the summary's wall_s, which includes the load; the
              table then says so).
              peers: `llama-batched-bench -npp 64 -ntg 128 -npl 1,8,32,64 -t T
              -tb T -c B_max*(64+128+16)`, its T s column (prompt processing
              of the B prompts, then 128 steps decoding B sequences; random
              tokens, no sampling; its load and warm-up excluded).
  prefill     one 512-token prompt; prompt tokens/s. borg: prompt_tokens /
              first_token_ms of one job with max_tokens 1 (as
              compare_llamacpp.py); peers: `llama-bench -p 512 -n 0 -r 1`.
  decode      batch 1, 128 new tokens; tokens/s. borg: (completion_tokens - 1)
              / (total_ms - first_token_ms) of one job with a 16-token prompt;
              peers: `llama-bench -p 0 -n 128 -r 1` (tg128).
  bandwidth   (--bandwidth) a streaming read of a 1 GiB buffer by T threads
              (a C program compiled here with cc -O3 -march=native -pthread;
              best of 5 passes, GB/s) measured once per repetition, and each
              engine's decode figure as weight bytes per token x tokens/s, the
              bytes being what one decode step reads: every tensor of the file
              except the token embedding, plus the embedding when it is tied
              (the LM head); (bytes per token / bandwidth) bounds decode.

Peers are found as PEERS_DIR/llama.cpp/build/bin/{llama-bench,
llama-batched-bench} and PEERS_DIR/ik_llama.cpp/build/bin/...; each peer's
extra flags are --llama-bench-args / --llama-batched-args / --ik-bench-args /
--ik-batched-args (defaults: none for llama.cpp, whose weight repacking is on
by default; ik_llama.cpp with run-time repack -rtr, its fast CPU path).
llama.cpp's AMX path (a -march=native build on an AMX CPU) crashed on this VM
(SIGSEGV in ggml_backend_amx_mul_mat): build it with -mno-amx-tile
-mno-amx-int8 -mno-amx-bf16 in CMAKE_C(XX)_FLAGS (GGML_AMX_INT8=OFF is not
enough under GGML_NATIVE), or pass --llama-bench-args '--repack 0'
--llama-batched-args --no-repack (no repacking at all: slower). A peer's version is its git commit where PEERS_DIR/NAME is a
git checkout, else the first line of PEERS_DIR/NAME/PEER_SOURCE.

--borg-env 'BORG_ISA=avx2' (repeatable) adds a borg run with that environment,
labelled separately; --borg-base PATH adds another borg-infer build (the
commit before a change, for its before/after figures) as borg-base. --write appends a markdown section (date, CPU model,
ISA flags, the peers' versions and flags, borg's commit, the command line)
to --results (default bench/RESULTS.md); otherwise the table is printed only.
The runs of every engine are printed on stderr as they finish.
"""
import argparse
import datetime
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchjobs import ROOT, command as borg_command  # noqa: E402

PP, TG = 64, 128  # batch rows: prompt and new tokens per job
PREFILL, DECODE, DECODE_PROMPT = 512, 128, 16
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")
PEERS = {  # name -> (folder under --peers-dir, option prefix)
    "llama.cpp": ("llama.cpp", "llama"),
    "ik_llama.cpp": ("ik_llama.cpp", "ik"),
}
DEFAULT_PEER_ARGS = {
    "llama_bench_args": "",
    "llama_batched_args": "",
    "ik_bench_args": "-rtr 1",
    "ik_batched_args": "-rtr",
}

BANDWIDTH_C = r"""
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static uint64_t *buf; static size_t n_words; static int n_threads;
static pthread_barrier_t bar; static double best_gbs; static uint64_t sink;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void *worker(void *arg) {
    long id = (long)arg; size_t per = n_words / n_threads;
    const uint64_t *p = buf + id * per; uint64_t acc[8] = {0};
    for (int pass = 0; pass < 6; pass++) {
        double t0 = 0;
        pthread_barrier_wait(&bar);
        if (id == 0) t0 = now();
        for (size_t i = 0; i < per; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += p[i + k];
        pthread_barrier_wait(&bar);
        if (id == 0 && pass > 0) { double g = n_words * 8.0 / (now() - t0) / 1e9; if (g > best_gbs) best_gbs = g; }
    }
    uint64_t s = 0; for (int k = 0; k < 8; k++) s += acc[k];
    __atomic_fetch_add(&sink, s, __ATOMIC_RELAXED);
    return NULL;
}
int main(int argc, char **argv) {
    n_threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t bytes = (size_t)(argc > 2 ? atof(argv[2]) : 1.0) * (1u << 30);
    n_words = bytes / 8 / (8 * n_threads) * (8 * n_threads);
    if (posix_memalign((void **)&buf, 64, n_words * 8)) return 1;
    memset(buf, 1, n_words * 8);
    pthread_barrier_init(&bar, NULL, n_threads);
    pthread_t th[256];
    for (long i = 0; i < n_threads; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < n_threads; i++) pthread_join(th[i], NULL);
    printf("%.3f %llu\n", best_gbs, (unsigned long long)(sink & 1));
    return 0;
}
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def token_ids(n, seed):
    rng = random.Random(seed)
    return [rng.randrange(100, 40000) for _ in range(n)]


def med(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------- borg-infer

class Borg:
    """borg-infer run, one process per measurement; benchjobs.command builds the
    command line (its --quiet dropped: the summary events are what is timed)."""

    def __init__(self, args, env_items, exe=None, label="borg"):
        self.args = SimpleNamespace(borg=exe or args.borg, model=args.model, threads=args.threads, np=1,
                                    mpirun=None)
        self.env = dict(os.environ)
        self.env.update(env_items)
        self.name = label + ("[%s]" % " ".join("%s=%s" % kv for kv in env_items) if env_items else "")
        self.load_included = False

    def run(self, prompts, max_tokens, slots, ctx):
        with tempfile.TemporaryDirectory(prefix="borgpeers") as td:
            jobs, out = os.path.join(td, "jobs.jsonl"), os.path.join(td, "out.jsonl")
            with open(jobs, "w") as f:
                for i, p in enumerate(prompts):
                    f.write(json.dumps({"id": "j%d" % i, "prompt_token_ids": p, "max_tokens": max_tokens,
                                        "ignore_eos": True}) + "\n")
            extra = ["--slots", str(slots), "--ctx", str(ctx), "--log-json", "--verbose", "--progress-s", "0"]
            cmd = [a for a in borg_command(self.args, jobs, out, extra) if a != "--quiet"]
            p = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("%s failed (%d): %s\n%s" % (self.name, p.returncode, shlex.join(cmd),
                                                                p.stderr[-2000:]))
            with open(out) as f:
                res = [json.loads(line) for line in f if line.strip()]
            with open(out + ".summary.json") as f:
                summ = json.load(f)
        bad = [r for r in res if r.get("status") != "ok"]
        if bad or len(res) != len(prompts):
            raise RuntimeError("%s: %d results, failures: %r" % (self.name, len(res), bad[:2]))
        ready = done = None
        for line in p.stderr.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "stage_ready":
                ready = ev["time"]
            elif ev.get("event") == "run_summary":
                done = ev["time"]
        if ready is not None and done is not None:
            batch_s = done - ready
        else:
            batch_s = summ["wall_s"]
            self.load_included = True
        return res, summ, batch_s

    def batch(self, prompts):
        res, summ, s = self.run(prompts, TG, len(prompts), PP + TG + 64)
        if summ["generated_tokens"] != len(prompts) * TG:
            raise RuntimeError("%s: %d tokens generated, %d expected" % (self.name, summ["generated_tokens"],
                                                                        len(prompts) * TG))
        return {len(prompts): s}

    def prefill(self, prompt):
        res, _, _ = self.run([prompt], 1, 1, len(prompt) + 64)
        r = res[0]
        return r["usage"]["prompt_tokens"] / r["timings"]["first_token_ms"] * 1000.0

    def decode(self, prompt, n_new):
        res, _, _ = self.run([prompt], n_new, 1, len(prompt) + n_new + 64)
        r = res[0]
        t, n = r["timings"], r["usage"]["completion_tokens"]
        return (n - 1) / (t["total_ms"] - t["first_token_ms"]) * 1000.0


# ---------------------------------------------------------------- the peers

class Peer:
    """llama.cpp or ik_llama.cpp through its llama-bench and llama-batched-bench."""

    def __init__(self, name, root, bench_args, batched_args, args):
        self.name, self.root, self.args = name, root, args
        self.bench_bin = os.path.join(root, "build", "bin", "llama-bench")
        self.batched_bin = os.path.join(root, "build", "bin", "llama-batched-bench")
        self.bench_args, self.batched_args = shlex.split(bench_args), shlex.split(batched_args)
        self.load_included = False

    def available(self):
        return os.access(self.bench_bin, os.X_OK) and os.access(self.batched_bin, os.X_OK)

    def version(self):
        try:
            top = subprocess.run(["git", "-C", self.root, "rev-parse", "--show-toplevel"], capture_output=True,
                                 text=True).stdout.strip()
            if top and os.path.realpath(top) == os.path.realpath(self.root):
                h = subprocess.run(["git", "-C", self.root, "log", "-1", "--format=%h %cs"],
                                   capture_output=True, text=True)
                if h.returncode == 0 and h.stdout.strip():
                    return "commit " + h.stdout.strip()
        except OSError:
            pass
        try:
            with open(os.path.join(self.root, "PEER_SOURCE")) as f:
                return f.readline().strip()
        except OSError:
            return "unknown version"

    def build_notes(self):
        """PEER_SOURCE's lines after the first (how it was built), if any."""
        try:
            with open(os.path.join(self.root, "PEER_SOURCE")) as f:
                return [line.strip() for line in f.readlines()[1:] if line.strip()]
        except OSError:
            return []

    def _run(self, cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s\n%s" % (self.name, p.returncode, shlex.join(cmd),
                                                            (p.stdout + p.stderr)[-2000:]))
        return p.stdout, p.stderr

    def bench_cmd(self, n_prompt, n_gen):
        return [self.bench_bin, "-m", self.args.model, "-t", str(self.args.threads), "-p", str(n_prompt),
                "-n", str(n_gen), "-r", "1", "-o", "json"] + self.bench_args

    def llama_bench(self, n_prompt, n_gen):
        out, _ = self._run(self.bench_cmd(n_prompt, n_gen))
        rows = json.loads(out[out.index("["):])
        for r in rows:
            if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen:
                return float(r["avg_ts"])
        raise RuntimeError("%s: no pp%d/tg%d row in llama-bench output" % (self.name, n_prompt, n_gen))

    def batched_cmd(self, batches):
        ctx = max(batches) * (PP + TG + 16)
        return [self.batched_bin, "-m", self.args.model, "-t", str(self.args.threads), "-tb",
                str(self.args.threads), "-c", str(ctx), "-npp", str(PP), "-ntg", str(TG),
                "-npl", ",".join(map(str, batches))] + self.batched_args

    def batch(self, batches):
        out, err = self._run(self.batched_cmd(batches))
        got = {}
        for line in (out + "\n" + err).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 10 and all(re.fullmatch(r"[0-9.]+", c) for c in cells[:10]):
                pp, tg, b = int(cells[0]), int(cells[1]), int(cells[2])
                if pp == PP and tg == TG:
                    got[b] = float(cells[8])
        missing = [b for b in batches if b not in got]
        if missing:
            raise RuntimeError("%s: llama-batched-bench gave no row for B = %s" % (self.name, missing))
        return got

    def prefill(self, prompt):
        return self.llama_bench(len(prompt), 0)

    def decode(self, prompt, n_new):
        return self.llama_bench(0, n_new)


# ---------------------------------------------------------------- the machine

def build_bandwidth(td):
    src, exe = os.path.join(td, "bw.c"), os.path.join(td, "bw")
    with open(src, "w") as f:
        f.write(BANDWIDTH_C)
    subprocess.run(["cc", "-O3", "-march=native", "-pthread", "-o", exe, src], check=True)
    return exe


def bandwidth(exe, threads):
    out = subprocess.run([exe, str(threads), "1"], check=True, capture_output=True, text=True).stdout
    return float(out.split()[0])


def decode_bytes_per_token(path):
    """Bytes one decode step reads: all tensors but the embedding, plus it when tied."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return os.path.getsize(path), "file size (gguf-py not importable)"
    r = GGUFReader(path)
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(sizes.values())
    emb = sizes.get("token_embd.weight", 0)
    tied = "output.weight" not in sizes
    return total - (0 if tied else emb), "tensor bytes%s" % (", tied embedding as LM head" if tied else
                                                             ", token embedding excluded")


def cpu_model():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def isa_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in ISA_FLAGS if x in have]
    except OSError:
        pass
    return []


def borg_version(borg):
    root = os.path.dirname(os.path.dirname(os.path.abspath(borg)))
    h = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (h.stdout.strip() or "unknown") + (" + uncommitted changes" if dirty else "")


# ---------------------------------------------------------------- driver

def fmt(xs, unit_fmt="%.1f"):
    return (unit_fmt + " (%s)") % (med(xs), ", ".join(unit_fmt % x for x in xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--borg", default=os.path.join(ROOT, "build", "borg-infer"))
    ap.add_argument("--borg-env", action="append", default=[], metavar="'VAR=VALUE [VAR=VALUE]'",
                    help="an extra borg run with this environment, labelled separately (repeatable)")
    ap.add_argument("--borg-base", metavar="PATH",
                    help="another borg-infer build (e.g. the commit before a change), run as borg-base")
    ap.add_argument("--peers-dir", default="/work/peers")
    ap.add_argument("--peers", default="llama.cpp,ik_llama.cpp",
                    help="peers to run (comma list; a missing build is skipped with a note)")
    for key, val in DEFAULT_PEER_ARGS.items():
        ap.add_argument("--" + key.replace("_", "-"), default=val, help="default: %r" % val)
    ap.add_argument("--batches", default="1,8,32,64", help="batch sizes of the batch rows")
    ap.add_argument("--skip", default="", help="rows to skip: comma list of batch, prefill, decode")
    ap.add_argument("--bandwidth", action="store_true", help="add the streaming-read bandwidth row")
    ap.add_argument("--write", action="store_true", help="append the table as a section to --results")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = ap.parse_args()
    args.model = os.path.abspath(args.model)
    skip = {x for x in args.skip.split(",") if x}
    if skip - {"batch", "prefill", "decode"}:
        ap.error("--skip: batch, prefill and/or decode")
    batches = [int(x) for x in args.batches.split(",") if x]

    engines = [Borg(args, [])]
    for spec in args.borg_env:
        items = [tuple(kv.split("=", 1)) for kv in shlex.split(spec)]
        if not items or any(len(kv) != 2 for kv in items):
            ap.error("--borg-env: VAR=VALUE [VAR=VALUE ...]")
        engines.append(Borg(args, items))
    if args.borg_base:
        engines.append(Borg(args, [], exe=os.path.abspath(args.borg_base), label="borg-base"))
    notes = []
    peers = []
    for name in [x for x in args.peers.split(",") if x]:
        if name not in PEERS:
            ap.error("--peers: of %s" % ", ".join(PEERS))
        folder, pre = PEERS[name]
        peer = Peer(name, os.path.join(args.peers_dir, folder), getattr(args, pre + "_bench_args"),
                    getattr(args, pre + "_batched_args"), args)
        if peer.available():
            peers.append(peer)
        else:
            notes.append("%s: no build at %s; skipped" % (name, peer.root))
            log(notes[-1])
    engines += peers
    names = [e.name for e in engines]
    borgs = [e for e in engines if isinstance(e, Borg)]

    p512, p16 = token_ids(PREFILL, 2), token_ids(DECODE_PROMPT, 1)
    pb = [token_ids(PP, 100 + i) for i in range(max(batches or [1]))]

    # rows: key -> (label, higher_is_better, unit format); measurements key -> engine -> [per rep]
    rows = []
    if "batch" not in skip:
        rows += [("batch-%d" % b, "batch %d: %d job%s x (%d prompt + %d new), whole-batch s"
                  % (b, b, "s" if b > 1 else "", PP, TG), False, "%.2f") for b in batches]
    if "prefill" not in skip:
        rows.append(("prefill", "prefill, %d-token prompt, tok/s" % PREFILL, True, "%.1f"))
    if "decode" not in skip:
        rows.append(("decode", "decode, batch 1, %d new tokens, tok/s" % DECODE, True, "%.1f"))
    R = {k: {n: [] for n in names} for k, *_ in rows}
    bw = []
    td = tempfile.mkdtemp(prefix="borgpeers")
    bw_exe = build_bandwidth(td) if args.bandwidth else None

    with open(args.model, "rb") as f:  # into the page cache before anyone is timed
        while f.read(1 << 24):
            pass
    load0 = os.getloadavg()[0]
    T0 = time.time()
    for rep in range(args.reps):
        k = rep % len(engines)
        order = engines[k:] + engines[:k]
        if bw_exe:
            bw.append(bandwidth(bw_exe, args.threads))
            log("rep %d bandwidth: %.2f GB/s (%d threads)" % (rep, bw[-1], args.threads))
        groups = []
        if "batch" not in skip:
            groups.append(("batch", None))
        if "prefill" not in skip:
            groups.append(("prefill", lambda e: {"prefill": e.prefill(p512)}))
        if "decode" not in skip:
            groups.append(("decode", lambda e: {"decode": e.decode(p16, DECODE)}))
        for group, fn in groups:
            for e in order:
                t = time.time()
                if group == "batch":
                    if isinstance(e, Borg):
                        got = {}
                        for b in batches:
                            got.update(e.batch(pb[:b]))
                    else:
                        got = e.batch(batches)
                    got = {"batch-%d" % b: s for b, s in got.items()}
                else:
                    got = fn(e)
                for key, v in got.items():
                    R[key][e.name].append(v)
                log("rep %d %s %s: %s (%.0f s)" % (rep, group, e.name,
                                                  ", ".join("%s %.2f" % kv for kv in got.items()),
                                                  time.time() - t))
    elapsed = time.time() - T0
    load1 = os.getloadavg()[0]

    # ------------------------------------------------------------ the table
    peer_names = [p.name for p in peers]
    head = "| row | " + " | ".join(names) + " | " + " | ".join(
        "%s / best peer" % b.name for b in borgs) + " |"
    lines = [head, "|" + "---|" * (1 + len(names) + len(borgs))]
    for key, label, higher, f in rows:
        cells = [fmt(R[key][n], f) for n in names]
        ratios = []
        for b in borgs:
            if not peer_names:
                ratios.append("-")
                continue
            pm = {n: med(R[key][n]) for n in peer_names}
            best = max(pm, key=pm.get) if higher else min(pm, key=pm.get)
            bm = med(R[key][b.name])
            ratios.append("%.2f (vs %s)" % ((bm / pm[best]) if higher else (pm[best] / bm), best))
        lines.append("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(ratios)))
    bpt = None
    if bw and "decode" not in skip:
        bpt, how = decode_bytes_per_token(args.model)
        bwm = med(bw)
        cells = ["%.1f" % (med(R["decode"][n]) * bpt / 1e9) for n in names]
        ratios = ["%.0f%% of the machine's" % (100 * med(R["decode"][b.name]) * bpt / 1e9 / bwm) for b in borgs]
        lines.append("| decode as weight bandwidth, GB/s (%.0f MB/token [%s] x tok/s); machine streaming read, "
                     "%d threads: %s GB/s, so decode <= %.1f tok/s | %s | %s |"
                     % (bpt / 1e6, how, args.threads, fmt(bw, "%.2f"), bwm * 1e9 / bpt, " | ".join(cells),
                        " | ".join(ratios)))
    elif bw:
        lines.append("| machine streaming read, %d threads, GB/s | %s |%s" % (
            args.threads, fmt(bw, "%.2f"), " - |" * (len(names) + len(borgs) - 1)))
    table = "\n".join(lines)

    how_borg = ("borg batch seconds: stage_ready -> run_summary event (model load excluded)"
                if not any(b.load_included for b in borgs) else
                "borg batch seconds: the summary's wall_s, MODEL LOAD INCLUDED (no stage_ready event)")
    peer_lines = []
    for p in peers:
        peer_lines.append("%s (%s): `%s`; `%s`" % (
            p.name, p.version(), shlex.join(["llama-bench"] + p.bench_cmd(PREFILL, 0)[1:]),
            shlex.join(["llama-batched-bench"] + p.batched_cmd(batches)[1:])))
        peer_lines += ["%s build: %s" % (p.name, n) for n in p.build_notes()]
    footer = [how_borg,
              "%d reps in %.0f s; 1-min load average %.1f before, %.1f after; %d CPUs"
              % (args.reps, elapsed, load0, load1, os.cpu_count())] + notes
    print(table)
    for n in footer:
        print(n)

    if args.write:
        cmd = "python3 bench/compare_peers.py " + shlex.join(sys.argv[1:])
        text = ["", "## borg-infer vs llama.cpp vs ik_llama.cpp (compare_peers.py)", "",
                "%s, %s (ISA flags: %s), %d threads for every engine, model `%s`; borg-infer %s (%s); "
                "median of %d repetitions, engines alternating (order rotated each repetition), each run in "
                "brackets. Command: `%s`." % (
                    datetime.date.today().isoformat(), cpu_model(), ", ".join(isa_flags()) or "none found",
                    args.threads, os.path.relpath(args.model, ROOT), borg_version(args.borg),
                    ", ".join(names[:len(borgs)]), args.reps, cmd), "", table, ""]
        text += ["- " + x for x in peer_lines + footer]
        text.append("- batch rows: borg runs B jobs of %d random prompt ids and %d new tokens (greedy, ignore_eos) "
                    "with --slots B; llama-batched-bench decodes random tokens without sampling. Ratios > 1: "
                    "borg faster (seconds inverted)." % (PP, TG))
        with open(args.results, "a") as f:
            f.write("\n".join(text) + "\n")
        log("appended to %s" % args.results)


if __name__ == "__main__":
    main()
