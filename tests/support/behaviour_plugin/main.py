"""A plugin whose behaviour the test chooses with the `mode` parameter.

ok: echo the input; slow: sleep `seconds` then echo; crash: exit 3 with a message;
noresult: exit 0 without a result; garbage: write non-JSON; hang: sleep forever;
oom: allocate far beyond the memory limit.
"""

import json
import sys
import time

with open("/input/parameters.json") as handle:
    params = json.load(handle)
with open("/input/input.json") as handle:
    data = json.load(handle)
mode = params.get("mode", "ok")
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
if mode == "hang":
    time.sleep(3600)
if mode == "oom":
    hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
with open("/output/result.json", "w") as out:
    json.dump({"echo": data, "mode": mode}, out)
