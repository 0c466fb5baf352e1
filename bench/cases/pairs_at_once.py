# SPDX-License-Identifier: GPL-3.0-or-later
"""Two pairs migrated and cut over at once against one pair, on the lab.

One round: a fresh lab with one pair (``molecule/bench``: old -> new, a client writing) and then a
fresh lab with two (``molecule/bench_pairs``: old -> new and old2 -> new2, a client writing to
each), the same number of files on every old server. What is timed is the migration playbook as a
user runs it, every phase from prepare to the cutover, in one run; each pair's downtime comes from
the report. Goal: two pairs take at most 1.3x one pair's time, since the pairs run side by side.
"""
from __future__ import annotations

import time

import lablib

NAME = "pairs_at_once"
TITLE = "Two pairs migrated and cut over at once vs one pair (migration playbook, every phase)"
WHERE = "lab"

FILES = 5000
QUICK_FILES = 2000
GOAL_RATIO = 1.3
ROUNDS = 1
# Every phase up to the cutover; `finish` is only ever run when asked for.
PHASES = ["prepare", "initial_sync", "replicate", "verify", "cutover"]
SCENARIOS = (("one pair", "bench", ("old",)), ("two pairs at once", "bench_pairs", ("old", "old2")))


def _round(ctx, scenario, olds, files):
    with lablib.Lab(ctx, scenario, files) as lab:
        seconds = lab.migrate(PHASES)
        pairs = lab.report()["pairs"]
    downtimes = {}
    for old in olds:
        cutover = (pairs.get(old) or {}).get("cutover") or {}
        if cutover.get("outcome") != "done":
            raise RuntimeError("%s: the cutover of %s was %s" % (scenario, old, cutover.get("outcome")))
        downtimes[old] = cutover["downtime_seconds"]
    return seconds, downtimes


def run(ctx):
    files = QUICK_FILES if ctx.quick else FILES
    # A round is two whole labs and two whole migrations (about 4 minutes): one round keeps the
    # whole `make bench` under its 30 minutes.
    rounds = min(ctx.rounds, ROUNDS)
    started = time.perf_counter()
    measured = dict((label, []) for label, _s, _o in SCENARIOS)
    for index in range(rounds):
        for label, scenario, olds in SCENARIOS:
            seconds, downtimes = _round(ctx, scenario, olds, files)
            measured[label].append((seconds, downtimes))
            ctx.log("round %d, %s: %.1f s, downtime %s" % (
                index + 1, label, seconds, ", ".join("%s %.2f s" % kv for kv in sorted(downtimes.items()))))
    rows = []
    for label, _scenario, olds in SCENARIOS:
        runs = [round(seconds, 1) for seconds, _d in measured[label]]
        downtimes = [d for _s, per_pair in measured[label] for d in per_pair.values()]
        rows.append(dict(label=label, seconds=lablib.benchlib.median(runs), runs=runs, pairs=len(olds),
                         files_per_pair=files, downtime_max_seconds=max(downtimes),
                         downtime_median_seconds=lablib.benchlib.median(downtimes)))
    one, two = rows
    for row in rows:
        row["ratio"] = lablib.benchlib.ratio(row["seconds"], one["seconds"])
    goals = [dict(goal="two pairs at once <= %gx one pair" % GOAL_RATIO,
                  measured="%.2fx (%.0f s vs %.0f s)" % (two["ratio"], two["seconds"], one["seconds"]),
                  met=two["ratio"] <= GOAL_RATIO)]
    notes = [
        "On the lab: a fresh set of Podman hosts per measurement; %s files of 1 KiB on each old server and a "
        "client writing to it over sshfs (20 operations a second) throughout." % format(files, ","),
        "Timed: one run of the migration playbook, prepare to cutover, as a user runs it (Ansible's default "
        "5 forks, so both pairs' hosts run each task together). Lab creation is not included. "
        "%d round(s), each a pair of fresh labs." % rounds,
        "Downtime per pair, from the report: one pair %.2f s; two pairs at most %.2f s."
        % (one["downtime_max_seconds"], two["downtime_max_seconds"]),
        "Took %.0f s in all." % (time.perf_counter() - started),
    ]
    return dict(rows=rows, baseline="one pair", goals=goals, notes=notes,
                chart=dict(kind="bars", title="Migration playbook, prepare to cutover: one pair vs two at once",
                           y="seconds"))
