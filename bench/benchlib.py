# SPDX-License-Identifier: GPL-3.0-or-later
"""What every benchmark case shares: the collection import, trees, an rsync daemon, timing.

A case is a module in ``bench/cases/`` with:

- ``NAME`` (the file name), ``TITLE`` (one line a person reads), ``WHERE`` (``loopback`` or ``lab``);
- ``run(ctx) -> dict`` with
  - ``rows``: one dict per thing measured, side by side: ``label`` (``"rsync -a"``,
    ``"initial_sync (4 workers)"``), ``seconds`` (median), ``runs`` (every round's seconds),
    ``ratio`` (to the row named ``baseline`` in the result, or None), and any extra numbers
    (``files_per_second``, ``peak_mib``, ``p50_ms``...). Units in the key's name.
  - ``baseline``: the label of the row the ratios are against.
  - ``goals``: ``[{"goal": "initial_sync >= 1.4x faster than one rsync", "measured": "1.12x",
    "met": False}]``, judged from the rows of this run, never tuned to pass.
  - ``chart``: optional ``{"kind": "bars" | "lines", "title": ..., "y": "seconds", "series": {label: [[x, y], ...]} }``
    (``bars`` uses the rows' seconds when ``series`` is left out).
  - ``notes``: lines for docs/performance.md: what limits the case, what it leaves out.

``ctx`` is a ``Context``: ``ctx.quick`` (smoke sizes), ``ctx.rounds``, ``ctx.scratch(name)`` (a new
directory removed after the case), ``ctx.log(text)`` (one progress line to stderr),
``ctx.collection()`` (imports the collection from ``.tmp/collections``), ``ctx.tools`` (paths of
rsync, lsyncd, redis-server, zstd, cp). Cases time with ``timed()`` and summarise with ``median()``.

Network: loopback only (127.0.0.1) or the lab's own network. Every process a case starts is
stopped by its PID (``Daemon.stop``, ``stop_process``).
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".tmp", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "nodowntime", "storage")


def import_collection():
    """Put ``.tmp/collections`` (and the repository, for the unit tests' runner) on sys.path."""
    if not os.path.isdir(os.path.join(LINK, "plugins")):
        sys.exit("%s is missing: run `make venv collections` first" % LINK)
    for path in (COLLECTIONS, ROOT):
        if path not in sys.path:
            sys.path.insert(0, path)


def run_module(main, args):
    """A module's ``main()`` in this process, as the unit tests run it (no Ansible transport)."""
    import_collection()
    from tests.unit.plugins.modules.utils import run_module as runner  # pylint: disable=import-outside-toplevel
    return runner(main, dict(args, _ansible_no_log=True))


def median(values):
    return statistics.median(values) if values else None


def percentile(values, fraction):
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


def timed(func):
    """``(wall seconds, value)`` of ``func()``."""
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def ratio(value, base):
    return round(value / base, 3) if value is not None and base else None


def run_checked(argv, **kwargs):
    """``subprocess.run`` that raises with the command's own error output when it fails."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                          env=dict(os.environ, LC_ALL="C"), **kwargs)
    if proc.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), proc.returncode,
                                                 proc.stderr.decode("utf-8", "replace")[-2000:]))
    return proc


# --------------------------------------------------------------------------- trees

def make_small_files(src, files, size=4096, dirs=16, seed=1):
    """``files`` random files of ``size`` bytes over ``dirs`` top-level directories (500 per
    subdirectory), plus three top-level files. No two files alike, so rsync shortcuts nothing."""
    rng = random.Random(seed)
    pool = rng.randbytes((1 << 20) + size)
    os.makedirs(src, exist_ok=True)
    for index in range(3):
        with open(os.path.join(src, "top-%d.txt" % index), "wb") as f:
            f.write(b"top-level file %d\n" % index)
    for d in range(dirs):
        count = files // dirs + (1 if d < files % dirs else 0)
        top = os.path.join(src, "dir%02d" % d)
        for i in range(count):
            sub = os.path.join(top, "sub%03d" % (i // 500))
            if i % 500 == 0:
                os.makedirs(sub, exist_ok=True)
            offset = rng.randrange(1 << 20)
            with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
                f.write(pool[offset:offset + size])


def make_large_files(src, count, size, seed=1):
    """``count`` files of ``size`` bytes of random data (written in 8 MiB blocks)."""
    rng = random.Random(seed)
    block = rng.randbytes(8 << 20)
    os.makedirs(src, exist_ok=True)
    for index in range(count):
        with open(os.path.join(src, "large-%d.bin" % index), "wb") as f:
            left = size
            salt = 0
            while left > 0:
                chunk = block[:min(left, len(block))]
                # a different first byte per block keeps blocks unlike each other
                f.write(bytes([salt & 0xFF]) + chunk[1:])
                salt += 1 + index
                left -= len(chunk)


def count_files(path):
    return sum(len(names) for _dirpath, _dirnames, names in os.walk(path))


def drop_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def filesystem(path):
    """``(fstype, device, ext4 without a journal)`` of the file system holding ``path``."""
    dev = os.stat(path).st_dev
    want = "%d:%d" % (os.major(dev), os.minor(dev))
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return "unknown", "", False
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[2] != want or " - " not in line:
            continue
        fstype, source = line.split(" - ", 1)[1].split()[:2]
        no_journal = fstype == "ext4" and not os.path.isdir("/proc/fs/jbd2/%s-8" % os.path.basename(source))
        return fstype, source, no_journal
    return "unknown", "", False


# --------------------------------------------------------------------------- processes

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout=15):
    """Stop a process this benchmark started, by its PID: TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Daemon:
    """An rsync daemon on 127.0.0.1 serving one writable module ``bench`` at ``dest``."""

    def __init__(self, rsync, workdir, dest, secrets=None):
        self.rsync = rsync
        self.workdir = workdir
        self.dest = dest
        self.conf = os.path.join(workdir, "rsyncd.conf")
        self.proc = None
        self.port = None
        os.makedirs(dest, exist_ok=True)
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("use chroot = no\nreverse lookup = no\nmax connections = 0\nuid = %d\ngid = %d\n"
                    "log file = %s\nlock file = %s\n[bench]\n    path = %s\n    read only = no\n"
                    % (os.getuid(), os.getgid(), os.path.join(workdir, "rsyncd.log"),
                       os.path.join(workdir, "rsyncd.lock"), dest))

    def start(self):
        for _attempt in range(5):
            port = free_port()
            with open(os.path.join(self.workdir, "rsyncd.out"), "ab") as out:
                proc = subprocess.Popen(
                    [self.rsync, "--daemon", "--no-detach", "--config=%s" % self.conf, "--port=%d" % port,
                     "--address=127.0.0.1"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        self.proc, self.port = proc, port
                        return self
                except OSError:
                    time.sleep(0.05)
            stop_process(proc)
        raise RuntimeError("the rsync daemon did not start; see %s" % os.path.join(self.workdir, "rsyncd.out"))

    def url(self, subdir=""):
        return "rsync://127.0.0.1:%d/bench/%s" % (self.port, subdir.strip("/") + "/" if subdir else "")

    def stop(self):
        stop_process(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- the context

class Context:
    def __init__(self, quick, rounds, tmp_root, log=None):
        self.quick = quick
        self.rounds = rounds
        self.tmp_root = tmp_root
        self._log = log or (lambda text: sys.stderr.write(text + "\n"))
        self.tools = dict((name, shutil.which(name)) for name in
                          ("rsync", "lsyncd", "redis-server", "redis-cli", "zstd", "cp"))
        self._scratch = []

    def log(self, text):
        self._log(text)

    def collection(self):
        import_collection()

    def scratch(self, name):
        path = os.path.join(self.tmp_root, name)
        drop_tree(path)
        os.makedirs(path)
        self._scratch.append(path)
        return path

    def clean(self):
        for path in self._scratch:
            drop_tree(path)
        self._scratch = []
