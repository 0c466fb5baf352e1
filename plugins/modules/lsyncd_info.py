#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: lsyncd_info
short_description: Report lsyncd's queue per sync from its status file and log
version_added: 0.1.0
description:
  - Reads lsyncd's status file (the C(statusFile) setting) and returns, per sync, the number of
    pending delays (queued events), whether the sync is idle and whether its startup sync has
    finished, plus when the status file was written and how old it is.
  - Optionally reads the tail of lsyncd's log for finished startup syncs, event-queue overflows
    (which make lsyncd restart with a full resync) and errors.
  - B(A status file can be stale.) lsyncd rewrites it at most every C(statusInterval) seconds and
    not at all while idle (lsyncd issue 461), and a dead lsyncd leaves its last report behind.
    The module therefore returns RV(status_age) and computes RV(idle) only from a report that
    satisfies O(max_age) and O(newer_than). To wait for a provably empty queue, write a probe file
    into the source tree (this makes lsyncd sync it and write a new report), then run this module
    with O(newer_than) set to the probe's modification time and O(wait_for=idle); see EXAMPLES.
  - Each sync is named after its managed block in O(config) (RV(syncs[].block)).
  - Never changes anything.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.lsyncd_files
  - nodowntime.storage.attributes.info_module
options:
  log_bytes:
    description: How much of the end of the log to read.
    type: int
    default: 1048576
  max_age:
    description:
      - Seconds. A status file older than this is stale; RV(fresh) and RV(idle) are then false.
    type: float
  newer_than:
    description:
      - Epoch seconds (for example the C(stat.mtime) of a probe file). A status file written before
        this is stale; RV(fresh) and RV(idle) are then false.
    type: float
  wait_for:
    description:
      - Read the status file again every half second until this holds, for at most O(wait) seconds,
        then return as usual, with RV(condition_met) and a one-line RV(msg).
      - C(startup_done) - a fresh report (see O(newer_than)) in which every sync has finished its
        startup sync. C(idle) - RV(idle).
      - Run the module in a loop with C(loop_control.break_when) on RV(condition_met) to follow a
        long wait with one line per O(wait) seconds instead of C(until)/C(retries), which print
        every attempt as a failure; see EXAMPLES.
    type: str
    choices: [startup_done, idle]
  wait:
    description: Seconds to wait for O(wait_for) at most in one run. Ignored without O(wait_for).
    type: float
    default: 0
notes:
  - The status file format is that of lsyncd 2.2.x. lsyncd 2.2.3 names syncs C(Sync1), C(Sync2), ...
    in the order of the C(sync{}) calls; managed blocks are matched to them by their resolved
    C(source) and order.
seealso:
  - module: nodowntime.storage.lsyncd_conf
"""

EXAMPLES = r"""
- name: Read the queue
  nodowntime.storage.lsyncd_info:
    status_file: /var/log/lsyncd/lsyncd.status
  register: lsyncd

- name: Probe the source tree so lsyncd syncs and reports again
  ansible.builtin.copy:
    content: "{{ now(utc=true).isoformat() }}\n"
    dest: /srv/media/.nodowntime-probe
    mode: "0644"

- name: Find when the probe was written
  ansible.builtin.stat:
    path: /srv/media/.nodowntime-probe
  register: probe

- name: Wait for a report written after the probe that shows every queue empty (a line every 30 s)
  nodowntime.storage.lsyncd_info:
    newer_than: "{{ probe.stat.mtime }}"
    wait_for: idle
    wait: 30
  register: lsyncd
  loop: "{{ range(20) | list }}"
  loop_control:
    label: "{{ lsyncd.msg | default('') }}"
    break_when: lsyncd.condition_met
"""

RETURN = r"""
status_file:
  description: The status file read.
  returned: always
  type: str
  sample: /var/log/lsyncd/lsyncd.status
exists:
  description: Whether the status file exists. When false, RV(idle) and RV(fresh) are false.
  returned: always
  type: bool
status_mtime:
  description: Modification time of the status file (epoch seconds), i.e. when lsyncd wrote it.
  returned: when RV(exists)
  type: float
  sample: 1795291701.04
status_age:
  description: Seconds since the status file was written.
  returned: when RV(exists)
  type: float
  sample: 0.8
report_time:
  description: The time in the report's first line, as lsyncd wrote it (local time).
  returned: when RV(exists)
  type: str
  sample: Sat Nov 21 19:48:21 2026
fresh:
  description: Whether the report satisfies O(max_age) and O(newer_than) (true when neither is set).
  returned: always
  type: bool
idle:
  description:
    - True when the report is fresh, lists at least one sync, and every sync has no pending delay
      and has finished its startup sync.
  returned: always
  type: bool
pending:
  description: Total delays over all syncs.
  returned: always
  type: int
watches:
  description: Directories lsyncd watches with inotify (one watch each, see C(fs.inotify.max_user_watches)).
  returned: when RV(exists)
  type: int
syncs:
  description: One entry per sync in the report, in lsyncd's order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: lsyncd's name of the sync (C(Sync1) ...).
      type: str
    block:
      description: Name of the M(nodowntime.storage.lsyncd_conf) block this sync comes from, or null.
      type: str
    source:
      description: The watched directory as lsyncd reports it (resolved, with a trailing slash).
      type: str
    delays:
      description: Pending delays (queued or running events), lsyncd's own count.
      type: int
    waiting:
      description: Delays waiting for their C(delay) to pass.
      type: int
    active:
      description: Delays being synced right now.
      type: int
    blocked:
      description: Delays blocked behind another delay on the same path.
      type: int
    startup_done:
      description: False while the startup sync (lsyncd's C(Init) delay) is queued or running.
      type: bool
    startup_logged:
      description: Whether the log shows this source's startup sync finished since lsyncd last started.
      type: bool
      returned: when the log was read
    idle:
      description: No delays and startup done (in this report; see RV(fresh)).
      type: bool
condition_met:
  description: Whether O(wait_for) held when the module returned.
  returned: when O(wait_for) is set
  type: bool
msg:
  description: One line on the wait - caught up (or queue empty), or what lsyncd is still doing and for how long.
  returned: when O(wait_for) is set
  type: str
  sample: "lsyncd: startup sync running (0 of 1 syncs done), 12 event(s) queued (1m30s waited)"
log:
  description: Summary of the end of the log since lsyncd last started.
  returned: when a log file was found
  type: dict
  contains:
    file:
      description: The log file read.
      type: str
    startups:
      description: C(--- Startup ---) lines in the part read.
      type: int
    overflows:
      description: Event-queue overflows in the part read (each forces a full resync).
      type: int
    overflows_since_start:
      description: Overflows since the last startup.
      type: int
    started_sources:
      description: Sources whose startup sync finished since the last startup.
      type: list
      elements: str
    errors:
      description: The last error lines since the last startup.
      type: list
      elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils._lsyncd import (
    ConfigFileError,
    LsyncdFilesError,
    lsyncd_files,
    managed_sources,
    parse_log,
    parse_status,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._lua import LuaRenderError


def _read_text(path, tail=None):
    with open(path, "rb") as f:
        if tail:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - tail))
        data = f.read()
    return data.decode("utf-8", "replace")


def _reported_source(source):
    """lsyncd reports a source resolved, with one trailing slash."""
    resolved = os.path.realpath(source)
    return resolved if resolved.endswith("/") else resolved + "/"


def assign_blocks(syncs, managed):
    """Set ``block`` on each reported sync from ``managed`` ``[(name, source)]`` (file order)."""
    queues = {}
    for name, source in managed:
        if source:
            queues.setdefault(_reported_source(source), []).append(name)
    for sync in syncs:
        names = queues.get(sync["source"])
        sync["block"] = names.pop(0) if names else None


def read_status(module, status_file, managed, max_age=None, newer_than=None):
    """The result's status part: per sync queue, idle, fresh (see RETURN)."""
    result = dict(changed=False, status_file=status_file, exists=False, fresh=False, idle=False,
                  pending=0, syncs=[])
    try:
        st = os.stat(status_file)
        text = _read_text(status_file)
    except FileNotFoundError:
        return result
    except OSError as e:
        module.fail_json(msg="status_file: cannot read %s: %s" % (status_file, to_native(e)), **result)
    now = time.time()
    report = parse_status(text)
    age = max(0.0, now - st.st_mtime)
    fresh = True
    if max_age is not None and age > max_age:
        fresh = False
    if newer_than is not None and st.st_mtime < newer_than:
        fresh = False
    syncs = report["syncs"]
    assign_blocks(syncs, managed)
    result.update(
        exists=True,
        status_mtime=st.st_mtime,
        status_age=round(age, 3),
        report_time=report["report_time"],
        watches=report["watches"],
        fresh=fresh,
        syncs=syncs,
        pending=sum(s["delays"] for s in syncs),
        idle=bool(fresh and syncs and all(s["idle"] for s in syncs)),
    )
    if report["report_time"] is None:
        module.warn("%s does not start with 'Lsyncd status report at'; is it lsyncd's status file?" % status_file)
    return result


def condition_met(result, wait_for):
    """Whether the state ``wait_for`` names holds in ``result``."""
    if wait_for == "idle":
        return result["idle"]
    return bool(result["fresh"] and result["syncs"] and all(s["startup_done"] for s in result["syncs"]))


def describe_wait(result, wait_for, waited):
    """One line for a person following the wait."""
    if not result["exists"]:
        state = "no status report yet"
    elif not result["fresh"]:
        state = "waiting for a new status report (the last is %ss old)" % int(result["status_age"])
    else:
        syncs = result["syncs"]
        starting = [s for s in syncs if not s["startup_done"]]
        state = ""
        if starting:
            state = "startup sync running (%d of %d syncs done), " % (len(syncs) - len(starting), len(syncs))
        state += "%d event(s) queued" % result["pending"]
    done = condition_met(result, wait_for)
    what = "caught up" if wait_for == "startup_done" else "queue empty"
    return "lsyncd: %s%s" % ("%s; " % what if done else "", state) + ("" if done else " (%s waited)" % _seconds(waited))


def _seconds(value):
    value = int(value)
    return "%ds" % value if value < 60 else "%dm%02ds" % divmod(value, 60)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="path", default="/etc/lsyncd/lsyncd.conf.lua"),
            status_file=dict(type="path"),
            log_file=dict(type="path"),
            log_bytes=dict(type="int", default=1048576),
            max_age=dict(type="float"),
            newer_than=dict(type="float"),
            wait_for=dict(type="str", choices=["startup_done", "idle"]),
            wait=dict(type="float", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        status_file, log_file, config_text = lsyncd_files(p["config"], p["status_file"], p["log_file"])
        managed = managed_sources(config_text) if config_text is not None else []
    except (LsyncdFilesError, ConfigFileError, LuaRenderError) as e:
        msg = to_native(e)
        module.fail_json(msg=msg if isinstance(e, LsyncdFilesError) else "config: cannot read %s: %s" % (p["config"], msg))
    if p["max_age"] is not None and p["max_age"] < 0:
        module.fail_json(msg="max_age: must be >= 0, got %r" % p["max_age"])
    if p["wait"] < 0:
        module.fail_json(msg="wait: must be >= 0, got %r" % p["wait"])

    deadline = time.time() + p["wait"]
    started = time.time()
    while True:
        result = read_status(module, status_file, managed, p["max_age"], p["newer_than"])
        if not p["wait_for"] or condition_met(result, p["wait_for"]) or time.time() >= deadline:
            break
        time.sleep(max(0.0, min(0.5, deadline - time.time())))
    if p["wait_for"]:
        result["condition_met"] = condition_met(result, p["wait_for"])
        result["msg"] = describe_wait(result, p["wait_for"], time.time() - started)

    if log_file and os.path.isfile(log_file):
        try:
            summary = parse_log(_read_text(log_file, tail=p["log_bytes"]))
        except OSError as e:
            module.fail_json(msg="log_file: cannot read %s: %s" % (log_file, to_native(e)), **result)
        summary["file"] = log_file
        result["log"] = summary
        for sync in result["syncs"]:
            sync["startup_logged"] = sync["source"] in summary["started_sources"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
