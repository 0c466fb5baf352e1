# SPDX-License-Identifier: GPL-3.0-or-later
"""nodowntime.storage.job_progress on status files written the way Ansible's async wrapper writes
them (ansible-core 2.19) and progress files written by _progress.ProgressFile."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress
from ansible_collections.nodowntime.storage.plugins.modules import job_progress

from .utils import fail_module, run_module

JID = "j318412269875.4921"
LABEL = "old:/srv/data -> new::data"
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".tmp", "collections"))

RUNNING = {"started": True, "finished": False, "ansible_job_id": JID}
# What rsync_copy returned, as the async wrapper stores a module's result (invocation included).
DONE = {"changed": True, "rsync_rc": 0, "changes_count": 2, "deleted": 0, "vanished": [],
        "stats": {"files": 2, "files_transferred": 1, "bytes_transferred": 4096, "elapsed": 4.0, "rate": 1024.0},
        "invocation": {"module_args": {"src": "/srv/data", "dest": "new::data"}}}
FAILED = {"changed": False, "failed": True, "rsync_rc": 5,
          "msg": "rsync all exited 5 (error starting client-server protocol): @ERROR: Unknown module 'nope'",
          "invocation": {"module_args": {"src": "/srv/data", "dest": "new::nope"}}}


@pytest.fixture
def job(tmp_path):
    """An async directory, a progress file with two lines, and a way to write the job's status."""
    async_dir = tmp_path / "async"
    async_dir.mkdir()
    progress = tmp_path / "copy.progress"
    now = [100.0]
    pf = _progress.ProgressFile(str(progress), interval=0, what="copy", clock=lambda: now[0])
    pf.update(bytes_done=0, files_done=0, note="copying /srv/data to new::data with 1 rsync process(es)")
    now[0] += 2
    pf.update(bytes_done=2048, bytes_total=4096, files_done=1, files_total=2)

    class Job:
        dir = async_dir
        path = async_dir / JID
        progress_file = progress
        writer = pf

        @staticmethod
        def status(data):
            Job.path.write_text(json.dumps(data))

        @staticmethod
        def finish(data):
            now[0] += 2
            pf.finish(bytes_done=4096, bytes_total=4096, files_done=2, files_total=2)
            Job.status(data)

        @staticmethod
        def args(**extra):
            base = dict(jid=JID, async_dir=str(async_dir), progress_file=str(progress), wait=0, label=LABEL)
            base.update(extra)
            return base

    Job.status(RUNNING)
    return Job


def test_running_job_says_how_far_it_is(job):
    result = run_module(job_progress.main, job.args())
    last = _progress.read_last(str(job.progress_file))
    assert result["changed"] is False and result["finished"] is False
    assert result["msg"] == LABEL + ": " + last["text"]
    assert result["msg"] == LABEL + ": 2.0 KiB of 4.0 KiB, 1 of 2 files (50%); 1.0 KiB/s; ETA 2s"
    assert result["progress"] == last
    assert result["ansible_job_id"] == JID
    assert "rsync_rc" not in result
    assert job.path.exists()


def test_check_mode_is_the_same(job):
    assert run_module(job_progress.main, job.args(), check_mode=True) == run_module(job_progress.main, job.args())
    job.finish(DONE)
    checked = run_module(job_progress.main, job.args(cleanup=False), check_mode=True)
    assert checked == run_module(job_progress.main, job.args())
    assert not job.path.exists()


def test_running_job_without_progress(job):
    result = run_module(job_progress.main, job.args(progress_file=None, label=""))
    assert result["msg"] == "running, no progress reported yet" and result["progress"] == {}
    job.progress_file.write_text("")  # started, nothing written yet
    result = run_module(job_progress.main, job.args())
    assert result["msg"] == LABEL + ": running, no progress reported yet" and not result["finished"]


def test_finished_job_returns_its_result_and_is_forgotten(job):
    job.finish(DONE)
    result = run_module(job_progress.main, job.args())
    assert result["finished"] is True
    for key in ("changed", "rsync_rc", "changes_count", "deleted", "vanished", "stats"):
        assert result[key] == DONE[key]
    assert "invocation" not in result and "started" not in result
    assert result["progress"]["final"] and result["progress"]["percent"] == 100
    assert result["msg"] == LABEL + ": " + result["progress"]["text"]
    assert result["msg"].endswith("; done in 4s")
    assert not job.path.exists()
    # asked again: the job is gone
    again = fail_module(job_progress.main, job.args())
    assert JID in again["msg"] and again["finished"]


def test_finished_job_is_kept_without_cleanup(job):
    job.finish(DONE)
    first = run_module(job_progress.main, job.args(cleanup=False))
    assert first["finished"] and job.path.exists()
    assert run_module(job_progress.main, job.args()) == first
    assert not job.path.exists()


def test_job_ends_while_waiting(job):
    threading.Timer(0.3, job.finish, args=(DONE,)).start()
    started = time.monotonic()
    result = run_module(job_progress.main, job.args(wait=30))
    assert result["finished"] and result["rsync_rc"] == 0
    assert time.monotonic() - started < 5


def test_failed_job_fails_with_its_message(job):
    job.finish(FAILED)
    result = fail_module(job_progress.main, job.args())
    assert result["msg"] == LABEL + ": " + FAILED["msg"]
    assert result["finished"] is True and result["rsync_rc"] == 5 and result["changed"] is False
    assert result["progress"]["final"]
    assert "invocation" not in result
    assert not job.path.exists()


def test_failed_job_without_label_or_msg(job):
    job.status({"failed": True, "rsync_rc": 20})
    assert fail_module(job_progress.main, job.args(label=""))["msg"] == "the job failed"


def test_job_killed_at_its_async_time_fails(job):
    job.status({"msg": "Timeout exceeded", "failed": True, "child_pid": 4242})
    result = fail_module(job_progress.main, job.args(label=""))
    assert result["msg"] == "Timeout exceeded" and result["finished"]


def test_unknown_job_fails_naming_it(job):
    result = fail_module(job_progress.main, job.args(jid="j999.1"))
    assert result["msg"] == ("jid: no background job j999.1 in %s (finished and cleaned up, or started as another "
                             "user)" % job.dir)
    assert result["finished"] is True and result["ansible_job_id"] == "j999.1"


@pytest.mark.parametrize("jid", ["../" + JID, "/etc/passwd", ".."])
def test_a_jid_that_is_a_path_is_refused(job, jid):
    result = fail_module(job_progress.main, job.args(jid=jid))
    assert result["msg"] == "jid: %r is not a job id" % jid


def test_negative_wait_is_refused(job):
    assert fail_module(job_progress.main, job.args(wait=-1))["msg"] == "wait: must not be negative, got -1.0"


# -- the module as Ansible runs it: its own process, the real exit_json ---------------------------

def run_process(args):
    """Run job_progress in a process of its own the way Ansible does; its JSON result."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.nodowntime.storage.plugins.modules.job_progress",
         json.dumps({"ANSIBLE_MODULE_ARGS": args})],
        capture_output=True, text=True, env=env, cwd=COLLECTIONS, timeout=60, check=False)
    assert proc.stdout.strip(), "no result; stderr: %s" % proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warning_texts(result):
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


@pytest.mark.functional
def test_process_running_and_finished(job):
    running = run_process(job.args())
    assert running["finished"] is False and running["msg"].startswith(LABEL + ": 2.0 KiB of 4.0 KiB")
    job.finish(DONE)
    done = run_process(job.args())
    assert done["finished"] is True and done["rsync_rc"] == 0 and done["stats"] == DONE["stats"]
    # the job's own invocation is not passed on as job_progress's
    assert done["invocation"]["module_args"]["jid"] == JID


@pytest.mark.functional
def test_finished_job_with_warnings_passes_them_on(job):
    # rsync_copy warns when files vanished during the copy (expected on a live tree); ansible-core
    # 2.19 stores a module's warnings as WarningSummary objects in the status file.
    vanished = dict(DONE, rsync_rc=24, vanished=["a/tmp1"], warnings=[
        {"event": {"msg": "1 source file(s) vanished during the copy", "__ansible_type": "Event"},
         "__ansible_type": "WarningSummary"}])
    job.finish(vanished)
    result = run_process(job.args())
    assert not result.get("failed"), result.get("msg")
    assert result["finished"] and result["rsync_rc"] == 24
    assert "1 source file(s) vanished during the copy" in warning_texts(result)


@pytest.mark.functional
def test_failed_job_with_warnings_fails_with_its_message(job):
    failed = dict(FAILED, warnings=[{"event": {"msg": "a warning", "__ansible_type": "Event"},
                                     "__ansible_type": "WarningSummary"}],
                  deprecations=[{"event": {"msg": "an old option", "__ansible_type": "Event"}, "version": "2.23",
                                 "__ansible_type": "DeprecationSummary"}])
    job.finish(failed)
    result = run_process(job.args(label=""))
    assert result["failed"] and result["msg"] == FAILED["msg"] and result["rsync_rc"] == 5
