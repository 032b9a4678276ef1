"""The example batch on the default model: one result per job, all ok, and
answers that make sense (the capital of France is Paris). Under mpiexec,
also the default thread count: unbound stage ranks on one node divide its
CPUs between them instead of each taking them all; in one process, the same
answers (sampled ones included) on 1, 2 or 3 threads."""
import argparse
import json
import os
import tempfile

from borgrun import Checker, count_jobs, result_id, run, text_of, token_ids

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--jobs", required=True)
ap.add_argument("--np", type=int, default=1)
ap.add_argument("--mpiexec")
ap.add_argument("--threads", default="2")
args = ap.parse_args()

c = Checker("example")
_, stderr, results, summary = run(args.borg, args.model, args.jobs, np=args.np, mpiexec=args.mpiexec,
                                  extra=["--threads", args.threads])
by_id = {result_id(r): r for r in results}
c.check(len(results) == count_jobs(args.jobs), f"{len(results)} results for {count_jobs(args.jobs)} jobs")
c.check(len(by_id) == len(results), "every id appears once")
for r in results:
    status = r.get("status", "ok" if r.get("response", {}).get("status_code") == 200 else "error")
    c.check(status == "ok", f"{result_id(r)} has status {status}: {r}")
    c.check(len(token_ids(r)) > 0, f"{result_id(r)} generated tokens")
c.check("Paris" in text_of(by_id["capital-france"]), f"capital-france: {text_of(by_id['capital-france'])!r}")
c.check("Paris" in text_of(by_id["chat-capital"]), f"chat-capital: {text_of(by_id['chat-capital'])!r}")
c.check("\n" not in text_of(by_id["list-colors"]), "the stop string ends list-colors before a newline")
c.check(summary is not None and summary["jobs"]["ok"] == len(results), "summary counts the jobs")
for r in results:
    print(f"{result_id(r)}: {text_of(r)!r}")

if args.np > 1:
    _, _, again, summary = run(args.borg, args.model, args.jobs, np=args.np, mpiexec=args.mpiexec)
    stages = [r for r in (summary or {}).get("ranks", []) if r["role"] == "stage"]
    want = max(1, len(os.sched_getaffinity(0)) // (args.np - 1))
    c.check(len(stages) == args.np - 1 and all(r["threads"] == want for r in stages),
            f"without --threads, {args.np - 1} unbound stages share the node's CPUs: "
            f"{want} thread(s) each (got {[r['threads'] for r in stages]})")
    c.check({result_id(r): token_ids(r) for r in again} == {result_id(r): token_ids(r) for r in results},
            "the thread count does not change the answers")
else:
    # The last stage samples a batch's rows on all its threads: the example
    # batch and a batch of sampled jobs answer the same on 1 or 3 of them.
    fd, sampled = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "w") as f:
        for i, (t, extra) in enumerate([(0.8, {"top_p": 0.95}), (1.0, {}), (0.7, {"top_k": 40}),
                                        (1.2, {"min_p": 0.05}), (0.9, {"top_p": 0.9}), (1.0, {"top_p": 0.99})]):
            f.write(json.dumps({"id": f"s{i}", "prompt": "Once upon a time", "max_tokens": 24,
                                "temperature": t, "seed": i, **extra}) + "\n")
    for jobs in (args.jobs, sampled):
        answers = {}
        for threads in ("1", "2", "3"):
            _, _, got, _ = run(args.borg, args.model, jobs, extra=["--threads", threads])
            answers[threads] = {result_id(r): token_ids(r) for r in got}
        c.check(answers["1"] == answers["2"] == answers["3"] and len(answers["1"]) == count_jobs(jobs),
                f"{os.path.basename(jobs)}: the same answers on 1, 2 and 3 threads")
    os.unlink(sampled)
c.done()
