"""Helpers for the end-to-end tests: run borg-infer (alone or under
mpiexec) on a jobs file and read back what it wrote."""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time


def mpi_env():
    env = dict(os.environ)
    # CI containers run as root; Open MPI refuses that unless told it is fine.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # In the sanitizer build, Open MPI's own start-up allocations (kept
    # until exit) read as leaks in every rank; AddressSanitizer's other
    # checks stay on. Single-process runs, which never start MPI, keep leak
    # detection.
    if "LSAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


def run(borg, model, jobs, out=None, np=1, mpiexec=None, extra=(), timeout=600, check=True):
    """Runs a batch; returns (returncode, stderr, results, summary)."""
    if out is None:
        fd, out = tempfile.mkstemp(suffix=".jsonl")
        os.close(fd)
    overwrite = [] if "--resume" in extra else ["--force"]
    cmd = [borg, "run", "--model", model, "--jobs", jobs, "--out", out, *overwrite, *extra]
    if np > 1:
        cmd = [mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(np), *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=mpi_env() if np > 1 else os.environ)
    if check and p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
    results = read_results(out) if os.path.exists(out) else []
    summary = None
    if os.path.exists(out + ".summary.json"):
        with open(out + ".summary.json") as f:
            summary = json.load(f)
    return p.returncode, p.stderr, results, summary


def rank_pids(borg, jobs):
    """{MPI rank: pid} of the running `borg run` processes reading jobs."""
    pids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if borg.encode() not in cmd or b"\0run\0" not in cmd or jobs.encode() not in cmd:
            continue
        for e in env:
            if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                pids[int(e.split(b"=")[1])] = int(pid)
    return pids


def end_at_exit(proc, borg, jobs):
    """Ends, when the test exits however it exits (a failed check, an
    exception), the launcher proc's process group and every rank still
    reading jobs: a rank left behind spins on and skews the tests after."""
    def end():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
        for pid in rank_pids(borg, jobs).values():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    atexit.register(end)


def write_counting_jobs(path, n):
    """n jobs that each generate 30 tokens (ignore_eos): long enough to be
    killed or stopped mid-batch."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"job{i}", "prompt": f"Count from {i} to {i + 30}:", "max_tokens": 30,
                                "ignore_eos": True}) + "\n")


def whole_lines(path):
    """How many complete lines path holds: a line being written (a reader
    can see part of a write in progress) is not one yet."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def wait_for_lines(path, n, proc, limit=120):
    """True once path holds n whole lines; False if proc ends or limit s pass first."""
    end = time.time() + limit
    while time.time() < end and proc.poll() is None:
        if whole_lines(path) >= n:
            return True
        time.sleep(0.05)
    return False


def read_results(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def count_jobs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return len(json.loads(text))
    return sum(1 for line in text.splitlines() if line.strip())


def result_id(r):
    return r.get("custom_id", r.get("id"))


def token_ids(r):
    if "custom_id" in r:
        return r["response"]["body"]["choices"][0]["token_ids"]
    return r["token_ids"]


def text_of(r):
    if "custom_id" in r:
        choice = r["response"]["body"]["choices"][0]
        return choice["message"]["content"] if "message" in choice else choice["text"]
    return r["text"]


class Checker:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"{self.name}: FAILED: {what}", file=sys.stderr)

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def events(stderr, name=None):
    """The structured events of a run started with --log-json (one JSON
    object per stderr line; the launcher's own lines are skipped), all of
    them or those named `name`."""
    found = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and "event" in e and (name is None or e["event"] == name):
            found.append(e)
    return found
