# SPDX-License-Identifier: GPL-3.0-or-later
"""fs_capabilities on real temporary directories of the machine running the tests.

What this machine's /tmp can hold is not known in advance: each test of a supported feature
finds out independently (with the plain system call) and is skipped where it is missing. An
unsupported feature is simulated by making the one system call fail the way the kernel would.
"""
from __future__ import annotations

import errno
import os
import stat
import struct

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _fs_capabilities as F
from ansible_collections.nodowntime.storage.plugins.modules import fs_capabilities
from .utils import fail_module, run_module


def _supports(tmp_path, attempt):
    """Run ``attempt(dir)`` in a scratch directory; True unless it raises OSError."""
    scratch = tmp_path / "independent-check"
    scratch.mkdir()
    try:
        attempt(str(scratch))
        return True
    except OSError:
        return False
    finally:
        for name in os.listdir(scratch):
            os.unlink(scratch / name)
        scratch.rmdir()


def _xattr_attempt(d):
    path = os.path.join(d, "f")
    open(path, "w").close()
    os.setxattr(path, "user.test", b"1")


def _mknod_attempt(d):
    os.mknod(os.path.join(d, "dev"), stat.S_IFCHR | 0o600, os.makedev(1, 3))


def _listing(path):
    return sorted(os.listdir(path))


def _failing(real, name, err):
    """Wrap ``real`` so that a call with ``name`` among its arguments raises ``err``."""
    def call(*args, **kwargs):
        if name in args:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)
    return call


@pytest.fixture
def tree(tmp_path):
    """A directory with one file of the user's, which must be all it holds afterwards."""
    d = tmp_path / "data"
    d.mkdir()
    (d / "keep.txt").write_text("user data\n")
    return d


# -- the binary ACL ----------------------------------------------------------------------------

def test_acl_xattr_is_the_kernel_layout():
    data = F.acl_xattr(1000, 2000)
    assert data[:4] == struct.pack("<I", 2)
    assert len(data) == 4 + 6 * 8
    entries = F.parse_acl_xattr(data)
    assert entries == [
        (F.ACL_USER_OBJ, 6, F.ACL_UNDEFINED_ID),
        (F.ACL_USER, 4, 1000),
        (F.ACL_GROUP_OBJ, 4, F.ACL_UNDEFINED_ID),
        (F.ACL_GROUP, 4, 2000),
        (F.ACL_MASK, 4, F.ACL_UNDEFINED_ID),
        (F.ACL_OTHER, 0, F.ACL_UNDEFINED_ID),
    ]
    # The kernel wants the entries sorted by tag.
    assert [e[0] for e in entries] == sorted(e[0] for e in entries)


@pytest.mark.parametrize("data, message", [
    (b"\x02\x00", "not a POSIX ACL"),
    (struct.pack("<I", 2) + b"\x01\x00\x06\x00", "not a POSIX ACL"),
    (struct.pack("<I", 1) + struct.pack("<HHI", 1, 6, 0xFFFFFFFF), "version 1"),
])
def test_parse_acl_xattr_refuses_other_data(data, message):
    with pytest.raises(ValueError, match=message):
        F.parse_acl_xattr(data)


# -- mountinfo ---------------------------------------------------------------------------------

MOUNTINFO = """\
224 160 0:92 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
226 224 0:95 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
229 224 0:97 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw
250 224 254:0 / /srv/my\\040data rw,relatime - ext4 /dev/vda rw
251 224 0:99 / /srv/data rw,relatime - xfs /dev/vdb rw
252 251 0:100 / /srv/data rw,relatime - nfs4 server:/export rw
"""


def test_parse_mountinfo_reads_type_and_unescapes_blanks():
    mounts = F.parse_mountinfo(MOUNTINFO)
    assert [m["fs_type"] for m in mounts] == ["overlay", "proc", "tmpfs", "ext4", "xfs", "nfs4"]
    assert mounts[3]["mount_point"] == "/srv/my data"
    assert mounts[5]["source"] == "server:/export"


@pytest.mark.parametrize("path, dev, fs_type", [
    ("/srv", None, "overlay"),
    ("/tmp/x", None, "tmpfs"),
    ("/tmpfoo", None, "overlay"),
    ("/srv/my data/a", None, "ext4"),
    # Two mounts on one place: the later hides the earlier.
    ("/srv/data/a", None, "nfs4"),
    ("/srv/data/a", "0:100", "nfs4"),
    # The device of the path picks the mount when the later one is not the one seen.
    ("/srv/data/a", "0:99", "xfs"),
])
def test_find_mount_takes_the_longest_and_latest(path, dev, fs_type):
    mount = F.find_mount(path, F.parse_mountinfo(MOUNTINFO), dev)
    assert mount["fs_type"] == fs_type


def test_mount_of_this_machine_finds_a_type(tmp_path):
    mount = F.mount_of(str(tmp_path))
    assert mount is not None and mount["fs_type"]


# -- the module on real directories ------------------------------------------------------------

def test_reports_every_feature_and_leaves_nothing(tree):
    before = _listing(tree)
    result = run_module(fs_capabilities.main, dict(path=str(tree)))
    assert result["changed"] is False
    assert set(result["capabilities"]) == set(F.FEATURES)
    assert result["missing"] == []
    assert set(result["reasons"]) == {k for k, v in result["capabilities"].items() if not v}
    assert result["fs_type"]
    assert _listing(tree) == before


def test_the_probed_directory_keeps_its_times(tree):
    """The directory is often a copy's root: a probe must not leave it looking changed."""
    os.utime(tree, ns=(1_600_000_000_000_000_000, 1_700_000_000_123_456_789))
    run_module(fs_capabilities.main, dict(path=str(tree)))
    st = os.stat(tree)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_600_000_000_000_000_000, 1_700_000_000_123_456_789)


def test_check_mode_gives_the_same_answer(tree):
    real = run_module(fs_capabilities.main, dict(path=str(tree)))
    check = run_module(fs_capabilities.main, dict(path=str(tree)), check_mode=True)
    assert check["capabilities"] == real["capabilities"]
    assert check["changed"] is False
    assert _listing(tree) == ["keep.txt"]


def test_hard_links_fifos_and_sparse_files_on_a_local_file_system(tree):
    # Every local Linux file system a test machine's /tmp lives on holds these.
    caps = run_module(fs_capabilities.main, dict(path=str(tree), require=["hard_links", "specials"]))
    assert caps["capabilities"]["hard_links"] is True
    assert caps["capabilities"]["specials"] is True


def test_user_xattrs_match_an_independent_attempt(tree, tmp_path):
    expected = _supports(tmp_path, _xattr_attempt)
    caps = run_module(fs_capabilities.main, dict(path=str(tree)))["capabilities"]
    assert caps["xattrs"] is expected


def test_devices_match_an_independent_attempt(tree, tmp_path):
    expected = _supports(tmp_path, _mknod_attempt)
    caps = run_module(fs_capabilities.main, dict(path=str(tree)))["capabilities"]
    assert caps["devices"] is expected


def test_acl_read_back_is_the_acl_set(tmp_path):
    path = tmp_path / "f"
    path.write_text("")
    st = os.stat(path)
    try:
        os.setxattr(str(path), F.ACL_XATTR, F.acl_xattr(st.st_uid, st.st_gid))
    except OSError as e:
        pytest.skip("this machine's /tmp holds no POSIX ACLs: %s" % e)
    caps = run_module(fs_capabilities.main, dict(path=str(tmp_path), require=["acls"]))["capabilities"]
    assert caps["acls"] is True
    # Setting the ACL set the group permission bits to the mask, the way setfacl does.
    assert os.stat(path).st_mode & 0o070 == 0o040


def test_missing_acls_fail_a_requirement_naming_the_feature(tree, monkeypatch):
    monkeypatch.setattr(F.os, "setxattr", _failing(os.setxattr, F.ACL_XATTR, errno.EOPNOTSUPP))
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["acls", "hard_links"]))
    assert result["msg"].startswith("require: the file system at %s (%s) cannot hold POSIX ACLs ("
                                    % (tree, result["fs_type"]))
    assert "setting system.posix_acl_access failed: Operation not supported" in result["msg"]
    assert result["missing"] == ["acls"]
    assert result["capabilities"]["acls"] is False
    assert _listing(tree) == ["keep.txt"]


def test_missing_acls_are_only_reported_when_not_required(tree, monkeypatch):
    monkeypatch.setattr(F.os, "setxattr", _failing(os.setxattr, F.ACL_XATTR, errno.EOPNOTSUPP))
    result = run_module(fs_capabilities.main, dict(path=str(tree)))
    assert result["capabilities"]["acls"] is False
    assert result["missing"] == []
    assert "Operation not supported" in result["reasons"]["acls"]


def test_every_missing_requirement_is_named(tree, monkeypatch):
    def no_xattrs(*args, **kwargs):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    def no_mknod(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(F.os, "setxattr", no_xattrs)
    monkeypatch.setattr(F.os, "mknod", no_mknod)
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["xattrs", "devices", "acls", "xattrs"]))
    assert result["missing"] == ["xattrs", "devices", "acls"]
    assert "cannot hold user extended attributes (setting user.nodowntime.probe failed" in result["msg"]
    assert "nor device files (mknod() of a character device failed: Operation not permitted)" in result["msg"]
    assert "nor POSIX ACLs" in result["msg"]
    assert _listing(tree) == ["keep.txt"]


def test_missing_hard_links(tree, monkeypatch):
    def no_link(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(F.os, "link", no_link)
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["hard_links"]))
    assert "cannot hold hard links (link() failed: Operation not permitted)" in result["msg"]


def test_missing_fifos(tree, monkeypatch):
    def no_fifo(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(F.os, "mkfifo", no_fifo)
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["specials"]))
    assert "cannot hold special files (fifos) (mkfifo() failed" in result["msg"]


def test_a_file_system_that_fills_holes_is_not_sparse(tree, monkeypatch):
    real_stat = os.stat

    def filled(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if os.path.basename(str(path)) != "sparse":
            return st
        return os.stat_result(list(st), {"st_blocks": (st.st_size + 511) // 512})

    monkeypatch.setattr(F.os, "stat", filled)
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["sparse"]))
    assert "cannot hold sparse files (a 4194305-byte file with a hole takes" in result["msg"]


def test_an_unexpected_error_in_an_attempt_counts_as_missing_and_is_cleaned_up(tree, monkeypatch):
    def broken(workdir):
        open(os.path.join(workdir, "half-made"), "w").close()
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setitem(F.PROBES, "hard_links", broken)
    result = run_module(fs_capabilities.main, dict(path=str(tree)))
    assert result["capabilities"]["hard_links"] is False
    assert "the hard_links probe failed: Input/output error" == result["reasons"]["hard_links"]
    assert _listing(tree) == ["keep.txt"]


def test_the_probe_directory_is_removed_even_when_an_attempt_crashes(tree, monkeypatch):
    def crash(workdir):
        open(os.path.join(workdir, "half-made"), "w").close()
        raise RuntimeError("boom")

    monkeypatch.setitem(F.PROBES, "sparse", crash)
    with pytest.raises(RuntimeError):
        F.probe(str(tree))
    assert _listing(tree) == ["keep.txt"]


def test_a_probe_directory_that_cannot_be_removed_fails_naming_it(tree, monkeypatch):
    real_rmdir = os.rmdir

    def stuck(path, *args, **kwargs):
        if os.path.basename(path).startswith(F.PROBE_PREFIX):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(F.os, "rmdir", stuck)
    result = fail_module(fs_capabilities.main, dict(path=str(tree)))
    assert result["msg"].startswith("path: could not remove the probe directory %s/%s" % (tree, F.PROBE_PREFIX))
    assert "Device or resource busy" in result["msg"]
    monkeypatch.undo()
    for name in _listing(tree):
        if name.startswith(F.PROBE_PREFIX):
            real_rmdir(tree / name)


def test_an_unwritable_directory_fails_naming_path(tree, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(F.tempfile, "mkdtemp", refuse)
    result = fail_module(fs_capabilities.main, dict(path=str(tree)))
    assert result["msg"] == "path: cannot make a temporary directory in %s: Permission denied" % tree


def test_a_missing_path_fails_naming_path(tmp_path):
    result = fail_module(fs_capabilities.main, dict(path=str(tmp_path / "nope")))
    assert result["msg"].startswith("path: %s does not exist" % (tmp_path / "nope"))


def test_a_file_is_not_a_directory(tree):
    result = fail_module(fs_capabilities.main, dict(path=str(tree / "keep.txt")))
    assert result["msg"].startswith("path: %s is not a directory" % (tree / "keep.txt"))


def test_an_unknown_feature_is_refused(tree):
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["quotas"]))
    assert "require" in result["msg"] and "quotas" in result["msg"]


def test_without_mountinfo_the_type_is_unknown_and_the_message_still_reads(tree, monkeypatch):
    def no_fifo(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(fs_capabilities, "mount_of", lambda path: None)
    monkeypatch.setattr(F.os, "mkfifo", no_fifo)
    result = fail_module(fs_capabilities.main, dict(path=str(tree), require=["specials"]))
    assert result["fs_type"] is None
    assert result["msg"].startswith("require: the file system at %s cannot hold special files" % tree)
