# SPDX-License-Identifier: GPL-3.0-or-later
"""Make known differences in a copy of make_tree.py's tree: diverge.py DIR.

Each difference changes one thing, then every modification time that should still agree is
put back (directories last, since every change inside one moves its time), so that exactly
the differences below are left:

  different  size.txt (size), mtime.txt (mtime), perms.txt (perms), owner.txt (owner),
             group.txt (group), link (symlink target), hard/b (hard link group split),
             acl.txt (ACL entry), xattr.txt (user.x), dirperm (directory mode),
             hostile/with space.txt (size), hostile/byte\\xff.bin (perms),
             samesize.txt (content only: seen by depth=checksum alone)
  missing    gone.txt, gone_dir (with two files), empty_dir, fifo, hostile/new\\nline
  orphaned   orphan.txt, orphan_dir (with two files), hostile/orphan \\xff\\nname
"""
import os
import subprocess
import sys

MTIME = 1700000000
root = os.fsencode(sys.argv[1])


def p(name):
    return os.path.join(root, name)


def write(name, data, mode=0o644):
    with open(p(name), "wb") as handle:
        handle.write(data)
    os.chmod(p(name), mode)
    os.utime(p(name), (MTIME, MTIME))


def main():
    # different
    write(b"size.txt", b"now fifteen b\n\n")
    os.utime(p(b"mtime.txt"), (MTIME + 3600, MTIME + 3600))
    os.chmod(p(b"perms.txt"), 0o600)
    os.chown(p(b"owner.txt"), 1234, -1)
    os.chown(p(b"group.txt"), -1, 1234)
    with open(p(b"samesize.txt"), "r+b") as handle:
        handle.write(b"SAME")
    os.utime(p(b"samesize.txt"), (MTIME, MTIME))
    os.unlink(p(b"link"))
    os.symlink(b"mtime.txt", p(b"link"))
    os.utime(p(b"link"), (MTIME, MTIME), follow_symlinks=False)
    with open(p(b"hard/b"), "rb") as handle:
        data = handle.read()
    os.unlink(p(b"hard/b"))
    write(b"hard/b", data)
    subprocess.run([b"setfacl", b"-m", b"u:1234:r", p(b"acl.txt")], check=True)
    os.setxattr(p(b"xattr.txt"), b"user.x", b"1")
    os.chmod(p(b"dirperm"), 0o700)
    write(b"hostile/with space.txt", b"size differs, and more\n")
    os.chmod(p(b"hostile/byte\xff.bin"), 0o640)
    # missing
    os.unlink(p(b"gone.txt"))
    for name in (b"gone_dir/one.txt", b"gone_dir/two.txt", b"fifo", b"hostile/new\nline"):
        os.unlink(p(name))
    os.rmdir(p(b"gone_dir"))
    os.rmdir(p(b"empty_dir"))
    # orphaned
    os.mkdir(p(b"orphan_dir"))
    write(b"orphan.txt", b"only on the copy\n")
    write(b"orphan_dir/x.txt", b"x\n")
    write(b"orphan_dir/y.txt", b"yy\n")
    write(b"hostile/orphan \xff\nname", b"hostile orphan\n")
    # directories last: every change above moved their modification time
    for current, dirs, dummy in os.walk(root, topdown=False):
        for name in dirs:
            os.utime(os.path.join(current, name), (MTIME, MTIME))
    os.utime(root, (MTIME, MTIME))


main()
