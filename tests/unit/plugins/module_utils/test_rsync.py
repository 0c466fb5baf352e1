# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers of _rsync, on output recorded from real rsync 3.2.7 runs (fixtures/rsync-3.2.7,
made by capture.sh and vanish.sh in that directory, in a container of the lab image)."""
from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync

FIX = Path(__file__).parent / "fixtures" / "rsync-3.2.7"


def fixture(name):
    # Outputs holding progress lines (which end in \r) are stored gzipped, byte for byte.
    packed = FIX / (name + ".gz")
    if packed.exists():
        return gzip.decompress(packed.read_bytes()).decode("utf-8")
    return (FIX / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("value,expected", [
    ("0", 0),
    ("4096", 4096 * 1024),
    (4096, 4096 * 1024),
    ("512K", 512 * 1024),
    ("512KiB", 512 * 1024),
    ("512KB", 512 * 1000),
    ("40M", 40 * 1024 ** 2),
    ("40MiB", 40 * 1024 ** 2),
    ("40mb", 40 * 1000 ** 2),
    ("1.5G", int(1.5 * 1024 ** 3)),
    ("1280MiB", 1280 * 1024 ** 2),
    ("2048B", 2048),
])
def test_parse_bwlimit_units(value, expected):
    assert _rsync.parse_bwlimit(value) == expected


@pytest.mark.parametrize("value", ["", "fast", "10 Mbit", "-5", "4X", "1,000"])
def test_parse_bwlimit_refuses_nonsense_naming_the_value(value):
    with pytest.raises(ValueError) as e:
        _rsync.parse_bwlimit(value)
    assert repr(value) in str(e.value)
    assert "KiB" in str(e.value)


def test_split_bwlimit_divides_the_total_between_workers():
    assert _rsync.split_bwlimit(0, 4) == 0
    assert _rsync.split_bwlimit(40 * 1024 ** 2, 4) == 10 * 1024
    assert _rsync.split_bwlimit(40 * 1024 ** 2, 1) == 40 * 1024
    assert _rsync.split_bwlimit(1024, 8) == 1  # never 0, which would mean unlimited


def test_dest_kinds_and_lock_names():
    assert _rsync.dest_is_daemon("new::data")
    assert _rsync.dest_is_daemon("rsync://new:8873/data/sub")
    assert not _rsync.dest_is_daemon("root@new:/srv/data")
    assert not _rsync.dest_is_daemon("/srv/copy")
    assert _rsync.lock_name("new::data") == "rsync-copy-new_data.lock"
    assert _rsync.lock_name("new::data") != _rsync.lock_name("new::media")


def test_full_copy_output():
    items, stats = _rsync.parse_stdout(fixture("full.stdout"))
    files = [path for code, path in items if code[1] == "f"]
    dirs = [path for code, path in items if code[1] == "d"]
    assert len(files) == 121 and "top.txt" in files and "a/sub/f1" in files
    assert "a/" in dirs and "c/sub/" in dirs
    assert stats["files"] == 128
    assert stats["files_transferred"] == 121
    assert stats["files_created"] == 127
    assert stats["total_size"] == stats["bytes_transferred"] == 491524
    assert stats["bytes_sent"] == 498687 and stats["bytes_received"] == 2355


def test_no_change_run_has_no_items_but_stats():
    items, stats = _rsync.parse_stdout(fixture("nochange.stdout"))
    assert items == []
    assert stats["files"] == 128 and stats["files_transferred"] == 0 and stats["bytes_transferred"] == 0


def test_some_changes_including_a_delete_and_a_delta():
    items, stats = _rsync.parse_stdout(fixture("some.stdout"))
    assert ("deleted", "a/sub/f1") in items
    assert (".d..t......", "c/") in items
    assert ("<f.st......", "b/sub/f2") in items
    assert stats["files_transferred"] == 1
    assert stats["matched_bytes"] == 3500 and stats["literal_bytes"] == 604
    # pushing to a daemon, rsync's own deleted count stays 0: the module counts *deleting lines
    assert stats["files_deleted_reported"] == 0


def test_dry_run_lists_what_the_real_run_then_does():
    # Recorded from the same state, the dry run just before the real one (capture.sh): check mode
    # reports its items, so they must be the real run's, deletion included.
    dry_items, dry_stats = _rsync.parse_stdout(fixture("dry.stdout"))
    real_items, real_stats = _rsync.parse_stdout(fixture("some.stdout"))
    assert dry_items == real_items
    assert ("deleted", "a/sub/f1") in dry_items and ("<f.st......", "b/sub/f2") in dry_items
    assert dry_stats["files_transferred"] == real_stats["files_transferred"] == 1


def test_progress_lines():
    lines = _rsync.split_lines(fixture("full.stdout"))
    progress = [p for p in map(_rsync.parse_progress, lines) if p]
    assert progress[-1]["bytes"] == 491524 and progress[-1]["percent"] == 100
    assert progress[-1]["detail"] == "xfr#121, to-chk=0/128"
    assert _rsync.parse_progress("<f+++++++++ top.txt") is None
    assert not [line for line in lines if _rsync.parse_progress(line) and _rsync.parse_item(line)]


def test_vanished_files_exit_24():
    assert _rsync.describe_exit(int(fixture("vanished.rc"))) == "partial transfer due to vanished source files"
    vanished = _rsync.parse_vanished(fixture("vanished.stderr"))
    assert vanished == ["/srv/src/z/v%d" % i for i in range(30, 40)]
    messages, failed = _rsync.parse_errors(fixture("vanished.stderr"))
    assert failed == []
    assert messages[-1].startswith("rsync warning: some files vanished")


def test_failed_files_exit_23():
    assert _rsync.describe_exit(int(fixture("partial23.rc"))) == "partial transfer due to error"
    messages, failed = _rsync.parse_errors(fixture("partial23.stderr"))
    assert failed == [{"path": "/srv/src/a/secret", "error": "Permission denied (13)"}]
    assert "(code 23)" in messages[-1]


def test_receiver_error_with_module_name():
    line = 'rsync: [generator] recv_generator: mkdir "a" (in data) failed: Permission denied (13)'
    assert _rsync.parse_errors(line)[1] == [{"path": "a", "error": "Permission denied (13)"}]


def test_receiver_errors_without_quotes():
    stderr = ("cannot delete non-empty directory: x\n"
              "could not make way for new regular file: x\n"
              "rsync error: some files/attrs were not transferred (see previous errors) (code 23)\n")
    _messages, failed = _rsync.parse_errors(stderr)
    assert failed == [{"path": "x", "error": "cannot delete non-empty directory"},
                      {"path": "x", "error": "could not make way for new regular file"}]


def test_symlink_item_path_drops_the_target():
    assert _rsync.parse_item("cL+++++++++ latest -> releases/42") == ("cL+++++++++", "latest")


def test_plan_workers_balances_top_level_directories(tmp_path):
    for name, count in [("big", 30), ("mid", 12), ("s1", 5), ("s2", 5), ("s3", 4)]:
        (tmp_path / name).mkdir()
        for i in range(count):
            (tmp_path / name / str(i)).write_text("x")
    (tmp_path / "top.txt").write_text("x")
    groups, sizes, warning = _rsync.plan_workers(str(tmp_path), 3)
    assert sorted(sum(groups, [])) == ["big", "mid", "s1", "s2", "s3"]
    assert ["big"] in groups
    assert len(groups) == 3 and max(sizes) == 31 and warning is None
    assert _rsync.plan_workers(str(tmp_path), 1) == ([], [], None)
    assert len(_rsync.plan_workers(str(tmp_path), 10)[0]) == 5


def _dirs_with_files(root, spec):
    for name, count in spec:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / ("f%d" % i)).write_text("x")


def _worker_of(groups, name):
    return next(index for index, group in enumerate(groups) if name in group)


def test_plan_workers_keeps_a_hard_link_group_in_one_worker(tmp_path):
    # Without the grouping "big" and "small1" are each other's counterweight and land in
    # different workers; rsync -H would then write two separate files.
    _dirs_with_files(tmp_path, [("big", 40), ("mid", 30), ("small1", 5), ("small2", 5)])
    os.makedirs(tmp_path / "small1" / "deep")
    (tmp_path / "small1" / "deep" / "data").write_text("linked\n")
    os.link(tmp_path / "small1" / "deep" / "data", tmp_path / "big" / "data")
    plain = _rsync.plan_workers(str(tmp_path), 4)[0]
    assert _worker_of(plain, "big") != _worker_of(plain, "small1")
    groups, sizes, warning = _rsync.plan_workers(str(tmp_path), 4, hard_links=True)
    assert warning is None
    assert sorted(sum(groups, [])) == ["big", "mid", "small1", "small2"]
    assert _worker_of(groups, "big") == _worker_of(groups, "small1")
    assert len(groups) == 3 and sorted(sizes) == [6, 31, 42 + 8]


def test_plan_workers_merges_chains_of_shared_inodes(tmp_path):
    # a-b share one inode, b-c another: a, b and c are one unit (union-find), d is free.
    _dirs_with_files(tmp_path, [("a", 3), ("b", 3), ("c", 3), ("d", 3), ("e", 3)])
    os.link(tmp_path / "a" / "f0", tmp_path / "b" / "ab")
    os.link(tmp_path / "c" / "f0", tmp_path / "b" / "bc")
    groups, _sizes, warning = _rsync.plan_workers(str(tmp_path), 5, hard_links=True)
    assert warning is None
    assert ["a", "b", "c"] in groups
    assert sorted(groups) == [["a", "b", "c"], ["d"], ["e"]]
    # links inside one directory, or to a file outside the tree, bind nothing
    os.link(tmp_path / "d" / "f0", tmp_path / "d" / "again")
    os.link(tmp_path / "e" / "f0", tmp_path.parent / ("outside-%s" % tmp_path.name))
    assert sorted(_rsync.plan_workers(str(tmp_path), 5, hard_links=True)[0]) == [["a", "b", "c"], ["d"], ["e"]]


def test_plan_workers_falls_back_to_one_rsync_for_a_linked_top_level_file(tmp_path):
    _dirs_with_files(tmp_path, [("a", 3), ("b", 3)])
    os.link(tmp_path / "b" / "f1", tmp_path / "top.bin")
    groups, sizes, warning = _rsync.plan_workers(str(tmp_path), 2, hard_links=True)
    assert (groups, sizes) == ([], [])
    assert warning.startswith("hard_links: a top-level file of %s shares its inode" % tmp_path)
    assert "one rsync copies the whole tree" in warning
    # without hard_links the link does not matter
    assert len(_rsync.plan_workers(str(tmp_path), 2)[0]) == 2


def test_plan_workers_top_level_files_linked_to_each_other_stay_in_the_first_pass(tmp_path):
    _dirs_with_files(tmp_path, [("a", 3), ("b", 3)])
    (tmp_path / "one").write_text("x")
    os.link(tmp_path / "one", tmp_path / "two")
    groups, _sizes, warning = _rsync.plan_workers(str(tmp_path), 2, hard_links=True)
    assert sorted(groups) == [["a"], ["b"]] and warning is None


def test_plan_workers_says_when_links_join_every_directory(tmp_path):
    _dirs_with_files(tmp_path, [("a", 3), ("b", 3)])
    os.link(tmp_path / "a" / "f0", tmp_path / "b" / "x")
    groups, _sizes, warning = _rsync.plan_workers(str(tmp_path), 2, hard_links=True)
    assert groups == []
    assert warning.startswith("hard_links: every top-level directory")


def test_fidelity_options():
    argv = _rsync.base_options(hard_links=True, acls=True, xattrs=True, sparse=True)
    assert argv[:5] == ["--archive", "--hard-links", "--acls", "--xattrs", "--sparse"]
    plain = _rsync.base_options()
    assert not set(plain) & {"--hard-links", "--acls", "--xattrs", "--sparse"}


def test_hard_link_item_path_drops_the_other_name():
    assert _rsync.parse_item("hf+++++++++ a/one => b/two") == ("hf+++++++++", "a/one")


def test_commands_top_pass_then_relative_workers():
    options = _rsync.base_options(delete=True, partial_dir=".rsync-partial", exclude=["*.tmp"], bwlimit_kib=100)
    plan = _rsync.commands("rsync", options, "/srv/data/", "new::data", [["a", "c"], ["b"]])
    assert [label for label, _argv in plan] == ["top", "worker1", "worker2"]
    top = plan[0][1]
    assert top[-2:] == ["/srv/data/", "new::data/"] and "--no-recursive" in top and "--dirs" in top
    worker1 = plan[1][1]
    assert worker1[-3:] == ["/srv/data/./a", "/srv/data/./c", "new::data/"] and "--relative" in worker1
    assert "--ignore-missing-args" in worker1
    for argv in (top, worker1):
        assert "--delete" in argv and "--partial-dir=.rsync-partial" in argv and "--exclude=*.tmp" in argv
        assert "--bwlimit=100" in argv and "--itemize-changes" in argv and "--stats" in argv
    single = _rsync.commands("rsync", options, "/srv/data", "/copy", [])
    assert single == [("all", ["rsync"] + options + ["/srv/data/", "/copy/"])]


def test_count_entries(tmp_path):
    os.makedirs(tmp_path / "a" / "b")
    (tmp_path / "a" / "b" / "f").write_text("x")
    assert _rsync.count_entries(str(tmp_path)) == 3


@pytest.mark.functional
def test_worker_skips_a_directory_that_vanished_after_planning(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "kept").mkdir(parents=True)
    (src / "kept" / "f").write_text("x\n")
    dst.mkdir()
    options = _rsync.base_options(delete=True, partial_dir=".rsync-partial", exclude=[], bwlimit_kib=0)
    plan = _rsync.commands("rsync", options, str(src), str(dst), [["kept", "gone"]])
    worker = dict(plan)["worker1"]
    done = subprocess.run(worker, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (dst / "kept" / "f").read_text() == "x\n"
