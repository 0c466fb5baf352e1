#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""The end of `make demo`: what the migration did, phase by phase, from report.json.

    tests/lab/demo-summary.py .tmp/migration-reports/report.json [--log .tmp/logs/demo.log]

Uses the report module's own wording (plugins/module_utils/_migration_report.py, loaded from this
working tree), so the terminal says what the report says.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_report_module():
    path = os.path.join(ROOT, "plugins", "module_utils", "_migration_report.py")
    spec = importlib.util.spec_from_file_location("_migration_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown(path):
    """A path relative to where the demo was started, when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="report.json of the migration report")
    parser.add_argument("--log", help="the whole log of the run")
    args = parser.parse_args()
    R = load_report_module()
    try:
        with open(args.report, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError) as e:
        print("no migration report to sum up: %s" % e)
        return 1

    print("== what the migration did (%s)" % shown(args.report))
    for old, entry in sorted((report.get("pairs") or {}).items()):
        lines = R.pair_summary(old, entry)
        print(lines[0])
        prefix = old + " "
        for line in lines[1:]:
            label, text = line[len(prefix):].split(": ", 1) if line.startswith(prefix) else ("", line)
            print("  %-13s %s" % (label, text))
            if label == "verify":
                totals = entry["verify"].get("totals") or {}
                kinds = []
                for kind in ("diff", "missing", "orphaned"):
                    kinds.append("%s %s dirs %s files %s" % (kind, totals.get(kind + "_dir", 0), totals.get(kind + "_file", 0),
                                                             R.human_bytes(totals.get(kind + "_bytes", 0))))
                print("  %-13s %s" % ("", ", ".join(kinds)))
            if label in ("cutover", "rollback"):
                steps = entry[label].get("steps") or []
                print("  %-13s %s" % ("", " | ".join(
                    "%s %.2f s" % (s.get("name"), R.step_seconds(s) or 0.0) for s in steps)))
        downtime = (entry.get("cutover") or {}).get("downtime_seconds")
        if downtime is not None:
            print("  => %s downtime for the clients" % R.human_seconds(downtime))
    directory = os.path.dirname(os.path.abspath(args.report))
    for name, what in (("report.html", "report"), ("timeline.png", "picture")):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            print("%-8s %s" % (what + ":", shown(path)))
    if args.log:
        print("%-8s %s" % ("log:", shown(args.log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
