# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restorable, dated backups of a directory tree, run on the host without Ansible.

The ``tree_backup`` role installs this file (with ``_progress.py`` and ``_run_log.py``, through
the ``job_library`` module) and runs it from a systemd timer or cron::

    python3 -m ansible_collections.nodowntime.storage.plugins.module_utils._tree_backup \\
        backup --config /etc/nodowntime/tree-backup-NAME.json

Commands: ``backup`` (optional pre-command, archive, retention), ``record-skip`` (a run skipped
because the previous one still held the lock), ``restore``, ``drill`` and ``list``. Each prints
one JSON object and exits 0 on success, 1 on failure, 75 for a skipped run. Every backup, drill,
restore and skip appends one record to the job's run log (``_run_log``).

An archive ``NAME_YYYYmmddTHHMMSSZ.tar.zst`` (or ``.tar.gz``) holds the tree and, as its last
member, ``.nodowntime-tree-manifest.json``: every path with its type, size, mode, mtime, owner,
the sha256 of a file's content and the target of a symlink. A drill or a restore extracts the
archive into a scratch directory and checks it against the manifest (every entry there, nothing
more) before anything else; a restore moves the checked tree into place only then. The
manifest is never restored into the target.

No Ansible import, and of the collection only ``_progress`` and ``_run_log``: the host has only
the files ``job_library`` writes.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from fnmatch import fnmatchcase

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress, _run_log
from ansible_collections.nodowntime.storage.plugins.module_utils._host_io import (
    ZstdError, fsync_dir as _fsync_dir, sha256_file, zstd_tar_writer)

KIND = "tree_backup"
MANIFEST_NAME = ".nodowntime-tree-manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("tar.zst", "tar.gz")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
EXIT_OK, EXIT_FAILED, EXIT_SKIPPED = 0, 1, _run_log.EXIT_SKIPPED

# What a setting left out of the config (or null) means. The role's defaults repeat these.
DEFAULTS = dict(format="tar.zst", compression_level=None, keep_days=90, keep_last=3, exclude=[],
                pre_command=None, pre_command_timeout=3600, post_restore_command=None,
                post_restore_timeout=3600, progress_file=None, progress_interval=5.0, runs_log=None)
DEFAULT_LEVEL = {"tar.zst": 3, "tar.gz": 6}
MAX_LEVEL = {"tar.zst": 19, "tar.gz": 9}
# A partial archive of this job untouched for this long belongs to a run that died (killed, power
# cut): a live run writes to its partial file all the time. Younger ones may belong to a manual
# run going on beside a scheduled one, so they stay.
STALE_PARTIAL_SECONDS = 3600
# The problems a drill lists in full; the count says how many more there were.
MAX_PROBLEMS = 50
_CHUNK = 1024 * 1024


class TreeBackupError(Exception):
    """A run failed; the message is for a person and names the setting or the path at fault."""


# --------------------------------------------------------------------------- pure functions

def validate_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise TreeBackupError("name=%r is not a valid job name: use letters, digits, '_', '.' and '-', "
                              "starting with a letter or digit" % (name,))
    return name


def parse_now(text):
    """Aware UTC datetime of ``2026-11-01T03:00:00Z``; TreeBackupError naming ``--now`` otherwise."""
    stamp = _run_log.parse_stamp(text)
    if stamp is None:
        raise TreeBackupError("--now=%r is not a UTC time like 2026-11-01T03:00:00Z" % (text,))
    return stamp


def archive_name(job, when, fmt):
    """``JOB_YYYYmmddTHHMMSSZ.tar.zst``; ``when`` is an aware or naive-UTC datetime."""
    if fmt not in FORMATS:
        raise TreeBackupError("format=%r is not one of %s" % (fmt, ", ".join(FORMATS)))
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return "%s_%s.%s" % (job, when.strftime(STAMP_FORMAT), fmt)


def _archive_re(job):
    # Anchored at both ends with a fixed time stamp, so job ``a`` never takes the archives of ``a_b``.
    return re.compile(r"^%s_(\d{8}T\d{6}Z)\.(tar\.zst|tar\.gz)$" % re.escape(job))


def parse_archive_name(job, name):
    """The aware UTC datetime in an archive name of ``job``; None for any other name."""
    m = _archive_re(job).match(name)
    if not m:
        return None
    try:
        return datetime.datetime.strptime(m.group(1), STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def job_archives(job, names):
    """``[(datetime, name)]`` of ``job``'s archives among ``names``, oldest first."""
    dated = ((parse_archive_name(job, n), n) for n in names)
    return sorted((t, n) for t, n in dated if t is not None)


def retention_plan(job, names, now, keep_days, keep_last, new_archive=None):
    """The archive names of ``job`` that retention deletes, oldest first.

    An archive is kept when either rule keeps it: it is one of the ``keep_last`` newest, or its
    time (from its name) is less than ``keep_days`` days before ``now``. 0 (or None) turns a
    rule off, which keeps nothing by that rule. ``new_archive`` - the one a run has just
    written or is about to write - is counted in and never deleted. Names that are not
    ``job``'s archives are never selected.
    """
    names = set(names)
    if new_archive:
        names.add(new_archive)
    dated = job_archives(job, names)
    keep = set()
    if keep_last:
        keep.update(n for _t, n in dated[-int(keep_last):])
    if keep_days:
        limit = now - datetime.timedelta(days=float(keep_days))
        keep.update(n for t, n in dated if t > limit)
    if new_archive:
        keep.add(new_archive)
    return [n for _t, n in dated if n not in keep]


def excluded(relpath, patterns):
    """True when ``relpath`` (``a/b/c``) matches an exclude pattern.

    A pattern with a ``/`` is matched against the whole relative path (``cache/*``), one without
    against each name (``*.tmp``, ``lost+found``). An excluded directory is left out whole.
    """
    base = relpath.rsplit("/", 1)[-1]
    for pattern in patterns:
        pattern = pattern.strip("/")
        if "/" in pattern:
            if fnmatchcase(relpath, pattern):
                return True
        elif fnmatchcase(base, pattern):
            return True
    return False


def _int_setting(cfg, key, low, high=None):
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise TreeBackupError("%s=%r is not a whole number" % (key, value))
    value = int(value)
    if value < low or (high is not None and value > high):
        raise TreeBackupError("%s=%d is out of range: use %d%s" % (
            key, value, low, " to %d" % high if high is not None else " or more"))
    return value


def normalise_config(raw):
    """The config with defaults filled in and checked; TreeBackupError names the bad setting."""
    if not isinstance(raw, dict):
        raise TreeBackupError("the config must be a JSON object, not %s" % type(raw).__name__)
    unknown = sorted(set(raw) - set(DEFAULTS) - {"name", "src", "backup_dir"})
    if unknown:
        raise TreeBackupError("unknown setting(s) %s; known: %s"
                              % (", ".join(unknown), ", ".join(["name", "src", "backup_dir"] + sorted(DEFAULTS))))
    cfg = dict(DEFAULTS)
    cfg.update((k, v) for k, v in raw.items() if v is not None)
    validate_name(raw.get("name"))
    for key in ("src", "backup_dir"):
        value = cfg.get(key)
        if not isinstance(value, str) or not value.startswith("/"):
            raise TreeBackupError("%s=%r must be an absolute path" % (key, value))
        cfg[key] = os.path.normpath(value)
    if cfg["src"] == cfg["backup_dir"] or cfg["backup_dir"].startswith(cfg["src"].rstrip("/") + "/"):
        # Otherwise every backup would archive the earlier archives.
        raise TreeBackupError("backup_dir=%s is inside src=%s: put the archives elsewhere"
                              % (cfg["backup_dir"], cfg["src"]))
    if cfg["format"] not in FORMATS:
        raise TreeBackupError("format=%r is not one of %s" % (cfg["format"], ", ".join(FORMATS)))
    if cfg["compression_level"] is None:
        cfg["compression_level"] = DEFAULT_LEVEL[cfg["format"]]
    cfg["compression_level"] = _int_setting(cfg, "compression_level", 1, MAX_LEVEL[cfg["format"]])
    cfg["keep_days"] = _int_setting(cfg, "keep_days", 0)
    cfg["keep_last"] = _int_setting(cfg, "keep_last", 0)
    cfg["pre_command_timeout"] = _int_setting(cfg, "pre_command_timeout", 1)
    cfg["post_restore_timeout"] = _int_setting(cfg, "post_restore_timeout", 1)
    if not isinstance(cfg["exclude"], list) or not all(isinstance(p, str) and p for p in cfg["exclude"]):
        raise TreeBackupError("exclude=%r must be a list of glob patterns" % (cfg["exclude"],))
    for key in ("pre_command", "post_restore_command", "progress_file", "runs_log"):
        if cfg[key] is not None and not isinstance(cfg[key], str):
            raise TreeBackupError("%s=%r must be a string or null" % (key, cfg[key]))
        cfg[key] = cfg[key] or None
    try:
        cfg["progress_interval"] = float(cfg["progress_interval"])
    except (TypeError, ValueError):
        raise TreeBackupError("progress_interval=%r is not a number of seconds" % (cfg["progress_interval"],))
    if not cfg["runs_log"]:
        cfg["runs_log"] = os.path.join(cfg["backup_dir"], "%s.runs.jsonl" % cfg["name"])
    return cfg


def load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise TreeBackupError("cannot read the config %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise TreeBackupError("the config %s is not JSON: %s" % (path, e))
    return normalise_config(raw)


def compare_entries(expected, actual, check_owner=False):
    """Problems (strings) between the manifest's entries and what a restore produced.

    Both map a relative path to an entry dict. Every expected entry must be there with the same
    type, mode, mtime (not for symlinks), size and sha256 (files), target (symlinks), and owner
    when ``check_owner``; any other entry is a problem too.
    """
    problems = []
    for path in sorted(expected):
        want = expected[path]
        got = actual.get(path)
        if got is None:
            problems.append("missing: %s" % path)
            continue
        if got["type"] != want["type"]:
            problems.append("%s: is a %s, the manifest says %s" % (path, got["type"], want["type"]))
            continue
        keys = ["mode"]
        if want["type"] != "symlink":
            keys.append("mtime")
        if want["type"] == "file":
            keys += ["size", "sha256"]
        if want["type"] == "symlink":
            keys.append("target")
        if check_owner:
            keys += ["uid", "gid"]
        if want["type"] == "symlink":
            keys.remove("mode")  # Linux gives every symlink 0777
        for key in keys:
            if key in want and got.get(key) != want[key]:
                problems.append("%s: %s is %r, the manifest says %r" % (path, key, got.get(key), want[key]))
    for path in sorted(set(actual) - set(expected)):
        problems.append("extra: %s (%s) is not in the manifest" % (path, actual[path]["type"]))
    return problems


# --------------------------------------------------------------------------- the tree

def _entry_type(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return None  # sockets and devices are not archived


def scan_tree(src, patterns):
    """``(entries, skipped)``: ``[(relpath, lstat)]`` of the tree, parents before children.

    ``.`` is the root itself. Directories are not followed through symlinks; sockets and devices
    go to ``skipped`` with why. A tree entry named like the manifest is skipped too: the archive's
    own manifest takes that name.
    """
    # src itself may be a symlink to the tree (a dump directory swapped in by the pre-command)
    entries = [(".", os.stat(src))]
    skipped = []

    def walk(abspath, rel):
        try:
            names = sorted(os.listdir(abspath))
        except OSError as e:
            skipped.append(dict(path=rel or ".", why="cannot list: %s" % e.strerror))
            return
        for name in names:
            relpath = "%s/%s" % (rel, name) if rel else name
            if excluded(relpath, patterns):
                continue
            if relpath == MANIFEST_NAME:
                skipped.append(dict(path=relpath, why="the archive's manifest has this name"))
                continue
            path = os.path.join(abspath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # gone since the listing
            kind = _entry_type(st.st_mode)
            if kind is None:
                skipped.append(dict(path=relpath, why="sockets and devices are not archived"))
                continue
            entries.append((relpath, st))
            if kind == "dir":
                walk(path, relpath)

    walk(src, "")
    return entries, skipped


def _stat_entry(path, st, sha256=None):
    kind = _entry_type(st.st_mode)
    entry = dict(type=kind, mode=stat.S_IMODE(st.st_mode), mtime=int(st.st_mtime), uid=st.st_uid, gid=st.st_gid)
    if kind == "file":
        entry["size"] = st.st_size
        if sha256 is not None:
            entry["sha256"] = sha256
    elif kind == "symlink":
        entry["target"] = os.readlink(path)
    return entry


class _FileReader:
    """Exactly ``size`` bytes of an open file for tarfile, hashed and counted.

    A file that shrinks while it is read is padded with zeros to the size the header already
    promised (tar cannot take it back); one that grows is cut at that size. Either way
    ``changed`` is set, and the sha256 is of the bytes archived, so a drill checks what the
    archive really holds.
    """

    def __init__(self, handle, size, counted):
        self.handle = handle
        self.left = size
        self.counted = counted
        self.digest = hashlib.sha256()
        self.changed = False

    def read(self, size=-1):
        if self.left <= 0:
            return b""
        want = self.left if size is None or size < 0 else min(size, self.left)
        data = b""
        while len(data) < want:
            chunk = self.handle.read(want - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) < want:
            self.changed = True
            data += b"\0" * (want - len(data))
        self.left -= len(data)
        self.digest.update(data)
        self.counted(len(data))
        return data


def _tarinfo(relpath, st, kind):
    info = tarfile.TarInfo(relpath)
    info.mode = stat.S_IMODE(st.st_mode)
    # Whole seconds: a float would add a pax header to every member.
    info.mtime = int(st.st_mtime)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    return info


class _Counter:
    """Bytes and files done, reported to a ``ProgressFile``."""

    def __init__(self, progress, bytes_total, files_total, note):
        self.progress = progress
        self.bytes_total = bytes_total
        self.files_total = files_total
        self.note = note
        self.bytes_done = 0
        self.files_done = 0

    def counted(self, count):
        self.bytes_done += count
        self.update()

    def file_done(self):
        self.files_done += 1
        self.update(force=self.files_done == self.files_total)

    def update(self, force=False):
        self.progress.update(bytes_done=self.bytes_done, bytes_total=self.bytes_total, files_done=self.files_done,
                             files_total=self.files_total, note=self.note, force=force)


def _archive_members(tf, src, entries, counter):
    """Add the scanned entries to ``tf``; the manifest entries and what changed or vanished."""
    manifest = {}
    changed, vanished = [], []
    for relpath, st in entries:
        path = src if relpath == "." else os.path.join(src, relpath)
        kind = _entry_type(st.st_mode)
        if kind != "file":
            try:
                st = os.stat(path) if relpath == "." else os.lstat(path)
                entry = _stat_entry(path, st)
            except FileNotFoundError:
                vanished.append(relpath)
                continue
            if entry["type"] != kind:
                changed.append(relpath)
                kind = entry["type"]
                if kind is None or kind == "file":  # replaced by something else: archive what was
                    vanished.append(relpath)
                    continue
            info = _tarinfo(relpath, st, kind)
            if kind == "symlink":
                info.linkname = entry["target"]
            tf.addfile(info)
            manifest[relpath] = entry
            continue
        try:
            handle = open(path, "rb", buffering=0)
        except FileNotFoundError:
            vanished.append(relpath)
            continue
        except OSError as e:
            raise TreeBackupError("cannot read %s: %s" % (path, e.strerror))
        with handle:
            st_open = os.fstat(handle.fileno())
            if not stat.S_ISREG(st_open.st_mode):  # replaced by a directory or a fifo since the scan
                vanished.append(relpath)
                continue
            info = _tarinfo(relpath, st_open, "file")
            info.size = st_open.st_size
            reader = _FileReader(handle, st_open.st_size, counter.counted)
            tf.addfile(info, reader)
            st_after = os.fstat(handle.fileno())
            grew = handle.read(1) != b""
        entry = _stat_entry(path, st_open, reader.digest.hexdigest())
        manifest[relpath] = entry
        if (reader.changed or grew or st_after.st_size != st_open.st_size or st_after.st_mtime != st_open.st_mtime
                or st_open.st_size != st.st_size):
            changed.append(relpath)
        counter.file_done()
    return manifest, changed, vanished


def _add_manifest(tf, document):
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    info = tarfile.TarInfo(MANIFEST_NAME)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tf.addfile(info, io.BytesIO(data))


def write_archive(path, fmt, level, src, entries, counter, header, zstd_bin="zstd"):
    """Write the tree and its manifest (last member) to ``path``; the manifest document."""
    with open(path, "wb") as out:
        if fmt == "tar.gz":
            with tarfile.open(fileobj=out, mode="w:gz", compresslevel=level, format=tarfile.PAX_FORMAT) as tf:
                manifest, changed, vanished = _archive_members(tf, src, entries, counter)
                document = dict(header, entries=manifest, changed_during_backup=changed, vanished=vanished)
                _add_manifest(tf, document)
        else:
            try:
                with zstd_tar_writer(out, level, zstd_bin) as tf:
                    manifest, changed, vanished = _archive_members(tf, src, entries, counter)
                    document = dict(header, entries=manifest, changed_during_backup=changed, vanished=vanished)
                    _add_manifest(tf, document)
            except ZstdError as exc:
                raise TreeBackupError(str(exc))
        out.flush()
        os.fsync(out.fileno())
    return document


# --------------------------------------------------------------------------- extraction

def _member_path(name):
    """The safe relative path of a member name, or None when it points out of the target."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts) or "."


def _safe_parent(root, relpath):
    """Refuse a member under a symlink the archive itself created (a classic tar escape)."""
    cur = root
    for part in relpath.split("/")[:-1]:
        cur = os.path.join(cur, part)
        st = os.lstat(cur)
        if not stat.S_ISDIR(st.st_mode):
            raise TreeBackupError("archive member %s is below %s, which is not a directory" % (relpath, cur))


def extract_archive(archive, dest, zstd_bin="zstd"):
    """Extract ``archive`` into the empty directory ``dest``; ``(manifest, actual, problems)``.

    The archive's own member handling, not tarfile's: names are checked (no absolute path, no
    ``..``, nothing below a symlink), only directories, files, symlinks and fifos are made, and
    each file's sha256 is computed as it is written. ``actual`` describes what was made, as the
    manifest does; the manifest member is read, never written.
    """
    problems = []
    actual = {}
    manifest = None
    is_root = os.geteuid() == 0
    dirs = []
    proc = None
    if archive.endswith(".tar.zst"):
        proc = subprocess.Popen([zstd_bin, "-q", "-d", "-c", archive], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        stream, mode = proc.stdout, "r|"
    elif archive.endswith(".tar.gz"):
        stream, mode = open(archive, "rb"), "r|gz"
    else:
        raise TreeBackupError("%s is neither .tar.zst nor .tar.gz" % archive)
    try:
        with tarfile.open(fileobj=stream, mode=mode) as tf:
            for member in tf:
                if member.name == MANIFEST_NAME:
                    try:
                        manifest = json.loads(tf.extractfile(member).read().decode("utf-8"))
                    except ValueError as e:
                        problems.append("the manifest is not JSON: %s" % e)
                    continue
                relpath = _member_path(member.name)
                if relpath is None:
                    problems.append("unsafe member name %r not extracted" % member.name)
                    continue
                path = dest if relpath == "." else os.path.join(dest, relpath)
                if relpath != ".":
                    _safe_parent(dest, relpath)
                    if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path)):
                        problems.append("member %s appears twice" % relpath)
                        continue
                entry = dict(mode=member.mode & 0o7777, mtime=int(member.mtime), uid=member.uid, gid=member.gid)
                if member.isdir():
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    dirs.append((path, member))
                    entry["type"] = "dir"
                elif member.isreg():
                    digest = hashlib.sha256()
                    src = tf.extractfile(member)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        for chunk in iter(lambda: src.read(_CHUNK), b""):
                            digest.update(chunk)
                            out.write(chunk)
                    entry.update(type="file", size=member.size, sha256=digest.hexdigest())
                    _set_attributes(path, member, is_root)
                elif member.issym():
                    os.symlink(member.linkname, path)
                    entry.update(type="symlink", target=member.linkname)
                    if is_root:
                        os.lchown(path, member.uid, member.gid)
                elif member.isfifo():
                    os.mkfifo(path, 0o600)
                    entry["type"] = "fifo"
                    _set_attributes(path, member, is_root)
                else:
                    problems.append("member %s has a type tree_backup never writes; not extracted" % relpath)
                    continue
                actual[relpath] = entry
    except TreeBackupError as e:
        problems.append(str(e))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        problems.append("the archive cannot be read to the end (%s: %s): truncated or damaged"
                        % (type(e).__name__, e))
    finally:
        if proc is not None:
            proc.stdout.close()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            if proc.wait() != 0:
                problems.append("zstd cannot decompress %s (rc %d): %s" % (archive, proc.returncode, err[-300:]))
        else:
            stream.close()
    # Directories last, deepest first: their own mode (which may forbid writing) and the mtime
    # their contents changed.
    for path, member in reversed(dirs):
        _set_attributes(path, member, is_root)
    if manifest is None and not any("the manifest" in p for p in problems):
        problems.append("the archive has no %s: truncated, or not made by tree_backup" % MANIFEST_NAME)
    return manifest, actual, problems


def _set_attributes(path, member, is_root):
    if is_root:  # chown before chmod: chown clears set-id bits
        os.chown(path, member.uid, member.gid)
    os.chmod(path, member.mode & 0o7777)
    os.utime(path, (member.mtime, member.mtime))


def check_archive(archive, scratch, zstd_bin="zstd"):
    """Extract ``archive`` into ``scratch`` and check it against its manifest: the result dict."""
    manifest, actual, problems = extract_archive(archive, scratch, zstd_bin)
    result = dict(entries=len(actual), problems=problems)
    if manifest is not None:
        expected = manifest.get("entries") or {}
        result.update(files=sum(1 for e in expected.values() if e["type"] == "file"),
                      bytes=sum(e.get("size", 0) for e in expected.values() if e["type"] == "file"),
                      created=manifest.get("created"), changed_during_backup=manifest.get("changed_during_backup"))
        problems.extend(compare_entries(expected, actual, check_owner=os.geteuid() == 0))
    result["passed"] = not problems
    result["problem_count"] = len(problems)
    result["problems"] = problems[:MAX_PROBLEMS]
    return result


# --------------------------------------------------------------------------- helpers

def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _tail(data, limit=1500):
    text = (data or b"").decode("utf-8", "replace").strip()
    return text[-limit:]


def run_hook(command, timeout, env, cwd=None):
    """Run ``/bin/sh -c command``; ``(rc, output tail)``; the whole process group dies at the timeout."""
    proc = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, **env), cwd=cwd, start_new_session=True)
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, _err = proc.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        raise TreeBackupError("timed out after %d s" % timeout)
    return proc.returncode, _tail(out)


def archive_listing(cfg):
    names = os.listdir(cfg["backup_dir"]) if os.path.isdir(cfg["backup_dir"]) else []
    return job_archives(cfg["name"], names)


def choose_archive(cfg, archive):
    """The archive a restore or drill reads: ``--archive`` (a path, or a name in backup_dir) or the newest."""
    if archive:
        path = archive if "/" in archive else os.path.join(cfg["backup_dir"], archive)
        if not os.path.isfile(path):
            raise TreeBackupError("--archive %s does not exist" % path)
        return path
    dated = archive_listing(cfg)
    if not dated:
        raise TreeBackupError("there is no archive of job %s in %s" % (cfg["name"], cfg["backup_dir"]))
    return os.path.join(cfg["backup_dir"], dated[-1][1])


def _zstd(needed, what):
    found = shutil.which("zstd")
    if not found and needed:
        raise TreeBackupError("%s needs the zstd program, which is not in PATH; install zstd%s"
                              % (what, " or set format tar.gz" if what.startswith("format") else ""))
    return found or "zstd"


def _zstd_for(archive):
    return _zstd(archive.endswith(".zst"), "the archive %s" % os.path.basename(archive))


def _finish(record, started):
    record["end"] = _run_log.utc_stamp()
    record["elapsed"] = round(time.monotonic() - started, 3)
    return record


# --------------------------------------------------------------------------- commands

def cmd_backup(cfg, args):
    started = time.monotonic()
    record = _run_log.new_record(cfg["name"], KIND, "backup", args.trigger)
    now = parse_now(args.now) if args.now else _utcnow()
    simulated = bool(args.now)
    if simulated:
        record["simulated_now"] = _run_log.utc_stamp(now)
    progress = _progress.ProgressFile(None)
    if cfg["progress_file"] and not args.check:
        try:
            progress = _progress.ProgressFile(cfg["progress_file"], cfg["progress_interval"],
                                              what="tree backup %s" % cfg["name"])
        except OSError as e:  # the backup matters more than its progress report
            sys.stderr.write("cannot write the progress file %s: %s\n" % (cfg["progress_file"], e))
    result = dict(changed=False, job=cfg["name"])
    tmp_path = None
    try:
        zstd_bin = _zstd(cfg["format"] == "tar.zst", "format=tar.zst")
        if not os.path.isdir(cfg["backup_dir"]):
            raise TreeBackupError("backup_dir=%s does not exist or is not a directory" % cfg["backup_dir"])
        if args.check:
            name = archive_name(cfg["name"], now, cfg["format"])
            deleted = retention_plan(cfg["name"], os.listdir(cfg["backup_dir"]), now, cfg["keep_days"],
                                     cfg["keep_last"], name)
            plan = (["run the pre-command: %s" % cfg["pre_command"]] if cfg["pre_command"] else [])
            plan.append("archive %s into %s" % (cfg["src"], os.path.join(cfg["backup_dir"], name)))
            plan += ["delete by retention: %s" % n for n in deleted]
            result.update(changed=True, check=True, archive=os.path.join(cfg["backup_dir"], name), deleted=deleted,
                          plan=plan, msg="would write %s and delete %d old archive(s)" % (name, len(deleted)))
            return result, EXIT_OK  # check mode records nothing
        _remove_stale_partials(cfg)
        if cfg["pre_command"]:
            progress.update(note="running the pre-command", force=True)
            t0 = time.monotonic()
            try:
                rc, output = run_hook(cfg["pre_command"], cfg["pre_command_timeout"],
                                      dict(NODOWNTIME_JOB=cfg["name"], NODOWNTIME_TREE_SRC=cfg["src"]))
            except TreeBackupError as e:
                raise TreeBackupError("pre_command %s (pre_command_timeout); no archive written" % e)
            result["pre_command_elapsed"] = round(time.monotonic() - t0, 3)
            result["pre_command_rc"] = rc
            if rc != 0:
                raise TreeBackupError("pre_command failed (rc %d); no archive written: %s" % (rc, output))
        if not os.path.isdir(cfg["src"]):
            raise TreeBackupError("src=%s does not exist or is not a directory%s" % (
                cfg["src"], " after the pre-command" if cfg["pre_command"] else ""))
        name = archive_name(cfg["name"], now, cfg["format"])
        final = os.path.join(cfg["backup_dir"], name)
        while os.path.lexists(final):
            if simulated:
                raise TreeBackupError("%s already exists: a backup at --now %s was made before"
                                      % (final, args.now))
            time.sleep(0.2)  # two runs in one second: the next second names this one
            now = _utcnow()
            name = archive_name(cfg["name"], now, cfg["format"])
            final = os.path.join(cfg["backup_dir"], name)
        progress.update(note="scanning %s" % cfg["src"], force=True)
        entries, skipped = scan_tree(cfg["src"], cfg["exclude"])
        files_total = sum(1 for _p, st in entries if stat.S_ISREG(st.st_mode))
        bytes_total = sum(st.st_size for _p, st in entries if stat.S_ISREG(st.st_mode))
        counter = _Counter(progress, bytes_total, files_total, "archiving into %s" % name)
        counter.update(force=True)
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % name, suffix=".partial", dir=cfg["backup_dir"])
        os.close(fd)
        header = dict(version=MANIFEST_VERSION, job=cfg["name"], src=cfg["src"], format=cfg["format"],
                      created=_run_log.utc_stamp(now), exclude=cfg["exclude"])
        document = write_archive(tmp_path, cfg["format"], cfg["compression_level"], cfg["src"], entries, counter,
                                 header, zstd_bin)
        os.chmod(tmp_path, 0o600)
        _publish(tmp_path, final)
        tmp_path = None
        _fsync_dir(cfg["backup_dir"])
        result.update(changed=True, archive=final, size=os.path.getsize(final), sha256=sha256_file(final))
        files = [e for e in document["entries"].values() if e["type"] == "file"]
        result.update(files=len(files), bytes=sum(e["size"] for e in files), entries=len(document["entries"]),
                      changed_during_backup=document["changed_during_backup"], vanished=document["vanished"],
                      skipped=skipped)
        # Retention after the new archive is safe on disk, and never of the new one.
        deleted = retention_plan(cfg["name"], os.listdir(cfg["backup_dir"]), now, cfg["keep_days"],
                                 cfg["keep_last"], name)
        for old in deleted:
            os.unlink(os.path.join(cfg["backup_dir"], old))
        if deleted:
            _fsync_dir(cfg["backup_dir"])
        result["deleted"] = deleted
        result["msg"] = "wrote %s (%d files, %s, archive %s)%s%s" % (
            name, result["files"], _progress.human_bytes(result["bytes"]), _progress.human_bytes(result["size"]),
            "; deleted %d old archive(s)" % len(deleted) if deleted else "",
            "; %d file(s) changed while being archived" % len(result["changed_during_backup"])
            if result["changed_during_backup"] else "")
        progress.finish(outcome="done", bytes_done=counter.bytes_done, bytes_total=counter.bytes_done,
                        files_done=counter.files_done, files_total=counter.files_done,
                        note="%s, %d bytes" % (name, result["size"]))
        record.update(outcome="ok", msg=result["msg"])
        for key in ("files", "bytes", "archive", "size", "sha256", "deleted", "changed_during_backup", "vanished"):
            record[key] = result[key]
        rc = EXIT_OK
    except (TreeBackupError, OSError) as e:
        msg = str(e) if isinstance(e, TreeBackupError) else "%s: %s" % (type(e).__name__, e)
        result.update(failed=True, msg=msg)
        record.update(outcome="failed", msg=msg)
        progress.finish(outcome="failed", note=msg.splitlines()[0][:300] if msg else "")
        rc = EXIT_FAILED
    finally:
        if tmp_path and os.path.exists(tmp_path):
            os.unlink(tmp_path)
    _run_log.append(cfg["runs_log"], _finish(record, started))
    result["elapsed"] = record["elapsed"]
    return result, rc


def _publish(tmp_path, final):
    """Give the finished archive its name; never replaces an archive of that name."""
    try:
        os.link(tmp_path, final)
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise TreeBackupError("%s appeared while this run wrote it; this run's archive is dropped" % final)
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.rename(tmp_path, final)  # a file system without hard links
        return
    os.unlink(tmp_path)


def _remove_stale_partials(cfg):
    prefix = ".%s_" % cfg["name"]
    limit = time.time() - STALE_PARTIAL_SECONDS
    for name in os.listdir(cfg["backup_dir"]):
        if name.startswith(prefix) and name.endswith(".partial"):
            path = os.path.join(cfg["backup_dir"], name)
            try:
                if os.lstat(path).st_mtime < limit:
                    os.unlink(path)
            except FileNotFoundError:
                pass


def cmd_record_skip(cfg, args):
    record = _run_log.new_record(cfg["name"], KIND, "backup", args.trigger)
    record.update(outcome="skipped", msg="the previous run of %s still held the lock" % cfg["name"])
    _run_log.append(cfg["runs_log"], _finish(record, time.monotonic()))
    return dict(changed=False, skipped=True, msg=record["msg"]), EXIT_SKIPPED


def _scratch(cfg, args, prefix):
    workdir = args.workdir or cfg["backup_dir"]
    if not os.path.isdir(workdir):
        raise TreeBackupError("the work directory %s does not exist (--workdir or backup_dir)" % workdir)
    return tempfile.mkdtemp(prefix=".%s.%s-" % (cfg["name"], prefix), dir=workdir)


def cmd_drill(cfg, args):
    started = time.monotonic()
    record = _run_log.new_record(cfg["name"], KIND, "drill", args.trigger)
    result = dict(changed=False, job=cfg["name"], passed=False)
    scratch = None
    try:
        archive = choose_archive(cfg, args.archive)
        result.update(archive=archive, size=os.path.getsize(archive), sha256=sha256_file(archive))
        scratch = _scratch(cfg, args, "drill")
        result["scratch"] = scratch
        result.update(check_archive(archive, scratch, _zstd_for(archive)))
        result["msg"] = ("drill passed: %s restores %d entries (%d files, %s) exactly as its manifest says"
                         % (os.path.basename(archive), result["entries"], result.get("files", 0),
                            _progress.human_bytes(result.get("bytes", 0)))
                         if result["passed"] else "drill FAILED for %s: %d problem(s): %s"
                         % (os.path.basename(archive), result["problem_count"], "; ".join(result["problems"][:5])))
    except (TreeBackupError, OSError) as e:
        result.update(passed=False, problems=[str(e)], problem_count=1, msg="drill FAILED: %s" % e)
    finally:
        if scratch:
            _remove_tree(scratch)
    record.update(outcome="ok" if result["passed"] else "failed", passed=result["passed"], msg=result["msg"])
    for key in ("archive", "size", "sha256", "files", "bytes"):
        if key in result:
            record[key] = result[key]
    if not result["passed"]:
        record["problems"] = result["problems"][:10]
    _run_log.append(cfg["runs_log"], _finish(record, started))
    result["elapsed"] = record["elapsed"]
    return result, EXIT_OK if result["passed"] else EXIT_FAILED


def _remove_tree(path):
    # A restored tree can hold directories without write permission (as archived): open them up first.
    def onerror(func, failed, _exc):
        parent = os.path.dirname(failed)
        try:
            os.chmod(parent, 0o700)
            func(failed)
        except OSError:
            pass
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.islink(full):
                try:
                    os.chmod(full, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, onerror=onerror)


def _dest_state(dest):
    """``absent``, ``empty`` or ``non-empty``; TreeBackupError for a path that is not a directory."""
    if not os.path.lexists(dest):
        return "absent"
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise TreeBackupError("--dest %s exists and is not a directory" % dest)
    return "non-empty" if os.listdir(dest) else "empty"


def cmd_restore(cfg, args):
    started = time.monotonic()
    record = _run_log.new_record(cfg["name"], KIND, "restore", args.trigger)
    result = dict(changed=False, job=cfg["name"])
    staging = None
    try:
        if not args.dest or not args.dest.startswith("/"):
            raise TreeBackupError("--dest must be an absolute path, not %r" % (args.dest,))
        dest = os.path.normpath(args.dest)
        if dest == "/":
            raise TreeBackupError("--dest / is refused: restore into a directory")
        archive = choose_archive(cfg, args.archive)
        state = _dest_state(dest)
        result.update(archive=archive, dest=dest, dest_state=state)
        if state == "non-empty" and not args.confirm:
            raise TreeBackupError("--dest %s is not empty; a restore moves what is there aside to "
                                  "%s.before-restore-TIME: pass --confirm to do it" % (dest, dest))
        if state != "absent" and os.path.ismount(dest):
            raise TreeBackupError("--dest %s is a mount point: the restored tree cannot be moved into place "
                                  "there; restore into a directory inside it" % dest)
        aside = "%s.before-restore-%s" % (dest, _utcnow().strftime(STAMP_FORMAT))
        plan = ["extract and check %s" % archive]
        if state == "non-empty":
            plan.append("move the current %s aside to %s" % (dest, aside))
        plan.append("move the checked tree into %s" % dest)
        if cfg["post_restore_command"]:
            plan.append("run the post-restore command: %s" % cfg["post_restore_command"])
        result["plan"] = plan
        if args.check:
            result.update(changed=True, check=True, msg="would restore %s into %s" % (os.path.basename(archive), dest))
            return result, EXIT_OK  # check mode records nothing
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        # Staged beside dest (same file system, so the move is a rename) and checked against the
        # manifest: a damaged archive never touches dest.
        staging = tempfile.mkdtemp(prefix=".%s.restore-" % os.path.basename(dest), dir=parent)
        check = check_archive(archive, staging, _zstd_for(archive))
        result.update(entries=check["entries"], files=check.get("files"), bytes=check.get("bytes"))
        if not check["passed"]:
            raise TreeBackupError("%s does not match its manifest; %s left untouched: %s" % (
                archive, dest, "; ".join(check["problems"][:5])))
        if state == "non-empty":
            os.rename(dest, aside)
            result["moved_aside"] = aside
        elif state == "empty":
            os.rmdir(dest)
        os.rename(staging, dest)
        staging = None
        _fsync_dir(parent)
        result["changed"] = True
        if cfg["post_restore_command"]:
            try:
                rc, output = run_hook(cfg["post_restore_command"], cfg["post_restore_timeout"],
                                      dict(NODOWNTIME_RESTORE_DIR=dest, NODOWNTIME_JOB=cfg["name"],
                                           NODOWNTIME_ARCHIVE=archive), cwd=dest)
            except TreeBackupError as e:
                raise TreeBackupError("the tree is restored in %s, but post_restore_command %s "
                                      "(post_restore_timeout)" % (dest, e))
            result.update(post_restore_rc=rc, post_restore_output=output)
            if rc != 0:
                raise TreeBackupError("the tree is restored in %s, but post_restore_command failed (rc %d): %s"
                                      % (dest, rc, output))
        result["msg"] = "restored %s into %s (%d entries)%s" % (
            os.path.basename(archive), dest, result["entries"],
            "; the previous content is in %s" % aside if state == "non-empty" else "")
        record.update(outcome="ok")
        rc = EXIT_OK
    except (TreeBackupError, OSError) as e:
        msg = str(e) if isinstance(e, TreeBackupError) else "%s: %s" % (type(e).__name__, e)
        result.update(failed=True, msg=msg)
        record.update(outcome="failed")
        rc = EXIT_FAILED
    finally:
        if staging:
            _remove_tree(staging)
    record["msg"] = result["msg"]
    for key in ("archive", "dest", "files", "bytes"):
        if result.get(key) is not None:
            record[key] = result[key]
    _run_log.append(cfg["runs_log"], _finish(record, started))
    result["elapsed"] = record["elapsed"]
    return result, rc


def cmd_list(cfg, args):
    archives = []
    for when, name in reversed(archive_listing(cfg)):
        path = os.path.join(cfg["backup_dir"], name)
        archives.append(dict(name=name, path=path, size=os.path.getsize(path), date=_run_log.utc_stamp(when)))
    total = sum(a["size"] for a in archives)
    msg = "%d archive(s) of %s, %s, newest %s" % (len(archives), cfg["name"], _progress.human_bytes(total),
                                                  archives[0]["name"] if archives else "none")
    return dict(changed=False, job=cfg["name"], archives=archives, count=len(archives), bytes=total, msg=msg), EXIT_OK


COMMANDS = {"backup": cmd_backup, "record-skip": cmd_record_skip, "restore": cmd_restore, "drill": cmd_drill,
            "list": cmd_list}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python3 -m ansible_collections.nodowntime.storage.plugins.module_utils._tree_backup",
        description="Dated, restorable backups of a directory tree (nodowntime.storage tree_backup). "
                    "Prints one JSON object; exits 0 on success, 1 on failure, 75 for a skipped run.")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", required=True, help="the job's JSON config, as the tree_backup role writes it")
    parser.add_argument("--trigger", choices=("systemd", "cron", "manual", "ansible"),
                        default=os.environ.get("NODOWNTIME_TRIGGER") or "manual",
                        help="what started the run, for the run log (default: $NODOWNTIME_TRIGGER or manual)")
    parser.add_argument("--now", help="backup: pretend it is this UTC time (2026-11-01T03:00:00Z): it names the "
                                      "archive and is the time retention counts from; for tests that simulate days")
    parser.add_argument("--archive", help="restore, drill: the archive (path or name in backup_dir); default: newest")
    parser.add_argument("--dest", help="restore: the directory to restore into")
    parser.add_argument("--confirm", action="store_true",
                        help="restore: into a non-empty --dest (its content is moved aside)")
    parser.add_argument("--check", action="store_true", help="backup, restore: say what would be done, do nothing")
    parser.add_argument("--workdir", help="drill: where the scratch directory goes (default: backup_dir)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.trigger not in ("systemd", "cron", "manual", "ansible"):
        args.trigger = "manual"
    try:
        cfg = load_config(args.config)
        result, rc = COMMANDS[args.command](cfg, args)
    except TreeBackupError as e:
        result, rc = dict(changed=False, failed=True, msg=str(e)), EXIT_FAILED
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
