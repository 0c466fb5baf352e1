# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer_job: one scheduled transfer with the real rsync, its group lock and its run log."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync_runner, _run_log, _transfer_job


def _config(tmp_path, **extra):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    cfg = dict(name="logs", src=str(src), dest=str(tmp_path / "dest"), runs_log=str(tmp_path / "runs.jsonl"),
               lock_dir=str(tmp_path / "locks"), acls=False, xattrs=False)
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize("change, message", [
    (dict(name="../x"), "name='../x': use letters"),
    (dict(name=""), "name is required"),
    (dict(lock_group="a b"), "lock_group='a b'"),
    (dict(bw_limit="1M"), "unknown setting(s) bw_limit"),
    (dict(remove_source_files=True, workers=2), "remove_source_files needs workers=1"),
    (dict(workers="2"), "workers='2' must be a whole number"),
    (dict(delete="yes"), "delete='yes' must be a boolean"),
    (dict(exclude="*.tmp"), "exclude='*.tmp' must be a list"),
])
def test_bad_settings_are_named(tmp_path, change, message):
    with pytest.raises(_transfer_job.ConfigError) as e:
        _transfer_job.load_config(_config(tmp_path, **change))
    assert message in str(e.value)


def test_the_group_defaults_to_the_name_and_the_lock_file_follows_it(tmp_path):
    settings = _transfer_job.load_config(_config(tmp_path))
    assert settings["lock_group"] == "logs"
    assert _transfer_job.lock_path(settings) == str(tmp_path / "locks" / "transfer-logs.lock")
    shared = _transfer_job.load_config(_config(tmp_path, lock_group="wan"))
    assert _transfer_job.lock_path(shared) == str(tmp_path / "locks" / "transfer-wan.lock")


def test_copy_params_carry_fidelity_and_log_shipping(tmp_path):
    params = _transfer_job.copy_params(_transfer_job.load_config(_config(tmp_path, remove_source_files=True,
                                                                         bwlimit="2M")))
    assert params["extra_args"] == ["--remove-source-files"]
    assert params["hard_links"] and params["sparse"] and params["numeric_ids"] and not params["acls"]
    assert params["bwlimit"] == "2M" and params["partial_dir"] == ".rsync-partial"


@pytest.mark.functional
def test_a_run_copies_and_records_its_figures(tmp_path):
    settings = _transfer_job.load_config(_config(tmp_path))
    (tmp_path / "src" / "a.log").write_bytes(b"x" * 5000)
    (tmp_path / "src" / "b.log").write_bytes(b"y" * 300)
    record, status = _transfer_job.run(settings, trigger="cron")
    assert status == 0
    assert (record["outcome"], record["files"], record["bytes"], record["rsync_rc"]) == ("ok", 2, 5300, 0)
    assert (record["job"], record["kind"], record["action"], record["trigger"]) == ("logs", "transfer", "transfer", "cron")
    assert (tmp_path / "dest" / "a.log").read_bytes() == b"x" * 5000
    logged, bad = _run_log.read(settings["runs_log"])
    assert logged == [record] and bad == 0
    # nothing new: an ok run that moved nothing
    again, status = _transfer_job.run(settings)
    assert status == 0 and again["files"] == 0 and again["bytes"] == 0


@pytest.mark.functional
def test_log_shipping_removes_what_was_sent(tmp_path):
    settings = _transfer_job.load_config(_config(tmp_path, remove_source_files=True))
    (tmp_path / "src" / "app.log.1").write_text("rotated\n")
    record, status = _transfer_job.run(settings)
    assert status == 0 and record["files"] == 1
    assert not (tmp_path / "src" / "app.log.1").exists()
    assert (tmp_path / "dest" / "app.log.1").read_text() == "rotated\n"


@pytest.mark.functional
def test_a_busy_group_is_skipped_and_recorded_not_queued(tmp_path):
    first = _transfer_job.load_config(_config(tmp_path, lock_group="wan"))
    other = _transfer_job.load_config(_config(tmp_path, name="dumps", lock_group="wan",
                                              dest=str(tmp_path / "dest2")))
    (tmp_path / "src" / "a").write_text("a\n")
    os.makedirs(first["lock_dir"])
    held = _rsync_runner.open_lock(_transfer_job.lock_path(first))  # a run of the group in progress
    try:
        record, status = _transfer_job.run(other, trigger="systemd")
    finally:
        os.close(held)
    assert status == _run_log.EXIT_SKIPPED == 75
    assert record["outcome"] == "skipped" and "lock group wan busy" in record["msg"]
    assert "held by PID %d" % os.getpid() in record["msg"]
    assert not (tmp_path / "dest2").exists()
    assert _run_log.read(other["runs_log"])[0][-1]["outcome"] == "skipped"
    # the lock released, the next run goes ahead
    record, status = _transfer_job.run(other)
    assert status == 0 and (tmp_path / "dest2" / "a").exists()


@pytest.mark.functional
def test_a_failed_run_is_recorded_with_rsync_s_reason(tmp_path):
    settings = _transfer_job.load_config(_config(tmp_path, dest="127.0.0.1::nomodule", connect_timeout=5,
                                                 io_timeout=5))
    (tmp_path / "src" / "a").write_text("a\n")
    record, status = _transfer_job.run(settings)
    assert status == 1 and record["outcome"] == "failed"
    assert record["rsync_rc"] not in (0, 24, None) and "rsync" in record["msg"]
    assert _run_log.read(settings["runs_log"])[0][-1] == record


@pytest.mark.functional
def test_the_cli_prints_the_record_and_exits_with_its_status(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(_config(tmp_path)))
    (tmp_path / "src" / "a").write_text("a\n")
    assert _transfer_job.main(["run", "--config", str(cfg), "--trigger", "manual"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["outcome"] == "ok" and printed["trigger"] == "manual"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(_config(tmp_path), workers=2, remove_source_files=True)))
    assert _transfer_job.main(["run", "--config", str(bad)]) == 1
    assert "remove_source_files needs workers=1" in json.loads(capsys.readouterr().out)["msg"]


@pytest.mark.functional
def test_a_stopped_run_is_recorded_and_the_next_one_resumes_from_the_partial_file(tmp_path):
    """SIGTERM to the job alone (as cron's side would send it): the job stops rsync, records the
    run as failed, and the next run resumes from the partial file instead of starting again."""
    import subprocess
    import sys
    import time

    cfg = _config(tmp_path, bwlimit="1M")
    (tmp_path / "src" / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    job = subprocess.Popen([sys.executable, "-m", _transfer_job.__name__, "run", "--config", str(tmp_path / "cfg.json")],
                           stdout=subprocess.PIPE, env=env)
    partial_seen = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not partial_seen:  # rsync's temporary file on the receiver
        time.sleep(0.2)
        partial_seen = any(name.startswith(".big.bin.") and os.path.getsize(str(tmp_path / "dest" / name)) > 1024 * 1024
                           for name in (os.listdir(str(tmp_path / "dest")) if (tmp_path / "dest").exists() else []))
    assert partial_seen, "the copy did not start"
    job.send_signal(15)
    out, _err = job.communicate(timeout=30)
    stopped = json.loads(out)
    assert job.returncode == 1 and stopped["outcome"] == "failed" and stopped["rsync_rc"] == 20
    assert "run again to resume" in stopped["msg"]
    kept = tmp_path / "dest" / ".rsync-partial" / "big.bin"
    kept_size = kept.stat().st_size
    assert kept_size > 1024 * 1024
    # A local copy sends whole files; --no-whole-file gives it the delta transfer a remote one has.
    record, status = _transfer_job.run(_transfer_job.load_config(dict(cfg, bwlimit="0", extra_args=["--no-whole-file"])))
    # the kept part is matched against, not sent again (rsync matches in whole blocks)
    assert status == 0 and record["matched_bytes"] >= kept_size - 64 * 1024
    assert (tmp_path / "dest" / "big.bin").read_bytes() == (tmp_path / "src" / "big.bin").read_bytes()
    assert [r["outcome"] for r in _run_log.read(cfg["runs_log"])[0]] == ["failed", "ok"]
