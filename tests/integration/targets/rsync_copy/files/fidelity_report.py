# SPDX-License-Identifier: GPL-3.0-or-later
"""Describe what rsync -a leaves out, in a tree made by make_fidelity_tree.py: fidelity_report.py DIR.

Prints JSON: inode and link count of both names of the hard-link group, the user xattr of
bravo/xattr.txt, and size, st_blocks and sha256 of the sparse file.
"""
import hashlib
import json
import os
import sys

root = sys.argv[1]
links = {}
for name in ("alpha/linked/data", "delta/deep/data"):
    st = os.lstat(os.path.join(root, name))
    links[name] = {"ino": st.st_ino, "nlink": st.st_nlink}
try:
    xattr = os.getxattr(os.path.join(root, "bravo", "xattr.txt"), "user.nodowntime").decode()
except OSError as e:
    xattr = "missing: %s" % e.strerror
image = os.path.join(root, "charlie", "image.raw")
digest = hashlib.sha256()
with open(image, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
st = os.stat(image)
print(json.dumps({"links": links, "xattr": xattr,
                  "sparse": {"size": st.st_size, "blocks": st.st_blocks, "sha256": digest.hexdigest()}}))
