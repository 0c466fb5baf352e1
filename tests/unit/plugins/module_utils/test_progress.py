# SPDX-License-Identifier: GPL-3.0-or-later
"""_progress (progress lines, rate, background job status) and the copy's Progress in _rsync_runner,
with an injected clock: nothing here sleeps. The rsync lines are real --info=progress2 output of
rsync 3.2.7 (fixtures/rsync-3.2.7)."""
from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress, _rsync, _rsync_runner

FIX = Path(__file__).parent / "fixtures" / "rsync-3.2.7"


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def lines_of(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def progress_lines(name):
    """The --info=progress2 lines of a recorded rsync run, in order."""
    text = gzip.decompress((FIX / (name + ".stdout.gz")).read_bytes()).decode("utf-8")
    return [line.strip() for line in _rsync.split_lines(text) if _rsync.parse_progress(line)]


def recorded(name, start):
    """The first recorded progress line of ``name`` that starts with ``start``."""
    return next(line for line in progress_lines(name) if line.startswith(start))


# -- human_bytes / human_duration ---------------------------------------------------------------

@pytest.mark.parametrize("count,text", [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (1610612736, "1.5 GiB"),
    (3 * 1024 ** 4, "3.0 TiB"),
    (1024 ** 5, "1.0 PiB"),
    # past the last unit it keeps counting in PiB
    (1024 ** 6, "1024.0 PiB"),
    (2.5, "2 B"),
])
def test_human_bytes(count, text):
    assert _progress.human_bytes(count) == text


@pytest.mark.parametrize("count,text", [
    # just under the next unit rounds up to it, not to "1024.0" of this one
    (1024 ** 2 - 1, "1.0 MiB"),
    (1024 ** 3 - 1, "1.0 GiB"),
])
def test_human_bytes_never_shows_1024_of_a_unit(count, text):
    assert _progress.human_bytes(count) == text


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"),
    (-5, "0s"),
    (0.4, "0s"),
    (45, "45s"),
    (59.4, "59s"),
    (59.6, "1m00s"),
    (60, "1m00s"),
    (725, "12m05s"),
    (3599.6, "1h00m"),
    (3 * 3600 + 7 * 60, "3h07m"),
    (47 * 3600 + 59 * 60, "47h59m"),
    (48 * 3600, "2d00h"),
    (2 * 86400 + 4 * 3600 + 59, "2d04h"),
])
def test_human_duration(seconds, text):
    assert _progress.human_duration(seconds) == text


# -- snapshot and describe ------------------------------------------------------------------------

def test_snapshot_percent_rate_eta_and_text():
    snap = _progress.snapshot(100.0, 126.0, bytes_done=1288490188, bytes_total=3650722201, files_done=12345,
                              files_total=40000, rate=50331648.04)
    assert snap["percent"] == 35
    assert snap["elapsed"] == 26.0
    assert snap["rate"] == 50331648.0
    assert snap["eta"] == round((3650722201 - 1288490188) / 50331648.04, 1)
    assert not snap["final"] and "outcome" not in snap
    assert snap["text"] == "1.2 GiB of 3.4 GiB, 12,345 of 40,000 files (35%); 48.0 MiB/s; ETA 47s"
    assert json.loads(json.dumps(snap)) == snap


def test_snapshot_percent_is_floored_not_rounded():
    assert _progress.snapshot(0, 1, bytes_done=999, bytes_total=1000)["percent"] == 99


def test_snapshot_done_past_total_is_clamped_to_100_percent():
    snap = _progress.snapshot(0, 10, bytes_done=1500, bytes_total=1000, files_done=12, files_total=10, rate=100)
    assert snap["bytes_total"] == 1500 and snap["files_total"] == 12
    assert snap["percent"] == 100
    assert snap["eta"] == 0.0
    assert "(100%)" in snap["text"]


def test_snapshot_without_bytes_total_uses_files():
    snap = _progress.snapshot(0, 10, files_done=25, files_total=100, rate=5, rate_unit="files")
    assert snap["percent"] == 25
    assert snap["eta"] == 15.0
    assert snap["text"] == "25 of 100 files (25%); 5 files/s; ETA 15s"
    # a tree of empty files: no bytes in all, the percent is the files'
    assert _progress.snapshot(0, 1, bytes_done=0, bytes_total=0, files_done=3, files_total=4)["percent"] == 75


def test_snapshot_without_totals_or_rate_says_elapsed():
    snap = _progress.snapshot(0, 75, bytes_done=2048, files_done=3, note="counting the source")
    assert snap["percent"] is None and snap["eta"] is None and snap["rate"] is None
    assert snap["text"] == "2.0 KiB, 3 files; 1m15s elapsed; counting the source"


def test_snapshot_no_eta_without_rate():
    assert _progress.snapshot(0, 1, bytes_done=1, bytes_total=10, rate=0.0)["eta"] is None
    assert _progress.snapshot(0, 1, bytes_done=1, bytes_total=10)["eta"] is None


def test_final_snapshot_says_outcome_and_duration():
    snap = _progress.snapshot(0, 125, bytes_done=1024, bytes_total=1024, files_done=2, files_total=2, rate=8.2,
                              final=True)
    assert snap["final"] and snap["outcome"] == "done" and snap["eta"] is None
    assert snap["text"] == "1.0 KiB of 1.0 KiB, 2 of 2 files (100%); 8 B/s; done in 2m05s"
    failed = _progress.snapshot(0, 5, bytes_done=0, final=True, outcome="failed (rsync exit 5)")
    assert failed["text"].endswith("; failed (rsync exit 5) in 5s")


def test_describe_label():
    assert _progress.describe({"bytes_done": 0, "elapsed": 3}, "old:/srv -> new::data") == \
        "old:/srv -> new::data: 0 B; 3s elapsed"


# -- RateMeter ----------------------------------------------------------------------------------------

def test_rate_needs_two_samples_apart_in_time():
    meter = _progress.RateMeter()
    assert meter.rate() is None
    meter.add(0, 0)
    assert meter.rate() is None
    meter.add(0, 100)
    assert meter.rate() is None
    meter.add(10, 100)
    assert meter.rate() == 10.0


def test_rate_follows_the_last_window():
    meter = _progress.RateMeter(window=60)
    value = 0
    for t in range(0, 101):  # 1 byte/s for 100 s
        meter.add(t, value)
        value += 1
    assert meter.rate() == pytest.approx(1.0)
    for t in range(101, 131):  # then 10 bytes/s: half a window of the new rate
        value += 10
        meter.add(t, value)
    assert 1.0 < meter.rate() < 10.0
    for t in range(131, 200):  # a whole window at the new rate
        value += 10
        meter.add(t, value)
    assert meter.rate() == pytest.approx(10.0)
    # the oldest sample kept is the last one at least a window old
    assert meter.samples[-1][0] - meter.samples[0][0] == 60
    assert meter.samples[-1][0] - meter.samples[1][0] < 60


def test_rate_never_negative():
    meter = _progress.RateMeter()
    meter.add(0, 100)
    meter.add(5, 40)  # a count that went back (a worker restarted)
    assert meter.rate() == 0.0


# -- ProgressFile ---------------------------------------------------------------------------------------

def test_progress_file_writes_at_most_once_per_interval(tmp_path):
    clock = Clock()
    path = tmp_path / "sub" / "copy.progress"  # the directory is created
    pf = _progress.ProgressFile(str(path), interval=5, what="copy", clock=clock)
    assert pf.update(bytes_done=0, bytes_total=1000, note="start", force=True)["note"] == "start"
    clock.now += 1
    assert pf.update(bytes_done=100, bytes_total=1000) is None  # 1 s after the last line
    clock.now += 3.9
    assert pf.update(bytes_done=490, bytes_total=1000) is None
    clock.now += 0.1
    written = pf.update(bytes_done=500, bytes_total=1000)  # 5 s after the last line
    assert written["bytes_done"] == 500 and written["percent"] == 50
    # the skipped samples still count for the rate: 500 bytes in 5 s
    assert written["rate"] == 100.0
    assert written["eta"] == 5.0
    clock.now += 1
    assert pf.update(bytes_done=600, bytes_total=1000, force=True)["bytes_done"] == 600
    clock.now += 1
    assert pf.update(bytes_done=650, bytes_total=1000) is None
    lines = lines_of(path)
    assert [line["bytes_done"] for line in lines] == [0, 500, 600]
    assert all(line["what"] == "copy" and "text" in line for line in lines)
    assert [line["time"] for line in lines] == [1000.0, 1005.0, 1006.0]


def test_progress_file_finish_always_writes_and_closes(tmp_path):
    clock = Clock()
    path = tmp_path / "copy.progress"
    pf = _progress.ProgressFile(str(path), interval=60, clock=clock)
    pf.update(bytes_done=0, bytes_total=4096, force=True)
    clock.now += 2
    assert pf.update(bytes_done=2048, bytes_total=4096) is None
    clock.now += 2
    last = pf.finish(bytes_done=4096, bytes_total=4096, files_done=1, files_total=1)
    assert last["final"] and last["outcome"] == "done" and last["percent"] == 100
    # the final rate is the whole run's average
    assert last["rate"] == 1024.0 and last["eta"] is None
    assert last["elapsed"] == 4.0
    assert pf.handle is None
    assert pf.update(bytes_done=5000, force=True) is None  # closed: nothing more is written
    lines = lines_of(path)
    assert len(lines) == 2 and lines[-1] == last


def test_progress_file_counts_files_when_no_bytes(tmp_path):
    clock = Clock()
    pf = _progress.ProgressFile(str(tmp_path / "p"), interval=0, clock=clock)
    pf.update(files_done=0, files_total=100)
    clock.now += 10
    snap = pf.update(files_done=50, files_total=100)
    assert snap["rate_unit"] == "files" and snap["rate"] == 5.0 and snap["eta"] == 10.0
    assert "5 files/s" in snap["text"]


def test_progress_file_starts_a_new_file(tmp_path):
    path = tmp_path / "copy.progress"
    path.write_text(json.dumps({"text": "an earlier run", "final": True}) + "\n")
    pf = _progress.ProgressFile(str(path), clock=Clock())
    assert path.read_text() == ""
    assert _progress.read_last(str(path)) is None
    pf.close()


def test_progress_file_without_path_does_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in (None, ""):
        pf = _progress.ProgressFile(path, interval=0, clock=Clock())
        assert pf.handle is None
        assert pf.update(bytes_done=1, force=True) is None
        assert pf.finish(bytes_done=1) is None
        pf.close()
    assert os.listdir(str(tmp_path)) == []


# -- read_last ----------------------------------------------------------------------------------------------

def test_read_last_skips_a_line_being_written(tmp_path):
    path = tmp_path / "p"
    first = _progress.snapshot(0, 1, bytes_done=1)
    second = _progress.snapshot(0, 2, bytes_done=2)
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n" + json.dumps(first)[:25])
    assert _progress.read_last(str(path)) == second
    with open(str(path), "a") as handle:
        handle.write(json.dumps(first)[25:] + "\n\n")
    assert _progress.read_last(str(path)) == first


def test_read_last_of_an_old_plain_text_file_is_none(tmp_path):
    path = tmp_path / "p"
    path.write_text("2024-05-01T10:00:00Z start copying /srv/data to new::data with 1 rsync process(es)\n"
                    "2024-05-01T10:00:05Z all 1,234,567  12%   1.20MB/s    0:00:05 (xfr#3, to-chk=10/20)\n"
                    "2024-05-01T10:00:09Z done rc=0 files=2 transferred=1 bytes=3145728\n")
    assert _progress.read_last(str(path)) is None


def test_read_last_ignores_json_that_is_not_a_progress_line(tmp_path):
    path = tmp_path / "p"
    good = _progress.snapshot(0, 1, bytes_done=7)
    path.write_text(json.dumps(good) + "\n42\n[1, 2]\n{\"no\": \"text\"}\n")
    assert _progress.read_last(str(path)) == good


def test_read_last_reads_only_the_tail(tmp_path):
    path = tmp_path / "p"
    snaps = [_progress.snapshot(0, i, bytes_done=i) for i in range(2000)]
    path.write_text("".join(json.dumps(s) + "\n" for s in snaps))
    assert path.stat().st_size > 65536
    assert _progress.read_last(str(path)) == snaps[-1]
    # a tail that starts inside a line: that fragment is skipped, not misread
    assert _progress.read_last(str(path), limit=len(json.dumps(snaps[-1])) + 10) == snaps[-1]


def test_read_last_without_a_file(tmp_path):
    assert _progress.read_last(str(tmp_path / "missing")) is None
    (tmp_path / "empty").write_text("")
    assert _progress.read_last(str(tmp_path / "empty")) is None
    assert _progress.read_last(str(tmp_path)) is None  # a directory


# -- job_status / follow_job / remove_job ---------------------------------------------------------

def write_job(async_dir, jid, data):
    path = async_dir / jid
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("data", [
    {"started": True, "finished": False, "ansible_job_id": "j1.2"},  # ansible-core 2.19
    {"started": 1, "finished": 0, "ansible_job_id": "j1.2"},  # before 2.19
    {"started": 1, "ansible_job_id": "j1.2"},
])
def test_job_status_running(tmp_path, data):
    write_job(tmp_path, "j1.2", data)
    assert _progress.job_status(str(tmp_path), "j1.2") == (False, data)


@pytest.mark.parametrize("data", [
    {"changed": True, "rsync_rc": 0, "invocation": {"module_args": {}}},  # a module's result
    {"msg": "Timeout exceeded", "failed": True, "child_pid": 123},  # async_wrapper's timeout
    {"failed": True, "cmd": "x", "msg": "Traceback", "ansible_job_id": "j1.2"},  # the module crashed
    {"started": 1, "finished": 1, "ansible_job_id": "j1.2"},
])
def test_job_status_finished(tmp_path, data):
    write_job(tmp_path, "j1.2", data)
    assert _progress.job_status(str(tmp_path), "j1.2") == (True, data)


def test_job_status_missing_names_the_job(tmp_path):
    with pytest.raises(_progress.JobError) as e:
        _progress.job_status(str(tmp_path), "j404.1")
    assert str(e.value).startswith("jid: no background job j404.1 in %s " % tmp_path)


@pytest.mark.parametrize("jid", ["", ".", "..", "../outside", "sub/j1.2", "/etc/passwd"])
def test_job_status_refuses_a_jid_that_is_a_path(tmp_path, jid):
    async_dir = tmp_path / "async"
    (async_dir / "sub").mkdir(parents=True)
    write_job(async_dir / "sub", "j1.2", {"changed": True})
    (tmp_path / "outside").write_text(json.dumps({"changed": True}))
    with pytest.raises(_progress.JobError) as e:
        _progress.job_status(str(async_dir), jid)
    assert str(e.value) == "jid: %r is not a job id" % jid


def test_a_refused_jid_leaves_the_file_it_names_alone(tmp_path):
    # job_progress removes only a job that job_status has read, and job_status refuses such names
    async_dir = tmp_path / "async"
    async_dir.mkdir()
    (tmp_path / "outside").write_text("{}")
    with pytest.raises(_progress.JobError):
        _progress.job_status(str(async_dir), "../outside")
    assert (tmp_path / "outside").exists()


@pytest.mark.parametrize("text", ["", "{\"started\": 1, \"fini"])
def test_job_status_unparsable_reads_as_running(tmp_path, text):
    # async_status does the same: the async wrapper replaces the file whole (rename), so this is
    # at most a moment of a job starting.
    write_job(tmp_path, "j1.2", text)
    assert _progress.job_status(str(tmp_path), "j1.2") == (False, {})


def test_job_status_that_is_not_a_result(tmp_path):
    write_job(tmp_path, "j1.2", "[1, 2]")
    with pytest.raises(_progress.JobError) as e:
        _progress.job_status(str(tmp_path), "j1.2")
    assert "j1.2" in str(e.value)


class FakeTime:
    """clock() and sleep() of follow_job; sleep() moves the clock and runs ``on_sleep``."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps = []
        self.on_sleep = on_sleep

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


def test_follow_job_returns_when_the_job_ends(tmp_path):
    write_job(tmp_path, "j1.2", {"started": 1, "finished": 0})
    progress = tmp_path / "copy.progress"
    pf = _progress.ProgressFile(str(progress), interval=0, clock=lambda: 0.0)
    pf.update(bytes_done=10, bytes_total=100)

    def job_ends_after_3s(fake):
        if fake.now >= 3:
            pf.finish(bytes_done=100, bytes_total=100)
            write_job(tmp_path, "j1.2", {"changed": True, "rsync_rc": 0})

    fake = FakeTime(job_ends_after_3s)
    finished, data, snap = _progress.follow_job(str(tmp_path), "j1.2", str(progress), wait=60, poll=0.5,
                                                clock=fake.clock, sleep=fake.sleep)
    assert finished and data == {"changed": True, "rsync_rc": 0}
    assert snap["final"] and snap["percent"] == 100
    assert fake.now == 3.0 and fake.sleeps == [0.5] * 6


def test_follow_job_returns_at_the_deadline(tmp_path):
    write_job(tmp_path, "j1.2", {"started": 1, "finished": 0})
    fake = FakeTime()
    finished, data, snap = _progress.follow_job(str(tmp_path), "j1.2", None, wait=2.2, poll=1,
                                                clock=fake.clock, sleep=fake.sleep)
    assert not finished and data == {"started": 1, "finished": 0} and snap is None
    assert fake.sleeps == [1, 1, pytest.approx(0.2)]
    assert fake.now == pytest.approx(2.2)


def test_follow_job_without_wait_looks_once(tmp_path):
    write_job(tmp_path, "j1.2", {"started": 1, "finished": 0})
    fake = FakeTime()
    assert _progress.follow_job(str(tmp_path), "j1.2", str(tmp_path / "none"), wait=0,
                                clock=fake.clock, sleep=fake.sleep) == (False, {"started": 1, "finished": 0}, None)
    assert fake.sleeps == []


def test_follow_job_of_a_job_that_vanishes_fails(tmp_path):
    path = write_job(tmp_path, "j1.2", {"started": 1, "finished": 0})
    fake = FakeTime(lambda f: path.unlink())
    with pytest.raises(_progress.JobError):
        _progress.follow_job(str(tmp_path), "j1.2", None, wait=10, clock=fake.clock, sleep=fake.sleep)


def test_remove_job(tmp_path):
    write_job(tmp_path, "j1.2", {"changed": True})
    _progress.remove_job(str(tmp_path), "j1.2")
    assert os.listdir(str(tmp_path)) == []


# -- the copy's Progress (_rsync_runner) ------------------------------------------------------

def test_recorded_progress_lines_parse():
    full = progress_lines("full")
    some = progress_lines("some")
    assert full[0] == "4   0%    0.00kB/s    0:00:00"
    assert full[1] == "4   0%    0.00kB/s    0:00:00 (xfr#1, to-chk=126/128)"
    assert full[-1] == "491524 100%   18.03MB/s    0:00:00 (xfr#121, to-chk=0/128)"
    assert "700   0%    0.00kB/s    0:00:00" in some  # a line without the file counts


def test_progress_sums_the_workers_lines(tmp_path):
    clock = Clock()
    path = tmp_path / "copy.progress"
    progress = _rsync_runner.Progress(str(path), 0, clock=clock)
    progress.start("copying /srv/data to new::data with 2 rsync process(es)", processes=2)
    clock.now += 1
    progress.write("worker1", recorded("full", "36868 "))  # to-chk=113/128: 15 checked
    clock.now += 1
    progress.write("worker2", progress_lines("some")[-1])  # 4104 bytes, to-chk=0/127: 127 checked
    clock.now += 1
    progress.write("worker1", "<f+++++++++ a/sub/f1")  # not a progress line: ignored
    progress.write("worker2", "700   0%    0.00kB/s    0:00:00")  # no counts: keeps worker2's files
    lines = lines_of(path)
    assert lines[0]["note"] == "copying /srv/data to new::data with 2 rsync process(es)"
    assert lines[0]["bytes_done"] == 0 and lines[0]["files_done"] == 0
    assert [(line["bytes_done"], line["files_done"]) for line in lines[1:]] == [
        (36868, 15), (36868 + 4104, 15 + 127), (36868 + 700, 15 + 127)]
    # no totals yet: no percent, and the line says why
    assert lines[-1]["percent"] is None and lines[-1]["bytes_total"] is None
    assert lines[-1]["note"] == "2 rsync processes, counting the source"
    # with the totals of the scan
    progress.totals = (300, 100000)
    clock.now += 1
    progress.write("worker1", progress_lines("full")[-1])  # 491524 bytes, all 128 checked
    last = lines_of(path)[-1]
    assert (last["bytes_done"], last["files_done"]) == (491524 + 700, 128 + 127)
    # more done than the scan counted: the total follows
    assert last["bytes_total"] == 491524 + 700 and last["files_total"] == 300
    assert last["percent"] == 100 and last["note"] == "2 rsync processes"
    progress.finish("done", bytes_done=495628, files_done=255)
    final = lines_of(path)[-1]
    assert final["final"] and final["outcome"] == "done"
    assert final["bytes_done"] == 495628 and final["files_done"] == 255
    assert final["note"] == "2 rsync processes" and "done in 4s" in final["text"]


def test_progress_of_one_rsync_has_no_note_but_the_totals(tmp_path):
    clock = Clock()
    path = tmp_path / "copy.progress"
    progress = _rsync_runner.Progress(str(path), 10, clock=clock)
    progress.start("copying a to b with 1 rsync process(es)")
    progress.totals = (127, 491524)
    full = progress_lines("full")
    for line in full:  # all within the interval: nothing written
        progress.write("all", line)
    clock.now += 10
    progress.write("all", full[-1])
    lines = lines_of(path)
    assert len(lines) == 2
    assert lines[1]["note"] == "" and lines[1]["percent"] == 100
    assert lines[1]["files_done"] == 128 and lines[1]["files_total"] == 128


def test_progress_without_file_does_nothing(tmp_path):
    progress = _rsync_runner.Progress(None, 0, src=str(tmp_path))
    assert progress.handle is None
    progress.start("x")
    progress.write("all", progress_lines("full")[-1])
    progress.finish("done", bytes_done=1, files_done=1)
    assert progress.totals is None  # no scan without a file


def test_progress_scans_the_source_beside_the_copy(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"x" * 100)
    progress = _rsync_runner.Progress(str(tmp_path / "p"), 0, src=str(src))
    deadline = time.time() + 5  # the scan runs in a thread of its own
    while progress.totals is None and time.time() < deadline:
        time.sleep(0.01)
    assert progress.totals == (3, 100)  # d, d/f and the root rsync counts too
    progress.finish("done", bytes_done=100, files_done=3)


# -- scan_totals ----------------------------------------------------------------------------------

def test_scan_totals_counts_linked_bytes_once_and_skips_excluded_names(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "deep").mkdir(parents=True)
    (src / "b").mkdir()
    (src / "cache.tmp" / "inner").mkdir(parents=True)
    (src / "a" / "deep" / "data").write_bytes(b"d" * 1000)
    os.link(str(src / "a" / "deep" / "data"), str(src / "b" / "data"))  # one inode, two names
    (src / "b" / "other").write_bytes(b"o" * 10)
    (src / "b" / "scratch.tmp").write_bytes(b"s" * 500)
    (src / "cache.tmp" / "inner" / "big").write_bytes(b"c" * 5000)
    (src / ".rsync-partial").mkdir()
    (src / ".rsync-partial" / "half").write_bytes(b"p" * 700)
    os.symlink("a/deep/data", str(src / "latest"))
    # entries: a, a/deep, a/deep/data, b, b/data, b/other, latest (+ the excluded ones)
    assert _rsync_runner.scan_totals(str(src), ["*.tmp", ".rsync-partial/"]) == (7, 1010)
    # without excludes every name counts; still the linked bytes once; symlinks have no bytes
    assert _rsync_runner.scan_totals(str(src)) == (13, 1000 + 10 + 500 + 5000 + 700)


def test_scan_totals_leaves_patterns_with_a_slash_to_rsync(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x").write_bytes(b"x" * 3)
    assert _rsync_runner.scan_totals(str(src), ["a/x", "/a"]) == (2, 3)


def test_scan_totals_of_a_missing_source(tmp_path):
    assert _rsync_runner.scan_totals(str(tmp_path / "missing")) == (0, 0)
