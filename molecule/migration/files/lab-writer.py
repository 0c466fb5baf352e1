#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""An application writing to the old server's share (mounted over sshfs) at a steady rate.

Creates, overwrites and deletes files; after each operation appends `op path sha256` to the log
(path relative to the mount, `-` for a delete), flushed and fsynced, so the log is the truth.
SIGTERM (systemctl stop) ends it between operations, never between a write and its log line.
"""
import hashlib
import os
import random
import signal
import sys
import time

root, log_path = sys.argv[1], sys.argv[2]
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
paths = ["live/d%d/f%02d" % (d, f) for d in range(4) for f in range(40)]
paths += ["tree/t%d/s0/f%03d" % (t, f) for t in range(4) for f in range(10)]  # files of the initial copy
rng = random.Random()
stopping = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
with open(log_path, "a", encoding="utf-8") as log:
    while not stopping:
        rel = rng.choice(paths)
        full = os.path.join(root, rel)
        if os.path.exists(full) and rng.random() < 0.35:
            os.unlink(full)
            line = "delete %s -" % rel
        else:
            op = "overwrite" if os.path.exists(full) else "create"
            os.makedirs(os.path.dirname(full), exist_ok=True)
            data = os.urandom(rng.randint(64, 8192))
            with open(full, "wb") as handle:
                handle.write(data)
            line = "%s %s %s" % (op, rel, hashlib.sha256(data).hexdigest())
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())
        time.sleep(1.0 / rate)
