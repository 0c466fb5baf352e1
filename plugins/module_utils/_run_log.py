# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run log of a scheduled job: one JSON object per line, one line per run.

Every job of the collection that runs without Ansible (a transfer between sites, a tree backup, a
Redis backup) appends one record per run - also a run skipped because another held the lock, and a
failed one - so that ``job_report`` can count runs against the schedule. The fields every record
has:

- ``job``: the job's name; ``kind``: ``transfer``, ``tree_backup`` or ``redis_backup``;
- ``action``: ``transfer``, ``backup``, ``drill`` or ``restore``;
- ``start``, ``end``: UTC, ``2026-11-30T03:15:00Z``; ``elapsed``: seconds;
- ``outcome``: ``ok``, ``failed`` or ``skipped``; ``msg`` says why for the last two;
- ``trigger``: ``systemd``, ``cron``, ``manual`` or ``ansible``; ``host``.

And where they apply: ``files``, ``bytes``, ``rate`` (bytes per second), ``vanished``,
``rsync_rc``, ``archive``, ``size``, ``sha256``, ``deleted`` (archives removed by retention),
``passed`` (a drill). No Ansible import: the host-side jobs use this file as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import socket

OUTCOMES = ("ok", "failed", "skipped")
# A skipped run exits with this status (EX_TEMPFAIL), as ``flock -xn -E 75`` would.
EXIT_SKIPPED = 75


def utc_stamp(when=None):
    """``2026-11-30T03:15:00Z`` for an aware or naive-UTC datetime (now when None)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text):
    """The aware UTC datetime of a record's ``start`` or ``end``; None when it is not one."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def new_record(job, kind, action, trigger, start=None):
    """The fields every record starts with; the caller adds the outcome and the figures."""
    return dict(job=job, kind=kind, action=action, trigger=trigger or "manual",
                host=socket.gethostname(), start=utc_stamp(start))


def append(path, record):
    """Append ``record`` as one line, synced, so a crash right after leaves it in the log.

    ``O_APPEND`` with one ``write`` keeps concurrent writers' lines whole.
    """
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path):
    """``(records, bad_lines)``: the records in order, and how many lines were not JSON objects.

    A missing log is an empty one. A torn last line (a crash while writing) counts as bad, never
    as an error, so a report still reads everything else.
    """
    records = []
    bad = 0
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return records, bad
    with f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except ValueError:
                bad += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad += 1
    return records, bad
