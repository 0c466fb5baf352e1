# SPDX-License-Identifier: GPL-3.0-or-later
"""fsr_info against the fsradm simulator."""
from __future__ import annotations

import datetime
import os
import signal
import time

import pytest

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
    res = run_module(fsr_info.main, dict(fsradm_path=lab.fsradm))
    assert res == {"changed": False, "exists": False, "resources": {}}
    res = run_module(fsr_info.main, dict(name="r0", fsradm_path=lab.fsradm), check_mode=True)
    assert res["exists"] is False and not res["changed"]


def test_missing_binary(lab):
    res = fail_module(fsr_info.main, dict(fsradm_path=os.path.join(str(lab.root), "nope", "fsradm")))
    assert "no executable file" in res["msg"]


def test_reports_roles_states_and_peers(lab):
    replicating(lab)
    # A second resource that is up only on a: its peer keeps connecting.
    run_module(fsr_resource.main, lab.args(name="r1", nodes=lab.node_list()))

    res = run_module(fsr_info.main, dict(fsradm_path=lab.fsradm))
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

    res = run_module(fsr_info.main, dict(name="r0", events=True, fsradm_path=lab.fsradm))
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
    res = run_module(fsr_info.main, dict(name="r1", fsradm_path=lab.fsradm))
    assert res["exists"] is False and res["resources"] == {}


def test_verify_result_in_the_shared_report_shape(lab):
    replicating(lab)

    res = run_module(fsr_info.main, dict(name="r0", verify_result=True, fsradm_path=lab.fsradm))
    assert res["resources"]["r0"]["verify"] is None, "never verified: nothing to report"

    (lab.data("b") / "stray.bin").write_bytes(b"x" * 10)
    checked = run_module(fsr_resource.main, lab.args(verify=True, verify_allow_differences=True))["verify"]
    res = run_module(fsr_info.main, dict(name="r0", verify_result=True, fsradm_path=lab.fsradm))
    verify = res["resources"]["r0"]["verify"]
    assert verify == checked, "fsr_info reads back the report fsr_resource returned"
    assert not verify["clean"] and verify["totals"]["orphaned_file"] == 1 and verify["totals"]["orphaned_bytes"] == 10
    assert [(d["type"], os.path.basename(d["path"])) for d in verify["differences"]] == [("orphaned", "stray.bin")]


# ---- fsradm events is a subscription: read for a bounded time, then ended ---------------------

class Hung(Exception):
    pass


@pytest.fixture
def deadline():
    """Fail a test that hangs (instead of hanging the test run) after the given seconds."""
    def _hung(_sig, _frame):
        raise Hung("still running: the module waited for fsradm events to exit")

    previous = signal.signal(signal.SIGALRM, _hung)

    def arm(seconds):
        signal.alarm(seconds)

    yield arm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def both_up(lab):
    for node in ("a", "b"):
        lab.on(node)
        run_module(fsr_resource.main, lab.args(nodes=lab.node_list()))
    lab.on("a")


def test_events_with_the_default_bound_return_and_leave_nothing_running(lab, deadline):
    both_up(lab)
    deadline(25)
    started = time.monotonic()
    res = run_module(fsr_info.main, dict(name="r0", events=True, fsradm_path=lab.fsradm))
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 2.0 + 5, elapsed  # events_seconds defaults to 2
    assert res["resources"]["r0"]["events"][0]["type"] == "rpc"
    assert lab.running() == [], "fsradm events was ended"


def test_events_stream_what_happens_while_subscribed(lab, deadline):
    both_up(lab)  # a and b are connecting; they connect and authenticate within a second
    deadline(25)
    subscribed = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    started = time.monotonic()
    res = run_module(fsr_info.main, dict(name="r0", events=True, events_seconds=2.5, fsradm_path=lab.fsradm))
    assert time.monotonic() - started < 2.5 + 5
    events = res["resources"]["r0"]["events"]
    later = [e for e in events if e["type"] == "state" and e["timestamp"] > subscribed]
    assert "established" in [e["data"]["value"] for e in later], events
    assert lab.running() == []


def test_events_subscription_that_ignores_sigterm_is_killed(lab, deadline, monkeypatch):
    both_up(lab)
    monkeypatch.setenv("FSRSIM_EVENTS_IGNORE_TERM", "1")
    deadline(25)
    started = time.monotonic()
    res = run_module(fsr_info.main, dict(events=True, events_seconds=0.5, fsradm_path=lab.fsradm))
    elapsed = time.monotonic() - started
    assert 0.5 + 2.0 <= elapsed < 0.5 + 2.0 + 5, elapsed  # SIGTERM, the grace period, SIGKILL
    assert [e["type"] for e in res["resources"]["r0"]["events"]][:2] == ["rpc", "added"]
    assert lab.running() == []


def test_events_seconds_must_be_positive(lab):
    res = fail_module(fsr_info.main, dict(events=True, events_seconds=0, fsradm_path=lab.fsradm))
    assert res["msg"].startswith("events_seconds=0")


@pytest.mark.parametrize("name", ["../r0", "/etc/fsr/r0", "-v", "all"])
def test_name_is_checked(lab, name):
    res = fail_module(fsr_info.main, dict(name=name, fsradm_path=lab.fsradm))
    assert res["msg"].startswith("name=%s: " % name)
    assert lab.calls() == []
