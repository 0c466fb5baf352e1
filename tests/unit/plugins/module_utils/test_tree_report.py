# SPDX-License-Identifier: GPL-3.0-or-later
"""_tree_report: the one report shape of tree_verify and FSR's own check (fsradm result, recorded
in fixtures/fsradm/result.json)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _fsradm, _tree_report

FSR_RESULT = Path(__file__).parent / "fixtures" / "fsradm" / "result.json"


def test_total_keys_are_fsradms_nine_counters():
    assert _tree_report.TOTAL_KEYS == (
        "diff_dir", "diff_file", "diff_bytes", "missing_dir", "missing_file", "missing_bytes",
        "orphaned_dir", "orphaned_file", "orphaned_bytes")
    assert _tree_report.empty_totals() == dict.fromkeys(_tree_report.TOTAL_KEYS, 0)


def test_tally_counts_every_entry_and_keeps_limit_of_each_kind():
    tally = _tree_report.Tally(limit=2)
    for index in range(3):
        tally.add("different", "d%d" % index, "file", 10, ["size"])
    tally.add("different", "dir", "dir", 4096, ["mtime"])  # a directory's size is not counted
    tally.add("missing", "m", "symlink", 7)  # a symlink counts as a file
    tally.add("orphaned", "o", "dir")
    assert tally.totals == dict(_tree_report.empty_totals(), diff_dir=1, diff_file=3, diff_bytes=30,
                                missing_file=1, missing_bytes=7, orphaned_dir=1)
    assert [(d["type"], d["path"]) for d in tally.kept] == [
        ("different", "d0"), ("different", "d1"), ("missing", "m"), ("orphaned", "o")]
    assert tally.kept[0] == dict(type="different", path="d0", entry="file", size=10, differs=["size"])
    assert tally.count == 6 and tally.truncated
    assert tally.as_dict() == dict(totals=tally.totals, differences=tally.kept, differences_truncated=True,
                                   differs_counts={"size": 3, "mtime": 1})


def test_tally_not_truncated_within_limit_and_limit_zero_keeps_none():
    tally = _tree_report.Tally(limit=1)
    tally.add("missing", "a", "file", 1)
    tally.add("orphaned", "b", "file", 2)
    assert not tally.truncated and len(tally.kept) == 2
    none = _tree_report.Tally(limit=0)
    none.add("missing", "a", "file", 1)
    assert none.kept == [] and none.truncated and none.totals["missing_bytes"] == 1


def test_is_clean_and_utc_now():
    assert _tree_report.is_clean(_tree_report.empty_totals())
    assert not _tree_report.is_clean(dict(_tree_report.empty_totals(), orphaned_dir=1))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", _tree_report.utc_now())


@pytest.mark.parametrize("counts,text", [
    ({}, "none"),
    (dict(diff_dir=1, diff_file=1, diff_bytes=14, missing_file=1, missing_bytes=3),
     "2 different (1 dir, 1 file, 14 bytes), 1 missing (0 dirs, 1 file, 3 bytes)"),
    (dict(orphaned_dir=2, orphaned_file=3, orphaned_bytes=0), "5 orphaned (2 dirs, 3 files, 0 bytes)"),
    (dict(diff_bytes=5), "none"),  # bytes without entries say nothing
])
def test_describe(counts, text):
    assert _tree_report.describe(dict(_tree_report.empty_totals(), **counts)) == text


def fsr_result(limit=100):
    return _tree_report.from_fsr_result(_fsradm.parse_result(FSR_RESULT.read_text(encoding="utf-8")), limit)


def test_from_fsr_result_on_the_recorded_result():
    report = fsr_result()
    assert report["totals"] == dict(_tree_report.empty_totals(), diff_dir=3, diff_file=1, diff_bytes=14)
    assert not report["clean"] and not report["differences_truncated"]
    assert report["differences"] == [
        dict(type="different", path="G:\\Temp\\test1\\conf\\drbd.d", entry="dir", size=0, differs=["mtime"]),
        dict(type="different", path="G:\\Temp\\test1\\conf\\drbd.d\\1", entry="dir", size=0, differs=["mtime"]),
        dict(type="different", path="G:\\Temp\\test1\\conf", entry="dir", size=0, differs=["mtime"]),
        dict(type="different", path="G:\\Temp\\test1\\contributors.txt", entry="file", size=9,
             differs=["mtime", "size"]),
    ]
    assert (report["started_at"], report["finished_at"]) == ("2019-09-09T06:22:26.6958913Z", "2019-09-09T06:22:27.4653424Z")
    assert report["peer_node"] == "node2" and report["canceled"] is False and report["synced_bytes"] == 0
    assert report["entries_checked"] is None and report["in_flight"] is None
    assert _tree_report.describe(report["totals"]) == "4 different (3 dirs, 1 file, 14 bytes)"


def test_from_fsr_result_limit():
    report = fsr_result(limit=2)
    assert [d["path"] for d in report["differences"]] == [
        "G:\\Temp\\test1\\conf\\drbd.d", "G:\\Temp\\test1\\conf\\drbd.d\\1"]
    assert report["differences_truncated"] and report["totals"]["diff_dir"] == 3


def test_summary_says_whether_the_trees_agree_and_what_was_in_flight():
    in_flight = _tree_report.Tally(limit=5)
    in_flight.add("different", "live/f1", "file", 100, ["size", "mtime"])
    agree = dict(clean=True, totals=_tree_report.empty_totals(), entries_checked=2158, depth="attributes",
                 elapsed=6.67, settle=6.0, in_flight=in_flight.as_dict())
    assert _tree_report.summary(agree) == (
        "the trees agree - 2158 entries compared at attributes depth in 6.7 s; "
        "in flight, settled within 6.0 s: 1 different (0 dirs, 1 file, 100 bytes)")

    lasting = _tree_report.Tally(limit=5)
    lasting.add("different", "tree", "dir", 0, ["mtime"])
    lasting.add("orphaned", "tree/stray", "file", 6)
    differ = dict(agree, clean=False, totals=lasting.totals, in_flight=_tree_report.Tally(5).as_dict())
    assert _tree_report.summary(differ) == (
        "lasting differences: 1 different (1 dir, 0 files, 0 bytes), 1 orphaned (0 dirs, 1 file, 6 bytes)"
        " - 2158 entries compared at attributes depth in 6.7 s")
    assert _tree_report.difference_lines(lasting.kept) == [
        "different  tree (dir: mtime)", "orphaned   tree/stray (file)"]
    assert _tree_report.difference_lines(lasting.kept, count=1) == ["different  tree (dir: mtime)"]
