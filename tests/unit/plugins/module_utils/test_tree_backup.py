# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tree backups: naming, retention and config checks as pure functions, then the CLI for real
(``python3 -m ...._tree_backup``) on trees in tmp_path: backup, restore, drill, retention over
simulated days, corrupted archives, hooks and a file growing while it is archived."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_backup as tb

UTC = datetime.timezone.utc
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".tmp", "collections"))
MODULE = "ansible_collections.nodowntime.storage.plugins.module_utils._tree_backup"


def t(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


# --------------------------------------------------------------------------- pure functions

def test_archive_name_and_parse_round_trip():
    when = datetime.datetime(2026, 11, 1, 3, 0, 5, tzinfo=UTC)
    name = tb.archive_name("mongo.dump", when, "tar.zst")
    assert name == "mongo.dump_20261101T030005Z.tar.zst"
    assert tb.parse_archive_name("mongo.dump", name) == when
    assert tb.archive_name("j", when, "tar.gz") == "j_20261101T030005Z.tar.gz"
    with pytest.raises(tb.TreeBackupError, match="format='zip'"):
        tb.archive_name("j", when, "zip")


@pytest.mark.parametrize("name", [
    "a_b_20261101T030000Z.tar.zst",       # job a_b, not a
    "a_20261101T030000Z.tar.zst.partial",  # unfinished
    ".a_20261101T030000Z.tar.zst.x.partial",
    "a_20261101T030000Z.zip",
    "a_20261301T030000Z.tar.gz",          # month 13
    "a_20261101T030000.tar.gz",           # no Z
    "a.runs.jsonl",
])
def test_parse_archive_name_ignores_other_files(name):
    assert tb.parse_archive_name("a", name) is None


def test_job_names_are_checked():
    for good in ("a", "db1", "mongo.dump-2_x"):
        assert tb.validate_name(good) == good
    for bad in ("", "-a", ".a", "a/b", "a b", "_a", None):
        with pytest.raises(tb.TreeBackupError, match="not a valid job name"):
            tb.validate_name(bad)


def _names(job, days, fmt="tar.zst"):
    return [tb.archive_name(job, t(d), fmt) for d in days]


def test_retention_keeps_by_age_or_count():
    names = _names("j", ["2026-01-01", "2026-01-02", "2026-01-10", "2026-01-20", "2026-01-21"])
    now = t("2026-01-25")
    # 10 days: the 20th and 21st are young enough; keep_last 3 also keeps the 10th
    assert tb.retention_plan("j", names, now, keep_days=10, keep_last=3) == names[:2]
    assert tb.retention_plan("j", names, now, keep_days=10, keep_last=0) == names[:3]
    assert tb.retention_plan("j", names, now, keep_days=0, keep_last=1) == names[:4]
    assert tb.retention_plan("j", names, now, keep_days=30, keep_last=0) == []


def test_retention_never_deletes_the_new_archive_nor_other_files():
    mine = _names("j", ["2026-01-01", "2026-01-02"])
    other = _names("j2", ["2025-01-01"]) + _names("j_x", ["2025-01-01"]) + ["notes.txt", "j.runs.jsonl"]
    new = tb.archive_name("j", t("2026-01-03"), "tar.gz")
    plan = tb.retention_plan("j", mine + other, t("2027-01-01"), keep_days=1, keep_last=0, new_archive=new)
    assert plan == mine
    assert new not in plan and not set(plan) & set(other)


def test_exclude_patterns():
    assert tb.excluded("cache/x/y", ["cache"]) is False  # a name pattern matches one name, not a prefix
    assert tb.excluded("cache", ["cache"]) is True
    assert tb.excluded("a/b.tmp", ["*.tmp"]) is True
    assert tb.excluded("a/cache", ["a/cache"]) is True
    assert tb.excluded("b/cache", ["a/cache"]) is False


def _cfg(**kw):
    raw = dict(name="j", src="/srv/data", backup_dir="/var/backups/t")
    raw.update(kw)
    return raw


def test_config_defaults():
    cfg = tb.normalise_config(_cfg(keep_days=None, format=None))
    assert cfg["format"] == "tar.zst" and cfg["compression_level"] == 3
    assert cfg["keep_days"] == 90 and cfg["keep_last"] == 3
    assert cfg["runs_log"] == "/var/backups/t/j.runs.jsonl"
    assert tb.normalise_config(_cfg(format="tar.gz"))["compression_level"] == 6


@pytest.mark.parametrize("raw, message", [
    (_cfg(name="bad name"), "name='bad name'"),
    (_cfg(src="relative"), "src='relative' must be an absolute path"),
    (_cfg(backup_dir="/srv/data/backups"), "backup_dir=/srv/data/backups is inside src"),
    (_cfg(format="zip"), "format='zip'"),
    (_cfg(compression_level=20), "compression_level=20 is out of range: use 1 to 19"),
    (_cfg(format="tar.gz", compression_level=12), "compression_level=12 is out of range: use 1 to 9"),
    (_cfg(keep_days=-1), "keep_days=-1"),
    (_cfg(keep_last="3"), "keep_last='3' is not a whole number"),
    (_cfg(exclude="*.tmp"), "exclude='\\*.tmp' must be a list"),
    (_cfg(pre_command_timeout=0), "pre_command_timeout=0"),
    (_cfg(keep=3), "unknown setting\\(s\\) keep"),
])
def test_config_errors_name_the_setting(raw, message):
    with pytest.raises(tb.TreeBackupError, match=message):
        tb.normalise_config(raw)


def test_compare_entries_finds_each_kind_of_difference():
    expected = {
        ".": dict(type="dir", mode=0o755, mtime=1),
        "f": dict(type="file", mode=0o644, mtime=1, size=3, sha256="aa"),
        "l": dict(type="symlink", mode=0o777, mtime=1, target="f"),
        "gone": dict(type="file", mode=0o644, mtime=1, size=0, sha256="bb"),
    }
    actual = {
        ".": dict(type="dir", mode=0o700, mtime=1),
        "f": dict(type="file", mode=0o644, mtime=1, size=3, sha256="cc"),
        "l": dict(type="symlink", mode=0o777, mtime=9, target="g"),
        "new": dict(type="file", mode=0o644, mtime=1, size=0, sha256="bb"),
    }
    problems = tb.compare_entries(expected, actual)
    assert problems == [
        ".: mode is 448, the manifest says 493",
        "f: sha256 is 'cc', the manifest says 'aa'",
        "missing: gone",
        "l: target is 'g', the manifest says 'f'",  # a symlink's mtime is not compared
        "extra: new (file) is not in the manifest",
    ]
    assert tb.compare_entries(expected, dict(expected)) == []


# --------------------------------------------------------------------------- the CLI for real

def run_cli(*args, config=None, env=None, timeout=120):
    """Run the CLI as the timer does; ``(rc, the JSON it printed)``."""
    argv = [sys.executable, "-m", MODULE] + list(args)
    if config:
        argv += ["--config", str(config)]
    full_env = dict(os.environ, PYTHONPATH=COLLECTIONS, **(env or {}))
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "one JSON line expected, got %r (stderr %s)" % (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def make_tree(root):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("alpha\n")
    (root / "sub" / "deeper" / "b.bin").write_bytes(os.urandom(200000))
    (root / "empty").write_bytes(b"")
    (root / "name with spaces é").write_text("unicode\n")
    os.symlink("sub/a.txt", root / "link")
    os.symlink("/nonexistent/target", root / "dangling")
    (root / "ro").mkdir()
    (root / "ro" / "inside").write_text("x")
    os.chmod(root / "ro", 0o555)
    os.chmod(root / "sub" / "a.txt", 0o640)
    os.utime(root / "sub" / "a.txt", (1600000000, 1600000000))
    (root / "skip.tmp").write_text("excluded")


def snapshot(root):
    """Everything a restore must bring back: type, mode, mtime, content, link target."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames + ["."]:
            path = os.path.join(dirpath, name)
            if name == "." and dirpath != str(root):
                continue
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                result[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                result[rel] = ("dir", oct(st.st_mode), int(st.st_mtime))
            else:
                with open(path, "rb") as f:
                    result[rel] = ("file", oct(st.st_mode), int(st.st_mtime), f.read())
    return result


@pytest.fixture
def job(tmp_path):
    """A job ``web`` backing up tmp_path/src into tmp_path/backups; returns a helper."""
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    backups = tmp_path / "backups"
    backups.mkdir()

    class Job:
        def __init__(self):
            self.src, self.backups, self.tmp = src, backups, tmp_path
            self.config = tmp_path / "web.json"
            self.write()

        def write(self, **kw):
            cfg = dict(name="web", src=str(src), backup_dir=str(backups), exclude=["*.tmp"])
            cfg.update(kw)
            self.config.write_text(json.dumps(cfg))

        def run(self, *args, **kw):
            return run_cli(*args, config=self.config, **kw)

        def runs(self):
            with open(backups / "web.runs.jsonl") as f:
                return [json.loads(line) for line in f]

        def archives(self):
            return sorted(n for n in os.listdir(backups) if tb.parse_archive_name("web", n))

    yield Job()
    # the tree has a read-only directory: let pytest remove it
    for root in (tmp_path,):
        for dirpath, dirnames, _files in os.walk(root):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)


@pytest.mark.functional
@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz"])
def test_backup_restore_round_trip(job, fmt):
    job.write(format=fmt)
    rc, out = job.run("backup", "--trigger", "systemd")
    assert rc == 0, out
    assert out["changed"] and out["archive"].endswith("." + fmt) and os.path.basename(out["archive"]) in job.archives()
    assert out["files"] == 5 and out["changed_during_backup"] == []
    # only the archive and the run log: no partial file left behind
    assert sorted(os.listdir(job.backups)) == sorted(job.archives() + ["web.runs.jsonl"])
    record = job.runs()[-1]
    fields = (record["outcome"], record["action"], record["kind"], record["trigger"])
    assert fields == ("ok", "backup", "tree_backup", "systemd")
    assert record["sha256"] == out["sha256"] == tb.sha256_file(out["archive"])
    # the manifest is the archive's last member and lists every path
    names = _member_names(out["archive"])
    assert names[-1] == tb.MANIFEST_NAME and "skip.tmp" not in names

    dest = job.tmp / "restored"
    rc, out = job.run("restore", "--dest", str(dest))
    assert rc == 0, out
    expected = snapshot(job.src)
    del expected["skip.tmp"]
    assert snapshot(dest) == expected
    assert not os.path.exists(dest / tb.MANIFEST_NAME)


def _member_names(archive):
    if archive.endswith(".zst"):
        data = subprocess.run(["zstd", "-d", "-c", archive], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            return tf.getnames()
    with tarfile.open(archive) as tf:
        return tf.getnames()


@pytest.mark.functional
def test_retention_over_simulated_days(job):
    job.write(keep_days=7, keep_last=3)
    foreign = ["web2_20260101T020000Z.tar.zst", "webx_20260101T020000Z.tar.gz", "notes.txt",
               ".web_20260101T020000Z.tar.zst.abc.partial"]
    for name in foreign:
        (job.backups / name).write_text("not mine")
    start = datetime.datetime(2026, 1, 1, 2, 30, tzinfo=UTC)
    for day in range(12):
        now = start + datetime.timedelta(days=day)
        rc, out = job.run("backup", "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert rc == 0, out
    # 7 days before Jan 12 02:30 is Jan 5 02:30: Jan 6..12 are younger (7 archives); keep_last adds none
    assert job.archives() == ["web_202601%02dT023000Z.tar.zst" % d for d in range(6, 13)]
    for name in foreign:  # never touched, not even the young-looking partial file
        assert (job.backups / name).read_text() == "not mine"
    assert job.runs()[-1]["deleted"] == ["web_20260105T023000Z.tar.zst"]

    # after a long pause, keep_last keeps the 3 newest whatever their age
    rc, out = job.run("backup", "--now", "2026-03-01T02:30:00Z")
    assert rc == 0
    assert job.archives() == ["web_20260111T023000Z.tar.zst", "web_20260112T023000Z.tar.zst",
                              "web_20260301T023000Z.tar.zst"]
    rc, out = job.run("list")
    assert rc == 0 and [a["name"] for a in out["archives"]][0] == "web_20260301T023000Z.tar.zst"
    assert out["count"] == 3


@pytest.mark.functional
def test_backup_of_the_same_second_is_refused_and_keeps_the_first(job):
    assert job.run("backup", "--now", "2026-01-01T00:00:00Z")[0] == 0
    before = job.archives()
    rc, out = job.run("backup", "--now", "2026-01-01T00:00:00Z")
    assert rc == 1 and "already exists" in out["msg"]
    assert job.archives() == before


@pytest.mark.functional
@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz"])
def test_damaged_archive_fails_the_drill(job, damage, fmt):
    job.write(format=fmt)
    rc, out = job.run("backup")
    assert rc == 0
    rc, drill = job.run("drill")
    assert rc == 0 and drill["passed"], drill
    archive = out["archive"]
    size = os.path.getsize(archive)
    with open(archive, "r+b") as f:
        if damage == "flip":
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0xFF]))
        else:
            f.truncate(size * 2 // 3)
    rc, drill = job.run("drill", "--workdir", str(job.tmp))
    assert rc == 1 and drill["passed"] is False and drill["problems"], drill
    record = job.runs()[-1]
    assert record["action"] == "drill" and record["outcome"] == "failed" and record["passed"] is False
    # the scratch directory is gone, in backup_dir and in the workdir
    assert not [n for n in os.listdir(job.backups) + os.listdir(job.tmp) if ".drill-" in n]
    # and a restore of the damaged archive leaves its destination alone
    rc, out = job.run("restore", "--dest", str(job.tmp / "r"))
    assert rc == 1 and not os.path.exists(job.tmp / "r")


def _rewrite(archive, dest, drop=None, add=None):
    """Copy a tar.gz archive, leaving out the member ``drop`` and adding ``add`` before the manifest."""
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            if member.name == drop:
                continue
            if member.name == tb.MANIFEST_NAME and add:
                info = tarfile.TarInfo(add)
                info.size = 5
                out.addfile(info, io.BytesIO(b"extra"))
            out.addfile(member, src.extractfile(member) if member.isfile() else None)


@pytest.mark.functional
@pytest.mark.parametrize("change, problem", [
    (dict(drop="sub/a.txt"), "missing: sub/a.txt"),
    (dict(add="sub/intruder"), "extra: sub/intruder (file) is not in the manifest"),
])
def test_drill_finds_missing_and_extra_entries(job, change, problem):
    job.write(format="tar.gz")
    rc, out = job.run("backup", "--now", "2026-01-01T00:00:00Z")
    assert rc == 0
    bad = str(job.backups / "web_20260102T000000Z.tar.gz")
    _rewrite(out["archive"], bad, **change)
    rc, drill = job.run("drill", "--archive", os.path.basename(bad))
    assert rc == 1 and problem in drill["problems"], drill
    rc, drill = job.run("drill", "--archive", out["archive"])
    assert rc == 0 and drill["passed"]


@pytest.mark.functional
def test_restore_refuses_a_non_empty_dest_without_confirm(job):
    assert job.run("backup")[0] == 0
    dest = job.tmp / "dest"
    dest.mkdir()
    (dest / "precious").write_text("keep me")
    rc, out = job.run("restore", "--dest", str(dest))
    assert rc == 1 and "--confirm" in out["msg"]
    assert os.listdir(dest) == ["precious"] and sorted(os.listdir(job.tmp)) == ["backups", "dest", "src", "web.json"]
    rc, out = job.run("restore", "--dest", str(dest), "--confirm", "--check")
    assert rc == 0 and out["changed"] and os.listdir(dest) == ["precious"]
    rc, out = job.run("restore", "--dest", str(dest), "--confirm")
    assert rc == 0 and out["changed"], out
    assert (dest / "sub" / "a.txt").read_text() == "alpha\n" and not (dest / "precious").exists()
    assert (job.tmp / out["moved_aside"].split("/")[-1] / "precious").read_text() == "keep me"


@pytest.mark.functional
def test_pre_command_failure_records_a_failed_run_and_no_archive(job):
    job.write(pre_command="echo dumping; echo 'connection refused' >&2; exit 3")
    rc, out = job.run("backup")
    assert rc == 1 and "pre_command failed (rc 3)" in out["msg"] and "connection refused" in out["msg"]
    assert job.archives() == [] and os.listdir(job.backups) == ["web.runs.jsonl"]
    record = job.runs()[-1]
    assert record["outcome"] == "failed" and "rc 3" in record["msg"]


@pytest.mark.functional
def test_pre_command_timeout_fails_the_run(job):
    job.write(pre_command="sleep 30", pre_command_timeout=1)
    t0 = time.monotonic()
    rc, out = job.run("backup")
    assert rc == 1 and "timed out after 1 s" in out["msg"] and time.monotonic() - t0 < 20
    assert job.archives() == []


@pytest.mark.functional
def test_hooks_produce_the_tree_and_see_the_restore(job):
    # a stand-in for a dump tool: it writes the tree the backup archives
    dump = job.tmp / "dump"
    pre = ('rm -rf "$NODOWNTIME_TREE_SRC" && mkdir -p "$NODOWNTIME_TREE_SRC/db" '
           '&& echo "$NODOWNTIME_JOB" > "$NODOWNTIME_TREE_SRC/db/collection.bson"')
    post = 'echo "$NODOWNTIME_RESTORE_DIR" > "$NODOWNTIME_RESTORE_DIR/../restored-marker"'
    job.write(src=str(dump), pre_command=pre, post_restore_command=post)
    rc, out = job.run("backup")
    assert rc == 0 and out["files"] == 1, out
    dest = job.tmp / "r"
    rc, out = job.run("restore", "--dest", str(dest))
    assert rc == 0, out
    assert (dest / "db" / "collection.bson").read_text() == "web\n"
    assert (job.tmp / "restored-marker").read_text() == str(dest) + "\n"


@pytest.mark.functional
def test_src_may_be_a_symlink_to_the_tree(job):
    link = job.tmp / "current"
    os.symlink(job.src, link)
    job.write(src=str(link))
    rc, out = job.run("backup")
    assert rc == 0 and out["files"] == 5 and out["changed_during_backup"] == [], out
    rc, out = job.run("restore", "--dest", str(job.tmp / "r"))
    assert rc == 0 and (job.tmp / "r").is_dir() and not (job.tmp / "r").is_symlink()
    assert (job.tmp / "r" / "sub" / "a.txt").read_text() == "alpha\n"


@pytest.mark.functional
def test_record_skip(job):
    rc, out = job.run("record-skip", "--trigger", "cron")
    assert rc == 75 and out["skipped"]
    record = job.runs()[-1]
    assert (record["outcome"], record["trigger"], record["action"]) == ("skipped", "cron", "backup")


@pytest.mark.functional
def test_bad_config_names_the_setting(job):
    job.write(keep_last=-2)
    rc, out = job.run("backup")
    assert rc == 1 and "keep_last=-2" in out["msg"]


@pytest.mark.functional
def test_a_file_growing_during_the_backup_is_listed(job):
    grow = job.src / "growing.log"
    with open(grow, "wb") as f:
        f.write(os.urandom(8 << 20))
    stop = threading.Event()

    def writer():
        with open(grow, "ab") as f:
            while not stop.is_set():
                f.write(b"x" * 65536)
                f.flush()
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        job.write(compression_level=19)  # slow enough that the writer runs while the file is read
        rc, out = job.run("backup", "--now", "2026-01-01T00:00:00Z")
    finally:
        stop.set()
        thread.join()
    assert rc == 0, out
    assert "growing.log" in out["changed_during_backup"]
    assert job.runs()[-1]["changed_during_backup"] == out["changed_during_backup"]
    # what was archived is consistent with its manifest
    rc, drill = job.run("drill")
    assert rc == 0 and drill["passed"], drill


@pytest.mark.functional
def test_progress_file(job):
    progress = job.tmp / "progress.jsonl"
    job.write(progress_file=str(progress), progress_interval=0)
    rc, out = job.run("backup")
    assert rc == 0
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert lines[-1]["final"] and lines[-1]["outcome"] == "done"
    assert lines[-1]["files_done"] == out["files"]
    assert os.path.basename(out["archive"]) in lines[-1]["note"]
