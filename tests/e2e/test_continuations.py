#!/usr/bin/env python3
"""Greedy continuations of the inputs/ jobs on real models against llama.cpp.

tests/goldens/continuations.json (tests/tools/make_model_goldens.py) holds,
per model and job, llama.cpp's prompt ids and greedy continuation with the
top-2 logit margin of each step, made with an F32 KV cache: borg-infer runs
with --kv-dtype f32 to match. Both engines multiply quantized weights by
8-bit activations, but not by the same code, so their logits differ by a
little and a continuation may part where llama.cpp's own top two were
close. This test runs each job as written (prompt text, or messages through
the chat template; compared with llama.cpp's rendering of the model's own
Jinja template where the golden has one) and requires: the same prompt length (the chat template
and the tokenizer agree), and greedy ids equal up to a step whose llama.cpp
margin is below --tie; it prints how far each agrees and why it parts.

    test_continuations.py --borg B --model-name smollm2 --model M.gguf [--tie 0.5]
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import borgrun  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--borg", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-name", required=True, help="its key in continuations.json")
    ap.add_argument("--goldens", default=os.path.join(ROOT, "tests", "goldens", "continuations.json"))
    ap.add_argument("--tie", type=float, default=0.5)
    ap.add_argument("--expect", action="append", default=[], metavar="PROMPT=>TEXT",
                    help="also: greedy text after PROMPT starts with TEXT")
    args = ap.parse_args()
    with open(args.goldens) as f:
        golden = json.load(f)["models"][args.model_name]["jobs"]
    c = borgrun.Checker("continuations")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        jobs = os.path.join(tmp, "jobs.jsonl")
        with open(jobs, "w") as f:
            for g in golden:
                job = {"id": g["id"], "max_tokens": len(g["continuation"]), "ignore_eos": True, "temperature": 0}
                if g["kind"] == "chat":
                    job["messages"] = g["messages"]
                else:
                    job["prompt"] = g["prompt"]
                f.write(json.dumps(job) + "\n")
            for i, e in enumerate(args.expect):
                f.write(json.dumps({"id": f"expect-{i}", "prompt": e.split("=>")[0], "max_tokens": 8,
                                    "temperature": 0}) + "\n")
        _, _, results, _ = borgrun.run(args.borg, args.model, jobs, extra=["--threads", "2", "--kv-dtype", "f32"])
    by_id = {r["id"]: r for r in results}
    for i, e in enumerate(args.expect):
        prompt, text = e.split("=>")
        got = by_id.get(f"expect-{i}", {}).get("text", "")
        print(f"{args.model_name}: {prompt!r} -> {got!r}")
        c.check(got.startswith(text), f"{prompt!r} continues with {text!r}")
    for job in golden:
        # The model's own (Jinja) template, where llama.cpp's built-in
        # renderer differs from it (SmolLM2's default system turn).
        g = {**job, **job.get("jinja", {})}
        r = by_id.get(g["id"])
        c.check(r is not None and r["status"] == "ok", f"{g['id']}: ran")
        if r is None or r["status"] != "ok":
            continue
        c.check(r["usage"]["prompt_tokens"] == len(g["prompt_ids"]),
                f"{g['id']}: prompt of {r['usage']['prompt_tokens']} tokens, llama.cpp {len(g['prompt_ids'])}")
        got, want, margins = r["token_ids"], g["continuation"], g["margins"]
        n = next((k for k in range(len(want)) if k >= len(got) or got[k] != want[k]), len(want))
        if n == len(want):
            print(f"{args.model_name} {g['id']}: all {n} ids equal llama.cpp's")
            continue
        close = [k for k in range(n + 1) if margins[k] < args.tie]
        why = (f"llama.cpp's top two were {margins[close[-1]]:.3g} apart at step {close[-1]}" if close
               else f"no near tie (smallest margin {min(margins[:n + 1]):.3g})")
        print(f"{args.model_name} {g['id']}: first {n} of {len(want)} ids equal; parts at step {n}: {why}")
        c.check(bool(close), f"{g['id']}: parts only after a near tie in llama.cpp")
    c.done()


if __name__ == "__main__":
    main()
