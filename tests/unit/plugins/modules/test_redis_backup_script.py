# SPDX-License-Identifier: GPL-3.0-or-later
"""The redis_backup role's scheduled script, run as the timer runs it, against a real redis-server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .test_redis_aof_backup import REDIS_SERVER, Server, stop

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed on this host")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SCRIPT = os.path.join(ROOT, "roles", "redis_backup", "files", "nodowntime_redis_aof_backup.py")
LIB = os.path.join(ROOT, "plugins", "module_utils")


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
