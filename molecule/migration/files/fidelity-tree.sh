#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Entries plain `rsync -a` loses or changes, in old's data, for the migration to carry: a hard-link
# group across two top-level directories (so two copy workers would split it), a POSIX ACL, a user
# xattr, a sparse file, a fifo, owners known by number only, a mode with setgid, an empty directory
# and names that are not valid UTF-8 or hold a newline.
set -eu
root=$1
mkdir -p "$root/fidelity/empty" "$root/tree/t0"
printf 'one inode, two names\n' >"$root/tree/t0/linked-a"
ln -f "$root/tree/t0/linked-a" "$root/fidelity/linked-b"
printf 'readable by uid 4243 too\n' >"$root/fidelity/acl.txt"
setfacl -m u:4243:r "$root/fidelity/acl.txt"
printf 'has an xattr\n' >"$root/fidelity/xattr.txt"
setfattr -n user.origin -v old "$root/fidelity/xattr.txt"
# Small: the copy's bandwidth limit counts the holes' zeros too.
truncate -s 4M "$root/fidelity/sparse.bin"
printf 'data in the middle' | dd of="$root/fidelity/sparse.bin" bs=1 seek=2097152 conv=notrunc status=none
rm -f "$root/fidelity/fifo" && mkfifo "$root/fidelity/fifo"
printf 'owned by numbers only\n' >"$root/fidelity/numeric.txt"
chown 4242:4343 "$root/fidelity/numeric.txt"
mkdir -p "$root/fidelity/setgid" && chmod 2750 "$root/fidelity/setgid"
printf 'x\n' >"$root/fidelity/$(printf 'byte\377name')"
printf 'y\n' >"$root/fidelity/$(printf 'new\nline')"
