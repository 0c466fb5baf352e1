# SPDX-License-Identifier: GPL-3.0-or-later
"""Find out what a file system can hold by trying it.

Each feature is tested by a real attempt on a temporary entry in a private directory made
inside the probed directory, so the attempt hits the same file system (a mount point, an
overlay or a bind mount below the directory would otherwise give another answer). The private
directory is removed afterwards whatever happened; ``probe`` reports any entry it could not
remove instead of leaving it silently.

Nothing here asks the kernel what a file system type supports in general: mount options
(``noacl``, ``nouser_xattr``), an overlay's upper layer, a container's capabilities and the
kernel's build options all change the answer, and only a real attempt covers them all.
"""
from __future__ import annotations

import os
import stat
import struct
import tempfile

FEATURES = ("acls", "xattrs", "hard_links", "sparse", "devices", "specials")

# What each feature is, in the words of a failure message: "cannot hold <description>".
DESCRIPTIONS = {
    "acls": "POSIX ACLs",
    "xattrs": "user extended attributes",
    "hard_links": "hard links",
    "sparse": "sparse files",
    "devices": "device files",
    "specials": "special files (fifos)",
}

PROBE_PREFIX = ".nodowntime-fs-capabilities-"

# The Linux binary form of an access ACL (include/uapi/linux/posix_acl_xattr.h): a little-endian
# version header, then entries of (tag u16, permissions u16, id u32) sorted by tag and id.
ACL_XATTR = "system.posix_acl_access"
ACL_XATTR_VERSION = 2
ACL_USER_OBJ = 0x01
ACL_USER = 0x02
ACL_GROUP_OBJ = 0x04
ACL_GROUP = 0x08
ACL_MASK = 0x10
ACL_OTHER = 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF

USER_XATTR = "user.nodowntime.probe"
USER_XATTR_VALUE = b"nodowntime fs_capabilities probe"

# Large enough that no file system stores the hole inline or rounds it away.
SPARSE_OFFSET = 4 * 1024 * 1024


class ProbeError(Exception):
    """The probe itself could not run (no private directory, or it could not be removed)."""


def acl_xattr(uid, gid):
    """Return the binary access ACL ``u::rw-,u:<uid>:r--,g::r--,g:<gid>:r--,m::r--,o::---``."""
    entries = [
        (ACL_USER_OBJ, 6, ACL_UNDEFINED_ID),
        (ACL_USER, 4, uid),
        (ACL_GROUP_OBJ, 4, ACL_UNDEFINED_ID),
        (ACL_GROUP, 4, gid),
        (ACL_MASK, 4, ACL_UNDEFINED_ID),
        (ACL_OTHER, 0, ACL_UNDEFINED_ID),
    ]
    return struct.pack("<I", ACL_XATTR_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)


def parse_acl_xattr(data):
    """Return the entries of a binary access ACL as ``[(tag, perm, id), ...]``."""
    if len(data) < 4 or (len(data) - 4) % 8:
        raise ValueError("%d bytes is not a POSIX ACL" % len(data))
    (version,) = struct.unpack_from("<I", data)
    if version != ACL_XATTR_VERSION:
        raise ValueError("unknown POSIX ACL version %d" % version)
    return [struct.unpack_from("<HHI", data, offset) for offset in range(4, len(data), 8)]


def _reason(action, err):
    return "%s failed: %s" % (action, err.strerror or err)


def _touch(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def probe_acls(workdir):
    """Set an access ACL with a named user and group entry and read it back."""
    path = os.path.join(workdir, "acl")
    _touch(path)
    st = os.stat(path)
    # The file's own ids: always valid, even in a user namespace that maps few ids.
    wanted = acl_xattr(st.st_uid, st.st_gid)
    try:
        os.setxattr(path, ACL_XATTR, wanted)
    except OSError as e:
        return False, _reason("setting %s" % ACL_XATTR, e)
    try:
        got = os.getxattr(path, ACL_XATTR)
    except OSError as e:
        return False, _reason("reading %s back" % ACL_XATTR, e)
    try:
        same = sorted(parse_acl_xattr(got)) == sorted(parse_acl_xattr(wanted))
    except ValueError as e:
        return False, "reading %s back gave %s" % (ACL_XATTR, e)
    if not same:
        return False, "%s read back differs from what was set" % ACL_XATTR
    return True, None


def probe_xattrs(workdir):
    """Set a ``user.*`` attribute and read it back."""
    path = os.path.join(workdir, "xattr")
    _touch(path)
    try:
        os.setxattr(path, USER_XATTR, USER_XATTR_VALUE)
    except OSError as e:
        return False, _reason("setting %s" % USER_XATTR, e)
    try:
        got = os.getxattr(path, USER_XATTR)
    except OSError as e:
        return False, _reason("reading %s back" % USER_XATTR, e)
    if got != USER_XATTR_VALUE:
        return False, "%s read back differs from what was set" % USER_XATTR
    return True, None


def probe_hard_links(workdir):
    """Link a second name to a file and check both names are one inode."""
    path = os.path.join(workdir, "link-a")
    other = os.path.join(workdir, "link-b")
    _touch(path)
    try:
        os.link(path, other)
    except OSError as e:
        return False, _reason("link()", e)
    a, b = os.lstat(path), os.lstat(other)
    if (a.st_ino, a.st_dev) != (b.st_ino, b.st_dev) or a.st_nlink != 2:
        return False, "link() made a second file instead of a second name"
    return True, None


def probe_sparse(workdir):
    """Write one byte far into a new file and check the hole takes no blocks."""
    path = os.path.join(workdir, "sparse")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.lseek(fd, SPARSE_OFFSET, os.SEEK_SET)
        os.write(fd, b"x")
        # Delayed allocation reports no blocks at all until the data is written out.
        os.fsync(fd)
    finally:
        os.close(fd)
    st = os.stat(path)
    allocated = st.st_blocks * 512
    if allocated >= st.st_size // 2:
        return False, "a %d-byte file with a hole takes %d bytes" % (st.st_size, allocated)
    return True, None


def probe_devices(workdir):
    """Make a character device node (the numbers of /dev/null)."""
    path = os.path.join(workdir, "device")
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError as e:
        return False, _reason("mknod() of a character device", e)
    if not stat.S_ISCHR(os.lstat(path).st_mode):
        return False, "mknod() of a character device made something else"
    return True, None


def probe_specials(workdir):
    """Make a fifo."""
    path = os.path.join(workdir, "fifo")
    try:
        os.mkfifo(path, 0o600)
    except OSError as e:
        return False, _reason("mkfifo()", e)
    if not stat.S_ISFIFO(os.lstat(path).st_mode):
        return False, "mkfifo() made something else"
    return True, None


PROBES = {
    "acls": probe_acls,
    "xattrs": probe_xattrs,
    "hard_links": probe_hard_links,
    "sparse": probe_sparse,
    "devices": probe_devices,
    "specials": probe_specials,
}


def probe(path, features=FEATURES):
    """Try each feature in a private directory inside ``path``.

    Returns ``(capabilities, reasons)``: ``{feature: bool}`` and ``{feature: why not}`` for each
    feature that is missing. Raises ProbeError when the private directory cannot be made or
    removed; an unexpected OSError of one attempt counts as that feature missing.
    """
    before = os.stat(path)
    try:
        workdir = tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=path)
    except OSError as e:
        raise ProbeError("cannot make a temporary directory in %s: %s" % (path, e.strerror or e))
    capabilities, reasons = {}, {}
    try:
        for feature in features:
            try:
                ok, reason = PROBES[feature](workdir)
            except OSError as e:
                ok, reason = False, _reason("the %s probe" % feature, e)
            capabilities[feature] = ok
            if not ok:
                reasons[feature] = reason
    finally:
        remove_tree(workdir)
        # The directory is often a copy's root: give it back its times, so a comparison with
        # the source (tree_verify, rsync) does not find a directory the probe touched.
        try:
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        except OSError:
            pass
    return capabilities, reasons


def remove_tree(workdir):
    """Remove the private directory; raise ProbeError naming what is left when that fails.

    The probes make only plain entries (files, nodes, links) directly in it.
    """
    errors = []
    try:
        names = os.listdir(workdir)
    except OSError as e:
        names = []
        errors.append("%s: %s" % (workdir, e.strerror or e))
    for name in names:
        try:
            os.unlink(os.path.join(workdir, name))
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append("%s: %s" % (os.path.join(workdir, name), e.strerror or e))
    try:
        os.rmdir(workdir)
    except FileNotFoundError:
        pass
    except OSError as e:
        errors.append("%s: %s" % (workdir, e.strerror or e))
    if errors:
        raise ProbeError("could not remove the probe directory %s: %s" % (workdir, "; ".join(errors)))


def _unescape_mountinfo(field):
    # mountinfo escapes blanks, tabs, newlines and backslashes as \ooo octal.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    """Return ``[{mount_point, fs_type, source, dev}]`` from /proc/self/mountinfo, in order."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or not tail:
            continue
        mounts.append(dict(
            dev=fields[2],
            mount_point=_unescape_mountinfo(fields[4]),
            fs_type=tail[0],
            source=_unescape_mountinfo(tail[1]) if len(tail) > 1 else None,
        ))
    return mounts


def _under(path, mount_point):
    if mount_point == "/":
        return True
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def find_mount(path, mounts, dev=None):
    """Return the mount ``path`` is on: the last (topmost) of the longest matching mount points.

    ``dev`` (``"major:minor"`` of ``path``) breaks ties and skips mounts that are hidden by a
    later one at the same place.
    """
    real = os.path.realpath(path)
    best = None
    for m in mounts:
        if not _under(real, m["mount_point"]):
            continue
        if best is None or len(m["mount_point"]) >= len(best["mount_point"]):
            best = m
    if best is not None and dev is not None and best["dev"] != dev:
        same_dev = [m for m in mounts if m["dev"] == dev and _under(real, m["mount_point"])]
        if same_dev:
            best = max(same_dev, key=lambda m: len(m["mount_point"]))
    return best


def mount_of(path, mountinfo="/proc/self/mountinfo"):
    """Return the mount ``path`` is on (see find_mount), or None when mountinfo is unreadable."""
    try:
        with open(mountinfo) as f:
            text = f.read()
    except OSError:
        return None
    st = os.stat(path)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    return find_mount(path, parse_mountinfo(text), dev)
