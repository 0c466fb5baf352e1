# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration report's picture: one PNG, two panels, drawn with matplotlib (Agg, no display).

* top: each pair's phases (initial copy, replicate, verify, cutover, rollback) as bars on a time
  axis. Phases may be days apart, so each bar carries its date, time and duration, and a phase of
  seconds gets a minimum visible width and a marker instead of vanishing;
* bottom: the cutover's (and the rollback's) steps in seconds from the start of the downtime, the
  downtime shaded, the totals in the title.

matplotlib is imported only by ``render_png``; ``missing()`` tells whether it can be. The same
report draws the same picture (no clock, no version in the file's metadata).
"""
from __future__ import annotations

import io

from ansible_collections.nodowntime.storage.plugins.module_utils._migration_report import (
    PHASES,
    human_seconds,
    parse_time,
    seconds_between,
)

LIBRARY = "matplotlib"
PHASE_COLOURS = {"initial_sync": "#4c78a8", "replicate": "#72b7b2", "verify": "#54a24b",
                 "cutover": "#e45756", "rollback": "#f58518"}
STEP_COLOURS = {"stop writers": "#e45756", "drain": "#4c78a8", "switch replication": "#72b7b2",
                "switch clients": "#b279a2", "start writers": "#54a24b", "check writers": "#9d9da1",
                "undo": "#f58518"}
# bounds of each phase in its section of the report
_BOUNDS = {"initial_sync": ("started", "finished"), "replicate": ("started", "caught_up"),
           "verify": ("started_at", "finished_at")}


def missing():
    """None when matplotlib can be imported, else why not (for a warning that names it)."""
    try:
        import matplotlib  # noqa: F401 pylint: disable=unused-import
    except ImportError as e:
        return "%s is not installed on the controller (%s); pip install %s" % (LIBRARY, e, LIBRARY)
    return None


def phase_bounds(key, section):
    """``(start, end)`` aware datetimes of one phase, or None when its section has no times."""
    if key in ("cutover", "rollback"):
        steps = section.get("steps") or []
        starts = [parse_time(s.get("start")) for s in steps]
        ends = [parse_time(s.get("end")) for s in steps]
        starts = [t for t in starts if t is not None]
        ends = [t for t in ends if t is not None]
        if not starts:
            return None
        return min(starts), max(ends + starts)
    first, last = _BOUNDS[key]
    start, end = parse_time(section.get(first)), parse_time(section.get(last))
    if start is None and end is None:
        return None
    return (start or end), (end or start)


def phase_rows(report):
    """``[(pair, key, label, start, end)]`` in the order they are drawn (top first)."""
    rows = []
    for old, entry in sorted((report.get("pairs") or {}).items()):
        for key, label in PHASES:
            if entry.get(key):
                bounds = phase_bounds(key, entry[key])
                if bounds:
                    rows.append((old, key, label, bounds[0], bounds[1]))
    return rows


def step_groups(report):
    """``[(title, downtime, [(name, offset, seconds)])]`` for each cutover and rollback with steps."""
    groups = []
    for old, entry in sorted((report.get("pairs") or {}).items()):
        for key in ("cutover", "rollback"):
            phase = entry.get(key) or {}
            steps = phase.get("steps") or []
            zero = steps and steps[0].get("start")
            timed = []
            for step in steps:
                offset = seconds_between(zero, step.get("start"))
                took = seconds_between(step.get("start"), step.get("end"))
                if offset is not None and took is not None:
                    timed.append((step.get("name") or "?", offset, max(took, 0.0)))
            if timed:
                groups.append(("%s %s (%s)" % (old, key, phase.get("outcome", "?")),
                               phase.get("downtime_seconds"), timed))
    return groups


def _naive(moment):
    return moment.replace(tzinfo=None)


def render_png(report):
    """The picture as PNG bytes. Raises ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    rows = phase_rows(report)
    groups = step_groups(report)
    top_n = max(len(rows), 1)
    bottom_n = max(sum(len(g[2]) for g in groups), 1)
    figure = Figure(figsize=(11, 2.2 + 0.42 * (top_n + bottom_n)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 1, height_ratios=[top_n + 1.5, bottom_n + 1.5])
    top = figure.add_subplot(grid[0])
    bottom = figure.add_subplot(grid[1])

    # top: the phases on a time axis
    top.set_title("Migration phases (UTC)", loc="left", fontsize=11, fontweight="bold")
    if rows:
        lo = min(date2num(_naive(r[3])) for r in rows)
        hi = max(date2num(_naive(r[4])) for r in rows)
        span = max(hi - lo, 60.0 / 86400)  # at least a minute
        min_width = span * 0.008
        labels = []
        for index, (old, key, label, start, end) in enumerate(rows):
            y = len(rows) - 1 - index
            x0, x1 = date2num(_naive(start)), date2num(_naive(end))
            width = max(x1 - x0, min_width)
            top.barh(y, width, left=x0, height=0.6, color=PHASE_COLOURS[key], edgecolor="#333333", linewidth=0.5)
            if x1 - x0 < min_width:
                top.plot([x0], [y], marker="D", markersize=7, color=PHASE_COLOURS[key], markeredgecolor="#333333")
            if key == "replicate":
                # lsyncd keeps running after it caught up: lighter, until the cutover (or the last phase)
                until = [date2num(_naive(r[3])) for r in rows if r[0] == old and r[1] == "cutover"] or [hi]
                if until[0] > x0 + width:
                    top.barh(y, until[0] - x0 - width, left=x0 + width, height=0.6, color=PHASE_COLOURS[key],
                             alpha=0.3, edgecolor="none")
            seconds = (end - start).total_seconds()
            took = ("caught up in " if key == "replicate" else "") + human_seconds(seconds)
            top.text(x0 + width + span * 0.01, y, "%s  %s" % (start.strftime("%a %d %b %H:%M:%S"), took),
                     va="center", fontsize=8)
            labels.append("%s  %s" % (old, label) if len({r[0] for r in rows}) > 1 else label)
        top.set_yticks(list(range(len(rows) - 1, -1, -1)))
        top.set_yticklabels(labels, fontsize=9)
        top.set_xlim(lo - span * 0.02, hi + span * 0.32)
        top.set_ylim(-0.7, len(rows) - 0.3)
        locator = AutoDateLocator()
        top.xaxis.set_major_locator(locator)
        top.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
        top.tick_params(axis="x", labelsize=8)
        top.grid(axis="x", color="#dddddd", linewidth=0.6)
        top.set_axisbelow(True)
    else:
        top.text(0.5, 0.5, "no phase recorded yet", ha="center", va="center", transform=top.transAxes)
        top.set_xticks([])
        top.set_yticks([])

    # bottom: the cutover's steps, seconds from the start of the downtime
    if groups:
        totals = ", ".join("%s %s" % (title.split(" (")[0], human_seconds(down))
                           for title, down, _steps in groups if down is not None)
        bottom.set_title("Downtime: %s" % (totals or "not measured"), loc="left", fontsize=11, fontweight="bold")
        labels = []
        ticks = []
        y = bottom_n - 1
        longest = 0.0
        for title, down, steps in groups:
            first_y = y
            for name, offset, took in steps:
                bottom.barh(y, max(took, 0.02), left=offset, height=0.6, color=STEP_COLOURS.get(name, "#888888"),
                            edgecolor="#333333", linewidth=0.5)
                bottom.text(offset + max(took, 0.02), y, "  %.2f s" % took, va="center", fontsize=8)
                labels.append("%s: %s" % (title.split(" (")[0], name))
                ticks.append(y)
                longest = max(longest, offset + took)
                y -= 1
            if down is not None:
                bottom.barh((first_y + y + 1) / 2.0, down, left=0, height=first_y - y + 0.2,
                            color="#e45756", alpha=0.08, zorder=0)
                bottom.plot([down, down], [y + 0.5, first_y + 0.5], linestyle="--", color="#e45756", linewidth=1)
                bottom.text(down, first_y + 0.45, " %s without storage" % human_seconds(down), color="#b02a37",
                            fontsize=8, va="bottom")
                longest = max(longest, down)
        bottom.set_yticks(ticks)
        bottom.set_yticklabels(labels, fontsize=9)
        bottom.set_xlim(0, longest * 1.18 + 0.1)
        bottom.set_ylim(-0.7, bottom_n - 0.1)
        bottom.set_xlabel("seconds from the start of the downtime (first writer stopped)", fontsize=9)
        bottom.tick_params(axis="x", labelsize=8)
        bottom.grid(axis="x", color="#dddddd", linewidth=0.6)
        bottom.set_axisbelow(True)
    else:
        bottom.set_title("Downtime", loc="left", fontsize=11, fontweight="bold")
        bottom.text(0.5, 0.5, "no cutover yet", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_xticks([])
        bottom.set_yticks([])

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
