# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: one ``rsync -a`` vs the rsync_copy module's parallel workers, side by side.

Generates a tree of many small files in a temporary directory, starts an rsync daemon on
127.0.0.1 (a spare port, a module pointing at a temporary destination directory), then copies
the tree to it with:

- ``rsync -a SRC/ rsync://127.0.0.1:PORT/bench/`` (the baseline),
- one rsync with the options the module passes (``--archive --partial-dir --timeout
  --contimeout --itemize-changes --stats --info=progress2 --no-human-readable``), built by the
  module's ``_rsync`` helpers, without the module: it separates the options' cost, and
- the ``nodowntime.storage.rsync_copy`` module with ``workers`` 1, 2 and 4, run in this process
  through its own ``main()`` (so the product's lock, worker planning, rsync options, process
  runner and output parsing are what is measured; only Ansible's transport is left out).

Each case copies into a new, empty destination directory (first copy), then runs again unchanged
(no-change pass); the destination is removed after each case, or only at the end on ext4 without
a journal (see ``fs_note``).
Prints seconds, the ratio to the baseline and the CPU seconds used by all rsync processes
(client and daemon side) and this process.

Run from the repository root after ``make venv collections``::

    .venv/bin/python bench/rsync_workers.py                  # 50,000 x 4 KiB in 16 dirs
    .venv/bin/python bench/rsync_workers.py --files 200000 --rounds 3

Network: only 127.0.0.1. Everything it creates lives in one temporary directory, removed at
the end (``--keep`` keeps it); the daemon it starts is stopped by its PID.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".tmp", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "nodowntime", "storage")


def _import_module():
    if not os.path.isdir(os.path.join(LINK, "plugins")):
        sys.exit("%s is missing: run `make venv collections` first" % LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.modules import rsync_copy
    return rsync_copy


def _module_runner():
    """The unit tests' in-process runner (tests/unit/plugins/modules/utils.py)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    # pylint: disable-next=import-outside-toplevel
    from tests.unit.plugins.modules.utils import run_module
    return run_module


# --------------------------------------------------------------------------- the tree

def make_tree(src, files, dirs, size, seed):
    """``files`` files of ``size`` bytes spread evenly over ``dirs`` top-level directories.

    Each top-level directory holds subdirectories of at most 500 files; three small files sit
    at the top level (the module's first pass copies those). Contents are random (no two files
    alike), so rsync cannot shortcut anything.
    """
    rng = random.Random(seed)
    pool = rng.randbytes((1 << 20) + size)
    os.makedirs(src)
    for index in range(3):
        with open(os.path.join(src, "top-%d.txt" % index), "wb") as f:
            f.write(b"top-level file %d\n" % index)
    for d in range(dirs):
        count = files // dirs + (1 if d < files % dirs else 0)
        top = os.path.join(src, "dir%02d" % d)
        for i in range(count):
            sub = os.path.join(top, "sub%03d" % (i // 500))
            if i % 500 == 0:
                os.makedirs(sub)
            offset = rng.randrange(1 << 20)
            with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
                f.write(pool[offset:offset + size])


def count_files(path):
    total = 0
    for _dirpath, _dirnames, filenames in os.walk(path):
        total += len(filenames)
    return total


def fs_note(path):
    """A warning when ``path`` is on ext4 without a journal, else an empty string.

    Without a journal ext4 skips inodes freed in the last 60 to 300 seconds when it allocates
    new ones (``recently_deleted()`` in fs/ext4/ialloc.c); creating many files shortly after
    deleting many then costs far more kernel time. This script deletes nothing until the end.
    """
    dev = os.stat(path).st_dev
    want = "%d:%d" % (os.major(dev), os.minor(dev))
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[2] != want or " - " not in line:
            continue
        fstype, source = line.split(" - ", 1)[1].split()[:2]
        if fstype == "ext4" and not os.path.isdir("/proc/fs/jbd2/%s-8" % os.path.basename(source)):
            return ("note: %s is ext4 without a journal: file creation is slow for up to 5 minutes after many "
                    "files were deleted on it (for example by a previous run of this benchmark)" % source)
    return ""


# --------------------------------------------------------------------------- the daemon

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """An rsync daemon on 127.0.0.1 serving one writable module ``bench`` at ``dest``."""

    def __init__(self, rsync, workdir, dest):
        self.rsync = rsync
        self.workdir = workdir
        self.dest = dest
        self.conf = os.path.join(workdir, "rsyncd.conf")
        self.proc = None
        self.port = None
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("use chroot = no\n"
                    "reverse lookup = no\n"
                    "max connections = 0\n"
                    "uid = %d\n"
                    "gid = %d\n"
                    "log file = %s\n"
                    "lock file = %s\n"
                    "[bench]\n"
                    "    path = %s\n"
                    "    read only = no\n"
                    % (os.getuid(), os.getgid(), os.path.join(workdir, "rsyncd.log"),
                       os.path.join(workdir, "rsyncd.lock"), dest))

    def start(self):
        for _attempt in range(5):
            port = free_port()
            with open(os.path.join(self.workdir, "rsyncd.out"), "ab") as out:
                proc = subprocess.Popen(
                    [self.rsync, "--daemon", "--no-detach", "--config=%s" % self.conf,
                     "--port=%d" % port, "--address=127.0.0.1"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        self.proc, self.port = proc, port
                        return
                except OSError:
                    time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        raise RuntimeError("the rsync daemon did not start; see %s" % os.path.join(self.workdir, "rsyncd.out"))

    @property
    def url(self):
        return "rsync://127.0.0.1:%d/bench/" % self.port

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid), encoding="ascii") as f:
                return f.read().split()
        except OSError:
            return []

    def children_cpu(self):
        """CPU seconds of the daemon's finished (reaped) connection processes so far."""
        deadline = time.monotonic() + 30
        while self.children() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            with open("/proc/%d/stat" % self.proc.pid, encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- measuring

def cpu_now(daemon):
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + daemon.children_cpu()


def measure(func, daemon):
    """``(wall seconds, CPU seconds, value)`` of ``func()``."""
    cpu0 = cpu_now(daemon)
    t0 = time.perf_counter()
    value = func()
    wall = time.perf_counter() - t0
    return wall, cpu_now(daemon) - cpu0, value


def baseline(rsync, src, url):
    """The baseline: one plain ``rsync -a SRC/ URL``."""
    def run():
        proc = subprocess.run([rsync, "-a", src.rstrip("/") + "/", url], stdin=subprocess.DEVNULL,
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("rsync -a exited %d: %s" % (proc.returncode, proc.stderr.decode(errors="replace")))
        return None
    return run


def options_case(rsync, src, url):
    """One rsync with the options rsync_copy gives it by default, without the module around it.

    Built with the module's own ``_rsync.base_options`` and ``_rsync.commands``; the output is
    read by ``subprocess.run``. Tells the cost of the options from the cost of the module.
    """
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync

    options = _rsync.base_options(archive=True, delete=False, partial_dir=".rsync-partial", io_timeout=600, contimeout=30)
    argv = _rsync.commands(rsync, options, src, url, [])[0][1]

    def run():
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                              env=dict(os.environ, LC_ALL="C"))
        if proc.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (" ".join(argv), proc.returncode, proc.stderr.decode(errors="replace")))
        return None
    return run


def module_case(main, rsync, src, url, workers, lock_file):
    """rsync_copy with its defaults and ``workers``, copying ``src`` to ``url``."""
    # _ansible_no_log: no invocation line in the system log for every round
    args = dict(src=src, dest=url, workers=workers, lock_file=lock_file, rsync_path=rsync, _ansible_no_log=True)
    run_module = _module_runner()

    def run():
        return run_module(main, args)
    return run


def fmt_ratio(value, base):
    return "%.2f" % (value / base) if base else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50000, help="number of files (default 50000)")
    parser.add_argument("--dirs", type=int, default=16, help="top-level directories (default 16)")
    parser.add_argument("--size", type=int, default=4096, help="bytes per file (default 4096)")
    parser.add_argument("--workers", default="1,2,4", help="rsync_copy worker counts to try (default 1,2,4)")
    parser.add_argument("--no-options-case", action="store_true",
                        help="leave out the plain rsync with rsync_copy's options (no worker split, no module)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every case this many times, interleaved; medians are shown (default 1)")
    parser.add_argument("--tmpdir", default=None, help="where to create the temporary directory (default: system temp)")
    parser.add_argument("--rsync", default=shutil.which("rsync") or "rsync", help="rsync binary")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="also write the raw measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = parser.parse_args()
    workers = [int(w) for w in opts.workers.split(",") if w.strip()]
    if opts.files < 1 or opts.dirs < 1 or opts.size < 0 or opts.rounds < 1 or not workers or min(workers) < 1:
        parser.error("--files, --dirs, --rounds and every --workers value must be 1 or more")

    rsync_copy = _import_module()
    version = subprocess.run([opts.rsync, "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    work = tempfile.mkdtemp(prefix="bench-rsync-workers-", dir=opts.tmpdir)
    src = os.path.join(work, "src")
    dest = os.path.join(work, "dest")
    os.makedirs(dest)
    daemon = Daemon(opts.rsync, work, dest)
    raw = []
    try:
        t0 = time.perf_counter()
        make_tree(src, opts.files, opts.dirs, opts.size, opts.seed)
        expected = count_files(src)
        print("tree: %d files x %d B in %d top-level dirs (+3 top-level files), %.1f MiB, made in %.1f s under %s"
              % (opts.files, opts.size, opts.dirs, opts.files * opts.size / 1048576.0, time.perf_counter() - t0, work))
        daemon.start()
        print("daemon: %s (pid %d), %s; %d CPUs, Python %s"
              % (daemon.url, daemon.proc.pid, version, os.cpu_count() or 0, platform.python_version()))
        note = fs_note(work)
        if note:
            print(note)
        lock_file = os.path.join(work, "copy.lock")
        cases = [("rsync -a (baseline)", lambda url: baseline(opts.rsync, src, url), None)]
        if not opts.no_options_case:
            cases.append(("rsync, module's options", lambda url: options_case(opts.rsync, src, url), None))
        for n in workers:
            cases.append(("rsync_copy workers=%d" % n,
                          lambda url, n=n: module_case(rsync_copy.main, opts.rsync, src, url, n, lock_file), n))
        number = 0
        for rnd in range(opts.rounds):
            order = cases if rnd % 2 == 0 else list(reversed(cases))
            for name, factory, n in order:
                # Every run gets a new, empty destination directory, removed after the run; on a
                # file system where deleting slows down the next run (see fs_note) all of them
                # are removed at the end instead.
                number += 1
                target = os.path.join(dest, "run%02d" % number)
                os.makedirs(target)
                func = factory(daemon.url + "run%02d/" % number)
                os.sync()  # write back the previous run's files now, not during this one
                first_wall, first_cpu, result = measure(func, daemon)
                got = count_files(target)
                if got != expected:
                    raise RuntimeError("%s: %d files arrived, expected %d" % (name, got, expected))
                os.sync()
                again_wall, again_cpu, again = measure(func, daemon)
                row = dict(case=name, workers=n, round=rnd + 1, first_s=first_wall, first_cpu_s=first_cpu,
                           again_s=again_wall, again_cpu_s=again_cpu)
                if result is not None:
                    row.update(processes=[(w["name"], len(w["dirs"]), round(w["elapsed"], 2)) for w in result["workers"]],
                               first_changed=result["changed"], first_changes=result["changes_count"],
                               again_changed=again["changed"], again_changes=again["changes_count"])
                    if again["changed"]:
                        print("  note: %s reported changed=true on the no-change pass (%d changes, first: %s)"
                              % (name, again["changes_count"], again["changes"][:3]))
                raw.append(row)
                if not note:
                    shutil.rmtree(target)
                print("  round %d %-24s first copy %6.2f s (CPU %6.2f s)   no-change %6.2f s (CPU %5.2f s)"
                      % (rnd + 1, name, first_wall, first_cpu, again_wall, again_cpu))
    finally:
        daemon.stop()
        if opts.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    def med(name, key):
        return statistics.median(r[key] for r in raw if r["case"] == name)

    base_first = med(cases[0][0], "first_s")
    base_again = med(cases[0][0], "again_s")
    print()
    print("%d files x %d B, %d top-level dirs, %d round(s)%s; ratio = seconds / baseline seconds (below 1 is faster)"
          % (opts.files, opts.size, opts.dirs, opts.rounds, ", medians" if opts.rounds > 1 else ""))
    header = "| case | first copy s | ratio | CPU s | no-change s | ratio | CPU s |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _func, _n in cases:
        first, again = med(name, "first_s"), med(name, "again_s")
        print("| %s | %.2f | %s | %.1f | %.2f | %s | %.2f |"
              % (name, first, fmt_ratio(first, base_first), med(name, "first_cpu_s"),
                 again, fmt_ratio(again, base_again), med(name, "again_cpu_s")))
    if opts.json_path:
        with open(opts.json_path, "w", encoding="utf-8") as f:
            json.dump(dict(files=opts.files, size=opts.size, dirs=opts.dirs, rounds=opts.rounds, rsync=version,
                           cpus=os.cpu_count(), rows=raw), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
