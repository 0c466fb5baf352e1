# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare a tree with the writer's log: the last operation of each path decides.

Usage: check-writer-log.py LOG ROOT. Prints JSON: operations, paths, present, absent, wrong
(the first 10 of wrong_count paths whose content differs from the log, or that exist although
deleted last, or are missing).
"""
import hashlib
import json
import os
import sys

log_path, root = sys.argv[1], sys.argv[2]
expected = {}
operations = 0
with open(log_path, encoding="utf-8") as log:
    for line in log:
        op, path, digest = line.split()
        expected[path] = None if op == "delete" else digest
        operations += 1
wrong = []
for path, digest in sorted(expected.items()):
    full = os.path.join(root, path)
    try:
        with open(full, "rb") as handle:
            found = hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        found = None
    if found != digest:
        wrong.append({"path": path, "expected": digest, "found": found})
print(json.dumps({
    "operations": operations,
    "paths": len(expected),
    "present": sum(1 for d in expected.values() if d),
    "absent": sum(1 for d in expected.values() if d is None),
    "wrong_count": len(wrong),
    "wrong": wrong[:10],
}))
