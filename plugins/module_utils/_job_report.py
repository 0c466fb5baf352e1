# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compliance of a scheduled job against its schedule, from its run log (see ``_run_log``).

The schedule gives the slots: the times the job should have started. A systemd calendar's slots
come from systemd itself (``systemd-analyze calendar --base-time``, in the host's local time as the
timer runs); a cron expression's from ``cron_slots`` (minute resolution, host local time). A slot
covers [slot, next slot); the scheduled runs (trigger ``systemd``, ``cron`` or none) that started in
it decide its status. Everything but ``systemd_slots`` and ``timer_calendars`` (which take a ``run``
callable, ``run(argv) -> (rc, stdout, stderr)``) is a pure function. No Ansible import.
"""

from __future__ import annotations

import bisect
import calendar
import datetime
import os
import re
import subprocess
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _run_log

# systemd-analyze prints English and its own layout only in the C locale.
C_ENV = {"LC_ALL": "C", "LANG": "C"}
# How many slots one systemd-analyze call enumerates.
CHUNK = 5000
# How far past ``until`` to look for the slot that ends the last one (a yearly job, leap days).
LOOKAHEAD = 4 * 366 * 86400
MISSED_SHOWN = 20
SCHEDULED_TRIGGERS = (None, "", "systemd", "cron")
NOT_RUNS = ("drill", "restore")


class ReportError(Exception):
    """Bad input; ``option`` is the option to name in the failure."""

    def __init__(self, option, msg):
        super().__init__("%s: %s" % (option, msg))
        self.option = option


def subprocess_run(argv):
    """The default ``run``: argv in the C locale, ``(rc, stdout, stderr)``."""
    env = dict(os.environ, **C_ENV)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    except OSError as e:
        return 127, "", str(e)
    return proc.returncode, proc.stdout, proc.stderr


# -- times --------------------------------------------------------------------------------------

def stamp(epoch):
    """``2026-11-30T03:15:00Z`` for epoch seconds."""
    return _run_log.utc_stamp(datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc))


def record_time(text):
    """Epoch seconds of a record's ``start``/``end``; None when it is not a UTC stamp."""
    when = _run_log.parse_stamp(text)
    return None if when is None else int(when.timestamp())


_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_time(option, value):
    """Epoch seconds of ``since``/``until``: UTC ``2026-11-30T03:15:00Z`` (Z, seconds, time optional)."""
    text = str(value).strip()
    if re.match(r"^[0-9]+(\.[0-9]+)?$", text):
        return int(float(text))
    bare = re.sub(r"(Z|[+-]00:?00)$", "", text)
    for fmt in _TIME_FORMATS:
        try:
            return calendar.timegm(time.strptime(bare, fmt))
        except ValueError:
            continue
    raise ReportError(option, "%r is not a UTC time: use 2026-11-30T03:15:00Z (or 2026-11-30, or epoch seconds)" % value)


def human_age(seconds):
    """``40s``, ``4m``, ``2h5m``, ``3d2h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "%ds" % seconds
    minutes = seconds // 60
    if minutes < 60:
        return "%dm" % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return "%dh%s" % (hours, "%dm" % minutes if minutes else "")
    days, hours = divmod(hours, 24)
    return "%dd%s" % (days, "%dh" % hours if hours else "")


# -- systemd calendars --------------------------------------------------------------------------

def analyze_argv(expression, base, iterations=None):
    """The command that lists the ``iterations`` (``CHUNK``) elapses of ``expression`` after epoch ``base``."""
    iterations = iterations or CHUNK
    return ["systemd-analyze", "calendar", "--base-time=@%d" % base, "--iterations=%d" % iterations, expression]


_ELAPSE_RE = re.compile(r"^\s*(Next elapse|Iter\. #[0-9]+|\(in UTC\)):\s*(.*?)\s*$")
_UTC_RE = re.compile(r"^\S+ ([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)? UTC$")


def parse_analyze(text):
    """Epoch seconds of the elapses in ``systemd-analyze calendar`` output (LC_ALL=C), in order.

    Each elapse is a ``Next elapse:`` or ``Iter. #N:`` line in local time, followed by an
    ``(in UTC):`` line unless local time is UTC. ``never`` ends the list.
    """
    elapses = []
    pending = None  # the local-time text of an elapse waiting for its (in UTC) line
    for line in text.splitlines():
        m = _ELAPSE_RE.match(line)
        if not m:
            continue
        label, value = m.groups()
        if label == "(in UTC)":
            if pending is None:
                raise ValueError("'(in UTC)' line without an elapse: %r" % line)
            pending = None
            elapses.append(_utc_epoch(value))
            continue
        if pending is not None:
            elapses.append(_utc_epoch(pending))
            pending = None
        if value == "never":
            break
        pending = value
    if pending is not None:
        elapses.append(_utc_epoch(pending))
    return elapses


def _utc_epoch(value):
    m = _UTC_RE.match(value)
    if not m:
        raise ValueError("not a UTC time from systemd-analyze: %r" % value)
    return calendar.timegm(tuple(int(g) for g in m.groups()))


def systemd_slots(expressions, since, until, run=subprocess_run, option="on_calendar"):
    """Sorted epoch slots of systemd calendar ``expressions``: all from ``since`` to ``until`` and the
    first after (which ends the last one), asking systemd-analyze ``CHUNK`` at a time."""
    slots = set()
    for expression in expressions:
        base = since - 1  # --base-time is exclusive: a slot at ``since`` counts
        while True:
            argv = analyze_argv(expression, base)
            rc, out, err = run(argv)
            if rc != 0:
                raise ReportError(option, "%r is not a systemd calendar expression: %s"
                                  % (expression, (err or out).strip() or "systemd-analyze exited %d" % rc))
            try:
                got = parse_analyze(out)
            except ValueError as e:
                raise ReportError(option, "cannot read the output of %s: %s" % (" ".join(argv), e))
            slots.update(got)
            if len(got) < CHUNK or got[-1] >= until or got[-1] <= base:
                break
            base = got[-1]
    return _trim(sorted(slots), until)


def _trim(slots, until):
    """Slots up to ``until`` and the first one after it."""
    cut = bisect.bisect_left(slots, until)
    return slots[:cut + 1]


def timer_argv(unit):
    return ["systemctl", "show", unit, "-p", "LoadState", "-p", "TimersCalendar"]


_CALENDAR_RE = re.compile(r"^TimersCalendar=\{ OnCalendar=(.*?) ; next_elapse=[^{}]*\}$")


def parse_timer_show(text):
    """``(load_state, [OnCalendar expressions])`` from ``systemctl show -p LoadState -p TimersCalendar``
    (one ``TimersCalendar={ OnCalendar=EXPR ; next_elapse=... }`` line per OnCalendar)."""
    load_state = None
    expressions = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("LoadState="):
            load_state = line.split("=", 1)[1]
        m = _CALENDAR_RE.match(line)
        if m:
            expressions.append(m.group(1))
    return load_state, expressions


def timer_unit(name):
    return name if name.endswith(".timer") else name + ".timer"


def timer_calendars(name, run=subprocess_run):
    """The OnCalendar expressions of the timer unit ``name`` (systemd's normalised form)."""
    unit = timer_unit(name)
    rc, out, err = run(timer_argv(unit))
    if rc != 0:
        raise ReportError("timer", "cannot read %s: %s" % (unit, (err or out).strip() or "systemctl exited %d" % rc))
    load_state, expressions = parse_timer_show(out)
    if load_state != "loaded":
        raise ReportError("timer", "%s does not exist (LoadState=%s): name an installed timer unit"
                          % (unit, load_state or "?"))
    if not expressions:
        raise ReportError("timer", "%s has no OnCalendar=: only calendar timers have slots; use on_calendar or cron"
                          % unit)
    return expressions


# -- cron ---------------------------------------------------------------------------------------

_MONTHS = dict((n, i + 1) for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split()))
_DAYS = dict((n, i) for i, n in enumerate("sun mon tue wed thu fri sat".split()))
# name, low, high, names
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class CronSpec:
    """A parsed 5-field cron expression: the sets of values each field allows."""

    def __init__(self, expression, minutes, hours, days, months, weekdays, day_star, weekday_star):
        self.expression = expression
        self.minutes, self.hours, self.days, self.months, self.weekdays = minutes, hours, days, months, weekdays
        self.day_star, self.weekday_star = day_star, weekday_star

    def day_matches(self, mday, month, wday):
        """Vixie cron: with both day fields restricted, either may match; else both must."""
        if month not in self.months:
            return False
        if self.day_star or self.weekday_star:
            return mday in self.days and wday in self.weekdays
        return mday in self.days or wday in self.weekdays


def _cron_value(text, field):
    name, low, high, names = field
    key = text.lower()
    if key in names:
        return names[key]
    if not re.match(r"^[0-9]+$", text):
        raise ValueError("%s %r is not a number%s" % (name, text, " or a name (%s)" % ", ".join(names) if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError("%s %d is out of range %d-%d" % (name, value, low, high))
    return value


def _cron_field(text, field):
    name, low, high, _names = field
    values = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not re.match(r"^[0-9]+$", step_text) or int(step_text) == 0:
                raise ValueError("%s step %r is not a positive number" % (name, step_text))
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _cron_value(a, field), _cron_value(b, field)
            if first > last:
                raise ValueError("%s range %r runs backwards" % (name, part))
        else:
            first = _cron_value(part, field)
            last = high if step > 1 else first  # 5/15 is 5-59/15
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression):
    """A ``CronSpec`` for a 5-field cron expression (numbers, ``*``, lists, ranges, steps, month
    and day names, the @hourly ... @yearly macros); ``ReportError`` on ``cron`` otherwise."""
    text = " ".join(str(expression).split())
    fields = _MACROS.get(text.lower(), text).split(" ")
    if len(fields) != 5:
        raise ReportError("cron", "%r has %d fields: use five (minute hour day-of-month month day-of-week), "
                                  "for example '*/10 * * * *'" % (expression, len(fields)))
    try:
        sets = [_cron_field(f, spec) for f, spec in zip(fields, _FIELDS)]
    except ValueError as e:
        raise ReportError("cron", "%r: %s" % (expression, e))
    weekdays = set(d % 7 for d in sets[4])
    return CronSpec(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                    fields[2].startswith("*"), fields[4].startswith("*"))


def cron_slots(spec, since, until, localtime=time.localtime):
    """Sorted epoch slots of ``spec`` from ``since`` to ``until`` and the first after, in the local
    time ``localtime`` gives (the host's), a minute at a time with skips over days and hours that
    cannot match."""
    slots = []
    t = -(-since // 60) * 60
    limit = until + LOOKAHEAD
    while t <= limit:
        lt = localtime(t)
        # struct_time: tm_wday is Monday=0; cron's Sunday=0
        if not spec.day_matches(lt.tm_mday, lt.tm_mon, (lt.tm_wday + 1) % 7):
            t += _skip((23 - lt.tm_hour) * 3600 + (60 - lt.tm_min) * 60)
            continue
        if lt.tm_hour not in spec.hours:
            t += (60 - lt.tm_min) * 60
            continue
        if lt.tm_min in spec.minutes:
            slots.append(t)
            if t >= until:
                break
        t += 60
    return slots


def _skip(seconds):
    """A skip to the next local midnight, an hour short when longer (a DST change)."""
    return seconds - 3600 if seconds > 3600 else seconds


# -- the report ---------------------------------------------------------------------------------

def is_run(record):
    """A run of the job itself (a transfer, a backup), not a drill or a restore."""
    return record.get("action") not in NOT_RUNS


def is_scheduled(record):
    """Started by the schedule: trigger ``systemd``, ``cron`` or none recorded (older logs)."""
    return record.get("trigger") in SCHEDULED_TRIGGERS


def drill_passed(record):
    passed = record.get("passed")
    if isinstance(passed, bool):
        return passed
    return record.get("outcome") == "ok"


def _outcome(record):
    outcome = record.get("outcome")
    return outcome if outcome in _run_log.OUTCOMES else "failed"


def _matches_job(record, job):
    """Records without ``job`` (logs older than ``_run_log``, one job per file) match any filter."""
    return job is None or record.get("job") in (None, job)


def _timed(records, job):
    """``([(start, record)], unplaced)``: the job's records that have a valid ``start``."""
    out = []
    unplaced = 0
    for record in records:
        if not _matches_job(record, job):
            continue
        start = record_time(record.get("start"))
        if start is None:
            start = record_time(record.get("end"))
        if start is None:
            unplaced += 1
            continue
        out.append((start, record))
    out.sort(key=lambda item: item[0])
    return out, unplaced


def slot_status(outcomes):
    if not outcomes:
        return "never_started"
    if "ok" in outcomes:
        return "succeeded"
    if "failed" in outcomes:
        return "failed"
    return "skipped"


def compute(records, slots, since, until, drill_records=None, job=None, bad_lines=0, min_compliance=99.0,
            schedule=None):
    """The report's figures (see the module's RETURN) from the log's ``records``.

    ``slots``: sorted epoch slots from ``since`` to ``until`` and the first after; ``drill_records``:
    records of a separate drill log, or None for the ``action: drill`` records of ``records``.
    """
    timed, unplaced = _timed(records, job)
    runs_all = [(t, r) for t, r in timed if is_run(r)]
    if drill_records is None:
        drills_all = [(t, r) for t, r in timed if r.get("action") == "drill"]
    else:
        drills_all, unplaced_drills = _timed(drill_records, job)
        unplaced += unplaced_drills

    # The period starts no earlier than the slot of the job's first recorded run.
    if runs_all:
        first = runs_all[0][0]
        i = bisect.bisect_right(slots, first) - 1
        period_since = max(since, slots[i] if i >= 0 else first)
    else:
        period_since = until
    period_since = min(period_since, until)

    counted = [i for i in range(len(slots) - 1) if slots[i] >= period_since and slots[i + 1] <= until]
    outcomes = dict((i, []) for i in counted)
    runs = dict(attempted=0, succeeded=0, failed=0, skipped=0, manual=0)
    moved = 0
    for t, record in runs_all:
        if not period_since <= t < until:
            continue
        outcome = _outcome(record)
        runs["attempted"] += 1
        runs[{"ok": "succeeded", "failed": "failed", "skipped": "skipped"}[outcome]] += 1
        size = record.get("bytes", record.get("size"))
        if isinstance(size, (int, float)) and not isinstance(size, bool):
            moved += int(size)
        if not is_scheduled(record):
            runs["manual"] += 1
            continue
        i = bisect.bisect_right(slots, t) - 1
        if i in outcomes:
            outcomes[i].append(outcome)

    counts = dict(scheduled=len(counted), succeeded=0, failed=0, skipped=0, never_started=0)
    missed = []
    for i in counted:
        status = slot_status(outcomes[i])
        counts[status] += 1
        if status != "succeeded" and len(missed) < MISSED_SHOWN:
            missed.append(dict(slot=stamp(slots[i]), status=status))
    compliance = round(100.0 * counts["succeeded"] / counts["scheduled"], 2) if counts["scheduled"] else None

    last_success = None
    for t, record in reversed(runs_all):
        if t < until and _outcome(record) == "ok":
            end = record_time(record.get("end"))
            last_success = dict(start=stamp(t), end=stamp(end) if end is not None else None,
                                age_seconds=max(0, until - (end if end is not None else t)))
            break

    drills = dict(passed=0, failed=0, last=None)
    for t, record in drills_all:
        if t >= until:
            continue
        passed = drill_passed(record)
        if t >= period_since:
            drills["passed" if passed else "failed"] += 1
        drills["last"] = dict(start=stamp(t), passed=passed)

    return dict(
        period=dict(since=stamp(period_since), until=stamp(until)),
        schedule=schedule,
        slots=counts,
        runs=runs,
        compliance=compliance,
        min_compliance=min_compliance,
        last_success=last_success,
        drills=drills,
        bytes=moved,
        bad_lines=bad_lines + unplaced,
        missed=missed,
        records=len(runs_all),
    )


def job_name(records, job, path):
    """The name a person reads: ``job``, else the last record's ``job``, else the log's path."""
    if job:
        return job
    for record in reversed(records):
        if record.get("job"):
            return record["job"]
    return path


def describe(result, name, relative=True):
    """One line: ``backup-www: 287 of 288 slots succeeded (99.65%) in the last 1d, last success 4m ago,
    drills 1 passed``."""
    period = result["period"]
    since, until = parse_time("since", period["since"]), parse_time("until", period["until"])
    when = "in the last %s" % human_age(until - since) if relative else "from %s to %s" % (period["since"], period["until"])
    slots = result["slots"]
    if not result["records"]:
        line = "%s: no run recorded, no slot counted" % name
    elif not slots["scheduled"]:
        line = "%s: no slot ended yet %s" % (name, when)
    else:
        bad = ", ".join("%d %s" % (slots[k], k.replace("_", " ")) for k in ("failed", "skipped", "never_started") if slots[k])
        line = "%s: %d of %d slots succeeded (%.2f%%%s) %s" % (
            name, slots["succeeded"], slots["scheduled"], result["compliance"], "; " + bad if bad else "", when)
    last = result["last_success"]
    if last:
        line += ", last success %s ago" % human_age(last["age_seconds"]) if relative else ", last success %s" % (last["end"] or last["start"])
    elif result["records"]:
        line += ", no success yet"
    drills = result["drills"]
    if drills["passed"] or drills["failed"]:
        line += ", drills %s" % ", ".join("%d %s" % (drills[k], k) for k in ("passed", "failed") if drills[k])
    elif drills["last"]:
        line += ", no drill in the period (last %s)" % drills["last"]["start"]
    return line


def below_minimum(result):
    """Whether ``compliance`` is under ``min_compliance`` (never with no slot or a minimum of 0)."""
    return bool(result["min_compliance"]) and result["compliance"] is not None and result["compliance"] < result["min_compliance"]
