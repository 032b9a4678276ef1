#!/usr/bin/env python3
"""Parses the metrics file progress.c writes with the real Prometheus parser.

check_metrics.py --writer PROGRAM: runs `PROGRAM --write-metrics FILE` (test_progress), which writes the metrics of
a fixed sample, then parses FILE with prometheus_client.parser.text_string_to_metric_families and checks the
families, their types, labels (escapes undone) and values, and the histogram's buckets.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

from prometheus_client.parser import text_string_to_metric_families


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "borg.prom")
        subprocess.run([args.writer, "--write-metrics", path], check=True)
        with open(path) as f:
            text = f.read()
        left = sorted(n for n in os.listdir(d) if n != "borg.prom")
    bad = []
    if left:
        bad.append("left beside the metrics file: %s" % left)

    families = {}
    samples = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def want(name, value, **labels):
        key = (name, tuple(sorted(labels.items())))
        got = samples.get(key)
        if got is None:
            bad.append("no sample %s%s" % (name, labels or ""))
        elif not math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9):
            bad.append("%s%s = %r, want %r" % (name, labels or "", got, value))

    # prometheus_client names a counter's family without its _total suffix.
    types = {"borg_jobs": "counter", "borg_jobs_in_file": "gauge", "borg_prompt_tokens": "counter",
             "borg_generated_tokens": "counter", "borg_queue_depth": "gauge", "borg_kv_slots_used": "gauge",
             "borg_kv_slots": "gauge", "borg_recoveries": "counter", "borg_damaged_frames": "counter",
             "borg_stage_busy_seconds": "counter", "borg_stage_peak_rss_mib": "gauge",
             "borg_job_latency_seconds": "histogram", "borg_elapsed_seconds": "gauge", "borg_draining": "gauge"}
    for name, typ in types.items():
        fam = families.get(name)
        if fam is None:
            bad.append("no family %s" % name)
        elif fam.type != typ:
            bad.append("%s is a %s, want %s" % (name, fam.type, typ))
        elif not fam.documentation:
            bad.append("%s has no HELP" % name)
    for name in families:
        if not name.startswith("borg_"):
            bad.append("family %s lacks the borg_ prefix" % name)
        if families[name].type == "unknown":
            bad.append("family %s has no TYPE" % name)

    for status, n in (("ok", 7), ("error", 2), ("timeout", 1), ("cancelled", 0), ("resumed", 3)):
        want("borg_jobs_total", n, status=status)
    want("borg_jobs_in_file", 20)
    want("borg_prompt_tokens_total", 456)
    want("borg_generated_tokens_total", 1234)
    want("borg_queue_depth", 5)
    want("borg_kv_slots_used", 6)
    want("borg_kv_slots", 64)
    want("borg_recoveries_total", 1)
    want("borg_damaged_frames_total", 2)
    want("borg_stage_busy_seconds_total", 12.5, rank="1", host="node-a")
    want("borg_stage_busy_seconds_total", 11.25, rank="2", host='we"ird\\host')
    want("borg_stage_peak_rss_mib", 512, rank="1", host="node-a")
    want("borg_stage_peak_rss_mib", 256.5, rank="2", host='we"ird\\host')
    want("borg_elapsed_seconds", 42.5)
    want("borg_draining", 0)

    # Latencies 0.05, 0.3, 1.5, 1.5, 7000: cumulative buckets, +Inf equal to the count.
    buckets = sorted((float(labels[0][1]), v) for (n, labels), v in samples.items()
                     if n == "borg_job_latency_seconds_bucket")
    if len(buckets) < 10 or buckets[-1][0] != math.inf:
        bad.append("histogram buckets: %s" % buckets)
    prev = -1
    for le, v in buckets:
        expect = sum(1 for x in (0.05, 0.3, 1.5, 1.5, 7000) if x <= le)
        if v != expect:
            bad.append("bucket le=%g holds %r, want %d" % (le, v, expect))
        if v < prev:
            bad.append("bucket le=%g is below the one before" % le)
        prev = v
    want("borg_job_latency_seconds_count", 5)
    want("borg_job_latency_seconds_sum", 7003.35)

    if bad:
        print("\n".join(bad))
        print("--- the file:\n" + text)
        return 1
    print("%d families, %d samples parsed" % (len(families), len(samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
