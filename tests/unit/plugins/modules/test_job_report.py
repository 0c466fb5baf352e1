# SPDX-License-Identifier: GPL-3.0-or-later
"""job_report in-process: figures from a run log, check mode, the failure under min_compliance, bad input."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from ansible.module_utils import basic

from ansible_collections.nodowntime.storage.plugins.modules import job_report
from ansible_collections.nodowntime.storage.tests.unit.plugins.modules.utils import (
    captured_warnings,
    fail_module,
    run_module,
)

UNTIL = "2026-11-30T01:00:00Z"
SINCE = "2026-11-29T00:00:00Z"


def line(start, outcome="ok", trigger="cron", **extra):
    r = dict(job="backup-www", kind="tree_backup", action="backup", start=start, end=start, outcome=outcome,
             trigger=trigger)
    r.update(extra)
    return json.dumps(r)


@pytest.fixture(autouse=True)
def utc_host(monkeypatch):
    """Cron slots are in the host's local time: make it UTC for these tests."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def log(tmp_path):
    """Slots 00:00 ... 00:50 of */10 from the first record: ok, failed, ok, (none), skipped, ok; a manual
    run, a drill, a torn line; the 01:00 slot is the current one at UNTIL."""
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join([
        line("2026-11-30T00:00:04Z", bytes=10),
        line("2026-11-30T00:10:04Z", "failed"),
        line("2026-11-30T00:20:04Z", bytes=10),
        line("2026-11-30T00:40:04Z", "skipped"),
        line("2026-11-30T00:42:00Z", trigger="manual", bytes=5),
        line("2026-11-30T00:50:04Z", bytes=10),
        json.dumps(dict(job="backup-www", action="drill", start="2026-11-30T00:45:00Z", outcome="ok", passed=True)),
        '{"job": "backup-www", "sta',
    ]) + "\n")
    return str(path)


def args(log, **more):
    a = dict(path=log, cron="*/10 * * * *", since=SINCE, until=UNTIL, min_compliance=50)
    a.update(more)
    return dict((k, v) for k, v in a.items() if v is not None)


@pytest.mark.parametrize("check_mode", [False, True])
def test_figures(log, check_mode):
    result = run_module(job_report.main, args(log), check_mode=check_mode)
    assert result["changed"] is False
    assert result["period"] == dict(since="2026-11-30T00:00:00Z", until=UNTIL)
    assert result["schedule"] == "*/10 * * * *"
    assert result["slots"] == dict(scheduled=6, succeeded=3, failed=1, skipped=1, never_started=1)
    assert result["runs"] == dict(attempted=6, succeeded=4, failed=1, skipped=1, manual=1)
    assert result["compliance"] == 50.0
    assert result["last_success"] == dict(start="2026-11-30T00:50:04Z", end="2026-11-30T00:50:04Z", age_seconds=596)
    assert result["drills"] == dict(passed=1, failed=0, last=dict(start="2026-11-30T00:45:00Z", passed=True))
    assert result["bytes"] == 35
    assert result["bad_lines"] == 1
    assert result["missed"] == [dict(slot="2026-11-30T00:10:00Z", status="failed"),
                                dict(slot="2026-11-30T00:30:00Z", status="never_started"),
                                dict(slot="2026-11-30T00:40:00Z", status="skipped")]
    assert result["msg"] == ("backup-www: 3 of 6 slots succeeded (50.00%; 1 failed, 1 skipped, 1 never started) "
                             "from 2026-11-30T00:00:00Z to 2026-11-30T01:00:00Z, last success 2026-11-30T00:50:04Z, "
                             "drills 1 passed")


def test_fails_under_min_compliance_with_the_figures(log):
    result = fail_module(job_report.main, args(log, min_compliance=None))
    assert result["msg"].endswith("(50.00%; 1 failed, 1 skipped, 1 never started) from 2026-11-30T00:00:00Z to "
                                  "2026-11-30T01:00:00Z, last success 2026-11-30T00:50:04Z, drills 1 passed - "
                                  "compliance under min_compliance 99%")
    assert result["compliance"] == 50.0
    assert result["min_compliance"] == 99.0
    assert result["slots"]["never_started"] == 1


def test_min_compliance_zero_never_fails(log):
    assert run_module(job_report.main, args(log, min_compliance=0))["compliance"] == 50.0


def test_relative_message_and_default_period(log, monkeypatch):
    monkeypatch.setattr(job_report.time, "time", lambda: 1796000000.0)  # 2026-11-30T00:53:20Z
    result = run_module(job_report.main, dict(path=log, cron="*/10 * * * *", days=1, min_compliance=0))
    assert result["period"] == dict(since="2026-11-30T00:00:00Z", until="2026-11-30T00:53:20Z")
    assert result["slots"]["scheduled"] == 5  # the 00:50 slot is the current one
    assert result["msg"] == ("backup-www: 2 of 5 slots succeeded (40.00%; 1 failed, 1 skipped, 1 never started) "
                             "in the last 53m, last success 3m ago, drills 1 passed")


def test_legacy_redis_logs(tmp_path):
    runs = tmp_path / "backup-runs.jsonl"
    drills = tmp_path / "drill-runs.jsonl"
    runs.write_text(json.dumps(dict(start="2026-11-30T00:00:30Z", end="2026-11-30T00:00:50Z", port=6379,
                                    trigger="systemd", outcome="ok", size=2048)) + "\n")
    drills.write_text(json.dumps(dict(archive="a", passed=False, problems=["x"], start="2026-11-30T00:05:00Z")) + "\n")
    result = run_module(job_report.main, dict(path=str(runs), drill_path=str(drills), cron="@hourly",
                                              until=UNTIL, min_compliance=0))
    assert result["slots"] == dict(scheduled=1, succeeded=1, failed=0, skipped=0, never_started=0)
    assert result["drills"]["failed"] == 1
    assert result["bytes"] == 2048
    assert result["msg"].startswith(str(runs) + ": 1 of 1 slots succeeded (100.00%)")


def test_job_filter(log):
    result = run_module(job_report.main, args(log, job="other", min_compliance=99))
    assert result["records"] == 0
    assert result["compliance"] is None


def test_missing_log_warns_and_does_not_fail(tmp_path):
    with captured_warnings() as warnings:
        result = run_module(job_report.main, dict(path=str(tmp_path / "none.jsonl"), cron="@hourly"))
    assert result["slots"]["scheduled"] == 0
    assert result["compliance"] is None
    assert any("does not exist" in w for w in warnings)
    assert any("has no run" in w for w in warnings)


SHOW = "LoadState=loaded\nTimersCalendar={ OnCalendar=*-*-* *:00/10:00 ; next_elapse=Mon 2026-11-30 01:10:00 UTC }\n"


def analyze_output(base, n):
    t = (base // 600 + 1) * 600
    out = []
    for k in range(n):
        out.append("       Iter. #%d: %s" % (k + 1, time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(t + 600 * k))))
    return "\n".join(out) + "\n"


def test_timer_gives_the_cron_figures(log, monkeypatch):
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append((argv, environ_update))
        if argv[0] == "systemctl":
            return 0, SHOW, ""
        return 0, analyze_output(int(argv[2].split("@")[1]), int(argv[3].split("=")[1])), ""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    cron = run_module(job_report.main, args(log))
    timer = run_module(job_report.main, args(log, cron=None, timer="backup-www"))
    assert calls[0] == (["systemctl", "show", "backup-www.timer", "-p", "LoadState", "-p", "TimersCalendar"],
                        {"LC_ALL": "C", "LANG": "C"})
    assert calls[1][0][:2] == ["systemd-analyze", "calendar"]
    assert timer.pop("schedule") == "*-*-* *:00/10:00"
    cron.pop("schedule")
    assert timer == cron


@pytest.mark.functional
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_on_calendar_with_the_real_systemd_analyze_gives_the_cron_figures(log):
    cron = run_module(job_report.main, args(log))
    systemd = run_module(job_report.main, args(log, cron=None, on_calendar="*:0/10"))
    assert systemd.pop("schedule") == "*:0/10"
    cron.pop("schedule")
    assert systemd == cron


@pytest.mark.parametrize("more, message", [
    (dict(timer="x"), r"parameters are mutually exclusive: timer\|on_calendar\|cron"),
    (dict(cron=None), r"one of the following is required: timer, on_calendar, cron"),
    (dict(cron="*/10 * * *"), r"^cron: '\*/10 \* \* \*' has 4 fields"),
    (dict(since=UNTIL), r"^since: 2026-11-30T01:00:00Z is not before until 2026-11-30T01:00:00Z"),
    (dict(until="tomorrow"), r"^until: 'tomorrow' is not a UTC time"),
    (dict(since=None, days=0), r"^days: 0.0 is not a length"),
    (dict(min_compliance=120), r"^min_compliance: 120.0 is not a percent"),
])
def test_bad_input_names_the_option(log, more, message):
    import re
    result = fail_module(job_report.main, args(log, **more))
    assert re.search(message, result["msg"]), result["msg"]


def test_unreadable_log_names_the_option(tmp_path):
    result = fail_module(job_report.main, dict(path=str(tmp_path), cron="@hourly"))
    assert result["msg"].startswith("path: cannot read %s: " % tmp_path)


def test_timer_that_does_not_exist(log, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **kw: (0, "LoadState=not-found\nTimersCalendar=\n", ""))
    result = fail_module(job_report.main, args(log, cron=None, timer="nope"))
    assert result["msg"] == "timer: nope.timer does not exist (LoadState=not-found): name an installed timer unit"


def test_unreadable_drill_log(log, tmp_path):
    os.mkdir(str(tmp_path / "drills"))
    result = fail_module(job_report.main, args(log, drill_path=str(tmp_path / "drills")))
    assert result["msg"].startswith("drill_path: cannot read ")
