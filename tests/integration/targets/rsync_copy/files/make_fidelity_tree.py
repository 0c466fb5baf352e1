# SPDX-License-Identifier: GPL-3.0-or-later
"""Create a tree with what rsync -a leaves out: make_fidelity_tree.py DIR SPARSE_MIB.

- a hard-link group spanning two top-level directories (alpha/linked/data and delta/deep/data),
  with sizes chosen so that plain balancing over two workers puts alpha and delta apart;
- bravo/xattr.txt with the user xattr user.nodowntime (the ACL is set by the caller with setfacl);
- charlie/image.raw, a sparse file of SPARSE_MIB MiB with three 4 KiB blocks written.
Prints the inode of the hard-link group and the sparse file's size and blocks as JSON.
"""
import json
import os
import sys

root, sparse_mib = sys.argv[1], int(sys.argv[2])
for top, count in (("alpha", 20), ("bravo", 5), ("charlie", 5), ("delta", 5)):
    os.makedirs(os.path.join(root, top))
    for i in range(count):
        with open(os.path.join(root, top, "f%02d" % i), "w", encoding="ascii") as handle:
            handle.write("%s %d\n" % (top, i))
os.makedirs(os.path.join(root, "alpha", "linked"))
os.makedirs(os.path.join(root, "delta", "deep"))
with open(os.path.join(root, "alpha", "linked", "data"), "w", encoding="ascii") as handle:
    handle.write("one inode, two names\n")
os.link(os.path.join(root, "alpha", "linked", "data"), os.path.join(root, "delta", "deep", "data"))

for name in ("acl.txt", "xattr.txt"):
    with open(os.path.join(root, "bravo", name), "w", encoding="ascii") as handle:
        handle.write(name + "\n")
os.setxattr(os.path.join(root, "bravo", "xattr.txt"), "user.nodowntime", b"carried by rsync -X")

size = sparse_mib << 20
image = os.path.join(root, "charlie", "image.raw")
with open(image, "wb") as handle:
    handle.truncate(size)
    for offset in (0, size // 2, size - 4096):
        handle.seek(offset)
        handle.write(b"\xa5" * 4096)
linked = os.stat(os.path.join(root, "alpha", "linked", "data"))
sparse = os.stat(image)
print(json.dumps({"linked_ino": linked.st_ino, "linked_nlink": linked.st_nlink,
                  "sparse_size": sparse.st_size, "sparse_blocks": sparse.st_blocks}))
