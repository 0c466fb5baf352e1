# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the archive formats of redis_aof_backup, side by side on a real Redis AOF.

Starts a redis-server on 127.0.0.1 (a spare port, a temporary directory, ``--appendonly yes``,
no RDB saves), loads N keys through a redis-py pipeline, runs BGREWRITEAOF and waits for it,
then stages the AOF exactly as the module does (``AofBackup._stage``: hard links to the files
the manifest names) and stops Redis by its PID. The staged files are then archived with the
module's own ``write_archive()`` in every variant:

- ``zip`` deflate level 1 (the module's default), ``zip`` deflate level 6 (Python's default),
- ``tar.zst`` level 3 through ``zstd -T0`` (the module's default for tar.zst), when zstd is installed.

Each archive is written in a fresh child process so its peak memory can be reported, then read
back with the module's ``read_archive()`` (timed as "extract") and compared byte for byte. The
variants run interleaved for ``--rounds`` rounds; medians are printed with sizes and ratios.

Run from the repository root after ``make venv collections``::

    .venv/bin/python bench/redis_archive_formats.py                # 300,000 keys
    .venv/bin/python bench/redis_archive_formats.py --keys 2000000 --rounds 1

Network: only 127.0.0.1. Everything lives in one temporary directory, removed at the end.
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
DEFAULT_VARIANTS = "zip:1,zip:6,tar.zst:3"


def _aof():
    if not os.path.isdir(os.path.join(LINK, "plugins")):
        sys.exit("%s is missing: run `make venv collections` first" % LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof
    return _redis_aof


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- child: one archive

def child(spec_path):
    """Write one archive as the module does; print timing and memory as JSON."""
    aof = _aof()
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    members = [(m[0], m[1], bytes.fromhex(m[2]) if m[1] is None else m[2], m[3]) for m in spec["members"]]
    rss0 = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss0 = int(line.split()[1])
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    aof.write_archive(spec["format"], spec["out"], members, spec["level"], spec.get("zstd_bin"))
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps(dict(
        seconds=seconds,
        cpu_self=own.ru_utime + own.ru_stime - own0.ru_utime - own0.ru_stime,
        cpu_children=kids.ru_utime + kids.ru_stime,
        rss_before_kib=rss0, rss_peak_kib=own.ru_maxrss, rss_children_peak_kib=kids.ru_maxrss)))
    return 0


# --------------------------------------------------------------------------- Redis

class Redis:
    """A scratch redis-server on 127.0.0.1 with an AOF, stopped by its PID."""

    def __init__(self, binary, workdir, rdb_preamble):
        self.binary = binary
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.rdb_preamble = rdb_preamble
        self.proc = None
        self.port = None
        self.client = None

    def start(self):
        import redis  # pylint: disable=import-outside-toplevel

        for _attempt in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", self.dir,
                 "--appendonly", "yes", "--aof-use-rdb-preamble", self.rdb_preamble, "--save", "",
                 "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=120)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    client.ping()
                    self.proc, self.port, self.client = proc, port, client
                    return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        raise RuntimeError("redis-server did not start; see %s" % os.path.join(self.dir, "redis.log"))

    def stop(self):
        if self.client is not None:
            self.client.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(client, keys, seed):
    """``keys`` keys of mixed kinds: 80 % JSON-like strings, 10 % small hashes, 10 % counters."""
    rng = random.Random(seed)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    countries = ["DE", "FR", "NL", "US", "GB", "SE", "PL", "ES", "IT", "JP"]
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        kind = i % 10
        if kind == 8:
            pipe.hset("session:%08d" % i, mapping={
                "user": "user:%08d" % rng.randrange(keys), "ip": "10.%d.%d.%d" % (
                    rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                "seen": str(1700000000 + rng.randrange(10 ** 7)), "agent": "app/%d.%d" % (rng.randrange(9), rng.randrange(30))})
        elif kind == 9:
            pipe.set("counter:%08d" % i, rng.randrange(10 ** 6))
        else:
            name = rng.choice(names)
            pipe.set("user:%08d" % i, '{"id":%d,"name":"%s","email":"%s.%d@example.com","country":"%s","score":%.4f,'
                     '"created":"2025-%02d-%02dT%02d:%02d:%02dZ","plan":"%s","token":"%032x"}' % (
                         i, name, name, i, rng.choice(countries), rng.random(), rng.randrange(1, 13),
                         rng.randrange(1, 29), rng.randrange(24), rng.randrange(60), rng.randrange(60),
                         rng.choice(["free", "pro", "team"]), rng.getrandbits(128)))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def rewrite(client, aof):
    import redis  # pylint: disable=import-outside-toplevel

    try:
        client.bgrewriteaof()
    except redis.exceptions.ResponseError as e:
        if "already in progress" not in str(e):
            raise
    deadline = time.monotonic() + 600
    while aof.rewrite_state(client.info("persistence")) != "done":
        if time.monotonic() > deadline:
            raise RuntimeError("BGREWRITEAOF did not finish in 600 s")
        time.sleep(0.1)


# --------------------------------------------------------------------------- parent

def parse_variants(text, have_zstd):
    variants = []
    for item in text.split(","):
        fmt, _sep, level = item.strip().partition(":")
        if fmt not in ("zip", "tar.zst") or not level.isdigit():
            raise ValueError("variant %r: use zip:LEVEL or tar.zst:LEVEL" % item)
        if fmt == "tar.zst" and not have_zstd:
            print("zstd is not installed: skipping %s" % item)
            continue
        variants.append((fmt, int(level)))
    return variants


def archive_once(work, members, fmt, level, zstd_bin, number):
    out = os.path.join(work, "archive-%02d.%s" % (number, fmt))
    spec = os.path.join(work, "spec-%02d.json" % number)
    with open(spec, "w", encoding="utf-8") as f:
        json.dump(dict(format=fmt, level=level, out=out, zstd_bin=zstd_bin, members=[
            (a, p, d.hex() if p is None else d, t) for a, p, d, t in members]), f)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", spec],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("archiving %s level %d failed: %s" % (fmt, level, proc.stderr[-2000:]))
    os.unlink(spec)
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


def check_archive(aof, archive, work, expected, zstd_bin):
    """Extract with the module's read_archive (timed); compare every data file."""
    target = tempfile.mkdtemp(prefix="extract-", dir=work)
    try:
        t0 = time.perf_counter()
        aof.read_archive(archive, target, zstd_bin=zstd_bin or "zstd")
        seconds = time.perf_counter() - t0
        for arcname, digest in expected.items():
            if aof.sha256_file(os.path.join(target, arcname)) != digest:
                raise RuntimeError("%s: %s differs after extraction" % (archive, arcname))
    finally:
        shutil.rmtree(target)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=300000, help="keys to load (default 300000)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="FORMAT:LEVEL list to compare (default %s); the first is the baseline" % DEFAULT_VARIANTS)
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved; medians are shown (default 3)")
    parser.add_argument("--rdb-preamble", choices=["yes", "no"], default="yes",
                        help="aof-use-rdb-preamble of the scratch Redis (default yes, Redis' default)")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--zstd", default=shutil.which("zstd"), help="zstd binary (default: from PATH)")
    parser.add_argument("--tmpdir", default=None, help="where to create the temporary directory (default: system temp)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="also write the raw measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(opts.child)
    if opts.keys < 1 or opts.rounds < 1:
        parser.error("--keys and --rounds must be 1 or more")
    try:
        variants = parse_variants(opts.variants, bool(opts.zstd))
    except ValueError as e:
        parser.error(str(e))
    if not variants:
        parser.error("no variant left to run")

    aof = _aof()
    work = tempfile.mkdtemp(prefix="bench-redis-archive-", dir=opts.tmpdir)
    server = Redis(opts.redis_server, work, opts.rdb_preamble)
    raw = []
    try:
        server.start()
        version = server.client.info("server")["redis_version"]
        print("redis-server %s on 127.0.0.1:%d (pid %d), dir %s; %d CPUs, Python %s"
              % (version, server.port, server.proc.pid, server.dir, os.cpu_count() or 0, platform.python_version()))
        t0 = time.perf_counter()
        load(server.client, opts.keys, opts.seed)
        t1 = time.perf_counter()
        rewrite(server.client, aof)
        t2 = time.perf_counter()
        print("loaded %d keys in %.1f s; BGREWRITEAOF took %.1f s" % (server.client.dbsize(), t1 - t0, t2 - t1))
        staging = os.path.join(work, "staging")
        os.makedirs(staging)
        backup = aof.AofBackup(server.client, dict(port=server.port))
        cfg = backup.read_config()
        members, method, layout, files = backup._stage(cfg, staging)
        members.append((aof.METADATA_NAME, None, json.dumps(dict(bench=True, keys=opts.keys)).encode(), False))
        server.stop()  # the staged hard links keep the files; Redis is not needed any more
        total = sum(limit for _a, path, limit, _t in members if path is not None)
        expected = {arcname: aof.sha256_file(path) for arcname, path, _limit, _trim in members if path is not None}
        print("AOF (%s, %s): %s, %.1f MiB staged by %s; redis-server stopped"
              % (layout, "RDB preamble" if opts.rdb_preamble == "yes" else "plain AOF", ", ".join(
                  "%s %.1f MiB" % (name, os.path.getsize(os.path.join(staging, name)) / 1048576.0) for name in files),
                 total / 1048576.0, method))
        number = 0
        for rnd in range(opts.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for fmt, level in order:
                number += 1
                archive, stats = archive_once(work, members, fmt, level, opts.zstd, number)
                size = os.path.getsize(archive)
                extract = check_archive(aof, archive, work, expected, opts.zstd)
                os.unlink(archive)
                row = dict(format=fmt, level=level, round=rnd + 1, seconds=stats["seconds"], size=size,
                           cpu=stats["cpu_self"] + stats["cpu_children"], extract_s=extract,
                           py_peak_mib=stats["rss_peak_kib"] / 1024.0,
                           py_before_mib=stats["rss_before_kib"] / 1024.0,
                           zstd_peak_mib=stats["rss_children_peak_kib"] / 1024.0)
                raw.append(row)
                print("  round %d %-9s level %-2d %6.2f s  CPU %5.2f s  %7.1f MiB  extract %5.2f s  peak RSS %.0f MiB"
                      % (rnd + 1, fmt, level, row["seconds"], row["cpu"], size / 1048576.0, extract, row["py_peak_mib"]))
    finally:
        server.stop()
        if opts.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    def med(fmt, level, key):
        return statistics.median(r[key] for r in raw if r["format"] == fmt and r["level"] == level)

    base_s = med(variants[0][0], variants[0][1], "seconds")
    base_size = med(variants[0][0], variants[0][1], "size")
    print()
    print("%d keys, %.1f MiB of AOF, %d round(s)%s; ratios are against %s level %d; peak RSS is the archiving"
          % (opts.keys, total / 1048576.0, opts.rounds, ", medians" if opts.rounds > 1 else "",
             variants[0][0], variants[0][1]))
    print("process (%.0f MiB resident before it started archiving) and, for tar.zst, the zstd process"
          % statistics.median(r["py_before_mib"] for r in raw))
    print("| variant | seconds | time ratio | MiB/s in | CPU s | archive MiB | of AOF | size ratio | extract s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fmt, level in variants:
        seconds, size = med(fmt, level, "seconds"), med(fmt, level, "size")
        peak = "%.0f" % med(fmt, level, "py_peak_mib")
        if fmt == "tar.zst":
            peak += " (zstd %.0f)" % med(fmt, level, "zstd_peak_mib")
        print("| %s level %d | %.2f | %.2f | %.0f | %.2f | %.1f | %.1f %% | %.2f | %.2f | %s |"
              % (fmt, level, seconds, seconds / base_s, total / 1048576.0 / seconds, med(fmt, level, "cpu"),
                 size / 1048576.0, 100.0 * size / total, size / base_size, med(fmt, level, "extract_s"), peak))
    if opts.json_path:
        with open(opts.json_path, "w", encoding="utf-8") as f:
            json.dump(dict(keys=opts.keys, aof_bytes=total, rdb_preamble=opts.rdb_preamble, redis=version,
                           cpus=os.cpu_count(), rows=raw), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
