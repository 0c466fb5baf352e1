# SPDX-License-Identifier: GPL-3.0-or-later
"""One report shape for every proof that two trees agree.

``tree_verify`` (rsync's dry run between the old and the new server) and FSR's own check
(``fsradm verify`` / ``fsradm result``) both end in this shape, so a playbook, a gate before
the cutover and a migration report read one format whatever did the checking:

* ``totals``: the nine counters of ``fsradm result`` as integers - ``diff_*`` (on both sides
  but not alike), ``missing_*`` (on the source only), ``orphaned_*`` (on the target only), each
  for directories, other entries (``_file``) and their bytes;
* ``differences``: the first ``limit`` entries of each kind, each ``{type, path, entry, size,
  differs}`` (``type`` is ``different``, ``missing`` or ``orphaned``, as in ``fsradm result``);
* ``started_at`` / ``finished_at`` (ISO 8601, UTC; not ``started`` / ``finished``, which
  ``async_status`` overwrites with booleans), ``entries_checked`` and ``clean``.
"""
from __future__ import annotations

import datetime

KINDS = ("different", "missing", "orphaned")
_PREFIX = {"different": "diff", "missing": "missing", "orphaned": "orphaned"}
TOTAL_KEYS = tuple("%s_%s" % (_PREFIX[kind], unit) for kind in KINDS for unit in ("dir", "file", "bytes"))


def empty_totals():
    return dict.fromkeys(TOTAL_KEYS, 0)


def is_clean(totals):
    return not any(totals.get(key) for key in TOTAL_KEYS)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Tally:
    """Counts differences into ``totals`` and keeps the first ``limit`` of each kind."""

    def __init__(self, limit):
        self.limit = limit
        self.totals = empty_totals()
        self.kept = []
        self.per_kind = dict.fromkeys(KINDS, 0)
        self.differs_counts = {}

    def add(self, kind, path, entry, size=0, differs=()):
        prefix = _PREFIX[kind]
        if entry == "dir":
            self.totals[prefix + "_dir"] += 1
        else:
            self.totals[prefix + "_file"] += 1
            self.totals[prefix + "_bytes"] += size
        for name in differs:
            self.differs_counts[name] = self.differs_counts.get(name, 0) + 1
        if self.per_kind[kind] < self.limit:
            self.kept.append(dict(type=kind, path=path, entry=entry, size=size, differs=list(differs)))
        self.per_kind[kind] += 1

    @property
    def count(self):
        return sum(self.per_kind.values())

    @property
    def truncated(self):
        return len(self.kept) < self.count

    def as_dict(self):
        return dict(totals=self.totals, differences=self.kept, differences_truncated=self.truncated,
                    differs_counts=self.differs_counts)


def describe(totals):
    """``"2 different (1 dir, 1 file, 14 bytes), 1 missing (1 file, 3 bytes)"`` or ``"none"``."""
    parts = []
    for kind in KINDS:
        prefix = _PREFIX[kind]
        dirs, files, size = (totals.get(prefix + suffix, 0) for suffix in ("_dir", "_file", "_bytes"))
        if dirs or files:
            parts.append("%d %s (%d dir%s, %d file%s, %d bytes)" % (
                dirs + files, kind, dirs, "" if dirs == 1 else "s", files, "" if files == 1 else "s", size))
    return ", ".join(parts) or "none"


def summary(report):
    """One line a person can act on, for a report of ``tree_verify``."""
    head = "the trees agree" if report["clean"] else "lasting differences: %s" % describe(report["totals"])
    line = "%s - %d entries compared at %s depth in %.1f s" % (
        head, report.get("entries_checked") or 0, report.get("depth", "attributes"), report.get("elapsed", 0))
    in_flight = (report.get("in_flight") or {}).get("totals") or {}
    if not is_clean(in_flight):
        line += "; in flight, settled within %s s: %s" % (report.get("settle", 0), describe(in_flight))
    return line


def difference_lines(differences, count=10):
    """``"different  tree/f020 (file: size, mtime)"`` for the first ``count`` differences."""
    return ["%-10s %s (%s%s)" % (d["type"], d["path"], d["entry"], ": " + ", ".join(d["differs"]) if d["differs"] else "")
            for d in differences[:count]]


# fsradm names what differs by property; the report uses the names tree_verify uses.
_FSR_PROPERTIES = {"mod_time": "mtime", "size": "size", "hash": "checksum", "attributes": "attributes",
                   "security": "acl", "owner": "owner"}


def from_fsr_result(parsed, limit=100):
    """The report shape for ``_fsradm.parse_result`` output (``fsradm result`` JSON).

    FSR names no entry count, so ``entries_checked`` is None; ``peer_node``, ``canceled`` and
    ``synced_bytes`` are FSR's own and kept beside the shared keys.
    """
    totals = empty_totals()
    for key in TOTAL_KEYS:
        value = parsed["totals"].get(key, 0)
        totals[key] = value if isinstance(value, int) else 0
    kept = []
    per_kind = dict.fromkeys(KINDS, 0)
    differs_counts = {}
    for item in parsed.get("files") or []:
        kind = item.get("type") or "different"
        properties = item.get("properties") or {}
        differs = sorted(_FSR_PROPERTIES.get(name, name) for name in properties)
        for name in differs:
            differs_counts[name] = differs_counts.get(name, 0) + 1
        per_kind[kind] = per_kind.get(kind, 0) + 1
        if per_kind[kind] > limit:
            continue
        size = (properties.get("size") or {}).get("local")
        kept.append(dict(
            type=kind, path=item.get("name"), entry="dir" if item.get("is_dir") else "file",
            size=int(size) if isinstance(size, (int, str)) and str(size).isdigit() else 0,
            differs=differs))
    synced = parsed["totals"].get("synced_bytes", 0)
    return dict(
        totals=totals,
        clean=is_clean(totals),
        differences=kept,
        differences_truncated=sum(per_kind.values()) > len(kept),
        differs_counts=differs_counts,
        started_at=parsed.get("start_time"),
        finished_at=parsed.get("end_time"),
        entries_checked=None,
        in_flight=None,
        peer_node=parsed.get("peer_node"),
        canceled=parsed.get("canceled", False),
        synced_bytes=synced if isinstance(synced, int) else 0,
    )
