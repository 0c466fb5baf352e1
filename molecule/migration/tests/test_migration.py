# SPDX-License-Identifier: GPL-3.0-or-later
"""After the whole migration, cutover included: new holds what the live writer wrote, to the
checksum, and old holds it too through the replication back (new -> old).

The client's writer wrote through an sshfs mount, of old:/srv/data before the cutover and of
new:/srv/data after it, and logged every operation with the content's sha256. The writer is
stopped here; lsyncd then has a few seconds to ship its last changes.
"""
from __future__ import annotations

import json
import os
import time

import pytest

testinfra_hosts = ["ansible://new"]

WAIT = 30  # seconds lsyncd may take to ship the writer's last changes (delay 1 s + rsync)


def lab(host, name):
    return host.get_host("ansible://%s" % name, ansible_inventory=host.backend.ansible_inventory)


@pytest.fixture(scope="module")
def old(host):
    return lab(host, "old")


@pytest.fixture(scope="module")
def new(host):
    return lab(host, "new")


@pytest.fixture(scope="module")
def writer_log(host):
    """Stop the writer, then replay its log: the last operation of each path decides."""
    client = lab(host, "client")
    client.run_expect([0], "systemctl stop lab-writer.service")
    expected = {}
    ops = 0
    for line in client.file("/var/log/lab-writer.log").content_string.splitlines():
        op, path, digest = line.split(" ")
        expected[path] = None if op == "delete" else digest
        ops += 1
    assert ops > 50, "the writer hardly wrote anything (%d operations)" % ops
    return expected


def checksums(host, root):
    """sha256 of every file under root. rsync's temporary files come and go on new while lsyncd
    ships the last changes: a file that vanishes between find and sha256sum is skipped (the
    callers retry until the trees settle). fidelity/ holds names that are not UTF-8, which the
    test connection cannot carry; test_new_holds_what_plain_rsync_would_lose and the verify
    phase cover it."""
    out = host.run(
        "cd %s && find . -type f ! -name '.nodowntime-*' ! -path './.rsync-partial/*'"
        " ! -path './fidelity/*' -print0"
        " | xargs -0r sha256sum 2>/dev/null" % root).stdout
    result = {}
    for line in out.splitlines():
        digest, path = line.split("  ", 1)
        result[path[2:]] = digest
    return result


def logged_paths_that_differ(host, writer_log):
    """Paths whose content on host is not what the writer wrote last (None: should be absent),
    after giving replication WAIT seconds to ship the last writes."""
    deadline = time.time() + WAIT
    while True:
        on_host = checksums(host, "/srv/data")
        wrong = {p: d for p, d in writer_log.items() if on_host.get(p) != d}
        if not wrong or time.time() > deadline:
            return wrong
        time.sleep(1)


def test_every_logged_file_is_on_new_with_its_checksum(new, writer_log):
    wrong = logged_paths_that_differ(new, writer_log)
    present = sum(1 for d in writer_log.values() if d)
    assert present > 0 and any(d is None for d in writer_log.values())
    assert wrong == {}, "%d of %d logged paths differ on new (None = should be absent): %s" % (
        len(wrong), len(writer_log), dict(list(wrong.items())[:10]))


def test_old_holds_every_logged_file_through_the_replication_back(old, writer_log):
    wrong = logged_paths_that_differ(old, writer_log)
    assert wrong == {}, "%d of %d logged paths differ on old (None = should be absent): %s" % (
        len(wrong), len(writer_log), dict(list(wrong.items())[:10]))


def test_new_is_an_exact_copy_of_old(old, new, writer_log):
    deadline = time.time() + WAIT
    while True:
        on_old, on_new = checksums(old, "/srv/data"), checksums(new, "/srv/data")
        if on_old == on_new or time.time() > deadline:
            break
        time.sleep(1)
    assert len(on_old) >= 2000
    missing = sorted(set(on_old) - set(on_new))[:10]
    extra = sorted(set(on_new) - set(on_old))[:10]
    differ = sorted(p for p in set(on_old) & set(on_new) if on_old[p] != on_new[p])[:10]
    assert on_old == on_new, "missing on new %s, extra on new %s, different %s" % (missing, extra, differ)


def test_batch_jobs_are_stopped_and_recorded(old):
    crontab = old.check_output("crontab -l -u root")
    assert "#nodowntime-stopped: */5 * * * * /usr/bin/find /srv/data/live -mmin +60 -delete  # lab-cleanup" in crontab
    active = [line for line in crontab.splitlines() if line and not line.startswith("#")]
    assert active == ["* * * * * /usr/bin/touch /run/lab-heartbeat"], "only the unrelated job keeps running"
    timer = old.service("lab-backup.timer")
    assert not timer.is_running and not timer.is_enabled
    record = json.loads(old.file("/var/lib/nodowntime/batch_jobs.json").content_string)
    assert record["cron"] == {
        "/var/spool/cron/crontabs/root": ["*/5 * * * * /usr/bin/find /srv/data/live -mmin +60 -delete  # lab-cleanup"]}
    assert record["timers"] == [{"name": "lab-backup.timer", "enabled": "enabled", "active": "active"}]


def test_rsync_daemon_runs_under_systemd_with_the_share(new, old):
    service = new.service("rsync")
    assert service.is_running and service.is_enabled
    assert new.socket("tcp://0.0.0.0:873").is_listening
    conf = new.file("/etc/rsyncd.conf").content_string
    assert "[data]" in conf and "10.213.7.11" in conf and "auth users = nodowntime" in conf
    assert "--log-file=/var/log/rsyncd.log" in new.check_output("systemctl show rsync -p ExecStart")
    listing = old.run("rsync --password-file=/etc/nodowntime/rsync-data.password rsync://nodowntime@new/data/tree/")
    assert listing.rc == 0 and "t0" in listing.stdout


def test_the_share_wants_the_generated_secret(new, old):
    secrets = new.file("/etc/rsyncd.data.secrets")
    password = old.file("/etc/nodowntime/rsync-data.password")
    assert (secrets.user, secrets.mode) == ("root", 0o600)
    assert (password.user, password.mode) == ("root", 0o600)
    assert old.file("/etc/nodowntime").mode == 0o700
    secret = password.content_string.strip()
    assert len(secret) >= 32 and secrets.content_string.strip() == "nodowntime:" + secret
    without = old.run("rsync rsync://nodowntime@new/data/ </dev/null")
    assert without.rc != 0 and "auth failed" in without.stderr
    wrong = old.run("printf 'wrong\\n' >/tmp/wrong.pw && chmod 600 /tmp/wrong.pw && "
                    "rsync --password-file=/tmp/wrong.pw rsync://nodowntime@new/data/; rc=$?; rm -f /tmp/wrong.pw; exit $rc")
    assert wrong.rc != 0 and "auth failed" in wrong.stderr


def test_client_is_refused_by_the_share(host, old):
    client = lab(host, "client")
    secret = old.file("/etc/nodowntime/rsync-data.password").content_string.strip()
    attempt = client.run("RSYNC_PASSWORD=%s rsync rsync://nodowntime@new/data/" % secret)
    assert attempt.rc != 0 and "@ERROR" in attempt.stderr


def test_lsyncd_replicates_back_from_new_after_the_cutover(old, new):
    forward = old.service("lsyncd")
    assert not forward.is_running and not forward.is_enabled, "old -> new ended at the cutover"
    back = new.service("lsyncd")
    assert back.is_running and back.is_enabled
    assert new.check_output("systemctl show lsyncd -p FragmentPath") == "FragmentPath=/etc/systemd/system/lsyncd.service"
    conf = new.file("/etc/lsyncd/lsyncd.conf.lua").content_string
    for needle in ("default.rsync", 'source = "/srv/data"', 'target = "nodowntime@10.213.7.11::data"', "delete = true",
                   "init = false", "archive = true"):
        assert needle in conf, needle
    share = old.file("/etc/rsyncd.conf").content_string
    assert "[data]" in share and "10.213.7.12" in share and "auth users = nodowntime" in share


def test_client_uses_new_after_the_cutover(host):
    client = lab(host, "client")
    fstab = [line.split() for line in client.file("/etc/fstab").content_string.splitlines()
             if line.strip() and not line.startswith("#")]
    assert [f[0] for f in fstab if f[1] == "/mnt/data"] == ["root@new:/srv/data"]
    mounts = [line.split() for line in client.file("/proc/mounts").content_string.splitlines()]
    assert [m[0] for m in mounts if m[1] == "/mnt/data"] == ["root@new:/srv/data"]


def test_batch_jobs_run_on_new_with_the_same_schedule(new):
    crontab = new.check_output("crontab -l -u root")
    assert "*/5 * * * * /usr/bin/find /srv/data/live -mmin +60 -delete  # lab-cleanup" in crontab.splitlines()
    timer = new.service("lab-backup.timer")
    assert timer.is_running and timer.is_enabled


def test_report_shows_a_cutover_of_seconds(old, new):
    report_dir = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".tmp", "migration-reports")
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    cutover = report["pairs"]["old"]["cutover"]
    assert report["pairs"]["old"]["state"] == "cut_over" and cutover["outcome"] == "done"
    assert 0 < cutover["downtime_seconds"] < 5, cutover
    assert [s["name"] for s in cutover["steps"]] == [
        "stop writers", "drain", "switch replication", "switch clients", "start writers", "check writers"]
    for step in cutover["steps"]:
        assert step["start"].endswith("Z") and step["start"] <= step["end"]
    assert cutover["steps"][4]["end"] > cutover["steps"][0]["start"]
    for host in (old, new):
        kept = json.loads(host.file("/var/lib/nodowntime/cutover/data.json").content_string)
        assert kept["state"] == "cut_over" and kept["cutover"]["steps"] == cutover["steps"]


def test_initial_sync_is_recorded_with_its_statistics(old):
    record = json.loads(old.file("/var/lib/nodowntime/initial_sync/nodowntime_10.213.7.12_data.json").content_string)
    assert record["rsync_rc"] in (0, 24)
    assert record["stats"]["files_transferred"] >= 2000
    assert record["stats"]["bytes_transferred"] > 4_000_000
    progress = old.file("/var/log/nodowntime/initial-sync-nodowntime_10.213.7.12_data.progress").content_string
    lines = [json.loads(line) for line in progress.splitlines()]
    assert lines[0]["note"] == "copying /srv/data to nodowntime@10.213.7.12::data with 2 rsync process(es)"
    # One line per interval for the whole copy, both workers summed (1 MiB/s in total, so it took
    # seconds): bytes of the scanned total, growing, with a rate and the time left.
    running = [line for line in lines[1:] if not line["final"]]
    assert len(running) >= 2
    assert all(line["bytes_total"] and line["files_total"] and line["rate"] and line["eta"] is not None
               for line in running)
    assert [line["bytes_done"] for line in running] == sorted(line["bytes_done"] for line in running)
    assert all(line["rate"] < 1.5 * 1048576 for line in running), "the 1MiB bandwidth limit was not applied"
    last = lines[-1]
    assert last["final"] and last["outcome"] == "done" and last["percent"] == 100
    assert last["bytes_done"] == record["stats"]["bytes_transferred"]
    assert record["stats"]["elapsed"] > 4, "the 1MiB bandwidth limit was not applied"
    assert record["started"] < record["finished"]


def test_verify_phase_proved_new_while_the_writer_ran(old):
    """The verify phase ran online (the writer active) and found no lasting difference; its
    result is kept on old, where the cutover reads it, and on the controller."""
    on_old = json.loads(old.file("/var/lib/nodowntime/verify/data.json").content_string)
    report_dir = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".tmp", "migration-reports")
    with open(os.path.join(report_dir, "verify-old-data.json"), encoding="utf-8") as handle:
        on_controller = json.load(handle)
    for result in (on_old, on_controller):
        assert result["clean"] is True, result["differences"]
        assert set(result["totals"].values()) == {0}
        assert result["entries_checked"] >= 2000
        assert result["target"] == "nodowntime@10.213.7.12::data" and result["depth"] == "attributes"
        assert [p["label"] for p in result["passes"]][0] == "tree"
    assert on_old["started_at"] == on_controller["started_at"], "both hold the last real run"


def test_new_holds_what_plain_rsync_would_lose(old, new):
    """Initial copy (two workers) and lsyncd carried hard links, ACLs, xattrs, sparse files, fifos,
    numeric owners, modes and names in any bytes."""
    for host in (old, new):
        a = host.check_output("stat -c '%i %h' /srv/data/tree/t0/linked-a")
        b = host.check_output("stat -c '%i %h' /srv/data/fidelity/linked-b")
        assert a == b and a.endswith(" 2"), "one inode with two names on %s" % host.backend.host
    assert "user:4243:r--" in new.check_output("getfacl -cp /srv/data/fidelity/acl.txt")
    assert 'user.origin="old"' in new.check_output("getfattr -d /srv/data/fidelity/xattr.txt")
    size, blocks = new.check_output("stat -c '%s %b' /srv/data/fidelity/sparse.bin").split()
    assert int(size) == 4 * 1024 * 1024 and int(blocks) * 512 < 256 * 1024, "the sparse file stayed sparse"
    assert new.check_output("stat -c '%F' /srv/data/fidelity/fifo") == "fifo"
    assert new.check_output("stat -c '%u:%g' /srv/data/fidelity/numeric.txt") == "4242:4343"
    assert new.check_output("stat -c '%a' /srv/data/fidelity/setgid") == "2750"
    names = new.check_output("ls -b /srv/data/fidelity")
    assert "byte\\377name" in names and "new\\nline" in names
