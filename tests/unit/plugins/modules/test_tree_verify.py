# SPDX-License-Identifier: GPL-3.0-or-later
"""nodowntime.storage.tree_verify driven in-process with the real rsync installed here, on real
local trees made in tmp_path (run as root, so owners and groups can differ)."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import TOTAL_KEYS
from ansible_collections.nodowntime.storage.plugins.modules import tree_verify

from .utils import fail_module, run_module

RSYNC = shutil.which("rsync")
# The module runs the real rsync: functional tests.
pytestmark = [pytest.mark.functional, pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")]
STAMP = 1704164645  # 2024-01-02 03:04:05 UTC: every entry gets this mtime unless a test changes it


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def stamp(*roots):
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in dirs + files:
                os.utime(os.path.join(dirpath, name), (STAMP, STAMP), follow_symlinks=False)
        os.utime(root, (STAMP, STAMP))


def copy(src, dst):
    """dst becomes an exact copy of src (rsync itself, so links, ACLs and xattrs come along)."""
    subprocess.run([RSYNC, "-aHAX", "--numeric-ids", "%s/" % src, "%s/" % dst], check=True)


@pytest.fixture
def pair(tmp_path):
    """A source tree of a few kinds of entry and its exact copy."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in ("same", "size", "mtime", "perms", "owner", "group", "content"):
        write(src / ("%s.txt" % name), "%s data\n" % name)
    write(src / "sub" / "deeper" / "inner.txt", "inner\n")
    os.symlink("same.txt", src / "link")
    write(src / "hard-a", "linked\n")
    os.link(src / "hard-a", src / "hard-b")
    stamp(src)
    copy(src, dst)
    return src, dst


def verify(src, dst, check_mode=False, **args):
    return run_module(tree_verify.main, dict(path=str(src), target=str(dst), **args), check_mode=check_mode)


def totals(**counts):
    return dict(dict.fromkeys(TOTAL_KEYS, 0), **counts)


def found(result):
    return {(d["type"], d["path"], d["entry"], d["size"], tuple(d["differs"])) for d in result["differences"]}


def manifest(*roots):
    """Everything a verify must not change, ctime included."""
    seen = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in [""] + dirs + files:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                seen[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                              st.st_ino, st.st_nlink, sorted(os.listxattr(path, follow_symlinks=False)))
    return seen


def test_identical_trees_are_clean(pair):
    src, dst = pair
    result = verify(src, dst, depth="checksum")
    assert result["clean"] and result["totals"] == totals() and result["differences"] == []
    # The tree's top directory, 11 files and symlinks, 2 directories.
    assert result["entries_checked"] == 14
    assert result["changed"] is False and result["report_written"] is False
    assert [p["label"] for p in result["passes"]] == ["tree"] and result["passes"][0]["rc"] == 0


def test_each_kind_of_difference_is_counted(pair):
    src, dst = pair
    write(dst / "size.txt", "size data, longer\n")
    os.chmod(dst / "perms.txt", 0o600)
    os.chown(dst / "owner.txt", 1234, -1)
    os.chown(dst / "group.txt", -1, 2345)
    os.unlink(dst / "link")
    os.symlink("size.txt", dst / "link")
    os.unlink(dst / "hard-b")
    write(dst / "hard-b", "linked\n")
    write(src / "kind-a", "a\n")                 # a file here, a directory there
    write(dst / "kind-a" / "inner.txt", "in\n")
    write(src / "missing.txt", "missing\n")
    write(src / "missing-dir" / "inner.txt", "m\n")
    (src / "missing-empty").mkdir()
    os.mkfifo(src / "missing-fifo")
    write(dst / "orphan.txt", "orphan\n")
    write(dst / "orphan-dir" / "inner.txt", "o\n")
    stamp(src, dst)
    os.utime(dst / "mtime.txt", (STAMP - 3600, STAMP - 3600))
    result = verify(src, dst)
    assert found(result) == {
        ("different", "size.txt", "file", 10, ("size",)),
        ("different", "mtime.txt", "file", 11, ("mtime",)),
        ("different", "perms.txt", "file", 11, ("perms",)),
        ("different", "owner.txt", "file", 11, ("owner",)),
        ("different", "group.txt", "file", 11, ("group",)),
        ("different", "link", "symlink", 0, ("target",)),
        ("different", "hard-b", "file", 7, ("hard_links",)),
        ("missing", "kind-a", "file", 2, ()),
        ("missing", "missing.txt", "file", 8, ()),
        ("missing", "missing-dir", "dir", 0, ()),
        ("missing", "missing-dir/inner.txt", "file", 2, ()),
        ("missing", "missing-empty", "dir", 0, ()),
        ("missing", "missing-fifo", "special", 0, ()),
        ("orphaned", "kind-a/inner.txt", "file", 3, ()),
        ("orphaned", "orphan.txt", "file", 7, ()),
        ("orphaned", "orphan-dir", "dir", 0, ()),
        ("orphaned", "orphan-dir/inner.txt", "file", 2, ()),
    }
    assert result["totals"] == totals(diff_file=7, diff_bytes=61, missing_dir=2, missing_file=4, missing_bytes=12,
                                      orphaned_dir=1, orphaned_file=3, orphaned_bytes=12)
    assert not result["clean"] and result["in_flight"]["totals"] == totals()
    assert [p["label"] for p in result["passes"]] == ["tree", "orphans"]


def test_type_change_with_settle_is_persistent(pair):
    # The recheck replaces a directory by a file: rsync needs --force for that even in a dry run.
    src, dst = pair
    write(src / "kind-a", "a\n")
    write(dst / "kind-a" / "inner.txt", "in\n")
    stamp(src, dst)
    result = verify(src, dst, settle=0.01)
    assert found(result) == {("missing", "kind-a", "file", 2, ()), ("orphaned", "kind-a/inner.txt", "file", 3, ())}
    assert result["in_flight"]["totals"] == totals()
    assert [p["label"] for p in result["passes"]] == ["tree", "recheck", "orphans"]


def test_checksum_finds_what_attributes_do_not(pair):
    src, dst = pair
    write(dst / "content.txt", "CONTENT data\n")  # same size
    stamp(dst)
    assert verify(src, dst)["clean"]
    result = verify(src, dst, depth="checksum")
    assert found(result) == {("different", "content.txt", "file", 13, ("checksum",))}
    assert result["totals"] == totals(diff_file=1, diff_bytes=13) and result["depth"] == "checksum"


def acl_with_user(uid):
    # The kernel's system.posix_acl_access format (version 2): tag, permissions, id per entry.
    entries = [(0x01, 6, 0xFFFFFFFF), (0x02, 4, uid), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
               (0x20, 4, 0xFFFFFFFF)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def make_acl_difference(src, dst):
    try:
        os.setxattr(src / "perms.txt", "system.posix_acl_access", acl_with_user(1234))
    except OSError as e:
        pytest.skip("this file system holds no POSIX ACLs: %s" % e)


def make_xattr_difference(src, dst):
    try:
        os.setxattr(src / "same.txt", "user.origin", b"source")
    except OSError as e:
        pytest.skip("this file system holds no user.* xattrs: %s" % e)


def make_times_difference(src, dst):
    os.utime(dst / "mtime.txt", (STAMP - 60, STAMP - 60))


def make_dir_times_difference(src, dst):
    os.utime(dst / "sub", (STAMP - 60, STAMP - 60))


def make_hard_links_difference(src, dst):
    os.unlink(dst / "hard-b")
    write(dst / "hard-b", "linked\n")
    os.utime(dst / "hard-b", (STAMP, STAMP))
    os.utime(dst, (STAMP, STAMP))


def make_specials_difference(src, dst):
    os.mkfifo(src / "fifo")
    os.utime(src, (STAMP, STAMP))


@pytest.mark.parametrize("ignore,make,expected", [
    (["times"], make_times_difference, ("different", "mtime.txt", "file", 11, ("mtime",))),
    (["dir_times"], make_dir_times_difference, ("different", "sub", "dir", 0, ("mtime",))),
    (["perms", "acls"], lambda src, dst: os.chmod(dst / "perms.txt", 0o600),
     ("different", "perms.txt", "file", 11, ("perms",))),
    (["owner"], lambda src, dst: os.chown(dst / "owner.txt", 1234, -1),
     ("different", "owner.txt", "file", 11, ("owner",))),
    (["group"], lambda src, dst: os.chown(dst / "group.txt", -1, 2345),
     ("different", "group.txt", "file", 11, ("group",))),
    (["hard_links"], make_hard_links_difference, ("different", "hard-b", "file", 7, ("hard_links",))),
    (["specials"], make_specials_difference, ("missing", "fifo", "special", 0, ())),
    (["acls"], make_acl_difference, ("different", "perms.txt", "file", 11, ("acl",))),
    (["xattrs"], make_xattr_difference, ("different", "same.txt", "file", 10, ("xattr",))),
])
def test_ignore_leaves_out_exactly_its_attribute(pair, ignore, make, expected):
    src, dst = pair
    make(src, dst)
    assert found(verify(src, dst)) == {expected}
    result = verify(src, dst, ignore=ignore)
    assert result["clean"] and result["differences"] == [] and result["ignore"] == ignore


def test_ignore_times_still_sees_a_size_difference(pair):
    src, dst = pair
    write(dst / "size.txt", "size data, longer\n")
    os.utime(dst / "size.txt", (STAMP - 60, STAMP - 60))
    assert found(verify(src, dst, ignore=["times"])) == {("different", "size.txt", "file", 10, ("size",))}


def test_check_mode_same_result_and_no_report(pair, tmp_path):
    src, dst = pair
    write(src / "missing.txt", "missing\n")
    stamp(src)
    report = tmp_path / "out" / "report.json"
    checked = verify(src, dst, check_mode=True, report=str(report))
    real = verify(src, dst)
    assert not report.exists() and checked["report_written"] is False
    assert checked["changed"] is False and real["changed"] is False
    for key in ("totals", "differences", "in_flight", "entries_checked", "clean"):
        assert checked[key] == real[key]
    assert checked["totals"] == totals(missing_file=1, missing_bytes=8)


def test_report_is_the_result(pair, tmp_path):
    src, dst = pair
    write(dst / "orphan.txt", "orphan\n")
    stamp(dst)
    report = tmp_path / "reports" / "verify.json"
    result = verify(src, dst, report=str(report))
    assert result["report_written"] is True and result["changed"] is False
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written == {key: value for key, value in result.items() if key not in ("changed", "report_written")}
    assert written["totals"] == totals(orphaned_file=1, orphaned_bytes=7)
    assert oct(report.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(report.parent) == ["verify.json"]  # no temporary file left beside it


def test_failed_run_leaves_no_report(pair, tmp_path):
    src, dummy = pair
    report = tmp_path / "reports" / "verify.json"
    result = fail_module(tree_verify.main, dict(path=str(src), target="rsync://127.0.0.1:1/none",
                                                connect_timeout=5, report=str(report)))
    assert result["msg"].startswith("target: ") and result["rc"] == 10
    assert not report.exists() and not (report.parent.exists() and os.listdir(report.parent))


def test_nothing_changes_in_either_tree(pair, tmp_path):
    src, dst = pair
    write(src / "missing-dir" / "inner.txt", "m\n")
    write(dst / "orphan-dir" / "inner.txt", "o\n")
    write(src / "kind-a", "a\n")
    write(dst / "kind-a" / "inner.txt", "in\n")
    os.chmod(dst / "perms.txt", 0o600)
    stamp(src, dst)
    before = manifest(src, dst)
    result = verify(src, dst, depth="checksum", settle=0.01, report=str(tmp_path / "report.json"))
    assert [p["label"] for p in result["passes"]] == ["tree", "recheck", "orphans"]
    assert result["totals"]["diff_file"] == 1 and result["totals"]["orphaned_file"] == 2
    assert manifest(src, dst) == before


@pytest.mark.parametrize("args,option", [
    (dict(path="/nonexistent/tree"), "path"),
    (dict(target="relative/dir"), "target"),
    (dict(target="/nonexistent/copy"), "target"),
    (dict(password_file="/etc/hostname"), "password_file"),
    (dict(target="127.0.0.1::share", password_file="/nonexistent/password"), "password_file"),
    (dict(rsh="ssh -o BatchMode=yes"), "rsh"),
    (dict(settle=-1), "settle"),
    (dict(progress_interval=-1), "progress_interval"),
    (dict(progress_file="/etc/hostname/verify.progress"), "progress_file"),
    (dict(limit=-1), "limit"),
    (dict(ignore=["perms"]), "ignore"),
    (dict(ignore=["colour"]), "ignore"),
])
def test_bad_input_names_the_option(pair, args, option):
    src, dst = pair
    result = fail_module(tree_verify.main, dict(dict(path=str(src), target=str(dst)), **args))
    assert option in result["msg"].split(":")[0] or result["msg"].startswith(option + ":"), result["msg"]


def test_second_name_that_arrives_as_a_file_of_its_own_during_settle_is_a_lasting_split(pair):
    """A hard link made on the source just before the verify: missing on the target at first,
    then shipped alone (as lsyncd does) while the verify waits. The recheck must list the group's
    other name too, or rsync would see nothing wrong and call it in flight."""
    from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_verify

    src, dst = pair
    os.link(src / "same.txt", src / "same-second-name")

    def ship_alone(seconds):
        assert seconds == 0.5
        shutil.copy2(src / "same-second-name", dst / "same-second-name")
        # rsync -a ships the directory's time with the new name; without it the root's mtime
        # differs whenever the link and the copy fall into different seconds.
        st = os.stat(src)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

    check = _tree_verify.TreeVerify(RSYNC, str(src), str(dst), _tree_verify.compare_options("attributes", []), [],
                                    settle=0.5, sleep=ship_alone)
    report = check.run()
    # rsync names the member it would link to the group: here the first name, same.txt.
    assert [(d["type"], d["path"], d["differs"]) for d in report["differences"]] == [
        ("different", "same.txt", ["hard_links"])]
    assert report["differs_counts"] == {"hard_links": 1}
    # Missing at first, there by the recheck: that part was in flight.
    assert [(d["type"], d["path"]) for d in report["in_flight"]["differences"] if d["entry"] == "file"] == [
        ("missing", "same-second-name")]


# -- the progress file ----------------------------------------------------------------------------

def progress_lines(path):
    """Every line of a progress file, each of which must be a JSON object with a text."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines and all(isinstance(line["text"], str) and line["text"] for line in lines)
    return lines


def test_progress_file_follows_every_pass_and_ends_with_the_counts(pair, tmp_path):
    src, dst = pair
    write(dst / "size.txt", "size data, longer\n")
    write(src / "missing.txt", "missing\n")
    write(dst / "orphan.txt", "orphan\n")
    stamp(src, dst)
    progress = tmp_path / "log" / "verify.progress"
    result = verify(src, dst, settle=0.2, progress_file=str(progress), progress_interval=0)
    assert [p["label"] for p in result["passes"]] == ["tree", "recheck", "orphans"]
    lines = progress_lines(progress)
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]
    last = lines[-1]
    assert last["outcome"] == "3 lasting differences" and "3 lasting differences" in last["text"]
    assert last["files_done"] == last["files_total"] == result["entries_checked"] == 15
    assert last["what"] == "verify" and last["rate_unit"] == "files" and last["bytes_done"] is None
    # rsync's own counts while the whole tree is compared, against the whole tree.
    tree = [line for line in lines if line["note"].startswith("pass 1:") and line["files_done"]]
    assert tree and tree[-1]["files_done"] == tree[-1]["files_total"] == 15
    assert all(line["files_done"] <= line["files_total"] for line in tree)
    assert [line["percent"] for line in tree] == sorted(line["percent"] for line in tree)
    notes = [line["note"] for line in lines]
    assert any(note.startswith("settling: 3 differences checked again") for note in notes)
    assert any(note.startswith("pass 2: the 2 differences again") for note in notes)
    assert any(note.startswith("pass 3: the 1 entry only on the target") for note in notes)


def test_progress_of_a_clean_verify_in_check_mode(pair, tmp_path):
    src, dst = pair
    progress = tmp_path / "verify.progress"
    progress.write_text("a line of an earlier run\n")
    result = verify(src, dst, check_mode=True, progress_file=str(progress))
    lines = progress_lines(progress)  # the earlier run's line is gone
    assert result["clean"] and lines[-1]["final"] and lines[-1]["outcome"] == "clean"
    assert lines[-1]["files_done"] == lines[-1]["files_total"] == result["entries_checked"] == 14
    assert lines[-1]["note"] == "" and lines[-1]["text"].endswith("clean in 0s")


def test_progress_of_a_failed_verify_says_why(pair, tmp_path):
    src, dummy = pair
    progress = tmp_path / "verify.progress"
    result = fail_module(tree_verify.main, dict(path=str(src), target="rsync://127.0.0.1:1/none", connect_timeout=5,
                                                progress_file=str(progress)))
    last = progress_lines(progress)[-1]
    assert last["final"] and last["outcome"] == "failed" and last["note"].startswith("target: rsync could not")
    assert result["msg"].startswith(last["note"][:40])


def test_without_a_progress_file_rsync_reports_no_progress(pair):
    from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_verify

    seen = []

    def runner(argv, on_line):
        seen.append(argv)
        return _tree_verify.run_streaming(argv, on_line)

    src, dst = pair
    write(dst / "orphan.txt", "orphan\n")
    stamp(dst)
    check = _tree_verify.TreeVerify(RSYNC, str(src), str(dst), _tree_verify.compare_options("attributes", []), [],
                                    runner=runner)
    assert check.run()["totals"] == totals(orphaned_file=1, orphaned_bytes=7)
    assert len(seen) == 2 and not any("--info=progress2" in argv for argv in seen)


def test_progress_file_of_refused_input_says_so(pair, tmp_path):
    src, dst = pair
    progress = tmp_path / "verify.progress"
    progress.write_text(json.dumps(dict(text="an earlier run: clean", final=True)) + "\n")
    result = fail_module(tree_verify.main, dict(path=str(src), target=str(dst) + "-nosuch",
                                                progress_file=str(progress)))
    lines = progress_lines(progress)
    assert len(lines) == 1 and lines[0]["final"] and lines[0]["outcome"] == "failed"
    assert lines[0]["note"] == result["msg"] == "target: %s-nosuch is not a directory on this host" % dst
