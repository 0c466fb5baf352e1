# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration report: the records a migration leaves on each old server, merged into one
report.json on the controller, summed up in lines a person can act on, and rendered as one
self-contained HTML page.

Pure functions (no Ansible, no I/O) so that the module and the lab's demo summary share them:

* ``merge(stored, pairs, title)`` - the report after this run: each record read this run replaces
  the stored section it feeds, every other stored section is kept.
* ``summary(report)`` - short lines per pair.
* ``render_html(report, picture, generated, picture_note)`` - the page; ``picture`` is PNG bytes
  or None.

Only the standard library is imported here; the picture lives in ``_timeline`` (matplotlib).
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import re
import statistics

# The records the playbook reads on an old server, as the keys of one pair's input.
INPUT_KEYS = ("pair", "state", "initial_sync", "replicate", "verify")
# The sections of one pair in report.json, in the order of the migration.
PAIR_KEYS = ("pair", "state", "finished_at", "initial_sync", "replicate", "verify", "cutover", "rollback")
# The state file feeds these sections, as one: a section it no longer holds is gone from the report
# (a new cutover after a rollback drops the rollback from the state file).
STATE_SECTIONS = ("state", "finished_at", "cutover", "rollback")
TOTAL_KEYS = ("diff_dir", "diff_file", "diff_bytes", "missing_dir", "missing_file", "missing_bytes",
              "orphaned_dir", "orphaned_file", "orphaned_bytes")
STATE_TEXT = {
    "cut_over": "cut over - the clients use the new server, which replicates back to the old one",
    "replicating": "not cut over - the clients use the old server, lsyncd keeps the new one in step",
    "finished": "finished - the clients use the new server, the replication back has ended",
    "abandoned": "abandoned - the clients use the old server, no replication",
}
PHASES = (("initial_sync", "initial copy"), ("replicate", "replicate"), ("verify", "verify"),
          ("cutover", "cutover"), ("rollback", "rollback"))


class ReportInputError(ValueError):
    """An input record that cannot be read; ``option`` names where it is (``pairs.old.verify``)."""

    def __init__(self, option, message):
        super().__init__("%s: %s" % (option, message))
        self.option = option


# --- times -------------------------------------------------------------------------------------

_ISO_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$")


def parse_time(text):
    """An ISO 8601 time as an aware UTC datetime, or None. No zone means UTC."""
    if not isinstance(text, str):
        return None
    match = _ISO_RE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = match.group(8)
    offset = datetime.timedelta(0)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, micro,
                                   tzinfo=datetime.timezone(offset))
    except ValueError:
        return None
    return moment.astimezone(datetime.timezone.utc)


def iso(moment):
    """``2026-11-30T18:24:41.521Z``, the form of the cutover's steps."""
    moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (moment.microsecond // 1000)


def _time(value):
    """A record's time in the report's form; a string that is no time is kept as it is."""
    moment = parse_time(value)
    if moment is not None:
        return iso(moment)
    return value if isinstance(value, str) and value else None


def shown_time(value):
    """A time for a person: ``2026-11-30 18:24:41 UTC``."""
    moment = parse_time(value)
    if moment is None:
        return str(value) if value else "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_between(start, end):
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return (b - a).total_seconds()


# --- numbers for a person ----------------------------------------------------------------------

def human_bytes(count):
    count = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if unit == "B" and abs(count) < 1024:
            return "%d B" % count
        if unit != "B" and abs(round(count, 1)) < 1024:  # never "1024.0 KiB"
            return "%.1f %s" % (count, unit)
        count /= 1024.0
    return "%.1f TiB" % count


def human_seconds(seconds):
    """``3.8 s``, ``7 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return "%.1f s" % seconds
    seconds = int(round(seconds))
    if seconds < 3600:
        return "%d min %d s" % (seconds // 60, seconds % 60)
    if seconds < 86400:
        return "%d h %d min" % (seconds // 3600, seconds % 3600 // 60)
    return "%d d %d h" % (seconds // 86400, seconds % 86400 // 3600)


def _count(value):
    return "{:,}".format(int(value or 0))


# --- normalising the raw records ---------------------------------------------------------------

def _number(value, option, kind=float):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReportInputError(option, "expected a number, got %r" % (value,))
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ReportInputError(option, "expected a number, got %r" % (value,))
    return round(number, 3) if kind is float else number


def _dict(value, option):
    if not isinstance(value, dict):
        raise ReportInputError(option, "expected a dict (the record as read on the old server), got %s"
                               % type(value).__name__)
    return value


def _drop_none(section):
    return dict((k, v) for k, v in section.items() if v is not None)


def normalise_pair(raw, old, option):
    raw = _dict(raw, option)
    pair = {"old": str(raw.get("old") or old)}
    for key in ("new", "share"):
        if raw.get(key) is not None:
            pair[key] = str(raw[key])
    return pair


def normalise_initial_sync(raw, option):
    """rsync_copy's record: ``{src, dest, rsync_rc, stats: {...}, vanished, finished, started?}``."""
    raw = _dict(raw, option)
    stats = _dict(raw.get("stats") or {}, option + ".stats")
    vanished = raw.get("vanished")
    if isinstance(vanished, list):  # the module's own result lists them
        vanished = len(vanished)
    elapsed = _number(stats.get("elapsed"), option + ".stats.elapsed")
    finished = parse_time(raw.get("finished"))
    started = parse_time(raw.get("started"))
    if started is None and finished is not None and elapsed is not None:
        started = finished - datetime.timedelta(seconds=elapsed)
    section = {
        "started": iso(started) if started else _time(raw.get("started")),
        "finished": iso(finished) if finished else _time(raw.get("finished")),
        "files": _number(stats.get("files"), option + ".stats.files", int),
        "files_transferred": _number(stats.get("files_transferred"), option + ".stats.files_transferred", int),
        "bytes_transferred": _number(stats.get("bytes_transferred"), option + ".stats.bytes_transferred", int),
        "elapsed": elapsed,
        "rate": _number(stats.get("rate"), option + ".stats.rate"),
        "vanished": _number(vanished, option + ".vanished", int),
        "rsync_rc": _number(raw.get("rsync_rc"), option + ".rsync_rc", int),
    }
    return _drop_none(section)


def normalise_replicate(raw, option):
    """The lsyncd role's record: ``{started, caught_up, lag_samples, delay, overflows}``."""
    raw = _dict(raw, option)
    samples = raw.get("lag_samples") or []
    if not isinstance(samples, list):
        raise ReportInputError(option + ".lag_samples", "expected a list of seconds, got %r" % (samples,))
    samples = [_number(s, option + ".lag_samples") for s in samples]
    samples = [s for s in samples if s is not None]
    section = {
        "started": _time(raw.get("started")),
        "caught_up": _time(raw.get("caught_up")),
        "lag_samples": samples,
        "lag_p50": round(statistics.median(samples), 3) if samples else None,
        "lag_max": max(samples) if samples else None,
        "delay": _number(raw.get("delay"), option + ".delay"),
        "overflows": _number(raw.get("overflows"), option + ".overflows", int),
    }
    return _drop_none(section)


def normalise_verify(raw, option):
    """tree_verify's result as its O(report) option writes it."""
    raw = _dict(raw, option)
    totals = _dict(raw.get("totals") or {}, option + ".totals")
    differs = _dict(raw.get("differs_counts") or {}, option + ".differs_counts")
    clean = raw.get("clean")
    section = {
        "started_at": _time(raw.get("started_at")),
        "finished_at": _time(raw.get("finished_at")),
        "elapsed": _number(raw.get("elapsed"), option + ".elapsed"),
        "clean": bool(clean) if clean is not None else None,
        "entries_checked": _number(raw.get("entries_checked"), option + ".entries_checked", int),
        "summary": str(raw["summary"]) if raw.get("summary") is not None else None,
        "differs_counts": dict((str(k), _number(v, option + ".differs_counts", int)) for k, v in sorted(differs.items())),
        "totals": dict((k, _number(totals.get(k, 0), option + ".totals." + k, int)) for k in TOTAL_KEYS),
    }
    return _drop_none(section)


def normalise_phase(raw, option):
    """A cutover or a rollback of the state file: outcome, downtime, steps, error."""
    raw = _dict(raw, option)
    steps = raw.get("steps") or []
    if not isinstance(steps, list):
        raise ReportInputError(option + ".steps", "expected a list of {name, start, end}, got %r" % (steps,))
    section = {
        "outcome": str(raw["outcome"]) if raw.get("outcome") is not None else None,
        "downtime_seconds": _number(raw.get("downtime_seconds"), option + ".downtime_seconds"),
        # the times as the servers keep them, so that the report and the state file agree
        "steps": [dict((k, str(_dict(step, option + ".steps").get(k, ""))) for k in ("name", "start", "end"))
                  for step in steps],
        "error": str(raw["error"]) if raw.get("error") else None,
    }
    if "final_full_pass" in raw:
        section["final_full_pass"] = bool(raw["final_full_pass"])
    return _drop_none(section)


def normalise_state(raw, option):
    """The state file: ``{pair, state, cutover, rollback, finished_at?}`` -> the sections it feeds."""
    raw = _dict(raw, option)
    sections = {}
    if raw.get("state") is not None:
        sections["state"] = str(raw["state"])
    if raw.get("finished_at"):
        sections["finished_at"] = _time(raw["finished_at"])
    for key in ("cutover", "rollback"):
        if raw.get(key):
            sections[key] = normalise_phase(raw[key], "%s.%s" % (option, key))
    return sections


def _present(value):
    return value is not None and value != {} and value != ""


def merge(stored, pairs, title):
    """The report after this run.

    ``stored`` is report.json as it is (or ``{}``), ``pairs`` this run's records per old host. A record
    present this run replaces the section(s) it feeds; every other stored section is kept, so phases
    run on different days end up in one report.
    """
    stored = stored if isinstance(stored, dict) else {}
    stored_pairs = stored.get("pairs") if isinstance(stored.get("pairs"), dict) else {}
    pairs = pairs or {}
    merged = {}
    for old in sorted(set(stored_pairs) | set(pairs)):
        kept = stored_pairs.get(old) if isinstance(stored_pairs.get(old), dict) else {}
        entry = dict((k, v) for k, v in kept.items() if k in PAIR_KEYS)
        raw = pairs.get(old)
        if raw is None:
            raw = {}
        option = "pairs.%s" % old
        raw = _dict(raw, option)
        unknown = sorted(set(raw) - set(INPUT_KEYS))
        if unknown:
            raise ReportInputError(option, "unknown record(s) %s; expected any of %s"
                                   % (", ".join(unknown), ", ".join(INPUT_KEYS)))
        if _present(raw.get("state")):
            for key in STATE_SECTIONS:
                entry.pop(key, None)
            entry.update(normalise_state(raw["state"], option + ".state"))
            if _present(raw["state"].get("pair")):
                entry["pair"] = normalise_pair(raw["state"]["pair"], old, option + ".state.pair")
        if _present(raw.get("pair")):
            entry["pair"] = normalise_pair(raw["pair"], old, option + ".pair")
        for key, normalise in (("initial_sync", normalise_initial_sync), ("replicate", normalise_replicate),
                               ("verify", normalise_verify)):
            if _present(raw.get(key)):
                entry[key] = normalise(raw[key], "%s.%s" % (option, key))
        if not entry:
            continue
        entry.setdefault("pair", {"old": old})
        merged[old] = dict((k, entry[k]) for k in PAIR_KEYS if k in entry)
    return {"title": str(title), "pairs": merged}


def dumps(report):
    """report.json's text: stable, so that an unchanged report is byte for byte the same file."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- the summary -------------------------------------------------------------------------------

def pair_name(old, entry):
    pair = entry.get("pair") or {}
    name = "%s -> %s" % (pair.get("old", old), pair.get("new", "?"))
    if pair.get("share"):
        name += "::%s" % pair["share"]
    return name


def last_phase(entry):
    last = None
    for key, label in PHASES:
        if entry.get(key):
            last = label
    return last


def step_seconds(step):
    return seconds_between(step.get("start"), step.get("end"))


def _phase_line(old, label, phase):
    outcome = phase.get("outcome", "?")
    down = phase.get("downtime_seconds")
    steps = phase.get("steps") or []
    when = shown_time(steps[0].get("start")) if steps else None
    line = "%s %s: %s" % (old, label, outcome)
    if down is not None:
        line += ", %s without storage" % human_seconds(down)
    # the steps inside the downtime (the writers' check comes after it)
    zero = steps[0].get("start") if steps else None
    timed = [(step_seconds(s), s.get("name")) for s in steps
             if down is None or (seconds_between(zero, s.get("start")) or 0) < down - 0.01]
    longest = sorted((t for t in timed if t[0] is not None), key=lambda t: -t[0])[:2]
    if longest:
        line += " (longest: %s)" % ", ".join("%s %s" % (name, human_seconds(t)) for t, name in longest)
    if when:
        line += ", at %s" % when
    if phase.get("error"):
        line += " - %s" % phase["error"]
    if phase.get("final_full_pass"):
        line += "; lsyncd's queue had overflowed, one full rsync pass carried the rest"
    return line


def pair_summary(old, entry):
    """Lines for one pair: its state, then one line per phase recorded, then what to do next."""
    lines = []
    state = entry.get("state")
    if state:
        text = STATE_TEXT.get(state, state)
    else:
        phase = last_phase(entry)
        text = "not cut over yet (last phase recorded: %s)" % phase if phase else "nothing recorded yet"
    lines.append("%s: %s" % (pair_name(old, entry), text))
    copy = entry.get("initial_sync")
    if copy:
        lines.append("%s initial copy: %s of %s files, %s copied in %s at %s/s, %s vanished during the copy, "
                     "rsync exit %s, finished %s"
                     % (old, _count(copy.get("files_transferred")), _count(copy.get("files")),
                        human_bytes(copy.get("bytes_transferred")), human_seconds(copy.get("elapsed")),
                        human_bytes(copy.get("rate")), _count(copy.get("vanished")),
                        copy.get("rsync_rc", "?"), shown_time(copy.get("finished"))))
    rep = entry.get("replicate")
    if rep:
        line = "%s replicate: lsyncd started %s" % (old, shown_time(rep.get("started")))
        catch = seconds_between(rep.get("started"), rep.get("caught_up"))
        if catch is not None:
            line += ", caught up after %s" % human_seconds(catch)
        if rep.get("lag_samples"):
            line += ", lag median %s, max %s over %d samples" % (
                human_seconds(rep.get("lag_p50")), human_seconds(rep.get("lag_max")), len(rep["lag_samples"]))
        if rep.get("delay") is not None:
            line += ", delay %s" % human_seconds(rep["delay"])
        line += ", %s queue overflows" % _count(rep.get("overflows"))
        lines.append(line)
    ver = entry.get("verify")
    if ver:
        text = ver.get("summary")
        if not text:  # tree_verify's summary says it all; a record without one gets the gist
            text = "%s - %s entries compared" % ("the trees agree" if ver.get("clean") else "lasting differences",
                                                 _count(ver.get("entries_checked")))
        lines.append("%s verify: %s (finished %s)" % (old, text, shown_time(ver.get("finished_at"))))
    for key, label in (("cutover", "cutover"), ("rollback", "rollback")):
        if entry.get(key):
            lines.append(_phase_line(old, label, entry[key]))
    lines.extend("%s next: %s" % (old, todo) for todo in next_steps(entry))
    return lines


def next_steps(entry):
    """What a person should do now, when something asks for it."""
    todo = []
    ver = entry.get("verify")
    cut = entry.get("cutover") or {}
    state = entry.get("state")
    if ver and ver.get("clean") is False and state not in ("cut_over", "finished"):
        todo.append("repair the lasting differences the verify lists, then run the verify phase again")
    if cut.get("outcome") == "undone" and state not in ("cut_over", "finished"):
        todo.append("the cutover undid itself and the old server serves again; fix what broke, "
                    "run the verify phase, then the cutover again")
    rep = entry.get("replicate") or {}
    if rep.get("overflows") and state not in ("cut_over", "finished"):
        todo.append("lsyncd's event queue overflowed; raise fs.inotify.max_queued_events and run the verify phase")
    if state == "cut_over":
        todo.append("check the applications on the new server; `--tags finish` ends the replication back, "
                    "the rollback playbook goes back")
    return todo


def summary(report):
    lines = []
    for old, entry in sorted((report.get("pairs") or {}).items()):
        lines.extend(pair_summary(old, entry))
    return lines or ["no migration pair recorded yet"]


# --- the HTML page -----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:64em;
 color:#1d2430;line-height:1.4;padding:0 1em}
h1{margin-bottom:.1em}h2{margin-top:2em;border-bottom:2px solid #d6dbe3;padding-bottom:.2em}
h3{margin:1.4em 0 .4em}
.meta{color:#5b6675;font-size:.9em}
.downtime{font-size:3em;font-weight:700;margin:.2em 0 0;color:#0f5132}
.downtime.none{color:#5b6675;font-size:1.6em}
.state{display:inline-block;padding:.15em .6em;border-radius:.8em;background:#e7edf6;font-weight:600}
.state.cut_over,.state.finished{background:#d1e7dd;color:#0f5132}
.state.abandoned{background:#f8d7da;color:#842029}
table{border-collapse:collapse;margin:.3em 0 1em;min-width:28em}
th,td{border:1px solid #d6dbe3;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#842029;font-weight:700}.good{color:#0f5132;font-weight:700}
ul.summary{background:#f8f9fb;border:1px solid #d6dbe3;padding:.6em 1em .6em 2em}
img{max-width:100%;border:1px solid #d6dbe3}
.note{background:#fff3cd;border:1px solid #ffe69c;padding:.5em 1em}
"""


def _e(value):
    return html.escape("-" if value is None else str(value), quote=True)


def _table(rows, head=None):
    out = ["<table>"]
    if head:
        out.append("<tr>%s</tr>" % "".join("<th>%s</th>" % _e(h) for h in head))
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            if head is None and index == 0:
                cells.append("<th>%s</th>" % _e(cell))
            elif isinstance(cell, int) and not isinstance(cell, bool):
                cells.append('<td class="num">%s</td>' % _e(_count(cell)))
            elif isinstance(cell, float):
                cells.append('<td class="num">%s</td>' % _e(cell))
            else:
                cells.append("<td>%s</td>" % _e(cell))
        out.append("<tr>%s</tr>" % "".join(cells))
    out.append("</table>")
    return "\n".join(out)


def _phase_html(title, phase):
    down = phase.get("downtime_seconds")
    rows = [("outcome", phase.get("outcome")),
            ("without storage", human_seconds(down) if down is not None else None)]
    if phase.get("error"):
        rows.append(("error", phase["error"]))
    if "final_full_pass" in phase:
        rows.append(("full rsync pass after a queue overflow", "yes" if phase["final_full_pass"] else "no"))
    out = ["<h3>%s</h3>" % _e(title), _table(rows)]
    steps = phase.get("steps") or []
    if steps:
        zero = parse_time(steps[0].get("start"))
        step_rows = []
        for step in steps:
            start = parse_time(step.get("start"))
            offset = "%+.3f s" % (start - zero).total_seconds() if start and zero else None
            took = step_seconds(step)
            step_rows.append((step.get("name"), step.get("start"), offset,
                              "%.3f s" % took if took is not None else None))
        out.append(_table(step_rows, head=("step", "start (UTC)", "from the first step", "took")))
    return "\n".join(out)


def _pair_html(old, entry):
    out = ['<section id="%s">' % _e("pair-" + old), "<h2>%s</h2>" % _e(pair_name(old, entry))]
    cut = entry.get("cutover") or {}
    if cut.get("downtime_seconds") is not None:
        out.append('<p class="downtime">%s downtime</p>' % _e(human_seconds(cut["downtime_seconds"])))
        out.append('<p class="meta">cutover %s</p>' % _e(cut.get("outcome")))
    else:
        out.append('<p class="downtime none">no cutover yet</p>')
    state = entry.get("state")
    if state:
        out.append('<p><span class="state %s">%s</span> %s</p>'
                   % (_e(state), _e(state), _e(STATE_TEXT.get(state, ""))))
    out.append('<ul class="summary">%s</ul>' % "".join("<li>%s</li>" % _e(line)
                                                       for line in pair_summary(old, entry)))
    copy = entry.get("initial_sync")
    if copy:
        out.append("<h3>Initial copy</h3>")
        out.append(_table([
            ("started", shown_time(copy.get("started"))), ("finished", shown_time(copy.get("finished"))),
            ("took", human_seconds(copy.get("elapsed"))),
            ("files in the tree", copy.get("files")), ("files transferred", copy.get("files_transferred")),
            ("bytes transferred", "%s (%s)" % (_count(copy.get("bytes_transferred")),
                                               human_bytes(copy.get("bytes_transferred")))),
            ("rate", "%s/s" % human_bytes(copy.get("rate"))),
            ("vanished during the copy", copy.get("vanished")), ("rsync exit code", copy.get("rsync_rc"))]))
    rep = entry.get("replicate")
    if rep:
        samples = rep.get("lag_samples") or []
        out.append("<h3>Replication (lsyncd)</h3>")
        out.append(_table([
            ("started", shown_time(rep.get("started"))), ("caught up", shown_time(rep.get("caught_up"))),
            ("lag median", human_seconds(rep.get("lag_p50")) if samples else None),
            ("lag max", human_seconds(rep.get("lag_max")) if samples else None),
            ("lag samples", len(samples)), ("delay", human_seconds(rep.get("delay"))),
            ("queue overflows", rep.get("overflows"))]))
    ver = entry.get("verify")
    if ver:
        out.append("<h3>Verify</h3>")
        clean = ver.get("clean")
        out.append('<p class="%s">%s</p>' % ("good" if clean else "bad",
                                             "the trees agree" if clean else "lasting differences"))
        out.append(_table([
            ("started", shown_time(ver.get("started_at"))), ("finished", shown_time(ver.get("finished_at"))),
            ("took", human_seconds(ver.get("elapsed"))), ("entries compared", ver.get("entries_checked")),
            ("result", ver.get("summary"))]))
        totals = ver.get("totals") or {}
        out.append(_table([(kind, totals.get(kind + "_dir", 0), totals.get(kind + "_file", 0),
                            totals.get(kind + "_bytes", 0)) for kind in ("diff", "missing", "orphaned")],
                          head=("lasting", "directories", "files", "bytes")))
        if ver.get("differs_counts"):
            out.append(_table(sorted(ver["differs_counts"].items()), head=("differs in", "entries")))
    for key, title in (("cutover", "Cutover"), ("rollback", "Rollback")):
        if entry.get(key):
            out.append(_phase_html(title, entry[key]))
    out.append("</section>")
    return "\n".join(out)


def overview_html(report):
    """One row per pair: state, downtime, verify, the last phase recorded."""
    rows = []
    for old, entry in sorted((report.get("pairs") or {}).items()):
        cut = entry.get("cutover") or {}
        back = entry.get("rollback") or {}
        ver = entry.get("verify")
        rows.append((pair_name(old, entry), entry.get("state") or "not cut over",
                     "%s (%s)" % (human_seconds(cut["downtime_seconds"]), cut.get("outcome"))
                     if cut.get("downtime_seconds") is not None else "-",
                     "%s (%s)" % (human_seconds(back["downtime_seconds"]), back.get("outcome"))
                     if back.get("downtime_seconds") is not None else "-",
                     ("clean" if ver.get("clean") else "lasting differences") if ver else "-",
                     last_phase(entry) or "-"))
    if not rows:
        return "<p>no migration pair recorded yet</p>"
    return _table(rows, head=("pair", "state", "cutover downtime", "rollback downtime", "verify", "last phase"))


def render_html(report, picture=None, generated=None, picture_note=None):
    """One self-contained page: inline CSS, the picture as a data: URI, no script, no link out."""
    title = report.get("title") or "Storage migration"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % _e(title), "<style>%s</style>" % _CSS, "</head>", "<body>",
           "<h1>%s</h1>" % _e(title)]
    if generated:
        out.append('<p class="meta">generated %s</p>' % _e(generated))
    out.append(overview_html(report))
    if picture:
        out.append('<p><img alt="%s" src="data:image/png;base64,%s"></p>'
                   % (_e("timeline of the migration phases and the cutover's steps"),
                      base64.b64encode(picture).decode("ascii")))
    else:
        out.append('<p class="note">%s</p>' % _e(picture_note or "no picture"))
    for old, entry in sorted((report.get("pairs") or {}).items()):
        out.append(_pair_html(old, entry))
    out.extend(["</body>", "</html>", ""])
    return "\n".join(out)
