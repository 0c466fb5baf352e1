# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs on the lab hosts (copied to /lab-shared): writes on the source host, watches on the target.

The lab hosts share the machine's clock, so a time taken on one host and a time taken on another
can be subtracted. The two sides talk through files in /lab-shared, one host directory every lab
host mounts.

    lab_probe.py lag-write SRC SAMPLES SEED SEEN_LOG PAUSE_MAX TIMEOUT    (source host; prints JSON)
    lab_probe.py lag-watch DEST SAMPLES SEEN_LOG POLL TIMEOUT             (target host)
    lab_probe.py burst-layout SRC FILES                                   (source host, before lsyncd)
    lab_probe.py burst-write SRC FILES SEED SIZE                          (source host; prints JSON)
    lab_probe.py burst-watch DEST FILES POLL TIMEOUT RESULT               (target host)

Every mode ends by itself (at the last sample or file, or at its timeout).
"""
from __future__ import annotations

import json
import os
import random
import sys
import time

DIRS = 16
PER_DIR = 500


def lag_write(src, samples, seed, seen_log, pause_max, timeout):
    """One new file per sample; the lag is the watcher's time of seeing it minus the time of writing."""
    rng = random.Random(seed)
    lags = []
    for index in range(samples):
        name = "lag-%04d.txt" % index
        content = b"sample %d %016x\n" % (index, rng.getrandbits(64))
        start = time.time()
        with open(os.path.join(src, name), "wb") as f:
            f.write(content)
        seen = None
        deadline = time.monotonic() + timeout
        while seen is None and time.monotonic() < deadline:
            try:
                with open(seen_log, encoding="ascii") as f:
                    for line in f:
                        fields = line.split()
                        if len(fields) == 2 and fields[0] == str(index):
                            seen = float(fields[1])
            except OSError:
                pass
            if seen is None:
                time.sleep(0.005)
        if seen is None:
            sys.exit("%s did not reach the target in %ss" % (name, timeout))
        lags.append(seen - start)
        time.sleep(rng.uniform(0, pause_max))
    print(json.dumps(lags))


def lag_watch(dest, samples, seen_log, poll, timeout):
    deadline = time.monotonic() + timeout
    with open(seen_log, "a", encoding="ascii") as log:
        for index in range(samples):
            path = os.path.join(dest, "lag-%04d.txt" % index)
            prefix = b"sample %d " % index
            while time.monotonic() < deadline:
                try:
                    with open(path, "rb") as f:
                        if f.read().startswith(prefix):  # rsync renames a whole file into place
                            break
                except OSError:
                    pass
                time.sleep(poll)
            else:
                return
            log.write("%d %.6f\n" % (index, time.time()))
            log.flush()


def _paths(src, files):
    paths = []
    for d in range(DIRS):
        count = files // DIRS + (1 if d < files % DIRS else 0)
        paths += [os.path.join(src, "dir%02d" % d, "sub%03d" % (i // PER_DIR), "f%05d.bin" % i) for i in range(count)]
    return paths


def burst_layout(src, files):
    for directory in sorted(set(os.path.dirname(p) for p in _paths(src, files))):
        os.makedirs(directory, exist_ok=True)


def burst_write(src, files, seed, size):
    """Every file, as fast as possible, round-robin over the directories as many writers would."""
    rng = random.Random(seed)
    pool = rng.randbytes((1 << 20) + size)
    paths = _paths(src, files)
    order = sorted(range(len(paths)), key=lambda i: (i % DIRS, i))
    start = time.time()
    for i in order:
        fd = os.open(paths[i], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            offset = rng.randrange(1 << 20)
            os.write(fd, pool[offset:offset + size])
        finally:
            os.close(fd)
    print(json.dumps(dict(start=start, written=time.time())))


def burst_watch(dest, files, poll, timeout, result):
    """Counts the files under ``dest`` (rsync's temporary dot files left out) until all are there."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = sum(1 for _d, _s, names in os.walk(dest) for name in names if not name.startswith("."))
        if seen >= files:
            break
        time.sleep(poll)
    done = time.time()
    with open(result + ".part", "w", encoding="ascii") as f:
        json.dump(dict(done=done, seen=seen), f)
    os.rename(result + ".part", result)


def main(argv):
    mode, args = argv[0], argv[1:]
    if mode == "lag-write":
        lag_write(args[0], int(args[1]), int(args[2]), args[3], float(args[4]), float(args[5]))
    elif mode == "lag-watch":
        lag_watch(args[0], int(args[1]), args[2], float(args[3]), float(args[4]))
    elif mode == "burst-layout":
        burst_layout(args[0], int(args[1]))
    elif mode == "burst-write":
        burst_write(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "burst-watch":
        burst_watch(args[0], int(args[1]), float(args[2]), float(args[3]), args[4])
    else:
        sys.exit("unknown mode %s" % mode)


if __name__ == "__main__":
    main(sys.argv[1:])
