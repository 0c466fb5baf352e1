#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: job_report
short_description: Compliance of a scheduled transfer or backup against its schedule, from its run log
version_added: 0.1.0
description:
  - Reads the run log of a job that runs from a systemd timer or cron without Ansible (one JSON line
    per run - a transfer between sites, a tree backup, a Redis backup) and counts, over a period, the
    slots the schedule had, the runs attempted, succeeded, failed and skipped, the slots that never
    started, the compliance (slots succeeded of slots scheduled), the last success and its age, the
    restore drills and the bytes moved.
  - B(Fails) when the compliance is under O(min_compliance), with every figure in the result, so a
    monitoring play can alert on a failed task.
  - The schedule is one of O(timer), O(on_calendar) or O(cron). systemd calendars are enumerated by
    systemd itself (C(systemd-analyze calendar --base-time), in the host's local time, as the timer
    runs); cron expressions in the host's local time, to the minute.
  - A slot covers the time from its start to the next slot. The scheduled runs (C(trigger) C(systemd),
    C(cron), or none recorded) that started in it decide it - succeeded if one run was C(ok), else
    failed if one failed, else skipped (another run held the lock), else never started. The current
    slot (the next one has not begun by O(until)) is not counted yet. Runs with C(trigger) C(manual)
    or C(ansible) count in RV(runs) but in no slot.
  - B(The period never starts before the job's first recorded run) (the start of the slot it falls
    in) - a job installed yesterday has no slots missed last month. A log with no run gives no slot,
    a compliance of null, a warning, and no failure.
  - Records of logs older than the common record format (the Redis backup's C(backup-runs.jsonl),
    without C(job), C(kind) or C(action)) are runs of the job; drills are read from O(drill_path)
    (the Redis backup's C(drill-runs.jsonl), with C(passed)).
  - Never changes anything.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.attributes.info_module
options:
  path:
    description:
      - The run log on the managed host (for the Redis backup C(BACKUP_DIR/backup-runs.jsonl)).
      - A log that does not exist yet is an empty one (with a warning).
    type: path
    required: true
  drill_path:
    description:
      - A separate log of restore drills (for the Redis backup C(BACKUP_DIR/drill-runs.jsonl)); a
        drill passed when its C(passed) is true (or, without C(passed), its C(outcome) is C(ok)).
      - Without it, the records of O(path) with C(action=drill).
    type: path
  timer:
    description:
      - A systemd timer unit (C(.timer) may be left out); its C(OnCalendar=) settings (all of them) are
        read with C(systemctl show UNIT -p TimersCalendar).
      - Exactly one of O(timer), O(on_calendar) and O(cron).
    type: str
  on_calendar:
    description:
      - A systemd calendar expression, as in C(OnCalendar=) (C(*:0/10), C(*-*-* 03:15:00), C(hourly)).
    type: str
  cron:
    description:
      - A 5-field cron expression (minute hour day-of-month month day-of-week) with numbers, C(*),
        lists, ranges, steps, month and day names, or one of C(@hourly), C(@daily), C(@weekly),
        C(@monthly), C(@yearly). With both day fields restricted either may match, as in cron.
      - Slots are in the host's local time; around a change of daylight saving time they follow the
        wall clock, which cron itself may not.
    type: str
  since:
    description:
      - Start of the period, UTC (C(2026-11-30T03:15:00Z), C(2026-11-30), or epoch seconds).
      - Default O(until) less O(days). The period starts later when the first run in the log is later.
    type: str
  until:
    description: End of the period, UTC, as O(since). Default now.
    type: str
  days:
    description: Length of the period in days when O(since) is not set.
    type: float
    default: 30
  min_compliance:
    description:
      - Percent. The module fails when RV(compliance) is under this; C(0) never fails.
    type: float
    default: 99
  job:
    description:
      - Only the records of this job (their C(job) field), for a log several jobs write to. Records
        without C(job) (older logs hold one job each) always count.
    type: str
notes:
  - The module needs C(systemd-analyze) on the host for O(timer) and O(on_calendar), and C(systemctl)
    for O(timer).
  - A run that starts late (C(RandomizedDelaySec=), C(Persistent=true) catching up after the host was
    down) counts in the slot it started in, which may be a later one.
  - A run is recorded when it ends, so a run still going when its slot ended shows as never started until it ends.
seealso:
  - module: nodowntime.storage.redis_aof_backup
"""

EXAMPLES = r"""
- name: Backup compliance of the Redis backup over the last 30 days (fails under 99 %)
  nodowntime.storage.job_report:
    path: /var/backups/redis/backup-runs.jsonl
    drill_path: /var/backups/redis/drill-runs.jsonl
    timer: nodowntime-redis-aof-backup-6379
  register: redis_backup_report

- name: Transfers of the last day against their cron schedule, alert under 95 %
  nodowntime.storage.job_report:
    path: /var/log/nodowntime/transfer-www.jsonl
    cron: "*/5 * * * *"
    days: 1
    min_compliance: 95

- name: A period of its own, reported without failing
  nodowntime.storage.job_report:
    path: /var/log/nodowntime/runs.jsonl
    job: backup-www
    on_calendar: "*-*-* 03:15:00"
    since: "2026-11-01T00:00:00Z"
    until: "2026-12-01T00:00:00Z"
    min_compliance: 0
"""

RETURN = r"""
period:
  description:
    - The period counted, UTC. RV(period.since) is the later of O(since) and the start of the slot of
      the first recorded run (O(until) when the log has no run).
  returned: always
  type: dict
  contains:
    since:
      description: Start of the period.
      type: str
      sample: "2026-11-29T22:50:00Z"
    until:
      description: End of the period.
      type: str
      sample: "2026-11-30T22:50:00Z"
schedule:
  description: The schedule used (a timer's OnCalendar settings in systemd's form, joined by C(; )).
  returned: always
  type: str
  sample: "*-*-* *:00/05:00"
slots:
  description: Slots of the schedule that began and ended in the period.
  returned: always
  type: dict
  contains:
    scheduled:
      description: All of them.
      type: int
      sample: 288
    succeeded:
      description: Slots with a run that ended C(ok).
      type: int
      sample: 287
    failed:
      description: Slots whose runs all failed or skipped, at least one failed.
      type: int
      sample: 0
    skipped:
      description: Slots whose runs were all skipped (another run held the lock).
      type: int
      sample: 0
    never_started:
      description: Slots with no scheduled run.
      type: int
      sample: 1
runs:
  description: Runs recorded in the period (drills and restores not included).
  returned: always
  type: dict
  contains:
    attempted:
      description: All runs, scheduled or not.
      type: int
    succeeded:
      description: Runs that ended C(ok).
      type: int
    failed:
      description: Runs that failed (or recorded no known outcome).
      type: int
    skipped:
      description: Runs skipped because another held the lock.
      type: int
    manual:
      description: Runs started by hand or by Ansible (in the counts above, in no slot).
      type: int
compliance:
  description: Percent of RV(slots.scheduled) that succeeded, 2 decimals; null when no slot was counted.
  returned: always
  type: float
  sample: 99.65
min_compliance:
  description: O(min_compliance).
  returned: always
  type: float
  sample: 99.0
last_success:
  description:
    - The last run that ended C(ok) before O(until) (also before the period), or null.
    - C(age_seconds) counts from its end (its start when it recorded none) to O(until).
  returned: always
  type: dict
  sample: {"start": "2026-11-30T22:45:00Z", "end": "2026-11-30T22:45:41Z", "age_seconds": 259}
drills:
  description: Restore drills; C(last) is the last before O(until) (also before the period), or null.
  returned: always
  type: dict
  sample: {"passed": 1, "failed": 0, "last": {"start": "2026-11-30T04:00:12Z", "passed": true}}
bytes:
  description: Sum of C(bytes) of the runs in the period (C(size), the archive's, for a run without C(bytes)).
  returned: always
  type: int
  sample: 1073741824
bad_lines:
  description: Lines of the logs that are not JSON objects or have no valid C(start) (a torn last line).
  returned: always
  type: int
  sample: 0
records:
  description: Runs of the job in the log, of all time.
  returned: always
  type: int
  sample: 290
missed:
  description: The first 20 counted slots that did not succeed, oldest first, with their status.
  returned: always
  type: list
  elements: dict
  sample: [{"slot": "2026-11-30T13:05:00Z", "status": "never_started"}]
msg:
  description: One line a person reads; with O(until) set it names the times instead of ages.
  returned: always
  type: str
  sample: "backup-www: 287 of 288 slots succeeded (99.65%; 1 never started) in the last 1d, last success 4m ago, drills 1 passed"
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import _job_report as jr
from ansible_collections.nodowntime.storage.plugins.module_utils import _run_log


def _read_log(module, option, path):
    if not os.path.exists(path):
        module.warn("%s: %s does not exist (yet): no run recorded" % (option, path))
    try:
        return _run_log.read(path)
    except (OSError, UnicodeDecodeError) as e:
        module.fail_json(msg="%s: cannot read %s: %s" % (option, path, to_native(e)))


def report(module, p, now):
    """The result, or ReportError naming the option."""
    if p["min_compliance"] < 0 or p["min_compliance"] > 100:
        raise jr.ReportError("min_compliance", "%r is not a percent: use 0 to 100 (0 never fails)" % p["min_compliance"])
    until = jr.parse_time("until", p["until"]) if p["until"] else int(now)
    if p["since"]:
        since = jr.parse_time("since", p["since"])
    else:
        if p["days"] <= 0:
            raise jr.ReportError("days", "%r is not a length: use a number of days above 0" % p["days"])
        since = int(until - p["days"] * 86400)
    if since >= until:
        raise jr.ReportError("since", "%s is not before until %s" % (jr.stamp(since), jr.stamp(until)))

    def run(argv):
        return module.run_command(argv, environ_update=jr.C_ENV)

    if p["cron"] is not None:
        spec = jr.parse_cron(p["cron"])
        schedule = spec.expression
        slots = jr.cron_slots(spec, since, until)
    else:
        if p["timer"] is not None:
            expressions = jr.timer_calendars(p["timer"], run=run)
            option = "timer"
        else:
            expressions = [p["on_calendar"]]
            option = "on_calendar"
        schedule = "; ".join(expressions)
        slots = jr.systemd_slots(expressions, since, until, run=run, option=option)

    records, bad = _read_log(module, "path", p["path"])
    drill_records = None
    if p["drill_path"]:
        drill_records, drill_bad = _read_log(module, "drill_path", p["drill_path"])
        bad += drill_bad
    result = jr.compute(records, slots, since, until, drill_records=drill_records, job=p["job"], bad_lines=bad,
                        min_compliance=p["min_compliance"], schedule=schedule)
    name = jr.job_name(records, p["job"], p["path"])
    result["msg"] = jr.describe(result, name, relative=not p["until"])
    if not result["records"]:
        module.warn("path: %s has no run%s: no slot counted" % (p["path"], " of job %s" % p["job"] if p["job"] else ""))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            drill_path=dict(type="path"),
            timer=dict(type="str"),
            on_calendar=dict(type="str"),
            cron=dict(type="str"),
            since=dict(type="str"),
            until=dict(type="str"),
            days=dict(type="float", default=30),
            min_compliance=dict(type="float", default=99),
            job=dict(type="str"),
        ),
        mutually_exclusive=[("timer", "on_calendar", "cron")],
        required_one_of=[("timer", "on_calendar", "cron")],
        supports_check_mode=True,
    )
    try:
        result = report(module, module.params, time.time())
    except jr.ReportError as e:
        module.fail_json(msg=to_native(e))
    if jr.below_minimum(result):
        result["msg"] += " - compliance under min_compliance %s%%" % ("%g" % result["min_compliance"])
        module.fail_json(**result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
