# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure lsyncd's lag: write a file into SOURCE, time until it appears complete in SEEN.

usage: lag.py SOURCE SEEN COUNT TAG
SEEN is where the synced files can be observed locally (the rsync daemon module's directory).
Prints JSON: {"lags": [...seconds...], "median": s, "max": s}.
"""
import json
import os
import statistics
import sys
import time


def main():
    source, seen, count, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    lags = []
    for i in range(count):
        name = "lag-%s-%d" % (tag, i)
        payload = ("%s %d %.6f\n" % (tag, i, time.time())).encode()
        with open(os.path.join(source, name), "wb") as f:
            f.write(payload)
        written = time.time()
        target = os.path.join(seen, name)
        deadline = written + 30
        while True:
            try:
                with open(target, "rb") as f:
                    if f.read() == payload:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                print(json.dumps({"error": "%s did not arrive within 30 s" % name, "lags": lags}))
                return 1
            time.sleep(0.0005)
        lags.append(round(time.time() - written, 4))
        time.sleep(0.3)
    print(json.dumps({"lags": lags, "median": round(statistics.median(lags), 4), "max": max(lags)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
