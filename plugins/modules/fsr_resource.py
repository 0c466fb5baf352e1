#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fsr_resource
short_description: Manage an FSR replication resource with fsradm (configuration, up/down, role, lock, verify)
version_added: 0.1.0
description:
  - Manages one FSR file-system replication resource on the node the task runs on, the way the
    FSR operations manual has operators do it with C(fsradm) by hand.
  - Configuration. When O(nodes) is given the resource's JSON configuration file
    C(<config_dir>/<name>.json) (see O(config_dir)) is written atomically (typed options validated first) and, in
    diff mode, the change is shown. FSR requires the configuration to be identical on all nodes,
    so give the same options on every node.
  - A configuration change on a resource that is up is refused unless O(reconfigure=true); the
    module then follows the manual's procedure on this node, C(fsradm disconnect) from the peers,
    write the file, C(fsradm adjust), C(fsradm connect). Run it on every node; a peer whose
    connection went to C(standalone) because the configurations differed meanwhile is reconnected
    by the next run with O(state=up).
  - State. V(up) brings the resource up with C(fsradm up) (preceded by C(fsradm meta create) on the
    first start) and reconnects peers that are C(standalone); V(down) runs C(fsradm down);
    V(absent) runs C(fsradm down) and removes the configuration file.
  - Role. O(role=primary) promotes with C(fsradm primary), O(role=secondary) demotes with
    C(fsradm secondary). A switchover is two tasks, demote on the source, then promote on the
    target. O(lock) locks on demotion (C(secondary -l)) and unlocks on promotion (C(primary -u)).
  - Safety, as the manual demands. An C(inconsistent) or C(outdated) resource is only promoted with
    O(force=true), and only while no peer is seen C(up_to_date) or primary (that is the initial
    promotion); a promotion on a node that is not C(up_to_date) (a switchover to a peer that is not
    up to date) is declined by fsradm and the module fails with fsradm's words and the state seen;
    a C(target-only) node is never promoted while connected.
  - Switchover. The manual restricts switchover and failover while the target is not up to date.
    O(role=secondary) on a primary therefore demotes only while a peer is connected, C(up_to_date),
    not synchronising and not C(target-only), a node that can be promoted next; otherwise the task
    fails, nothing is run and the resource keeps its primary. O(force=true) demotes anyway.
  - Idempotent. The module reads C(fsradm status -v all) and the configuration file first and
    plans the fsradm commands needed; a real run carries out that plan, check mode reports it.
    RV(commands) lists the commands of the plan, the diff shows the state before and after it.
  - O(verify=true) runs C(fsradm verify), waits for C(fsradm result) and returns its totals; the task
    fails when any difference is found unless O(verify_allow_differences=true).
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.fsradm
attributes:
  check_mode:
    support: full
    details:
      - Reads the status and reports the plan, the commands a real run would carry out; fails
        where fsradm is expected to decline one of them. O(wait_for) and O(verify) are skipped.
  diff_mode:
    support: full
    details:
      - Shows the configuration and the state (up/down/absent, role, locked) before and after the
        plan, in check mode and in a real run alike.
options:
  name:
    description:
      - The resource name (C(r0) in the manual). Also the name of its configuration file,
        C(<config_dir>/<name>.json).
      - Letters, digits, V(_), V(.) and V(-), starting with a letter or a digit; not V(all). A name
        such as V(../r0) or V(/etc/r0) is refused before anything is run, written or removed.
    type: str
    required: true
    aliases: [resource]
  state:
    description:
      - V(up), the resource is up (added, attached, connecting or connected to its peers).
      - V(down), the resource is down on this node; its configuration file stays.
      - V(absent), the resource is down and its configuration file removed. FSR's meta data is kept
        (the manual has no command to remove it); the next V(up) therefore is not a first start.
    type: str
    choices: [up, down, absent]
    default: up
  role:
    description:
      - The role of this node. Requires O(state=up). Omit to leave the role alone.
    type: str
    choices: [primary, secondary]
  force:
    description:
      - With O(role=primary), promote with C(fsradm primary -f) although the local file state is
        C(inconsistent) or C(outdated). Only for the initial promotion, the module refuses it while
        a peer is seen C(up_to_date) or primary. Ignored when the resource is already C(up_to_date).
      - With O(role=secondary), demote a primary although no peer is up to date and connected to
        take over. The resource then has no primary until a node is promoted, which fsradm allows
        only with O(force=true) on a node that is not up to date, with the data loss that implies.
    type: bool
    default: false
  lock:
    description:
      - File lock of the replicated files on this node. V(true) demotes with C(secondary -l) (lock,
        then demote) or runs C(fsradm lock); V(false) promotes with C(primary -u) (promote, then
        unlock) or runs C(fsradm unlock), also after a demotion that locked by C(auto_file_lock).
      - Omit to leave the lock as fsradm sets it (C(auto_file_lock) locks on demotion).
    type: bool
  wait_for:
    description:
      - After all changes, poll C(fsradm status -v) until this condition holds or O(wait_timeout)
        passes (then fail with the state seen).
      - V(connected), every peer is connected and authenticated (C(established) or a sync or
        replication state).
      - V(up_to_date), this node and every peer are C(up_to_date) and no synchronisation runs.
      - V(replicating), every peer is in C(repl_source) or C(repl_target).
    type: str
    choices: [connected, up_to_date, replicating]
  wait_timeout:
    description: Seconds to wait for O(wait_for), for the attach after C(fsradm up) and for verify.
    type: int
    default: 300
  wait_interval:
    description: Seconds between two status polls.
    type: float
    default: 1.0
  verify:
    description:
      - Run C(fsradm verify O(name) O(verify_peer)), wait until C(fsradm result) reports an end time
        and return RV(verify). Needs both nodes C(up_to_date) (fsradm declines otherwise). Does not
        count as a change.
    type: bool
    default: false
  verify_peer:
    description: The peer node to verify against, or V(all). A node name as in O(nodes[].name).
    type: str
    default: all
  verify_allow_differences:
    description: Do not fail when the verify totals show differences (diff, orphaned or missing).
    type: bool
    default: false
  reconfigure:
    description:
      - Allow changing the configuration of a resource that is up (disconnect, write, adjust,
        connect). Without it such a change fails and nothing is changed.
    type: bool
    default: false
  config_dir:
    description:
      - Directory of the resources' configuration files, C(<name>.json) each. The manual does not
        say where fsradm looks for them; this is the module's assumption, set it to where your FSR
        installation reads them.
    type: path
    default: /etc/fsr/resources
  nodes:
    description:
      - The C(nodes) section of the configuration. When omitted the configuration file is not
        managed (it must exist for O(state=up)). At least two nodes with distinct names.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The node name, as FSR identifies the node (usually the host name). Letters, digits,
            V(_), V(.) and V(-), starting with a letter or a digit.
        type: str
        required: true
      url:
        description: Replication endpoint C(host:port) of the node.
        type: str
        required: true
      files:
        description: The replicated directories on this node (C(files[].path)).
        type: list
        elements: path
        required: true
      target_only:
        description: C(target-only), the node is only ever a replication target.
        type: bool
      auto_file_lock:
        description: C(auto_file_lock), lock the files when the node is demoted (FSR default on).
        type: bool
      io_test:
        description: C(io_test), periodic disk I/O test (FSR 1.3) for disks without PnP events.
        type: dict
        suboptions:
          enable:
            description: Enable the I/O test.
            type: bool
            required: true
          period:
            description: Period, such as V(10s), V(500ms), V(1m).
            type: str
  sync_comparison_level:
    description:
      - C(options.sync.comparison_level). V(0) full sync, V(1) attributes and hash, V(2) attributes
        first, V(3) changed files only.
    type: int
    choices: [0, 1, 2, 3]
  sync_hash_type:
    description: C(options.sync.hash_type), the hash of block comparison.
    type: str
    choices: [crc32, md5, sha1, sha256, sha512]
  persist_role:
    description: C(options.persist-role) (FSR 1.2.4+), keep the role set by fsradm across restarts.
    type: bool
  archive:
    description:
      - C(options.archive), keep files deleted on the target. The manual names the feature (path
        and retention) but not the keys; C(enable), C(path), C(retention) are assumptions.
    type: dict
    suboptions:
      enable:
        description: Enable the archive of deleted files.
        type: bool
        required: true
      path:
        description: Where deleted files are kept on the target.
        type: str
      retention:
        description: How long they are kept, such as V(7d), V(12h).
        type: str
  sync_ratio:
    description: C(network.sync_ratio), replication to synchronisation bandwidth, such as V(7:3).
    type: str
  sync_min:
    description: C(network.sync_min), guaranteed synchronisation bandwidth in bytes/s, such as V(100M).
    type: str
  sync_max:
    description: C(network.sync_max), maximum synchronisation bandwidth in bytes/s, such as V(1G).
    type: str
  disk_health_period:
    description: C(disk.health.period), seconds between disk health checks.
    type: int
notes:
  - Where the manual is silent the module also assumes that fsradm reads the resource's
    configuration from C(<config_dir>/<name>.json).
  - Byte sizes are written as given (V(100M)); the manual shows them unquoted, which is not JSON,
    so they are written as JSON strings.
seealso:
  - module: nodowntime.storage.fsr_info
"""

EXAMPLES = r"""
- name: Configure r0 and bring it up (on both nodes)
  nodowntime.storage.fsr_resource:
    name: r0
    state: up
    nodes:
      - name: old
        url: 10.213.7.11:9830
        files: [/lab-shared/fsr-data/old/r0]
      - name: new
        url: 10.213.7.12:9830
        files: [/lab-shared/fsr-data/new/r0]
    sync_comparison_level: 2
    sync_hash_type: crc32
    sync_ratio: "7:3"
    sync_min: 100M
    sync_max: 1G
    wait_for: connected
    wait_timeout: 60

- name: Initial promotion of the source (fsradm refuses it without force)
  nodowntime.storage.fsr_resource:
    name: r0
    role: primary
    force: true

- name: Wait until the target is up to date
  nodowntime.storage.fsr_resource:
    name: r0
    wait_for: up_to_date
  delegate_to: new

- name: Switchover, step 1, demote the source with its files locked (refused while new is not up to date)
  nodowntime.storage.fsr_resource:
    name: r0
    role: secondary
    lock: true

- name: Switchover, step 2, promote the target and unlock its files
  nodowntime.storage.fsr_resource:
    name: r0
    role: primary
    lock: false
  delegate_to: new

- name: Verify that both copies are identical
  nodowntime.storage.fsr_resource:
    name: r0
    verify: true
  register: fsr_verify
"""

RETURN = r"""
commands:
  description:
    - The fsradm commands of the plan, in order, that change something (in check mode, that would run).
    - On failure, the commands run before it, the failed one last.
  returned: always
  type: list
  elements: str
  sample: ["fsradm meta create r0", "fsradm up r0"]
config_path:
  description: The configuration file of the resource.
  returned: always
  type: str
  sample: /etc/fsr/resources/r0.json
config:
  description: The configuration written (or that would be written); null when O(nodes) is not given.
  returned: always
  type: dict
status:
  description:
    - The resource as C(fsradm status -v) shows it after the task (before it, in check mode);
      null when the resource is not up. Keys as in M(nodowntime.storage.fsr_info).
  returned: always
  type: dict
  sample:
    name: r0
    node: old
    role: primary
    file: up_to_date
    pending: 0
    locked: false
    last_promoted: "2026-11-21T19:50:26+00:00"
    peers:
      new: {name: new, state: repl_source, peer_state: repl_target, role: secondary,
            file: up_to_date, repl_started: "2026-11-21T19:50:28+00:00", last_synced: "2026-11-21T19:50:28+00:00"}
verify:
  description:
    - The result of C(fsradm result) after O(verify=true), in the report shape that
      M(nodowntime.storage.tree_verify) returns too, so one check serves a migration with FSR and one
      with rsync and lsyncd.
  returned: when O(verify=true) and not in check mode
  type: dict
  contains:
    clean:
      description: Whether every counter of RV(verify.totals) is zero.
      type: bool
    totals:
      description: The nine counters of C(fsradm result) as integers (C(diff_*), C(missing_*), C(orphaned_*) for
        C(dir), C(file) and C(bytes)).
      type: dict
      sample: {diff_dir: 0, diff_file: 1, diff_bytes: 7, orphaned_dir: 0, orphaned_file: 0,
               orphaned_bytes: 0, missing_dir: 0, missing_file: 0, missing_bytes: 0}
    differences:
      description: The entries fsradm lists, each with C(type) (C(different), C(missing), C(orphaned)),
        C(path), C(entry) (C(dir) or C(file)), C(size) and C(differs) (C(mtime), C(size), ...).
      type: list
      elements: dict
    differences_truncated:
      description: Whether fsradm listed more entries than are returned.
      type: bool
    differs_counts:
      description: How many listed entries differ in each property (C(mtime), C(size), ...).
      type: dict
    started_at:
      description: When verify started, as fsradm reports it.
      type: str
    finished_at:
      description: When verify ended, as fsradm reports it.
      type: str
    entries_checked:
      description: Always null - fsradm does not report how many entries it compared.
      type: int
    peer_node:
      description: The peer verified against.
      type: str
    canceled:
      description: Whether fsradm canceled the check.
      type: bool
    synced_bytes:
      description: Bytes fsradm synchronised during the check.
      type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils._fsr_resource import (
    Executor, FsrResourceError, build_config, config_path, gather, plan)
from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import (
    FSRADM_ARGUMENT_SPEC, Fsradm, FsradmError, check_name, find_fsradm)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True, aliases=["resource"]),
        state=dict(type="str", choices=["up", "down", "absent"], default="up"),
        role=dict(type="str", choices=["primary", "secondary"]),
        force=dict(type="bool", default=False),
        lock=dict(type="bool"),
        wait_for=dict(type="str", choices=["connected", "up_to_date", "replicating"]),
        wait_timeout=dict(type="int", default=300),
        wait_interval=dict(type="float", default=1.0),
        verify=dict(type="bool", default=False),
        verify_peer=dict(type="str", default="all"),
        verify_allow_differences=dict(type="bool", default=False),
        reconfigure=dict(type="bool", default=False),
        config_dir=dict(type="path", default="/etc/fsr/resources"),
        nodes=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            url=dict(type="str", required=True),
            files=dict(type="list", elements="path", required=True),
            target_only=dict(type="bool"),
            auto_file_lock=dict(type="bool"),
            io_test=dict(type="dict", options=dict(
                enable=dict(type="bool", required=True),
                period=dict(type="str"),
            )),
        )),
        sync_comparison_level=dict(type="int", choices=[0, 1, 2, 3]),
        sync_hash_type=dict(type="str", choices=["crc32", "md5", "sha1", "sha256", "sha512"]),
        persist_role=dict(type="bool"),
        archive=dict(type="dict", options=dict(
            enable=dict(type="bool", required=True),
            path=dict(type="str"),
            retention=dict(type="str"),
        )),
        sync_ratio=dict(type="str"),
        sync_min=dict(type="str"),
        sync_max=dict(type="str"),
        disk_health_period=dict(type="int"),
    )
    spec.update(FSRADM_ARGUMENT_SPEC)
    return spec


def check_options(module):
    """Refuse option values that make no sense, before anything is read, run or written."""
    p = module.params
    for option, value, allow_all in (("name", p["name"], False), ("verify_peer", p["verify_peer"], True)):
        problem = check_name(option, value, allow_all=allow_all)
        if problem:
            module.fail_json(msg=problem)
    if p["state"] != "up":
        for opt in ("role", "lock", "wait_for"):
            if p[opt] is not None:
                module.fail_json(msg="%s=%s needs state=up (state is %s)" % (opt, p[opt], p["state"]))
        if p["verify"]:
            module.fail_json(msg="verify=true needs state=up (state is %s)" % p["state"])
    if p["wait_timeout"] < 0 or p["wait_interval"] <= 0:
        module.fail_json(msg="wait_timeout must be >= 0 and wait_interval > 0 (got %s and %s)"
                             % (p["wait_timeout"], p["wait_interval"]))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    check_options(module)
    facts = None
    try:
        path = config_path(p["config_dir"], p["name"])
        desired = build_config(p) if p["nodes"] is not None else None
        fsr = Fsradm(module, find_fsradm(module, p["fsradm_path"]))
        try:
            facts = gather(fsr, p["name"], path, p["state"], desired is not None)
        except FsradmError as e:
            module.fail_json(msg="fsradm status failed: %s" % e.message, rc=e.rc, stdout=e.stdout, stderr=e.stderr)
        the_plan = plan(p, facts, fsr.binary, desired)
        status, verify = Executor(module, fsr, p, path, the_plan, facts).run()
    except FsrResourceError as e:
        extra = dict(e.extra)
        extra.setdefault("commands", [])
        extra.setdefault("status", facts.res if facts else None)
        module.fail_json(msg=e.msg, **extra)

    result = dict(
        changed=the_plan.changed,
        commands=the_plan.commands,
        config_path=path,
        config=the_plan.desired_config,
        status=status,
    )
    if verify is not None:
        result["verify"] = verify
    if module._diff:
        result["diff"] = dict(before=the_plan.before, after=the_plan.after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
