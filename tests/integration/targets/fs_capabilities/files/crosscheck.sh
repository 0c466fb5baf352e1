#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# What the file system at $1 can hold, found with the everyday tools (setfacl/getfacl from acl,
# setfattr/getfattr from attr, ln, dd, mknod, mkfifo) instead of the module's own system calls.
# Prints one JSON object; works in a scratch directory inside $1 that it always removes.
set -u
dir=$(mktemp -d "$1/.crosscheck.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
ok() { if "$@" >/dev/null 2>&1; then echo true; else echo false; fi; }

touch acl && acls=$(ok setfacl -m u:nobody:r,g:nogroup:r acl)
[ "$acls" = true ] && { getfacl -n acl 2>/dev/null | grep -q '^user:65534:r--' || acls=false; }
touch xattr && xattrs=$(ok setfattr -n user.crosscheck -v 1 xattr)
[ "$xattrs" = true ] && { [ "$(getfattr --only-values -n user.crosscheck xattr 2>/dev/null)" = 1 ] || xattrs=false; }
touch a && hard_links=$(ok ln a b)
[ "$hard_links" = true ] && { [ "$(stat -c %h a)" = 2 ] || hard_links=false; }
dd if=/dev/zero of=sparse bs=1 count=1 seek=4194304 2>/dev/null && sync sparse
sparse=false
[ $(( $(stat -c %b sparse) * 512 )) -lt 2097152 ] && sparse=true
devices=$(ok mknod dev c 1 3)
specials=$(ok mkfifo fifo)
printf '{"acls": %s, "xattrs": %s, "hard_links": %s, "sparse": %s, "devices": %s, "specials": %s}\n' \
  "$acls" "$xattrs" "$hard_links" "$sparse" "$devices" "$specials"
