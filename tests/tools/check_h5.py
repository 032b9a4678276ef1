#!/usr/bin/env python3
"""Checks a borg-infer HDF5 results file the way a user reads it, with h5py.

usage: check_h5.py FILE
       check_h5.py FILE EXPECT.json [FILE EXPECT.json ...]

Always: the layout (datasets, dtypes, shapes, chunking, compression), equal
row counts, embeddings that point at the job with their id, the root
attributes. With EXPECT (written by tests/test_h5out.c): the values too:
{"rows": N, "jobs": {column: [per row]}, "embeddings": null | {"dim", "id",
"job_row", "vector"}, "attrs": {name: value}, "what": a label}; a null
logprob means NaN.
If h5dump (hdf5-tools) is installed, `h5dump -H FILE` must read it too.
"""
import json
import math
import shutil
import subprocess
import sys

import h5py
import numpy as np

FORMAT = "borg-infer results 1"
STRINGS = ("id", "status", "finish_reason")
VLEN = {"prompt_token_ids": np.int32, "token_ids": np.int32, "token_logprobs": np.float32}
FLOATS = ("queue_ms", "first_token_ms", "total_ms")

problems = []


def fail(msg):
    problems.append(msg)


def check_chunked(ds, numeric):
    if ds.chunks is None or ds.maxshape[0] is not None:
        fail("%s: not chunked and extendable along axis 0 (chunks %s, maxshape %s)" % (ds.name, ds.chunks, ds.maxshape))
    # The numeric columns are shuffled and deflated; the variable-length ones
    # may be (a filter there only sees heap references: h5out.c leaves them).
    if numeric and (ds.compression != "gzip" or ds.compression_opts != 4 or not ds.shuffle):
        fail("%s: compression %s %s shuffle %s, want gzip 4 with shuffle" %
             (ds.name, ds.compression, ds.compression_opts, ds.shuffle))
    if not numeric and ds.compression not in (None, "gzip"):
        fail("%s: compression %s" % (ds.name, ds.compression))


def check_string(ds):
    info = h5py.check_string_dtype(ds.dtype)
    if info is None or info.length is not None or info.encoding != "utf-8":
        fail("%s: dtype %s, want variable-length UTF-8 strings" % (ds.name, ds.dtype))
        return None
    return list(ds.asstr()[()])


def same_floats(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if w is None:
            if not math.isnan(g):
                return False
        elif np.float32(w) != np.float32(g):
            return False
    return True


def check_layout(f):
    """Returns the columns read, by name."""
    if f.attrs.get("format") != FORMAT:
        fail("format attribute %r, want %r" % (f.attrs.get("format"), FORMAT))
    for name in ("model_name", "model_path", "model_fingerprint", "params", "borg_infer_version"):
        if not isinstance(f.attrs.get(name), str):
            fail("attribute %s: %r is not a string" % (name, f.attrs.get(name)))
    fp = f.attrs.get("model_fingerprint", "")
    if not (isinstance(fp, str) and len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)):
        fail("model_fingerprint %r is not 16 hex digits" % (fp,))
    try:
        if not isinstance(json.loads(f.attrs.get("params", "")), dict):
            fail("params is not a JSON object")
    except ValueError as e:
        fail("params is not JSON: %s" % e)
    st = f.attrs.get("start_time")
    if not isinstance(st, (float, np.floating)) or np.asarray(st).dtype != np.float64:
        fail("start_time %r is not a float64" % (st,))

    cols = {}
    if "jobs" not in f:
        fail("no /jobs group")
        return cols, None
    jobs = f["jobs"]
    for name in STRINGS + tuple(VLEN) + FLOATS:
        if name not in jobs:
            fail("/jobs/%s is missing" % name)
            continue
        ds = jobs[name]
        if ds.ndim != 1:
            fail("%s: %d dimensions, want 1" % (ds.name, ds.ndim))
            continue
        check_chunked(ds, name in FLOATS)
        if name in STRINGS:
            cols[name] = check_string(ds)
        elif name in VLEN:
            base = h5py.check_vlen_dtype(ds.dtype)
            if base is None or np.dtype(base) != np.dtype(VLEN[name]):
                fail("%s: dtype %s, want variable-length %s" % (ds.name, ds.dtype, np.dtype(VLEN[name])))
                continue
            values = list(ds[()])
            for v in values:
                if not isinstance(v, np.ndarray) or v.dtype != VLEN[name]:
                    fail("%s: a row reads as %r, want a numpy %s array" % (ds.name, v, np.dtype(VLEN[name])))
                    break
            cols[name] = values
        else:
            if ds.dtype != np.float64:
                fail("%s: dtype %s, want float64" % (ds.name, ds.dtype))
            cols[name] = list(ds[()])
    lengths = {len(v) for v in cols.values() if v is not None}
    if len(lengths) > 1:
        fail("the /jobs columns have different lengths: %s" % {k: len(v) for k, v in cols.items() if v is not None})

    emb = None
    if "embeddings" in f:
        g = f["embeddings"]
        emb = {}
        for name in ("id", "job_row", "vector"):
            if name not in g:
                fail("/embeddings/%s is missing" % name)
        if "id" in g:
            check_chunked(g["id"], False)
            emb["id"] = check_string(g["id"])
        if "job_row" in g:
            ds = g["job_row"]
            check_chunked(ds, True)
            if ds.dtype != np.int64 or ds.ndim != 1:
                fail("%s: %s %s, want int64 rows" % (ds.name, ds.dtype, ds.shape))
            emb["job_row"] = [int(x) for x in ds[()]]
        if "vector" in g:
            ds = g["vector"]
            check_chunked(ds, True)
            if ds.dtype != np.float32 or ds.ndim != 2 or ds.maxshape[1] != ds.shape[1]:
                fail("%s: %s %s (max %s), want float32 (rows, dim)" % (ds.name, ds.dtype, ds.shape, ds.maxshape))
            emb["vector"] = ds[()]
            emb["dim"] = ds.shape[1] if ds.ndim == 2 else None
        n = {len(v) for k, v in emb.items() if k != "dim" and v is not None}
        if len(n) > 1:
            fail("the /embeddings datasets have different lengths")
        ids = cols.get("id") or []
        rows = emb.get("job_row") or []
        if rows != sorted(rows) or len(set(rows)) != len(rows):
            fail("/embeddings/job_row %s is not increasing" % rows)
        for eid, r in zip(emb.get("id") or [], rows):
            if not 0 <= r < len(ids) or ids[r] != eid:
                fail("embedding of %r points at job row %d (%r)" % (eid, r, ids[r] if 0 <= r < len(ids) else None))
    return cols, emb


def check_values(f, cols, emb, want):
    n = want["rows"]
    for name, values in cols.items():
        if values is not None and len(values) != n:
            fail("/jobs/%s has %d rows, want %d" % (name, len(values), n))
    for name, expected in want["jobs"].items():
        got = cols.get(name)
        if got is None or len(got) != len(expected):
            continue
        for i, (g, w) in enumerate(zip(got, expected)):
            if name in STRINGS:
                ok = g == w
            elif name == "token_logprobs":
                ok = same_floats(list(g), w)
            elif name in VLEN:
                ok = list(g) == w
            else:
                ok = float(g) == w
            if not ok:
                fail("/jobs/%s row %d: %r, want %r" % (name, i, g, w))
    wemb = want.get("embeddings")
    if wemb is None:
        if emb is not None:
            fail("/embeddings exists, none expected")
    elif emb is None:
        fail("/embeddings is missing")
    else:
        if emb.get("dim") != wemb["dim"]:
            fail("embeddings are %s wide, want %d" % (emb.get("dim"), wemb["dim"]))
        if emb.get("id") != wemb["id"]:
            fail("/embeddings/id %r, want %r" % (emb.get("id"), wemb["id"]))
        if emb.get("job_row") != wemb["job_row"]:
            fail("/embeddings/job_row %r, want %r" % (emb.get("job_row"), wemb["job_row"]))
        vec = emb.get("vector")
        if vec is not None and (vec.shape[0] != len(wemb["vector"]) or
                                not all(same_floats(list(g), w) for g, w in zip(vec, wemb["vector"]))):
            fail("/embeddings/vector %r, want %r" % (vec.tolist(), wemb["vector"]))
    for name, w in want.get("attrs", {}).items():
        g = f.attrs.get(name)
        if g != w:
            fail("attribute %s: %r, want %r" % (name, g, w))


def check_file(path, want):
    """Problems found in path, as lines."""
    del problems[:]
    with h5py.File(path, "r") as f:
        cols, emb = check_layout(f)
        if want is not None:
            check_values(f, cols, emb, want)
    if shutil.which("h5dump"):
        r = subprocess.run(["h5dump", "-H", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            fail("h5dump -H failed: %s" % r.stderr.strip()[-400:])
    label = "%s (%s)" % (path, want["what"]) if want and "what" in want else path
    if not problems:
        rows = len(cols.get("id") or [])
        print("%s: ok (%d rows%s)" % (label, rows, ", %d embeddings" % len(emb.get("id") or []) if emb else ""))
    return ["%s: %s" % (label, p) for p in problems]


def main():
    args = sys.argv[1:]
    if not args or (len(args) > 1 and len(args) % 2):
        sys.exit(__doc__)
    pairs = [(args[0], None)] if len(args) == 1 else list(zip(args[::2], args[1::2]))
    bad = []
    for path, expect in pairs:
        want = None
        if expect:
            with open(expect, encoding="utf-8") as fh:
                want = json.load(fh)
        bad += check_file(path, want)
    for line in bad:
        print(line, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
