# SPDX-License-Identifier: GPL-3.0-or-later
"""Run several rsync processes at once and follow their output while they run.

``AnsibleModule.run_command`` runs one process and returns its output when it has ended. The
copy needs N rsync processes at the same time, each one's output read while it runs (to write
progress lines an operator and the playbook can follow), and the copy's lock handed down to them
(``pass_fds``) so it stays held while any of them lives. Hence ``subprocess.Popen`` here, with
what run_command would otherwise provide done explicitly: no stdin, ``LC_ALL=C`` for parseable
output, both pipes drained by threads so no process blocks on a full pipe.

It also holds the lock file handling: the lock's descriptor is what the processes inherit.
"""
from __future__ import annotations

import errno
import fcntl
import fnmatch
import os
import re
import stat
import subprocess
import threading
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress, _rsync


# The default lock files live in a directory of their own that only root can write to: in the
# world-writable /run/lock anyone could plant a symlink or a file at a predictable lock path.
LOCK_DIR_NAME = "nodowntime"
LOCK_BASES = ("/run/lock", "/tmp")
_PID_RE = re.compile(rb"^[0-9]{1,10}\n?$")


class LockError(Exception):
    """The lock file cannot be used safely; the message starts with ``lock_file:``."""


class LockBusy(Exception):
    """Another process holds the lock; ``holder`` is the PID written in the file, or ``unknown``."""

    def __init__(self, holder):
        super(LockBusy, self).__init__(holder)
        self.holder = holder


def default_lock_dir(bases=None):
    """The directory of the default lock files: ``nodowntime`` in the first existing base."""
    bases = bases or LOCK_BASES
    base = next((b for b in bases if os.path.isdir(b)), bases[-1])
    return os.path.join(base, LOCK_DIR_NAME)


def ensure_lock_dir(path):
    """Create ``path`` (0755, root's) when missing; raise LockError unless it is a directory
    owned by root that only root can write to."""
    if not os.path.lexists(path):
        if os.geteuid() != 0:
            raise LockError(
                "lock_file: the default lock directory %s does not exist and only root may create it; "
                "run as root or set lock_file to a path in a directory of your own" % path)
        try:
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)
        except FileExistsError:
            pass  # made by a concurrent run; checked below like any other
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise LockError(
            "lock_file: the default lock directory %s must be a directory owned by root and writable "
            "by root only (found %s, uid %d, mode %04o); remove it, or set lock_file to a path "
            "elsewhere" % (path, _kind(st.st_mode), st.st_uid, stat.S_IMODE(st.st_mode)))


def _kind(mode):
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device"


def open_lock(path):
    """Take an exclusive, non-blocking flock on the lock file ``path`` and write our PID in it.

    Never follows a symlink at ``path`` and never truncates a file it did not verify: a missing
    file is created (O_CREAT|O_EXCL); an existing one is used only when it is a regular file of
    this user with one link that holds nothing but a PID (a lock file of an earlier run).
    Returns the open descriptor; raises LockBusy when another process holds the lock and
    LockError when the file cannot be used safely.
    """
    for dummy in range(5):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            pass
        else:
            return _lock_and_write(fd, path, created=True)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # removed meanwhile: try to create it again
        _check_existing(path, st)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LockError("lock_file: %s is a symbolic link; refusing to follow it. Remove it "
                                "or set lock_file to another path" % path)
            raise LockError("lock_file: cannot open %s: %s" % (path, e.strerror))
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            continue  # replaced between the check and the open: check again
        try:
            _check_existing(path, opened)
        except LockError:
            os.close(fd)
            raise
        return _lock_and_write(fd, path, created=False)
    raise LockError("lock_file: %s keeps changing while the lock is taken; refusing to use it" % path)


def _check_existing(path, st):
    if stat.S_ISLNK(st.st_mode):
        raise LockError("lock_file: %s is a symbolic link; refusing to follow it. Remove it or set "
                        "lock_file to another path" % path)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is %s, not a regular file" % _kind(st.st_mode)
    elif st.st_uid != os.geteuid():
        problem = "belongs to uid %d, not to this user (uid %d)" % (st.st_uid, os.geteuid())
    elif st.st_nlink != 1:
        problem = "has %d hard links" % st.st_nlink
    elif st.st_size > 11:
        problem = "holds %d bytes, more than a PID" % st.st_size
    if problem:
        raise LockError("lock_file: %s %s, so it is not a lock file of this module; refusing to "
                        "use it. Remove it or set lock_file to another path" % (path, problem))


def _lock_and_write(fd, path, created):
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockBusy(holder)
        if not created:
            content = os.pread(fd, 64, 0)
            if not _PID_RE.match(content):
                raise LockError("lock_file: %s holds %r, not a PID, so it is not a lock file of this "
                                "module; refusing to write to it. Remove it or set lock_file to another "
                                "path" % (path, content[:32].decode("ascii", "replace")))
        data = ("%d\n" % os.getpid()).encode("ascii")
        os.pwrite(fd, data, 0)
        # Only a verified PID file can be longer than what was just written.
        os.ftruncate(fd, len(data))
    except BaseException:
        os.close(fd)
        raise
    return fd


class Progress:
    """The copy's progress: the rsync processes' own lines summed into one line per interval.

    Each rsync process reports its bytes transferred and its files checked so far
    (``--info=progress2``); the line written to the progress file (see ``_progress``) is their sum,
    against the totals of a scan of the source that runs beside the copy (stat only, so the
    totals appear after a while on a large tree, and then the percent and the time left).
    """

    def __init__(self, path, interval, src=None, exclude=(), clock=time.time):
        self.file = _progress.ProgressFile(path, interval, what="copy", clock=clock)
        self.handle = self.file.handle
        self.workers = {}
        self.totals = None
        self.note = ""
        self.lock = threading.Lock()
        if self.handle is not None and src:
            scanner = threading.Thread(target=self._scan, args=(src, list(exclude)))
            scanner.daemon = True
            scanner.start()

    def _scan(self, src, exclude):
        try:
            entries, size = scan_totals(src, exclude)
            # rsync counts the tree's root ("."), the scan what is below it.
            self.totals = (entries + 1, size)
        except OSError:
            self.totals = None  # the copy reports the error; progress goes on without totals

    def start(self, note, processes=1):
        self.file.update(bytes_done=0, files_done=0, note=note, force=True)
        self.note = "%d rsync processes" % processes if processes > 1 else ""

    def write(self, name, line):
        parsed = _rsync.parse_progress(line)
        if parsed is None:
            return
        checked = _CHECKED_RE.search(parsed["detail"])
        with self.lock:
            files = int(checked.group(2)) - int(checked.group(1)) if checked else self.workers.get(name, (0, 0))[1]
            self.workers[name] = (parsed["bytes"], files)
        self._emit()

    def _sums(self):
        with self.lock:
            done = sum(b for b, _f in self.workers.values()), sum(f for _b, f in self.workers.values())
        totals = self.totals or (None, None)
        return dict(bytes_done=done[0], files_done=done[1], files_total=totals[0], bytes_total=totals[1])

    def _emit(self):
        counts = self._sums()
        note = self.note if counts["files_total"] is not None else (self.note + ", counting the source").lstrip(", ")
        self.file.update(note=note, **counts)

    def finish(self, outcome, bytes_done, files_done):
        counts = self._sums()
        counts.update(bytes_done=bytes_done, files_done=files_done)
        self.file.finish(outcome=outcome, note=self.note, **counts)


# "xfr#12, to-chk=88/100" (or ir-chk while the file list still grows): 100 listed, 88 still to check.
_CHECKED_RE = re.compile(r"(?:to|ir)-chk=(\d+)/(\d+)")


def scan_totals(src, exclude=()):
    """``(entries, bytes)`` below ``src``: what the copy has to check and the size of its files.

    Excluded names are skipped as rsync would for simple patterns (a name, or a name with
    wildcards); patterns with a ``/`` inside are left to rsync, so the totals are an estimate when
    they are used. A file with several names counts its bytes once.
    """
    patterns = [p.rstrip("/") for p in exclude if "/" not in p.rstrip("/")]
    entries = 0
    size = 0
    seen = set()
    stack = [src]
    while stack:
        directory = stack.pop()
        try:
            listing = os.scandir(directory)
        except OSError:
            continue  # vanished or unreadable: rsync reports it
        with listing:
            for entry in listing:
                if patterns and any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
                    continue
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(info.st_mode):
                    if info.st_nlink > 1:
                        if (info.st_dev, info.st_ino) in seen:
                            continue
                        seen.add((info.st_dev, info.st_ino))
                    size += info.st_size
    return entries, size


class Run:
    """One rsync process: its output is read by threads while it runs."""

    # The rsync processes running now, for a job that must pass a stop signal on to them.
    active = set()

    def __init__(self, name, dirs, argv, progress, lock_fd):
        self.name = name
        self.dirs = dirs
        self.argv = argv
        self.progress = progress
        self.stdout = []
        self.stderr = []
        self.started = time.time()
        self.elapsed = 0.0
        self.rc = None
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(lock_fd,), env=dict(os.environ, LC_ALL="C"))
        Run.active.add(self.process)
        self.threads = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout, True)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, False)),
        ]
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    def _read(self, stream, sink, watch_progress):
        rest = b""
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            sink.append(chunk)
            if watch_progress and self.progress.handle is not None:
                parts = re.split(rb"[\r\n]", rest + chunk)
                rest = parts.pop()
                for part in reversed(parts):
                    line = part.decode("utf-8", "replace")
                    if _rsync.parse_progress(line):
                        self.progress.write(self.name, line.strip())
                        break

    def wait(self):
        self.rc = self.process.wait()
        Run.active.discard(self.process)
        for thread in self.threads:
            thread.join()
        self.elapsed = time.time() - self.started
        return self.rc

    def text(self, which):
        return b"".join(self.stdout if which == "stdout" else self.stderr).decode("utf-8", "surrogateescape")


# Lists in a copy's result are cut here: a copy of a million files must not return a million names.
MAX_LIST = 1000


class CopyOutcome:
    """What ``copy_tree`` did: ``result`` (the module's return values), ``error`` (a message when
    the copy failed, else None) and ``warnings`` (vanished files, a lopsided split)."""

    def __init__(self, result, error, warnings):
        self.result = result
        self.error = error
        self.warnings = warnings


def check_copy_params(p):
    """The bandwidth limit in KiB/s, after checking the options a copy cannot run without.

    Raises ValueError with a message that names the option.
    """
    if not os.path.isdir(p["src"]):
        raise ValueError("src=%s is not a directory on this host; give the directory to copy" % p["src"])
    if not p["dest"] or p["dest"].strip() != p["dest"]:
        raise ValueError("dest=%r must be a non-empty rsync destination without surrounding blanks" % p["dest"])
    if p["workers"] < 1:
        raise ValueError("workers=%d must be 1 or more" % p["workers"])
    partial_dir = p["partial_dir"]
    if partial_dir and (partial_dir.startswith("/") or "/" in partial_dir.strip("/")):
        raise ValueError("partial_dir=%s must be a single relative directory name such as .rsync-partial"
                         % partial_dir)
    return _rsync.parse_bwlimit(p["bwlimit"])


def copy_tree(p, rsync, bwlimit, lock_fd, lock_file, dry_run=False):
    """Copy ``p["src"]`` to ``p["dest"]`` with one rsync, or a top-level pass then parallel workers.

    ``p`` holds rsync_copy's options (see its documentation); ``lock_fd`` is the lock the caller
    holds, inherited by every rsync process and closed here. Returns a ``CopyOutcome``.
    """
    src = p["src"]
    started = time.time()
    warnings = []
    groups, dummy, plan_warning = _rsync.plan_workers(src, p["workers"], hard_links=p["hard_links"])
    if plan_warning:
        warnings.append(plan_warning)
    per_worker = _rsync.split_bwlimit(bwlimit, max(1, len(groups)))
    daemon = _rsync.dest_is_daemon(p["dest"])
    common = dict(archive=p["archive"], delete=p["delete"], partial_dir=p["partial_dir"], exclude=p["exclude"],
                  compress=p["compress"], numeric_ids=p["numeric_ids"], hard_links=p["hard_links"],
                  acls=p["acls"], xattrs=p["xattrs"], sparse=p["sparse"], io_timeout=p["io_timeout"],
                  contimeout=p["connect_timeout"] if daemon else 0, password_file=p["password_file"],
                  rsh=p["rsh"], dry_run=dry_run, extra=p["extra_args"])
    plan = _rsync.commands(rsync, _rsync.base_options(bwlimit_kib=per_worker, **common), src, p["dest"], groups)
    if groups:
        # The first pass runs alone and may use the whole limit.
        top_options = _rsync.base_options(bwlimit_kib=_rsync.split_bwlimit(bwlimit, 1), **common)
        plan[0] = ("top", _rsync.commands(rsync, top_options, src, p["dest"], groups)[0][1])

    progress = Progress(p["progress_file"], p["progress_interval"], src=src,
                        exclude=list(p["exclude"]) + ([p["partial_dir"]] if p["partial_dir"] else []))
    progress.start("copying %s to %s with %d rsync process(es)%s" % (
        src, p["dest"], max(1, len(groups)), " (dry run)" if dry_run else ""), processes=max(1, len(groups)))
    runs = []
    try:
        first = plan[0]
        run = Run(first[0], [], first[1], progress, lock_fd)
        run.wait()
        runs.append(run)
        if groups and run.rc in (0, 24):
            parallel = [Run(name, group, argv, progress, lock_fd)
                        for (name, argv), group in zip(plan[1:], groups)]
            for run in parallel:
                run.wait()
            runs += parallel
    finally:
        os.close(lock_fd)

    elapsed = time.time() - started
    items = []
    stats_list = []
    vanished = []
    failed = []
    messages = []
    workers = []
    top_paths = set()
    for run in runs:
        run_items, run_stats = _rsync.parse_stdout(run.text("stdout"))
        if run.name == "top":
            top_paths = set(path for _kind, path in run_items)
        elif dry_run and top_paths:
            # --dry-run: the top pass only pretended to create or update the top-level
            # directories, so each worker itemizes its own again; count them once.
            again = [kind for kind, path in run_items if path in top_paths]
            run_items = [(kind, path) for kind, path in run_items if path not in top_paths]
            created = sum(1 for kind in again if kind.startswith("c"))
            if created and "files_created" in run_stats:
                run_stats["files_created"] -= created
        stderr = run.text("stderr")
        items += run_items
        stats_list.append(run_stats)
        vanished += _rsync.parse_vanished(stderr)
        run_messages, run_failed = _rsync.parse_errors(stderr)
        messages += run_messages
        failed += run_failed
        workers.append(dict(name=run.name, dirs=run.dirs, cmd=run.argv, rc=run.rc,
                            elapsed=round(run.elapsed, 3), stats=run_stats))
    stats = _rsync.sum_stats(stats_list)
    stats.pop("files_deleted_reported", None)
    stats["elapsed"] = round(elapsed, 3)
    stats["rate"] = round(stats.get("bytes_transferred", 0) / elapsed, 1) if elapsed > 0 else 0.0
    deleted = sum(1 for kind, _path in items if kind == "deleted")
    codes = [run.rc for run in runs]
    bad = [rc for rc in codes if rc not in (0, 24)]
    rc = bad[0] if bad else (24 if 24 in codes else 0)
    result = dict(
        changed=bool(items), rsync_rc=rc, lock_file=lock_file, changes_count=len(items),
        changes=[dict(change=kind, path=path) for kind, path in items[:p["max_changes"]]],
        deleted=deleted, vanished=vanished[:MAX_LIST], failed_files=failed[:MAX_LIST], stats=stats,
        workers=workers, bwlimit_per_worker=per_worker, stderr_lines=messages[:200],
    )
    progress.finish("done" if not bad else "failed (rsync exit %d)" % rc,
                    bytes_done=stats.get("bytes_transferred", 0), files_done=stats.get("files", 0))

    if bad:
        run = next(r for r in runs if r.rc == rc)
        if rc < 0 or rc == 20:
            how = "killed by signal %d" % -rc if rc < 0 else "interrupted by a signal (exit 20)"
            msg = ("rsync %s was %s after %.0f s; run again to resume (partial files are kept in %s)"
                   % (run.name, how, run.elapsed, p["partial_dir"] or "nowhere: partial_dir is empty"))
        elif rc == 23:
            listed = ", ".join("%s (%s)" % (f["path"], f["error"]) for f in failed[:20]) or "see stderr_lines"
            msg = ("rsync %s exited 23 (%s): %d file(s) not transferred: %s"
                   % (run.name, _rsync.describe_exit(rc), len(failed), listed))
        else:
            msg = "rsync %s exited %d (%s): %s" % (
                run.name, rc, _rsync.describe_exit(rc), " | ".join(messages[-5:]) or "no error output")
        return CopyOutcome(result, msg, warnings)
    if vanished:
        shown = ", ".join(vanished[:20]) + (" and %d more" % (len(vanished) - 20) if len(vanished) > 20 else "")
        warnings.append("%d source file(s) vanished during the copy (rsync exit 24, expected on a live tree; the "
                        "continuous replication picks up later changes): %s" % (len(vanished), shown))
    return CopyOutcome(result, None, warnings)
