# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a run log of the last hours for the slots of *:0/10 and print the times as JSON.

The period ends at the start of the current 10-minute slot (``until``), so every slot before it
has ended; the log starts 12 slots before (``first``) and the period asked for 18 (``since``).
Slot k (0..11): a systemd run that is ok, except k=3 failed, k=5 skipped, k=7 none; a manual run
in slot 8, a drill in slot 9, a line that is not JSON.
"""
import json
import sys
import time

path = sys.argv[1]
until = int(time.time()) // 600 * 600
first = until - 12 * 600
since = until - 18 * 600


def stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def record(t, outcome, trigger="systemd", action="backup", **extra):
    r = dict(job="nodowntime-test-report", kind="tree_backup", action=action, host="old", trigger=trigger,
             start=stamp(t), end=stamp(t + 25), elapsed=25, outcome=outcome)
    r.update(extra)
    return json.dumps(r, sort_keys=True)


lines = []
for k in range(12):
    slot = first + k * 600
    if k == 3:
        lines.append(record(slot + 5, "failed", msg="rsync exited 23"))
    elif k == 5:
        lines.append(record(slot + 5, "skipped", msg="the previous run still held the lock"))
    elif k == 7:
        pass
    else:
        lines.append(record(slot + 5, "ok", bytes=1000))
    if k == 8:
        lines.append(record(slot + 180, "ok", trigger="manual", bytes=500))
    if k == 9:
        lines.append(record(slot + 240, "ok", action="drill", passed=True))
lines.insert(4, '{"torn line')
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
print(json.dumps(dict(since=stamp(since), until=stamp(until), first=stamp(first),
                      failed=stamp(first + 3 * 600), skipped=stamp(first + 5 * 600), missed=stamp(first + 7 * 600),
                      last_start=stamp(first + 11 * 600 + 5), last_end=stamp(first + 11 * 600 + 30),
                      drill=stamp(first + 9 * 600 + 240))))
