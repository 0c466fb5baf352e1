# SPDX-License-Identifier: GPL-3.0-or-later
"""Burst drain of a real lsyncd on the lab: many new small files at once on old, until all are on new.

What is measured: on the lab (``replication_lag.lsyncd_lab``), lsyncd 2.2.3 on ``old`` watches a
source directory holding only empty directories and pushes with rsync to the rsync daemon on
``new`` (the share the migration's prepare phase made). Once its startup sync is done, a burst of
new 4 KiB files (16 top-level directories, 500 files per subdirectory) is written on old as fast
as one process can (``bench/lab_probe.py``). The
directories are made before lsyncd starts, so lsyncd watches every one and each file reaches it
as its own inotify events (files written into a directory created during the burst, before
lsyncd watches it, would reach lsyncd only as that directory's one recursive rsync, sparing its
event queue). One sample is the time from the first write on old until new's directory
holds every file (counted on new, rsync's temporary dot files left out, every 0.1 s; the hosts
share the machine's clock);
``drain_seconds`` is the part after the last write.

- 20,000 files (QUICK: 2,000) for ``ours`` (the role's configuration, written by the
  ``lsyncd_conf`` module) and ``stock`` (the manual's ``default.rsync`` with ``archive``), same
  delay (1 s), ``ctx.rounds`` rounds each (at most 2), interleaved; the medians are reported.
- 40,000 files (QUICK: 4,000) for ``ours`` once: lsyncd's log must show no inotify queue overflow
  (``--- OVERFLOW in event queue ---``) and no second ``recursive startup rsync`` (lsyncd answers
  an overflow by starting over with a full-tree sync).

Left out: ssh, large files, changes
to existing files, deletes and renames, and a source already holding a big tree (lsyncd's
startup sync and watch setup on a big tree are not timed here). The writer and lsyncd share the
same 2 cores, so the rate is also bounded by how fast files can be written.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

import benchlib
import lablib

NAME = "burst_drain"
TITLE = "Burst of new small files drained by lsyncd: role's config vs stock, and overflow at twice the size"
WHERE = "lab"

DELAY = 1.0
FILE_SIZE = 4096
POLL = 0.1
GOAL_FILES_PER_SECOND = 1000


def _lag_module():
    """The lsyncd helpers of the sibling case ``replication_lag`` (however the runner imports cases)."""
    for name in ("cases.replication_lag", "replication_lag"):
        if name in sys.modules:
            return sys.modules[name]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "replication_lag.py")
    spec = importlib.util.spec_from_file_location("_bench_replication_lag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_bench_replication_lag"] = module
    return module


def inotify_limits():
    limits = {}
    for key in ("max_queued_events", "max_user_watches", "max_user_instances"):
        try:
            with open("/proc/sys/fs/inotify/" + key, encoding="ascii") as f:
                limits[key] = int(f.read().strip())
        except (OSError, ValueError):
            limits[key] = None
    return limits


def burst(ctx, pair, kind, files, tag, seed):
    """One lsyncd of ``kind`` on old, one burst of ``files`` files there; returns a dict of what was seen."""
    lab = pair.lab
    source = "/srv/data/" + tag
    lsyncd = pair.lsyncd(kind, tag, DELAY)
    lab.exec("old", ["python3", pair.probe, "burst-layout", source, str(files)])
    result_host, result_lab = lablib.shared("burst-" + tag)
    timeout = max(120.0, files / 200.0)  # below 200 files/s the goal is missed anyway
    cpu = (None, None)
    try:
        lsyncd.start()
        lab.exec_detached("new", ["python3", pair.probe, "burst-watch", source, str(files), str(POLL), str(timeout),
                                  result_lab + "/done.json"])
        wrote = json.loads(lab.exec("old", ["python3", pair.probe, "burst-write", source, str(files), str(seed),
                                            str(FILE_SIZE)]))
        done_path = os.path.join(result_host, "done.json")
        deadline = time.monotonic() + timeout + 30
        while not os.path.exists(done_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        with open(done_path, encoding="ascii") as f:
            done = json.load(f)
        cpu = lsyncd.cpu_seconds()
    finally:
        lsyncd.stop()
    seconds = done["done"] - wrote["start"]
    if done["seen"] < files:
        ctx.log("burst_drain: %s: only %d of %d files after %.0f s" % (tag, done["seen"], files, seconds))
    summary = lsyncd.log_summary()
    lab.exec("old", ["rm", "-rf", source])
    lab.exec("new", ["rm", "-rf", source])
    benchlib.drop_tree(result_host)
    return dict(seconds=seconds, write_seconds=wrote["written"] - wrote["start"], complete=done["seen"] >= files,
                seen=done["seen"], expected=files,
                overflows=summary["overflows"], resyncs=max(0, summary["startup_syncs"] - 1),
                rsync_runs=summary["rsync_runs"], lsyncd_cpu=cpu[0], rsync_cpu=cpu[1],
                errors=summary["errors"])


def _median_or_none(values):
    values = [v for v in values if v is not None]
    return round(benchlib.median(values), 2) if values else None


def run(ctx):
    lag = _lag_module()
    files = 2000 if ctx.quick else 20000
    big = 4000 if ctx.quick else 40000
    rounds = max(1, min(2, ctx.rounds))  # at most 2: the whole case stays near 3 minutes
    started = time.perf_counter()
    loads = [lag.load_note()]
    limits = inotify_limits()
    results = {"ours": [], "stock": []}
    with lag.lsyncd_lab(ctx) as pair:
        for index in range(rounds):
            for kind in ("ours", "stock") if index % 2 == 0 else ("stock", "ours"):
                ctx.log("burst_drain: %s, %d files, round %d/%d" % (kind, files, index + 1, rounds))
                results[kind].append(burst(ctx, pair, kind, files, "%s-%d" % (kind, index), seed=index + 1))
        ctx.log("burst_drain: ours, %d files (overflow check)" % big)
        overflow = burst(ctx, pair, "ours", big, "ours-big", seed=99)
    loads.append(lag.load_note())

    def row(label, runs, count):
        seconds = benchlib.median([r["seconds"] for r in runs])
        return dict(label=label, seconds=round(seconds, 3), runs=[round(r["seconds"], 3) for r in runs],
                    files=count, files_per_second=round(count / seconds) if all(r["complete"] for r in runs) else 0,
                    write_seconds=round(benchlib.median([r["write_seconds"] for r in runs]), 3),
                    drain_seconds=round(benchlib.median([r["seconds"] - r["write_seconds"] for r in runs]), 3),
                    complete=all(r["complete"] for r in runs),
                    overflows=sum(r["overflows"] for r in runs), full_resyncs=sum(r["resyncs"] for r in runs),
                    rsync_runs=benchlib.median([r["rsync_runs"] for r in runs]),
                    lsyncd_cpu_seconds=_median_or_none([r["lsyncd_cpu"] for r in runs]),
                    rsync_cpu_seconds=_median_or_none([r["rsync_cpu"] for r in runs]))

    ours = row("ours (%d files)" % files, results["ours"], files)
    stock = row("stock (%d files)" % files, results["stock"], files)
    big_row = row("ours (%d files)" % big, [overflow], big)
    ours["ratio"] = benchlib.ratio(ours["seconds"], stock["seconds"])
    stock["ratio"] = 1.0
    big_row["ratio"] = None  # another size: not comparable with the baseline
    rows = [ours, stock, big_row]

    goals = [
        dict(goal="ours drains a %d-file burst at >= %d files/s" % (files, GOAL_FILES_PER_SECOND),
             measured="%d files/s (stock %d files/s)" % (ours["files_per_second"], stock["files_per_second"]),
             met=ours["complete"] and ours["files_per_second"] >= GOAL_FILES_PER_SECOND),
        dict(goal="ours: a %d-file burst causes no queue overflow and no full-tree resync" % big,
             measured="%d overflow(s), %d full resync(s), %s in %.1f s"
                      % (big_row["overflows"], big_row["full_resyncs"],
                         "all files arrived" if big_row["complete"] else
                         "%d of %d files arrived" % (overflow["seen"], overflow["expected"]), big_row["seconds"]),
             met=big_row["complete"] and big_row["overflows"] == 0 and big_row["full_resyncs"] == 0),
    ]
    notes = [
        "On the lab: lsyncd 2.2.3 on old pushes over the lab's network to the rsync daemon on new (the "
        "migration's share, login and password file); new counts the files. Both trees are in memory (tmpfs).",
        "A burst: %d (then %d) new %d-byte files written as fast as Python can into 16 top-level directories "
        "(500 per subdirectory) made and watched before it, so every file is its own inotify events; timed from "
        "the first write until the target holds all of them (counted every %.1f s). Delay %g s for both "
        "configurations." % (files, big, FILE_SIZE, POLL, DELAY),
        "The writer shares the 2 cores with lsyncd and rsync: writing took %.1f s of ours' %.1f s (stock: %.1f of "
        "%.1f s), so the rate is partly the writer's; drain_seconds is what lsyncd needed after the last write."
        % (ours["write_seconds"], ours["seconds"], stock["write_seconds"], stock["seconds"]),
        "ours = the lsyncd_conf module's output with the role's defaults (hard links, ACLs, xattrs, sparse, "
        "--numeric-ids, --fuzzy, --delete-delay); stock = sync{default.rsync, rsync={archive=true}}. "
        "%d round(s) per configuration, interleaved; medians." % rounds,
        "Overflow and resync are read from lsyncd's log: '--- OVERFLOW in event queue ---' when the kernel's "
        "inotify queue overflowed (lsyncd then fades out and starts over), and every 'recursive startup rsync' "
        "after the first is a full-tree resync.",
        "Kernel limits here: fs.inotify.max_queued_events = %s, max_user_watches = %s. Each new file is at least "
        "two events lsyncd watches (IN_CREATE, IN_CLOSE_WRITE), so %d files are about %d events: the queue "
        "overflows whenever lsyncd falls more than max_queued_events behind the writer. The role raises "
        "max_queued_events to at least %d (lsyncd_inotify_min_queued_events); this machine's value is what "
        "was measured with." % (limits["max_queued_events"], limits["max_user_watches"], big, 2 * big, 16384,),
        "lsyncd's own CPU (Lua event handling and its log, which lists every path it hands rsync) and its "
        "rsyncs' CPU are in the rows (lsyncd_cpu_seconds, rsync_cpu_seconds), with the number of rsync runs.",
        "Left out: ssh, large files, modifications, deletes and renames, a big pre-existing tree "
        "(startup sync and watch setup).",
        "Took %.0f s; %s at the start, %s at the end (a CI run may share the CPU)."
        % (time.perf_counter() - started, loads[0], loads[1]),
    ]
    if ours["overflows"] or stock["overflows"]:
        notes.append("At %d files the queue already overflowed (ours: %d, stock: %d overflow(s) over %d round(s)): "
                     "the time then includes lsyncd's fade-out and a full-tree startup rsync, which copies what "
                     "is left in one run, so it is not an event-by-event drain rate."
                     % (files, ours["overflows"], stock["overflows"], rounds))
    errors = [e for runs in results.values() for r in runs for e in r["errors"]] + overflow["errors"]
    if errors:
        notes.append("lsyncd logged errors: %s" % " | ".join(errors[-3:]))
    return dict(
        rows=rows, baseline=stock["label"], goals=goals,
        chart=dict(kind="bars", title="Burst drain rate (delay %g s)" % DELAY, x="files in the burst",
                   y="files_per_second",
                   series=dict((r["label"], [[r["files"], r["files_per_second"]]]) for r in rows)),
        notes=notes,
    )
