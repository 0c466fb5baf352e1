# SPDX-License-Identifier: GPL-3.0-or-later
"""Initial copy of a few large files to an rsync daemon on 127.0.0.1: rsync_copy vs one rsync -a.

Measured, side by side in one run, rounds interleaved (the order reverses every other round),
wall seconds of a first copy of 4 random files of 512 MiB (QUICK: 4 x 64 MiB) into a new, empty
destination behind an rsync daemon on 127.0.0.1:

- ``rsync -a SRC/ rsync://127.0.0.1:PORT/bench/runNN/``: the baseline;
- ``rsync -a --sparse``: a diagnostic row, the one option of the role that changes how the
  receiver writes a large file (it looks for runs of zeros in every block);
- the collection's initial copy as the ``initial_sync`` role runs it: the ``rsync_copy``
  module's ``main()`` in this process (``benchlib.run_module``) with the options the role passes
  at its defaults (read from ``roles/initial_sync/defaults/main.yml``: hard links, ACLs, xattrs,
  sparse, numeric ids, partial dir, I/O timeout, a progress file) and ``delete`` as the migration
  playbook sets it by default, with 1 worker and with the role's default ``workers`` (one row
  when they are the same). The role's options come from ``cases.copy_small.role_module_args``.

Every copy is checked: the destination must hold the source's files with the same sizes, and the
module must report rsync exit 0, or the case raises.

The trees live in the benchmark's scratch directory (the system temp dir, on disk), not in
/dev/shm: 2 GiB of source plus a copy would be held in memory there. The case checks the free
space first. Left out: a cold page cache (the source was just written and is mostly in memory,
the destination is written to the page cache and reaches the disk after the copy is timed), a
real network and a remote host, ssh, Ansible's own transport, CPU seconds.
"""
from __future__ import annotations

import os
import shutil

import benchlib
from cases.copy_small import role_default_workers, role_module_args

NAME = "copy_large"
TITLE = "Initial copy of 4 large files to an rsync daemon: initial_sync (rsync_copy) vs one rsync -a"
WHERE = "loopback"

COUNT = 4
SIZE = 512 << 20
QUICK_SIZE = 64 << 20
GOAL_RATIO = 1.05
SPARSE_LABEL = "rsync -a --sparse (diagnostic)"
SPARE = 1 << 30  # free space left over after the source and one copy


def sizes(path):
    """``{relative path: size}`` of the regular files under ``path``."""
    found = {}
    for dirpath, _dirnames, names in os.walk(path):
        for name in names:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, path)] = os.lstat(full).st_size
    return found


def run(ctx):
    rsync = ctx.tools.get("rsync")
    if not rsync:
        raise RuntimeError("%s needs rsync on PATH" % NAME)
    ctx.collection()
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.modules import rsync_copy
    # import the unit tests' runner now, not inside the first timed module run
    # pylint: disable-next=import-outside-toplevel,unused-import
    import tests.unit.plugins.modules.utils  # noqa: F401

    size = QUICK_SIZE if ctx.quick else SIZE
    data = COUNT * size
    root = ctx.scratch(NAME)
    # the source and one copy at a time (each destination is removed after its check)
    free = shutil.disk_usage(root).free
    if free < 2 * data + SPARE:
        raise RuntimeError("%s: %s has %.1f GiB free; the case needs %.1f GiB (source and one copy of %d x %d MiB, "
                           "and 1 GiB to spare)" % (NAME, root, free / 2.0 ** 30, (2 * data + SPARE) / 2.0 ** 30,
                                                    COUNT, size >> 20))
    src = os.path.join(root, "src")
    dest = os.path.join(root, "dest")
    work = os.path.join(root, "work")
    for path in (dest, work):
        os.makedirs(path)
    ctx.log("making %d x %d MiB files under %s" % (COUNT, size >> 20, root))
    made_s, _none = benchlib.timed(lambda: benchlib.make_large_files(src, COUNT, size))
    expected = sizes(src)
    ctx.log("source made in %.1f s" % made_s)

    default_workers = role_default_workers()
    # (label, rsync options or a workers count)
    cases = [("rsync -a", ["-a"]), (SPARSE_LABEL, ["-a", "--sparse"])]
    for n in sorted({1, default_workers}):
        suffix = ("" if n == 1 else "s") + (", role default" if n == default_workers else "")
        cases.append(("initial_sync (%d worker%s)" % (n, suffix), n))
    runs = dict((label, []) for label, _how in cases)
    daemon = benchlib.Daemon(rsync, work, dest).start()
    try:
        number = 0
        for rnd in range(ctx.rounds):
            order = cases if rnd % 2 == 0 else list(reversed(cases))
            for label, how in order:
                number += 1
                name = "run%02d" % number
                target = os.path.join(dest, name)
                os.makedirs(target)
                url = daemon.url(name)
                if isinstance(how, list):
                    def go(url=url, options=tuple(how)):
                        benchlib.run_checked([rsync] + list(options) + [src + "/", url])
                else:
                    module_args = role_module_args(rsync, src, url, how, work, name)

                    def go(module_args=tuple(module_args.items()), workers=int(how)):
                        result = benchlib.run_module(rsync_copy.main, dict(module_args))
                        if result.get("rsync_rc") != 0 or result.get("failed"):
                            raise RuntimeError("rsync_copy (%d workers) ended with rsync exit %s: %s"
                                               % (workers, result.get("rsync_rc"), result.get("stderr_lines")))
                os.sync()  # write back the previous copy now, not during this one
                seconds, _value = benchlib.timed(go)
                got = sizes(target)
                if got != expected:
                    raise RuntimeError("%s: %s copied %s, expected %s" % (NAME, label, sorted(got.items()),
                                                                          sorted(expected.items())))
                runs[label].append(seconds)
                ctx.log("round %d %-40s %7.2f s" % (rnd + 1, label, seconds))
                benchlib.drop_tree(target)
    finally:
        daemon.stop()

    base = benchlib.median(runs["rsync -a"])
    mib = data / float(1 << 20)
    rows = []
    for label, _how in cases:
        seconds = benchlib.median(runs[label])
        rows.append(dict(label=label, seconds=round(seconds, 3), runs=[round(s, 3) for s in runs[label]],
                         ratio=benchlib.ratio(seconds, base), mib_per_second=round(mib / seconds, 1)))
    goals = []
    for row in rows:
        if not row["label"].startswith("initial_sync"):
            continue
        goals.append(dict(goal="%s within 5%% of one rsync (ratio <= %.2f)" % (row["label"], GOAL_RATIO),
                          measured="%.2f (%.2f s vs %.2f s)" % (row["ratio"], row["seconds"], base),
                          met=row["ratio"] <= GOAL_RATIO))
    fstype, device, _no_journal = benchlib.filesystem(root)
    notes = [
        "%d files of %d MiB (%d MiB), %d round(s) interleaved, medians; trees in %s (%s%s); every destination "
        "new and empty, removed after its check." % (COUNT, size >> 20, int(mib), ctx.rounds, root, fstype,
                                                     " on %s" % device if device else ""),
        "Page cache: the source was just written and is read from memory, and the copy is timed until rsync "
        "ends, not until its data reaches the disk (os.sync() runs before each copy, untimed). The rate is "
        "therefore memory and loopback bound: rsync's checksumming and the copies between sender, daemon "
        "and file system on %d CPU(s), not the disk's." % (os.cpu_count() or 0),
        "Loopback only: no network between the ends. rsync_copy runs in this process through its main() "
        "with the role's options at their defaults (hard links, ACLs, xattrs, sparse, numeric ids, partial "
        "dir, progress file; delete as the migration's default): --sparse makes the receiver look for runs "
        "of zeros in every block it writes, which plain rsync -a does not; the row %r is that option alone, "
        "its ratio is what --sparse costs here." % SPARSE_LABEL,
    ]
    if len(cases) == 3:
        notes.append("The role's default is %d worker, so there is one initial_sync row." % default_workers)
    return dict(rows=rows, baseline="rsync -a", goals=goals, notes=notes,
                chart=dict(kind="bars", title="First copy of %d x %d MiB (seconds, lower is better)"
                           % (COUNT, size >> 20), y="seconds"))
