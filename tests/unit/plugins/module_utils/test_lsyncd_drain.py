# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd_drain: the marker, the arrival check and the idle check against real rsync processes.

The target is a local directory (rsync needs no daemon for it). lsyncd's part is played by a
thread (``FakeLsyncd``) that copies the marker to the target after a delay and writes status
reports in lsyncd 2.2.3's format; one test runs the real lsyncd 2.2.3 when it is installed.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd as L
from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd_drain as D

RSYNC = shutil.which("rsync")
LSYNCD = shutil.which("lsyncd")
# The drain runs the real rsync (and one test the real lsyncd): functional tests.
pytestmark = [pytest.mark.functional, pytest.mark.skipif(RSYNC is None, reason="rsync not installed")]
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def status_report(source, delays, other_source=None):
    """A status report as lsyncd 2.2.3 writes it (see fixtures/lsyncd-2.2.3-status-*.txt)."""
    lines = ["Lsyncd status report at %s" % time.strftime("%a %b %d %H:%M:%S %Y"), ""]
    syncs = [(D.reported_source(source), delays)]
    if other_source:
        syncs.append((D.reported_source(other_source), 0))
    for index, (src, count) in enumerate(syncs, 1):
        lines += ["Sync%d source=%s" % (index, src), "There are %d delays" % count]
        lines += ["wait   Modify /f%d" % i for i in range(count)]
        lines += ["Filtering:", "  nothing.", "", ""]
    lines += ["Inotify watching 1 directories", "  1: %s" % D.reported_source(source), ""]
    return "\n".join(lines)


class FakeLsyncd(threading.Thread):
    """Plays lsyncd: reports the marker queued, copies it to the target after ``after`` seconds
    (unless ``ship`` is false), then reports ``delays_after`` delays (unless ``report`` is false)."""

    def __init__(self, source, target, status_file, after=0.3, ship=True, report=True, delays_after=0):
        super().__init__(daemon=True)
        self.source, self.target, self.status_file = source, target, status_file
        self.after, self.ship, self.report, self.delays_after = after, ship, report, delays_after
        self.stop = threading.Event()
        self.seen = None

    def _write_status(self, delays):
        # lsyncd truncates and rewrites in place
        with open(self.status_file, "w") as f:
            f.write(status_report(self.source, delays))

    def run(self):
        while not self.stop.is_set():
            found = glob.glob(os.path.join(self.source, D.MARKER_PREFIX + "*"))
            if found:
                self.seen = found[0]
                break
            time.sleep(0.01)
        else:
            return
        if self.report:
            self._write_status(1)
        if self.stop.wait(self.after):
            return
        if self.ship:
            shutil.copy2(self.seen, self.target)
        if self.report:
            self._write_status(self.delays_after)


def make_trees(tmp_path):
    """A source and a target that already holds the source's file and one of its own."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a").write_text("a\n")
    (dst / "a").write_text("a\n")
    (dst / "only-on-target").write_text("not ours\n")
    return src, dst, tmp_path / "lsyncd.status", tmp_path / "lsyncd.log"


@pytest.fixture
def trees(tmp_path):
    return make_trees(tmp_path)


def _drain(src, dst, status, log=None, fake=None, **kw):
    kw.setdefault("timeout", 5)
    kw.setdefault("interval", 0.05)
    drain = D.Drain(str(src), str(dst), str(status), log_file=str(log) if log else None, rsync=RSYNC, **kw)
    if fake:
        fake.start()
    try:
        return drain.run()
    finally:
        if fake:
            fake.stop.set()
            fake.join(5)


def _markers(path):
    return glob.glob(os.path.join(str(path), D.MARKER_PREFIX + "*"))


# -- pure parts ------------------------------------------------------------------------------

def test_marker_names_are_hidden_and_unique():
    names = {D.marker_name() for dummy in range(100)}
    assert len(names) == 100
    assert all(n.startswith(".nodowntime-drain-") and len(n) == len(".nodowntime-drain-") + 16 for n in names)


def test_command_lines():
    conn = D._rsync.connection_options("/etc/pw", None, 30, 30, daemon=True)
    assert D.arrival_argv("rsync", "/srv/data", ".m", "u@h::data", conn) == [
        "rsync", "--checksum", "--dry-run", "--itemize-changes", "--no-motd",
        "--password-file=/etc/pw", "--timeout=30", "--contimeout=30", "/srv/data/.m", "u@h::data/"]
    assert D.removal_argv("rsync", "/srv/data", ".m", "h:/d/", ["--rsh=ssh -p 2"]) == [
        "rsync", "--recursive", "--delete", "--times", "--itemize-changes", "--no-motd", "--rsh=ssh -p 2",
        "--include=/.m", "--exclude=*", "/srv/data/", "h:/d/"]


def test_sync_state_matches_source_and_needs_a_complete_report():
    with open(os.path.join(FIXTURES, "lsyncd-2.2.3-status-busy.txt")) as f:
        busy = f.read()
    complete, dummy, syncs = D.sync_state(busy, "/tmp/lsy/src/a/")
    assert complete and [s["delays"] for s in syncs] == [2]
    # cut before the last section: lsyncd was still writing it
    complete, dummy, syncs = D.sync_state(busy[:busy.index("Inotify")], "/tmp/lsy/src/")
    assert not complete
    assert D.sync_state(busy, "/elsewhere/")[2] == []


def test_marker_left_ignores_a_motd():
    assert not D.marker_left("Welcome to the data module\n\n")
    assert D.marker_left(">f+++++++++ .nodowntime-drain-00\n")
    assert D.marker_left(">fc.T...... .nodowntime-drain-00\n")


# -- drains against real rsync -----------------------------------------------------------------

def test_drains_when_the_marker_arrived_and_the_report_shows_no_delay(trees):
    src, dst, status, dummy = trees
    os.utime(str(dst), (1700000000, 1700000000))
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.3)
    result = _drain(src, dst, status, fake=fake)
    assert result["drained"] is True
    assert result["changed"] is False
    assert result["pending"] == 0
    assert result["lsyncd_running"] is True
    assert 0.3 <= result["marker_seconds"] <= result["seconds"] < 3
    assert result["overflows"] is None and result["overflow_moved"] is False
    assert os.path.basename(fake.seen) == result["marker"]
    # nothing of ours on either side; the rest of the target untouched, its mtime the source's
    assert _markers(src) == [] and _markers(dst) == []
    assert sorted(os.listdir(str(dst))) == ["a", "only-on-target"]
    # (rsync compares directory times to the second; within one second it leaves them be)
    assert int(os.stat(str(dst)).st_mtime) == int(os.stat(str(src)).st_mtime)


def test_a_report_from_before_the_marker_does_not_count(trees):
    src, dst, status, dummy = trees
    status.write_text(status_report(str(src), 0))
    old = time.time() - 10
    os.utime(str(status), (old, old))
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.1, report=False)
    with pytest.raises(D.DrainError) as e:
        _drain(src, dst, status, fake=fake, timeout=1)
    msg = str(e.value)
    assert msg.startswith("timeout: ")
    assert "wrote no complete status report after it" in msg
    assert "lsyncd is probably not running" in msg
    assert e.value.result["drained"] is False and e.value.result["marker_seconds"] is not None
    assert _markers(src) == [] and _markers(dst) == []


def test_times_out_when_the_marker_never_arrives(trees):
    src, dst, status, dummy = trees
    started = time.monotonic()
    with pytest.raises(D.DrainError) as e:
        _drain(src, dst, status, timeout=1)
    assert time.monotonic() - started < 3
    msg = str(e.value)
    assert msg.startswith("timeout: after 1.0s, the marker .nodowntime-drain-")
    assert "had not arrived on %s;" % dst in msg  # no rsync error: the last check was only cut short
    assert "lsyncd is probably not running" in msg
    assert e.value.result["drained"] is False
    assert e.value.result["lsyncd_running"] is False
    assert _markers(src) == []


def test_a_failing_rsync_is_named_in_the_timeout(trees):
    src, dummy, status, dummy = trees
    with pytest.raises(D.DrainError) as e:
        _drain(src, "localhost:/nowhere", status, timeout=0.5, connection=["--rsh=false"])
    assert "had not arrived on localhost:/nowhere (last check: rsync exited " in str(e.value)
    assert _markers(src) == []


def test_times_out_when_lsyncd_reports_but_never_ships(trees):
    src, dst, status, dummy = trees
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.1, ship=False, delays_after=1)
    with pytest.raises(D.DrainError) as e:
        _drain(src, dst, status, fake=fake, timeout=1)
    msg = str(e.value)
    assert "had not arrived" in msg and "probably not running" not in msg
    assert e.value.result["lsyncd_running"] is True
    assert _markers(src) == [] and _markers(dst) == []


def test_times_out_when_the_queue_stays_busy(trees):
    src, dst, status, dummy = trees
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.1, delays_after=3)
    with pytest.raises(D.DrainError) as e:
        _drain(src, dst, status, fake=fake, timeout=1)
    msg = str(e.value)
    assert msg.startswith("timeout: ")
    assert "the queue of %s/ was not empty: 3 pending delay(s)" % os.path.realpath(str(src)) in msg
    assert e.value.result["pending"] == 3
    assert e.value.result["lsyncd_running"] is True
    assert e.value.result["marker_seconds"] is not None
    # it had arrived: gone from both sides
    assert _markers(src) == [] and _markers(dst) == []
    assert sorted(os.listdir(str(dst))) == ["a", "only-on-target"]


def test_without_empty_queue_the_arrival_is_enough_on_a_busy_queue(trees):
    # The same busy queue that times out above: measuring lag needs only the marker's arrival.
    src, dst, status, dummy = trees
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.3, delays_after=3)
    result = _drain(src, dst, status, fake=fake, timeout=3, empty_queue=False)
    assert result["drained"] is True
    # Back at the marker's arrival, not at the timeout the busy queue would run into.
    assert 0.3 <= result["marker_seconds"] <= result["seconds"] < 3
    # The last report read before the drain saw the marker: 1 while it was queued, or already 3
    # when the fake shipped and reported while the drain's rsync was still looking for the marker.
    assert result["pending"] in (None, 1, 3)
    assert _markers(src) == [] and _markers(dst) == []


def test_a_report_without_the_source_fails_at_once(trees, tmp_path):
    src, dst, status, dummy = trees
    other = tmp_path / "other"
    other.mkdir()
    fake = FakeLsyncd(str(other), str(dst), str(status), after=0.1)
    fake.source = str(src)  # watch our source, report another

    def report(delays):
        with open(str(status), "w") as f:
            f.write(status_report(str(other), delays))
    fake._write_status = report
    with pytest.raises(D.DrainError) as e:
        _drain(src, dst, status, fake=fake, timeout=5)
    assert str(e.value).startswith("source: lsyncd's report of ")
    assert "lists no sync of %s/" % os.path.realpath(str(src)) in str(e.value)
    assert _markers(src) == []


@pytest.mark.parametrize("before, moved", [(None, False), (1, True), (2, False), (5, False)])
def test_overflow_moved(trees, before, moved):
    src, dst, status, log = trees
    with open(os.path.join(FIXTURES, "lsyncd-2.2.3.log")) as f:
        text = f.read()
    overflow = "Sat Nov 21 19:52:00 2026 Normal: OVERFLOW in event queue.\n"
    log.write_text(text + overflow + overflow)
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.05)
    result = _drain(src, dst, status, log=log, fake=fake, overflows_before=before)
    assert result["drained"]
    assert result["overflows"] == 2
    assert result["overflow_moved"] is moved


# -- the module ------------------------------------------------------------------------------

# -- the real lsyncd -------------------------------------------------------------------------

@pytest.mark.skipif(LSYNCD is None, reason="lsyncd not installed")
def test_real_lsyncd_drains_a_burst(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    status, log = tmp_path / "lsyncd.status", tmp_path / "lsyncd.log"
    settings = dict(logfile=str(log), status_file=str(status), status_interval=1, nodaemon=True)
    sync = L.check_sync(dict(mode="rsync", source=str(src), target=str(dst), delete=True, delay=1,
                             rsync=dict(archive=True)))
    text = L.apply_changes("", "t", "present", L.render_sync_block("t", sync), L.render_settings_block(settings))
    conf = tmp_path / "lsyncd.conf.lua"
    conf.write_text(text)
    proc = subprocess.Popen([LSYNCD, "-nodaemon", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while "finished" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "lsyncd's startup sync did not finish"
            assert proc.poll() is None, "lsyncd exited"
            time.sleep(0.1)
        for i in range(200):
            (src / ("burst-%03d" % i)).write_text("%d\n" % i * 50)
        result = D.Drain(str(src), str(dst), str(status), log_file=str(log), rsync=RSYNC, timeout=20,
                         interval=0.2, overflows_before=0).run()
        # everything of the burst is there the moment the drain returns
        assert sorted(os.listdir(str(dst))) == ["burst-%03d" % i for i in range(200)]
        assert all((dst / ("burst-%03d" % i)).read_text() == "%d\n" % i * 50 for i in range(200))
        assert result["drained"] and result["pending"] == 0 and result["lsyncd_running"]
        assert result["overflows"] == 0 and not result["overflow_moved"]
        assert result["seconds"] < 10
        assert _markers(src) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
