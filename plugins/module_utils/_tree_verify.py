# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare a source tree with its copy through rsync's dry run, streamed, in the shape of ``_tree_report``.

rsync already knows how to compare two trees on two hosts, attribute by attribute: a dry run
(``--dry-run --delete``) with ``--out-format="%i %l %n"`` prints one line per entry that differs
(the itemized change, the source's size, the name) and nothing for the rest. Its output is read
line by line while it runs, so memory does not grow with the tree, only with the differences
kept for the report.

Passes:

1. the whole tree, source -> target: every entry that is missing on the target or differs,
   and every entry rsync would delete there (orphaned);
2. with ``settle``, after waiting: the entries of pass 1 again (``--files-from``), source ->
   target. A difference that is still there while the source entry did not change since pass 1
   (same ctime) is persistent; the others were in flight (lsyncd had not shipped them yet);
3. the orphaned entries of pass 1, target -> source (``--files-from``): rsync's deletion lines
   carry no size or type, this pass supplies both and confirms the entry is still only on the
   target. With ``settle``, an entry whose directory on the source changed since pass 1 (its
   ctime) was in flight: a writer deleting and creating names there keeps lsyncd shipping the
   deletions. A dry run, like the others: the source is never written.

rsync escapes every byte that is not printable ASCII in names (``\\#ooo``, LC_ALL=C), so one
line is one entry whatever the name holds; ``display`` turns the raw bytes into an exact,
reversible text.

With a progress file, every pass also runs with ``--info=progress2``: rsync then prints, between
the entry lines, how many entries of its file list it has compared (``to-chk=M/T``, or
``ir-chk`` while the list still grows), each update ended by a carriage return. The output is
split at carriage returns as well as at newlines so these are read as they come (a name never
holds either: rsync escapes every control character but the tab), and ``VerifyProgress`` turns
them into progress lines (see ``_progress``).
"""
from __future__ import annotations

import collections
import math
import os
import re
import stat
import subprocess
import tempfile
import threading
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress, _rsync
from ansible_collections.nodowntime.storage.plugins.module_utils._rsync_runner import scan_totals
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import (
    Tally, is_clean, utc_now)

DEPTHS = ("attributes", "checksum")
# What ``depth: attributes`` compares, each with the rsync option that compares it; any of
# them can be left out with ``ignore``.
ATTRIBUTES = (
    ("perms", "--perms"),
    ("times", "--times"),
    ("owner", "--owner"),
    ("group", "--group"),
    ("devices", "--devices"),
    ("specials", "--specials"),
    ("hard_links", "--hard-links"),
    ("acls", "--acls"),
    ("xattrs", "--xattrs"),
)
IGNORABLE = tuple(name for name, dummy in ATTRIBUTES) + ("dir_times",)
OUT_FORMAT = "--out-format=%i %l %n"

_ENTRY = {"f": "file", "d": "dir", "L": "symlink", "D": "device", "S": "special"}
# The attribute letters of an itemized change (YXcstpoguax), by position.
_FLAG_NAMES = (None, "size", "mtime", "perms", "owner", "group", "atime", "acl", "xattr")
_CHANGED_VALUE = {"file": "checksum", "symlink": "target", "device": "device", "special": "device"}
_ESCAPE_RE = re.compile(rb"\\#([0-7]{3})")

Item = collections.namedtuple("Item", "kind entry size name differs")


class VerifyError(Exception):
    """A comparison that could not be made; ``option`` names the option at fault."""

    def __init__(self, option, message, rc=None, stderr=""):
        super().__init__("%s: %s" % (option, message))
        self.option = option
        self.rc = rc
        self.stderr = stderr


# -- options ------------------------------------------------------------------------------------

def target_kind(target):
    """``daemon`` (host::share, rsync://), ``ssh`` ([user@]host:path), ``local`` (/path) or None."""
    if _rsync.dest_is_daemon(target):
        return "daemon"
    if target.startswith("/"):
        return "local"
    if re.match(r"^[^/:]+:", target):
        return "ssh"
    return None


def compare_options(depth, ignore):
    """The rsync options that decide what counts as a difference."""
    ignore = set(ignore or ())
    if "perms" in ignore and "acls" not in ignore:
        raise ValueError("ignore: perms needs acls too (rsync compares ACLs together with the permission bits)")
    argv = ["--links", "--numeric-ids"] + [option for name, option in ATTRIBUTES if name not in ignore]
    if "dir_times" in ignore:
        argv.append("--omit-dir-times")
    if "times" in ignore and depth != "checksum":
        # Without --times rsync's quick check still calls a file with another mtime different.
        argv.append("--size-only")
    if depth == "checksum":
        argv.append("--checksum")
    return argv


# The module and the tests build the connection part with this name.
connection_options = _rsync.connection_options


def _dir(path):
    return path if path.endswith("/") else path + "/"


# rsync reports how far it is, between the entry lines (only with a progress file).
PROGRESS_OPTION = "--info=progress2"


def tree_argv(rsync, compare, connection, excludes, source, target, progress=False):
    """Pass 1: the whole tree. ``--ignore-errors`` keeps rsync listing deletions after a read
    error (it would skip them silently otherwise); a read error still fails the verify."""
    return ([rsync, "--dry-run", "--recursive", "--delete", "--ignore-errors"] + compare
            + ["--exclude=%s" % pattern for pattern in excludes]
            + [OUT_FORMAT, "--stats", "--no-human-readable"] + ([PROGRESS_OPTION] if progress else [])
            + connection + [_dir(source), _dir(target)])


def list_argv(rsync, compare, connection, excludes, list_file, sender, receiver, progress=False):
    """Passes 2 and 3: only the names in ``list_file`` (NUL-separated), each on its own.

    ``--force`` lets the dry run replace a non-empty directory by a file (a type change) instead
    of failing; implied directories let it look below a path that is a file on the receiver (the
    other way round) and keep it from following a receiver's symlink to another directory."""
    return ([rsync, "--dry-run", "--files-from=%s" % list_file, "--from0", "--force",
             "--ignore-missing-args"] + compare
            + ["--exclude=%s" % pattern for pattern in excludes]
            + [OUT_FORMAT, "--no-human-readable"] + ([PROGRESS_OPTION] if progress else [])
            + connection + [_dir(sender), _dir(receiver)])


# -- output ------------------------------------------------------------------------------------

def unescape(name):
    """The raw bytes of a name rsync printed with ``\\#ooo`` escapes."""
    return _ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 8)]), name)


def display(raw):
    """An exact text for a raw name: printable UTF-8 as it is; a backslash doubled; every other
    byte or character as ``\\xNN`` / ``\\uNNNN``, so no name is dropped or mistaken for another."""
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append("\\x%02x" % (code - 0xDC00))
        elif char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append("\\x%02x" % code)
        elif code <= 0xFFFF:
            out.append("\\u%04x" % code)  # \xNN above 0x7f is a raw byte that is not UTF-8
        else:
            out.append("\\U%08x" % code)
    return "".join(out)


def parse_line(line):
    """An ``Item`` for one line of ``--out-format="%i %l %n"`` output (bytes), or None.

    ``name`` is the raw name (rsync's escapes undone), without a directory's trailing slash.
    """
    if len(line) < 14 or line[11:12] != b" ":
        return None
    code, rest = line[:11], line[12:]
    size_text, sep, name = rest.partition(b" ")
    if not sep or not size_text.isdigit() or not name:
        return None
    if name.endswith(b"/") and name != b"/":
        name = name[:-1]
    name = unescape(name)
    if code.startswith(b"*deleting"):
        entry = "dir" if rest.endswith(b"/") else "file"
        return Item("orphaned", entry, 0, name, ())
    kind_char, entry = code[0:1], _ENTRY.get(code[1:2].decode("ascii", "replace"))
    if entry is None or kind_char not in (b"<", b">", b"c", b"h", b"."):
        return None
    size = int(size_text) if entry == "file" else 0
    flags = code[2:].decode("ascii", "replace")
    if flags == "+" * 9:
        return Item("missing", entry, size, name, ())
    differs = []
    for position, char in enumerate(flags):
        if char in ". +" or (position == 2 and char == "T"):
            continue  # T: the time would be set to now (no --times), not a difference
        differs.append(_CHANGED_VALUE.get(entry, "checksum") if position == 0 else _FLAG_NAMES[position])
    if kind_char == b"h":
        differs.append("hard_links")
    if not differs and kind_char in (b"<", b">"):
        differs.append("content")
    if not differs:
        return None
    return Item("different", entry, size, name, tuple(differs))


_LINE_END_RE = re.compile(rb"[\r\n]")


def split_lines(chunks, on_line):
    """Hand each line of a stream of byte ``chunks`` to ``on_line`` as soon as it is complete.

    A line ends at a newline or at a carriage return (rsync ends its progress updates with one);
    empty lines are left out. What follows the last line end is handed over at the end.
    """
    rest = b""
    for chunk in chunks:
        parts = _LINE_END_RE.split(rest + chunk)
        rest = parts.pop()
        for part in parts:
            if part:
                on_line(part)
    if rest:
        on_line(rest)


def _chunks(stream):
    while True:
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            return
        yield chunk


def run_streaming(argv, on_line):
    """Run ``argv`` (LC_ALL=C, no stdin), handing each stdout line to ``on_line`` as it comes
    (see ``split_lines``).

    Returns ``(rc, stderr)``. stderr is drained by a thread so rsync never blocks on it.
    """
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, LC_ALL="C"))
    errors = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))
    reader.daemon = True
    reader.start()
    try:
        split_lines(_chunks(process.stdout), on_line)
    finally:
        rc = process.wait()
        reader.join()
    return rc, b"".join(errors).decode("utf-8", "replace")


# -- progress ----------------------------------------------------------------------------------

# "(xfr#3, to-chk=88/100)": 100 entries in the list, 88 not compared yet; ir-chk while the list
# still grows (incremental recursion), when 100 is only what is listed so far.
_CHECKED_RE = re.compile(r"(to|ir)-chk=(\d+)/(\d+)")


def parse_checked(detail):
    """``(done, total, final)`` of a progress2 line's detail, or None: entries compared so far, of
    how many listed, and whether the list is complete (to-chk) or still grows (ir-chk)."""
    match = _CHECKED_RE.search(detail or "")
    if not match:
        return None
    left, listed = int(match.group(2)), int(match.group(3))
    return listed - left, listed, match.group(1) == "to"


class VerifyProgress:
    """The verify's progress: entries compared so far, of how many, in one line per interval.

    The counts are rsync's own (``--info=progress2``) for the pass that runs. rsync knows how
    many entries the whole tree holds only once it has listed all of it, which on a large tree
    with incremental recursion is near the end of the first pass; until then the total comes
    from a count of the source tree made beside the comparison (a walk of its directories, the
    scan ``rsync_copy`` makes for its totals), so that the percent and the time left appear
    early. The passes over the differences (the recheck after ``settle``, the entries only on
    the target) count against the length of their own list. Bytes are not reported: a dry run
    transfers none, and rsync does not say how much of a file it has read at depth checksum.
    """

    def __init__(self, path, interval=5.0, source=None, excludes=(), clock=time.time):
        self.file = _progress.ProgressFile(path, interval, what="verify", clock=clock)
        self.enabled = self.file.handle is not None
        self.scanned = None  # entries of the source tree, the root included, once counted
        self.label = None
        self.done = 0
        self.listed = None  # the pass's total once rsync knows it (to-chk)
        self.expected = None  # the pass's total known beforehand (a list pass)
        self.note = ""
        self.fed = None  # when the rate meter last got a count
        if source:
            self.count(source, excludes)

    def count(self, source, excludes=()):
        """Count the entries of the source tree in a thread of its own (only with a progress file)."""
        if self.enabled:
            scanner = threading.Thread(target=self._scan, args=(source, list(excludes)))
            scanner.daemon = True
            scanner.start()

    def _scan(self, source, excludes):
        try:
            # rsync counts the tree's root ("."); the scan counts what is below it.
            self.scanned = scan_totals(source, excludes)[0] + 1
        except OSError:
            self.scanned = None  # the comparison reports the error; progress goes on without a total

    def begin(self, label, note, expected=None):
        """A pass starts: its counts start from 0 (and so does the rate)."""
        self.label, self.note, self.expected = label, note, expected
        self.done, self.listed, self.fed = 0, None, None
        self.file.restart_rate()
        self._emit(force=True)

    def rsync_line(self, parsed):
        """One ``_rsync.parse_progress`` result of the pass that runs."""
        checked = parse_checked(parsed["detail"])
        if checked is None:
            return
        done, listed, final = checked
        self.done = max(self.done, done)
        if final:
            self.listed = listed
        # rsync reports once per directory: on a tree of many small directories that is thousands
        # of times a second, more than the rate needs (the counts are kept all the same).
        now = self.file.clock()
        if self.fed is not None and now - self.fed < min(self.file.interval, 0.5):
            return
        self.fed = now
        self._emit()

    def _total(self):
        if self.listed is not None:
            return self.listed
        if self.label == "tree":
            return self.scanned
        return self.expected

    def _emit(self, force=False):
        total = self._total()
        note = self.note
        if total is None and self.label == "tree":
            note += ", counting the source"
        self.file.update(files_done=self.done, files_total=total, note=note, force=force)

    def waiting(self, note):
        """A line now, with the counts as they are, while the verify sleeps (no rate: nothing runs)."""
        self.note = note
        self.file.restart_rate()
        self._emit(force=True)

    def finish(self, outcome, entries=None, note=""):
        self.file.finish(outcome=outcome, files_done=entries, files_total=entries, note=note)


def outcome(report):
    """``clean`` or ``N lasting differences`` for the last progress line."""
    if report["clean"]:
        return "clean"
    count = sum(report["totals"][key] for key in report["totals"] if not key.endswith("_bytes"))
    return "%d lasting difference%s" % (count, "" if count == 1 else "s")


# -- the verify --------------------------------------------------------------------------------

class TreeVerify:
    """One verify of ``source`` (local) against ``target``; ``run()`` returns the report."""

    def __init__(self, rsync, source, target, compare, connection, excludes=(), limit=100, settle=0,
                 workdir=None, runner=run_streaming, sleep=time.sleep, progress=None):
        self.rsync = rsync
        self.source = source
        self.target = target
        self.compare = compare
        self.connection = connection
        self.excludes = list(excludes)
        self.limit = limit
        self.settle = settle
        self.workdir = workdir
        self.runner = runner
        self.sleep = sleep
        self.vanished = 0
        self.passes = []
        # Without a progress file every progress call does nothing and rsync runs as it always did.
        self.progress = progress or VerifyProgress(None)

    def _lstat_ctime(self, name):
        try:
            return os.lstat(os.path.join(os.fsencode(self.source), name)).st_ctime_ns
        except OSError:
            return None

    def _hard_link_partners(self, names):
        """The other source names of the hard-link groups of ``names`` (raw, relative).

        rsync only sees a hard link between names that are both in its file list: rechecking
        a split group's ``b`` alone (``--files-from``) would find nothing wrong and call the
        difference in flight, and a second name that was missing at first may since have arrived
        as a file of its own. The source is walked only when a pending file has other names, and
        only until every name of each group is known.
        """
        root = os.fsencode(self.source)
        wanted = {}  # (st_dev, st_ino) -> names of the group not seen yet
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:  # a directory's links are its children
                wanted[(st.st_dev, st.st_ino)] = st.st_nlink
        known = set(names)
        partners = []
        for current, dummy, files in os.walk(root):
            if not wanted:
                break
            for file_name in files:
                path = os.path.join(current, file_name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key not in wanted:
                    continue
                name = os.path.relpath(path, root)
                if name not in known:
                    known.add(name)
                    partners.append(name)
                wanted[key] -= 1
                if not wanted[key]:
                    del wanted[key]
        return partners

    def _run(self, label, argv, on_item, other=None):
        started = time.time()
        watch = self.progress.enabled

        def on_line(line):
            if watch and line[:1] == b" ":
                # A progress2 update: right-aligned, so it starts with a space; an entry line
                # starts with its itemized code and rsync's other lines with a word.
                parsed = _rsync.parse_progress(line.decode("ascii", "replace"))
                if parsed is not None:
                    self.progress.rsync_line(parsed)
                    return
            item = parse_line(line)
            if item is not None:
                on_item(item)
            elif other is not None:
                other(line)

        rc, stderr = self.runner(argv, on_line)
        self.passes.append(dict(label=label, rc=rc, seconds=round(time.time() - started, 3)))
        if rc == 24:
            self.vanished += len(_rsync.parse_vanished(stderr))
        elif rc != 0:
            raise _failure(rc, stderr, argv)
        return stderr

    def run(self):
        """Compare the trees; returns the report. The progress file ends with a last line either way."""
        try:
            report = self._compare()
        except VerifyError as e:
            self.progress.finish("failed", note=(str(e).splitlines() or [""])[0][:300])
            raise
        except BaseException:
            self.progress.finish("failed")
            raise
        in_flight = sum(report["in_flight"]["totals"][key] for key in report["in_flight"]["totals"]
                        if not key.endswith("_bytes"))
        self.progress.finish(outcome(report), entries=report["entries_checked"],
                             note="%d in flight" % in_flight if in_flight else "")
        return report

    def _compare(self):
        started, clock = utc_now(), time.time()
        watch = self.progress.enabled
        final = Tally(self.limit)
        in_flight = Tally(self.limit)
        tail = collections.deque(maxlen=40)
        with tempfile.TemporaryDirectory(prefix="tree_verify.", dir=self.workdir) as work:
            recheck_path = os.path.join(work, "recheck")
            orphans_path = os.path.join(work, "orphans")
            pending = {}  # name -> (item, source ctime): only with settle, only differences
            orphan_count = 0
            orphan_names = set()  # only these are confirmed: implied directories are printed too
            orphan_dirs = {}  # name -> ctime of its directory on the source: only with settle
            with open(orphans_path, "wb") as orphans:

                def first_pass(item):
                    nonlocal orphan_count
                    if item.kind == "orphaned":
                        orphans.write(item.name + (b"/" if item.entry == "dir" else b"") + b"\0")
                        orphan_count += 1
                        orphan_names.add(item.name)
                        if self.settle > 0:
                            orphan_dirs[item.name] = self._lstat_ctime(os.path.dirname(item.name))
                    elif self.settle > 0:
                        pending[item.name] = (item, self._lstat_ctime(item.name))
                    else:
                        _add(final, item)

                self.progress.begin("tree", "pass 1: the whole tree")
                self._run("tree", tree_argv(self.rsync, self.compare, self.connection, self.excludes,
                                            self.source, self.target, progress=watch), first_pass, tail.append)
            for line in tail:
                if line.startswith(b"created directory "):
                    raise VerifyError("target", "%s does not exist (rsync would create it)" % self.target)
            stats = _rsync.parse_stats(b"\n".join(tail).decode("ascii", "replace"))

            if self.settle > 0 and (pending or orphan_count):
                self._settle(len(pending) + orphan_count)
            if pending:
                # Every pending name with other names, not only those rsync already called split:
                # a second name that was missing at first may have arrived as a file of its own.
                partners = self._hard_link_partners(list(pending))
                with open(recheck_path, "wb") as names:
                    for name in list(pending) + partners:
                        names.write(name + b"\0")
                still = set()

                partner_names = set(partners)

                def second_pass(item):
                    if item.kind == "orphaned" or item.name in still:
                        return
                    before = pending.get(item.name)
                    if before is None:
                        # rsync names the group member it would link, which may be the other name.
                        if item.name in partner_names and "hard_links" in item.differs:
                            still.add(item.name)
                            _add(final, item)
                        return
                    if before[1] is None or self._lstat_ctime(item.name) != before[1]:
                        return  # the source entry changed meanwhile: still being written
                    still.add(item.name)
                    _add(final, item)

                self.progress.begin("recheck", "pass 2: the %d difference%s again, after %s s" % (
                    len(pending), "" if len(pending) == 1 else "s", self.settle), expected=len(pending) + len(partners))
                self._run("recheck", list_argv(self.rsync, self.compare, self.connection, self.excludes,
                                               recheck_path, self.source, self.target, progress=watch), second_pass)
                for name, (item, dummy) in pending.items():
                    if name not in still:
                        _add(in_flight, item)
            if orphan_count:
                confirmed = set()

                def orphan_pass(item):
                    # Seen from the target, an entry that is only there is "missing" on the source.
                    if item.kind == "missing" and item.name in orphan_names and item.name not in confirmed:
                        confirmed.add(item.name)
                        changed = (item.name in orphan_dirs and
                                   self._lstat_ctime(os.path.dirname(item.name)) != orphan_dirs[item.name])
                        _add(in_flight if changed else final, item._replace(kind="orphaned"))

                self.progress.begin("orphans", "pass 3: the %d entr%s only on the target" % (
                    orphan_count, "y" if orphan_count == 1 else "ies"), expected=orphan_count)
                self._run("orphans", list_argv(self.rsync, self.compare, self.connection, self.excludes,
                                               orphans_path, self.target, self.source, progress=watch), orphan_pass)
                if len(confirmed) < orphan_count:
                    with open(orphans_path, "rb") as orphans:
                        for raw in orphans.read().split(b"\0")[:-1]:
                            is_dir = raw.endswith(b"/")
                            name = raw[:-1] if is_dir else raw
                            if name not in confirmed:
                                _add(in_flight, Item("orphaned", "dir" if is_dir else "file", 0, name, ()))
        report = dict(
            source=self.source,
            target=self.target,
            started_at=started,
            finished_at=utc_now(),
            elapsed=round(time.time() - clock, 3),
            entries_checked=stats.get("files", 0),
            settle=self.settle,
            vanished=self.vanished,
            passes=self.passes,
        )
        report.update(final.as_dict())
        report["clean"] = is_clean(final.totals)
        report["in_flight"] = in_flight.as_dict()
        return report

    def _settle(self, count):
        """Wait ``settle`` seconds, with a progress line every interval that says so."""
        if not self.progress.enabled:
            self.sleep(self.settle)
            return
        left = float(self.settle)
        step = max(1.0, self.progress.file.interval)
        while left > 0:
            self.progress.waiting("settling: %d difference%s checked again in %s" % (
                count, "" if count == 1 else "s", _progress.human_duration(math.ceil(left))))
            self.sleep(min(step, left))
            left -= step


def _add(tally, item):
    tally.add(item.kind, display(item.name), item.entry, item.size, item.differs)


def _failure(rc, stderr, argv):
    """A VerifyError naming the side rsync complained about."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    text = "; ".join(lines[-6:]) or "no message"
    meaning = _rsync.describe_exit(rc)
    target_words = ("@ERROR", "Unknown module", "chdir failed", "connection", "Connection", "[Receiver]",
                    "[generator]", "[receiver]", "ssh:", "Name or service", "No route", "timed out")
    if "auth failed" in stderr or "password" in stderr:
        option = "password_file"
    elif rc in (10, 12, 30, 35) or any(word in stderr for word in target_words):
        option = "target"
    elif "[sender]" in stderr or "link_stat" in stderr or "opendir" in stderr:
        option = "path"
    else:
        option = "target"
    return VerifyError(option, "rsync could not compare the trees (exit %d: %s): %s" % (rc, meaning, text),
                       rc=rc, stderr=stderr)
