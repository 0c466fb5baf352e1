# SPDX-License-Identifier: GPL-3.0-or-later
"""migration_report, the module: files written once, left alone when nothing changed, nothing
written in check mode, sections of earlier runs kept, the picture only with matplotlib."""
from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.nodowntime.storage.plugins.modules import migration_report
from ansible_collections.nodowntime.storage.tests.unit.plugins.module_utils.test_migration_report import (
    HAVE_MATPLOTLIB,
    PNG_MAGIC,
    STATE_CUT_OVER,
    STATE_ROLLED_BACK,
    records,
)
from ansible_collections.nodowntime.storage.tests.unit.plugins.modules.utils import fail_module, run_module

FILES = ("report.json", "report.html", "timeline.png")


def _stats(directory):
    return dict((name, (os.stat(os.path.join(directory, name)).st_ino, os.stat(os.path.join(directory, name)).st_mtime_ns))
                for name in os.listdir(directory))


@pytest.fixture
def without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_first_run_writes_then_the_same_input_changes_nothing(tmp_path):
    directory = str(tmp_path / "reports")
    args = dict(path=directory, pairs=records())
    first = run_module(migration_report.main, args)
    assert first["changed"]
    expected = FILES if HAVE_MATPLOTLIB else FILES[:2]
    assert sorted(os.listdir(directory)) == sorted(expected)
    assert first["json_path"] == os.path.join(directory, "report.json")
    assert first["html_path"] == os.path.join(directory, "report.html")
    with open(first["json_path"], encoding="utf-8") as handle:
        assert json.load(handle) == first["report"]
    before = _stats(directory)

    second = run_module(migration_report.main, args)
    assert not second["changed"] and second["written"] == []
    assert _stats(directory) == before, "files untouched"
    assert second["report"] == first["report"] and second["summary"] == first["summary"]

    check = run_module(migration_report.main, args, check_mode=True, diff=True)
    assert not check["changed"] and check["diff"]["before"] == check["diff"]["after"]
    assert _stats(directory) == before


def test_check_mode_writes_nothing_and_shows_the_diff(tmp_path):
    directory = tmp_path / "reports"
    result = run_module(migration_report.main, dict(path=str(directory), pairs=records()), check_mode=True, diff=True)
    assert result["changed"] and not directory.exists() and result["written"] == []
    assert result["diff"]["before"] == "" and result["diff"]["before_header"] == "/dev/null"
    assert json.loads(result["diff"]["after"]) == result["report"]
    assert result["report"]["pairs"]["old"]["cutover"]["downtime_seconds"] == 3.82

    run_module(migration_report.main, dict(path=str(directory), pairs=records("pair", "initial_sync")))
    before = _stats(str(directory))
    result = run_module(migration_report.main, dict(path=str(directory), pairs=records()), check_mode=True, diff=True)
    assert result["changed"] and _stats(str(directory)) == before
    assert '"cutover"' not in result["diff"]["before"] and '"cutover"' in result["diff"]["after"]


def test_phases_of_different_days_end_up_in_one_report(tmp_path):
    directory = str(tmp_path)
    run_module(migration_report.main, dict(path=directory, pairs=records("pair", "initial_sync", "replicate")))
    saturday = run_module(migration_report.main, dict(path=directory, pairs=records("pair", "verify", "state")))
    assert saturday["changed"]
    entry = saturday["report"]["pairs"]["old"]
    assert set(entry) == {"pair", "state", "initial_sync", "replicate", "verify", "cutover"}
    later = run_module(migration_report.main, dict(path=directory, pairs={"old": {"state": STATE_ROLLED_BACK}}))
    entry = later["report"]["pairs"]["old"]
    assert entry["state"] == "replicating" and entry["rollback"]["downtime_seconds"] == 4.7
    assert entry["initial_sync"]["files_transferred"] == 2103, "still there from Monday"
    assert any("old rollback: done, 4.7 s without storage" in line for line in later["summary"])


def test_a_missing_page_is_rendered_again_without_touching_the_json(tmp_path):
    directory = str(tmp_path)
    run_module(migration_report.main, dict(path=directory, pairs=records()))
    json_before = _stats(directory)["report.json"]
    os.unlink(os.path.join(directory, "report.html"))
    result = run_module(migration_report.main, dict(path=directory, pairs=records()))
    assert result["changed"] and os.path.join(directory, "report.json") not in result["written"]
    assert os.path.exists(os.path.join(directory, "report.html"))
    assert _stats(directory)["report.json"] == json_before


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
def test_picture_is_a_png_embedded_in_the_page(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(migration_report.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    result = run_module(migration_report.main, dict(path=str(tmp_path), pairs=records()))
    assert result["picture_path"] == str(tmp_path / "timeline.png")
    picture = (tmp_path / "timeline.png").read_bytes()
    assert picture.startswith(PNG_MAGIC)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page and "3.8 s downtime" in page
    assert warnings == []


def test_without_matplotlib_no_picture_a_warning_and_a_note(tmp_path, without_matplotlib, monkeypatch):
    warnings = []
    monkeypatch.setattr(migration_report.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    result = run_module(migration_report.main, dict(path=str(tmp_path), pairs=records()))
    assert result["changed"] and result["picture_path"] is None
    assert sorted(os.listdir(str(tmp_path))) == ["report.html", "report.json"]
    assert warnings and warnings[0].startswith("no timeline picture in the report: matplotlib is not installed")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "data:image/png" not in page and "matplotlib is not installed on the controller" in page
    again = run_module(migration_report.main, dict(path=str(tmp_path), pairs=records()))
    assert not again["changed"], "a picture that cannot be drawn is not missing"


def test_html_false_writes_the_json_only(tmp_path):
    result = run_module(migration_report.main, dict(path=str(tmp_path), pairs=records(), html=False))
    assert os.listdir(str(tmp_path)) == ["report.json"]
    assert result["html_path"] is None and result["picture_path"] is None


def test_title_is_part_of_the_report(tmp_path):
    run_module(migration_report.main, dict(path=str(tmp_path), pairs=records()))
    result = run_module(migration_report.main, dict(path=str(tmp_path), title="files1 to the new SAN"))
    assert result["changed"] and result["report"]["title"] == "files1 to the new SAN"
    assert result["report"]["pairs"]["old"]["state"] == "cut_over", "nothing given, everything kept"
    assert "<h1>files1 to the new SAN</h1>" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_an_earlier_report_of_the_playbook_is_read(tmp_path):
    """report.json as the playbook wrote it before the module existed (to_nice_json, indent 4)."""
    old_layout = {"pairs": {"old": {"pair": {"old": "old", "new": "new", "share": "data"}, "state": "cut_over",
                                    "cutover": STATE_CUT_OVER["cutover"]}}}
    (tmp_path / "report.json").write_text(json.dumps(old_layout, indent=4, sort_keys=True) + "\n")
    result = run_module(migration_report.main, dict(path=str(tmp_path), pairs=records("initial_sync")))
    entry = result["report"]["pairs"]["old"]
    assert entry["cutover"]["steps"] == STATE_CUT_OVER["cutover"]["steps"] and entry["initial_sync"]["files"] == 2176


def test_a_report_that_is_not_json_is_left_alone(tmp_path):
    (tmp_path / "report.json").write_text("{not json")
    result = fail_module(migration_report.main, dict(path=str(tmp_path), pairs=records()))
    assert result["msg"].startswith("path: %s is not JSON" % (tmp_path / "report.json"))
    assert (tmp_path / "report.json").read_text() == "{not json"


def test_a_bad_record_fails_naming_it(tmp_path):
    result = fail_module(migration_report.main, dict(path=str(tmp_path), pairs={"old": {"verify": [1, 2]}}))
    assert result["msg"].startswith("pairs.old.verify: expected a dict") and result["option"] == "pairs.old.verify"
    assert os.listdir(str(tmp_path)) == []


def test_path_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    result = fail_module(migration_report.main, dict(path=str(tmp_path / "file")))
    assert result["msg"].startswith("path: %s is not a directory" % (tmp_path / "file"))
