# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers for driving rsync: option parsing, work splitting, command lines, output parsing.

Nothing here runs a process; the module ``rsync_copy`` does. Every parser is tested against
output recorded from real rsync 3.2.7 runs (tests/unit/plugins/module_utils/fixtures/rsync-3.2.7).
"""
from __future__ import annotations

import os
import re

# rsync(1) exit codes, for messages.
EXIT_CODES = {
    0: "success",
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files, dirs",
    4: "requested action not supported",
    5: "error starting client-server protocol",
    6: "daemon unable to append to log-file",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in rsync protocol data stream",
    13: "errors with program diagnostics",
    14: "error in IPC code",
    20: "received SIGUSR1 or SIGINT",
    21: "some error returned by waitpid()",
    22: "error allocating core memory buffers",
    23: "partial transfer due to error",
    24: "partial transfer due to vanished source files",
    25: "the --max-delete limit stopped deletions",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
}

_BWLIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([KMGTP])(i?B)?|(B))?\s*$", re.IGNORECASE)
_POWERS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def parse_bwlimit(value):
    """Return the bandwidth limit ``value`` in bytes per second (0 means no limit).

    Accepts what rsync's --bwlimit accepts: a plain number (KiB/s, rsync's default unit), or a
    number with a suffix: ``K``/``KiB`` (1024), ``KB`` (1000), likewise ``M``, ``G``, ``T``,
    ``P``, and ``B`` for bytes. Raises ValueError naming the value otherwise.
    """
    text = str(value)
    match = _BWLIMIT_RE.match(text)
    if not match:
        raise ValueError(
            "bwlimit=%r is not a rate: use a number of KiB/s or a number with a unit such as 4096, "
            "512K, 40MiB, 40MB or 1G (K/KiB=1024, KB=1000), or 0 for no limit" % (text,))
    number = float(match.group(1))
    unit, suffix, plain_bytes = match.group(2), match.group(3), match.group(4)
    if plain_bytes:
        return int(number)
    if not unit:
        return int(number * 1024)
    base = 1000 if suffix and suffix.upper() == "B" else 1024
    return int(number * base ** _POWERS[unit.upper()])


def split_bwlimit(bytes_per_second, workers):
    """Share a total limit between ``workers`` concurrent rsyncs: KiB/s each (>= 1), or 0 (none)."""
    if not bytes_per_second:
        return 0
    return max(1, int(bytes_per_second // 1024 // max(1, workers)))


def dest_is_daemon(dest):
    """True for ``host::module`` and ``rsync://`` destinations (rsync daemon), False otherwise."""
    return dest.startswith("rsync://") or bool(re.match(r"^[^/:]*::", dest))


def lock_name(dest):
    """A file name for the lock of a destination: the same destination always gets the same name."""
    return "rsync-copy-" + re.sub(r"[^A-Za-z0-9._-]+", "_", dest).strip("_") + ".lock"


def count_entries(path, limit=None):
    """Number of entries below ``path`` (files and directories), stopping early past ``limit``."""
    return _scan(path, limit=limit)


def _scan(path, limit=None, links=None, owner=None):
    """Count the entries below ``path``; with ``links`` (a dict), also record every non-directory
    with more than one link as ``links[(st_dev, st_ino)] -> set of owners``, adding ``owner``."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    total += 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif links is not None:
                        _note_link(entry, links, owner)
        except OSError:
            continue
        if limit is not None and total > limit:
            break
    return total


def _note_link(entry, links, owner):
    # Only multiply-linked inodes matter, and they are what rsync -H keeps in memory too.
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return
    if st.st_nlink > 1:
        links.setdefault((st.st_dev, st.st_ino), set()).add(owner)


class _Union:
    """Union-find over top-level directory names."""

    def __init__(self, names):
        self.parent = dict((name, name) for name in names)

    def find(self, name):
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def join(self, first, second):
        first, second = self.find(first), self.find(second)
        if first != second:
            self.parent[max(first, second)] = min(first, second)


# The owner recorded for files at the top level of the source (copied by the --dirs first pass).
TOP_LEVEL = None


def plan_workers(src, workers, hard_links=False):
    """Split the top-level directories of ``src`` into at most ``workers`` balanced groups.

    Returns ``(groups, sizes, warning)``: ``groups`` is a list of lists of directory names (each
    list is one rsync worker), ``sizes`` the entry count of each group, ``warning`` None or the
    reason the copy falls back to a single rsync. Top-level files, symlinks and deletions of
    top-level entries are not in any group: a first pass (``--dirs``) handles them.
    Directories are assigned largest first to the currently smallest group (greedy), so one huge
    directory still gets a worker of its own and the others share the rest.

    With ``hard_links``, rsync --hard-links only links names that one rsync process sees, so
    top-level directories that share an inode are merged into one unit (union-find) that a
    single worker copies. A top-level file that shares an inode with anything inside a
    directory cannot be kept together with it (the first pass does not recurse): then no groups
    are returned and the warning says why, and one rsync copies the whole tree.
    """
    if workers <= 1:
        return [], [], None
    links = {} if hard_links else None
    sizes_by_dir = {}
    with os.scandir(src) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                sizes_by_dir[entry.name] = _scan(entry.path, links=links, owner=entry.name) + 1
            elif links is not None:
                _note_link(entry, links, TOP_LEVEL)
    if len(sizes_by_dir) < 2:
        return [], [], None
    union = _Union(sizes_by_dir)
    for owners in (links or {}).values():
        if TOP_LEVEL in owners and len(owners) > 1:
            return [], [], (
                "hard_links: a top-level file of %s shares its inode with a file inside a top-level "
                "directory; one rsync copies the whole tree so that rsync keeps them linked "
                "(workers=%d not used)" % (src, workers))
        names = sorted(owners)
        for name in names[1:]:
            union.join(names[0], name)
    units = {}
    for name, size in sizes_by_dir.items():
        unit = units.setdefault(union.find(name), [0, []])
        unit[0] += size
        unit[1].append(name)
    if len(units) < 2:
        return [], [], (
            "hard_links: every top-level directory of %s shares inodes with the others; one rsync "
            "copies the whole tree so that rsync keeps them linked (workers=%d not used)" % (src, workers))
    ordered = sorted(units.values(), key=lambda unit: (-unit[0], min(unit[1])))
    count = min(workers, len(ordered))
    groups = [[] for dummy in range(count)]
    sizes = [0] * count
    for size, names in ordered:
        index = sizes.index(min(sizes))
        groups[index] += names
        sizes[index] += size
    for group in groups:
        group.sort()
    return groups, sizes, None


def connection_options(password_file=None, rsh=None, io_timeout=0, connect_timeout=0, daemon=True):
    """How rsync reaches the other end: password file, remote shell, I/O and connection timeouts
    (``--contimeout`` only for a daemon, the one kind of destination it applies to)."""
    argv = []
    if password_file:
        argv.append("--password-file=%s" % password_file)
    if rsh:
        argv.append("--rsh=%s" % rsh)
    if io_timeout:
        argv.append("--timeout=%d" % io_timeout)
    if connect_timeout and daemon:
        argv.append("--contimeout=%d" % connect_timeout)
    return argv


def base_options(archive=True, delete=False, partial_dir=None, exclude=None, bwlimit_kib=0,
                 compress=False, numeric_ids=False, io_timeout=0, contimeout=0, password_file=None,
                 rsh=None, dry_run=False, extra=None, hard_links=False, acls=False, xattrs=False,
                 sparse=False):
    """The rsync options shared by every process of one copy (no source or destination)."""
    argv = []
    if archive:
        argv.append("--archive")
    # What --archive leaves out: hard links, ACLs, extended attributes, holes.
    for wanted, option in ((hard_links, "--hard-links"), (acls, "--acls"), (xattrs, "--xattrs"),
                           (sparse, "--sparse")):
        if wanted:
            argv.append(option)
    if delete:
        argv.append("--delete")
    if partial_dir:
        argv.append("--partial-dir=%s" % partial_dir)
    for pattern in exclude or []:
        argv.append("--exclude=%s" % pattern)
    if bwlimit_kib:
        argv.append("--bwlimit=%d" % bwlimit_kib)
    if compress:
        argv.append("--compress")
    if numeric_ids:
        argv.append("--numeric-ids")
    argv += connection_options(password_file, rsh, io_timeout, contimeout)
    if dry_run:
        argv.append("--dry-run")
    # What the module parses: one line per change, the summary, and whole-transfer progress.
    argv += ["--itemize-changes", "--stats", "--info=progress2", "--no-human-readable"]
    argv += list(extra or [])
    return argv


def commands(rsync, options, src, dest, groups):
    """The command lines of one copy.

    Without groups: one ``rsync OPTIONS SRC/ DEST/``. With groups: a first pass that copies the
    top level only (``--dirs``, so top-level files are copied, top-level directories created and,
    with ``--delete``, top-level entries gone from the source removed), then one ``--relative``
    rsync per group of top-level directories (``SRC/./dir``), run in parallel; a worker ignores
    a directory that vanished since it was planned.
    Returns ``[(label, argv)]``; the first pass, when present, is labelled ``top``.
    """
    src = src.rstrip("/") or "/"
    source = src + "/" if src != "/" else "/"
    target = dest if dest.endswith("/") else dest + "/"
    if not groups:
        return [("all", [rsync] + options + [source, target])]
    top = [rsync] + _without_archive_recursion(options) + [source, target]
    result = [("top", top)]
    for index, group in enumerate(groups, 1):
        paths = ["%s/./%s" % (src if src != "/" else "", name) for name in group]
        # A top-level directory removed on the live tree after it was planned would make rsync
        # exit 23 (not 24); it is gone, so there is nothing left to copy.
        result.append(("worker%d" % index, [rsync] + options + ["--relative", "--ignore-missing-args"] + paths + [target]))
    return result


def _without_archive_recursion(options):
    # --archive implies --recursive; the top pass must not recurse but keep the other -a options.
    return options + ["--no-recursive", "--dirs"]


# -- output -------------------------------------------------------------------------------------

_ITEM_RE = re.compile(r"^([<>ch.][fdLDS].{9}) (.+)$")
_DELETE_RE = re.compile(r"^\*deleting +(.+)$")
_PROGRESS_RE = re.compile(
    r"^\s*([\d,.]+)\s+(\d+)%\s+(\S+)\s+(\d+:\d\d:\d\d)(?:\s+\((.*)\))?\s*$")
_STATS = {
    "Number of files": "files",
    "Number of created files": "files_created",
    "Number of deleted files": "files_deleted_reported",
    "Number of regular files transferred": "files_transferred",
    "Total file size": "total_size",
    "Total transferred file size": "bytes_transferred",
    "Literal data": "literal_bytes",
    "Matched data": "matched_bytes",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}
_STATS_RE = re.compile(r"^(%s): ([\d,]+)" % "|".join(re.escape(key) for key in _STATS))


def split_lines(text):
    """rsync's stdout split on both CR (progress updates) and LF, without empty lines."""
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def parse_item(line):
    """``(kind, path)`` for an --itemize-changes line, or None.

    kind is ``deleted`` for ``*deleting`` lines, else the 11-character change string.
    A symlink's `` -> target`` and a hard link's `` => other name`` are removed from the path.
    """
    match = _DELETE_RE.match(line)
    if match:
        return ("deleted", match.group(1))
    match = _ITEM_RE.match(line)
    if not match:
        return None
    code, path = match.group(1), match.group(2)
    if code[1] == "L" and " -> " in path:
        path = path.split(" -> ", 1)[0]
    elif code[0] == "h" and " => " in path:
        # --hard-links: "hf+++++++++ a/one => b/two" names the file it is linked to.
        path = path.rsplit(" => ", 1)[0]
    return (code, path)


def parse_progress(line):
    """A dict for an --info=progress2 line, or None."""
    match = _PROGRESS_RE.match(line)
    if not match:
        return None
    return {
        "bytes": int(re.sub(r"[,.]", "", match.group(1))),
        "percent": int(match.group(2)),
        "rate": match.group(3),
        "elapsed": match.group(4),
        "detail": match.group(5) or "",
    }


def parse_stats(text):
    """The --stats block of rsync's output as a dict of ints (keys of ``_STATS``)."""
    stats = {}
    for line in split_lines(text):
        match = _STATS_RE.match(line.strip())
        if match:
            stats[_STATS[match.group(1)]] = int(match.group(2).replace(",", ""))
    return stats


def parse_stdout(text):
    """``(items, stats)``: the itemized changes (list of (kind, path)) and the stats dict."""
    items = []
    for line in split_lines(text):
        item = parse_item(line)
        if item is not None:
            items.append(item)
    return items, parse_stats(text)


_VANISHED_RE = re.compile(r'^file has vanished: "(.*)"$')
_ERROR_PATH_RE = re.compile(r'^rsync: (?:\[\w+\] )?.*?"(.+?)"(?: \(in [^)]*\))?:? (?:failed: )?(.+)$')
# Receiver complaints that name a path without quotes (rsync 3.2.7 and 3.5).
_ERROR_BARE_RE = re.compile(r"^(cannot delete non-empty directory|could not make way for new [a-z ]+|"
                            r"skipping non-regular file|cannot delete [a-z ]+): (.+)$")


def parse_vanished(stderr):
    """Source files rsync reported as vanished (exit 24), in report order."""
    return [m.group(1) for m in (_VANISHED_RE.match(line) for line in stderr.splitlines()) if m]


def parse_errors(stderr):
    """rsync's complaints: ``(messages, failed)``.

    ``messages`` keeps every non-empty stderr line except the vanished-file notices, as written;
    ``failed`` is ``[{path, error}]`` for the lines that name a file.
    """
    messages = []
    failed = []
    for line in stderr.splitlines():
        line = line.rstrip()
        if not line.strip() or _VANISHED_RE.match(line):
            continue
        messages.append(line)
        if line.startswith("rsync error:") or line.startswith("rsync warning:"):
            continue
        match = _ERROR_PATH_RE.match(line)
        if match:
            failed.append({"path": match.group(1), "error": match.group(2)})
            continue
        match = _ERROR_BARE_RE.match(line)
        if match:
            failed.append({"path": match.group(2), "error": match.group(1)})
    return messages, failed


def sum_stats(stats_list):
    """Add up the stats of several rsync processes."""
    total = {}
    for stats in stats_list:
        for key, value in stats.items():
            total[key] = total.get(key, 0) + value
    return total


def describe_exit(rc):
    """Human meaning of an rsync exit code (negative: killed by that signal)."""
    if rc < 0:
        return "killed by signal %d" % -rc
    return EXIT_CODES.get(rc, "unknown exit code")
