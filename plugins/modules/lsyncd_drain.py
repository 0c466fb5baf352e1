#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: lsyncd_drain
short_description: Wait until lsyncd has shipped everything written to a source, in seconds
version_added: 0.1.0
description:
  - The drain of a cutover. Once the applications on the clients have been stopped, and before
    the clients are switched to the new server, everything they wrote to the old server must have
    been shipped by lsyncd to the new server. This module proves it for one lsyncd sync
    (O(source) -> O(target)) without rescanning the tree, so it takes about lsyncd's C(delay)
    plus one transfer, however large the tree is.
  - B(How.) It writes a marker - a hidden file C(.nodowntime-drain-<random hex>) with content
    unique to the run - into O(source); polls every O(interval) seconds until the marker is on
    O(target) with identical content (lsyncd reads events in order, so it has then read every
    event before the marker); then polls lsyncd's status file until a report written after the
    marker shows no pending delay for the sync (what lsyncd had queued, including the transfer
    that carried the marker, has finished). lsyncd 2.2.3 does not rewrite its status file while
    idle; the marker's event makes it write one.
  - B(Nothing of the module stays.) Whatever happens - drained, timeout or error - the marker is
    removed from O(source) and, when it had arrived, from O(target) with
    C(rsync --recursive --delete --times --include=/NAME --exclude=* SOURCE/ TARGET/) (only the
    marker's name takes part; C(--times) gives the target's top directory the source's
    modification time again). A sync that deletes while running also ships the deletion
    itself; both are harmless. C(changed) is therefore always false.
  - B(The writers must be stopped.) While something keeps writing to O(source), the queue may
    never be empty and the module times out; to measure lag on a live tree set
    O(empty_queue=false).
  - On a timeout the task fails with a message that starts with C(timeout:) and says what was
    still missing - the marker had not arrived, or the queue still held N delays - and when
    lsyncd did not rewrite its status file after the marker, that lsyncd is probably not running.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.lsyncd_files
attributes:
  check_mode:
    support: partial
    details:
      - In check mode nothing is written and nothing is waited for; the module checks its options
        and returns RV(drained=false) with a RV(msg) saying that check mode did not drain.
  diff_mode:
    support: N/A
    details: The module leaves nothing changed.
options:
  source:
    description:
      - The source directory of the sync, as in its lsyncd configuration (symlinks are resolved,
        as lsyncd resolves them). The marker is written here.
      - The sync must not exclude the marker's name (C(.nodowntime-drain-*)), or it never arrives.
    type: path
    required: true
  target:
    description:
      - The target of the sync, in rsync syntax - C(host::module[/dir]) or
        C(rsync://host[:port]/module[/dir]) for an rsync daemon, C([user@]host:/dir) over a remote
        shell, or an absolute local directory. The module checks it and removes the marker from it
        with rsync from this host, so this host needs the same access lsyncd has.
    type: str
    required: true
  password_file:
    description: A file holding the password of a daemon module with C(auth users) (rsync's C(--password-file)).
    type: path
  rsh:
    description: The remote shell for a C(host:/dir) target, for example C(ssh -o BatchMode=yes).
    type: str
  timeout:
    description:
      - Seconds to wait in all for the marker and the empty queue. Allow for the sync's C(delay)
        (lsyncd's default is 15 seconds), one transfer and C(statusInterval).
    type: float
    default: 30
  interval:
    description: Seconds between two polls of the target and of the status file.
    type: float
    default: 0.2
  wait:
    description:
      - V(false) only writes the marker and returns its name in RV(marker) at once, so the wait can
        overlap with other work (lsyncd ships while the play goes on); a later run with O(marker)
        set to that name does the waiting and removes the marker. The marker stays in O(source)
        until then, so the later run must follow (also when the play fails in between).
    type: bool
    default: true
  marker:
    description:
      - The name of a marker written by an earlier run with O(wait=false). The module waits for
        that marker instead of writing a new one; its modification time is when the drain began.
    type: str
  empty_queue:
    description:
      - V(false) waits only for the marker to arrive, not for lsyncd's report of an empty queue.
        lsyncd reads events in order, so everything written before the marker has been taken up;
        what is written after it may still be queued. The writers need not stop, and
        RV(marker_seconds) is then the replication lag of one write - the C(lsyncd) role measures
        it this way after lsyncd has caught up.
    type: bool
    default: true
  overflows_before:
    description:
      - lsyncd's overflow count recorded earlier, for example RV(nodowntime.storage.lsyncd_info#module:log.overflows).
        RV(overflow_moved) then says whether the event queue overflowed since (an overflow makes
        lsyncd restart with a full resync).
    type: int
notes:
  - The status file format is that of lsyncd 2.2.x. When several syncs share O(source) (one source,
    several targets), all of them must have an empty queue.
  - The overflow count is taken from the last MiB of the log, as M(nodowntime.storage.lsyncd_info)
    reads it by default, so the two compare.
seealso:
  - module: nodowntime.storage.lsyncd_info
  - module: nodowntime.storage.lsyncd_conf
"""

EXAMPLES = r"""
- name: Record lsyncd's overflow count before the cutover
  nodowntime.storage.lsyncd_info:
  register: lsyncd_before

- name: Drain lsyncd once the applications have stopped writing
  nodowntime.storage.lsyncd_drain:
    source: /srv/data
    target: nodowntime@10.213.7.12::data
    password_file: /etc/nodowntime/rsync-data.password
    timeout: 30
    overflows_before: "{{ lsyncd_before.log.overflows | default(omit) }}"
  register: drain

- name: Stop when the queue overflowed in the meantime (a full resync is running)
  ansible.builtin.assert:
    that:
      - not drain.overflow_moved
    fail_msg: "lsyncd's event queue overflowed ({{ drain.overflows }} overflows); wait for its resync"

- name: Drain a sync to a directory over ssh
  nodowntime.storage.lsyncd_drain:
    config: /etc/lsyncd/lsyncd.conf.lua
    source: /srv/media
    target: root@10.213.7.12:/srv/media
    rsh: ssh -o BatchMode=yes

- name: Write the marker right after the writers stopped, and go on at once
  nodowntime.storage.lsyncd_drain:
    source: /srv/data
    target: nodowntime@10.213.7.12::data
    password_file: /etc/nodowntime/rsync-data.password
    wait: false
  register: drain_started

# ... other steps of the switch run here while lsyncd ships ...

- name: Wait for that marker (usually there by now), then remove it
  nodowntime.storage.lsyncd_drain:
    source: /srv/data
    target: nodowntime@10.213.7.12::data
    password_file: /etc/nodowntime/rsync-data.password
    marker: "{{ drain_started.marker }}"
"""

RETURN = r"""
drained:
  description:
    - True when the marker arrived on the target with identical content and a status report
      written after it showed no pending delay for the sync (with O(empty_queue=false), when the
      marker arrived). Always false in check mode.
  returned: always
  type: bool
  sample: true
seconds:
  description: Seconds the drain took in all, the marker's removal included (0 in check mode).
  returned: always
  type: float
  sample: 1.73
marker_seconds:
  description: Seconds until the marker had arrived on the target; null when it did not arrive.
  returned: always
  type: float
  sample: 1.42
pending:
  description:
    - Pending delays (lsyncd's queue) of the sync in the last report written after the marker;
      null when there was none.
  returned: always
  type: int
  sample: 0
lsyncd_running:
  description:
    - Whether lsyncd rewrote its status file after the marker was written (null in check mode).
  returned: always
  type: bool
  sample: true
overflows:
  description: Event-queue overflows in the end of lsyncd's log; null when there is no log.
  returned: always
  type: int
  sample: 0
overflow_moved:
  description: Whether RV(overflows) is greater than O(overflows_before) (false when that is not given).
  returned: always
  type: bool
  sample: false
marker:
  description:
    - Name of the marker file used - already removed, except after O(wait=false), when it is in
      O(source) until a run with O(marker) set to it waits for it; null in check mode.
  returned: always
  type: str
  sample: .nodowntime-drain-5f0c2a9e81d44b17
status_file:
  description: The status file read.
  returned: always
  type: str
  sample: /var/log/lsyncd/lsyncd.status
msg:
  description: In check mode, that nothing was drained.
  returned: in check mode
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd_drain
from ansible_collections.nodowntime.storage.plugins.module_utils._lsyncd import (
    LsyncdConfigError,
    LsyncdFilesError,
    check_target,
    lsyncd_files,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._rsync import connection_options, dest_is_daemon


def _files(module):
    """status_file and log_file from the options or the managed settings block of config."""
    p = module.params
    try:
        status_file, log_file, dummy = lsyncd_files(p["config"], p["status_file"], p["log_file"])
    except LsyncdFilesError as e:
        module.fail_json(msg=to_native(e))
    return status_file, log_file


def _check(module):
    p = module.params
    if not os.path.isdir(p["source"]):
        module.fail_json(msg="source: %s is not a directory; give the source directory of the lsyncd sync" % p["source"])
    try:
        check_target("rsync", p["target"])
    except LsyncdConfigError as e:
        module.fail_json(msg=to_native(e))
    daemon = dest_is_daemon(p["target"])
    if p["password_file"] and not daemon:
        module.fail_json(msg="password_file: only an rsync daemon target (host::module) takes a password, target is %s"
                             % p["target"])
    if p["password_file"] and not os.access(p["password_file"], os.R_OK):
        module.fail_json(msg="password_file: %s cannot be read" % p["password_file"])
    if p["rsh"] and (daemon or p["target"].startswith("/")):
        module.fail_json(msg="rsh: only a host:/dir target goes over a remote shell, target is %s" % p["target"])
    if not p["timeout"] > 0:
        module.fail_json(msg="timeout: must be more than 0 seconds, got %s" % p["timeout"])
    if not p["interval"] > 0:
        module.fail_json(msg="interval: must be more than 0 seconds, got %s" % p["interval"])
    return daemon


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="path", default="/etc/lsyncd/lsyncd.conf.lua"),
            status_file=dict(type="path"),
            log_file=dict(type="path"),
            source=dict(type="path", required=True),
            target=dict(type="str", required=True),
            password_file=dict(type="path", no_log=False),
            rsh=dict(type="str"),
            timeout=dict(type="float", default=30),
            interval=dict(type="float", default=0.2),
            overflows_before=dict(type="int"),
            wait=dict(type="bool", default=True),
            marker=dict(type="str"),
            empty_queue=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["marker"] is not None and not p["wait"]:
        module.fail_json(msg="marker: a run with wait=false writes a new marker; marker names one to wait for - give one or the other")
    daemon = _check(module)
    status_file, log_file = _files(module)
    if module.check_mode:
        overflows = _lsyncd_drain.read_overflows(log_file)
        module.exit_json(
            changed=False, drained=False, seconds=0.0, marker_seconds=None, pending=None, lsyncd_running=None,
            overflows=overflows, marker=None, status_file=status_file,
            overflow_moved=bool(p["overflows_before"] is not None and overflows is not None
                                and overflows > p["overflows_before"]),
            msg="check mode: no marker written, nothing drained")
    try:
        drain = _lsyncd_drain.Drain(
            source=p["source"], target=p["target"], status_file=status_file, log_file=log_file,
            connection=connection_options(p["password_file"], p["rsh"], io_timeout=max(1, int(p["timeout"])),
                                          connect_timeout=max(1, int(p["timeout"])), daemon=daemon),
            rsync=module.get_bin_path("rsync", required=True),
            timeout=p["timeout"], interval=p["interval"], overflows_before=p["overflows_before"],
            marker=p["marker"], empty_queue=p["empty_queue"])
        result = drain.run() if p["wait"] else drain.write_marker()
    except _lsyncd_drain.DrainError as e:
        module.fail_json(msg=to_native(e), status_file=status_file, **e.result)
    except OSError as e:
        module.fail_json(msg="source: cannot write or remove the marker in %s: %s" % (p["source"], to_native(e)),
                         changed=False, drained=False, status_file=status_file)
    result["status_file"] = status_file
    module.exit_json(**result)


if __name__ == "__main__":
    main()
