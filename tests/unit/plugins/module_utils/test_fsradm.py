# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsers of _fsradm on the FSR manual's sample outputs.

``fixtures/fsradm/*.oneline.*`` are the samples exactly as the manual's web page renders them
(line breaks lost); the files without ``.oneline`` are the same samples with the multi-line
layout reconstructed (resource line, indented peer lines). Both must parse identically.
"""
from __future__ import annotations

import os
import sys
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _fsradm

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "fsradm")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("name", ["status_all.oneline.txt", "status_all.txt"])
def test_parse_status_all(name):
    res = _fsradm.parse_status(fixture(name))
    assert [r["name"] for r in res] == ["r0", "r1"]
    r0, r1 = res
    assert r0["node"] is None
    assert (r0["role"], r0["file"], r0["pending"], r0["locked"]) == ("primary", "up_to_date", 0, False)
    assert list(r0["peers"]) == ["node2", "node3"]
    assert r0["peers"]["node2"] == {
        "name": "node2", "state": "repl_source", "peer_state": "repl_target", "role": "secondary",
        "file": "up_to_date", "last_synced": "2019-10-24T15:30:12+09:00",
    }
    assert r0["peers"]["node3"]["state"] == "connecting"
    assert r0["peers"]["node3"]["peer_state"] == "unknown"
    assert r0["peers"]["node3"]["last_synced"] is None
    assert (r1["role"], r1["file"]) == ("secondary", "inconsistent")
    assert list(r1["peers"]) == ["node2"]
    assert r1["peers"]["node2"]["state"] == "connecting"


@pytest.mark.parametrize("name", ["status_v.oneline.txt", "status_v.txt"])
def test_parse_status_verbose(name):
    (r0,) = _fsradm.parse_status(fixture(name))
    assert (r0["name"], r0["node"]) == ("r0", "node1")
    assert r0["last_promoted"] == "2020-06-10T09:40:32+09:00"
    assert r0["locked"] is False
    node2 = r0["peers"]["node2"]
    assert node2["repl_started"] == "2020-06-10T09:40:32+09:00"
    assert node2["last_synced"] == "2020-06-10T09:40:33+09:00"
    assert (node2["state"], node2["peer_state"]) == ("repl_source", "repl_target")
    assert r0["peers"]["node3"]["last_synced"] == "2020-04-09T09:50:53+09:00"


@pytest.mark.parametrize("name", ["status_watch.oneline.txt", "status_watch.txt"])
def test_parse_status_watch_footer_ignored(name):
    res = _fsradm.parse_status(fixture(name))
    assert [r["name"] for r in res] == ["r0", "r1"]
    assert res[0]["pending"] is None  # the --watch sample has no pending field
    assert res[0]["peers"]["node2"]["state"] == "established"
    assert res[1]["peers"]["node2"] == {
        "name": "node2", "state": "connecting", "peer_state": "unknown", "role": "secondary",
        "file": "unknown", "last_synced": None,
    }


def test_parse_status_both_layouts_agree():
    for a, b in [("status_all.oneline.txt", "status_all.txt"), ("status_v.oneline.txt", "status_v.txt"),
                 ("status_watch.oneline.txt", "status_watch.txt")]:
        assert _fsradm.parse_status(fixture(a)) == _fsradm.parse_status(fixture(b))


def test_parse_status_empty_and_unknown_keys():
    assert _fsradm.parse_status("") == []
    (r,) = _fsradm.parse_status("r9 role:secondary file:outdated pending:3 locked:true future-key:x\n"
                                "  peer1 state:standalone peer-state:unknown role:secondary file:unknown")
    assert r["pending"] == 3 and r["locked"] is True and r["future_key"] == "x"
    assert r["peers"]["peer1"]["state"] == "standalone"


@pytest.mark.parametrize("name", ["result.oneline.json", "result.json"])
def test_parse_result(name):
    r = _fsradm.parse_result(fixture(name))
    assert r["id"] == "r0"
    assert r["peer_node"] == "node2"
    assert r["finished"] is True
    assert r["end_time"] == "2019-09-09T06:22:27.4653424Z"
    assert r["totals"] == {
        "diff_dir": 3, "diff_file": 1, "diff_bytes": 14, "orphaned_dir": 0, "orphaned_file": 0,
        "orphaned_bytes": 0, "missing_dir": 0, "missing_file": 0, "missing_bytes": 0, "synced_bytes": 0,
    }
    assert r["differences"] == 4
    assert r["clean"] is False
    assert r["file_count"] == 4
    assert r["files"][3]["name"] == "G:\\Temp\\test1\\contributors.txt"
    assert r["files"][3]["properties"]["size"] == {"local": 9, "remote": 15}


def test_parse_result_running():
    r = _fsradm.parse_result('{"id":"r0","result":{"summary":{"start_time":"2024-01-01T00:00:00Z",'
                             '"end_time":"","peer_node":"b"}}}')
    assert r["finished"] is False and r["totals"] == {} and r["differences"] == 0 and r["clean"] is True


@pytest.mark.parametrize("name", ["events_json.oneline.txt", "events_json.txt"])
def test_parse_events_json(name):
    ev = _fsradm.parse_events_json(fixture(name))
    assert [e["type"] for e in ev] == ["rpc", "state", "added", "role", "file_state", "file_state",
                                       "file_state", "state"]
    assert ev[0]["data"] == {"state": "connected"}
    assert ev[1]["data"] == {"node": "node2", "peer": "node1", "resource": "r0", "value": "standalone"}
    assert [e["data"]["value"] for e in ev if e["type"] == "file_state"] == ["fileless", "attaching", "outdated"]
    assert ev[-1]["timestamp"] == "2020-06-12T03:43:58.479433800Z"


@pytest.mark.parametrize("name", ["events.oneline.txt", "events.txt"])
def test_parse_events_plain(name):
    ev = _fsradm.parse_events(fixture(name))
    assert len(ev) == 8
    assert ev[0] == {"type": "rpc", "timestamp": "2020-06-12T12:42:39.295379", "data": {"state": "connected"}}
    assert ev[3]["data"] == {"node": "node2", "resource": "r0", "role": "secondary"}
    assert ev[7]["data"]["value"] == "connecting"


def test_plain_and_json_events_agree_on_content():
    plain = _fsradm.parse_events(fixture("events.txt"))
    js = _fsradm.parse_events_json(fixture("events_json.txt"))
    assert [(e["type"], e["data"]) for e in plain] == [(e["type"], e["data"]) for e in js]


@pytest.mark.parametrize("kwargs, expected", [
    (dict(action="primary", resource="r0", force=True), ["fsradm", "primary", "r0", "-f"]),
    (dict(action="secondary", resource="r0", lock=True), ["fsradm", "secondary", "-l", "r0"]),
    (dict(action="primary", resource="r0", unlock=True), ["fsradm", "primary", "-u", "r0"]),
    (dict(action="status", resource="all", verbose=True), ["fsradm", "status", "-v", "all"]),
    (dict(action="meta create", resource="r0"), ["fsradm", "meta", "create", "r0"]),
    (dict(action="events", resource="r0", json_output=True), ["fsradm", "events", "--json", "r0"]),
    (dict(action="connect", resource="r0", peer="node2"), ["fsradm", "connect", "r0", "node2"]),
    (dict(action="verify", resource="r0", peer="all"), ["fsradm", "verify", "r0", "all"]),
])
def test_build_command_matches_manual_forms(kwargs, expected):
    assert _fsradm.build_command("fsradm", **kwargs) == expected


def test_display_command_uses_basename():
    assert _fsradm.display_command(["/opt/fsr/bin/fsradm", "primary", "r 0"]) == "fsradm primary 'r 0'"


@pytest.mark.parametrize("raw, expected", [
    ("100M", 100 * 1024 ** 2), ("1G", 1024 ** 3), ("4096", 4096), (512, 512), ("10KiB", 10240),
    ("1.5g", int(1.5 * 1024 ** 3)),
])
def test_parse_size(raw, expected):
    assert _fsradm.parse_size(raw) == expected


@pytest.mark.parametrize("raw", ["", "M", "10X", "-1", "1 0M", True])
def test_parse_size_rejects(raw):
    with pytest.raises(ValueError):
        _fsradm.parse_size(raw)


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def clock(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def test_wait_until_succeeds_after_polling():
    fc = FakeClock()
    seen = iter([(False, "a"), (False, "b"), (True, "c")])
    done, value, elapsed = _fsradm.wait_until(lambda: next(seen), 10, 0.5, fc.clock, fc.sleep)
    assert (done, value, elapsed) == (True, "c", 1.0)
    assert fc.sleeps == [0.5, 0.5]


def test_wait_until_times_out_with_last_value():
    fc = FakeClock()
    calls = []

    def probe():
        calls.append(fc.t)
        return False, len(calls)

    done, value, elapsed = _fsradm.wait_until(probe, 2, 0.75, fc.clock, fc.sleep)
    assert done is False
    assert elapsed == 2
    assert calls == [0.0, 0.75, 1.5, 2.0]  # the last probe is at the deadline
    assert value == 4


def test_describe_names_the_state_seen():
    (r0, _r1) = _fsradm.parse_status(fixture("status_all.txt"))
    text = _fsradm.describe(r0)
    assert "role primary" in text and "peer node2: repl_source/repl_target" in text
    assert _fsradm.describe(None) == "resource not up"


# --------------------------------------------------------------------------- subscriptions

def child(tmp_path, body):
    """argv of a Python child that writes its PID to a file first, then runs ``body``."""
    pidfile = tmp_path / ("pid-%d" % len(list(tmp_path.iterdir())))
    code = "import os, signal, sys, time\nopen(%r, 'w').write(str(os.getpid()))\n%s" % (str(pidfile), body)
    return [sys.executable, "-c", code], pidfile


def gone(pidfile):
    try:
        os.kill(int(pidfile.read_text()), 0)
    except ProcessLookupError:
        return True
    return False


STREAM = "while True:\n    print('event', flush=True)\n    time.sleep(0.05)\n"


@pytest.mark.functional
def test_read_for_ends_a_stream_at_the_deadline(tmp_path):
    argv, pidfile = child(tmp_path, STREAM)
    started = time.monotonic()
    ((rc, out, err),) = _fsradm.read_for([argv], 0.5, grace=2)
    assert 0.5 <= time.monotonic() - started < 2.0
    assert rc is None and out.count("event\n") >= 3 and err == ""
    assert gone(pidfile)


@pytest.mark.functional
def test_read_for_kills_what_ignores_sigterm(tmp_path):
    argv, pidfile = child(tmp_path, "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STREAM)
    started = time.monotonic()
    ((rc, out, _err),) = _fsradm.read_for([argv], 0.3, grace=0.5)
    assert 0.8 <= time.monotonic() - started < 3.0
    assert rc is None and "event" in out
    assert gone(pidfile)


@pytest.mark.functional
def test_read_for_reads_several_at_once_and_returns_early_when_all_exit(tmp_path):
    quick, quick_pid = child(tmp_path, "print('bye'); sys.stderr.write('oops'); sys.exit(3)\n")
    quick2, quick2_pid = child(tmp_path, "print('ok')\n")
    started = time.monotonic()
    results = _fsradm.read_for([quick, quick2], 10)
    assert time.monotonic() - started < 5
    assert results == [(3, "bye\n", "oops"), (0, "ok\n", "")]
    assert gone(quick_pid) and gone(quick2_pid)


@pytest.mark.functional
def test_events_drops_an_event_cut_off_by_the_end(tmp_path, monkeypatch):
    body = ("sys.stdout.write('{\"type\":\"rpc\",\"datas\":{\"state\":\"connected\"}}\\n{\"type\":\"ro')\n"
            "sys.stdout.flush()\ntime.sleep(60)\n")
    argv, pidfile = child(tmp_path, body)
    fsr = _fsradm.Fsradm(None, "fsradm")
    monkeypatch.setattr(fsr, "command", lambda *a, **k: argv)
    expected = [{"type": "rpc", "timestamp": None, "data": {"state": "connected"}}]
    assert fsr.events(["r0"], 0.5, grace=1) == {"r0": expected}
    assert gone(pidfile)


@pytest.mark.functional
def test_events_that_fail_raise_fsradm_error(tmp_path, monkeypatch):
    argv, _pidfile = child(tmp_path, "sys.stderr.write('r0: no such resource'); sys.exit(1)\n")
    fsr = _fsradm.Fsradm(None, "fsradm")
    monkeypatch.setattr(fsr, "command", lambda *a, **k: argv)
    with pytest.raises(_fsradm.FsradmError) as e:
        fsr.events(["r0"], 5)
    assert e.value.rc == 1 and e.value.message == "r0: no such resource"


@pytest.mark.parametrize("name, ok", [
    ("r0", True), ("db-1.main_2", True), ("all", False), ("../r0", False), ("/r0", False), ("-f", False),
    (".r0", False), ("r 0", False), ("", False), ("r" * 128, True), ("r" * 129, False),
])
def test_check_name(name, ok):
    problem = _fsradm.check_name("name", name)
    assert (problem is None) is ok, problem
    if not ok:
        assert problem.startswith("name=%s: " % name)
    assert _fsradm.check_name("verify_peer", "all", allow_all=True) is None
