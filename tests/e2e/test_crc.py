"""A damaged frame is never used: one bit flipped in a frame between two
stages, from the last stage to the coordinator, or from the coordinator to
the first stage is detected by its CRC, the batch is recomputed, the
answers are identical to an undamaged run, and the summary counts 1."""
import argparse
import os

from borgrun import Checker, result_id, run, token_ids

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--mpiexec", required=True)
ap.add_argument("--jobs", required=True)
args = ap.parse_args()

c = Checker("crc")
extra = ["--threads", "1"]
_, _, base, _ = run(args.borg, args.model, args.jobs, np=3, mpiexec=args.mpiexec, extra=extra)
want = {result_id(r): token_ids(r) for r in base}
# rank:frame — frames are counted per sending rank, the first being its ready report.
for fault, where in (("1:6", "stage 0 -> stage 1"), ("2:5", "last stage -> coordinator"),
                     ("0:4", "coordinator -> stage 0")):
    os.environ["BORG_TEST_CORRUPT_FRAME"] = fault
    _, err, results, summary = run(args.borg, args.model, args.jobs, np=3, mpiexec=args.mpiexec,
                                   extra=extra)
    got = {result_id(r): token_ids(r) for r in results}
    c.check(got == want, f"{where}: answers identical to the undamaged run")
    c.check(summary and summary.get("damaged_frames") == 1, f"{where}: the summary counts 1 damaged frame: "
            f"{summary and summary.get('damaged_frames')}")
    c.check("CRC mismatch" in err, f"{where}: the damage is logged")
del os.environ["BORG_TEST_CORRUPT_FRAME"]
c.done()
