# SPDX-License-Identifier: GPL-3.0-or-later
"""fsr_info against the fsradm simulator."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nodowntime.storage.plugins.modules import fsr_info, fsr_resource

from .fsr_sim import SIMULATOR, Lab
from .utils import fail_module, run_module


@pytest.fixture
def lab(tmp_path, monkeypatch):
    return Lab(tmp_path, monkeypatch)


def replicating(lab):
    """r0 up on a and b, a promoted, b up to date; the simulator then acts as node a."""
    for node in ("a", "b"):
        lab.on(node)
        run_module(fsr_resource.main, lab.args(nodes=lab.node_list()))
    lab.on("a")
    run_module(fsr_resource.main, lab.args(wait_for="connected"))
    run_module(fsr_resource.main, lab.args(role="primary", force=True))
    run_module(fsr_resource.main, lab.args(wait_for="up_to_date"))


def test_nothing_up(lab):
    lab.on("a")
    res = run_module(fsr_info.main, dict(fsradm_path=SIMULATOR))
    assert res == {"changed": False, "exists": False, "resources": {}}
    res = run_module(fsr_info.main, dict(name="r0", fsradm_path=SIMULATOR), check_mode=True)
    assert res["exists"] is False and not res["changed"]


def test_missing_binary(lab):
    res = fail_module(fsr_info.main, dict(fsradm_path=os.path.join(str(lab.root), "nope", "fsradm")))
    assert "no executable file" in res["msg"]


def test_reports_roles_states_and_peers(lab):
    replicating(lab)
    # A second resource that is up only on a: its peer keeps connecting.
    run_module(fsr_resource.main, lab.args(name="r1", nodes=lab.node_list()))

    res = run_module(fsr_info.main, dict(fsradm_path=SIMULATOR))
    assert not res["changed"] and res["exists"] is True
    assert sorted(res["resources"]) == ["r0", "r1"]
    r0 = res["resources"]["r0"]
    assert (r0["node"], r0["role"], r0["file"], r0["pending"], r0["locked"]) == ("a", "primary", "up_to_date", 0, False)
    assert r0["last_promoted"]
    b = r0["peers"]["b"]
    assert (b["state"], b["peer_state"], b["role"], b["file"]) == (
        "repl_source", "repl_target", "secondary", "up_to_date")
    assert b["last_synced"] and b["repl_started"]
    r1 = res["resources"]["r1"]
    assert r1["file"] == "inconsistent"
    assert r1["peers"]["b"] == {"name": "b", "state": "connecting", "peer_state": "unknown", "role": "secondary",
                                "file": "unknown", "last_synced": None, "repl_started": None}

    res = run_module(fsr_info.main, dict(name="r0", events=True, fsradm_path=SIMULATOR))
    assert list(res["resources"]) == ["r0"]
    events = res["resources"]["r0"]["events"]
    assert events[0]["type"] == "rpc"
    files = [e["data"]["value"] for e in events if e["type"] == "file_state"]
    assert files[:3] == ["fileless", "attaching", "inconsistent"] and files[-1] == "up_to_date"
    states = [e["data"]["value"] for e in events if e["type"] == "state"]
    for seen in ("standalone", "connecting", "connected", "established", "sync_source", "repl_source"):
        assert seen in states
    assert states.index("connecting") < states.index("connected") < states.index("established") \
        < states.index("sync_source") < states.index("repl_source")

    lab.on("b")
    res = run_module(fsr_info.main, dict(name="r1", fsradm_path=SIMULATOR))
    assert res["exists"] is False and res["resources"] == {}


def test_verify_result_in_the_shared_report_shape(lab):
    replicating(lab)

    res = run_module(fsr_info.main, dict(name="r0", verify_result=True, fsradm_path=SIMULATOR))
    assert res["resources"]["r0"]["verify"] is None, "never verified: nothing to report"

    (lab.data("b") / "stray.bin").write_bytes(b"x" * 10)
    checked = run_module(fsr_resource.main, lab.args(verify=True, verify_allow_differences=True))["verify"]
    res = run_module(fsr_info.main, dict(name="r0", verify_result=True, fsradm_path=SIMULATOR))
    verify = res["resources"]["r0"]["verify"]
    assert verify == checked, "fsr_info reads back the report fsr_resource returned"
    assert not verify["clean"] and verify["totals"]["orphaned_file"] == 1 and verify["totals"]["orphaned_bytes"] == 10
    assert [(d["type"], os.path.basename(d["path"])) for d in verify["differences"]] == [("orphaned", "stray.bin")]
