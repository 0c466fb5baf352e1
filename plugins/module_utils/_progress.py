# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a long step, written by the step and read by whoever follows it.

The step (a copy, a comparison, a backup) appends one JSON object per interval to a progress file:
what is done and what there is in all, in bytes and in files, with the rate and the time left.
Every line is complete in itself, so a reader only needs the last one; ``text`` is the same as one
line a person reads (``job_progress`` prints it, ``tail -f`` shows it).
"""

from __future__ import annotations

import json
import os
import threading
import time

# The rate is measured over this many seconds of recent samples: long enough to smooth the
# bursts of small files, short enough to follow a bandwidth limit that changes.
RATE_WINDOW = 60.0

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count):
    """``1.5 GiB`` for 1610612736; exact bytes below 1 KiB."""
    value = float(count)
    for unit in _UNITS:
        if abs(round(value, 1)) < 1024 or unit == _UNITS[-1]:
            return "%d %s" % (value, unit) if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return "%d B" % count  # not reached


def human_duration(seconds):
    """``45s``, ``12m05s``, ``3h07m``, ``2d04h``."""
    seconds = int(round(max(0.0, float(seconds))))
    if seconds < 60:
        return "%ds" % seconds
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return "%dm%02ds" % (minutes, seconds)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%dh%02dm" % (hours, minutes)
    days, hours = divmod(hours, 24)
    return "%dd%02dh" % (days, hours)


def _count(number):
    return "{:,}".format(int(number))


def describe(snap, label=""):
    """One line for a person: done of total, percent, rate, time left."""
    parts = []
    bytes_done, bytes_total = snap.get("bytes_done"), snap.get("bytes_total")
    files_done, files_total = snap.get("files_done"), snap.get("files_total")
    if bytes_done is not None:
        parts.append(human_bytes(bytes_done) + (" of %s" % human_bytes(bytes_total) if bytes_total else ""))
    if files_done is not None:
        parts.append(_count(files_done) + (" of %s" % _count(files_total) if files_total else "") + " files")
    head = ", ".join(parts)
    if snap.get("percent") is not None:
        head += " (%d%%)" % snap["percent"]
    tail = []
    if snap.get("rate") is not None:
        tail.append(human_bytes(snap["rate"]) + "/s" if snap.get("rate_unit") == "bytes"
                    else "%s files/s" % _count(snap["rate"]))
    if snap.get("final"):
        tail.append("%s in %s" % (snap.get("outcome", "done"), human_duration(snap.get("elapsed", 0))))
    elif snap.get("eta") is not None:
        tail.append("ETA %s" % human_duration(snap["eta"]))
    else:
        tail.append("%s elapsed" % human_duration(snap.get("elapsed", 0)))
    if snap.get("note"):
        tail.append(snap["note"])
    line = "; ".join([p for p in [head] + tail if p])
    return "%s: %s" % (label, line) if label else line


class RateMeter:
    """The rate of a growing count over the last RATE_WINDOW seconds.

    Keeps at most one sample per ``resolution`` seconds (the latest value wins), so a step that
    reports thousands of times a second holds a few dozen samples, not millions.
    """

    def __init__(self, window=RATE_WINDOW, resolution=1.0):
        self.window = window
        self.resolution = resolution
        self.samples = []

    def add(self, when, value):
        if len(self.samples) >= 2 and when - self.samples[-2][0] < self.resolution:
            self.samples[-1] = (when, value)
        else:
            self.samples.append((when, value))
        while len(self.samples) > 2 and when - self.samples[1][0] >= self.window:
            self.samples.pop(0)

    def reset(self):
        """Start measuring afresh (a new phase of the step counts other things)."""
        self.samples = []

    def rate(self):
        if len(self.samples) < 2:
            return None
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        if t1 - t0 <= 0:
            return None
        return max(0.0, (v1 - v0) / (t1 - t0))


def snapshot(started, now, bytes_done=None, bytes_total=None, files_done=None, files_total=None,
             rate=None, rate_unit="bytes", note="", final=False, outcome=None, what=""):
    """The dict of one progress line, ``text`` included."""
    # Totals counted by a separate scan can trail what the step itself counts (a tree that grows,
    # or entries the step counts twice): never show more done than in all.
    if files_total is not None and files_done is not None:
        files_total = max(files_total, files_done)
    if bytes_total is not None and bytes_done is not None:
        bytes_total = max(bytes_total, bytes_done)
    snap = dict(time=round(now, 3), what=what, elapsed=round(now - started, 1), bytes_done=bytes_done,
                bytes_total=bytes_total, files_done=files_done, files_total=files_total, note=note,
                rate_unit=rate_unit, rate=None if rate is None else round(rate, 1), final=final)
    if final:
        snap["outcome"] = outcome or "done"
    done, total = (bytes_done, bytes_total) if bytes_total else (files_done, files_total)
    percent = None
    if total and done is not None:
        percent = min(100, int(100.0 * done / total))
    if final and outcome in (None, "done"):
        # A copy that found most of the tree already there transfers a fraction of its bytes.
        percent = 100
    snap["percent"] = percent
    eta = None
    unit_done = bytes_done if rate_unit == "bytes" else files_done
    unit_total = bytes_total if rate_unit == "bytes" else files_total
    if not final and rate and unit_total and unit_done is not None:
        eta = max(0.0, (unit_total - unit_done) / rate)
    snap["eta"] = None if eta is None else round(eta, 1)
    snap["text"] = describe(snap)
    return snap


class ProgressFile:
    """Appends a progress line at most every ``interval`` seconds (or when forced).

    Without a path every call does nothing, so a step reports progress the same way whether or
    not anyone follows it. Safe to call from several threads.
    """

    def __init__(self, path, interval=5.0, what="", clock=time.time):
        self.path = path
        self.interval = float(interval)
        self.what = what
        self.clock = clock
        self.started = clock()
        self.last_write = None
        self.meter = RateMeter()
        self.lock = threading.Lock()
        self.last = None
        self.handle = None
        if path:
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            # A new step starts a new file: a reader must not take an earlier run's last line.
            self.handle = open(path, "w", encoding="utf-8")

    def update(self, bytes_done=None, bytes_total=None, files_done=None, files_total=None, note="",
               force=False, final=False, outcome=None):
        now = self.clock()
        with self.lock:
            rate_unit = "bytes" if bytes_done is not None else "files"
            measured = bytes_done if bytes_done is not None else files_done
            if measured is not None:
                self.meter.add(now, measured)
            if self.handle is None:
                return None
            if not (force or final) and self.last_write is not None and now - self.last_write < self.interval:
                return None
            rate = self.meter.rate()
            if final and now > self.started and measured is not None:
                rate = measured / (now - self.started)
            snap = snapshot(self.started, now, bytes_done, bytes_total, files_done, files_total, rate=rate,
                            rate_unit=rate_unit, note=note, final=final, outcome=outcome, what=self.what)
            self.handle.write(json.dumps(snap, sort_keys=True) + "\n")
            self.handle.flush()
            self.last_write = now
            self.last = snap
            return snap

    def restart_rate(self):
        """The next phase of the step counts other things: measure its rate from now on."""
        with self.lock:
            self.meter.reset()

    def finish(self, outcome="done", **counts):
        snap = self.update(final=True, outcome=outcome, **counts)
        self.close()
        return snap

    def close(self):
        with self.lock:
            if self.handle is not None:
                self.handle.close()
                self.handle = None


def read_last(path, limit=65536):
    """The last complete progress line of ``path`` as a dict, or None (no file, nothing yet)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            tail = handle.read()
    except (IOError, OSError):
        return None
    for raw in reversed(tail.split(b"\n")):
        raw = raw.strip()
        if not raw:
            continue
        try:
            snap = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue  # a line being written, or an older plain-text file
        if isinstance(snap, dict) and "text" in snap:
            return snap
    return None


class JobError(Exception):
    """The background job cannot be followed (no such job, unreadable status)."""


def job_status(async_dir, jid):
    """``(finished, data)`` of an Ansible background job from its status file, as async_status reads it."""
    if os.sep in jid or jid in ("", ".", ".."):
        raise JobError("jid: %r is not a job id" % jid)
    path = os.path.join(async_dir, jid)
    if not os.path.exists(path):
        raise JobError("jid: no background job %s in %s (finished and cleaned up, or started as another user)"
                       % (jid, async_dir))
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read())
    except ValueError:
        return False, {}  # not written yet: the job is starting
    except (IOError, OSError) as e:
        raise JobError("cannot read the status of job %s: %s" % (jid, e))
    if not isinstance(data, dict):
        raise JobError("job %s: its status file does not hold a result" % jid)
    # The async wrapper writes {"started": 1, "finished": 0} while the job runs and replaces it by
    # the module's result when it ends.
    finished = "started" not in data or bool(data.get("finished"))
    return finished, data


def follow_job(async_dir, jid, progress_file, wait, poll=0.5, clock=time.time, sleep=time.sleep):
    """Wait up to ``wait`` seconds for the job to end; ``(finished, data, last progress line)``."""
    deadline = clock() + wait
    while True:
        finished, data = job_status(async_dir, jid)
        if finished or clock() >= deadline:
            break
        sleep(min(poll, max(0.0, deadline - clock())))
    snap = read_last(progress_file) if progress_file else None
    return finished, data, snap


def remove_job(async_dir, jid):
    """Remove an ended job's status file (what async_status's cleanup mode does)."""
    os.unlink(os.path.join(async_dir, jid))
