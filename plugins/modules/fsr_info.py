#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fsr_info
short_description: Report the state of FSR replication resources from fsradm status -v
version_added: 0.1.0
description:
  - Reads C(fsradm status -v all) on the node the task runs on and returns, for one resource or for
    all resources that are up, the local role, file state, pending count and file lock, and per
    peer node its connection state, the peer's own connection state, role, file state and the
    times replication started and the last synchronisation ended.
  - With O(events=true) also subscribes to C(fsradm events --json) for O(events_seconds) and
    returns the events read. The manual describes C(fsradm events) as a subscription that keeps
    streaming, so the module ends it after that time (SIGTERM, and SIGKILL when it has not exited
    two seconds later); nothing is left running.
  - With O(verify_result=true) also returns the last C(fsradm verify) result from C(fsradm result), in
    the report shape of M(nodowntime.storage.tree_verify), so a gate or a report reads FSR's check and an
    rsync migration's check alike.
  - Never changes anything.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.attributes.info_module
  - nodowntime.storage.fsradm
options:
  name:
    description:
      - The resource to report. Omit to report every resource that is up on this node.
      - Letters, digits, V(_), V(.) and V(-), starting with a letter or a digit; not V(all).
    type: str
    aliases: [resource]
  events:
    description:
      - Also return RV(resources.events), read from C(fsradm events --json NAME) for each reported
        resource (all at once) during O(events_seconds).
    type: bool
    default: false
  events_seconds:
    description:
      - How long to read the event subscription of O(events=true), in seconds, before ending it.
        The task takes that much longer.
      - Events that happen during that time are returned too, so a longer time shows a state
        change in progress.
    type: float
    default: 2.0
  verify_result:
    description:
      - Also return RV(resources.verify) from C(fsradm result NAME) for each reported resource.
    type: bool
    default: false
notes:
  - A resource that is down on this node is not listed by fsradm; RV(exists) is then false.
seealso:
  - module: nodowntime.storage.fsr_resource
"""

EXAMPLES = r"""
- name: Read the state of r0
  nodowntime.storage.fsr_info:
    name: r0
  register: fsr

- name: Show the peer states
  ansible.builtin.debug:
    msg: "{{ item.key }} {{ item.value.state }} {{ item.value.file }}"
  loop: "{{ fsr.resources.r0.peers | dict2items }}"

- name: Wait until the standby has caught up
  nodowntime.storage.fsr_info:
    name: r0
  register: fsr
  until: fsr.resources.r0.peers.new.file == 'up_to_date'
  retries: 30
  delay: 2

- name: Watch the events of r0 for three seconds
  nodowntime.storage.fsr_info:
    name: r0
    events: true
    events_seconds: 3
  register: fsr_events
"""

RETURN = r"""
exists:
  description: Whether O(name) is up on this node (true when O(name) is omitted and any resource is up).
  returned: always
  type: bool
resources:
  description: The resources by name.
  returned: always
  type: dict
  contains:
    name:
      description: Resource name.
      type: str
      sample: r0
    node:
      description: This node's name as fsradm reports it.
      type: str
      sample: old
    role:
      description: Role of this node, C(primary) or C(secondary).
      type: str
    file:
      description: File state of this node (C(fileless), C(attaching), C(inconsistent), C(consistent),
        C(outdated), C(up_to_date), ...).
      type: str
    pending:
      description: Pending count fsradm reports.
      type: int
    locked:
      description: Whether the replicated files are locked on this node.
      type: bool
    last_promoted:
      description: When this node was last promoted, or null.
      type: str
    peers:
      description: Peer nodes by name.
      type: dict
      contains:
        state:
          description: This node's connection/replication state towards the peer (C(standalone),
            C(connecting), C(established), C(sync_source), C(repl_target), ...).
          type: str
        peer_state:
          description: The peer's state towards this node, C(unknown) when not connected.
          type: str
        role:
          description: The peer's role.
          type: str
        file:
          description: The peer's file state, C(unknown) when not connected.
          type: str
        last_synced:
          description: When the last synchronisation with the peer ended, or null.
          type: str
        repl_started:
          description: When replication with the peer started, or null.
          type: str
    events:
      description:
        - Events read from C(fsradm events --json) during O(events_seconds), each with C(type),
          C(timestamp) and C(data), in the order fsradm printed them.
      type: list
      elements: dict
      returned: when O(events=true)
    verify:
      description:
        - The last verify's result in the report shape of M(nodowntime.storage.tree_verify) - C(clean),
          C(totals) (the nine counters), C(differences), C(started), C(finished) (null while verify
          runs), C(peer_node), C(canceled) - or null when the resource was never verified.
      type: dict
      returned: when O(verify_result=true)
  sample:
    r0:
      name: r0
      node: old
      role: primary
      file: up_to_date
      pending: 0
      locked: false
      last_promoted: "2026-11-21T19:50:26+00:00"
      peers:
        new:
          name: new
          state: repl_source
          peer_state: repl_target
          role: secondary
          file: up_to_date
          repl_started: "2026-11-21T19:50:28+00:00"
          last_synced: "2026-11-21T19:50:28+00:00"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import (
    FSRADM_ARGUMENT_SPEC, Fsradm, FsradmError, check_name, display_command, find_fsradm)
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import from_fsr_result


def main():
    spec = dict(
        name=dict(type="str", aliases=["resource"]),
        events=dict(type="bool", default=False),
        events_seconds=dict(type="float", default=2.0),
        verify_result=dict(type="bool", default=False),
    )
    spec.update(FSRADM_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    name = module.params["name"]
    if name is not None:
        problem = check_name("name", name)
        if problem:
            module.fail_json(msg=problem)
    if not module.params["events_seconds"] > 0:
        module.fail_json(msg="events_seconds=%s: expected a number of seconds greater than 0"
                             % module.params["events_seconds"])
    fsr = Fsradm(module, find_fsradm(module, module.params["fsradm_path"]))
    try:
        resources = {r["name"]: r for r in fsr.status() if name is None or r["name"] == name}
        if module.params["events"] and resources:
            events = fsr.events(sorted(resources), module.params["events_seconds"])
            for res_name, res in resources.items():
                res["events"] = events[res_name]
        if module.params["verify_result"]:
            for res in resources.values():
                result = fsr.result(res["name"])
                res["verify"] = None if result is None else from_fsr_result(result)
    except FsradmError as e:
        module.fail_json(msg="%s failed: %s" % (display_command(e.argv), e.message),
                         rc=e.rc, stdout=e.stdout, stderr=e.stderr)
    except ValueError as e:
        module.fail_json(msg="cannot parse the JSON output of fsradm: %s" % e)
    module.exit_json(changed=False, exists=bool(resources), resources=resources)


if __name__ == "__main__":
    main()
