# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd_info on status files and logs recorded from lsyncd 2.2.3."""
from __future__ import annotations

import os
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd as L
from ansible_collections.nodowntime.storage.plugins.modules import lsyncd_info
from .utils import fail_module, run_module

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "module_utils", "fixtures")
RECORDED_SOURCE = "/tmp/lsy/src"


@pytest.fixture
def lab(tmp_path):
    """A source tree, a config with two managed blocks and a way to drop in recorded reports."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    real = os.path.realpath(str(src))
    status = tmp_path / "status"
    log = tmp_path / "log"
    config = tmp_path / "lsyncd.conf.lua"
    text = L.apply_changes("", "whole", "present", L.render_sync_block("whole", L.check_sync(dict(
        mode="rsync", source=str(src), target="new::data"))),
        L.render_settings_block(dict(status_file=str(status), logfile=str(log))))
    text = L.apply_changes(text, "sub", "present", L.render_sync_block("sub", L.check_sync(dict(
        mode="direct", source=str(src / "a") + "/", target="/tmp/x"))))
    config.write_text(text)

    def put(name, age=0.0):
        with open(os.path.join(FIXTURES, name)) as f:
            status.write_text(f.read().replace(RECORDED_SOURCE, real))
        when = time.time() - age
        os.utime(status, (when, when))
        return when

    def put_log(name):
        with open(os.path.join(FIXTURES, name)) as f:
            log.write_text(f.read().replace(RECORDED_SOURCE, real))

    return dict(config=str(config), status=str(status), put=put, put_log=put_log, real=real)


def test_idle_report_names_syncs_after_their_blocks(lab):
    lab["put"]("lsyncd-2.2.3-status-idle.txt", age=0.5)
    r = run_module(lsyncd_info.main, dict(config=lab["config"], max_age=10))
    assert not r["changed"]
    assert r["status_file"] == lab["status"] and r["exists"] and r["fresh"] and r["idle"]
    assert 0.4 <= r["status_age"] < 5
    assert r["report_time"] == "Sat Nov 21 19:51:45 2026" and r["watches"] == 2 and r["pending"] == 0
    assert [(s["name"], s["block"], s["source"], s["idle"]) for s in r["syncs"]] == [
        ("Sync1", "whole", lab["real"] + "/", True), ("Sync2", "sub", lab["real"] + "/a/", True)]


def test_busy_report(lab):
    lab["put"]("lsyncd-2.2.3-status-busy.txt")
    r = run_module(lsyncd_info.main, dict(config=lab["config"]))
    assert r["fresh"] and not r["idle"] and r["pending"] == 12
    assert [(s["delays"], s["active"], s["waiting"]) for s in r["syncs"]] == [(10, 10, 0), (2, 0, 2)]


def test_startup_not_finished_is_not_idle(lab):
    lab["put"]("lsyncd-2.2.3-status-init.txt")
    r = run_module(lsyncd_info.main, dict(config=lab["config"]))
    assert not r["idle"] and r["pending"] == 1
    assert [s["startup_done"] for s in r["syncs"]] == [False, True]


def test_stale_report_is_never_idle(lab):
    lab["put"]("lsyncd-2.2.3-status-idle.txt", age=120)
    r = run_module(lsyncd_info.main, dict(status_file=lab["status"], config="/nonexistent", max_age=30))
    assert r["exists"] and not r["fresh"] and not r["idle"] and r["status_age"] >= 119
    assert all(s["idle"] for s in r["syncs"]) and all(s["block"] is None for s in r["syncs"])
    r = run_module(lsyncd_info.main, dict(status_file=lab["status"], config="/nonexistent"))
    assert r["fresh"] and r["idle"]  # no freshness asked for: the caller judges status_age


def test_newer_than(lab):
    written = lab["put"]("lsyncd-2.2.3-status-idle.txt", age=5)
    r = run_module(lsyncd_info.main, dict(config=lab["config"], newer_than=written + 1))
    assert not r["fresh"] and not r["idle"]
    r = run_module(lsyncd_info.main, dict(config=lab["config"], newer_than=written - 1))
    assert r["fresh"] and r["idle"]


def test_missing_status_file(lab):
    r = run_module(lsyncd_info.main, dict(config=lab["config"]))
    assert not r["exists"] and not r["idle"] and not r["fresh"] and r["syncs"] == []


def test_log_summary(lab):
    lab["put"]("lsyncd-2.2.3-status-idle.txt")
    lab["put_log"]("lsyncd-2.2.3.log")
    r = run_module(lsyncd_info.main, dict(config=lab["config"]))
    assert r["log"]["startups"] == 1 and r["log"]["overflows"] == 0
    assert [s["startup_logged"] for s in r["syncs"]] == [True, True]


def test_needs_a_status_file(tmp_path):
    r = fail_module(lsyncd_info.main, dict(config=str(tmp_path / "none.lua")))
    assert r["msg"].startswith("status_file:")


def test_garbage_status_file_is_not_idle(tmp_path):
    path = tmp_path / "status"
    path.write_text("hello\n")
    r = run_module(lsyncd_info.main, dict(status_file=str(path), config=str(tmp_path / "none")))
    assert r["exists"] and not r["idle"] and r["syncs"] == []


def test_wait_for_startup_returns_when_the_startup_sync_finishes(lab):
    import threading
    lab["put"]("lsyncd-2.2.3-status-init.txt")
    # lsyncd finishes its startup sync 0.8 s later; the wait follows the file, not a fixed sleep.
    later = threading.Timer(0.8, lambda: lab["put"]("lsyncd-2.2.3-status-busy.txt"))
    later.start()
    begun = time.time()
    r = run_module(lsyncd_info.main, dict(config=lab["config"], wait_for="startup_done", wait=10))
    waited = time.time() - begun
    later.join()
    assert r["condition_met"] and not r["idle"] and r["pending"] == 12
    assert 0.7 < waited < 5
    assert r["msg"] == "lsyncd: caught up; 12 event(s) queued"


def test_wait_gives_up_after_wait_seconds_and_says_why(lab):
    lab["put"]("lsyncd-2.2.3-status-init.txt")
    begun = time.time()
    r = run_module(lsyncd_info.main, dict(config=lab["config"], wait_for="startup_done", wait=1))
    assert 0.9 < time.time() - begun < 4
    assert r["condition_met"] is False
    assert r["msg"].startswith("lsyncd: startup sync running (1 of 2 syncs done), 1 event(s) queued (")
    r = run_module(lsyncd_info.main, dict(config=lab["config"], wait_for="idle", wait=0))
    assert r["condition_met"] is False and "(0s waited)" in r["msg"]


def test_wait_for_idle_on_an_idle_report_returns_at_once(lab):
    lab["put"]("lsyncd-2.2.3-status-idle.txt")
    r = run_module(lsyncd_info.main, dict(config=lab["config"], wait_for="idle", wait=30))
    assert r["condition_met"] and r["msg"] == "lsyncd: queue empty; 0 event(s) queued"


def test_negative_wait_is_refused(lab):
    r = fail_module(lsyncd_info.main, dict(config=lab["config"], wait_for="idle", wait=-1))
    assert r["msg"].startswith("wait: ")
