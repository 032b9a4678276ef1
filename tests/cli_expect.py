#!/usr/bin/env python3
"""Runs borg-infer and checks its exit code and output.

cli_expect.py [checks] -- PROGRAM ARGS...
    --exit N            required exit code (default 0)
    --stdout-has S      stdout contains S (repeatable; --stderr-has likewise)
    --stdout-re R       stdout matches regex R somewhere (repeatable)
    --stdout-not-re R   stdout does not match regex R (repeatable)

cli_expect.py --bad-gguf DIR -- PROGRAM
    for each "<file> <expected text>" line of DIR/bad_files.txt, runs
    PROGRAM info --model DIR/<file> and requires exit code 2, the expected
    text on stderr and nothing on stdout.

Every run must also end by exiting, not by a signal, with no sanitizer
report, and a failing run must say why on stderr.
"""
import os
import re
import subprocess
import sys

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def problems(cmd, code, out, err, want_exit, checks):
    """The ways one run falls short, as lines (empty if none)."""
    bad = []
    if code < 0:
        bad.append("killed by signal %d" % -code)
    elif code != want_exit:
        bad.append("exit code %d, expected %d" % (code, want_exit))
    for mark in SANITIZER_MARKS:
        if mark in err:
            bad.append("sanitizer report on stderr")
            break
    if code != 0 and not err.strip():
        bad.append("failed with nothing on stderr")
    for kind, arg in checks:
        if kind == "stdout-has" and arg not in out:
            bad.append("stdout lacks %r" % arg)
        elif kind == "stderr-has" and arg not in err:
            bad.append("stderr lacks %r" % arg)
        elif kind == "stdout-re" and not re.search(arg, out, re.M):
            bad.append("stdout does not match /%s/" % arg)
        elif kind == "stdout-not-re" and re.search(arg, out, re.M):
            bad.append("stdout matches /%s/" % arg)
        elif kind == "stdout-empty" and out:
            bad.append("stdout is not empty")
    if bad:
        bad = ["$ " + " ".join(cmd)] + ["  " + b for b in bad]
        bad += ["  stdout: " + out[-2000:], "  stderr: " + err[-2000:]]
    return bad


def bad_gguf(directory, program):
    failures, count = [], 0
    with open(os.path.join(directory, "bad_files.txt")) as fh:
        for line in fh:
            if not line.strip():
                continue
            name, expect = line.rstrip("\n").split(" ", 1)
            cmd = program + ["info", "--model", os.path.join(directory, name)]
            code, out, err = run(cmd)
            failures += problems(cmd, code, out, err, 2,
                                 [("stderr-has", "borg-infer: "), ("stderr-has", expect), ("stdout-empty", None)])
            count += 1
    if count == 0:
        failures.append("no bad files listed in " + directory)
    return count, failures


def main(argv):
    if "--" not in argv:
        sys.exit("usage: cli_expect.py [checks] -- PROGRAM ARGS...")
    split = argv.index("--")
    opts, program = argv[:split], argv[split + 1:]
    if opts[:1] == ["--bad-gguf"]:
        count, failures = bad_gguf(opts[1], program)
    else:
        if len(opts) % 2:
            sys.exit("cli_expect.py: each check takes one value")
        want_exit, checks = 0, []
        for flag, arg in zip(opts[::2], opts[1::2]):
            if flag == "--exit":
                want_exit = int(arg)
            elif flag in ("--stdout-has", "--stderr-has", "--stdout-re", "--stdout-not-re"):
                checks.append((flag[2:], arg))
            else:
                sys.exit("cli_expect.py: unknown check " + flag)
        code, out, err = run(program)
        count, failures = 1, problems(program, code, out, err, want_exit, checks)
    if failures:
        print("\n".join(failures))
    print("%d runs, %s" % (count, "all as expected" if not failures else "FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
