"""All three input shapes in one file, the JSON-array form, both output
shapes checked field by field against the OpenAI Batch API's output format,
and bad lines: each gets a result line with status error naming its line
number, and every other job still completes."""
import argparse
import json
import os
import tempfile

from borgrun import Checker, count_jobs, run

ap = argparse.ArgumentParser()
ap.add_argument("--borg", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--np", type=int, default=1)
ap.add_argument("--mpiexec")
args = ap.parse_args()

LONG = "word " * 200  # longer than the --ctx 128 given below
lines = [
    '{"id": "simple", "prompt": "The capital of France is", "max_tokens": 4}',
    '{"id": "chat", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}',
    '{"id": "ids", "prompt_token_ids": [504, 3575, 282, 4649, 314], "max_tokens": 3}',
    '{"custom_id": "oa-chat", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "smol", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0}}',
    '{"custom_id": "oa-cmpl", "method": "POST", "url": "/v1/completions", '
    '"body": {"model": "smol", "prompt": "One, two,", "max_tokens": 3, "temperature": 0}}',
    '{"id": "broken", "prompt": ',                                           # line 6: invalid JSON
    '{"id": "wrongtype", "prompt": ["a", "b"], "max_tokens": 3}',            # line 7: wrong type
    '{"id": "negative", "prompt": "x", "max_tokens": -3}',                   # line 8
    '{"id": "empty", "prompt": ""}',                                         # line 9
    json.dumps({"id": "toolong", "prompt": LONG, "max_tokens": 2}),          # line 10
    '{"custom_id": "oa-bad", "method": "POST", "url": "/v1/chat/completions", "body": {"max_tokens": 2}}',  # 11
    '{"id": "zero", "prompt": "x", "max_tokens": 0}',
    '{"id": "eos-ignored", "prompt": "Hi", "max_tokens": 6, "ignore_eos": true}',
]
# Invalid JSON has no readable id: its result is named after its line.
bad = {"line-6": 6, "wrongtype": 7, "negative": 8, "empty": 9, "toolong": 10}
tmp = tempfile.mkdtemp(dir=os.environ.get("TMPDIR"))
jobs = os.path.join(tmp, "mixed.jsonl")
with open(jobs, "w") as f:
    f.write("\n".join(lines) + "\n")

c = Checker("formats")
_, _, results, summary = run(args.borg, args.model, jobs, np=args.np, mpiexec=args.mpiexec,
                             extra=["--ctx", "128", "--threads", "1" if args.np > 1 else "2"])
c.check(len(results) == count_jobs(jobs) == len(lines), f"{len(results)} result lines for {len(lines)} job lines")
native = {r["id"]: r for r in results if "custom_id" not in r}
openai = {r["custom_id"]: r for r in results if "custom_id" in r}

for rid in ("simple", "chat", "ids", "zero", "eos-ignored"):
    r = native.get(rid, {})
    c.check(r.get("status") == "ok", f"{rid} ok: {r}")
    c.check(set(r) >= {"id", "status", "text", "token_ids", "finish_reason", "usage", "timings"}, f"{rid} fields")
    if r:
        c.check(isinstance(r["text"], str) and all(isinstance(t, int) for t in r["token_ids"]), f"{rid} types")
        c.check(r["usage"]["completion_tokens"] == len(r["token_ids"]), f"{rid} usage counts the tokens")
        c.check(r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"],
                f"{rid} total tokens")
        c.check(set(r["timings"]) == {"queue_ms", "first_token_ms", "total_ms"}, f"{rid} timings")
        c.check(r["finish_reason"] in ("stop", "length"), f"{rid} finish reason")
c.check(native.get("ids", {}).get("usage", {}).get("prompt_tokens") == 5, "prompt_token_ids used as given")
c.check(native.get("zero", {}).get("token_ids") == [], "max_tokens 0 generates nothing")
eos = native.get("eos-ignored", {})
c.check(len(eos.get("token_ids", [])) == 6 and eos.get("finish_reason") == "length", "ignore_eos runs to max_tokens")
simple = native.get("simple", {})
c.check(len(simple.get("token_ids", [])) == 4 and simple.get("finish_reason") == "length", "max_tokens honoured")

for rid, line in bad.items():
    r = native.get(rid, {})
    c.check(r.get("status") == "error", f"{rid} is an error: {r}")
    c.check(f"line {line}:" in r.get("error", ""), f"{rid} names line {line}: {r.get('error')}")
    c.check(r.get("token_ids") == [] and r.get("text") == "", f"{rid} has no output")


def check_openai_ok(rid, chat):
    r = openai.get(rid, {})
    c.check(set(r) == {"id", "custom_id", "response", "error"}, f"{rid} top-level fields: {sorted(r)}")
    c.check(isinstance(r.get("id"), str) and r["id"].startswith("batch_req_"), f"{rid} id")
    c.check(r.get("error") is None, f"{rid} error is null")
    resp = r.get("response") or {}
    c.check(resp.get("status_code") == 200, f"{rid} status 200")
    c.check(isinstance(resp.get("request_id"), str) and resp["request_id"], f"{rid} request_id")
    body = resp.get("body") or {}
    c.check(body.get("object") == ("chat.completion" if chat else "text_completion"), f"{rid} object")
    c.check(isinstance(body.get("id"), str) and body["id"].startswith("chatcmpl-" if chat else "cmpl-"), f"{rid} body id")
    c.check(isinstance(body.get("created"), int) and body["created"] > 1_600_000_000, f"{rid} created")
    c.check(body.get("model") == "smol", f"{rid} model echoed")
    choices = body.get("choices") or [{}]
    c.check(len(choices) == 1 and choices[0].get("index") == 0, f"{rid} one choice")
    ch = choices[0]
    if chat:
        msg = ch.get("message") or {}
        c.check(msg.get("role") == "assistant" and isinstance(msg.get("content"), str), f"{rid} message")
    else:
        c.check(isinstance(ch.get("text"), str), f"{rid} text")
    c.check("logprobs" in ch and ch["logprobs"] is None, f"{rid} logprobs null")
    c.check(ch.get("finish_reason") in ("stop", "length"), f"{rid} finish_reason")
    u = body.get("usage") or {}
    c.check(set(u) >= {"prompt_tokens", "completion_tokens", "total_tokens"}, f"{rid} usage fields")
    c.check(u.get("total_tokens") == u.get("prompt_tokens", 0) + u.get("completion_tokens", 0), f"{rid} usage sum")


check_openai_ok("oa-chat", True)
check_openai_ok("oa-cmpl", False)
r = openai.get("oa-bad", {})
resp = r.get("response") or {}
c.check(resp.get("status_code") == 400, f"oa-bad is a 400: {r}")
c.check("line 11:" in (resp.get("body") or {}).get("error", {}).get("message", ""), "oa-bad names line 11")
c.check(summary["jobs"]["error"] == len(bad) + 1, "summary counts the errors")

# The same jobs as a JSON array: same answers.
array_jobs = os.path.join(tmp, "mixed.json")
good = [json.loads(l) for l in lines[:5]]
with open(array_jobs, "w") as f:
    json.dump(good, f, indent=1)
_, _, arr, _ = run(args.borg, args.model, array_jobs, np=args.np, mpiexec=args.mpiexec,
                   extra=["--ctx", "128", "--threads", "1" if args.np > 1 else "2"])
c.check(len(arr) == 5, "a JSON array file runs every element")
for r in arr:
    key = r.get("custom_id", r.get("id"))
    prev = openai.get(key) or native.get(key)
    c.check(prev is not None and (r.get("token_ids") or r["response"]["body"]["choices"][0]["token_ids"]) ==
            (prev.get("token_ids") or prev["response"]["body"]["choices"][0]["token_ids"]),
            f"{key}: the array form gives the same tokens")
c.done()
