"""Helpers for the Slurm tests (test_slurm_batch.py, test_slurm_continue.py),
not a test itself: a private one-node Slurm brought up by
tests/tools/slurm_up.sh and always taken down by slurm_down.sh, sbatch,
waiting for a job to leave the queue, and what Slurm recorded of it.

If Slurm cannot be brought up the test fails: there is no skip."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tests", "tools")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class SlurmCluster:
    def __init__(self):
        # munged's socket lives here: a short path (sockets have 108
        # characters), traversable by the munge user, hence /tmp.
        self.dir = tempfile.mkdtemp(prefix="borg-slurm-", dir="/tmp")
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.dir, "slurm.conf"))
        self.ok = False
        # ctest's timeout sends SIGTERM: take the cluster down all the same.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated (timeout?)"))

    def __enter__(self):
        t0 = time.time()
        try:
            p = subprocess.run([os.path.join(TOOLS, "slurm_up.sh"), self.dir], capture_output=True, text=True,
                               timeout=180)
        except subprocess.TimeoutExpired:
            self._down(remove=True)
            sys.exit(f"FAIL: tests/tools/slurm_up.sh {self.dir} did not finish in 180 s")
        if p.returncode != 0:
            self._down(remove=True)
            sys.exit(f"FAIL: Slurm did not come up (tests/tools/slurm_up.sh exit {p.returncode}):\n"
                     f"{p.stdout}{p.stderr}")
        log(f"slurm up in {time.time() - t0:.1f} s: {self.env['SLURM_CONF']}")
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None or not self.ok:
            self.dump()
        self._down()
        if self.ok and kind is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log(f"slurm state kept in {self.dir}")
        return False

    def _down(self, remove=False):
        subprocess.run([os.path.join(TOOLS, "slurm_down.sh"), self.dir], capture_output=True, text=True,
                       timeout=120)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump(self):
        for name in ("slurmctld.log", "slurmd.log", "jobcomp.txt"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    lines = f.readlines()[-25:]
                print(f"--- {path} (last lines)\n{''.join(lines)}", file=sys.stderr)

    def cmd(self, *args, timeout=60, check=True):
        p = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def sbatch(self, script, *args, options=(), env=None, cwd=None):
        e = dict(self.env, **(env or {}))
        p = subprocess.run(["sbatch", "--parsable", *options, script, *args], capture_output=True, text=True,
                           env=e, cwd=cwd, timeout=60)
        if p.returncode != 0:
            sys.exit(f"FAIL: sbatch {' '.join(options)} {script} exited {p.returncode}: {p.stderr.strip()}")
        job = p.stdout.strip().split(";")[0]
        log(f"submitted job {job}: sbatch {' '.join(options)} {os.path.relpath(script, ROOT)} {' '.join(args)}")
        return job

    def state(self, job):
        """The job's state in the queue, or None once it has left it."""
        out = self.cmd("squeue", "-h", "-j", job, "-o", "%T", check=False)
        return out.strip() or None

    def show(self, job):
        """scontrol show job as a dict (empty once Slurm has forgotten the job)."""
        out = self.cmd("scontrol", "show", "job", "-o", job, check=False)
        fields = {}
        for word in out.split():
            if "=" in word:
                k, v = word.split("=", 1)
                fields.setdefault(k, v)
        return fields

    def wait_gone(self, job, limit):
        """Waits until the job has left the queue; returns the states seen
        (in order, repeats dropped) and the last `scontrol show job`."""
        seen, last, end = [], {}, time.time() + limit
        while time.time() < end:
            st = self.state(job)
            info = self.show(job)
            if info:
                last = info
            if st is None:
                return seen, last
            if not seen or seen[-1] != st:
                seen.append(st)
                log(f"job {job}: {st} (restarts {info.get('Restarts', '?')})")
            time.sleep(1)
        self.cmd("scancel", job, check=False)
        sys.exit(f"FAIL: job {job} still in the queue after {limit} s (states {seen})")

    def records(self, job):
        """Slurm's job completion records (jobcomp/filetxt) of the job, one
        per segment: a requeued segment is recorded as it ends."""
        path = os.path.join(self.dir, "jobcomp.txt")
        recs = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
                    if fields.get("JobId") == job:
                        recs.append(fields)
        return recs


def job_ids(path):
    """The id of every job of a JSONL jobs file, in order."""
    import json
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                ids.append(j.get("custom_id", j.get("id")))
    return ids


def result_ok(r):
    if "custom_id" in r:
        return r.get("error") is None and r.get("response", {}).get("status_code") == 200
    return r.get("status") == "ok"
