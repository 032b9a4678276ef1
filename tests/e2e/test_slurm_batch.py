#!/usr/bin/env python3
"""e2e_slurm_batch: the sbatch scripts on a real (private, one-node) Slurm.
slurm/borg-infer.sbatch and slurm/borg-infer-multinode.sbatch (on one
node) each run a jobs file with the default model; once the job has left
the queue: every job has exactly one result line, all ok, the Slurm log
exists and says where the results are, the segment record says exit 0 and
Slurm recorded the job COMPLETED.

    test_slurm_batch.py --build BUILD --model M --jobs inputs/example.jsonl
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from borgrun import Checker, read_results, result_id  # noqa: E402
from test_slurm_cluster import ROOT, SlurmCluster, job_ids, log, result_ok  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True, help="the build directory (borg-infer, borg-mpirun)")
ap.add_argument("--model", required=True)
ap.add_argument("--jobs", required=True)
args = ap.parse_args()

c = Checker("slurm-batch")
t0 = time.time()
ncpu = len(os.sched_getaffinity(0))  # the CPUs this process may use (a container may have fewer than the host)
want = job_ids(args.jobs)
work = tempfile.mkdtemp(prefix="slurm-batch-", dir=os.environ.get("TMPDIR"))
env = {"BORG_BUILD": os.path.abspath(args.build), "BORG_MODEL": os.path.abspath(args.model)}

# Layouts that fit this machine: one node, every CPU used.
stages = min(2, ncpu)
runs = [
    ("one-node", os.path.join(ROOT, "slurm", "borg-infer.sbatch"),
     [f"--ntasks={stages}", f"--cpus-per-task={ncpu // stages}", "--time=10"]),
    ("multinode", os.path.join(ROOT, "slurm", "borg-infer-multinode.sbatch"),
     ["--nodes=1", "--ntasks-per-node=1", f"--cpus-per-task={ncpu}", "--time=10"]),
]

with SlurmCluster() as cluster:
    submitted = []
    for name, script, options in runs:
        out = os.path.join(work, f"{name}.jsonl")
        job = cluster.sbatch(script, args.jobs, out, options=options, env=env, cwd=work)
        submitted.append((name, job, out))
    for name, job, out in submitted:
        seen, info = cluster.wait_gone(job, limit=300)
        log(f"{name}: job {job} left the queue ({' -> '.join(seen)}); {time.time() - t0:.0f} s so far")
        logfile = os.path.join(work, f"borg-infer-{job}.log")
        c.check(os.path.exists(logfile), f"{name}: the Slurm log {logfile} exists")
        text = open(logfile, errors="replace").read() if os.path.exists(logfile) else ""
        c.check(f"results: {out}" in text, f"{name}: the log says where the results are")
        c.check("done: every job" in text, f"{name}: the log says the batch is done:\n{text[-3000:]}")
        results = read_results(out) if os.path.exists(out) else []
        ids = [result_id(r) for r in results]
        c.check(sorted(ids) == sorted(want), f"{name}: every job answered exactly once (got {sorted(ids)})")
        c.check(len(ids) == len(set(ids)), f"{name}: no job answered twice")
        c.check(all(result_ok(r) for r in results), f"{name}: every status is ok")
        segs = open(out + ".segments").read().split("\n")[:-1] if os.path.exists(out + ".segments") else []
        c.check(len(segs) == 1 and " exit=0 " in segs[0], f"{name}: one segment, exit 0 ({segs})")
        recs = cluster.records(job)
        c.check([r.get("JobState") for r in recs] == ["COMPLETED"] and recs[0].get("ExitCode") == "0:0",
                f"{name}: Slurm recorded the job COMPLETED, exit 0 ({[(r.get('JobState'), r.get('ExitCode')) for r in recs]})")
        if "multinode" == name:
            c.check("rankfile: rank 0=" in text, f"{name}: the ranks were placed by a rankfile")
    cluster.ok = c.failed == 0

log(f"{time.time() - t0:.0f} s in all")
c.done()
