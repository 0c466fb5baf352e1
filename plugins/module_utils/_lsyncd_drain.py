# SPDX-License-Identifier: GPL-3.0-or-later
"""Prove that lsyncd has shipped everything written to a source before now: the cutover's drain.

No Ansible import, so the unit tests drive it with real rsync processes and a stand-in lsyncd.

How (``Drain.run``), without rescanning the tree:

1. write a marker - a hidden file with a name and content unique to this run - into the source;
2. poll, every ``interval`` seconds, with ``rsync --checksum --dry-run --itemize-changes
   SOURCE/NAME TARGET/`` until rsync has nothing to say about it: the marker is on the target
   with identical content, so lsyncd has read the marker's event and every event before it;
3. poll lsyncd's status file until a report written after the marker (mtime strictly greater
   than the marker's) lists the sync of this source with no delays: what lsyncd had queued
   before the marker, including the rsync run that carried the marker, has finished;
4. always (``finally``), remove the marker from the source and, when it had arrived, from the
   target (``rsync --recursive --delete --times --include=/NAME --exclude=* SOURCE/ TARGET/``:
   only the marker's name takes part, ``--times`` gives the target's root directory the source's
   mtime again). lsyncd ships the deletion too when it deletes while running; a race between
   the two is retried once.

The status file and the log are read with ``_lsyncd.parse_status``/``parse_log``, the rsync
connection options come from ``_rsync.connection_options``.
"""
from __future__ import annotations

import binascii
import os
import re
import socket
import subprocess
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync
from ansible_collections.nodowntime.storage.plugins.module_utils._lsyncd import parse_log, parse_status

MARKER_PREFIX = ".nodowntime-drain-"
MARKER_PATTERN = re.compile(r"^\.nodowntime-drain-[0-9a-f]{16}$")
# As much of the log as lsyncd_info reads by default (log_bytes), so overflow counts compare.
LOG_BYTES = 1048576
# How long removing the marker from the target may take at most, whatever the timeout.
CLEANUP_SECONDS = 30.0
_ENV = dict(os.environ, LC_ALL="C")


class DrainError(Exception):
    """The drain failed. ``result`` holds what is known so far (drained false)."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def reported_source(source):
    """lsyncd reports a source resolved, with one trailing slash (as lsyncd_info matches it)."""
    resolved = os.path.realpath(source)
    return resolved if resolved.endswith("/") else resolved + "/"


def marker_name():
    return MARKER_PREFIX + binascii.hexlify(os.urandom(8)).decode("ascii")


def _dir(path):
    return path if path.endswith("/") else path + "/"


def arrival_argv(rsync, source, name, target, connection):
    """Prints an itemized line for the marker while the target's copy is missing or differs.

    Content is what proves arrival (``--checksum``; the content is unique to the run); owner,
    mode and times are not compared, since the sync may map them (chown, chmod, a daemon's uid).
    """
    return ([rsync, "--checksum", "--dry-run", "--itemize-changes", "--no-motd"] + list(connection)
            + [os.path.join(source, name), _dir(target)])


def removal_argv(rsync, source, name, target, connection):
    """Deletes the marker on the target and nothing else (the source no longer has it)."""
    return ([rsync, "--recursive", "--delete", "--times", "--itemize-changes", "--no-motd"] + list(connection)
            + ["--include=/" + name, "--exclude=*", _dir(source), _dir(target)])


def marker_left(stdout):
    """Whether rsync's itemized output lists a change: only the marker takes part, so any is one."""
    return any(_rsync.parse_item(line) is not None for line in _rsync.split_lines(stdout))


def sync_state(text, source):
    """``(complete, syncs)`` of a status report for ``source`` (as ``reported_source`` gives it).

    lsyncd truncates and rewrites the file in place: a report is complete once it reaches the
    ``Inotify watching`` line that lsyncd 2.2.x writes last. ``syncs`` are the reported syncs
    with that source (more than one when the source goes to several targets).
    """
    report = parse_status(text)
    complete = report["report_time"] is not None and report["watches"] is not None
    return complete, report, [s for s in report["syncs"] if s["source"] == source]


def read_overflows(log_file):
    """lsyncd's overflow count in the end of its log (as lsyncd_info's log.overflows), or None."""
    if not log_file or not os.path.isfile(log_file):
        return None
    with open(log_file, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - LOG_BYTES))
        text = f.read().decode("utf-8", "replace")
    return parse_log(text)["overflows"]


def run_process(argv, timeout):
    """``(rc, stdout, stderr)``; rc None when the process was killed at ``timeout`` seconds."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_ENV, timeout=max(0.1, timeout), check=False)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        err = e.stderr or b""
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def _describe_rsync(rc, stderr):
    if rc is None:
        return "rsync did not finish in time"
    last = [line for line in stderr.splitlines() if line.strip()]
    return "rsync exited %d (%s)%s" % (rc, _rsync.describe_exit(rc), ": " + last[-1] if last else "")


class Drain:
    """One drain of one sync. ``run()`` returns the result dict or raises DrainError."""

    def __init__(self, source, target, status_file, log_file=None, connection=None, rsync="rsync",
                 timeout=30.0, interval=0.2, overflows_before=None, run=run_process,
                 clock=time.monotonic, sleep=time.sleep, marker=None, empty_queue=True):
        self.source = os.path.realpath(source)
        self.reported = reported_source(source)
        self.target = target
        self.status_file = status_file
        self.log_file = log_file
        self.connection = list(connection or [])
        self.rsync = rsync
        self.timeout = float(timeout)
        self.interval = float(interval)
        self.overflows_before = overflows_before
        self.empty_queue = empty_queue
        self.run_process = run
        self.clock = clock
        self.sleep = sleep
        self.name = marker or marker_name()
        self.marker = os.path.join(self.source, self.name)
        self.marker_mtime_ns = None
        self.written = False
        if marker is not None:
            # Written by an earlier run (``write_marker``): wait for it, then remove it.
            if not MARKER_PATTERN.match(marker):
                raise DrainError("marker: %r is not a marker name this module writes (%s<16 hex digits>)"
                                 % (marker, MARKER_PREFIX))
            try:
                self.marker_mtime_ns = os.stat(self.marker).st_mtime_ns
            except FileNotFoundError:
                raise DrainError("marker: %s is not in %s; was it written by an earlier run with wait=false "
                                 "and not removed since?" % (marker, self.source))
            self.written = True
        self.arrived = False
        self.last_rsync_error = None

    # -- the marker -------------------------------------------------------------------------

    def _write_marker(self):
        content = "nodowntime.storage lsyncd_drain %s %s %r\n" % (self.name, socket.gethostname(), time.time())
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.written = True
        try:
            os.write(fd, content.encode("utf-8"))
        finally:
            os.close(fd)
        self.marker_mtime_ns = os.stat(self.marker).st_mtime_ns

    def _remove_from_source(self):
        try:
            os.unlink(self.marker)
        except FileNotFoundError:
            pass

    def _remove_from_target(self):
        """Delete the marker on the target; retried once (lsyncd may delete it at the same time)."""
        argv = removal_argv(self.rsync, self.source, self.name, self.target, self.connection)
        for dummy in range(2):
            rc, dummy_out, err = self.run_process(argv, CLEANUP_SECONDS)
            if rc == 0:
                return None
        return "the marker %s may be left on %s: removing it failed, %s; argv: %s" % (
            self.name, self.target, _describe_rsync(rc, err), argv)

    def _has_arrived(self, remaining):
        argv = arrival_argv(self.rsync, self.source, self.name, self.target, self.connection)
        rc, out, err = self.run_process(argv, remaining)
        if rc is None and remaining < 1.0:
            return False  # cut short by the deadline, not a failure of its own
        if rc != 0:
            self.last_rsync_error = _describe_rsync(rc, err)
            if rc == 1:
                raise DrainError("target: rsync refused the command (syntax or usage): %s; argv: %s"
                                 % (self.last_rsync_error, argv))
            return False
        return not marker_left(out)

    # -- the status file --------------------------------------------------------------------

    def _read_status(self):
        """``(mtime_ns, text)`` of a status file read whole between two equal stats, or None."""
        try:
            before = os.stat(self.status_file)
            with open(self.status_file, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            after = os.stat(self.status_file)
        except OSError:
            return None
        if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
            return None  # being rewritten: read it at the next poll
        return after.st_mtime_ns, text

    # -- the loop ---------------------------------------------------------------------------

    def write_marker(self):
        """Only write the marker (the first half of a drain split in two); returns the result."""
        self._write_marker()
        return dict(changed=False, drained=False, marker=self.name, seconds=0.0, marker_seconds=None,
                    pending=None, lsyncd_running=None, overflows=read_overflows(self.log_file), overflow_moved=False)

    def run(self):
        start = self.clock()
        deadline = start + self.timeout
        result = dict(changed=False, drained=False, marker=self.name, seconds=0.0, marker_seconds=None,
                      pending=None, lsyncd_running=False, overflows=None, overflow_moved=False)
        failure = None
        try:
            if self.marker_mtime_ns is None:
                self._write_marker()
            failure = self._poll(start, deadline, result)
            result["drained"] = failure is None
        except DrainError as e:
            failure = str(e)
        finally:
            if self.written:
                self._remove_from_source()
            if self.arrived:
                left = self._remove_from_target()
                if left and failure is None:
                    failure = "cleanup: " + left
                elif left:
                    failure += "; " + left
            result["seconds"] = round(self.clock() - start, 3)
            result["overflows"] = read_overflows(self.log_file)
            result["overflow_moved"] = bool(self.overflows_before is not None and result["overflows"] is not None
                                            and result["overflows"] > self.overflows_before)
        if failure:
            result["drained"] = False
            raise DrainError(failure, result)
        return result

    def _poll(self, start, deadline, result):
        """Poll until drained (returns None) or the deadline (returns the timeout message)."""
        report = None
        while True:
            now = self.clock()
            if not self.arrived:
                self.arrived = self._has_arrived(deadline - now)
                if self.arrived:
                    result["marker_seconds"] = round(self.clock() - start, 3)
                    if not self.empty_queue:
                        return None
            status = self._read_status()
            if status is not None and status[0] > self.marker_mtime_ns:
                complete, parsed, syncs = sync_state(status[1], self.reported)
                if complete:
                    result["lsyncd_running"] = True
                    report = parsed
                    if not syncs:
                        raise DrainError(
                            "source: lsyncd's report of %s in %s lists no sync of %s (it lists %s); is %s the "
                            "source of an lsyncd sync?" % (parsed["report_time"], self.status_file, self.reported,
                                                           ", ".join(s["source"] for s in parsed["syncs"]) or "none",
                                                           self.source))
                    result["pending"] = sum(s["delays"] for s in syncs)
                    if self.arrived and result["pending"] == 0:
                        return None
            if self.clock() >= deadline:
                return self._timeout_message(result, report)
            self.sleep(max(0.0, min(self.interval, deadline - self.clock())))

    def _timeout_message(self, result, report):
        missing = []
        if not self.arrived:
            text = "the marker %s had not arrived on %s" % (self.name, self.target)
            if self.last_rsync_error:
                text += " (last check: %s)" % self.last_rsync_error
            missing.append(text)
        elif report is None:
            missing.append("the marker arrived after %ss but lsyncd wrote no complete status report after it"
                           % result["marker_seconds"])
        else:
            missing.append("the queue of %s was not empty: %d pending delay(s) in the report of %s"
                           % (self.reported, result["pending"], report["report_time"]))
        if not result["lsyncd_running"]:
            missing.append("lsyncd's status file %s was not rewritten after the marker was written: "
                           "lsyncd is probably not running" % self.status_file)
        return "timeout: after %ss, %s" % (self.timeout, "; ".join(missing))
