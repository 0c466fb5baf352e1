# SPDX-License-Identifier: GPL-3.0-or-later
"""The fsradm command sequences fsr_resource plans and runs, table-driven, without a simulator.

A recording runner stands in for ``module.run_command``: it answers ``fsradm status -v all``
with a recorded status (one before any change, one after), ``fsradm meta check`` with the
given answer, and records every other command. Each case runs twice: in check mode (nothing
may be run, the plan is reported) and for real (exactly the planned commands run, in order).
"""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _fsr_resource as fr
from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import Fsradm
from ansible_collections.nodowntime.storage.plugins.modules.fsr_resource import argument_spec

QUERIES = (("status",), ("meta", "check"), ("result",), ("verify",))


def status(role="secondary", file="up_to_date", locked=False, node="a", **peers):
    """``fsradm status -v all`` text for r0; each peer is (state, file, role)."""
    lines = ["r0:%s role:%s file:%s pending:0 locked:%s last-promoted:none" % (node, role, file, str(locked).lower())]
    for name, (state, pfile, prole) in sorted(peers.items()):
        peer_state = {"repl_source": "repl_target", "repl_target": "repl_source", "sync_source": "sync_target",
                      "sync_target": "sync_source"}.get(state, state if state in ("established",) else "unknown")
        lines.append("  %s state:%s peer-state:%s role:%s file:%s repl-started:none last-synced:none"
                     % (name, state, peer_state, prole, pfile))
    return "\n".join(lines) + "\n"


DOWN = ""
NODES = [dict(name="a", url="10.0.0.1:9830", files=["/data/a"]),
         dict(name="b", url="10.0.0.2:9830", files=["/data/b"])]
CONFIG = {"nodes": [{"name": "a", "url": "10.0.0.1:9830", "files": [{"path": "/data/a"}]},
                    {"name": "b", "url": "10.0.0.2:9830", "files": [{"path": "/data/b"}]}]}


def config_with(**node_b):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["nodes"][1].update(node_b)
    return cfg


class RecordingModule:
    """Just enough of AnsibleModule for Fsradm and the Executor."""

    def __init__(self, before, after, meta_exists, check_mode):
        self.before, self.after = before, after
        self.meta_exists = meta_exists
        self.check_mode = check_mode
        self.changes = []

    def run_command(self, argv, environ_update=None):
        args = tuple(argv[1:])
        if args[:1] == ("status",):
            return 0, self.after if self.changes else self.before, ""
        if args[:2] == ("meta", "check"):
            return (0, "r0: meta data exists\n", "") if self.meta_exists else (1, "", "r0: no meta data\n")
        if any(args[:len(q)] == q for q in QUERIES):
            return 1, "", "not recorded"
        self.changes.append(" ".join(["fsradm"] + list(args)))
        return 0, "done\n", ""

    def atomic_move(self, src, dest):
        os.replace(src, dest)


def params(**kwargs):
    p = {k: v.get("default") for k, v in argument_spec().items()}
    p.update(name="r0", wait_timeout=0, wait_interval=0.01)
    p.update(kwargs)
    return p


def run(tmp_path, p, before, after=None, config="two nodes", meta_exists=True, check_mode=False, ran=None):
    """Plan and execute; return (plan, commands run, config file text after).

    ``config`` is the configuration file there before (None: no file; default: CONFIG).
    ``ran``, a list, receives the commands run also when the run fails.
    """
    if config == "two nodes":
        config = CONFIG
    cdir = tmp_path / ("check" if check_mode else "real")
    cdir.mkdir()
    path = os.path.join(str(cdir), "r0.json")
    if config is not None:
        with open(path, "w") as f:
            f.write(fr.config_text(config))
    p = dict(p, config_dir=str(cdir))
    module = RecordingModule(before, before if after is None else after, meta_exists, check_mode)
    if ran is not None:
        module.changes = ran
    fsr = Fsradm(module, "/usr/sbin/fsradm")
    desired = fr.build_config(p) if p["nodes"] is not None else None
    facts = fr.gather(fsr, "r0", path, p["state"], desired is not None)
    the_plan = fr.plan(p, facts, fsr.binary, desired)
    fr.Executor(module, fsr, p, path, the_plan, facts).run()
    text = None
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    return the_plan, module.changes, text


ATTACHED = status(file="inconsistent", b=("connecting", "unknown", "secondary"))
LINKED_INCONSISTENT = status(file="inconsistent", b=("established", "inconsistent", "secondary"))
PRIMARY_REPLICATING = status(role="primary", b=("repl_source", "up_to_date", "secondary"))
PRIMARY_SYNCING = status(role="primary", b=("sync_source", "inconsistent", "secondary"))
PRIMARY_ALONE = status(role="primary", b=("connecting", "unknown", "secondary"))
SECONDARY_SYNCED = status(b=("established", "up_to_date", "secondary"))

# id, options, status before, status after, configuration file, meta data exists, commands
CASES = [
    ("first start", dict(nodes=NODES), DOWN, ATTACHED, None, False,
     ["fsradm meta create r0", "fsradm up r0"]),
    ("restart: meta data exists", dict(), DOWN, ATTACHED, CONFIG, True, ["fsradm up r0"]),
    ("up and connected: nothing to do", dict(nodes=NODES), LINKED_INCONSISTENT, None, CONFIG, True, []),
    ("reconnect a standalone peer", dict(), status(file="outdated", b=("standalone", "unknown", "secondary")),
     None, CONFIG, True, ["fsradm connect r0 b"]),
    ("initial promotion", dict(role="primary", force=True), LINKED_INCONSISTENT, None, CONFIG, True,
     ["fsradm primary r0 -f"]),
    ("first start and initial promotion in one task", dict(nodes=NODES, role="primary", force=True), DOWN,
     ATTACHED, None, False, ["fsradm meta create r0", "fsradm up r0", "fsradm primary r0 -f"]),
    ("already primary", dict(role="primary", force=True), PRIMARY_REPLICATING, None, CONFIG, True, []),
    ("switchover step 1: demote with lock", dict(role="secondary", lock=True), PRIMARY_REPLICATING, None, CONFIG,
     True, ["fsradm secondary -l r0"]),
    ("demote, auto_file_lock locks, unlock asked", dict(role="secondary", lock=False), PRIMARY_REPLICATING, None,
     CONFIG, True, ["fsradm secondary r0", "fsradm unlock r0"]),
    ("demote without auto_file_lock: nothing to unlock", dict(role="secondary", lock=False), PRIMARY_REPLICATING,
     None, {"nodes": [dict(CONFIG["nodes"][0], auto_file_lock=False), CONFIG["nodes"][1]]}, True,
     ["fsradm secondary r0"]),
    ("demote with a disconnected peer, forced", dict(role="secondary", force=True), PRIMARY_ALONE, None, CONFIG,
     True, ["fsradm secondary r0"]),
    ("switchover step 2: promote and unlock", dict(role="primary", lock=False),
     status(locked=True, b=("established", "up_to_date", "secondary")), None, CONFIG, True,
     ["fsradm primary -u r0"]),
    ("promote, then lock", dict(role="primary", lock=True), SECONDARY_SYNCED, None, CONFIG, True,
     ["fsradm primary r0", "fsradm lock r0"]),
    ("lock only", dict(lock=True), SECONDARY_SYNCED, None, CONFIG, True, ["fsradm lock r0"]),
    ("unlock only", dict(lock=False), status(locked=True, b=("established", "up_to_date", "secondary")), None,
     CONFIG, True, ["fsradm unlock r0"]),
    ("lock already as asked", dict(lock=False), SECONDARY_SYNCED, None, CONFIG, True, []),
    ("reconfigure while up", dict(nodes=NODES, sync_hash_type="sha256", reconfigure=True), SECONDARY_SYNCED, None,
     CONFIG, True, ["fsradm disconnect r0 b", "fsradm adjust r0", "fsradm connect r0 b"]),
    ("down", dict(state="down"), SECONDARY_SYNCED, DOWN, CONFIG, True, ["fsradm down r0"]),
    ("down already", dict(state="down"), DOWN, None, CONFIG, True, []),
    ("absent", dict(state="absent"), PRIMARY_REPLICATING, DOWN, CONFIG, True, ["fsradm down r0"]),
    ("absent: only the file is left", dict(state="absent"), DOWN, None, CONFIG, True, []),
    ("absent already", dict(state="absent"), DOWN, None, None, True, []),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_command_sequences(tmp_path, case):
    _id, options, before, after, config, meta, expected = case
    p = params(**options)
    planned, ran_in_check, _text = run(tmp_path, p, before, after, config, meta, check_mode=True)
    assert ran_in_check == [], "check mode runs nothing"
    assert planned.commands == expected
    the_plan, ran, _text = run(tmp_path, p, before, after, config, meta)
    assert ran == expected == the_plan.commands, "a real run carries out the plan, in order"
    assert the_plan.before == planned.before and the_plan.after == planned.after


def test_configuration_steps_and_diff_come_from_the_plan(tmp_path):
    p = params(nodes=NODES, sync_hash_type="sha256", reconfigure=True)
    the_plan, ran, text = run(tmp_path, p, SECONDARY_SYNCED)
    assert [s.kind for s in the_plan.steps] == [fr.COMMAND, fr.WRITE_CONFIG, fr.COMMAND, fr.COMMAND]
    assert json.loads(text)["options"] == {"sync": {"hash_type": "sha256"}}
    assert the_plan.changed
    assert the_plan.before == {"state": "up", "role": "secondary", "locked": False, "config": CONFIG}
    assert the_plan.after["config"]["options"] == {"sync": {"hash_type": "sha256"}}

    (tmp_path / "absent").mkdir()
    _plan, _ran, text = run(tmp_path / "absent", params(state="absent"), DOWN)
    assert text is None
    assert _plan.changed and _plan.commands == []
    assert (_plan.before["state"], _plan.after["state"]) == ("down", "absent")


def test_first_start_waits_for_the_attach(tmp_path):
    the_plan, _ran, _text = run(tmp_path, params(nodes=NODES), DOWN, ATTACHED, config=None, meta_exists=False)
    assert [s.kind for s in the_plan.steps] == [fr.WRITE_CONFIG, fr.COMMAND, fr.COMMAND, fr.WAIT_ATTACHED]
    assert the_plan.after == {"state": "up", "role": "secondary", "locked": False, "config": CONFIG}


def test_config_is_written_with_atomic_move_in_its_directory(tmp_path):
    moves = []

    class Module:
        def atomic_move(self, src, dest):
            moves.append((os.path.dirname(src), os.path.basename(src), dest))
            os.replace(src, dest)

    path = str(tmp_path / "etc" / "r0.json")
    fr.write_config(Module(), path, "{}\n")
    assert moves == [(str(tmp_path / "etc"), moves[0][1], path)]
    assert moves[0][1].startswith(".r0.json.") and os.listdir(str(tmp_path / "etc")) == ["r0.json"]


# id, options, status before, configuration file, words of the refusal
REFUSALS = [
    ("switchover while the target synchronises", dict(role="secondary", lock=True), PRIMARY_SYNCING, CONFIG,
     "refusing to demote r0: no peer is up_to_date and connected to take over as primary "
     "(peer b: sync_source, file inconsistent)"),
    ("switchover while the target is disconnected", dict(role="secondary"), PRIMARY_ALONE, CONFIG,
     "(peer b: connecting, file unknown)"),
    ("switchover to a target-only peer", dict(role="secondary"), PRIMARY_REPLICATING, config_with(**{"target-only": True}),
     "(peer b: repl_source, file up_to_date, target-only)"),
    ("force on a node whose peer is up to date", dict(role="primary", force=True),
     status(file="outdated", b=("established", "up_to_date", "secondary")), CONFIG,
     "refusing force=true on r0: peer b is up_to_date"),
    ("target-only node connected", dict(role="primary", force=True), LINKED_INCONSISTENT,
     {"nodes": [dict(CONFIG["nodes"][0], **{"target-only": True}), CONFIG["nodes"][1]]},
     "node a is target-only and connected to b"),
    ("configuration change while up", dict(nodes=NODES, sync_hash_type="sha256"), SECONDARY_SYNCED, CONFIG,
     "Set reconfigure=true"),
    ("no configuration", dict(), DOWN, None, "no configuration file for resource r0"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
@pytest.mark.parametrize("check_mode", [True, False])
def test_refusals_run_nothing(tmp_path, case, check_mode):
    _id, options, before, config, words = case
    ran = []
    with pytest.raises(fr.FsrResourceError) as e:
        run(tmp_path, params(**options), before, config=config, check_mode=check_mode, ran=ran)
    assert words in e.value.msg, e.value.msg
    assert ran == []
    if config is not None:
        with open(str(tmp_path / ("check" if check_mode else "real") / "r0.json")) as f:
            assert json.load(f) == config, "the configuration file is left alone"


def test_switchover_refusal_names_the_way_out(tmp_path):
    with pytest.raises(fr.FsrResourceError) as e:
        run(tmp_path, params(role="secondary"), PRIMARY_SYNCING)
    assert "wait_for=up_to_date on the target" in e.value.msg and "force=true" in e.value.msg
    assert e.value.extra["commands"] == []


def test_switchover_with_one_of_two_peers_up_to_date(tmp_path):
    before = status(role="primary", b=("repl_source", "up_to_date", "secondary"),
                    c=("connecting", "unknown", "secondary"))
    _plan, ran, _text = run(tmp_path, params(role="secondary", lock=True), before)
    assert ran == ["fsradm secondary -l r0"]


# id, options, status before, what check mode says fsradm would decline
DECLINES = [
    ("not up to date without force", dict(role="primary"), LINKED_INCONSISTENT,
     "fsradm would decline fsradm primary r0: r0 is inconsistent, not up_to_date"),
    ("peer still primary", dict(role="primary"),
     status(b=("repl_target", "up_to_date", "primary")), "fsradm would decline fsradm primary r0: peer b is primary"),
]


@pytest.mark.parametrize("case", DECLINES, ids=[c[0] for c in DECLINES])
def test_expected_declines(tmp_path, case):
    _id, options, before, words = case
    with pytest.raises(fr.FsrResourceError) as e:
        run(tmp_path, params(**options), before, check_mode=True)
    assert e.value.msg.startswith(words), e.value.msg
    assert e.value.extra["commands"] == ["fsradm primary r0"]
    # A real run lets fsradm decline in its own words: the command is run.
    the_plan, ran, _text = run(tmp_path, params(**options), before)
    assert ran == ["fsradm primary r0"]


@pytest.mark.parametrize("name", ["../r0", "/etc/fsr/r0", "..", ".r0", "-f", "r 0", "all", "r0/", ""])
def test_config_path_refuses_names_that_are_not_plain(name):
    with pytest.raises(fr.FsrResourceError) as e:
        fr.config_path("/etc/fsr/resources", name)
    assert e.value.msg.startswith("name=%s: " % name)


@pytest.mark.parametrize("name", ["r0", "R_1", "db.main", "r-0", "0"])
def test_config_path_of_plain_names(name):
    assert fr.config_path("/etc/fsr/resources", name) == "/etc/fsr/resources/%s.json" % name


@pytest.mark.parametrize("what, res, expected", [
    ("connected", status(b=("established", "inconsistent", "secondary")), True),
    ("connected", status(b=("connecting", "unknown", "secondary")), False),
    ("replicating", PRIMARY_REPLICATING, True),
    ("replicating", PRIMARY_SYNCING, False),
    ("up_to_date", PRIMARY_REPLICATING, True),
    ("up_to_date", PRIMARY_SYNCING, False),
])
def test_condition_met(what, res, expected):
    from ansible_collections.nodowntime.storage.plugins.module_utils._fsradm import parse_status
    assert fr.condition_met(parse_status(res)[0], what) is expected
    assert fr.condition_met(None, what) is False
