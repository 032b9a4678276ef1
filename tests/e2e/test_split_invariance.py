"""Token-for-token the same answers however the layers are split: every
job of the given files, run in one process and then through pipelines of
1 to 4 stages, an uneven --layers split and 2 replicas of 2 stages; in the
activation mode --activations names and with the KV cache --kv-dtype names
(the defaults when not given)."""
import argparse

from borgrun import Checker, result_id, run, token_ids

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--uneven", required=True, help="a --layers value for 3 stages, e.g. 3,20,7")
ap.add_argument("--activations", help="passed to borg-infer run: q8 or f32")
ap.add_argument("--kv-dtype", help="passed to borg-infer run: f16 or f32")
ap.add_argument("jobs", nargs="+")
args = ap.parse_args()

configs = [
    ("1 process", 1, []),
    ("K=2", 2, []),
    ("K=3", 3, []),
    ("K=4", 4, []),
    ("K=5", 5, []),
    (f"K=4 --layers {args.uneven}", 4, ["--layers", args.uneven]),
    ("K=5 2 replicas x 2 stages", 5, ["--replicas", "2"]),
]
mode = ["--activations", args.activations] if args.activations else []
mode += ["--kv-dtype", args.kv_dtype] if args.kv_dtype else []
c = Checker("split-invariance")
for jobs in args.jobs:
    baseline = None
    for name, np, extra in configs:
        _, _, results, _ = run(args.borg, args.model, jobs, np=np, mpiexec=args.mpiexec,
                               extra=["--threads", "1", "--slots", "8", *mode, *extra])
        ids = {result_id(r): token_ids(r) for r in results}
        if baseline is None:
            baseline = ids
            c.check(len(ids) > 0, f"{jobs}: the baseline produced results")
            continue
        c.check(set(ids) == set(baseline), f"{jobs} {name}: the same jobs finished")
        for job_id, want in baseline.items():
            got = ids.get(job_id)
            c.check(got == want, f"{jobs} {name}: job {job_id} tokens differ: {got} vs {want}")
        print(f"{jobs}: {name}: {len(ids)} jobs identical to the single process" if c.failed == 0 else "")
c.done()
