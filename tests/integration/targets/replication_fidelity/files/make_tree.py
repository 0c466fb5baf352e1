# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the source tree of the replication_fidelity test: make_tree.py DIR BIG_MIB.

One entry of every kind lsyncd has to carry: a hard-link group, a POSIX ACL, a user xattr, a
sparse file, an owner and group with no name on either host (4242:4343), unusual modes, fixed
modification times, symlinks (one dangling), a fifo, a character device when the kernel lets
us make one (containers usually do not), an empty directory, names with a newline and a byte
that is not UTF-8, a large file of random bytes (renamed later) and a directory that is later
replaced by a symlink. Prints what it made as JSON.
"""
import json
import os
import subprocess
import sys

MTIME = 1700000000
root = os.fsencode(sys.argv[1])
big_mib = int(sys.argv[2])


def path(name):
    return os.path.join(root, name)


def write(name, data):
    os.makedirs(os.path.dirname(path(name)), exist_ok=True)
    with open(path(name), "wb") as handle:
        handle.write(data)


def main():
    os.makedirs(root)
    write(b"README.txt", b"replication fidelity\n")
    write(b"hard/a", b"one inode, two names\n")
    os.link(path(b"hard/a"), path(b"hard/b"))
    write(b"acl.txt", b"an ACL entry for uid 4242\n")
    subprocess.run(["setfacl", "-m", "u:4242:rw", path(b"acl.txt")], check=True)
    write(b"xattr.txt", b"a user xattr\n")
    os.setxattr(path(b"xattr.txt"), b"user.fidelity", b"original")
    # 8 MiB with data only in its first and last 4 KiB.
    with open(path(b"sparse.bin"), "wb") as handle:
        handle.write(b"s" * 4096)
        handle.seek(8 * 1048576 - 4096)
        handle.write(b"e" * 4096)
    write(b"nobody4242.txt", b"owner and group without a name\n")
    os.chown(path(b"nobody4242.txt"), 4242, 4343)
    write(b"mode0600.txt", b"private\n")
    os.chmod(path(b"mode0600.txt"), 0o600)
    write(b"chmod.txt", b"mode changes later\n")
    write(b"chown.txt", b"owner changes later\n")
    write(b"touch.txt", b"time changes later\n")
    write(b"exec.sh", b"#!/bin/sh\n")
    os.chmod(path(b"exec.sh"), 0o750)
    os.symlink(b"README.txt", path(b"link"))
    os.symlink(b"nowhere/at/all", path(b"dangling"))
    os.mkfifo(path(b"fifo"))
    try:
        os.mknod(path(b"chardev"), 0o600 | 0o020000, os.makedev(1, 3))
        chardev = True
    except PermissionError:
        chardev = False
    os.mkdir(path(b"empty_dir"))
    write(b"hostile/new\nline", b"a newline in the name\n")
    write(b"hostile/byte\xff.bin", b"not UTF-8\n")
    write(b"delete_me.txt", b"deleted later\n")
    write(b"delete_dir/x", b"x\n")
    write(b"todir/sub/f", b"this directory becomes a symlink\n")
    os.mkdir(path(b"big"))
    with open(path(b"big/big.bin"), "wb") as handle:
        for dummy in range(big_mib):
            handle.write(os.urandom(1048576))
    for current, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(current, name), (MTIME, MTIME), follow_symlinks=False)
    os.utime(root, (MTIME, MTIME))
    print(json.dumps({"chardev": chardev, "big_bytes": big_mib * 1048576}))


main()
