"""A plugin whose behaviour the test chooses with the `mode` parameter.

Single-item contract (v1):
ok: echo the input; slow: sleep `seconds` then echo; crash: exit 3 with a message;
noresult: exit 0 without a result; garbage: write non-JSON; inf: a number JSON cannot
store; hang: sleep forever;
oom: allocate far beyond the memory limit.

Batch contract (when /input/items.jsonl exists), per item `data.n`:
ok: echo every item; slow: sleep `seconds` first; odd_errors: an error line for odd n;
skip_odd: no line for odd n; crash_after: results for the first `count` items then exit 3;
garbage: a garbage line, then results.
"""

import json
import os
import sys
import time

with open("/input/parameters.json") as handle:
    params = json.load(handle)
mode = params.get("mode", "ok")


def run_batch() -> None:
    with open("/input/items.jsonl") as handle:
        items = [json.loads(line) for line in handle if line.strip()]
    if mode == "slow":
        time.sleep(float(params.get("seconds", 5)))
    with open("/output/results.jsonl", "w") as out:
        if mode == "garbage":
            out.write("{not json\n")
            out.write(json.dumps({"id": "not-a-task", "result": 1}) + "\n")
        for index, item in enumerate(items):
            n = item["data"].get("n", 0)
            if mode == "crash_after" and index == int(params.get("count", 1)):
                out.flush()
                print(f"RuntimeError: item {n} broke the run", file=sys.stderr)
                sys.exit(3)
            if mode == "skip_odd" and n % 2:
                continue
            if mode == "odd_errors" and n % 2:
                line = {"id": item["id"], "error": f"odd number {n} is not allowed"}
            else:
                line = {"id": item["id"], "result": {"echo": item["data"], "type": item["type"]}}
            out.write(json.dumps(line) + "\n")
            out.flush()


if os.path.exists("/input/items.jsonl"):
    run_batch()
    sys.exit(0)

with open("/input/input.json") as handle:
    data = json.load(handle)
if mode == "slow":
    time.sleep(float(params.get("seconds", 5)))
if mode == "crash":
    print("starting", file=sys.stderr)
    print("ValueError: cannot parse item 42", file=sys.stderr)
    sys.exit(3)
if mode == "noresult":
    sys.exit(0)
if mode == "garbage":
    with open("/output/result.json", "w") as out:
        out.write("{not json")
    sys.exit(0)
if mode == "inf":
    with open("/output/result.json", "w") as out:
        out.write('{"big": 1e999}')
    sys.exit(0)
if mode == "hang":
    time.sleep(3600)
if mode == "oom":
    hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
with open("/output/result.json", "w") as out:
    json.dump({"echo": data, "mode": mode}, out)
