# SPDX-License-Identifier: GPL-3.0-or-later
"""fsr_resource against the fsradm simulator, two nodes sharing one state directory."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import TOTAL_KEYS
from ansible_collections.nodowntime.storage.plugins.modules import fsr_info, fsr_resource
from ansible_collections.nodowntime.storage.tests.fsr_simulator.lab import Lab

from .utils import fail_module, run_module

# Every test runs the fsradm simulator: functional tests.
pytestmark = pytest.mark.functional


@pytest.fixture
def lab(tmp_path, monkeypatch):
    lab = Lab(tmp_path, monkeypatch)
    yield lab
    lab.kill_leftovers()


def up(lab, node, **kwargs):
    lab.on(node)
    return run_module(fsr_resource.main, lab.args(nodes=lab.node_list(), **kwargs))


def info(lab, node):
    lab.on(node)
    return run_module(fsr_info.main, dict(name="r0", fsradm_path=lab.args()["fsradm_path"]))["resources"]["r0"]


def test_missing_binary_is_a_clear_error(lab):
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(fsradm_path="/nonexistent/bin/fsradm", nodes=lab.node_list()))
    assert "fsradm_path=/nonexistent/bin/fsradm" in res["msg"] and "no executable" in res["msg"]
    res = fail_module(fsr_resource.main, lab.args(fsradm_path="fsradm-not-installed-here", nodes=lab.node_list()))
    assert "not found on PATH" in res["msg"]


@pytest.mark.parametrize("extra, words", [
    (dict(sync_min="100X"), "sync_min=100X"),
    (dict(sync_min="2G", sync_max="1G"), "sync_min=2G is more than sync_max=1G"),
    (dict(sync_ratio="7-3"), "sync_ratio=7-3"),
    (dict(disk_health_period=0), "disk_health_period=0"),
    (dict(archive=dict(enable=True)), "archive.path"),
    (dict(sync_hash_type="md4"), "sync_hash_type"),
    (dict(sync_comparison_level=4), "sync_comparison_level"),
])
def test_config_validation(lab, extra, words):
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(nodes=lab.node_list(), **extra))
    assert words in res["msg"]
    assert not os.path.exists(os.path.join(lab.config_dir("a"), "r0.json"))


def test_config_validation_nodes(lab):
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(nodes=lab.node_list()[:1]))
    assert "at least two nodes" in res["msg"]
    nodes = lab.node_list(a=dict(io_test=dict(enable=True, period="ten seconds")))
    res = fail_module(fsr_resource.main, lab.args(nodes=nodes))
    assert "nodes[0].io_test.period=ten seconds" in res["msg"]
    nodes = lab.node_list()
    nodes[1]["name"] = "a"
    assert "must be unique" in fail_module(fsr_resource.main, lab.args(nodes=nodes))["msg"]


def test_config_file_layout(lab):
    lab.on("a")
    nodes = lab.node_list(b=dict(target_only=True, io_test=dict(enable=False, period="5s")))
    res = run_module(fsr_resource.main, lab.args(
        state="down", nodes=nodes, sync_comparison_level=2, sync_hash_type="crc32", persist_role=True,
        archive=dict(enable=True, path="/var/fsr/archive", retention="7d"), sync_ratio="7:3",
        sync_min="100M", sync_max="1G", disk_health_period=5), diff=True)
    assert res["changed"] and res["commands"] == []
    with open(os.path.join(lab.config_dir("a"), "r0.json")) as f:
        written = json.load(f)
    assert written == {
        "nodes": [
            {"name": "a", "url": "127.0.0.1:9830", "files": [{"path": str(lab.data("a"))}]},
            {"name": "b", "url": "127.0.0.1:9831", "files": [{"path": str(lab.data("b"))}], "target-only": True,
             "io_test": {"enable": False, "period": "5s"}},
        ],
        "options": {"sync": {"comparison_level": 2, "hash_type": "crc32"}, "persist-role": True,
                    "archive": {"enable": True, "path": "/var/fsr/archive", "retention": "7d"}},
        "network": {"sync_ratio": "7:3", "sync_min": "100M", "sync_max": "1G"},
        "disk": {"health": {"period": 5}},
    }
    assert res["diff"]["before"] == {"state": "absent", "role": None, "locked": None, "config": None}
    assert res["diff"]["after"]["state"] == "down" and res["diff"]["after"]["config"] == written


def test_up_first_start_is_idempotent(lab):
    cfg = os.path.join(lab.config_dir("a"), "r0.json")
    lab.on("a")
    args = lab.args(nodes=lab.node_list())
    res = run_module(fsr_resource.main, args, check_mode=True, diff=True)
    assert res["changed"] and res["commands"] == ["fsradm meta create r0", "fsradm up r0"]
    assert not os.path.exists(cfg)
    assert res["diff"]["after"]["state"] == "up"

    res = run_module(fsr_resource.main, args)
    assert res["changed"] and res["commands"] == ["fsradm meta create r0", "fsradm up r0"]
    assert os.path.exists(cfg)
    assert res["status"]["file"] == "inconsistent" and res["status"]["role"] == "secondary"
    assert res["status"]["peers"]["b"]["state"] == "connecting"

    for check in (False, True):
        res = run_module(fsr_resource.main, args, check_mode=check)
        assert not res["changed"] and res["commands"] == []


def bring_up_both(lab):
    up(lab, "a")
    up(lab, "b")
    res = up(lab, "a", wait_for="connected")
    assert res["status"]["peers"]["b"]["state"] == "established"
    return res


def test_initial_promotion_needs_force_and_target_waits(lab):
    bring_up_both(lab)
    (lab.data("a") / "hello.txt").write_text("hello\n")

    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(role="primary"), check_mode=True)
    assert "fsradm would decline" in res["msg"] and "inconsistent" in res["msg"]
    res = fail_module(fsr_resource.main, lab.args(role="primary"))
    assert "declined r0: not up to date" in res["msg"]
    assert res["declined"] is True and res["fsradm_message"] == "declined r0: not up to date"
    assert "file inconsistent" in res["msg"]  # the state seen
    assert res["commands"] == ["fsradm primary r0"]

    res = run_module(fsr_resource.main, lab.args(role="primary", force=True), check_mode=True)
    assert res["changed"] and res["commands"] == ["fsradm primary r0 -f"]
    lab.hold_syncs()  # the initial sync starts with the promotion and stays in progress until released
    res = run_module(fsr_resource.main, lab.args(role="primary", force=True))
    assert res["changed"] and res["commands"] == ["fsradm primary r0 -f"]
    assert res["status"]["role"] == "primary" and res["status"]["file"] == "up_to_date"
    # The target is still synchronising: waiting is needed.
    seen = info(lab, "b")
    assert seen["file"] == "inconsistent" and seen["peers"]["a"]["state"] == "sync_target"
    assert not (lab.data("b") / "hello.txt").exists()
    # Force on the other node is refused: this is no longer the initial promotion.
    lab.on("b")
    res = fail_module(fsr_resource.main, lab.args(role="primary", force=True))
    assert "refusing force=true" in res["msg"] and "peer a" in res["msg"]

    lab.on("a")
    for check in (False, True):
        res = run_module(fsr_resource.main, lab.args(role="primary", force=True), check_mode=check)
        assert not res["changed"] and res["commands"] == []

    lab.release_syncs()
    lab.on("b")
    res = run_module(fsr_resource.main, lab.args(wait_for="up_to_date"))
    assert not res["changed"]
    assert res["status"]["file"] == "up_to_date"
    assert res["status"]["peers"]["a"]["state"] == "repl_target"
    assert res["status"]["peers"]["a"]["last_synced"]
    assert (lab.data("b") / "hello.txt").read_text() == "hello\n"


def promoted(lab):
    bring_up_both(lab)
    (lab.data("a") / "dir").mkdir()
    (lab.data("a") / "dir" / "one.txt").write_text("one\n")
    up(lab, "a", role="primary", force=True)
    up(lab, "b", wait_for="up_to_date")


def test_switchover_with_lock(lab):
    promoted(lab)
    # Promoting the target while the source is still primary is declined by fsradm.
    lab.on("b")
    res = fail_module(fsr_resource.main, lab.args(role="primary", lock=False))
    assert "declined r0: peer a is primary" in res["msg"]

    lab.on("a")
    args = lab.args(role="secondary", lock=True)
    res = run_module(fsr_resource.main, args, check_mode=True, diff=True)
    assert res["changed"] and res["commands"] == ["fsradm secondary -l r0"]
    assert res["diff"]["after"]["role"] == "secondary" and res["diff"]["after"]["locked"] is True
    res = run_module(fsr_resource.main, args)
    assert res["commands"] == ["fsradm secondary -l r0"]
    assert res["status"]["role"] == "secondary" and res["status"]["locked"] is True
    for check in (False, True):
        assert run_module(fsr_resource.main, args, check_mode=check)["commands"] == []

    lab.on("b")
    args = lab.args(role="primary", lock=False, wait_for="replicating")
    res = run_module(fsr_resource.main, args, check_mode=True)
    assert res["commands"] == ["fsradm primary r0"]
    res = run_module(fsr_resource.main, args)
    assert res["changed"] and res["commands"] == ["fsradm primary r0"]
    assert res["status"]["role"] == "primary" and res["status"]["peers"]["a"]["state"] == "repl_source"
    for check in (False, True):
        assert not run_module(fsr_resource.main, args, check_mode=check)["changed"]

    seen = info(lab, "a")
    assert seen["role"] == "secondary" and seen["locked"] is True
    assert seen["peers"]["b"]["role"] == "primary" and seen["peers"]["b"]["state"] == "repl_target"
    assert seen["peers"]["b"]["peer_state"] == "repl_source"

    # Replication now runs from b to a.
    (lab.data("b") / "after-switch.txt").write_text("from b\n")
    lab.on("a")
    run_module(fsr_resource.main, lab.args(wait_for="replicating"))
    assert (lab.data("a") / "after-switch.txt").read_text() == "from b\n"

    # Unlock after a demotion that auto-locked: promote with -u.
    res = run_module(fsr_resource.main, lab.args(lock=False))
    assert res["commands"] == ["fsradm unlock r0"] and res["status"]["locked"] is False


def test_demote_without_lock_option_keeps_auto_lock_and_unlocks_on_request(lab):
    promoted(lab)
    lab.on("a")
    res = run_module(fsr_resource.main, lab.args(role="secondary", lock=False), check_mode=True)
    assert res["commands"] == ["fsradm secondary r0", "fsradm unlock r0"]
    res = run_module(fsr_resource.main, lab.args(role="secondary", lock=False))
    assert res["commands"] == ["fsradm secondary r0", "fsradm unlock r0"]
    assert res["status"]["locked"] is False
    res = run_module(fsr_resource.main, lab.args(lock=True))
    assert res["commands"] == ["fsradm lock r0"]
    res = run_module(fsr_resource.main, lab.args(role="primary", lock=False))
    assert res["commands"] == ["fsradm primary -u r0"] and res["status"]["locked"] is False


def test_verify_totals(lab):
    promoted(lab)
    lab.on("a")
    res = run_module(fsr_resource.main, lab.args(verify=True))
    assert not res["changed"] and res["commands"] == []
    assert res["verify"]["finished_at"] and res["verify"]["peer_node"] == "b"
    assert res["verify"]["clean"] and res["verify"]["differences"] == []
    assert res["verify"]["entries_checked"] is None  # fsradm does not say
    assert sorted(res["verify"]["totals"]) == sorted(TOTAL_KEYS)
    assert set(res["verify"]["totals"].values()) == {0}

    # A write behind FSR's back on the target, and a file only the target has.
    (lab.data("b") / "dir" / "one.txt").write_text("changed on the target\n")
    (lab.data("b") / "stray.bin").write_bytes(b"x" * 10)
    res = fail_module(fsr_resource.main, lab.args(verify=True))
    assert "found differences: 1 different (0 dirs, 1 file, 22 bytes), 1 orphaned (0 dirs, 1 file, 10 bytes)" in res["msg"]
    assert res["verify"]["totals"]["diff_file"] == 1
    assert res["verify"]["totals"]["orphaned_bytes"] == 10
    assert res["verify"]["totals"]["diff_bytes"] == len("changed on the target\n")

    res = run_module(fsr_resource.main, lab.args(verify=True, verify_allow_differences=True))
    assert not res["changed"]
    assert [(f["type"], os.path.basename(f["path"]), f["entry"]) for f in res["verify"]["differences"]] == [
        ("different", "one.txt", "file"), ("orphaned", "stray.bin", "file")]


def test_verify_declined_when_not_up_to_date(lab):
    bring_up_both(lab)
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(verify=True))
    assert "declined r0: verify needs up to date data on both nodes" in res["msg"]


def test_target_only_node_never_promoted_while_connected(lab):
    nodes = lab.node_list(b=dict(target_only=True))
    for n in ("a", "b"):
        lab.on(n)
        run_module(fsr_resource.main, lab.args(nodes=nodes))
    lab.on("b")
    run_module(fsr_resource.main, lab.args(nodes=nodes, wait_for="connected"))
    res = fail_module(fsr_resource.main, lab.args(nodes=nodes, role="primary", force=True))
    assert "target-only" in res["msg"] and res["commands"] == []


def test_config_change_while_up(lab):
    bring_up_both(lab)
    lab.on("a")
    nodes = lab.node_list()
    res = fail_module(fsr_resource.main, lab.args(nodes=nodes, sync_hash_type="sha256"))
    assert "reconfigure=true" in res["msg"] and res["commands"] == []
    with open(os.path.join(lab.config_dir("a"), "r0.json")) as f:
        assert "options" not in json.load(f)

    args = lab.args(nodes=nodes, sync_hash_type="sha256", reconfigure=True)
    res = run_module(fsr_resource.main, args, check_mode=True, diff=True)
    assert res["commands"] == ["fsradm disconnect r0 b", "fsradm adjust r0", "fsradm connect r0 b"]
    assert res["diff"]["after"]["config"]["options"] == {"sync": {"hash_type": "sha256"}}
    res = run_module(fsr_resource.main, args)
    assert res["changed"] and res["commands"] == ["fsradm disconnect r0 b", "fsradm adjust r0",
                                                  "fsradm connect r0 b"]
    lab.on("b")
    run_module(fsr_resource.main, lab.args(nodes=nodes, sync_hash_type="sha256", reconfigure=True))
    # a may have gone standalone when it met b's old configuration; state=up reconnects it.
    lab.on("a")
    run_module(fsr_resource.main, lab.args(nodes=nodes, sync_hash_type="sha256"))
    res = run_module(fsr_resource.main, lab.args(nodes=nodes, sync_hash_type="sha256", wait_for="connected"))
    assert res["status"]["peers"]["b"]["state"] == "established"


def test_wait_for_times_out_with_state_seen(lab):
    up(lab, "a")
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(wait_for="connected", wait_timeout=1))
    assert "timed out" in res["msg"] and "peer b: connecting" in res["msg"]


def test_down_and_absent(lab):
    bring_up_both(lab)
    lab.on("a")
    cfg = os.path.join(lab.config_dir("a"), "r0.json")
    res = run_module(fsr_resource.main, lab.args(state="down"), check_mode=True)
    assert res["commands"] == ["fsradm down r0"]
    res = run_module(fsr_resource.main, lab.args(state="down"))
    assert res["changed"] and res["status"] is None and os.path.exists(cfg)
    assert info(lab, "b")["peers"]["a"]["state"] == "connecting"
    lab.on("a")
    assert not run_module(fsr_resource.main, lab.args(state="down"))["changed"]

    # Up again: the meta data exists, so this is not a first start.
    res = run_module(fsr_resource.main, lab.args())
    assert res["commands"] == ["fsradm up r0"]

    res = run_module(fsr_resource.main, lab.args(state="absent"), diff=True)
    assert res["commands"] == ["fsradm down r0"] and not os.path.exists(cfg)
    assert res["diff"]["after"]["state"] == "absent"
    for check in (False, True):
        assert not run_module(fsr_resource.main, lab.args(state="absent"), check_mode=check)["changed"]

    res = fail_module(fsr_resource.main, lab.args())
    assert "no configuration file" in res["msg"]


def test_options_need_state_up(lab):
    lab.on("a")
    assert "needs state=up" in fail_module(fsr_resource.main, lab.args(state="down", role="primary"))["msg"]


def test_target_that_lost_its_source_is_outdated(lab):
    promoted(lab)
    # The replication link breaks while a is primary (fsradm disconnect, as an operator would).
    lab.on("a")
    subprocess.run([lab.fsradm, "disconnect", "r0", "b"], check=True, capture_output=True)
    seen = info(lab, "b")
    assert seen["file"] == "outdated" and seen["peers"]["a"]["state"] == "connecting"
    # A failover to a target that is not up to date is refused.
    lab.on("b")
    res = fail_module(fsr_resource.main, lab.args(role="primary"))
    assert "declined r0: not up to date" in res["msg"] and "file outdated" in res["msg"]

    # state=up on a reconnects the standalone peer; b catches up with what a wrote meanwhile.
    (lab.data("a") / "while-disconnected.txt").write_text("a\n")
    lab.on("a")
    res = run_module(fsr_resource.main, lab.args())
    assert res["changed"] and res["commands"] == ["fsradm connect r0 b"]
    lab.on("b")
    res = run_module(fsr_resource.main, lab.args(wait_for="up_to_date"))
    assert res["status"]["peers"]["a"]["state"] == "repl_target"
    assert (lab.data("b") / "while-disconnected.txt").read_text() == "a\n"


# ---- names that would become paths outside config_dir ---------------------------------------

def files_under(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) == "state" or "/state/" in dirpath + "/":
            continue
        for fn in files:
            full = os.path.join(dirpath, fn)
            if fn != "fsradm-calls.log":
                with open(full, "rb") as f:
                    out[os.path.relpath(full, root)] = f.read()
    return out


@pytest.mark.parametrize("state", ["up", "down", "absent"])
@pytest.mark.parametrize("name", ["../outside", "sub/../../outside", "ABSOLUTE", "..", ".hidden", "-f", "r 0", "all"])
def test_name_that_is_not_a_plain_name_is_refused_before_anything_is_touched(lab, name, state):
    lab.on("a")
    if name == "ABSOLUTE":
        name = str(lab.root / "etc" / "outside")
    victim = lab.root / "etc" / "outside.json"
    victim.write_text('{"not": "ours"}\n')
    before = files_under(str(lab.root))
    args = lab.args(name=name, state=state, nodes=lab.node_list())
    if state == "absent":
        del args["nodes"]
    for check in (True, False):
        res = fail_module(fsr_resource.main, args, check_mode=check)
        assert res["msg"].startswith("name=%s: " % name), res["msg"]
        assert not res.get("changed")
    assert files_under(str(lab.root)) == before, "nothing written or deleted"
    assert lab.calls() == [], "no fsradm command run"


@pytest.mark.parametrize("option, value, words", [
    ("nodes", "../b", "nodes[1].name=../b"),
    ("nodes", "b c", "nodes[1].name=b c"),
    ("verify_peer", "../b", "verify_peer=../b"),
    ("verify_peer", "-f", "verify_peer=-f"),
])
def test_node_names_are_checked_too(lab, option, value, words):
    lab.on("a")
    nodes = lab.node_list()
    args = lab.args(state="down", nodes=nodes)
    if option == "nodes":
        nodes[1]["name"] = value
    else:
        args.update(state="up", verify=True, verify_peer=value)
    res = fail_module(fsr_resource.main, args)
    assert res["msg"].startswith(words), res["msg"]
    assert not os.path.exists(os.path.join(lab.config_dir("a"), "r0.json"))
    assert lab.calls() == []


# ---- switchover: never demote the source while no peer can take over ------------------------

def test_switchover_refused_while_the_target_is_not_up_to_date(lab, monkeypatch):
    monkeypatch.setenv("FSRSIM_SYNC_SECONDS", "8")  # b stays a synchronisation target meanwhile
    bring_up_both(lab)
    (lab.data("a") / "data.txt").write_text("data\n")
    up(lab, "a", role="primary", force=True)
    lab.on("a")
    calls = len(lab.calls())
    for check in (True, False):
        res = fail_module(fsr_resource.main, lab.args(role="secondary", lock=True), check_mode=check)
        assert res["msg"].startswith("refusing to demote r0: no peer is up_to_date"), res["msg"]
        assert "peer b: sync_source" in res["msg"] and "force=true" in res["msg"]
        assert res["commands"] == []
    assert not any(" secondary " in c or c.endswith(" secondary") for c in lab.calls()[calls:])
    assert info(lab, "a")["role"] == "primary", "the source is still primary"

    # The override: demote anyway (the operator accepts a resource without primary).
    lab.on("a")
    res = run_module(fsr_resource.main, lab.args(role="secondary", lock=True, force=True))
    assert res["changed"] and res["commands"] == ["fsradm secondary -l r0"]
    assert res["status"]["role"] == "secondary"


def test_switchover_refused_while_the_target_is_disconnected(lab):
    promoted(lab)
    lab.on("b")
    run_module(fsr_resource.main, lab.args(state="down"))
    lab.on("a")
    res = fail_module(fsr_resource.main, lab.args(role="secondary"))
    assert "refusing to demote r0" in res["msg"] and "peer b: connecting" in res["msg"]
    assert info(lab, "a")["role"] == "primary"
