# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan and carry out what ``nodowntime.storage.fsr_resource`` does to one FSR resource.

Three steps, so that check mode, diff mode and the real run cannot disagree:

* ``gather`` reads what is there: ``fsradm status -v all``, the configuration file and, before a
  first start, ``fsradm meta check``;
* ``plan`` is a pure function of the options and those facts. It returns a ``Plan``: the steps
  in order (fsradm command lines, writing or removing the configuration file, waiting for the
  attach after ``fsradm up``), the state before and the state after them (for diff mode). It
  refuses, with ``FsrResourceError``, what the manual forbids; a command fsradm is expected to
  decline carries that reason (check mode then fails with it, a real run lets fsradm say it);
* ``Executor`` runs the plan's steps (a real run) or only reports them (check mode), then, in a
  real run, verifies and waits as asked.

``build_config`` turns the typed options into FSR's JSON configuration, validating them first.
"""
from __future__ import annotations

import json
import os
import re
import tempfile

from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import (
    LINKED_STATES, FsradmError, build_command, check_name, describe, display_command, parse_size, wait_until)
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import from_fsr_result
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import describe as describe_totals

_PERIOD_RE = re.compile(r"^\d+(ms|s|m|h|d)?$")
_RATIO_RE = re.compile(r"^\d+:\d+$")
# File states in which an attach has finished (successfully or not).
SETTLED_FILES = ("inconsistent", "consistent", "outdated", "up_to_date", "failed")

COMMAND = "command"
WRITE_CONFIG = "write_config"
REMOVE_CONFIG = "remove_config"
WAIT_ATTACHED = "wait_attached"


class FsrResourceError(Exception):
    """A refusal or failure; ``msg`` for the user, ``extra`` for the module's result."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


# --------------------------------------------------------------------------- configuration

def config_path(config_dir, name):
    """``<config_dir>/<name>.json``; ``name`` must have passed ``check_name``."""
    problem = check_name("name", name)
    if problem:
        raise FsrResourceError(problem)
    return os.path.join(config_dir, "%s.json" % name)


def read_config(path):
    """(text, parsed) of the configuration file, (None, None) when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None, None
    try:
        return text, json.loads(text)
    except ValueError:
        return text, {"unparsable": text}


def config_text(config):
    return json.dumps(config, indent=2) + "\n"


def write_config(module, path, text):
    """Write ``text`` to a temporary file next to ``path``, then ``module.atomic_move`` it there."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_config(p):
    """The configuration dict in FSR's JSON layout, after validating the typed options."""
    nodes = []
    names = []
    for i, n in enumerate(p["nodes"]):
        problem = check_name("nodes[%d].name" % i, n["name"])
        if problem:
            raise FsrResourceError(problem)
        if n["name"] in names:
            raise FsrResourceError("nodes[%d].name=%s: node names must be unique" % (i, n["name"]))
        names.append(n["name"])
        if not n["files"]:
            raise FsrResourceError("nodes[%d].files: give at least one replicated path" % i)
        node = {"name": n["name"], "url": n["url"], "files": [{"path": f} for f in n["files"]]}
        if n.get("target_only") is not None:
            node["target-only"] = n["target_only"]
        if n.get("auto_file_lock") is not None:
            node["auto_file_lock"] = n["auto_file_lock"]
        if n.get("io_test") is not None:
            io = {"enable": n["io_test"]["enable"]}
            period = n["io_test"].get("period")
            if period is not None:
                if not _PERIOD_RE.match(period):
                    raise FsrResourceError("nodes[%d].io_test.period=%s: expected a duration such as 10s, 500ms "
                                           "or 1m" % (i, period))
                io["period"] = period
            node["io_test"] = io
        nodes.append(node)
    if len(nodes) < 2:
        raise FsrResourceError("nodes: a replication resource needs at least two nodes, got %d" % len(nodes))
    if sum(1 for n in nodes if n.get("target-only")) == len(nodes):
        raise FsrResourceError("nodes: every node is target_only; at least one node must be able to be the source")
    config = {"nodes": nodes}

    options = {}
    sync = {}
    if p.get("sync_comparison_level") is not None:
        sync["comparison_level"] = p["sync_comparison_level"]
    if p.get("sync_hash_type") is not None:
        sync["hash_type"] = p["sync_hash_type"]
    if sync:
        options["sync"] = sync
    if p.get("persist_role") is not None:
        options["persist-role"] = p["persist_role"]
    if p.get("archive") is not None:
        archive = {"enable": p["archive"]["enable"]}
        for key in ("path", "retention"):
            if p["archive"].get(key) is not None:
                archive[key] = p["archive"][key]
        if archive.get("retention") and not _PERIOD_RE.match(archive["retention"]):
            raise FsrResourceError("archive.retention=%s: expected a duration such as 7d or 12h"
                                   % archive["retention"])
        if archive["enable"] and not archive.get("path"):
            raise FsrResourceError("archive.path: required when archive.enable is true")
        options["archive"] = archive
    if options:
        config["options"] = options

    network = {}
    if p.get("sync_ratio") is not None:
        if not _RATIO_RE.match(p["sync_ratio"]) or p["sync_ratio"] == "0:0":
            raise FsrResourceError("sync_ratio=%s: expected replication:synchronisation such as 7:3" % p["sync_ratio"])
        network["sync_ratio"] = p["sync_ratio"]
    sizes = {}
    for key in ("sync_min", "sync_max"):
        if p.get(key) is not None:
            try:
                sizes[key] = parse_size(p[key])
            except ValueError:
                raise FsrResourceError("%s=%s: expected bytes/s such as 100M, 1G or 1048576" % (key, p[key]))
            network[key] = p[key].strip()
    if len(sizes) == 2 and sizes["sync_min"] > sizes["sync_max"]:
        raise FsrResourceError("sync_min=%s is more than sync_max=%s" % (p["sync_min"], p["sync_max"]))
    if network:
        config["network"] = network
    if p.get("disk_health_period") is not None:
        if p["disk_health_period"] < 1:
            raise FsrResourceError("disk_health_period=%s: expected a positive number of seconds"
                                   % p["disk_health_period"])
        config["disk"] = {"health": {"period": p["disk_health_period"]}}
    return config


# --------------------------------------------------------------------------- facts

class Facts:
    """What is there before the task: status, configuration file, meta data."""

    def __init__(self, res, config_text=None, config=None, meta_exists=None):
        self.res = res                    # this resource in ``fsradm status -v all``, None when not up
        self.config_text = config_text    # the configuration file, None when there is none
        self.config = config
        self.meta_exists = meta_exists    # ``fsradm meta check``; only asked before a first start


def gather(fsr, name, path, state, wants_config):
    """Read the facts ``plan`` needs, running only read-only fsradm commands."""
    text, config = read_config(path)
    res = fsr.resource(name)
    meta = None
    if res is None and state == "up" and (text is not None or wants_config):
        meta = fsr.meta_exists(name)
    return Facts(res, text, config, meta)


# --------------------------------------------------------------------------- plan

class Step:
    """One step of a plan: an fsradm command, a configuration file change, or a wait."""

    def __init__(self, kind, argv=None, text=None, declines=None):
        self.kind = kind
        self.argv = argv
        self.text = text            # WRITE_CONFIG: the file's new content
        self.declines = declines    # COMMAND: why fsradm is expected to decline it, or None

    @property
    def changes(self):
        return self.kind in (COMMAND, WRITE_CONFIG, REMOVE_CONFIG)

    def __repr__(self):
        return "Step(%s, %s)" % (self.kind, display_command(self.argv) if self.argv else "")


class Plan:
    def __init__(self, steps, before, after, desired_config):
        self.steps = steps
        self.before = before
        self.after = after
        self.desired_config = desired_config

    @property
    def commands(self):
        """The fsradm command lines of the plan, as shown to the user."""
        return [display_command(s.argv) for s in self.steps if s.kind == COMMAND]

    @property
    def changed(self):
        return any(s.changes for s in self.steps)


def summary(up, config_exists, config, role=None, locked=None):
    """The state diff mode shows: up/down/absent, role, lock, configuration."""
    if up:
        state = "up"
    else:
        state = "down" if config_exists else "absent"
    return {"state": state, "role": role if up else None, "locked": locked if up else None,
            "config": config if config_exists else None}


def linked(peer):
    return peer.get("state") in LINKED_STATES or peer.get("state") == "connected"


def plan(params, facts, binary, desired_config=None):
    """The steps that take the resource from ``facts`` to what ``params`` ask, and the state after."""
    return _Planner(params, facts, binary, desired_config).plan()


class _Planner:
    """One method per desired state; ``self.m`` models the resource as the planned steps leave it."""

    def __init__(self, params, facts, binary, desired_config):
        self.p = params
        self.name = params["name"]
        self.facts = facts
        self.binary = binary
        self.desired = desired_config
        self.steps = []
        res = facts.res
        self.m = {
            "up": res is not None,
            "node": res.get("node") if res else None,
            "role": res.get("role") if res else None,
            "file": res.get("file") if res else None,
            "locked": res.get("locked") if res else None,
            "peers": {n: dict(p) for n, p in ((res or {}).get("peers") or {}).items()},
            "config_exists": facts.config_text is not None,
            "config": facts.config,
        }

    # ---- helpers
    def command(self, action, declines=None, **kwargs):
        self.steps.append(Step(COMMAND, build_command(self.binary, action, self.name, **kwargs), declines=declines))

    def refuse(self, msg, **extra):
        raise FsrResourceError("%s (state seen: %s)" % (msg, describe(self.facts.res)), **extra)

    def config(self):
        return self.desired if self.desired is not None else self.m["config"]

    def node_config(self, node):
        for n in (self.config() or {}).get("nodes", []):
            if n.get("name") == node:
                return n
        return {}

    def config_changed(self):
        return self.desired is not None and self.desired != self.facts.config

    def write_config(self):
        self.steps.append(Step(WRITE_CONFIG, text=config_text(self.desired)))
        self.m["config_exists"] = True
        self.m["config"] = self.desired

    def plan(self):
        getattr(self, "state_%s" % self.p["state"])()
        m = self.m
        before = summary(self.facts.res is not None, self.facts.config_text is not None, self.facts.config,
                         (self.facts.res or {}).get("role"), (self.facts.res or {}).get("locked"))
        after = summary(m["up"], m["config_exists"], m["config"], m["role"] or "secondary",
                        bool(m["locked"]))
        return Plan(self.steps, before, after, self.desired)

    # ---- states
    def state_up(self):
        m = self.m
        if self.config_changed():
            if not m["up"]:
                self.write_config()
            elif not self.p.get("reconfigure"):
                self.refuse("resource %s is up and its configuration would change; FSR requires the same "
                            "configuration on all nodes, applied with disconnect, adjust and connect. Set "
                            "reconfigure=true to do that on this node (and on every peer), or bring the resource "
                            "down first" % self.name,
                            diff=dict(before=self.facts.config, after=self.desired))
            else:
                peers = sorted(m["peers"])
                for peer in peers:
                    if m["peers"][peer].get("state") != "standalone":
                        self.command("disconnect", peer=peer)
                        m["peers"][peer]["state"] = "standalone"
                self.write_config()
                self.command("adjust")
                for peer in peers:
                    self.command("connect", peer=peer)
                    m["peers"][peer]["state"] = "connecting"
        if not m["up"]:
            if not m["config_exists"]:
                raise FsrResourceError("no configuration file for resource %s; give nodes (and the other "
                                       "configuration options) or create the file" % self.name)
            if not self.facts.meta_exists:
                self.command("meta create")
            self.command("up")
            self.steps.append(Step(WAIT_ATTACHED))
            # Right after the attach the file state is inconsistent (first start) or outdated.
            m.update(up=True, role="secondary", file="attached", locked=None, peers={})
        else:
            for peer, p in sorted(m["peers"].items()):
                if p.get("state") == "standalone":
                    self.command("connect", peer=peer)
                    p["state"] = "connecting"
        self.role_and_lock()

    def state_down(self):
        if self.m["up"]:
            self.command("down")
            self.m.update(up=False, role=None, locked=None, peers={})
        if self.config_changed():
            self.write_config()

    def state_absent(self):
        if self.m["up"]:
            self.command("down")
            self.m.update(up=False, role=None, locked=None, peers={})
        if self.m["config_exists"]:
            self.steps.append(Step(REMOVE_CONFIG))
            self.m.update(config_exists=False, config=None)

    # ---- role and lock
    def role_and_lock(self):
        m = self.m
        role, lock = self.p.get("role"), self.p.get("lock")
        if role == "primary" and m["role"] != "primary":
            force, declines = self.check_promotion()
            unlock = lock is False and m["locked"] is not False
            self.command("primary", declines=declines, force=force, unlock=unlock)
            m.update(role="primary", file="up_to_date")
            if unlock:
                m["locked"] = False
            if lock is True and m["locked"] is not True:
                self.command("lock")
                m["locked"] = True
        elif role == "secondary" and m["role"] == "primary":
            self.check_demotion()
            self.command("secondary", lock=lock is True)
            m["role"] = "secondary"
            if lock is True or self.node_config(m["node"]).get("auto_file_lock", True):
                m["locked"] = True
            if lock is False and m["locked"]:
                self.command("unlock")
                m["locked"] = False
        elif lock is True and m["locked"] is not True:
            self.command("lock")
            m["locked"] = True
        elif lock is False and m["locked"] is not False:
            self.command("unlock")
            m["locked"] = False

    def check_promotion(self):
        """Refuse what the manual forbids; return (whether ``-f`` is needed, why fsradm would decline)."""
        m = self.m
        up_peers = sorted(n for n, p in m["peers"].items() if linked(p))
        if self.node_config(m["node"]).get("target-only") and up_peers:
            self.refuse("refusing to promote %s: node %s is target-only and connected to %s; a target-only "
                        "node may only be promoted after disconnecting" % (self.name, m["node"], ", ".join(up_peers)),
                        commands=[])
        primary_peers = [n for n in up_peers if m["peers"][n].get("role") == "primary"]
        if m["file"] == "up_to_date":
            if primary_peers:
                return False, "peer %s is primary; demote it first" % primary_peers[0]
            return False, None
        if not self.p.get("force"):
            if primary_peers:
                return False, "peer %s is primary; demote it first" % primary_peers[0]
            if m["file"] == "attached":
                return False, ("%s is inconsistent or outdated right after fsradm up, not up_to_date; force=true "
                               "is only for the initial promotion" % self.name)
            return False, ("%s is %s, not up_to_date; force=true is only for the initial promotion"
                           % (self.name, m["file"]))
        if m["file"] not in ("inconsistent", "outdated", "attached"):
            self.refuse("refusing force=true: %s is %s; force only promotes an inconsistent or outdated "
                        "resource" % (self.name, m["file"]))
        for peer, p in sorted(m["peers"].items()):
            if p.get("file") == "up_to_date" or (p.get("role") == "primary" and p.get("state") in LINKED_STATES):
                self.refuse("refusing force=true on %s: peer %s is %s (role %s), so this is not the initial "
                            "promotion; promote a node that is up_to_date instead"
                            % (self.name, peer, p.get("file"), p.get("role")))
        return True, None

    def check_demotion(self):
        """A switchover demotes the source only while a peer can take over (up_to_date, connected).

        The manual: switchover and failover are to be restricted while the target is not
        UpToDate (disconnected, or inconsistent while synchronising); fsradm would then decline
        its promotion and the resource would be left without a primary.
        """
        if self.p.get("force"):
            return
        peers = self.m["peers"]
        ready = [n for n, p in peers.items()
                 if p.get("file") == "up_to_date" and p.get("state") in LINKED_STATES
                 and not p["state"].startswith("sync_") and not self.node_config(n).get("target-only")]
        if ready:
            return
        seen = []
        for n, p in sorted(peers.items()):
            only = ", target-only" if self.node_config(n).get("target-only") else ""
            seen.append("peer %s: %s, file %s%s" % (n, p.get("state"), p.get("file"), only))
        seen = ", ".join(seen) or "no peer"
        raise FsrResourceError(
            "refusing to demote %s: no peer is up_to_date and connected to take over as primary (%s). "
            "Demoted now, %s would be left without a primary: fsradm declines promoting a node that is not "
            "up to date. Wait until the target is up_to_date (wait_for=up_to_date on the target), or set "
            "force=true to demote anyway (state seen: %s)" % (self.name, seen, self.name, describe(self.facts.res)),
            commands=[])


# --------------------------------------------------------------------------- execution

class Executor:
    """Carry out a plan (or, in check mode, only report it), then verify and wait as asked."""

    def __init__(self, module, fsr, params, path, the_plan, facts):
        self.module = module
        self.fsr = fsr
        self.p = params
        self.name = params["name"]
        self.path = path
        self.plan = the_plan
        self.res = facts.res
        self.verify = None

    def read(self):
        return self.fsr.resource(self.name)

    def fail(self, msg, **extra):
        extra.setdefault("commands", list(self.fsr.commands))
        extra.setdefault("status", self.res)
        raise FsrResourceError(msg, **extra)

    def fail_fsradm(self, e, **extra):
        """Fail with fsradm's own words (``declined r0: not up to date``) and the state seen."""
        try:
            seen = self.read()
        except FsradmError:
            seen = self.res
        self.fail("%s failed: %s (state seen: %s)" % (display_command(e.argv), e.message, describe(seen)),
                  rc=e.rc, stdout=e.stdout, stderr=e.stderr, fsradm_message=e.message, declined=e.declined,
                  status=seen, **extra)

    def run(self):
        """Returns (status after, verify report or None)."""
        check = self.module.check_mode
        for i, step in enumerate(self.plan.steps):
            if check:
                if step.declines:
                    self.fail("fsradm would decline %s: %s (state seen: %s)"
                              % (display_command(step.argv), step.declines, describe(self.res)),
                              commands=[display_command(s.argv) for s in self.plan.steps[:i + 1]
                                        if s.kind == COMMAND])
                continue
            if step.kind == COMMAND:
                try:
                    self.fsr.change(step.argv)
                except FsradmError as e:
                    self.fail_fsradm(e)
            elif step.kind == WRITE_CONFIG:
                write_config(self.module, self.path, step.text)
            elif step.kind == REMOVE_CONFIG:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
            elif step.kind == WAIT_ATTACHED:
                self.wait(lambda r: r is not None and r.get("file") in SETTLED_FILES,
                          "the attach after fsradm up to finish")
        if check:
            return self.res, None
        self.res = self.read()
        if self.p.get("verify"):
            self.run_verify()
        if self.p.get("wait_for"):
            self.wait(lambda r: condition_met(r, self.p["wait_for"]), self.p["wait_for"])
        return self.res, self.verify

    def wait(self, condition, what):
        def probe():
            res = self.read()
            return condition(res), res

        done, res, elapsed = wait_until(probe, self.p["wait_timeout"], self.p["wait_interval"])
        self.res = res
        if not done:
            self.fail("timed out after %ds waiting for %s of %s (state seen: %s)"
                      % (elapsed, what, self.name, describe(res)))

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
            seen = self.read()
            self.fail("fsradm verify of %s was canceled (state changed during the check; state seen: %s)"
                      % (self.name, describe(seen)), verify=from_fsr_result(result), status=seen)
        self.verify = from_fsr_result(result)
        if not self.verify["clean"] and not self.p.get("verify_allow_differences"):
            self.fail("fsradm verify of %s against %s found differences: %s"
                      % (self.name, result["peer_node"], describe_totals(self.verify["totals"])), verify=self.verify)


def condition_met(res, what):
    """Whether ``wait_for`` (connected, up_to_date or replicating) holds for the status ``res``."""
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
