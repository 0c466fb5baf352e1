# SPDX-License-Identifier: GPL-3.0-or-later
"""nodowntime.storage.rsync_copy driven in-process with the real rsync installed here, copying
between local directories and to a real rsync daemon on 127.0.0.1 (ephemeral port)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync_runner
from ansible_collections.nodowntime.storage.plugins.modules import rsync_copy

from ..helpers import free_port
from .utils import captured_warnings, fail_module, run_module

RSYNC = shutil.which("rsync")
# Every test runs the real rsync (and some a real rsync daemon): functional tests.
pytestmark = [pytest.mark.functional, pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")]


def tree(root, spec):
    for path, content in spec.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(content if isinstance(content, bytes) else content.encode())


def listing(root):
    result = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                result[os.path.relpath(full, root)] = handle.read()
    return result


@pytest.fixture
def dirs(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    spec = {"top.txt": "top\n"}
    for d in ("a", "b", "c", "d"):
        for i in range(10):
            spec["%s/sub/f%d" % (d, i)] = "%s %d\n" % (d, i)
    tree(src, spec)
    return src, dst, tmp_path


def args(src, dst, tmp_path, **extra):
    base = dict(src=str(src), dest=str(dst), lock_file=str(tmp_path / "copy.lock"))
    base.update(extra)
    return base


@pytest.fixture
def daemon(tmp_path):
    """A real rsync daemon on 127.0.0.1 with a writable module `data`."""
    module_dir = tmp_path / "module"
    module_dir.mkdir()
    conf = tmp_path / "rsyncd.conf"
    conf.write_text("use chroot = no\nuid = root\ngid = root\n[data]\npath = %s\nread only = false\n" % module_dir)
    port = free_port()
    proc = subprocess.Popen([RSYNC, "--daemon", "--no-detach", "--config=%s" % conf, "--address=127.0.0.1",
                             "--port=%d" % port, "--log-file=%s" % (tmp_path / "rsyncd.log")])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield "rsync://127.0.0.1:%d/data" % port, module_dir, proc.pid
    proc.terminate()
    proc.wait(10)


def test_check_mode_copies_nothing_and_reports_the_changes(dirs):
    src, dst, tmp = dirs
    result = run_module(rsync_copy.main, args(src, dst, tmp), check_mode=True)
    assert result["changed"] and result["rsync_rc"] == 0
    assert listing(dst) == {}
    assert {"change": ">f+++++++++", "path": "top.txt"} in result["changes"]
    assert "--dry-run" in result["workers"][0]["cmd"]


def test_copy_then_nothing_to_do(dirs):
    src, dst, tmp = dirs
    first = run_module(rsync_copy.main, args(src, dst, tmp))
    assert first["changed"] and first["rsync_rc"] == 0
    assert listing(dst) == listing(src)
    assert first["stats"]["files_transferred"] == 41
    assert first["stats"]["bytes_transferred"] == sum(len(v) for v in listing(src).values())
    assert first["stats"]["rate"] > 0
    again = run_module(rsync_copy.main, args(src, dst, tmp))
    assert not again["changed"] and again["changes_count"] == 0
    assert again["stats"]["files_transferred"] == 0
    check = run_module(rsync_copy.main, args(src, dst, tmp), check_mode=True)
    assert not check["changed"]


def test_delete_and_exclude(dirs):
    src, dst, tmp = dirs
    tree(dst, {"stale.txt": "old\n", "a/sub/stale": "old\n", "keep.tmp": "excluded\n"})
    tree(src, {"scratch.tmp": "not copied\n"})
    kept = run_module(rsync_copy.main, args(src, dst, tmp, exclude=["*.tmp"]))
    assert (dst / "stale.txt").exists() and kept["deleted"] == 0
    result = run_module(rsync_copy.main, args(src, dst, tmp, exclude=["*.tmp"], delete=True))
    assert result["changed"] and result["deleted"] == 2
    assert not (dst / "stale.txt").exists() and not (dst / "a/sub/stale").exists()
    assert (dst / "keep.tmp").exists() and not (dst / "scratch.tmp").exists()


def test_parallel_workers_split_top_level_directories_and_delete_at_top(dirs):
    src, dst, tmp = dirs
    tree(dst, {"gone/x": "stale dir\n", "gone.txt": "stale file\n"})
    result = run_module(rsync_copy.main, args(src, dst, tmp, workers=3, delete=True, bwlimit="30MiB"))
    assert [w["name"] for w in result["workers"]] == ["top", "worker1", "worker2", "worker3"]
    assert sorted(sum((w["dirs"] for w in result["workers"]), [])) == ["a", "b", "c", "d"]
    assert result["bwlimit_per_worker"] == 10 * 1024
    assert "--bwlimit=%d" % (30 * 1024) in result["workers"][0]["cmd"]
    assert "--bwlimit=%d" % (10 * 1024) in result["workers"][1]["cmd"]
    assert listing(dst) == listing(src)
    assert not (dst / "gone").exists()
    assert result["stats"]["files_transferred"] == 41
    again = run_module(rsync_copy.main, args(src, dst, tmp, workers=3, delete=True))
    assert not again["changed"]


def test_parallel_check_mode_predicts_what_the_real_copy_does(dirs):
    # --dry-run: the top pass only pretends to create the top-level directories, so each worker
    # itemizes its directories again; check mode must not report them twice.
    src, dst, tmp = dirs
    check = run_module(rsync_copy.main, args(src, dst, tmp, workers=3), check_mode=True)
    assert listing(dst) == {}
    real = run_module(rsync_copy.main, args(src, dst, tmp, workers=3))
    assert sorted(c["path"] for c in check["changes"]) == sorted(c["path"] for c in real["changes"])
    assert check["changes_count"] == real["changes_count"]
    assert check["stats"]["files_created"] == real["stats"]["files_created"]
    assert check["stats"]["files_transferred"] == real["stats"]["files_transferred"]


def test_a_second_run_says_already_running(dirs):
    src, dst, tmp = dirs
    lock = tmp / "copy.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242\n")
        result = fail_module(rsync_copy.main, args(src, dst, tmp))
    finally:
        os.close(fd)
    assert result["already_running"] is True
    assert result["msg"].startswith("already running (lock %s held by PID 4242)" % lock)
    assert listing(dst) == {}
    # once released, the copy runs
    assert run_module(rsync_copy.main, args(src, dst, tmp))["changed"]


@pytest.fixture
def lock_base(tmp_path, monkeypatch):
    """The default lock directory's parent, moved into the test's directory."""
    base = tmp_path / "run-lock"
    base.mkdir()
    monkeypatch.setattr(_rsync_runner, "LOCK_BASES", (str(base), "/nonexistent"))
    return base


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the default lock directory must be root's")


@root_only
def test_default_lock_is_named_for_the_destination_in_a_directory_of_root(dirs, lock_base):
    src, dst, tmp = dirs
    params = args(src, dst, tmp)
    del params["lock_file"]
    result = run_module(rsync_copy.main, params)
    expected = lock_base / "nodowntime" / ("rsync-copy-%s.lock" % str(dst).strip("/").replace("/", "_"))
    assert result["lock_file"] == str(expected)
    st = os.lstat(lock_base / "nodowntime")
    assert st.st_uid == 0 and oct(st.st_mode & 0o7777) == oct(0o755)
    assert expected.read_text() == "%d\n" % os.getpid()


@root_only
@pytest.mark.parametrize("make,found", [
    (lambda path: (path.mkdir(), path.chmod(0o777)), "a directory, uid 0, mode 0777"),
    (lambda path: (path.mkdir(), path.chmod(0o775)), "a directory, uid 0, mode 0775"),
    (lambda path: (path.mkdir(), path.chmod(0o755), os.chown(path, 1234, 1234)), "a directory, uid 1234, mode 0755"),
    (lambda path: path.symlink_to(path.parent), "a symbolic link"),
    (lambda path: path.write_text("x"), "a regular file"),
])
def test_an_unsafe_default_lock_directory_is_refused(dirs, lock_base, make, found):
    src, dst, tmp = dirs
    params = args(src, dst, tmp)
    del params["lock_file"]
    directory = lock_base / "nodowntime"
    make(directory)
    result = fail_module(rsync_copy.main, params)
    assert result["msg"].startswith("lock_file: the default lock directory %s must be a directory owned by root"
                                    % directory)
    assert found in result["msg"]
    assert listing(dst) == {}
    assert "rsync-copy" not in " ".join(os.listdir(lock_base))


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_left_alone(dirs):
    src, dst, tmp = dirs
    precious = tmp / "precious.conf"
    precious.write_text("keep me\n")
    before = os.stat(precious)
    (tmp / "copy.lock").symlink_to(precious)
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s is a symbolic link" % (tmp / "copy.lock"))
    assert "already_running" not in result
    assert precious.read_text() == "keep me\n"
    assert os.stat(precious).st_mtime_ns == before.st_mtime_ns
    assert listing(dst) == {}


def test_a_dangling_symlink_at_the_lock_path_creates_nothing(dirs):
    src, dst, tmp = dirs
    (tmp / "copy.lock").symlink_to(tmp / "planted")
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s is a symbolic link" % (tmp / "copy.lock"))
    assert not (tmp / "planted").exists()


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"12 34\n", b"123\n456\n"])
def test_an_existing_file_that_is_not_a_lock_file_is_refused_and_unchanged(dirs, content):
    src, dst, tmp = dirs
    lock = tmp / "copy.lock"
    lock.write_bytes(content)
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s " % lock)
    assert "not a lock file of this module" in result["msg"] and "refusing" in result["msg"]
    assert lock.read_bytes() == content
    assert listing(dst) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to give the file away")
def test_a_lock_file_of_another_user_is_refused_and_unchanged(dirs):
    src, dst, tmp = dirs
    lock = tmp / "copy.lock"
    lock.write_text("4242\n")
    os.chown(lock, 1234, 1234)
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s belongs to uid 1234, not to this user (uid 0)" % lock)
    assert lock.read_text() == "4242\n"


def test_a_hard_linked_lock_file_is_refused_and_unchanged(dirs):
    src, dst, tmp = dirs
    other = tmp / "elsewhere"
    other.write_text("4242\n")
    os.link(other, tmp / "copy.lock")
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s has 2 hard links" % (tmp / "copy.lock"))
    assert other.read_text() == "4242\n"


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(dirs, kind):
    src, dst, tmp = dirs
    lock = tmp / "copy.lock"
    lock.mkdir() if kind == "directory" else os.mkfifo(lock)
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["msg"].startswith("lock_file: %s is a" % lock) and "not a regular file" in result["msg"]


def test_a_stale_lock_file_of_an_earlier_run_is_reused(dirs):
    src, dst, tmp = dirs
    lock = tmp / "copy.lock"
    lock.write_text("4194303\n")  # an earlier run's PID, longer than ours
    inode = os.stat(lock).st_ino
    result = run_module(rsync_copy.main, args(src, dst, tmp))
    assert result["changed"] and result["lock_file"] == str(lock)
    assert lock.read_text() == "%d\n" % os.getpid()
    assert os.stat(lock).st_ino == inode


def test_a_new_lock_file_is_created_with_the_pid(dirs):
    src, dst, tmp = dirs
    lock = tmp / "locks" / "copy.lock"
    result = run_module(rsync_copy.main, args(src, dst, tmp, lock_file=str(lock)))
    assert result["changed"] and result["lock_file"] == str(lock)
    assert lock.read_text() == "%d\n" % os.getpid()
    assert oct(os.stat(lock).st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _linked_tree(src):
    tree(src, {"a/one": "linked\n", "a/more": "a\n", "b/other": "b\n", "c/x": "c\n", "d/y": "d\n"})
    os.makedirs(src / "b" / "deep")
    os.link(src / "a" / "one", src / "b" / "deep" / "two")


def test_hard_links_with_workers_arrive_as_one_inode(dirs):
    src, dst, tmp = dirs
    _linked_tree(src)
    params = args(src, dst, tmp, workers=2, hard_links=True)
    check = run_module(rsync_copy.main, params, check_mode=True)
    assert check["changed"] and listing(dst) == {}
    result = run_module(rsync_copy.main, params)
    assert "--hard-links" in result["workers"][1]["cmd"]
    holder = [w for w in result["workers"] if "a" in w["dirs"]]
    assert len(holder) == 1 and "b" in holder[0]["dirs"]
    one, two = os.stat(dst / "a" / "one"), os.stat(dst / "b" / "deep" / "two")
    assert one.st_ino == two.st_ino and one.st_nlink == 2
    assert check["changes_count"] == result["changes_count"]
    linked = [c["path"] for c in result["changes"] if c["change"] == "hf+++++++++"]
    assert len(linked) == 1 and linked[0] in ("a/one", "b/deep/two")
    assert not run_module(rsync_copy.main, params)["changed"]
    assert not run_module(rsync_copy.main, params, check_mode=True)["changed"]


def test_without_hard_links_the_names_become_separate_files(dirs):
    src, dst, tmp = dirs
    _linked_tree(src)
    run_module(rsync_copy.main, args(src, dst, tmp, workers=2))
    assert os.stat(dst / "a" / "one").st_ino != os.stat(dst / "b" / "deep" / "two").st_ino


def test_a_linked_top_level_file_makes_one_rsync_with_a_warning(dirs):
    src, dst, tmp = dirs
    _linked_tree(src)
    os.link(src / "c" / "x", src / "x.top")
    with captured_warnings() as warnings:
        result = run_module(rsync_copy.main, args(src, dst, tmp, workers=3, hard_links=True))
    assert [w["name"] for w in result["workers"]] == ["all"]
    assert len(warnings) == 1 and warnings[0].startswith("hard_links: a top-level file of %s" % src)
    assert os.stat(dst / "x.top").st_ino == os.stat(dst / "c" / "x").st_ino
    assert os.stat(dst / "a" / "one").st_ino == os.stat(dst / "b" / "deep" / "two").st_ino


def test_sparse_files_arrive_with_holes(dirs):
    src, dst, tmp = dirs
    size = 16 * 1024 * 1024
    with open(src / "image.raw", "wb") as handle:
        handle.truncate(size)
        handle.seek(size // 2)
        handle.write(b"data" * 1024)
    if os.stat(src / "image.raw").st_blocks * 512 > size // 4:
        pytest.skip("this file system does not keep holes")
    plain = tmp / "plain"
    plain.mkdir()
    run_module(rsync_copy.main, args(src, plain, tmp))
    assert os.stat(plain / "image.raw").st_blocks * 512 >= size  # rsync -a writes the zeros
    result = run_module(rsync_copy.main, args(src, dst, tmp, sparse=True))
    assert "--sparse" in result["workers"][0]["cmd"]
    copied = os.stat(dst / "image.raw")
    assert copied.st_size == size and copied.st_blocks * 512 < size // 16
    assert (dst / "image.raw").read_bytes() == (src / "image.raw").read_bytes()


def test_xattrs_arrive(dirs):
    src, dst, tmp = dirs
    try:
        os.setxattr(src / "top.txt", "user.nodowntime", b"carried")
    except OSError as e:
        pytest.skip("user xattrs not supported here: %s" % e)
    run_module(rsync_copy.main, args(src, dst, tmp))
    assert "user.nodowntime" not in os.listxattr(dst / "top.txt")
    result = run_module(rsync_copy.main, args(src, dst, tmp, xattrs=True, acls=True))
    assert result["changed"] and {"--xattrs", "--acls"} <= set(result["workers"][0]["cmd"])
    assert os.getxattr(dst / "top.txt", "user.nodowntime") == b"carried"
    assert not run_module(rsync_copy.main, args(src, dst, tmp, xattrs=True, acls=True))["changed"]


def test_exit_23_fails_and_lists_the_files(dirs):
    src, dst, tmp = dirs
    tree(dst, {"top.txt/blocker": "a directory where the source has a file\n"})
    result = fail_module(rsync_copy.main, args(src, dst, tmp))
    assert result["rsync_rc"] == 23
    assert "exited 23" in result["msg"] and "top.txt" in result["msg"]
    assert {"path": "top.txt", "error": "could not make way for new regular file"} in result["failed_files"]


def test_bad_bwlimit_names_the_value(dirs):
    src, dst, tmp = dirs
    result = fail_module(rsync_copy.main, args(src, dst, tmp, bwlimit="10 Mbit"))
    assert "bwlimit='10 Mbit'" in result["msg"]


def test_missing_source_fails(dirs):
    _src, dst, tmp = dirs
    result = fail_module(rsync_copy.main, args(tmp / "nope", dst, tmp))
    assert "is not a directory" in result["msg"]


def test_push_to_daemon_writes_progress(dirs, daemon):
    src, _dst, tmp = dirs
    url, module_dir, daemon_pid = daemon
    progress = tmp / "progress.log"
    result = run_module(rsync_copy.main, args(src, url, tmp, delete=True, progress_file=str(progress),
                                              progress_interval=0))
    assert result["rsync_rc"] == 0 and result["changed"]
    assert listing(module_dir) == listing(src)
    assert "--contimeout=30" in result["workers"][0]["cmd"]
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert lines[0]["note"] == "copying %s to %s with 1 rsync process(es)" % (src, url)
    assert lines[0]["bytes_done"] == 0 and not lines[0]["final"]
    last = lines[-1]
    assert last["final"] and last["outcome"] == "done"
    assert last["bytes_done"] == result["stats"]["bytes_transferred"] > 0
    # The scan beside the copy found what rsync copied: the whole tree's file bytes.
    assert last["bytes_total"] == sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    assert last["percent"] == 100 and "(100%)" in last["text"] and "done in" in last["text"]


def test_daemon_unreachable_fails_with_meaning(dirs):
    src, _dst, tmp = dirs
    port = free_port()
    result = fail_module(rsync_copy.main, args(src, "rsync://127.0.0.1:%d/data" % port, tmp))
    assert result["rsync_rc"] == 10 and "error in socket I/O" in result["msg"]


def _rsync_children(exclude):
    """rsync processes this test process started (the module's), but not the daemon."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/comm" % entry) as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and comm == "rsync" and int(entry) != exclude:
            pids.append(int(entry))
    return pids


def test_vanished_files_exit_24_is_success_with_a_warning(tmp_path, daemon):
    url, _module_dir, _pid = daemon
    src = tmp_path / "live"
    tree(src, {"z/v%02d" % i: os.urandom(4096) for i in range(30)})
    done = threading.Event()

    def vanish():
        time.sleep(1.0)
        for i in range(20, 30):
            os.unlink(src / "z" / ("v%02d" % i))
        done.set()

    threading.Thread(target=vanish, daemon=True).start()
    with captured_warnings() as warnings:
        result = run_module(rsync_copy.main, args(src, url, tmp_path, bwlimit="40K"))
    assert done.is_set()
    assert result["rsync_rc"] == 24
    assert result["vanished"] and all(p.startswith(str(src / "z" / "v2")) for p in result["vanished"])
    assert warnings and "vanished during the copy (rsync exit 24" in warnings[0]


def test_killed_copy_resumes_from_the_partial_file(tmp_path, daemon):
    url, module_dir, daemon_pid = daemon
    src = tmp_path / "big"
    size = 6 * 1024 * 1024
    tree(src, {"big.bin": os.urandom(size)})
    outcome = {}

    def copy():
        try:
            outcome["result"] = run_module(rsync_copy.main, args(src, url, tmp_path, bwlimit="2M"))
        except Exception as e:  # noqa: BLE001 - the failure is the point
            outcome["error"] = e

    thread = threading.Thread(target=copy)
    thread.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        temps = [n for n in os.listdir(module_dir) if n.startswith(".big.bin.")]
        if temps and os.path.getsize(module_dir / temps[0]) > size // 4:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the copy never got going")
    children = _rsync_children(exclude=daemon_pid)
    assert children
    for pid in children:
        os.kill(pid, 15)
    thread.join(30)
    failure = outcome["error"].result
    assert failure["rsync_rc"] == 20 and "run again to resume" in failure["msg"]
    deadline = time.time() + 10
    while time.time() < deadline and not (module_dir / ".rsync-partial" / "big.bin").exists():
        time.sleep(0.1)
    kept = os.path.getsize(module_dir / ".rsync-partial" / "big.bin")
    assert kept > size // 4
    resumed = run_module(rsync_copy.main, args(src, url, tmp_path))
    assert resumed["rsync_rc"] == 0
    assert (module_dir / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    assert resumed["stats"]["matched_bytes"] >= kept - 65536
    assert resumed["stats"]["literal_bytes"] < size - kept // 2
    assert not (module_dir / ".rsync-partial").exists()
