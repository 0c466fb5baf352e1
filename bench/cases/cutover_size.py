# SPDX-License-Identifier: GPL-3.0-or-later
"""Cutover downtime with the writer active, against the tree's size, on the lab.

For each size a fresh lab (``molecule/bench``): old holds N files of 1 KiB (500 to a directory)
plus what the client's writer adds (20 creates, overwrites and deletes a second over sshfs). The
migration playbook runs as a user runs it: prepare, initial_sync, replicate, verify; then

- ``rsync -a --delete`` pass: the writer stopped, the final full pass a plain script makes in its
  downtime (old -> new's share, the migration's own password file), timed on old itself,
  ``ctx.rounds`` times; the writer started again;
- the ``cutover`` phase with the writer running: the downtime is the report's
  (``downtime_seconds``: from the writers' stop to their start on the new server), two cutovers
  (at most ``ctx.rounds``) at the smallest and the largest size, one in between (a rollback and a verify before
  each further one).

Goals: at most 5 s at every size, and the largest tree's downtime at most 1.3x the smallest's
(the cutover's cost does not grow with the tree), while the full pass grows with it.
"""
from __future__ import annotations

import time

import lablib

NAME = "cutover_size"
TITLE = "Cutover downtime with the writer active vs tree size; a final full rsync -a --delete pass"
WHERE = "lab"

SIZES = (20000, 200000, 1000000)
QUICK_SIZES = (2000,)
# A further cutover costs a rollback, a verify and a cutover (about 70 s at 20,000 files, 90 s at
# 1,000,000): two at the smallest and the largest size (the flat goal compares those), one in
# between, keep the whole `make bench` under its 30 minutes.
CUTOVERS = 2
GOAL_SECONDS = 5.0
GOAL_FLAT = 1.3
PHASES_BEFORE = ["prepare", "initial_sync", "replicate", "verify"]


def _full_pass(lab):
    """One ``rsync -a --delete`` of old's tree to new's share; seconds and files rsync counted."""
    seconds, out = lab.timed_on("old", [
        "rsync", "-a", "--delete", "--stats", "--password-file=" + lablib.SHARE_PASSWORD_FILE,
        "/srv/data/", lablib.share_target()])
    files = next((int(line.split(":", 1)[1].split("(")[0].strip().replace(",", ""))
                  for line in out.splitlines() if line.startswith("Number of files:")), None)
    return seconds, files


def _cutover(lab):
    """The cutover phase; its record from the report (downtime, steps)."""
    playbook = lab.migrate(["cutover"])
    record = lab.report()["pairs"]["old"]["cutover"]
    if record.get("outcome") != "done":
        raise RuntimeError("the cutover was %s: %s" % (record.get("outcome"), record))
    return dict(downtime=record["downtime_seconds"], playbook=round(playbook, 1),
                drain=lablib.step_seconds(record, "drain"),
                switch_replication=lablib.step_seconds(record, "switch replication"),
                switch_clients=lablib.step_seconds(record, "switch clients"))


def measure(ctx, files, count):
    with lablib.Lab(ctx, "bench", files) as lab:
        ctx.log("%d files: the lab is up; prepare, initial_sync, replicate, verify" % files)
        before = lab.migrate(PHASES_BEFORE)
        lab.writer("client", "stop")
        passes = [_full_pass(lab) for dummy in range(ctx.rounds)]
        lab.writer("client", "start")
        time.sleep(3)  # the writer is writing again before the cutover stops it
        ctx.log("%d files: phases %.0f s; full pass %s s; cutover" % (
            files, before, ", ".join("%.2f" % p[0] for p in passes)))
        cutovers = []
        for index in range(count):
            if index:
                lab.rollback()
                lab.migrate(["verify"])
            cutovers.append(_cutover(lab))
            ctx.log("%d files: cutover %d: %.2f s down" % (files, index + 1, cutovers[-1]["downtime"]))
    return dict(files=files, phases_seconds=round(before, 1), passes=passes, cutovers=cutovers)


def run(ctx):
    sizes = QUICK_SIZES if ctx.quick else SIZES
    started = time.perf_counter()
    measured = [measure(ctx, files, min(ctx.rounds, CUTOVERS if files in (sizes[0], sizes[-1]) else 1))
                for files in sizes]

    rows = []
    for m in measured:
        downtimes = [c["downtime"] for c in m["cutovers"]]
        rows.append(dict(label="cutover, %s files" % format(m["files"], ","), files=m["files"],
                         seconds=lablib.benchlib.median(downtimes), runs=downtimes,
                         drain_seconds=lablib.benchlib.median([c["drain"] for c in m["cutovers"] if c["drain"] is not None]),
                         playbook_seconds=lablib.benchlib.median([c["playbook"] for c in m["cutovers"]]),
                         phases_before_seconds=m["phases_seconds"]))
    for m in measured:
        seconds = [round(p[0], 3) for p in m["passes"]]
        rows.append(dict(label="rsync -a --delete pass, %s files" % format(m["files"], ","), files=m["files"],
                         seconds=lablib.benchlib.median(seconds), runs=seconds, entries=m["passes"][0][1]))
    baseline = rows[0]["label"]
    for row in rows:
        row["ratio"] = lablib.benchlib.ratio(row["seconds"], rows[0]["seconds"])
    cutovers = rows[:len(measured)]
    passes = rows[len(measured):]
    for cutover, full_pass in zip(cutovers, passes):
        cutover["full_pass_seconds"] = full_pass["seconds"]
    worst = max(cutovers, key=lambda r: r["seconds"])
    goals = [
        dict(goal="cutover downtime <= %g s at every size" % GOAL_SECONDS,
             measured=", ".join("%.2f s at %s" % (r["seconds"], format(r["files"], ",")) for r in cutovers),
             met=worst["seconds"] <= GOAL_SECONDS),
    ]
    if len(cutovers) > 1:  # a smoke run measures one size: nothing to compare
        first, last = cutovers[0], cutovers[-1]
        flat = "cutover at %s files <= %gx the %s-file figure (flat)" % (
            format(last["files"], ","), GOAL_FLAT, format(first["files"], ","))
        measured_flat = "%.2fx (the full pass: %.1fx)" % (
            last["seconds"] / first["seconds"], passes[-1]["seconds"] / passes[0]["seconds"])
        goals.append(dict(goal=flat, measured=measured_flat, met=last["seconds"] <= GOAL_FLAT * first["seconds"]))
    counts = ", ".join("%d at %s files" % (len(m["cutovers"]), format(m["files"], ",")) for m in measured)
    notes = [
        "On the lab: Podman hosts booting systemd on their own network (old, new, client), the migration "
        "playbook with its defaults (no bandwidth limit, one worker, lsyncd delay 1 s, status interval 0.25 s). "
        "Each old tree: N files of 1 KiB, 500 to a directory, plus the writer's files.",
        "Downtime: the report's downtime_seconds, from the moment the writer is stopped until it runs again "
        "on the new server's storage (stop writers, drain lsyncd's queue, start lsyncd new -> old, move the "
        "mount, start writers). Cutovers per size: %s; after the first, a rollback and a verify come before "
        "each cutover, as they must." % counts,
        "The full pass is what a plain script does instead in its downtime: the writer stopped, one "
        "rsync -a --delete of the whole tree to the new server's share (a few files to carry at most), timed "
        "on old; it does not include stopping the writer, moving the mount or starting the writer again.",
        "What the cutover waits for: lsyncd's status report of an empty queue (drain) and the reverse "
        "lsyncd watching the tree (switch replication); both walk directories, not files.",
        "Took %.0f s in all (a fresh lab per size)." % (time.perf_counter() - started),
    ]
    series = {
        "cutover downtime (median)": [[r["files"], r["seconds"]] for r in cutovers],
        "final rsync -a --delete pass (median)": [[r["files"], r["seconds"]] for r in passes],
    }
    return dict(rows=rows, baseline=baseline, goals=goals, notes=notes,
                chart=dict(kind="lines", title="Clients without storage vs tree size (writer active)",
                           x="files in the tree", y="seconds", log_x=True, series=series,
                           goal_y=GOAL_SECONDS, goal_label="goal: %g s" % GOAL_SECONDS))
