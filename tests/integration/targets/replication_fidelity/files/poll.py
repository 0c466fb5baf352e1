# SPDX-License-Identifier: GPL-3.0-or-later
"""Watch a rename arrive: poll.py OLD NEW READY TIMEOUT.

Checks both names every 20 ms, from before the rename until the new name is there and the old
one gone, and prints how often it saw which (JSON). READY is created once polling has begun.
"""
import json
import os
import sys
import time

old, new, ready, timeout = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), sys.argv[3], float(sys.argv[4])
counts = {"polls": 0, "old_only": 0, "both": 0, "new_only": 0, "neither": 0}
start = time.monotonic()
with open(ready, "w"):
    pass
while time.monotonic() - start < timeout:
    has_old, has_new = os.path.lexists(old), os.path.lexists(new)
    counts["polls"] += 1
    key = "both" if has_old and has_new else "old_only" if has_old else "new_only" if has_new else "neither"
    counts[key] += 1
    if key == "new_only":
        break
    time.sleep(0.02)
counts["seconds"] = round(time.monotonic() - start, 3)
print(json.dumps(counts))
