# SPDX-License-Identifier: GPL-3.0-or-later
"""Describe a directory tree as JSON: tree_manifest.py DIR.

One line per entry (the root is "."), sorted by path: path, type, mode, owner, group, size,
mtime in nanoseconds (not for symlinks), and the sha256 of a regular file or a symlink's
target. Also counts by type, and total_size as rsync's --stats counts it (regular file sizes
plus the length of each symlink's target) and file_bytes (regular files only).
"""
import hashlib
import json
import os
import stat
import sys

root = sys.argv[1]
entries = []
count = {"f": 0, "d": 0, "l": 0, "other": 0}
total = 0
file_bytes = 0


def describe(path, rel):
    global total, file_bytes
    st = os.lstat(path)
    mtime = st.st_mtime_ns
    size = st.st_size
    extra = "-"
    if stat.S_ISREG(st.st_mode):
        kind = "f"
        with open(path, "rb") as handle:
            extra = hashlib.sha256(handle.read()).hexdigest()
        total += size
        file_bytes += size
    elif stat.S_ISLNK(st.st_mode):
        kind = "l"
        extra = os.readlink(path)
        total += len(os.fsencode(extra))
        mtime = "-"
    elif stat.S_ISDIR(st.st_mode):
        kind = "d"
        size = 0
    else:
        kind = "other"
    count[kind] += 1
    entries.append("\t".join(str(x) for x in (
        rel, kind, "%04o" % stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, mtime, extra)))


describe(root, ".")
for current, dirs, files in os.walk(root):
    for name in dirs + files:
        path = os.path.join(current, name)
        describe(path, os.path.relpath(path, root))
entries.sort()
print(json.dumps({"entries": entries, "count": count, "total_size": total, "file_bytes": file_bytes}))
