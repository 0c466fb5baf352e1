# SPDX-License-Identifier: GPL-3.0-or-later
"""Consistent, restorable backups of a Redis append-only file (AOF).

This file has no Ansible import on purpose: the ``redis_aof_backup`` module uses it, and the
``redis_backup`` role installs it unchanged (with the rest of the host-side job code, through
the ``job_library`` module) beside a small script so that scheduled runs (systemd timer or cron)
perform exactly the same steps on a host without Ansible. Keep it that way: import only files
that ``job_library`` installs too.

Steps (the five-step AOF backup, made safe for Redis 7's multi-part AOF):

1. remember ``appendfsync`` and set it to ``no`` (``relax_fsync``); also remember
   ``auto-aof-rewrite-percentage`` and set it to ``0`` so no automatic rewrite starts
   while the files are being linked (Redis persistence docs, "Backing up AOF persistence");
2. ``BGREWRITEAOF`` (a rewrite already running or scheduled is joined, not an error);
3. poll ``INFO persistence`` until the rewrite is over, bounded by ``timeout``;
4. hard-link base + incr files named by the manifest into a staging directory (copy when
   ``backup_dir`` is on another file system), re-check the manifest so one generation only
   is archived, put ``auto-aof-rewrite-percentage`` back, archive the staged files (incr files
   cut at the size they had at link time, at the last complete command) to a temporary name,
   fsync, rename, sha256;
5. put every changed setting back, also when a step failed or timed out.

Progress: ``AofBackup`` takes an object with the ``update``/``finish`` methods of the
collection's ``_progress.ProgressFile`` (the module and the role's script pass one; this file
imports neither) and reports the wait for the rewrite (time elapsed, Redis' own percent of the
keys written) and the archive (bytes and files done of all).
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile

from ansible_collections.nodowntime.storage.plugins.module_utils._host_io import (
    ZstdError, fsync_dir as _fsync_dir, sha256_file, zstd_tar_writer)

ARCHIVE_FORMATS = ("zip", "tar.zst")
ARCHIVE_RE = re.compile(r"^aof_(?P<ts>\d{14})-(?P<port>\d+)\.(?P<ext>zip|tar\.zst)$")
METADATA_NAME = "nodowntime-aof-backup.json"
RUNS_LOG = "backup-runs.jsonl"

# The one source of the backup's defaults: the redis_aof_backup module's argument spec and the
# role's scheduled script (through backup_options) take them from here. What must repeat them
# (the module's DOCUMENTATION, the role's defaults and argument specs) is compared with them by
# tests/unit/plugins/module_utils/test_redis_aof.py.
DEFAULTS = dict(relax_fsync=True, timeout=600, poll_interval=0.5, format="zip", lock_wait=0, sample_size=100,
                progress_interval=5.0)
# Deflate level 6 took 4.9 s for a 109 MB base file, level 1 1.5 s; 3 is zstd's own default.
DEFAULT_COMPRESSION_LEVEL = {"zip": 1, "tar.zst": 3}
MAX_COMPRESSION_LEVEL = {"zip": 9, "tar.zst": 19}


class BackupError(Exception):
    """A backup step failed; ``step`` names it."""

    def __init__(self, msg, step=None):
        super().__init__(msg)
        self.step = step


# --------------------------------------------------------------------------- pure helpers

def _to_str(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def parse_info(text):
    """Parse ``INFO`` output (``key:value`` lines, ``# Section`` headers) into a dict of str."""
    result = {}
    for line in _to_str(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        result[key] = value
    return result


def rewrite_state(info):
    """Where an AOF rewrite stands according to ``INFO persistence``.

    Returns ``running``, ``scheduled``, ``failed`` (last rewrite status is not ok) or ``done``.
    """
    def _int(key):
        try:
            return int(_to_str(info.get(key, 0)) or 0)
        except ValueError:
            return 0

    if _int("aof_rewrite_in_progress"):
        return "running"
    if _int("aof_rewrite_scheduled"):
        return "scheduled"
    if _to_str(info.get("aof_last_bgrewrite_status", "ok")) != "ok":
        return "failed"
    return "done"


def parse_manifest(text):
    """Parse a Redis 7 AOF manifest into ``[{'name', 'seq', 'type'}]`` in file order.

    Lines look like ``file appendonly.aof.2.base.rdb seq 2 type b``; names with spaces are
    quoted the way Redis quotes them. ``type`` is ``b`` (base), ``h`` (history) or ``i`` (incr).
    """
    entries = []
    for lineno, line in enumerate(_to_str(text).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise BackupError("AOF manifest line %d cannot be parsed (%s): %r" % (lineno, e, line))
        if len(words) % 2:
            raise BackupError("AOF manifest line %d has an odd number of words: %r" % (lineno, line))
        fields = dict(zip(words[0::2], words[1::2]))
        if "file" not in fields or "type" not in fields:
            raise BackupError("AOF manifest line %d lacks 'file' or 'type': %r" % (lineno, line))
        if "/" in fields["file"] or fields["file"] in (".", ".."):
            raise BackupError("AOF manifest line %d names a path, not a file: %r" % (lineno, line))
        entries.append(dict(name=fields["file"], seq=int(fields.get("seq", 0)), type=fields["type"]))
    return entries


def manifest_data_files(entries):
    """The files a restore needs: the base file then the incr files in order (no history)."""
    bases = [e for e in entries if e["type"] == "b"]
    incrs = [e for e in entries if e["type"] == "i"]
    if len(bases) > 1:
        raise BackupError("AOF manifest lists %d base files; expected at most one" % len(bases))
    if not bases and not incrs:
        raise BackupError("AOF manifest lists no base and no incr file")
    return bases + incrs


def resp_complete_length(data):
    """Length of the longest prefix of ``data`` made of complete RESP commands.

    An incr AOF file that Redis is appending to may end in a half-written command, or inside a
    MULTI block whose EXEC is not written yet. The prefix returned ends after the last complete
    command that is not inside an open MULTI, which is what ``redis-check-aof`` accepts.
    """
    pos = 0
    good = 0
    in_multi = False
    size = len(data)
    while pos < size:
        if data[pos:pos + 1] != b"*":
            break
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            argc = int(data[pos + 1:eol])
        except ValueError:
            break
        cur = eol + 2
        args = []
        complete = True
        for _index in range(argc):
            if data[cur:cur + 1] != b"$":
                complete = False
                break
            eol = data.find(b"\r\n", cur)
            if eol < 0:
                complete = False
                break
            try:
                length = int(data[cur + 1:eol])
            except ValueError:
                complete = False
                break
            start = eol + 2
            end = start + length
            if end + 2 > size or data[end:end + 2] != b"\r\n":
                complete = False
                break
            if not args:
                args.append(data[start:end].upper())
            else:
                args.append(None)
            cur = end + 2
        if not complete:
            break
        pos = cur
        name = args[0] if args else b""
        if name == b"MULTI":
            in_multi = True
        elif name == b"EXEC":
            in_multi = False
        if not in_multi:
            good = pos
    return good


def archive_name(when, port, fmt):
    """``aof_YYYYmmddHHMMSS-PORT.zip`` (the classic name) or ``.tar.zst``; ``when`` is UTC."""
    if fmt not in ARCHIVE_FORMATS:
        raise BackupError("format must be one of %s, not %r" % (", ".join(ARCHIVE_FORMATS), fmt))
    return "aof_%s-%d.%s" % (when.strftime("%Y%m%d%H%M%S"), int(port), fmt)


def parse_archive_name(name, port=None):
    """``datetime`` (UTC, naive) of an archive name of ``port``, or ``None`` for other files."""
    m = ARCHIVE_RE.match(name)
    if not m or (port is not None and int(m.group("port")) != int(port)):
        return None
    try:
        return datetime.datetime.strptime(m.group("ts"), "%Y%m%d%H%M%S")
    except ValueError:
        return None


def select_expired(names, port, now, keep_days=None, keep_last=None):
    """Archive names of ``port`` that retention deletes, oldest first.

    An archive is kept when any rule keeps it: it is one of the ``keep_last`` newest, or it is
    younger than ``keep_days`` days (by the time in its name). With no rule nothing is deleted.
    Files of other ports and files that are not archives are never selected.
    """
    if keep_days is None and keep_last is None:
        return []
    if keep_last is not None and keep_last < 1:
        raise BackupError("keep_last must be 1 or more (the newest archive is always kept), not %r"
                          % keep_last)
    if keep_days is not None and keep_days < 0:
        raise BackupError("keep_days must be 0 or more, not %r" % keep_days)
    dated = [(parse_archive_name(n, port), n) for n in names]
    dated = sorted(((t, n) for t, n in dated if t is not None), reverse=True)
    keep = set()
    if keep_last is not None:
        keep.update(n for _t, n in dated[:keep_last])
    if keep_days is not None:
        limit = now - datetime.timedelta(days=keep_days)
        keep.update(n for t, n in dated if t >= limit)
    elif keep_last is None:
        keep.update(n for _t, n in dated)
    if not keep and dated:
        keep.add(dated[0][1])  # never delete the newest archive
    return [n for _t, n in reversed(dated) if n not in keep]


def retention_plan(names, new_archive, port, now, keep_days=None, keep_last=None):
    """Archive names of ``port`` a run that creates ``new_archive`` deletes, oldest first.

    The one plan of check mode and of the real run: ``names`` (the backup directory's listing,
    before or after the new archive is written) with ``new_archive`` counted in, so check mode
    predicts what the run deletes. The new archive itself is never deleted.
    """
    names = set(names)
    names.add(new_archive)
    return [n for n in select_expired(sorted(names), port, now, keep_days, keep_last) if n != new_archive]


def backup_options(params, zstd_bin=None, check_mode=False):
    """``AofBackup`` options from module params or the scheduled script's config, checked.

    Unset (``None`` or missing) values take :data:`DEFAULTS`; ``compression_level`` the format's
    default. Raises ``BackupError`` (step ``config``) naming the option and the value that is wrong.
    """
    def get(name):
        value = params.get(name)
        return DEFAULTS[name] if value is None else value

    fmt = get("format")
    if fmt not in ARCHIVE_FORMATS:
        raise BackupError("format must be one of %s, not %r" % (", ".join(ARCHIVE_FORMATS), fmt), step="config")
    level = params.get("compression_level")
    level = DEFAULT_COMPRESSION_LEVEL[fmt] if level is None else int(level)
    if not 1 <= level <= MAX_COMPRESSION_LEVEL[fmt]:
        raise BackupError("compression_level must be 1 to %d for format %s, not %d"
                          % (MAX_COMPRESSION_LEVEL[fmt], fmt, level), step="config")
    keep_days, keep_last = params.get("keep_days"), params.get("keep_last")
    if keep_last is not None and keep_last < 1:
        raise BackupError("keep_last must be 1 or more (the newest archive is always kept), not %d" % keep_last,
                          step="config")
    if keep_days is not None and keep_days < 0:
        raise BackupError("keep_days must be 0 or more, not %d" % keep_days, step="config")
    if get("timeout") < 1:
        raise BackupError("timeout must be 1 second or more, not %d" % get("timeout"), step="config")
    if fmt == "tar.zst" and not zstd_bin:
        raise BackupError("format tar.zst needs the zstd program, which is not in PATH on this host; install zstd "
                          "or use format zip", step="config")
    return dict(backup_dir=params["backup_dir"], port=params["login_port"], relax_fsync=get("relax_fsync"),
                timeout=get("timeout"), poll_interval=get("poll_interval"), format=fmt, compression_level=level,
                lock_wait=get("lock_wait"), keep_days=keep_days, keep_last=keep_last,
                sample_size=get("sample_size"), zstd_bin=zstd_bin, check_mode=check_mode)


def newest_archive(names, port):
    """The newest archive name of ``port`` among ``names``, or ``None``."""
    dated = [(parse_archive_name(n, port), n) for n in names]
    dated = sorted((t, n) for t, n in dated if t is not None)
    return dated[-1][1] if dated else None


def value_digest(kind, value):
    """Stable sha256 of a key's type and value as read by :func:`sample_keys`."""
    h = hashlib.sha256()
    h.update(_to_str(kind).encode() + b"\0")
    h.update(json.dumps(value, sort_keys=True, default=_to_str).encode())
    return h.hexdigest()


def keyspace_counts(info):
    """``{'db0': 100, ...}`` from ``INFO keyspace`` as a dict (raw or parsed by redis-py)."""
    counts = {}
    for db, value in info.items():
        db = _to_str(db)
        if not re.match(r"^db\d+$", db):
            continue
        if isinstance(value, dict):
            counts[db] = int(value.get("keys", 0))
        else:
            m = re.search(r"keys=(\d+)", _to_str(value))
            counts[db] = int(m.group(1)) if m else 0
    return counts


def compare_drill(meta, restored_counts, restored_digests):
    """Compare what a scratch server loaded with what the backup recorded.

    ``meta['keys_before']``/``meta['keys_after']`` are per-db key counts read just before and
    just after the snapshot point; the restored count must lie between them (both included).
    ``meta['sample']`` maps sampled keys to digests taken before and after: keys whose digest was
    the same both times must have exactly that digest in the restored server.
    Returns ``(ok, problems, checked)``.
    """
    problems = []
    before = meta.get("keys_before") or {}
    after = meta.get("keys_after") or {}
    for db in sorted(set(before) | set(after) | set(restored_counts)):
        lo = min(before.get(db, 0), after.get(db, 0))
        hi = max(before.get(db, 0), after.get(db, 0))
        got = restored_counts.get(db, 0)
        if not lo <= got <= hi:
            problems.append("%s holds %d keys after restore; the backup saw %d to %d" % (db, got, lo, hi))
    checked = 0
    for key, pair in sorted((meta.get("sample") or {}).items()):
        if pair[0] is None or pair[0] != pair[1]:
            continue  # changed while the backup ran: no single right answer
        checked += 1
        if restored_digests.get(key) != pair[0]:
            problems.append("sampled key %r differs from the backup" % key)
    return (not problems, problems, checked)


# --------------------------------------------------------------------------- Redis helpers

def config_get(client, name):
    """One ``CONFIG GET`` value as str; BackupError when the server does not have it."""
    value = client.config_get(name)
    for k, v in value.items():
        if _to_str(k) == name:
            return _to_str(v)
    raise BackupError("CONFIG GET %s returned nothing; is CONFIG renamed or is this not Redis?" % name)


def read_value(client, key):
    """``(type, value)`` of ``key`` in a JSON-able, order-independent form."""
    kind = _to_str(client.type(key))
    # Big values are represented by their size only: the sample must stay cheap for Redis.
    size = {"string": client.strlen, "hash": client.hlen, "list": client.llen, "set": client.scard,
            "zset": client.zcard}.get(kind, lambda _k: 0)(key)
    if size > (1 << 20 if kind == "string" else 1000):
        return kind, ["size", size]
    if kind == "string":
        value = _to_str(client.get(key))
    elif kind == "hash":
        value = sorted([_to_str(k), _to_str(v)] for k, v in client.hgetall(key).items())
    elif kind == "list":
        value = [_to_str(v) for v in client.lrange(key, 0, -1)]
    elif kind == "set":
        value = sorted(_to_str(v) for v in client.smembers(key))
    elif kind == "zset":
        value = [[_to_str(m), s] for m, s in client.zrange(key, 0, -1, withscores=True)]
    elif kind == "none":
        value = None
    else:
        value = (client.dump(key) or b"").hex()
    return kind, value


def key_digests(client, keys):
    """``{key: digest or None}`` for ``keys`` (str) in db 0."""
    result = {}
    for key in keys:
        kind, value = read_value(client, key)
        result[key] = None if kind == "none" else value_digest(kind, value)
    return result


def sample_keys(client, count):
    """Up to ``count`` distinct random key names of db 0."""
    keys = set()
    for _try in range(count * 2):
        if len(keys) >= count:
            break
        k = client.randomkey()
        if k is None:
            break
        keys.add(_to_str(k))
    return sorted(keys)


# --------------------------------------------------------------------------- files

class BackupLock:
    """``fcntl.flock`` on ``backup_dir/.aof-backup-PORT.lock``; one backup per instance."""

    def __init__(self, backup_dir, port):
        self.path = os.path.join(backup_dir, ".aof-backup-%d.lock" % int(port))
        self.fd = None

    def acquire(self, wait):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise BackupError("cannot create the lock file %s (is backup_dir writable?): %s"
                              % (self.path, e.strerror), step="lock")
        deadline = time.monotonic() + max(0.0, float(wait))
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                os.close(self.fd)
                self.fd = None
                port = os.path.basename(self.path).split("-")[-1].split(".")[0]
                raise BackupError("another backup of port %s is running (lock %s held); waited %ss "
                                  "(lock_wait)" % (port, self.path, wait), step="lock")
            time.sleep(0.1)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def stage_files(src_dir, names, staging_dir):
    """Hard-link (or copy, across file systems) ``names`` from ``src_dir`` into ``staging_dir``.

    Returns ``(method, sizes)``: ``link`` or ``copy`` and each file's size right after it was
    staged. A name that vanished (a rewrite replaced it) raises ``FileNotFoundError``.
    """
    method = "link"
    sizes = {}
    for name in names:
        src = os.path.join(src_dir, name)
        dst = os.path.join(staging_dir, name)
        if method == "link":
            try:
                os.link(src, dst)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                method = "copy"
        if method == "copy":
            shutil.copyfile(src, dst)
        sizes[name] = os.stat(dst).st_size
    return method, sizes


def _member_bytes(path, limit, trim_resp):
    """Bytes of ``path`` up to ``limit``; RESP files cut at the last complete command."""
    with open(path, "rb") as f:
        data = f.read(limit)
    if trim_resp and data[:1] == b"*":
        data = data[:resp_complete_length(data)]
    return data


_CHUNK = 1024 * 1024


def _copy_limited(src, dst, limit, counted=None):
    """Copy ``limit`` bytes from ``src`` to ``dst`` a chunk at a time (``counted(n)`` after each)."""
    left = limit
    while left > 0:
        chunk = src.read(min(_CHUNK, left))
        if not chunk:
            raise BackupError("%s ended %d bytes early while archiving" % (getattr(src, "name", "a file"), left),
                              step="archive")
        dst.write(chunk)
        left -= len(chunk)
        if counted is not None:
            counted(len(chunk))


class _NoProgress:
    """Progress reports that go nowhere (no progress file)."""

    def update(self, **kwargs):
        return None

    def finish(self, outcome="done", **kwargs):
        return None


def member_bytes_total(members):
    """The bytes ``write_archive`` reads for ``members``: what it reports its progress against."""
    return sum(len(limit) if path is None else limit for dummy, path, limit, dummy2 in members)


class ArchiveProgress:
    """Bytes and files of the archive done so far, handed to ``progress`` at most every ``every`` s."""

    def __init__(self, progress, members, note, every=0.5, clock=time.monotonic):
        self.progress = progress
        self.total = member_bytes_total(members)
        self.files_total = len(members)
        self.note = note
        self.every = every
        self.clock = clock
        self.done = 0
        self.files_done = 0
        self.last = None

    def counted(self, count):
        self.done += count
        now = self.clock()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            self._update()

    def member_done(self, count=0):
        self.done += count
        self.files_done += 1
        self._update(force=self.files_done == self.files_total)

    def _update(self, force=False):
        self.progress.update(bytes_done=self.done, bytes_total=self.total, files_done=self.files_done,
                             files_total=self.files_total, note=self.note, force=force)


class _CountingReader:
    """A file whose reads are counted (tarfile reads a member through it)."""

    def __init__(self, handle, counted):
        self.handle = handle
        self.counted = counted

    def read(self, size=-1):
        data = self.handle.read(size)
        self.counted(len(data))
        return data


def write_archive(fmt, tmp_path, members, level, zstd_bin=None, progress=None):
    """Write ``members`` (list of ``(arcname, path, limit, trim)``) plus metadata.

    ``members`` entries with ``path`` ``None`` carry their bytes in ``limit``. Members that
    need trimming (files Redis may still be appending to: incr files, a pre-7 single AOF) are
    read whole to find their last complete command; the others, the large base files among
    them, are streamed in 1 MiB chunks so memory does not grow with the AOF. ``progress`` (an
    ``ArchiveProgress``) is told of every chunk and every member done.
    """
    def done(path, limit):
        if progress is not None:
            progress.member_done(len(limit) if path is None else limit)

    counted = progress.counted if progress is not None else None
    if fmt == "zip":
        with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=int(level)) as zf:
            for arcname, path, limit, trim in members:
                if path is None or trim:
                    zf.writestr(arcname, limit if path is None else _member_bytes(path, limit, trim))
                    done(path, limit)
                    continue
                with open(path, "rb") as src, zf.open(arcname, "w", force_zip64=True) as dst:
                    _copy_limited(src, dst, limit, counted)
                if progress is not None:
                    progress.member_done()
        return
    # tar.zst: a tar stream into `zstd -T0` (multi-threaded), which writes tmp_path
    with open(tmp_path, "wb") as out:
        try:
            with zstd_tar_writer(out, level, zstd_bin) as tf:
                for arcname, path, limit, trim in members:
                    info = tarfile.TarInfo(arcname)
                    info.mtime = int(time.time())
                    info.mode = 0o600
                    if path is None or trim:
                        data = limit if path is None else _member_bytes(path, limit, trim)
                        info.size = len(data)
                        tf.addfile(info, io.BytesIO(data))
                        done(path, limit)
                        continue
                    info.size = limit
                    with open(path, "rb") as src:
                        tf.addfile(info, src if counted is None else _CountingReader(src, counted))
                    if progress is not None:
                        progress.member_done()
        except ZstdError as exc:
            raise BackupError(str(exc), step="archive")


def read_archive(path, dest, zstd_bin="zstd"):
    """Extract the archive ``path`` into ``dest``; return its metadata dict (may be empty)."""
    base = os.path.basename(path)
    if base.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    raise BackupError("archive %s holds an unsafe member name %r" % (path, name))
            zf.extractall(dest)
    elif base.endswith(".tar.zst"):
        proc = subprocess.Popen([zstd_bin, "-q", "-d", "-c", path], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for member in tf:
                if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                    raise BackupError("archive %s holds an unsafe member %r" % (path, member.name))
                tf.extract(member, dest)
        if proc.wait() != 0:
            raise BackupError("zstd could not decompress %s" % path)
    else:
        raise BackupError("%s is neither .zip nor .tar.zst" % path)
    meta_path = os.path.join(dest, METADATA_NAME)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            return json.load(f)
    return {}


def append_run_record(backup_dir, record):
    """Append one JSON line to ``backup_dir/backup-runs.jsonl`` (compliance reporting)."""
    path = os.path.join(backup_dir, RUNS_LOG)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def compliance(records, since=None):
    """Backup compliance: successful runs / attempted runs, in percent."""
    rows = [r for r in records if since is None or r.get("start", "") >= since]
    ok = sum(1 for r in rows if r.get("outcome") == "ok")
    return dict(runs=len(rows), ok=ok, failed=len(rows) - ok,
                percent=round(100.0 * ok / len(rows), 2) if rows else None)


# --------------------------------------------------------------------------- the backup

def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class AofBackup:
    """One backup run against a connected redis-py ``client``.

    ``opts`` keys: backup_dir, port, relax_fsync, timeout, poll_interval, format,
    compression_level, lock_wait, keep_days, keep_last, sample_size, zstd_bin, check_mode.
    """

    def __init__(self, client, opts, progress=None):
        self.client = client
        self.o = dict(DEFAULTS, **opts)
        self.steps = {}
        self.messages = []
        self.changed = False
        # ``update``/``finish`` of a ``_progress.ProgressFile``, or nothing.
        self.progress = progress or _NoProgress()
        self.archived = (0, 0)  # bytes and files read into the archive

    # -- timing
    def _timed(self, name, func, *args):
        t0 = time.monotonic()
        try:
            return func(*args)
        except BackupError as e:
            e.step = e.step or name
            raise
        except (OSError, ValueError) as e:
            raise BackupError("step %s failed: %s" % (name, e), step=name)
        finally:
            self.steps[name] = round(time.monotonic() - t0, 3)

    # -- config handling
    def _set(self, name, value, saved):
        old = config_get(self.client, name)
        if old != value:
            saved[name] = old
            self.client.config_set(name, value)
        return old

    def _restore(self, saved):
        problems = []
        for name in reversed(list(saved)):
            try:
                self.client.config_set(name, saved[name])
                del saved[name]
            except Exception as e:  # keep going: put back every setting we can
                problems.append("could not put %s back to %r: %s" % (name, saved[name], e))
        return problems

    # -- step 2 and 3
    def _rewrite(self):
        import redis as redis_lib  # present: the caller has a client

        try:
            self.client.bgrewriteaof()
        except redis_lib.exceptions.ResponseError as e:
            if "already in progress" not in str(e):
                raise BackupError("BGREWRITEAOF failed: %s" % e, step="rewrite")
            return "joined a rewrite already in progress"
        state = rewrite_state(self.client.info("persistence"))
        return {"scheduled": "rewrite scheduled (a child process was busy)"}.get(state, "rewrite started")

    def _wait(self):
        deadline = time.monotonic() + float(self.o["timeout"])
        while True:
            info = self.client.info("persistence")
            state = rewrite_state(info)
            if state == "done":
                return
            # Redis 7 says how far its child is, in percent of the keys it has written.
            percent = _to_str(info.get("current_fork_perc", "")).strip()
            self.progress.update(note="waiting for BGREWRITEAOF (%s%s)" % (
                state, ", %s%% of the keys written" % percent.split(".")[0] if percent and state == "running" else ""))
            if state == "failed":
                raise BackupError("the AOF rewrite failed (aof_last_bgrewrite_status is not ok); "
                                  "see the Redis log", step="wait")
            if time.monotonic() >= deadline:
                raise BackupError("the AOF rewrite was still %s after %ss (timeout)"
                                  % (state, self.o["timeout"]), step="wait")
            time.sleep(float(self.o["poll_interval"]))

    # -- step 4
    def _layout(self, cfg):
        aof_dir = os.path.join(cfg["dir"], cfg.get("appenddirname") or "")
        manifest = "%s.manifest" % cfg["appendfilename"]
        if cfg.get("appenddirname") and os.path.exists(os.path.join(aof_dir, manifest)):
            return "multi-part", aof_dir, manifest
        if os.path.exists(os.path.join(cfg["dir"], cfg["appendfilename"])):
            return "single-file", cfg["dir"], None
        raise BackupError("no AOF found: neither %s nor %s exists; does this module run on the Redis "
                          "host?" % (os.path.join(aof_dir, manifest),
                                     os.path.join(cfg["dir"], cfg["appendfilename"])), step="link")

    def _stage(self, cfg, staging):
        """Stage one consistent generation; returns (members, method, layout, files)."""
        layout, src_dir, manifest = self._layout(cfg)
        last_error = None
        for _attempt in range(5):
            for name in os.listdir(staging):
                os.unlink(os.path.join(staging, name))
            if layout == "single-file":
                method, sizes = stage_files(src_dir, [cfg["appendfilename"]], staging)
                name = cfg["appendfilename"]
                return ([(name, os.path.join(staging, name), sizes[name], True)],
                        method, layout, [name])
            with open(os.path.join(src_dir, manifest), "rb") as f:
                manifest_bytes = f.read()
            files = [e["name"] for e in manifest_data_files(parse_manifest(manifest_bytes))]
            try:
                method, sizes = stage_files(src_dir, files, staging)
            except FileNotFoundError as e:
                last_error = e
                continue
            with open(os.path.join(src_dir, manifest), "rb") as f:
                if f.read() != manifest_bytes:
                    last_error = "the manifest changed while linking"
                    continue
            dirname = cfg["appenddirname"]
            members = [(dirname + "/" + manifest, None, manifest_bytes, False)]
            for entry in parse_manifest(manifest_bytes):
                if entry["name"] in sizes:
                    members.append((dirname + "/" + entry["name"], os.path.join(staging, entry["name"]),
                                    sizes[entry["name"]], entry["type"] == "i"))
            return members, method, layout, files
        raise BackupError("the AOF changed under the backup five times (%s); is something running "
                          "BGREWRITEAOF?" % last_error, step="link")

    def _snapshot_stats(self):
        return keyspace_counts(self.client.info("keyspace"))

    # -- retention
    def _retention(self, now, new_archive):
        names = os.listdir(self.o["backup_dir"])
        expired = retention_plan(names, new_archive, self.o["port"], now, self.o.get("keep_days"),
                                 self.o.get("keep_last"))
        if not self.o.get("check_mode"):
            for name in expired:
                os.unlink(os.path.join(self.o["backup_dir"], name))
        return expired

    # -- the run
    def plan(self, cfg, archive, expired):
        """What a run does, for check mode: ``archive`` the name it writes, ``expired`` what retention deletes."""
        fsync = cfg["appendfsync"]
        plan = []
        if self.o["relax_fsync"] and fsync != "no":
            plan.append("CONFIG SET appendfsync no (was %s)" % fsync)
        if cfg["auto-aof-rewrite-percentage"] != "0":
            plan.append("CONFIG SET auto-aof-rewrite-percentage 0 while linking (was %s)"
                        % cfg["auto-aof-rewrite-percentage"])
        plan.append("BGREWRITEAOF and wait up to %ss" % self.o["timeout"])
        plan.append("archive the AOF into %s" % os.path.join(self.o["backup_dir"], archive))
        if self.o["relax_fsync"] and fsync != "no":
            plan.append("CONFIG SET appendfsync %s" % fsync)
        plan.extend("delete by retention: %s" % name for name in expired)
        return plan

    def read_config(self):
        cfg = {}
        for name in ("appendonly", "appendfsync", "auto-aof-rewrite-percentage", "dir",
                     "appendfilename"):
            cfg[name] = config_get(self.client, name)
        try:
            cfg["appenddirname"] = config_get(self.client, "appenddirname")
        except BackupError:
            cfg["appenddirname"] = None  # Redis before 7: one file
        if cfg["appendonly"] != "yes":
            raise BackupError("Redis at port %s runs with appendonly %s: there is no AOF to back up. "
                              "Enable it (CONFIG SET appendonly yes and appendonly yes in redis.conf) "
                              "or back up the RDB file instead" % (self.o["port"], cfg["appendonly"]),
                              step="config")
        return cfg

    def run(self):
        """Run the backup; returns the result dict. Raises BackupError (with ``partial``).

        The progress ends with a last line either way: ``done`` with the archive's bytes, or
        ``failed at STEP`` with the reason.
        """
        self.progress.update(note="starting", force=True)
        try:
            result = self._run()
        except BackupError as e:
            self.progress.finish(outcome="failed at %s" % (e.step or "unknown"),
                                 note=(str(e).splitlines() or [""])[0][:300])
            raise
        except BaseException:
            self.progress.finish(outcome="failed")
            raise
        if "archive" in result:
            size, files = self.archived
            note = "%s, %d bytes" % (os.path.basename(result["archive"]), result["size"])
            self.progress.finish(outcome="done", bytes_done=size, bytes_total=size, files_done=files,
                                 files_total=files, note=note)
        else:
            self.progress.finish(outcome="planned (check mode)")
        return result

    def _run(self):
        o = self.o
        start = _utcnow()
        t_start = time.monotonic()
        result = dict(start=_iso(start), steps=self.steps, port=int(o["port"]))
        if o["format"] == "tar.zst" and not o.get("zstd_bin"):
            raise BackupError("format tar.zst needs the zstd program, which is not installed; "
                              "install zstd or use format zip", step="config")
        if not os.path.isdir(o["backup_dir"]):
            raise BackupError("backup_dir %s does not exist or is not a directory" % o["backup_dir"],
                              step="config")
        lock = BackupLock(o["backup_dir"], o["port"])
        if not o.get("check_mode"):  # check mode creates nothing, not even the lock file
            self._timed("lock", lock.acquire, o["lock_wait"])
        saved = {}
        staging = None
        tmp_path = None
        try:
            cfg = self.read_config()
            server = self.client.info("server")
            result.update(redis_version=_to_str(server.get("redis_version")),
                          appendfsync=cfg["appendfsync"])
            if o.get("check_mode"):
                archive = archive_name(start, o["port"], o["format"])
                result["archives_deleted"] = self._retention(start, archive)
                result["plan"] = self.plan(cfg, archive, result["archives_deleted"])
                result["changed"] = True
                return result
            if not os.access(o["backup_dir"], os.W_OK):
                raise BackupError("backup_dir %s is not writable" % o["backup_dir"], step="config")
            # step 1: relax fsync; hold off automatic rewrites
            if o["relax_fsync"]:
                self._timed("relax_fsync", self._set, "appendfsync", "no", saved)
            self._set("auto-aof-rewrite-percentage", "0", saved)
            self.changed = True
            # step 2 and 3
            self.progress.update(note="waiting for BGREWRITEAOF", force=True)
            result["rewrite"] = self._timed("rewrite", self._rewrite)
            self._timed("wait", self._wait)
            self.progress.update(note="the rewrite is done; linking the AOF files", force=True)
            # step 4: stage one generation, then let automatic rewrites run again
            staging = tempfile.mkdtemp(prefix=".staging-%d-" % int(o["port"]), dir=o["backup_dir"])
            keys_before = self._snapshot_stats()
            sample = sample_keys(self.client, int(o["sample_size"]))
            digests_before = key_digests(self.client, sample)
            members, method, layout, files = self._timed("link", self._stage, cfg, staging)
            keys_after = self._snapshot_stats()
            digests_after = key_digests(self.client, sample)
            if "auto-aof-rewrite-percentage" in saved:  # the files are linked: rewrites may run again
                self.client.config_set("auto-aof-rewrite-percentage", saved["auto-aof-rewrite-percentage"])
                del saved["auto-aof-rewrite-percentage"]
            result.update(aof_layout=layout, staging=method, files=files)
            meta = dict(created=_iso(_utcnow()), port=int(o["port"]), redis_version=result["redis_version"],
                        aof_layout=layout, appenddirname=cfg.get("appenddirname"),
                        appendfilename=cfg["appendfilename"], files=files,
                        keys_before=keys_before, keys_after=keys_after,
                        sample={k: [digests_before[k], digests_after[k]] for k in sample})
            members.append((METADATA_NAME, None, json.dumps(meta, sort_keys=True, indent=1).encode(), False))
            now = _utcnow()
            final = os.path.join(o["backup_dir"], archive_name(now, o["port"], o["format"]))
            while os.path.exists(final):  # two runs in one second: take the next second
                time.sleep(0.2)
                now = _utcnow()
                final = os.path.join(o["backup_dir"], archive_name(now, o["port"], o["format"]))
            fd, tmp_path = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(final) + "-",
                                            dir=o["backup_dir"])
            os.close(fd)
            archiving = ArchiveProgress(self.progress, members, "archiving into %s" % os.path.basename(final))
            archiving.counted(0)
            self._timed("archive", write_archive, o["format"], tmp_path, members,
                        o["compression_level"], o.get("zstd_bin"), archiving)
            self.progress.update(bytes_done=archiving.done, bytes_total=archiving.total,
                                 files_done=archiving.files_done, files_total=archiving.files_total,
                                 note="syncing and checksumming the archive", force=True)
            self.archived = (archiving.done, archiving.files_done)
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp_path, 0o600)
            os.rename(tmp_path, final)
            tmp_path = None
            _fsync_dir(o["backup_dir"])
            result.update(archive=final, size=os.path.getsize(final),
                          sha256=self._timed("sha256", sha256_file, final),
                          keys=keys_after)
        except BackupError as e:
            e.partial = result
            raise
        except Exception as e:
            err = BackupError("%s: %s" % (type(e).__name__, e), step="unexpected")
            err.partial = result
            raise err
        finally:
            # step 5: put settings back, whatever happened
            problems = self._restore(saved)
            if staging:
                shutil.rmtree(staging, ignore_errors=True)
            if tmp_path and os.path.exists(tmp_path):
                os.unlink(tmp_path)
            lock.release()
            if problems:
                err = BackupError("; ".join(problems) + " -- fix this by hand now", step="restore_settings")
                err.partial = result
                raise err
        result["archives_deleted"] = self._timed("retention", self._retention, start,
                                                 os.path.basename(result["archive"]))
        end = _utcnow()
        result.update(end=_iso(end), elapsed=round(time.monotonic() - t_start, 3), changed=True)
        return result


# --------------------------------------------------------------------------- restore drill

def _free_port(host="127.0.0.1"):
    import socket
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def restore_drill(archive, redis_server="redis-server", check_aof="redis-check-aof", port=None,
                  workdir=None, timeout=300, zstd_bin="zstd"):
    """Restore ``archive`` into a scratch redis-server on 127.0.0.1 and compare with its record.

    The scratch server gets a spare loopback port, its own directory, no RDB saves, and is
    stopped (by its PID) and removed at the end. Returns a result dict with ``passed``.
    """
    import redis as redis_lib

    scratch = tempfile.mkdtemp(prefix="aof-drill-", dir=workdir)
    proc = None
    result = dict(archive=archive, passed=False, problems=[])
    t0 = time.monotonic()
    try:
        meta = read_archive(archive, scratch, zstd_bin=zstd_bin)
        result["sha256"] = sha256_file(archive)
        if not meta:
            raise BackupError("archive %s has no %s: not made by redis_aof_backup" % (archive, METADATA_NAME))
        dirname = meta.get("appenddirname")
        if meta.get("aof_layout") == "multi-part" and check_aof and shutil.which(check_aof):
            manifest = os.path.join(scratch, dirname, meta["appendfilename"] + ".manifest")
            chk = subprocess.run([check_aof, manifest], capture_output=True, text=True, check=False)
            result["check_aof"] = "ok" if chk.returncode == 0 else chk.stdout[-500:]
            if chk.returncode != 0:
                result["problems"].append("redis-check-aof rejects the archive")
        port = int(port or _free_port())
        cmd = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", scratch,
               "--appendonly", "yes", "--appendfilename", meta["appendfilename"], "--save", "",
               "--daemonize", "no", "--logfile", os.path.join(scratch, "redis.log")]
        if dirname:
            cmd += ["--appenddirname", dirname]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result.update(scratch_port=port, scratch_pid=proc.pid)
        client = redis_lib.Redis(host="127.0.0.1", port=port, socket_timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                with open(os.path.join(scratch, "redis.log")) as f:
                    tail = f.read()[-800:]
                raise BackupError("scratch redis-server exited (rc %s) while loading: %s" % (proc.returncode, tail))
            try:
                if _to_str(client.info("persistence").get("loading", 1)) == "0":
                    break
            except redis_lib.exceptions.RedisError:
                pass
            if time.monotonic() > deadline:
                raise BackupError("scratch redis-server did not finish loading in %ss" % timeout)
            time.sleep(0.1)
        counts = keyspace_counts(client.info("keyspace"))
        digests = key_digests(client, sorted(meta.get("sample") or {}))
        ok, problems, checked = compare_drill(meta, counts, digests)
        result["problems"].extend(problems)
        result.update(keys=counts, keys_expected=dict(before=meta.get("keys_before"), after=meta.get("keys_after")),
                      sampled_checked=checked, backup_created=meta.get("created"))
        result["passed"] = ok and not result["problems"]
    except BackupError as e:
        result["problems"].append(str(e))
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        result["elapsed"] = round(time.monotonic() - t0, 3)
    return result
