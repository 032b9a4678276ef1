#!/usr/bin/env python3
"""--trace FILE: valid Chrome trace-event JSON (a list of events, as
Perfetto and chrome://tracing read it) with a named track per rank, a span
per micro-batch on every stage rank, rank 0's round trips, and the same
batches on every stage of the pipeline; the single-process run traces its
in-process stage too.

    test_trace.py --borg B --model M --mpiexec MPIEXEC --jobs J
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--jobs", required=True)
args = ap.parse_args()

c = borgrun.Checker("trace")
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
for name, np in [("3 ranks", 3), ("1 process", 1)]:
    path = os.path.join(tmp, f"trace-{np}.json")
    borgrun.run(args.borg, args.model, args.jobs, np=np, mpiexec=args.mpiexec,
                extra=["--threads", "1", "--quiet", "--trace", path])
    with open(path) as f:
        events = json.load(f)
    c.check(isinstance(events, list) and all({"name", "ph", "pid", "tid"} <= set(e) for e in events),
            f"{name}: a JSON list of trace events")
    spans = [e for e in events if e["ph"] == "X"]
    c.check(all(isinstance(e["ts"], int) and e["dur"] >= 0 for e in spans), f"{name}: spans have ts and dur")
    named = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    stage_tracks = [1, 2] if np == 3 else [1]
    for t in [0, *stage_tracks]:
        c.check(t in named, f"{name}: track {t} is named ({named.get(t)})")
    by_track = {t: sorted(e["args"]["batch"] for e in spans if e["tid"] == t) for t in stage_tracks}
    c.check(all(by_track[t] for t in stage_tracks), f"{name}: spans from every stage rank")
    c.check(all(by_track[t] == by_track[stage_tracks[0]] for t in stage_tracks),
            f"{name}: every stage computed the same batches")
    trips = [e for e in spans if e["tid"] >= 1000]
    c.check(sorted(e["args"]["batch"] for e in trips) == by_track[stage_tracks[0]],
            f"{name}: a rank-0 round trip per batch")
    c.check(sum(e["args"]["prefill_tokens"] + e["args"]["decode_tokens"] for e in trips) > 0,
            f"{name}: spans count their prefill and decode tokens")
    print(f"{name}: {len(events)} events, {len(spans)} spans, tracks {sorted(named)}")
c.done()
