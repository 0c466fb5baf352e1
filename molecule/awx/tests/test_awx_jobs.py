# SPDX-License-Identifier: GPL-3.0-or-later
"""The jobs converge ran the way AWX runs them, read back from what ansible-runner kept: each job's
status and rc, its job events (the plays and tasks that ran, the progress lines, the figures the
report hands to AWX) and the files under its private data directory.

The migration's phases ran one job each, in the workflow's order, in the execution environment
image; the Redis backup ran the collection installed from its Galaxy tarball.
"""
from __future__ import annotations

import glob
import json
import os
import re

import pytest

testinfra_hosts = ["ansible://new"]

RUNNER_ROOT = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".tmp", "awx-runner")
EE_IMAGE = "localhost/nodowntime-ee:current"
EE_COLLECTION = "/usr/share/ansible/collections/ansible_collections/nodowntime/storage/"
PHASES = ["prepare", "initial_sync", "replicate", "verify", "cutover"]
# The modules each phase's job runs, and those it must not (the job templates' tags decide).
COLLECTION = "nodowntime.storage."
PHASE_MODULES = {
    "prepare": ({"rsyncd_share"}, {"rsync_copy", "lsyncd_conf", "tree_verify", "lsyncd_drain"}),
    "initial_sync": ({"rsync_copy"}, {"rsyncd_share", "lsyncd_conf", "tree_verify", "lsyncd_drain"}),
    "replicate": ({"lsyncd_conf"}, {"rsyncd_share", "rsync_copy", "tree_verify"}),
    "verify": ({"tree_verify"}, {"rsyncd_share", "rsync_copy", "lsyncd_conf", "lsyncd_drain"}),
    "cutover": ({"lsyncd_drain", "rsyncd_share", "lsyncd_conf"}, {"rsync_copy", "tree_verify"}),
}
PROGRESS = re.compile(r"\((\d+)%\); [0-9.]+ [KMG]?i?B/s; (ETA \S+|done in \S+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def artifacts(job):
    return os.path.join(RUNNER_ROOT, job, "artifacts", job)


def events(job):
    found = []
    for path in glob.glob(os.path.join(artifacts(job), "job_events", "*.json")):
        with open(path, encoding="utf-8") as f:
            found.append(json.load(f))
    assert found, "job %s left no job events" % job
    return sorted(found, key=lambda e: e["counter"])


def stats_artifacts(job):
    stats = [e for e in events(job) if e["event"] == "playbook_on_stats"]
    assert len(stats) == 1, "job %s has %d stats events" % (job, len(stats))
    return stats[0]["event_data"].get("artifact_data") or {}


def modules_run(job):
    """The collection's modules that ran a task (ok or changed) in the job."""
    return {e["event_data"]["resolved_action"][len(COLLECTION):] for e in events(job)
            if e["event"] in ("runner_on_ok", "runner_item_on_ok")
            and e.get("event_data", {}).get("resolved_action", "").startswith(COLLECTION)}


def task_paths(job):
    return [e["event_data"]["task_path"] for e in events(job)
            if "/roles/" in e.get("event_data", {}).get("task_path", "")]


@pytest.mark.parametrize("job", PHASES + ["redis"])
def test_job_succeeded_without_a_failed_task(job):
    with open(os.path.join(artifacts(job), "status"), encoding="utf-8") as f:
        assert f.read().strip() == "successful"
    with open(os.path.join(artifacts(job), "rc"), encoding="utf-8") as f:
        assert f.read().strip() == "0"
    bad = [(e["event"], e["event_data"].get("task")) for e in events(job)
           if e["event"] in ("runner_on_unreachable", "runner_item_on_failed")
           or (e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors"))]
    assert not bad, "job %s: %s" % (job, bad)


@pytest.mark.parametrize("job", PHASES)
def test_phase_job_ran_its_phase_only(job):
    expected, foreign = PHASE_MODULES[job]
    ran = modules_run(job)
    assert expected <= ran, "job %s ran %s" % (job, sorted(ran))
    assert not foreign & ran, "job %s ran %s too: its tags were not applied" % (job, sorted(foreign & ran))


@pytest.mark.parametrize("job", PHASES)
def test_phase_job_ran_in_the_execution_environment(job):
    with open(os.path.join(artifacts(job), "command"), encoding="utf-8") as f:
        command = json.load(f)["command"]
    assert command[:2] == ["podman", "run"] and EE_IMAGE in command
    paths = task_paths(job)
    assert paths and all(p.startswith(EE_COLLECTION) for p in paths), paths[:3]


def progress_lines(job):
    return [ANSI.sub("", e["stdout"]) for e in events(job)
            if e["event"] == "runner_item_on_ok" and PROGRESS.search(e.get("stdout", ""))]


def test_copy_progress_lines_are_job_events():
    lines = progress_lines("initial_sync")
    percents = [int(PROGRESS.search(line).group(1)) for line in lines]
    assert len(lines) >= 3, lines
    assert any("ETA" in line for line in lines), lines
    assert percents[-1] == 100 and percents == sorted(percents), percents


def test_survey_bandwidth_limit_reached_the_copy():
    """The survey answered 1MiB in total: the copy's rate in its progress lines stays below it."""
    rates = []
    for line in progress_lines("initial_sync"):
        value, unit = re.search(r"; ([0-9.]+) ([KMG]?i?B)/s;", line).groups()
        rates.append(float(value) * {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}[unit])
    assert rates and max(rates) < 1.15 * 1024 ** 2, rates


def test_report_figures_are_the_cutover_job_artifacts():
    data = stats_artifacts("cutover")["migration_report"]
    pair = data["pairs"]["old"]
    assert pair["state"] == "cut_over" and pair["cutover"] == "done"
    assert pair["verify_clean"] is True
    assert pair["files_copied"] > 2000
    # The survey's downtime budget.
    assert 0 < pair["downtime_seconds"] < 30
    assert any("without storage" in line for line in data["summary"])
    with open(os.path.join(RUNNER_ROOT, "cutover", "migration-report", "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert report["pairs"]["old"]["cutover"]["downtime_seconds"] == pair["downtime_seconds"]
    # matplotlib, from the collection's requirements.txt, is in the image: the picture was drawn.
    assert os.path.getsize(os.path.join(RUNNER_ROOT, "cutover", "migration-report", "timeline.png")) > 1000


def test_galaxy_tarball_installed_with_nothing_but_ansible_posix():
    root = os.path.join(RUNNER_ROOT, "collections", "ansible_collections")
    installed = sorted("%s.%s" % (ns, name) for ns in os.listdir(root) for name in os.listdir(os.path.join(root, ns)))
    assert installed == ["ansible.posix", "nodowntime.storage"]
    paths = task_paths("redis")
    assert paths and all(p.startswith(os.path.join(root, "nodowntime", "storage") + "/") for p in paths), paths[:3]


def test_redis_backup_job_shows_progress_and_left_an_archive(host):
    lines = progress_lines("redis")
    assert lines and "(100%)" in lines[-1], lines
    archive = re.search(r"(aof_\S+\.tar\.zst)", lines[-1]).group(1)
    listing = host.run("tar -I zstd -tvf /var/backups/redis/%s", archive)
    assert listing.rc == 0, listing.stderr
    sizes = [int(line.split()[2]) for line in listing.stdout.splitlines() if line.startswith("-")]
    # 20,000 keys were in Redis (the AOF's RDB base compresses their values); an empty one
    # archives under 1 KB.
    assert sum(sizes) > 100_000, listing.stdout
