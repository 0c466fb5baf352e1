# SPDX-License-Identifier: GPL-3.0-or-later
"""_job_report: schedule enumeration (systemd-analyze output, cron), attribution to slots, figures."""
from __future__ import annotations

import calendar
import shutil
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _job_report as jr


def epoch(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M"))


def stamps(slots):
    return [time.strftime("%Y-%m-%d %H:%M", time.gmtime(s)) for s in slots]


# Recorded with: LC_ALL=C systemd-analyze calendar --base-time=@1796000000 --iterations=3 '*:0/5'
# (systemd 252, Debian 12, TZ=UTC)
ANALYZE_UTC = """\
  Original form: *:0/5
Normalized form: *-*-* *:00/5:00
    Next elapse: Mon 2026-11-30 00:55:00 UTC
       From now: 21h ago
       Iter. #2: Mon 2026-11-30 01:00:00 UTC
       From now: 21h ago
       Iter. #3: Mon 2026-11-30 01:05:00 UTC
       From now: 21h ago
"""

# The same command for '*-*-* 03:15:00' with TZ=Europe/Berlin: local times, then UTC.
ANALYZE_BERLIN = """\
Normalized form: *-*-* 03:15:00
    Next elapse: Mon 2026-11-30 03:15:00 CET
       (in UTC): Mon 2026-11-30 02:15:00 UTC
       From now: 20h ago
       Iter. #2: Tue 2026-12-01 03:15:00 CET
       (in UTC): Tue 2026-12-01 02:15:00 UTC
       From now: 3h 23min left
       Iter. #3: Wed 2026-12-02 03:15:00 CET
       (in UTC): Wed 2026-12-02 02:15:00 UTC
       From now: 1 day 3h left
"""

# ... for '2020-01-01' (no elapse after the base time).
ANALYZE_NEVER = """\
  Original form: 2020-01-01
Normalized form: 2020-01-01 00:00:00
    Next elapse: never
"""

# systemctl show nodowntime-test-report.timer -p LoadState -p TimersCalendar (a timer with two OnCalendar=)
SHOW_TWO = """\
LoadState=loaded
TimersCalendar={ OnCalendar=*-*-* *:00/10:00 ; next_elapse=Mon 2026-11-30 23:00:00 UTC }
TimersCalendar={ OnCalendar=Mon *-*-* 02:00:00 ; next_elapse=Mon 2026-12-07 02:00:00 UTC }
"""
SHOW_MISSING = "LoadState=not-found\nTimersCalendar=\n"
SHOW_MONOTONIC = "LoadState=loaded\n"


# -- systemd-analyze output ---------------------------------------------------------------------

def test_parse_analyze_utc():
    assert stamps(jr.parse_analyze(ANALYZE_UTC)) == ["2026-11-30 00:55", "2026-11-30 01:00", "2026-11-30 01:05"]


def test_parse_analyze_takes_the_utc_line_of_local_times():
    assert stamps(jr.parse_analyze(ANALYZE_BERLIN)) == ["2026-11-30 02:15", "2026-12-01 02:15", "2026-12-02 02:15"]


def test_parse_analyze_never():
    assert jr.parse_analyze(ANALYZE_NEVER) == []


def test_parse_analyze_refuses_local_time_without_utc():
    with pytest.raises(ValueError, match="not a UTC time"):
        jr.parse_analyze("    Next elapse: Mon 2026-11-30 03:15:00 CET\n       From now: 1h ago\n")


def fake_analyze(step, first, calls):
    """A ``run`` that answers like systemd-analyze for slots every ``step`` s from ``first``."""

    def run(argv):
        calls.append(argv)
        base = int(argv[2].split("@")[1])
        n = int(argv[3].split("=")[1])
        t = max(first, base + 1)
        t = first + -(-(t - first) // step) * step
        lines = []
        for k in range(n):
            label = "    Next elapse" if k == 0 else "       Iter. #%d" % (k + 1)
            lines.append("%s: %s" % (label, time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(t + k * step))))
            lines.append("       From now: 1h ago")
        return 0, "\n".join(lines) + "\n", ""
    return run


def test_systemd_slots_chunks_until_past_until(monkeypatch):
    monkeypatch.setattr(jr, "CHUNK", 7)
    calls = []
    since, until = epoch("2026-11-30 00:00"), epoch("2026-11-30 01:00")
    slots = jr.systemd_slots(["*:0/5"], since, until, run=fake_analyze(300, since - 3000, calls))
    # 00:00 (at since: the base time is since - 1) to 01:00, which ends 00:55
    assert stamps(slots) == ["2026-11-30 %s" % t for t in (
        "00:00", "00:05", "00:10", "00:15", "00:20", "00:25", "00:30", "00:35", "00:40", "00:45",
        "00:50", "00:55", "01:00")]
    assert calls[0][2] == "--base-time=@%d" % (since - 1)
    assert len(calls) == 2  # 7 + 7 slots reach past until
    assert calls[1][2] == "--base-time=@%d" % epoch("2026-11-30 00:30")


def test_systemd_slots_merges_expressions():
    since, until = epoch("2026-11-30 00:00"), epoch("2026-11-30 00:30")
    outputs = {"a": fake_analyze(600, since, []), "b": fake_analyze(900, since, [])}
    slots = jr.systemd_slots(["a", "b"], since, until, run=lambda argv: outputs[argv[-1]](argv))
    assert stamps(slots) == ["2026-11-30 00:00", "2026-11-30 00:10", "2026-11-30 00:15", "2026-11-30 00:20",
                             "2026-11-30 00:30"]


def test_systemd_slots_bad_expression_names_the_option():
    def run(argv):
        return 1, "", "Failed to parse calendar specification 'bogus': Invalid argument\n"
    with pytest.raises(jr.ReportError, match=r"^timer: 'bogus' is not a systemd calendar expression: Failed to parse") as e:
        jr.systemd_slots(["bogus"], 0, 600, run=run, option="timer")
    assert e.value.option == "timer"


def test_parse_timer_show():
    assert jr.parse_timer_show(SHOW_TWO) == ("loaded", ["*-*-* *:00/10:00", "Mon *-*-* 02:00:00"])


def test_timer_calendars_adds_the_suffix():
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, SHOW_TWO, ""
    assert jr.timer_calendars("nodowntime-test-report", run=run) == ["*-*-* *:00/10:00", "Mon *-*-* 02:00:00"]
    assert calls == [["systemctl", "show", "nodowntime-test-report.timer", "-p", "LoadState", "-p", "TimersCalendar"]]


@pytest.mark.parametrize("output, message", [
    (SHOW_MISSING, r"^timer: x\.timer does not exist \(LoadState=not-found\)"),
    (SHOW_MONOTONIC, r"^timer: x\.timer has no OnCalendar="),
])
def test_timer_calendars_refuses(output, message):
    with pytest.raises(jr.ReportError, match=message):
        jr.timer_calendars("x.timer", run=lambda argv: (0, output, ""))


# -- cron -----------------------------------------------------------------------------------------

def utc(t):
    return time.gmtime(t)


def test_cron_steps_ranges_names():
    # Fri 2026-11-27 10:40 to Mon 2026-11-30 09:20 (UTC host); hand-computed.
    spec = jr.parse_cron("*/15 9-10 * * mon-fri")
    slots = jr.cron_slots(spec, epoch("2026-11-27 10:40"), epoch("2026-11-30 09:20"), localtime=utc)
    assert stamps(slots) == ["2026-11-27 10:45", "2026-11-30 09:00", "2026-11-30 09:15", "2026-11-30 09:30"]


def test_cron_day_of_month_or_day_of_week():
    # Both day fields restricted: the 1st OR a Monday (Nov 30, Dec 7 and Dec 14 2026 are Mondays).
    spec = jr.parse_cron("0 12 1 * MON")
    slots = jr.cron_slots(spec, epoch("2026-11-28 00:00"), epoch("2026-12-08 00:00"), localtime=utc)
    assert stamps(slots) == ["2026-11-30 12:00", "2026-12-01 12:00", "2026-12-07 12:00", "2026-12-14 12:00"]


def test_cron_lists_months_and_sunday_as_7():
    spec = jr.parse_cron("5,35 0 * dec 7")
    slots = jr.cron_slots(spec, epoch("2026-11-28 00:00"), epoch("2026-12-06 00:10"), localtime=utc)
    assert stamps(slots) == ["2026-12-06 00:05", "2026-12-06 00:35"]


def test_cron_local_time():
    # A host at UTC+1: 03:00 local is 02:00 UTC.
    spec = jr.parse_cron("@daily")
    slots = jr.cron_slots(spec, epoch("2026-11-29 12:00"), epoch("2026-11-30 12:00"),
                          localtime=lambda t: time.gmtime(t + 3600))
    assert stamps(slots) == ["2026-11-29 23:00", "2026-11-30 23:00"]


def test_cron_step_from_a_value():
    assert sorted(jr.parse_cron("5/20 * * * *").minutes) == [5, 25, 45]


@pytest.mark.parametrize("expression, message", [
    ("* * * *", r"has 4 fields: use five"),
    ("60 * * * *", r"minute 60 is out of range 0-59"),
    ("* * * foo *", r"month 'foo' is not a number or a name"),
    ("*/0 * * * *", r"minute step '0' is not a positive number"),
    ("* 5-2 * * *", r"hour range '5-2' runs backwards"),
    ("@reboot", r"has 1 fields"),
])
def test_parse_cron_refuses(expression, message):
    with pytest.raises(jr.ReportError, match=r"^cron: .*" + message):
        jr.parse_cron(expression)


# -- times --------------------------------------------------------------------------------------

def test_parse_time():
    assert jr.parse_time("since", "2026-11-30T03:15:00Z") == epoch("2026-11-30 03:15")
    assert jr.parse_time("since", "2026-11-30 03:15") == epoch("2026-11-30 03:15")
    assert jr.parse_time("since", "2026-11-30") == epoch("2026-11-30 00:00")
    assert jr.parse_time("since", "1796000000") == 1796000000
    with pytest.raises(jr.ReportError, match=r"^until: 'yesterday' is not a UTC time"):
        jr.parse_time("until", "yesterday")


@pytest.mark.parametrize("seconds, text", [(40, "40s"), (240, "4m"), (7500, "2h5m"), (3600, "1h"), (86400, "1d"),
                                           (266400, "3d2h")])
def test_human_age(seconds, text):
    assert jr.human_age(seconds) == text


# -- attribution and figures ----------------------------------------------------------------------

SINCE = epoch("2026-11-30 00:00")
UNTIL = epoch("2026-11-30 01:05")  # the 01:00 slot is the current one
SLOTS = [SINCE + 600 * k for k in range(8)]  # 00:00 ... 01:10


def rec(start, outcome="ok", trigger="systemd", end=None, **extra):
    r = dict(job="backup-www", kind="tree_backup", action="backup", start=start, outcome=outcome, trigger=trigger)
    if end:
        r["end"] = end
    r.update(extra)
    return r


def day(hhmmss):
    return "2026-11-30T%sZ" % hhmmss


RECORDS = [
    rec("2026-11-29T23:50:02Z", end="2026-11-29T23:51:00Z", bytes=999),  # before the period
    rec(day("00:00:03"), end=day("00:01:00"), bytes=100),
    rec(day("00:10:02"), "failed", end=day("00:10:30")),
    rec(day("00:20:01"), "skipped", end=day("00:20:01")),
    # 00:30 never started
    rec(day("00:40:05"), "failed", end=day("00:41:00")),
    rec(day("00:44:00"), "ok", end=day("00:45:00"), bytes=50),  # a retry in the same slot
    rec(day("00:47:00"), "ok", trigger="manual", end=day("00:48:00"), bytes=7),
    rec(day("00:50:01"), "ok", trigger="cron", end=day("00:50:40"), size=20),
    rec(day("01:00:01"), "ok", end=day("01:00:30")),  # current slot: a run, no slot
    dict(job="backup-www", action="drill", start=day("00:15:00"), outcome="ok", passed=True),
    dict(job="backup-www", action="drill", start=day("00:55:00"), outcome="failed", passed=False),
    dict(job="other", action="backup", start=day("00:30:00"), outcome="ok", trigger="systemd"),
    dict(job="backup-www", start="yesterday", outcome="ok"),
]


def test_compute_attributes_runs_to_slots():
    result = jr.compute(RECORDS, SLOTS, SINCE, UNTIL, job="backup-www", bad_lines=1, schedule="*:0/10")
    assert result["period"] == dict(since="2026-11-30T00:00:00Z", until="2026-11-30T01:05:00Z")
    assert result["slots"] == dict(scheduled=6, succeeded=3, failed=1, skipped=1, never_started=1)
    assert result["compliance"] == 50.0
    assert result["runs"] == dict(attempted=8, succeeded=5, failed=2, skipped=1, manual=1)
    assert result["missed"] == [dict(slot="2026-11-30T00:10:00Z", status="failed"),
                                dict(slot="2026-11-30T00:20:00Z", status="skipped"),
                                dict(slot="2026-11-30T00:30:00Z", status="never_started")]
    assert result["last_success"] == dict(start=day("01:00:01"), end=day("01:00:30"), age_seconds=270)
    assert result["drills"] == dict(passed=1, failed=1, last=dict(start=day("00:55:00"), passed=False))
    assert result["bytes"] == 100 + 50 + 7 + 20
    assert result["bad_lines"] == 2  # the one given and the record without a valid start
    assert result["records"] == 9


def test_compute_without_job_filter_counts_every_job():
    result = jr.compute(RECORDS, SLOTS, SINCE, UNTIL)
    assert result["slots"]["never_started"] == 0
    assert result["slots"]["succeeded"] == 4


def test_period_starts_at_the_slot_of_the_first_run():
    records = [rec(day("00:31:00")), rec(day("00:51:00"))]
    result = jr.compute(records, SLOTS, SINCE - 86400, UNTIL)
    assert result["period"]["since"] == "2026-11-30T00:30:00Z"
    assert result["slots"] == dict(scheduled=3, succeeded=2, failed=0, skipped=0, never_started=1)
    assert result["compliance"] == 66.67


def test_legacy_redis_records_and_a_separate_drill_log():
    # backup-runs.jsonl before _run_log: no job, kind or action; drill-runs.jsonl has `passed` only.
    records = [dict(start=day("00:00:20"), end=day("00:00:40"), port=6379, trigger="systemd", outcome="ok", size=4096),
               dict(start=day("00:10:20"), end=day("00:10:20"), port=6379, outcome="skipped")]
    drills = [dict(archive="/var/backups/redis/a.tar.zst", passed=True, problems=[], start=day("00:12:00")),
              dict(archive="/var/backups/redis/b.tar.zst", passed=False, problems=["x"], start=day("00:13:00"))]
    result = jr.compute(records, SLOTS, SINCE, epoch("2026-11-30 00:20"), drill_records=drills, job="redis-6379")
    assert result["slots"] == dict(scheduled=2, succeeded=1, failed=0, skipped=1, never_started=0)
    assert result["drills"] == dict(passed=1, failed=1, last=dict(start=day("00:13:00"), passed=False))
    assert result["bytes"] == 4096


def test_no_run_no_slot():
    result = jr.compute([], SLOTS, SINCE, UNTIL)
    assert result["slots"]["scheduled"] == 0
    assert result["compliance"] is None
    assert result["period"]["since"] == result["period"]["until"]
    assert not jr.below_minimum(result)
    assert jr.describe(result, "x") == "x: no run recorded, no slot counted"


def test_describe():
    result = jr.compute(RECORDS, SLOTS, SINCE, UNTIL, job="backup-www")
    assert jr.describe(result, "backup-www") == (
        "backup-www: 3 of 6 slots succeeded (50.00%; 1 failed, 1 skipped, 1 never started) in the last 1h5m, "
        "last success 4m ago, drills 1 passed, 1 failed")
    assert jr.describe(result, "backup-www", relative=False).startswith(
        "backup-www: 3 of 6 slots succeeded (50.00%; 1 failed, 1 skipped, 1 never started) "
        "from 2026-11-30T00:00:00Z to 2026-11-30T01:05:00Z, last success 2026-11-30T01:00:30Z")


@pytest.mark.parametrize("minimum, below", [(99, True), (50, False), (50.01, True), (0, False)])
def test_below_minimum(minimum, below):
    result = jr.compute(RECORDS, SLOTS, SINCE, UNTIL, job="backup-www", min_compliance=minimum)
    assert jr.below_minimum(result) is below


# -- the real systemd-analyze -------------------------------------------------------------------

needs_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")


@pytest.mark.functional
@needs_analyze
@pytest.mark.parametrize("expression, tz, since, until, expected", [
    ("*:0/5", "UTC", "2026-11-30 10:02", "2026-11-30 10:20",
     ["10:05", "10:10", "10:15", "10:20"]),
    ("*-*-* 03:15:00", "UTC", "2026-11-29 00:00", "2026-12-01 00:00",
     ["11-29 03:15", "11-30 03:15", "12-01 03:15"]),
    # the timer runs in the host's local time: 03:15 in Berlin (CET) is 02:15 UTC
    ("*-*-* 03:15:00", "Europe/Berlin", "2026-11-29 00:00", "2026-12-01 00:00",
     ["11-29 02:15", "11-30 02:15", "12-01 02:15"]),
    ("Mon *-*-* 02:00", "UTC", "2026-11-29 00:00", "2026-12-08 00:00",
     ["11-30 02:00", "12-07 02:00", "12-14 02:00"]),
    ("hourly", "UTC", "2026-11-30 10:00", "2026-11-30 12:30",
     ["10:00", "11:00", "12:00", "13:00"]),
])
def test_real_systemd_analyze(monkeypatch, expression, tz, since, until, expected):
    monkeypatch.setenv("TZ", tz)
    slots = stamps(jr.systemd_slots([expression], epoch(since), epoch(until)))
    assert [s[-len(expected[0]):] for s in slots] == expected


@pytest.mark.functional
@needs_analyze
def test_real_systemd_analyze_in_chunks_matches_cron(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setattr(jr, "CHUNK", 50)
    since, until = epoch("2026-11-29 22:57"), epoch("2026-11-30 23:01")
    systemd = jr.systemd_slots(["*:0/5"], since, until)
    cron = jr.cron_slots(jr.parse_cron("*/5 * * * *"), since, until, localtime=utc)
    assert len(systemd) == 290  # 23:00 ... 23:00 next day, and 23:05
    assert systemd == cron


@pytest.mark.functional
@needs_analyze
def test_real_systemd_analyze_refuses_a_bad_expression():
    with pytest.raises(jr.ReportError, match=r"^on_calendar: 'bogus' is not a systemd calendar expression: Failed to parse"):
        jr.systemd_slots(["bogus"], 0, 600)
