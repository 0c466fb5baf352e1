# SPDX-License-Identifier: GPL-3.0-or-later
"""The redis_backup role's scheduled script, run as the timer runs it, against a real redis-server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof as aof

from ..helpers import free_port
from .test_redis_aof_backup import REDIS_SERVER, Server, stop

# Runs the script against a real redis-server: functional tests.
pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed on this host")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SCRIPT = os.path.join(ROOT, "roles", "redis_backup", "files", "nodowntime_redis_aof_backup.py")
# The directory that holds the package tree ansible_collections/nodowntime/storage/..., as
# job_library installs it on a host.
LIB = os.path.abspath(os.path.join(os.path.dirname(aof.__file__), *[os.pardir] * 5))


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    stop(s.proc)


def script(cfg_path, *args):
    env = dict(os.environ, NODOWNTIME_LIB=LIB, NODOWNTIME_TRIGGER="test")
    proc = subprocess.run([sys.executable, SCRIPT] + list(args) + ["--config", str(cfg_path)],
                          capture_output=True, text=True, env=env, check=False)
    return proc.returncode, json.loads(proc.stdout)


def runs(backup_dir):
    with open(os.path.join(str(backup_dir), "backup-runs.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_scheduled_runs_are_recorded_and_compliance_reported(server, tmp_path):
    server.populate(500)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(login_port=server.port, backup_dir=str(server.backup_dir), keep_last=1,
                                   poll_interval=0.05)))
    rc, out = script(cfg, "backup")
    assert rc == 0 and os.path.exists(out["archive"])
    assert server.client.config_get("appendfsync")["appendfsync"] == "always"

    rc, out = script(cfg, "record-skip")
    assert rc == 1 and out["outcome"] == "skipped"

    # a failed run (Redis gone) is recorded as failed
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(login_port=server.port, backup_dir=str(server.backup_dir),
                                   login_password="wrong-password-for-no-auth-server", login_user="nobody")))
    rc, out = script(bad, "backup")
    assert rc == 1 and out["failed"]

    outcomes = [r["outcome"] for r in runs(server.backup_dir)]
    assert outcomes == ["ok", "skipped", "failed"]
    assert all(r["trigger"] == "test" for r in runs(server.backup_dir))
    # the run-log format every scheduled job of the collection writes, which job_report reads
    assert {(r["job"], r["kind"], r["action"]) for r in runs(server.backup_dir)} == {
        ("redis-%d" % server.port, "redis_backup", "backup")}
    assert all(r["start"] <= r["end"] and r["start"].endswith("Z") for r in runs(server.backup_dir))

    rc, report = script(cfg, "report")
    assert rc == 0
    assert (report["runs"], report["ok"], report["failed"], report["percent"]) == (3, 1, 2, 33.33)

    rc, drill = script(cfg, "drill")
    assert rc == 0 and drill["passed"] and drill["keys"] == {"db0": 500}

    rc, status = script(cfg, "status")
    assert status["up"] and status["loading"] == 0 and status["total_keys"] == 500
    assert status["appendonly"] == "yes" and status["appenddirname"] == "appendonlydir"


def test_drill_without_archive_fails(server, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(login_port=server.port, backup_dir=str(server.backup_dir))))
    rc, drill = script(cfg, "drill")
    assert rc == 1 and not drill["passed"] and "no archive of port" in drill["problems"][0]


def test_status_waits_a_bounded_time_and_says_why(server, tmp_path):
    """status --wait N: at once when Redis is up and loaded, else after N seconds with a line saying why."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(login_port=server.port, backup_dir=str(server.backup_dir))))
    t0 = time.monotonic()
    rc, status = script(cfg, "status", "--wait", "30")
    assert rc == 0 and status["loaded"] and time.monotonic() - t0 < 10
    assert status["msg"] == "Redis on port %d is up, AOF loaded: 0 keys" % server.port
    down = tmp_path / "down.json"
    down.write_text(json.dumps(dict(login_port=free_port(), backup_dir=str(server.backup_dir))))
    t0 = time.monotonic()
    rc, status = script(down, "status", "--wait", "1.5")
    assert rc == 0 and not status["loaded"] and not status["up"]
    assert 1.5 <= time.monotonic() - t0 < 10
    assert status["msg"].startswith("Redis on port %s is not answering yet: " % json.loads(down.read_text())["login_port"])


ROLE_TASKS = os.path.join(ROOT, "roles", "redis_backup", "tasks")


def test_role_tasks_never_retry_and_never_reach_into_plugins():
    """No `until:` (it prints FAILED - RETRYING); nothing copied out of the collection's plugins/."""
    for name in sorted(os.listdir(ROLE_TASKS)):
        with open(os.path.join(ROLE_TASKS, name)) as f:
            tasks = yaml.safe_load(f)
        for task in tasks:
            assert "until" not in task and "retries" not in task, (name, task["name"])
            assert "plugins/" not in json.dumps(task), (name, task["name"])
