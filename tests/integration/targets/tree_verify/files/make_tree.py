# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the source tree of the tree_verify test: make_tree.py DIR.

Every entry is root's, files 0644, directories 0755, and every modification time (symlinks
and the fifo included) is the same fixed second, so a copy made with `rsync -aHAX` agrees
with it exactly and diverge.py can change one attribute at a time. Prints the sizes of the
regular files as JSON ({"relative path": size}, names as Python's backslashreplace).
"""
import json
import os
import sys

MTIME = 1700000000
root = os.fsencode(sys.argv[1])

FILES = {
    b"README.txt": b"the same on both sides\n",
    b"size.txt": b"twelve bytes",
    b"mtime.txt": b"only the time differs\n",
    b"perms.txt": b"mode 0644 here\n",
    b"owner.txt": b"owned by root here\n",
    b"group.txt": b"group root here\n",
    b"samesize.txt": b"same size, same time, other bytes\n",
    b"acl.txt": b"no ACL entry here\n",
    b"xattr.txt": b"no user.x here\n",
    b"gone.txt": b"missing on the copy\n",
    b"gone_dir/one.txt": b"1\n",
    b"gone_dir/two.txt": b"two\n",
    b"hard/a": b"one inode, two names\n",
    b"dirperm/inside.txt": b"in a directory whose mode differs\n",
    b"hostile/with space.txt": b"size differs\n",
    b"hostile/new\nline": b"a newline in the name\n",
    b"hostile/byte\xff.bin": b"not UTF-8\n",
}


def main():
    os.makedirs(root)
    for name, data in FILES.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    os.link(os.path.join(root, b"hard/a"), os.path.join(root, b"hard/b"))
    os.symlink(b"README.txt", os.path.join(root, b"link"))
    os.mkdir(os.path.join(root, b"empty_dir"))
    os.mkfifo(os.path.join(root, b"fifo"))
    sizes = {}
    for current, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
            os.lchown(path, 0, 0)
            os.utime(path, (MTIME, MTIME), follow_symlinks=False)
            if os.path.isfile(path) and not os.path.islink(path):
                rel = os.path.relpath(path, root)
                sizes[rel.decode("utf-8", "backslashreplace")] = os.path.getsize(path)
    os.chmod(root, 0o755)
    os.utime(root, (MTIME, MTIME))
    print(json.dumps(sizes, sort_keys=True))


main()
