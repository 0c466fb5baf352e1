# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the tree_verify module vs one plain ``rsync -an --delete --itemize-changes``, side by side.

For every size (default 200,000 and 1,000,000 entries) it builds a seeded random source tree
of small files (subdirectories of 100 to 1000 files of 200 to 800 bytes), copies it with
``cp -a`` and then plants differences in the copy: 0.1 % of the entries changed (size, mtime
or permissions of a file; a few directories' permissions), 0.05 % missing (deleted from the
copy) and 0.05 % orphaned (added to the copy, one of them a directory). The copy's directory
times are put back afterwards, so the planted entries are the only differences.

It starts an rsync daemon on 127.0.0.1 (a spare port, ``--no-detach``, one writable module
over the temporary directory) and compares each source tree with its copy, once as a local
directory and once through the daemon share, with:

- ``rsync -an --delete --itemize-changes SRC/ DST/`` (the baseline, the plain tool),
- one rsync with exactly the argv of the module's first pass (``_tree_verify.tree_argv`` with
  the module's defaults), its output collected by ``subprocess.run``: the cost of the options
  the module passes (``-HAX``, ``--numeric-ids``, ``--stats`` ...) without the module, and
- the ``nodowntime.storage.tree_verify`` module with ``path`` and ``target`` and every other
  option at its default, through its own ``main()`` run in-process by the unit tests' runner.

Every run happens in a fresh child Python process, timed inside the child (Python's start-up
and imports are not counted). The child reports its own peak memory (``VmHWM``: the module's
Python code path, imports included); this process samples ``VmHWM`` of every rsync the child
starts, and of the daemon's side of the connection, every 20 ms. The cases run interleaved for
``--rounds`` rounds after one unmeasured warm-up per target; medians are printed. The totals the
module returns, the entries it checked and the number of lines plain rsync prints are compared
with what was planted: a mismatch stops the run.

Run from the repository root after ``make venv collections``::

    .venv/bin/python bench/tree_verify.py              # 200,000 and 1,000,000 entries, ~10 min
    .venv/bin/python bench/tree_verify.py --quick      # smoke run, ~1 min

Network: only 127.0.0.1. Everything it creates lives in one temporary directory (``--tmpdir``,
default /dev/shm when it has room), removed at the end (``--keep`` keeps it); the daemon it
starts is stopped by its PID.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
COLLECTIONS = os.path.join(ROOT, ".tmp", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "nodowntime", "storage")

DEFAULT_SIZES = "200000,1000000"
QUICK_SIZES = "20000,100000"
# Rounds when --rounds is not given: 3 up to this many entries, LARGE_ROUNDS above.
SMALL_SIZE_LIMIT = 200000
LARGE_ROUNDS = 3
SHARE_CHANGED, SHARE_MISSING, SHARE_ORPHANED = 0.001, 0.0005, 0.0005
# tmpfs cost per entry and copy: one 4 KiB page per small file, about 1 KiB of inode and dentry.
TMPFS_BYTES_PER_ENTRY = 4096 + 1024
# Goal (b): the module's Python peak at the largest size at most this times the smallest size's.
FLAT_LIMIT = 1.10
TIME_LIMIT = 1.05
CASES = ("plain", "options", "module")
CASE_NAMES = {"plain": "plain rsync", "options": "rsync, module's argv", "module": "tree_verify"}


def _collection():
    if not os.path.isdir(os.path.join(LINK, "plugins")):
        sys.exit("%s is missing: run `make venv collections` first" % LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


def _rsync_workers():
    """bench/rsync_workers.py, for its ``Daemon`` and ``fs_note``."""
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    # pylint: disable-next=import-outside-toplevel
    import rsync_workers
    return rsync_workers


def _module_runner():
    """The unit tests' in-process runner, found the way rsync_workers.py finds it."""
    return _rsync_workers()._module_runner()


# --------------------------------------------------------------------------- child: one run

def status_kib(pid, field):
    """``VmRSS``, ``VmHWM`` ... of process ``pid`` (or "self") in KiB; 0 once it is gone.

    ``VmHWM`` is the peak of the process's own memory since its last exec. ``ru_maxrss`` is not
    used: at exec Linux carries the parent's peak over into it, so every process Python starts
    would show at least the starting Python's memory.
    """
    try:
        with open("/proc/%s/status" % pid, encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_rsync(argv):
    """Run ``argv`` like the plain tool; the number of lines it printed (rsync's stats block excluded)."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                          env=dict(os.environ, LC_ALL="C"))
    if proc.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), proc.returncode,
                                                 proc.stderr.decode(errors="replace")))
    lines = proc.stdout.split(b"\n")
    itemized = [line for line in lines if len(line) > 12 and line[11:12] == b" "
                and (line[:1] in b"<>ch.*") and not line.startswith(b"Number ")]
    return len(itemized)


def child(spec_path):
    """One measured run (``spec["case"]``) in this fresh process; prints the measurements as JSON."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    _collection()
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_verify
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.modules import tree_verify
    run_module = _module_runner()
    src, target, rsync = spec["src"], spec["target"], spec["rsync"]
    if spec["case"] == "plain":
        argv = [rsync, "-an", "--delete", "--itemize-changes", src + "/", target + "/"]
    else:
        compare = _tree_verify.compare_options("attributes", [])
        connection = _tree_verify.connection_options(None, None, 600, 30,
                                                     daemon=_tree_verify.target_kind(target) == "daemon")
        argv = _tree_verify.tree_argv(rsync, compare, connection, [], src, target)
    rss_before = status_kib("self", "VmRSS")
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if spec["case"] == "module":
        # _ansible_tmpdir: the module's scratch files stay in the benchmark's directory;
        # _ansible_no_log: no invocation line in the system log for every round.
        result = run_module(tree_verify.main, dict(path=src, target=target, _ansible_tmpdir=spec["module_tmp"],
                                                   _ansible_no_log=True))
        outcome = dict(totals=result["totals"], entries_checked=result["entries_checked"],
                       clean=result["clean"], passes=result["passes"], in_flight=result["in_flight"]["totals"],
                       listed=len(result["differences"]))
    else:
        outcome = dict(lines=run_rsync(argv))
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome.update(
        seconds=seconds,
        python_cpu_s=own.ru_utime + own.ru_stime - own0.ru_utime - own0.ru_stime,
        rsync_cpu_s=children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime,
        python_rss_before_kib=rss_before, python_peak_kib=status_kib("self", "VmHWM"))
    print(json.dumps(outcome))
    return 0


# --------------------------------------------------------------------------- the trees

def plan_tree(entries, rng):
    """``(top, sub, files)`` triples, 100 to 1000 files per subdirectory, 50 subdirectories per
    top-level directory, adding up to exactly ``entries`` entries (directories included, the
    root not)."""
    plan = []
    count = 0
    top = -1
    while count < entries:
        if len(plan) % 50 == 0:
            top += 1
            count += 1  # the top-level directory
            if count >= entries:
                break
        files = min(rng.randint(100, 1000), entries - count - 1)
        plan.append((top, len(plan) % 50, files))
        count += 1 + files
    return plan, top + 1


def write_tree(src, plan, rng):
    """The source tree; returns ``{relative path: size}`` of every file in it."""
    pool = rng.randbytes((1 << 16) + 1024)
    sizes = {}
    os.makedirs(src)
    for top, sub, files in plan:
        rel_dir = "top%03d/sub%02d" % (top, sub)
        os.makedirs(os.path.join(src, rel_dir))
        for index in range(files):
            rel = "%s/f%04d.dat" % (rel_dir, index)
            size = rng.randint(200, 800)
            offset = rng.randrange(1 << 16)
            fd = os.open(os.path.join(src, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, pool[offset:offset + size])
            finally:
                os.close(fd)
            sizes[rel] = size
    return sizes


def plant_differences(src, dst, plan, sizes, rng):
    """Change, delete and add entries in the copy ``dst``; returns the totals tree_verify must
    report and the number of lines plain rsync must print."""
    entries = sum(1 + files for _top, _sub, files in plan) + len({top for top, _sub, _files in plan})
    names = sorted(sizes)
    sub_dirs = sorted({"top%03d/sub%02d" % (top, sub) for top, sub, _files in plan})
    changed_count = max(1, round(entries * SHARE_CHANGED))
    changed_dirs = sorted(rng.sample(sub_dirs, max(1, round(len(sub_dirs) * SHARE_CHANGED))))
    chosen = rng.sample(names, changed_count - len(changed_dirs) + max(1, round(entries * SHARE_MISSING)))
    changed_files = chosen[:changed_count - len(changed_dirs)]
    missing_files = chosen[changed_count - len(changed_dirs):]
    orphan_count = max(2, round(entries * SHARE_ORPHANED))
    totals = dict.fromkeys(("diff_dir", "diff_file", "diff_bytes", "missing_dir", "missing_file", "missing_bytes",
                            "orphaned_dir", "orphaned_file", "orphaned_bytes"), 0)
    touched_dirs = set()
    for number, rel in enumerate(changed_files):
        path = os.path.join(dst, rel)
        if number % 3 == 0:  # other content, other size (and a new mtime)
            with open(path, "wb") as f:
                f.write(b"changed\n" * (sizes[rel] // 8 + 3))
        elif number % 3 == 1:  # same content, older mtime
            stat = os.stat(path)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 3600 * 10**9))
        else:  # permissions
            os.chmod(path, 0o600)
        totals["diff_file"] += 1
        totals["diff_bytes"] += sizes[rel]
    for rel in changed_dirs:
        os.chmod(os.path.join(dst, rel), 0o700)
        totals["diff_dir"] += 1
    for rel in missing_files:
        os.unlink(os.path.join(dst, rel))
        touched_dirs.add(os.path.dirname(rel))
        totals["missing_file"] += 1
        totals["missing_bytes"] += sizes[rel]
    # One orphaned directory holding a few files, the other orphans loose in random directories.
    orphan_parent = rng.choice(sub_dirs)
    os.makedirs(os.path.join(dst, orphan_parent, "orphan-dir"))
    touched_dirs.add(orphan_parent)
    totals["orphaned_dir"] += 1
    for number in range(orphan_count - 1):
        if number < 3:
            rel = "%s/orphan-dir/o%d.dat" % (orphan_parent, number)
        else:
            rel = "%s/orphan-%d.dat" % (rng.choice(sub_dirs), number)
            touched_dirs.add(os.path.dirname(rel))
        size = rng.randint(200, 800)
        with open(os.path.join(dst, rel), "wb") as f:
            f.write(b"o" * size)
        totals["orphaned_file"] += 1
        totals["orphaned_bytes"] += size
    # Adding and removing entries changed the parents' mtimes: put the source's back.
    for rel in touched_dirs:
        stat = os.stat(os.path.join(src, rel))
        os.utime(os.path.join(dst, rel), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    lines = (totals["diff_dir"] + totals["diff_file"] + totals["missing_file"] + totals["missing_dir"]
             + totals["orphaned_file"] + totals["orphaned_dir"])
    return totals, lines, entries


def build(base, entries, seed):
    """Source tree, its copy and the planted differences for one size."""
    rng = random.Random("%d-%d" % (seed, entries))
    plan, tops = plan_tree(entries, rng)
    src, dst = os.path.join(base, "src"), os.path.join(base, "dst")
    os.makedirs(base)
    started = time.perf_counter()
    sizes = write_tree(src, plan, rng)
    subprocess.run(["cp", "-a", src, dst], check=True)
    totals, lines, counted = plant_differences(src, dst, plan, sizes, rng)
    if counted != entries:
        raise RuntimeError("tree plan: %d entries, wanted %d" % (counted, entries))
    os.sync()
    return dict(src=src, dst=dst, entries=entries, files=len(sizes), dirs=len(plan) + tops, totals=totals,
                lines=lines, build_s=time.perf_counter() - started)


def pick_tmpdir(requested, total_entries):
    """``(directory, why)``: ``requested``, else /dev/shm when it has room for two copies, else the system temp dir."""
    if requested:
        return requested, "--tmpdir"
    need = 2 * total_entries * TMPFS_BYTES_PER_ENTRY
    try:
        vfs = os.statvfs("/dev/shm")
        with open("/proc/meminfo", encoding="ascii") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return tempfile.gettempdir(), "/dev/shm unusable"
    room = vfs.f_bavail * vfs.f_frsize
    if room >= need * 1.2 and available >= need * 1.2 + (2 << 30) and vfs.f_favail >= 2.2 * total_entries:
        return "/dev/shm", "/dev/shm has room (%.1f GiB needed, %.1f GiB free, %.1f GiB memory available)" % (
            need / 2**30, room / 2**30, available / 2**30)
    return tempfile.gettempdir(), "/dev/shm too small (%.1f GiB needed, %.1f GiB free, %.1f GiB memory available)" % (
        need / 2**30, room / 2**30, available / 2**30)


# --------------------------------------------------------------------------- measuring

def descendants(pid):
    """PIDs of every living descendant of ``pid``."""
    found = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % parent)
        except OSError:
            continue
        for task in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (parent, task), encoding="ascii") as f:
                    kids = [int(kid) for kid in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def name_and_peak(pid):
    """``(command name, VmHWM in KiB)`` of ``pid``, read at once; ``("", 0)`` once it is gone."""
    name, peak = "", 0
    try:
        with open("/proc/%d/status" % pid, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line[len("Name:"):].strip()
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
                    break
    except OSError:
        pass
    return name, peak


def measure(work, case, src, target, rsync, number, daemon_pid):
    """One run in a fresh child; the rsync processes' peaks are sampled from here every 20 ms.

    Returns the child's measurements plus ``rsync_peak_kib`` (the largest rsync process the child
    started), ``rsync_peak_sum_kib`` (their peaks added up) and ``daemon_peak_kib`` (the largest
    process of the daemon's side of the connection).
    """
    spec_path = os.path.join(work, "spec-%04d.json" % number)
    out_path, err_path = spec_path + ".out", spec_path + ".err"
    module_tmp = os.path.join(work, "module-tmp")
    os.makedirs(module_tmp, exist_ok=True)
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(dict(case=case, src=src, target=target, rsync=rsync, module_tmp=module_tmp), f)
    os.sync()
    client_peaks, daemon_peaks = {}, {}
    rsync_name = os.path.basename(rsync)[:15]
    started = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", spec_path],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        while proc.poll() is None:
            for peaks, parent in ((client_peaks, proc.pid), (daemon_peaks, daemon_pid)):
                for pid in descendants(parent):
                    name, peak = name_and_peak(pid)
                    if name == rsync_name:  # not a forked Python before its exec
                        peaks[pid] = max(peaks.get(pid, 0), peak)
            time.sleep(0.02)
    wall = time.perf_counter() - started
    with open(out_path, encoding="utf-8") as f:
        output = f.read()
    if proc.returncode != 0:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            errors = f.read()
        raise RuntimeError("%s against %s failed (exit %d):\n%s%s"
                           % (CASE_NAMES[case], target, proc.returncode, output[-3000:], errors[-3000:]))
    row = json.loads(output.strip().splitlines()[-1])
    row.update(child_wall_s=wall, rsync_peak_kib=max(client_peaks.values(), default=0),
               rsync_peak_sum_kib=sum(client_peaks.values()), rsync_processes=len(client_peaks),
               daemon_peak_kib=max(daemon_peaks.values(), default=0))
    return row


def check(row, case, tree, target):
    """Fail loudly when a run did not find exactly what was planted."""
    where = "%s, %d entries, %s" % (CASE_NAMES[case], tree["entries"], target)
    if case == "module":
        problems = []
        if row["totals"] != tree["totals"]:
            problems.append("totals %s, planted %s" % (row["totals"], tree["totals"]))
        if row["entries_checked"] != tree["entries"] + 1:  # rsync counts the root directory too
            problems.append("entries_checked %s, the tree has %d + the root" % (row["entries_checked"], tree["entries"]))
        if any(row["in_flight"].values()):
            problems.append("in_flight %s, expected none" % row["in_flight"])
        if row["clean"]:
            problems.append("clean=true")
        if problems:
            raise RuntimeError("%s: %s" % (where, "; ".join(problems)))
    elif row["lines"] != tree["lines"]:
        raise RuntimeError("%s: printed %d itemized lines, %d entries were planted" % (where, row["lines"], tree["lines"]))


def load_average():
    """The 1-minute load average; the benchmark's own processes add about 1 to it."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def median(rows, key):
    return statistics.median(row[key] for row in rows)


def parse_sizes(text):
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 2000:
        raise ValueError("every size must be 2000 entries or more")
    return sizes


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None,
                        help="entries per tree, directories included (default %s; --quick: %s)" % (DEFAULT_SIZES, QUICK_SIZES))
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds per size, cases interleaved, medians shown (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute: small sizes, one round")
    parser.add_argument("--tmpdir", default=None,
                        help="where to create the temporary directory (default /dev/shm if it has room, else the system temp dir)")
    parser.add_argument("--rsync", default=shutil.which("rsync") or "rsync", help="rsync binary")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="also write the raw measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = parser.parse_args()
    try:
        sizes = parse_sizes(opts.sizes or (QUICK_SIZES if opts.quick else DEFAULT_SIZES))
    except ValueError as e:
        parser.error("--sizes: %s" % e)
    if opts.rounds is not None and opts.rounds < 1:
        parser.error("--rounds must be 1 or more")

    def rounds_for(size):
        if opts.rounds is not None:
            return opts.rounds
        if opts.quick:
            return 1
        return 3 if size <= SMALL_SIZE_LIMIT else LARGE_ROUNDS

    _collection()
    helpers = _rsync_workers()
    version = subprocess.run([opts.rsync, "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    tmp_parent, why = pick_tmpdir(opts.tmpdir, sum(sizes))
    work = tempfile.mkdtemp(prefix="bench-tree-verify-", dir=tmp_parent)
    print("temporary directory %s (%s); %d CPUs, Python %s, %s"
          % (work, why, os.cpu_count() or 0, platform.python_version(), version))
    load_before = load_average()
    if load_before > 0.5:
        print("note: load average %.2f before the start: other processes are busy, the times are not reliable" % load_before)
    note = helpers.fs_note(work)
    if note:
        print(note)
    daemon = helpers.Daemon(opts.rsync, work, work)
    rows = []
    trees = {}
    try:
        daemon.start()
        print("daemon: %s (pid %d)" % (daemon.url, daemon.proc.pid))
        number = 0
        for size in sizes:
            tree = build(os.path.join(work, "size-%d" % size), size, opts.seed)
            trees[size] = tree
            print("%d entries (%d files, %d dirs) built and copied in %.1f s; planted: %s"
                  % (size, tree["files"], tree["dirs"], tree["build_s"],
                     ", ".join("%s %d" % item for item in tree["totals"].items() if item[1])))
            targets = [("local", tree["dst"]), ("daemon", daemon.url + "size-%d/dst" % size)]
            for _kind, target in targets:  # warm-up, not measured
                number += 1
                check(measure(work, "plain", tree["src"], target, opts.rsync, number, daemon.proc.pid), "plain", tree, target)
            for rnd in range(rounds_for(size)):
                for kind, target in (targets if rnd % 2 == 0 else list(reversed(targets))):
                    for case in (CASES if rnd % 2 == 0 else tuple(reversed(CASES))):
                        number += 1
                        row = measure(work, case, tree["src"], target, opts.rsync, number, daemon.proc.pid)
                        check(row, case, tree, target)
                        row.update(size=size, target_kind=kind, case=case, round=rnd + 1)
                        rows.append(row)
                        print("  %7d %-6s round %d %-22s %7.2f s  Python peak %5.1f MiB  rsync peak %6.1f MiB"
                              "  daemon side %6.1f MiB"
                              % (size, kind, rnd + 1, CASE_NAMES[case], row["seconds"], row["python_peak_kib"] / 1024.0,
                                 row["rsync_peak_kib"] / 1024.0, row["daemon_peak_kib"] / 1024.0))
    finally:
        daemon.stop()
        if opts.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    load_after = load_average()
    print("load average (1 min) before %.2f, after %.2f" % (load_before, load_after))

    def pick(size, kind, case):
        return [row for row in rows if row["size"] == size and row["target_kind"] == kind and row["case"] == case]

    print()
    print("%s; medians of %s round(s); ratio = tree_verify s / plain rsync s; peak resident memory in MiB"
          % (", ".join("%d entries" % size for size in sizes), "/".join(str(rounds_for(size)) for size in sizes)))
    print("| entries | target | plain rsync s | rsync, module's argv s | tree_verify s | ratio "
          "| tree_verify peak MiB Python / rsync | plain rsync peak MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    summary = []
    for size in sizes:
        for kind in ("local", "daemon"):
            plain, options, module = (pick(size, kind, case) for case in CASES)
            entry = dict(size=size, target_kind=kind, plain_s=median(plain, "seconds"),
                         options_s=median(options, "seconds"), module_s=median(module, "seconds"),
                         module_python_peak_mib=median(module, "python_peak_kib") / 1024.0,
                         module_python_before_mib=median(module, "python_rss_before_kib") / 1024.0,
                         module_rsync_peak_mib=median(module, "rsync_peak_kib") / 1024.0,
                         plain_rsync_peak_mib=median(plain, "rsync_peak_kib") / 1024.0)
            entry["ratio"] = entry["module_s"] / entry["plain_s"]
            summary.append(entry)
            print("| %d | %s | %.2f | %.2f | %.2f | %.2f | %.1f / %.1f | %.1f |"
                  % (size, kind, entry["plain_s"], entry["options_s"], entry["module_s"], entry["ratio"],
                     entry["module_python_peak_mib"], entry["module_rsync_peak_mib"], entry["plain_rsync_peak_mib"]))
    print()
    worst = max(summary, key=lambda entry: entry["ratio"])
    print("goal (a) time, tree_verify no slower than plain rsync (ratio <= %.2f): %s - worst %.2f (%d entries, %s: "
          "%.2f s vs %.2f s)" % (TIME_LIMIT, "met" if worst["ratio"] <= TIME_LIMIT else "NOT met", worst["ratio"],
                                 worst["size"], worst["target_kind"], worst["module_s"], worst["plain_s"]))
    small, large = min(sizes), max(sizes)
    goals = []
    if small == large:
        print("goal (b) memory: needs two sizes (--sizes SMALL,LARGE)")
    for kind in ("local", "daemon") if small != large else ():
        low = next(e for e in summary if e["size"] == small and e["target_kind"] == kind)
        high = next(e for e in summary if e["size"] == large and e["target_kind"] == kind)
        growth = high["module_python_peak_mib"] / low["module_python_peak_mib"]
        goals.append(growth <= FLAT_LIMIT)
        print("goal (b) memory, %s: tree_verify's Python peak %.1f MiB at %d vs %.1f MiB at %d entries (x%.2f, limit "
              "x%.2f): %s; rsync's own peak grows x%.2f under tree_verify (%.1f -> %.1f MiB) and x%.2f under plain "
              "rsync (%.1f -> %.1f MiB)"
              % (kind, high["module_python_peak_mib"], large, low["module_python_peak_mib"], small, growth, FLAT_LIMIT,
                 "met" if growth <= FLAT_LIMIT else "NOT met",
                 high["module_rsync_peak_mib"] / low["module_rsync_peak_mib"], low["module_rsync_peak_mib"],
                 high["module_rsync_peak_mib"], high["plain_rsync_peak_mib"] / low["plain_rsync_peak_mib"],
                 low["plain_rsync_peak_mib"], high["plain_rsync_peak_mib"]))
    if opts.json_path:
        tree_facts = {size: {key: value for key, value in tree.items() if key not in ("src", "dst")}
                      for size, tree in trees.items()}
        with open(opts.json_path, "w", encoding="utf-8") as f:
            json.dump(dict(sizes=sizes, rsync=version, cpus=os.cpu_count(), python=platform.python_version(),
                           tmpdir=tmp_parent, load_average_before=load_before, load_average_after=load_after,
                           trees=tree_facts, summary=summary, rows=rows,
                           goal_time_met=worst["ratio"] <= TIME_LIMIT,
                           goal_memory_met=all(goals) if goals else None), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
