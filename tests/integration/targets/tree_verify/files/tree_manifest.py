# SPDX-License-Identifier: GPL-3.0-or-later
"""Describe every entry of a tree, metadata only, as JSON lines: tree_manifest.py DIR.

One line per entry (the root is "."), sorted: the name (bytes that are not UTF-8 and control
characters escaped), inode, type and mode, links, owner, group, size, modification and change
times in nanoseconds, and every extended attribute with its value (ACLs included). Any write
into the tree - even one that puts back what was there - moves a change time.
"""
import json
import os
import sys

root = os.fsencode(sys.argv[1])


def describe(path, rel):
    st = os.lstat(path)
    xattrs = {}
    for key in sorted(os.listxattr(path, follow_symlinks=False)):
        xattrs[key] = os.getxattr(path, key, follow_symlinks=False).hex()
    return [rel.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii"),
            st.st_ino, "%o" % st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
            st.st_mtime_ns, st.st_ctime_ns, xattrs]


entries = [describe(root, b".")]
for current, dirs, files in os.walk(root):
    for name in dirs + files:
        path = os.path.join(current, name)
        entries.append(describe(path, os.path.relpath(path, root)))
entries.sort()
print(json.dumps(entries))
