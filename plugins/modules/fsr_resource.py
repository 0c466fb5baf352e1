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
  - Idempotent. The module reads C(fsradm status -v all) first and runs only the commands needed;
    RV(commands) lists what ran (in check mode, what would run).
  - O(verify=true) runs C(fsradm verify), waits for C(fsradm result) and returns its totals; the task
    fails when any difference is found unless O(verify_allow_differences=true).
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the status and reports the commands that would run; O(wait_for) and O(verify) are
        skipped in check mode.
  diff_mode:
    support: full
    details: Shows the configuration and the state (up/down/absent, role, locked) before and after.
options:
  name:
    description: The resource name (C(r0) in the manual).
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
      - Promote with C(fsradm primary -f) although the local file state is C(inconsistent) or
        C(outdated). Only for the initial promotion, the module refuses it while a peer is seen
        C(up_to_date) or primary. Ignored when the resource is already C(up_to_date).
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
    description: The peer node to verify against, or V(all).
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
        say where fsradm looks for them; this is the module's (and the test simulator's) assumption,
        set it to where your FSR installation reads them.
    type: path
    default: /etc/fsr/resources
  fsradm_path:
    description: The fsradm command, a name looked up on C(PATH) or an absolute path.
    type: str
    default: fsradm
  nodes:
    description:
      - The C(nodes) section of the configuration. When omitted the configuration file is not
        managed (it must exist for O(state=up)). At least two nodes with distinct names.
    type: list
    elements: dict
    suboptions:
      name:
        description: The node name, as FSR identifies the node (usually the host name).
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
  - >-
    Where the manual is silent the module assumes, and the simulator in C(tests/fsr_simulator)
    implements, that fsradm reads C(<config_dir>/<name>.json), prints C(done) and exits 0 on
    success, prints C(declined <name>: <reason>) and exits non-zero on refusal, answers
    C(fsradm meta check <name>) with exit 0 when meta data exists, and prints C(fsradm result)
    with an empty C(summary.end_time) while verify runs.
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

- name: Switchover, step 1, demote the source with its files locked
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
  description: The fsradm commands that changed something, in order (in check mode, that would run).
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

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils._atomic_file import write_atomically
from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import (
    FSRADM_ARGUMENT_SPEC, LINKED_STATES, Fsradm, FsradmError, describe, display_command, find_fsradm, parse_size,
    wait_until)
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import from_fsr_result
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import describe as describe_totals

_PERIOD_RE = re.compile(r"^\d+(ms|s|m|h|d)?$")
_RATIO_RE = re.compile(r"^\d+:\d+$")
_SETTLED_FILES = ("inconsistent", "consistent", "outdated", "up_to_date", "failed")


class ResourceState:
    """One method per desired state; ``self.res`` is the status as last read."""

    def __init__(self, module, fsr):
        self.module = module
        self.fsr = fsr
        self.p = module.params
        self.name = self.p["name"]
        self.check = module.check_mode
        self.config_path = os.path.join(self.p["config_dir"], "%s.json" % self.name)
        self.desired_config = build_config(module) if self.p["nodes"] is not None else None
        self.before_text, self.before_config = read_config(self.config_path)
        self.config_written = False
        self.config_removed = False
        self.res = self.read()
        self.before = self.summary(self.res, self.before_text is not None, self.before_config)
        self.verify = None
        # In check mode nothing runs; this tracks the predicted state.
        self.predicted_up = self.res is not None

    # ---- helpers
    def read(self):
        return self.fsr.resource(self.name)

    def refresh(self):
        if not self.check:
            self.res = self.read()

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, commands=self.fsr.commands, status=self.res, **extra)

    def run(self, argv):
        try:
            return self.fsr.change(argv)
        except FsradmError as e:
            self.fail_fsradm(e)

    def fail_fsradm(self, e, **extra):
        """Fail with fsradm's own words (``declined r0: not up to date``) and the state seen."""
        seen = self.read()
        self.module.fail_json(
            msg="%s failed: %s (state seen: %s)" % (display_command(e.argv), e.message, describe(seen)),
            rc=e.rc, stdout=e.stdout, stderr=e.stderr, fsradm_message=e.message, declined=e.declined,
            commands=self.fsr.commands, status=seen, **extra)

    def summary(self, res, config_exists, config):
        if res is not None:
            state = "up"
        else:
            state = "down" if config_exists else "absent"
        return {
            "state": state,
            "role": res["role"] if res else None,
            "locked": res["locked"] if res else None,
            "config": config,
        }

    def local_node_config(self):
        config = self.desired_config if self.desired_config is not None else self.before_config
        node = (self.res or {}).get("node")
        for n in (config or {}).get("nodes", []):
            if n.get("name") == node:
                return n
        return {}

    def linked_peers(self):
        return [n for n, p in ((self.res or {}).get("peers") or {}).items() if p.get("state") in LINKED_STATES
                or p.get("state") == "connected"]

    # ---- configuration
    def config_changed(self):
        return self.desired_config is not None and self.desired_config != self.before_config

    def write_config(self):
        text = json.dumps(self.desired_config, indent=2) + "\n"
        self.config_written = True
        if self.check:
            return
        directory = os.path.dirname(self.config_path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        write_atomically(self.module, self.config_path, text)

    def apply_config_up(self):
        if not self.config_changed():
            return
        if self.res is None:
            self.write_config()
            return
        if not self.p["reconfigure"]:
            self.fail("resource %s is up and its configuration %s would change; FSR requires the same "
                      "configuration on all nodes, applied with disconnect, adjust and connect. Set "
                      "reconfigure=true to do that on this node (and on every peer), or bring the resource "
                      "down first" % (self.name, self.config_path),
                      diff=dict(before=self.before_config, after=self.desired_config))
        peers = list((self.res.get("peers") or {}))
        for peer in peers:
            if self.res["peers"][peer].get("state") != "standalone":
                self.run(self.fsr.command("disconnect", self.name, peer=peer))
        self.write_config()
        self.run(self.fsr.command("adjust", self.name))
        for peer in peers:
            self.run(self.fsr.command("connect", self.name, peer=peer))
        self.refresh()

    # ---- states
    def state_up(self):
        self.apply_config_up()
        if self.res is None:
            if self.desired_config is None and self.before_text is None:
                self.fail("no configuration file %s for resource %s; give nodes (and the other "
                          "configuration options) or create the file" % (self.config_path, self.name))
            if not self.fsr.meta_exists(self.name):
                self.run(self.fsr.command("meta create", self.name))
            self.run(self.fsr.command("up", self.name))
            self.predicted_up = True
            if not self.check:
                self.wait(lambda r: r is not None and r.get("file") in _SETTLED_FILES,
                          "the attach after fsradm up to finish")
        else:
            for peer, p in sorted((self.res.get("peers") or {}).items()):
                if p.get("state") == "standalone":
                    self.run(self.fsr.command("connect", self.name, peer=peer))
            if self.fsr.commands:
                self.refresh()
        self.role_and_lock()
        if self.p["verify"] and not self.check:
            self.run_verify()
        if self.p["wait_for"] and not self.check:
            self.wait_for(self.p["wait_for"])

    def state_down(self):
        if self.res is not None:
            self.run(self.fsr.command("down", self.name))
            self.predicted_up = False
        if self.config_changed():
            self.write_config()
        self.refresh()

    def state_absent(self):
        if self.res is not None:
            self.run(self.fsr.command("down", self.name))
            self.predicted_up = False
        if self.before_text is not None:
            self.config_removed = True
            if not self.check:
                os.unlink(self.config_path)
        self.refresh()

    # ---- role and lock
    def role_and_lock(self):
        role, lock = self.p["role"], self.p["lock"]
        res = self.res or {"role": "secondary", "file": "unknown", "locked": False, "peers": {}}
        locked = res.get("locked")
        if role == "primary" and res.get("role") != "primary":
            force = self.check_promotion(res)
            unlock = lock is False and locked
            self.run(self.fsr.command("primary", self.name, force=force, unlock=unlock))
            if unlock:
                locked = False
            if lock is True and not locked:
                self.run(self.fsr.command("lock", self.name))
                locked = True
        elif role == "secondary" and res.get("role") == "primary":
            self.run(self.fsr.command("secondary", self.name, lock=lock is True))
            if self.check:
                locked = True if lock or self.local_node_config().get("auto_file_lock", True) else locked
            else:
                self.refresh()
                locked = self.res.get("locked") if self.res else locked
            if lock is False and locked:
                self.run(self.fsr.command("unlock", self.name))
        else:
            if lock is True and not locked:
                self.run(self.fsr.command("lock", self.name))
            elif lock is False and locked:
                self.run(self.fsr.command("unlock", self.name))
        self.refresh()

    def check_promotion(self, res):
        """Refuse what the manual forbids; return whether ``-f`` is needed."""
        linked = self.linked_peers()
        if self.local_node_config().get("target-only") and linked:
            self.fail("refusing to promote %s: node %s is target-only and connected to %s; a target-only "
                      "node may only be promoted after disconnecting (state seen: %s)"
                      % (self.name, res.get("node"), ", ".join(linked), describe(self.res)))
        file_state = res.get("file")
        if file_state == "up_to_date":
            return False
        if not self.p["force"]:
            if self.check and self.res is not None:
                self.fail("fsradm would decline: %s is %s, not up_to_date; force=true is only for the initial "
                          "promotion (state seen: %s)" % (self.name, file_state, describe(self.res)))
            return False  # let fsradm decline in its own words
        if self.res is not None and file_state not in ("inconsistent", "outdated"):
            self.fail("refusing force=true: %s is %s; force only promotes an inconsistent or outdated "
                      "resource (state seen: %s)" % (self.name, file_state, describe(self.res)))
        for peer, p in sorted((res.get("peers") or {}).items()):
            if p.get("file") == "up_to_date" or (p.get("role") == "primary" and p.get("state") in LINKED_STATES):
                self.fail("refusing force=true on %s: peer %s is %s (role %s), so this is not the initial "
                          "promotion; promote a node that is up_to_date instead (state seen: %s)"
                          % (self.name, peer, p.get("file"), p.get("role"), describe(self.res)))
        return True

    # ---- waiting and verify
    def wait(self, condition, what):
        def probe():
            res = self.read()
            return condition(res), res

        done, res, elapsed = wait_until(probe, self.p["wait_timeout"], self.p["wait_interval"])
        self.res = res
        if not done:
            self.fail("timed out after %ds waiting for %s of %s (state seen: %s)"
                      % (elapsed, what, self.name, describe(res)))

    def wait_for(self, what):
        self.wait(lambda r: condition_met(r, what), "%s" % what)

    def run_verify(self):
        previous = self.fsr.result(self.name)
        try:  # verify only reads the data: it is not a change
            self.fsr.query(self.fsr.command("verify", self.name, peer=self.p["verify_peer"]))
        except FsradmError as e:
            self.fail_fsradm(e)

        def probe():
            r = self.fsr.result(self.name)
            new = r is not None and (previous is None or r["start_time"] != previous["start_time"])
            return bool(new and r["finished"]), r

        done, result, elapsed = wait_until(probe, self.p["wait_timeout"], self.p["wait_interval"])
        if not done:
            self.fail("timed out after %ds waiting for fsradm verify of %s to finish" % (elapsed, self.name))
        if result["canceled"]:
            self.fail("fsradm verify of %s was canceled (state changed during the check; state seen: %s)"
                      % (self.name, describe(self.read())), verify=from_fsr_result(result))
        self.verify = from_fsr_result(result)
        if not self.verify["clean"] and not self.p["verify_allow_differences"]:
            self.fail("fsradm verify of %s against %s found differences: %s"
                      % (self.name, result["peer_node"], describe_totals(self.verify["totals"])), verify=self.verify)

    # ---- result
    def after(self):
        if self.check:
            config = self.desired_config if self.desired_config is not None else self.before_config
            exists = (self.before_text is not None or self.config_written) and not self.config_removed
            state = "up" if self.predicted_up else ("down" if exists else "absent")
            role = (self.p["role"] or self.before["role"] or "secondary") if state == "up" else None
            locked = self.before["locked"]
            if self.p["lock"] is not None and state == "up":
                locked = self.p["lock"]
            elif self.p["role"] == "secondary" and self.before["role"] == "primary":
                locked = True if self.local_node_config().get("auto_file_lock", True) else locked
            if state == "up" and locked is None:
                locked = False
            if self.config_removed:
                config = None
            return {"state": state, "role": role, "locked": locked, "config": config}
        text, config = read_config(self.config_path)
        return self.summary(self.res, text is not None, config)


def condition_met(res, what):
    if res is None:
        return False
    peers = list((res.get("peers") or {}).values())
    if not peers:
        return False
    if what == "connected":
        return all(p.get("state") in LINKED_STATES for p in peers)
    if what == "replicating":
        return all(p.get("state") in ("repl_source", "repl_target") for p in peers)
    return res.get("file") == "up_to_date" and all(
        p.get("file") == "up_to_date" and p.get("state") in LINKED_STATES and not p["state"].startswith("sync_")
        for p in peers)


def read_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None, None
    try:
        return text, json.loads(text)
    except ValueError:
        return text, {"unparsable": text}


def build_config(module):
    """The configuration dict in FSR's JSON layout, after validating the typed options."""
    p = module.params
    nodes = []
    names = []
    for i, n in enumerate(p["nodes"]):
        if n["name"] in names:
            module.fail_json(msg="nodes[%d].name=%s: node names must be unique" % (i, n["name"]))
        names.append(n["name"])
        if not n["files"]:
            module.fail_json(msg="nodes[%d].files: give at least one replicated path" % i)
        node = {"name": n["name"], "url": n["url"], "files": [{"path": f} for f in n["files"]]}
        if n["target_only"] is not None:
            node["target-only"] = n["target_only"]
        if n["auto_file_lock"] is not None:
            node["auto_file_lock"] = n["auto_file_lock"]
        if n["io_test"] is not None:
            io = {"enable": n["io_test"]["enable"]}
            period = n["io_test"].get("period")
            if period is not None:
                if not _PERIOD_RE.match(period):
                    module.fail_json(msg="nodes[%d].io_test.period=%s: expected a duration such as 10s, 500ms "
                                         "or 1m" % (i, period))
                io["period"] = period
            node["io_test"] = io
        nodes.append(node)
    if len(nodes) < 2:
        module.fail_json(msg="nodes: a replication resource needs at least two nodes, got %d" % len(nodes))
    if sum(1 for n in nodes if n.get("target-only")) == len(nodes):
        module.fail_json(msg="nodes: every node is target_only; at least one node must be able to be the source")
    config = {"nodes": nodes}

    options = {}
    sync = {}
    if p["sync_comparison_level"] is not None:
        sync["comparison_level"] = p["sync_comparison_level"]
    if p["sync_hash_type"] is not None:
        sync["hash_type"] = p["sync_hash_type"]
    if sync:
        options["sync"] = sync
    if p["persist_role"] is not None:
        options["persist-role"] = p["persist_role"]
    if p["archive"] is not None:
        archive = {"enable": p["archive"]["enable"]}
        for key in ("path", "retention"):
            if p["archive"].get(key) is not None:
                archive[key] = p["archive"][key]
        if archive.get("retention") and not _PERIOD_RE.match(archive["retention"]):
            module.fail_json(msg="archive.retention=%s: expected a duration such as 7d or 12h" % archive["retention"])
        if archive["enable"] and not archive.get("path"):
            module.fail_json(msg="archive.path: required when archive.enable is true")
        options["archive"] = archive
    if options:
        config["options"] = options

    network = {}
    if p["sync_ratio"] is not None:
        if not _RATIO_RE.match(p["sync_ratio"]) or p["sync_ratio"] in ("0:0",):
            module.fail_json(msg="sync_ratio=%s: expected replication:synchronisation such as 7:3" % p["sync_ratio"])
        network["sync_ratio"] = p["sync_ratio"]
    sizes = {}
    for key in ("sync_min", "sync_max"):
        if p[key] is not None:
            try:
                sizes[key] = parse_size(p[key])
            except ValueError:
                module.fail_json(msg="%s=%s: expected bytes/s such as 100M, 1G or 1048576" % (key, p[key]))
            network[key] = p[key].strip()
    if len(sizes) == 2 and sizes["sync_min"] > sizes["sync_max"]:
        module.fail_json(msg="sync_min=%s is more than sync_max=%s" % (p["sync_min"], p["sync_max"]))
    if network:
        config["network"] = network
    if p["disk_health_period"] is not None:
        if p["disk_health_period"] < 1:
            module.fail_json(msg="disk_health_period=%s: expected a positive number of seconds"
                                 % p["disk_health_period"])
        config["disk"] = {"health": {"period": p["disk_health_period"]}}
    return config


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


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] != "up":
        for opt in ("role", "lock", "wait_for"):
            if p[opt] is not None:
                module.fail_json(msg="%s=%s needs state=up (state is %s)" % (opt, p[opt], p["state"]))
        if p["verify"]:
            module.fail_json(msg="verify=true needs state=up (state is %s)" % p["state"])
    if p["wait_timeout"] < 0 or p["wait_interval"] <= 0:
        module.fail_json(msg="wait_timeout must be >= 0 and wait_interval > 0 (got %s and %s)"
                             % (p["wait_timeout"], p["wait_interval"]))

    fsr = Fsradm(module, find_fsradm(module, p["fsradm_path"]))
    try:
        rs = ResourceState(module, fsr)
    except FsradmError as e:
        module.fail_json(msg="fsradm status failed: %s" % e.message, rc=e.rc, stdout=e.stdout, stderr=e.stderr)
    getattr(rs, "state_%s" % p["state"])()

    after = rs.after()
    changed = bool(fsr.commands) or rs.config_written or rs.config_removed
    result = dict(
        changed=changed,
        commands=fsr.commands,
        config_path=rs.config_path,
        config=rs.desired_config,
        status=rs.res,
    )
    if rs.verify is not None:
        result["verify"] = rs.verify
    if module._diff:
        result["diff"] = dict(before=rs.before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
