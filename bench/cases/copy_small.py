# SPDX-License-Identifier: GPL-3.0-or-later
"""Initial copy of many small files to an rsync daemon on 127.0.0.1: rsync_copy's workers vs one rsync.

Measured, side by side in one run, rounds interleaved (the order reverses every other round),
wall seconds of a first copy of a tree of 200,000 random 4 KiB files (QUICK: 20,000) in 16
top-level directories into a new, empty destination:

- ``rsync -a SRC/ rsync://127.0.0.1:PORT/bench/runNN/``: the baseline;
- ``cp -a SRC/. DEST/`` to a local directory on the same file system: a reference for what the
  file system alone costs (no daemon, no protocol), not a way initial_sync could copy;
- one rsync with the options rsync_copy passes for the role's defaults, built by the module's own
  ``_rsync.base_options``, without the module: a diagnostic row that tells what the options cost
  (``-HAX --sparse --delete --numeric-ids``, itemized output) from what the module adds;
- the collection's initial copy as the ``initial_sync`` role runs it: the ``rsync_copy``
  module's ``main()`` in this process (``benchlib.run_module``) with the options the role passes
  at its defaults (read from ``roles/initial_sync/defaults/main.yml``: hard links, ACLs, xattrs,
  sparse, numeric ids, partial dir, I/O timeout, a progress file) and ``delete`` as the migration
  playbook sets it by default, with ``workers`` 1 (the role's default), 2 and 4.

For the initial_sync rows, ``outside_rsync_seconds`` is the wall time not spent in the module's
rsync processes (module start, lock, the plan's scan of the source for workers > 1 with hard
links, waiting for the output threads).

Every copy is checked: each destination must hold exactly the source's number of files, and the
module must report rsync exit 0, or the case raises.

The trees go to a new directory in /dev/shm when it has room (no ext4 slow-down after mass
deletions there, see bench/README.md), else to the scratch directory; the notes say which.

Left out: a cold page cache (the source was just written and is in memory), a real network and
a remote host (the daemon shares the CPUs with the sender), ssh as transport, Ansible's
own transport (AnsiballZ, async polling by job_progress), and CPU seconds.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import benchlib

NAME = "copy_small"
TITLE = "Initial copy of many 4 KiB files to an rsync daemon: initial_sync (rsync_copy, 1/2/4 workers) vs one rsync -a"
WHERE = "loopback"

FILES = 200000
QUICK_FILES = 20000
SIZE = 4096
DIRS = 16
WORKERS = (1, 2, 4)
GOAL_SPEEDUP = 1.4
# tmpfs memory per 4 KiB file and copy: the page, the inode, the dentry (measured about 5 KiB)
ENTRY_BYTES = 5 * 1024
SHM = "/dev/shm"
CONNECT_TIMEOUT = 30  # rsync_copy's connect_timeout default (the role does not pass it)
OPTIONS_LABEL = "rsync, the role's options (diagnostic)"
ROLE_DEFAULTS = os.path.join(benchlib.ROOT, "roles", "initial_sync", "defaults", "main.yml")


def role_module_args(rsync, src, dest, workers, workdir, tag):
    """rsync_copy's arguments as roles/initial_sync/tasks/copy.yml passes them, at the role's defaults.

    ``delete`` has no role default: the migration playbook's default (``migration_delete: true``)
    is used. The lock and progress files go to ``workdir``; password_file and rsh are omitted
    (empty in the role, so ``omit``).
    """
    import yaml  # pylint: disable=import-outside-toplevel
    with open(ROLE_DEFAULTS, encoding="utf-8") as f:
        d = yaml.safe_load(f)
    return dict(src=src, dest=dest, delete=True, exclude=d["initial_sync_exclude"],
                bwlimit=str(d["initial_sync_bwlimit"]), workers=workers,
                partial_dir=d["initial_sync_partial_dir"], numeric_ids=d["initial_sync_numeric_ids"],
                hard_links=d["initial_sync_hard_links"], acls=d["initial_sync_acls"],
                xattrs=d["initial_sync_xattrs"], sparse=d["initial_sync_sparse"],
                io_timeout=d["initial_sync_io_timeout"], extra_args=d["initial_sync_extra_args"],
                progress_file=os.path.join(workdir, "progress-%s.jsonl" % tag),
                lock_file=os.path.join(workdir, "copy-%s.lock" % tag), rsync_path=rsync)


def role_rsync_argv(rsync, src, dest):
    """One rsync with the options rsync_copy gives it for the role's defaults (built by the module's
    own ``_rsync.base_options``), without the module: no lock, no plan, no progress scan, no parsing."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync
    a = role_module_args(rsync, src, dest, 1, "", "")
    options = _rsync.base_options(archive=True, delete=a["delete"], partial_dir=a["partial_dir"], exclude=a["exclude"],
                                  numeric_ids=a["numeric_ids"], io_timeout=a["io_timeout"], contimeout=CONNECT_TIMEOUT,
                                  extra=a["extra_args"], hard_links=a["hard_links"], acls=a["acls"],
                                  xattrs=a["xattrs"], sparse=a["sparse"])
    return [rsync] + options + [src.rstrip("/") + "/", dest]


def rsync_seconds(result):
    """Wall seconds of rsync_copy's rsync processes: the single one, or the first pass plus the
    slowest of the parallel workers (they run at the same time)."""
    serial = sum(w["elapsed"] for w in result["workers"] if not w["name"].startswith("worker"))
    parallel = [w["elapsed"] for w in result["workers"] if w["name"].startswith("worker")]
    return serial + (max(parallel) if parallel else 0.0)


def role_default_workers():
    import yaml  # pylint: disable=import-outside-toplevel
    with open(ROLE_DEFAULTS, encoding="utf-8") as f:
        return int(yaml.safe_load(f)["initial_sync_workers"])


def pick_root(ctx, copy_bytes):
    """The directory for the trees: a new one in /dev/shm when it has room for the source, two
    copies and 2 GiB to spare, else ``ctx.scratch``. ``(path, made_here)``: a /dev/shm directory
    is removed by the case itself."""
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:
        free = 0
    if free >= 3 * copy_bytes + (2 << 30):
        return tempfile.mkdtemp(prefix="bench-%s-" % NAME, dir=SHM), True
    return ctx.scratch(NAME), False


def run(ctx):
    rsync, cp = ctx.tools.get("rsync"), ctx.tools.get("cp")
    if not rsync or not cp:
        raise RuntimeError("%s needs rsync and cp on PATH" % NAME)
    ctx.collection()
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.modules import rsync_copy
    # import the unit tests' runner now, not inside the first timed module run
    # pylint: disable-next=import-outside-toplevel,unused-import
    import tests.unit.plugins.modules.utils  # noqa: F401

    files = QUICK_FILES if ctx.quick else FILES
    copy_bytes = files * ENTRY_BYTES
    root, made_here = pick_root(ctx, copy_bytes)
    daemon = None
    kept = []
    try:
        fstype, device, no_journal = benchlib.filesystem(root)
        # Every copy goes into a new, empty directory. On ext4 without a journal deleting many
        # files slows down creating files for minutes (bench/README.md), so all destinations are
        # removed only at the end of the case there; elsewhere each right after its check.
        keep_all = no_journal
        rows_n = 3 + len(WORKERS)
        need = copy_bytes * (1 + (rows_n * ctx.rounds if keep_all else 2))
        free = shutil.disk_usage(root).free
        if free < need:
            raise RuntimeError("%s: %s has %.1f GiB free, the case needs about %.1f GiB"
                               % (NAME, root, free / 2.0 ** 30, need / 2.0 ** 30))
        src = os.path.join(root, "src")
        dest = os.path.join(root, "dest")
        local = os.path.join(root, "local")
        work = os.path.join(root, "work")
        for path in (dest, local, work):
            os.makedirs(path)
        ctx.log("making %d x %d B files under %s (%s)" % (files, SIZE, root, fstype))
        made_s, _none = benchlib.timed(lambda: benchlib.make_small_files(src, files, size=SIZE, dirs=DIRS))
        expected = benchlib.count_files(src)
        ctx.log("tree of %d files made in %.1f s" % (expected, made_s))
        daemon = benchlib.Daemon(rsync, work, dest).start()

        def rsync_case(target_dir, url):
            def go():
                benchlib.run_checked([rsync, "-a", src + "/", url])
            return go, target_dir

        def options_case(target_dir, url):
            argv = role_rsync_argv(rsync, src, url)

            def go():
                benchlib.run_checked(argv)
            return go, target_dir

        def cp_case(target_dir, _url):
            def go():
                benchlib.run_checked([cp, "-a", src + "/.", target_dir + "/"])
            return go, target_dir

        def module_case(workers):
            def factory(target_dir, url):
                args = role_module_args(rsync, src, url, workers, work, os.path.basename(target_dir))

                def go():
                    result = benchlib.run_module(rsync_copy.main, args)
                    if result.get("rsync_rc") != 0 or result.get("failed"):
                        raise RuntimeError("rsync_copy (%d workers) ended with rsync exit %s: %s"
                                           % (workers, result.get("rsync_rc"), result.get("stderr_lines")))
                    return rsync_seconds(result)
                return go, target_dir
            return factory

        default_workers = role_default_workers()
        cases = [("rsync -a", "daemon", rsync_case), ("cp -a (local reference)", "local", cp_case),
                 (OPTIONS_LABEL, "daemon", options_case)]
        for n in WORKERS:
            suffix = ("" if n == 1 else "s") + (", role default" if n == default_workers else "")
            label = "initial_sync (%d worker%s)" % (n, suffix)
            cases.append((label, "daemon", module_case(n)))
        runs = dict((label, []) for label, _where, _factory in cases)
        outside = dict((label, []) for label, _where, _factory in cases)
        number = 0
        for rnd in range(ctx.rounds):
            order = cases if rnd % 2 == 0 else list(reversed(cases))
            for label, where, factory in order:
                number += 1
                name = "run%02d" % number
                target = os.path.join(dest if where == "daemon" else local, name)
                os.makedirs(target)
                go, target = factory(target, daemon.url(name))
                os.sync()  # write back the previous copy now, not during this one
                seconds, in_rsync = benchlib.timed(go)
                got = benchlib.count_files(target)
                if got != expected:
                    raise RuntimeError("%s: %s copied %d files, expected %d" % (NAME, label, got, expected))
                runs[label].append(seconds)
                if in_rsync is not None:
                    outside[label].append(seconds - in_rsync)
                ctx.log("round %d %-40s %7.2f s" % (rnd + 1, label, seconds))
                if keep_all:
                    kept.append(target)
                else:
                    benchlib.drop_tree(target)
        # rsync_copy's fixed cost: the same options over an empty tree (weighs in at QUICK sizes)
        empty = os.path.join(root, "empty")
        os.makedirs(empty)
        os.makedirs(os.path.join(dest, "empty"))
        fixed_s, _value = benchlib.timed(lambda: benchlib.run_module(
            rsync_copy.main, role_module_args(rsync, empty, daemon.url("empty"), 1, work, "empty")))
    finally:
        if daemon is not None:
            daemon.stop()
        for target in kept:
            benchlib.drop_tree(target)
        if made_here:
            benchlib.drop_tree(root)

    base = benchlib.median(runs["rsync -a"])
    rows = []
    for label, _where, _factory in cases:
        seconds = benchlib.median(runs[label])
        row = dict(label=label, seconds=round(seconds, 3), runs=[round(s, 3) for s in runs[label]],
                   ratio=benchlib.ratio(seconds, base), files_per_second=round(expected / seconds))
        if outside[label]:
            row["outside_rsync_seconds"] = round(benchlib.median(outside[label]), 3)
        rows.append(row)
    module_rows = [row for row in rows if row["label"].startswith("initial_sync")]
    best = min(module_rows, key=lambda row: row["seconds"])
    speedup = base / best["seconds"]
    goals = [dict(goal="initial_sync >= %.1fx faster than one rsync (best workers count)" % GOAL_SPEEDUP,
                  measured="%.2fx with %s (%.2f s vs %.2f s)" % (speedup, best["label"], best["seconds"], base),
                  met=speedup >= GOAL_SPEEDUP)]
    where_text = ("%s (tmpfs: in memory)" % root if fstype == "tmpfs"
                  else "%s (%s on %s%s)" % (root, fstype, device, ", no journal" if no_journal else ""))
    notes = [
        "%d files of %d B in %d top-level directories (500 a subdirectory), %d round(s) interleaved, medians; "
        "trees in %s; every destination new and empty, %s."
        % (expected, SIZE, DIRS, ctx.rounds, where_text,
           "all removed at the end (ext4 without a journal)" if keep_all else "each removed after its check"),
        "CPU-bound: a small-file copy is system calls for every file on both ends; the sender, the daemon's "
        "generator and receiver and, with workers, several of each share %d CPU(s) with the daemon, so "
        "workers can only help up to about the number of cores on both ends." % (os.cpu_count() or 0),
        "Page cache: the source was just written and is read from memory; a cold cache (the real first copy "
        "of a server) adds reads that parallel workers could overlap. Loopback only: no network latency.",
        "rsync_copy runs in this process through its main() with the role's options at their defaults "
        "(hard links, ACLs, xattrs, sparse, numeric ids, partial dir, progress file; delete as the "
        "migration's default), so these rows also pay for -HAX and the progress scan that plain rsync -a skips; "
        "the row %r is those options without the module, and outside_rsync_seconds is what the module spends "
        "around its rsync processes (with workers > 1 and hard links it stats the whole source to plan the "
        "groups before any rsync starts)." % OPTIONS_LABEL,
        "rsync_copy's fixed cost (module start, lock, one rsync over an empty tree, same options): %.2f s "
        "in this run, part of every initial_sync row (it matters at the QUICK size only)." % fixed_s,
        "cp -a is a local copy on the same file system: a reference for the file system's own cost, "
        "not an alternative to the daemon copy.",
    ]
    return dict(rows=rows, baseline="rsync -a", goals=goals, notes=notes,
                chart=dict(kind="bars", title="First copy of %d x 4 KiB files (seconds, lower is better)" % expected,
                           y="seconds"))
