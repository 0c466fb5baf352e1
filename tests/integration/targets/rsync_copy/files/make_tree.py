# SPDX-License-Identifier: GPL-3.0-or-later
"""Create a deterministic test tree: make_tree.py DIR TOPDIR[,TOPDIR...] SUBDIRS FILES_PER_SUBDIR.

Regular files of varying size (0 bytes to about 6 KiB) with content derived from their path,
a few top-level files (one with a blank in its name, one mode 0600), a top-level symlink and
an empty directory. Prints the number of regular files it wrote as JSON.
"""
import hashlib
import json
import os
import sys

root, tops, subdirs, per = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(root)
written = 0


def write(path, size, mode=0o644):
    global written
    seed = hashlib.sha256(path.encode()).digest()
    data = (seed * (size // len(seed) + 1))[:size]
    with open(os.path.join(root, path), "wb") as handle:
        handle.write(data)
    os.chmod(os.path.join(root, path), mode)
    written += 1


for t, top in enumerate(tops):
    for s in range(subdirs):
        os.makedirs(os.path.join(root, top, "s%d" % s))
        for f in range(per):
            write("%s/s%d/f%03d.dat" % (top, s, f), (t * 997 + s * 131 + f * 61) % 6000)
os.makedirs(os.path.join(root, tops[0], "empty"))
write("README.txt", 120)
write("with blank.txt", 33)
write("%s/secret.key" % tops[-1], 64, 0o600)
os.symlink("%s/s0/f000.dat" % tops[0], os.path.join(root, "latest"))
print(json.dumps({"files": written}))
