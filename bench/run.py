# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the collection's benchmarks side by side with the plain tools, and keep the results.

    .venv/bin/python bench/run.py                 # every case at full size (make bench)
    .venv/bin/python bench/run.py --quick         # smoke sizes, about 8 minutes (make bench QUICK=1)
    .venv/bin/python bench/run.py --cases copy_small,verify_cost --rounds 3

Each case (``bench/cases/<name>.py``, contract in ``bench/benchlib.py``) measures the
collection's code and what a person would use without it, in the same run, on this machine, and
judges its goals from that run's numbers. The runner prints one table (medians, ratios, goals
met or NOT met), writes ``bench/results/<date>.json`` with the machine it ran on (cores, CPU,
memory, kernel, tool versions) and draws one PNG chart per case under ``docs/images/bench/``,
which ``docs/performance.md`` shows. A smoke run (``--quick``) writes both to ``.tmp/bench/``. A case that fails is reported as failed, the others still
run; the exit status is 1 when any case failed (a goal not met is a result, not a failure).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402  pylint: disable=wrong-import-position

# The order a full run takes: the cheap cases first, so a smoke run says something early.
CASES = ("copy_small", "copy_large", "replication_lag", "burst_drain", "verify_cost", "redis_aof", "cutover_size",
         "pairs_at_once")
CHART_DIR = os.path.join(benchlib.ROOT, "docs", "images", "bench")
RESULTS_DIR = os.path.join(HERE, "results")
# A smoke run's results and charts stay out of the repository's tree.
QUICK_DIR = os.path.join(benchlib.ROOT, ".tmp", "bench")


def _first_line(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def machine():
    """What the numbers depend on: cores, CPU, memory, kernel, file systems, tool versions."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_gib = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import ansible  # pylint: disable=import-outside-toplevel
        ansible_version = ansible.__version__ if hasattr(ansible, "__version__") else None
        if ansible_version is None:
            from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
    except ImportError:
        ansible_version = None
    commit = _first_line(["git", "-C", benchlib.ROOT, "describe", "--always", "--dirty"])
    return dict(
        cores=os.cpu_count(), cpu=cpu, memory_gib=mem_gib, kernel=platform.release(),
        os=_first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        python=platform.python_version(), ansible_core=ansible_version, commit=commit,
        load_average=[round(x, 2) for x in os.getloadavg()],
        tools=dict(
            rsync=_first_line(["rsync", "--version"]), lsyncd=_first_line(["lsyncd", "-version"]),
            redis_server=_first_line(["redis-server", "--version"]), zstd=_first_line(["zstd", "--version"]),
        ),
    )


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%." + str(digits) + "f") % value
    return str(value)


EXTRA_KEYS = ("files_per_second", "mib_per_second", "p50_ms", "p99_ms", "max_ms", "peak_mib", "archive_mib")


def table(results):
    """One Markdown table for every case: what ran, its median, the ratio, the extra figures."""
    lines = ["| case | what | median s | ratio | other |", "|---|---|---:|---:|---|"]
    for name, result in results.items():
        if result.get("error"):
            last = [line for line in result["error"].splitlines() if line.strip()] or [""]
            lines.append("| %s | FAILED: %s | | | |" % (name, last[-1][:120]))
            continue
        for row in result.get("rows", []):
            extra = ", ".join("%s %s" % (key.replace("_", " "), _fmt(row[key], 1)) for key in EXTRA_KEYS
                              if row.get(key) is not None)
            marker = " (baseline)" if row.get("label") == result.get("baseline") else ""
            lines.append("| %s | %s%s | %s | %s | %s |" % (
                name, str(row.get("label")).replace("|", "\\|"), marker, _fmt(row.get("seconds"), 3), _fmt(row.get("ratio")), extra))
    lines += ["", "| case | goal | measured | |", "|---|---|---|---|"]
    for name, result in results.items():
        for goal in result.get("goals", []):
            lines.append("| %s | %s | %s | %s |" % (name, goal["goal"], goal["measured"],
                                                    "met" if goal["met"] else "**NOT met**"))
    return "\n".join(lines)


def chart(name, result, path):
    """A PNG of the case: bars of the rows' medians, or the case's own series as lines."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    spec = result.get("chart") or {}
    figure, axes = pyplot.subplots(figsize=(8, 4.2), dpi=100)
    title = spec.get("title") or result.get("title") or name
    if spec.get("kind") == "lines" and spec.get("series"):
        for label, points in spec["series"].items():
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None,
                      label=label)
        axes.set_xlabel(spec.get("x", ""))
        if spec.get("log_x"):
            axes.set_xscale("log")
        if spec.get("goal_y") is not None:  # the goal as a line: what is above it misses
            axes.axhline(spec["goal_y"], color="#c0392b", linestyle="--", linewidth=1, label=spec.get("goal_label", "goal"))
            axes.set_ylim(bottom=0)
        axes.legend()
    else:
        rows = result.get("rows", [])
        # the bars show the rows' medians, or the row figure the chart's y axis names
        value_key = spec.get("value") or (spec.get("y") if any(spec.get("y") in row for row in rows) else "seconds")
        labels = [row["label"] for row in rows]
        values = [row.get(value_key) or 0 for row in rows]
        colours = ["#888888" if label == result.get("baseline") else "#2a6fb0" for label in labels]
        bars = axes.barh(labels, values, color=colours)
        axes.invert_yaxis()
        for patch, row in zip(bars, rows):
            text = _fmt(row.get(value_key))
            if row.get("ratio") is not None:
                text += "  (x%.2f)" % row["ratio"]
            axes.text(patch.get_width(), patch.get_y() + patch.get_height() / 2, " " + text, va="center", fontsize=8)
        axes.margins(x=0.25)
    axes.set_title(title, fontsize=10)
    if spec.get("kind") == "lines":
        axes.set_ylabel(spec.get("y", ""))
    else:
        axes.set_xlabel(value_key.replace("_", " "))
    axes.grid(axis="x" if spec.get("kind") != "lines" else "both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: about 8 minutes in all")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated (default: all): %s" % ", ".join(CASES))
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measurement (default: 1 quick, 3 full)")
    parser.add_argument("--tmpdir", default=None, help="where the scratch trees go (default: the system's)")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="results file (default: bench/results/DATE.json, DATE-quick.json for --quick)")
    parser.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error("unknown case(s) %s; known: %s" % (", ".join(unknown), ", ".join(CASES)))
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.time()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    results = {}
    with tempfile.TemporaryDirectory(prefix="nodowntime-bench.", dir=args.tmpdir) as tmp_root:
        for name in names:
            module = importlib.import_module("cases." + name)
            ctx = benchlib.Context(quick=args.quick, rounds=rounds, tmp_root=tmp_root,
                                   log=lambda text, n=name: sys.stderr.write("[%s] %s\n" % (n, text)))
            ctx.log("%s (%s)" % (module.TITLE, module.WHERE))
            case_start = time.time()
            try:
                result = module.run(ctx)
            except Exception:  # one broken case must not hide the others' results
                result = dict(error=traceback.format_exc())
                ctx.log("FAILED:\n" + result["error"])
            finally:
                ctx.clean()
            result.update(title=module.TITLE, where=module.WHERE, elapsed=round(time.time() - case_start, 1))
            results[name] = result
            ctx.log("done in %.0f s" % result["elapsed"])
    document = dict(date=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), quick=args.quick, rounds=rounds,
                    elapsed=round(time.time() - started, 1), machine=machine(), cases=results)
    results_dir = QUICK_DIR if args.quick else RESULTS_DIR
    chart_dir = QUICK_DIR if args.quick else CHART_DIR
    os.makedirs(results_dir, exist_ok=True)
    json_path = args.json_path or os.path.join(
        results_dir, stamp.strftime("%Y-%m-%d") + ("-quick" if args.quick else "") + ".json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    if not args.no_charts:
        os.makedirs(chart_dir, exist_ok=True)
        for name, result in results.items():
            if not result.get("error"):
                chart(name, result, os.path.join(chart_dir, "%s.png" % name))
    print(table(results))
    print("\n%s run, %d round(s), %.0f s in all; results in %s%s" % (
        "quick" if args.quick else "full", rounds, document["elapsed"], os.path.relpath(json_path, benchlib.ROOT),
        "" if args.no_charts else ", charts in %s/" % os.path.relpath(chart_dir, benchlib.ROOT)))
    return 1 if any(r.get("error") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
