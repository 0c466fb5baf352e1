# SPDX-License-Identifier: GPL-3.0-or-later
"""Change the replication_fidelity source tree while lsyncd runs: change_tree.py DIR OUTSIDE.

One change of each kind lsyncd has to carry (the rename of the large file is timed apart).
The directory todir becomes a symlink to OUTSIDE, a directory outside the tree that exists on
the target host too: replaying the deletions of todir's entries must not reach into it.
"""
import os
import shutil
import subprocess
import sys

root = os.fsencode(sys.argv[1])
outside = os.fsencode(sys.argv[2])


def path(name):
    return os.path.join(root, name)


def write(name, data):
    os.makedirs(os.path.dirname(path(name)), exist_ok=True)
    with open(path(name), "wb") as handle:
        handle.write(data)


write(b"new.txt", b"created while lsyncd runs\n")
# A new name for an existing inode; lsyncd hands rsync only this name.
os.link(path(b"hard/a"), path(b"hard/c"))
# A hard-link group born within one lsyncd delay: both names reach rsync together.
write(b"pair/one", b"born linked\n")
os.link(path(b"pair/one"), path(b"pair/two"))
subprocess.run(["setfacl", "-m", "u:4242:r,g:4343:rw", path(b"acl.txt")], check=True)
os.setxattr(path(b"xattr.txt"), b"user.fidelity", b"changed")
os.setxattr(path(b"README.txt"), b"user.added", b"new xattr")
os.chmod(path(b"chmod.txt"), 0o640)
os.chown(path(b"chown.txt"), 4242, 4343)
subprocess.run(["touch", "-h", "-d", "2001-02-03 04:05:06", path(b"touch.txt")], check=True)
os.remove(path(b"delete_me.txt"))
shutil.rmtree(path(b"delete_dir"))
shutil.rmtree(path(b"todir"))
os.symlink(outside, path(b"todir"))
with open(path(b"sparse2.bin"), "wb") as handle:
    handle.seek(4 * 1048576)
    handle.write(b"tail")
os.mkfifo(path(b"fifo2"))
os.mkdir(path(b"empty_dir2"))
write(b"hostile/second\nnew\xfeline", b"created while lsyncd runs\n")
