# SPDX-License-Identifier: GPL-3.0-or-later
"""redis_aof_backup against a real redis-server started on 127.0.0.1 for each test."""
from __future__ import annotations

import glob
import json
import os
import pathlib
import resource
import shutil
import signal
import sys
import subprocess
import tempfile
import threading
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof as aof
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_connection
from ansible_collections.nodowntime.storage.plugins.modules import redis_aof_backup

from ..helpers import free_port
from .utils import fail_module, run_module

redis = pytest.importorskip("redis")

# The directory holding the package tree ansible_collections/nodowntime/storage/..., as
# job_library installs it on a host.
LIBRARY_ROOT = os.path.abspath(os.path.join(os.path.dirname(aof.__file__), *[os.pardir] * 5))
REDIS_SERVER = shutil.which("redis-server")
CHECK_AOF = shutil.which("redis-check-aof")
# Every test starts a real redis-server: functional tests.
pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed on this host")]


def start_redis(datadir, *extra):
    """Start redis-server in ``datadir``; return (Popen, port, client) once it answers."""
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(datadir),
                             "--save", "", "--daemonize", "no", "--logfile", os.path.join(str(datadir), "redis.log")]
                            + list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.info("persistence").get("loading") == 0:
                return proc, port, client
        except redis.exceptions.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start: " + open(os.path.join(str(datadir), "redis.log")).read())
        time.sleep(0.05)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    def __init__(self, tmp_path, appendonly="yes"):
        self.dir = tmp_path / "data"
        self.dir.mkdir()
        self.backup_dir = tmp_path / "backups"
        self.backup_dir.mkdir()
        self.proc, self.port, self.client = start_redis(self.dir, "--appendonly", appendonly,
                                                        "--appendfsync", "always")

    def args(self, **kw):
        a = dict(login_port=self.port, backup_dir=str(self.backup_dir), poll_interval=0.05)
        a.update(kw)
        return a

    def config(self):
        return {k: self.client.config_get(k)[k] for k in
                ("appendfsync", "auto-aof-rewrite-percentage", "appendonly")}

    def populate(self, n, prefix="key"):
        pipe = self.client.pipeline(transaction=False)
        for i in range(n):
            pipe.set("%s:%d" % (prefix, i), "value-%d" % i)
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()

    def archives(self):
        return sorted(os.path.basename(p) for p in glob.glob(str(self.backup_dir / "aof_*")))


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    stop(s.proc)


def leftovers(backup_dir):
    return [n for n in os.listdir(str(backup_dir)) if n.startswith((".tmp-", ".staging-"))]


def load_archive(archive, tmp_path):
    """Extract ``archive``, check it with redis-check-aof, start a fresh redis-server on it."""
    dest = tmp_path / ("restore-%d" % len(os.listdir(str(tmp_path))))
    dest.mkdir()
    meta = aof.read_archive(archive, str(dest))
    if CHECK_AOF:
        manifest = dest / meta["appenddirname"] / (meta["appendfilename"] + ".manifest")
        chk = subprocess.run([CHECK_AOF, str(manifest)], capture_output=True, text=True, check=False)
        assert chk.returncode == 0, chk.stdout
        assert "All AOF files and manifest are valid" in chk.stdout
    proc, _port, client = start_redis(dest, "--appendonly", "yes", "--appenddirname", meta["appenddirname"])
    return proc, client


def test_backup_while_writing_restores_every_key_written_before(server, tmp_path):
    server.populate(100000)
    stop_writer = threading.Event()
    acked = []

    def writer():
        c = redis.Redis(host="127.0.0.1", port=server.port)
        i = 0
        while not stop_writer.is_set():
            if i % 3 == 0:  # some writes in MULTI/EXEC so the incr file has transactions
                p = c.pipeline(transaction=True)
                p.set("w:%d" % i, i)
                p.incr("counter")
                p.execute()
            else:
                c.set("w:%d" % i, i)
            acked.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)
    written_before = len(acked)
    try:
        result = run_module(redis_aof_backup.main, server.args())
    finally:
        stop_writer.set()
        t.join()
    assert result["changed"] is True
    assert written_before > 0 and len(acked) > written_before
    assert result["aof_layout"] == "multi-part" and result["staging"] == "link"
    assert result["redis_version"].startswith("7.")
    assert os.path.basename(result["archive"]) == aof.archive_name(
        aof.parse_archive_name(os.path.basename(result["archive"]), server.port), server.port, "zip")
    assert result["sha256"] == aof.sha256_file(result["archive"])
    assert result["size"] == os.path.getsize(result["archive"])
    assert set(result["steps"]) >= {"lock", "rewrite", "wait", "link", "archive", "retention"}
    assert result["elapsed"] > 0
    assert server.config()["appendfsync"] == "always"
    assert server.config()["auto-aof-rewrite-percentage"] == "100"
    assert leftovers(server.backup_dir) == []

    proc, fresh = load_archive(result["archive"], tmp_path)
    try:
        assert fresh.dbsize() >= 100000 + written_before
        missing = [i for i in range(written_before) if not fresh.exists("w:%d" % i)]
        assert missing == []
        assert fresh.get("key:99999") == "value-99999"
        assert fresh.exists("key:0")
    finally:
        stop(proc)


def test_tar_zst_and_restore_drill(server):
    if not shutil.which("zstd"):
        pytest.skip("zstd is not installed")
    server.populate(2000)
    result = run_module(redis_aof_backup.main, server.args(format="tar.zst"))
    assert result["archive"].endswith("-%d.tar.zst" % server.port)
    drill = aof.restore_drill(result["archive"])
    assert drill["passed"] is True, drill["problems"]
    assert drill["keys"] == {"db0": 2000}
    assert drill["sampled_checked"] == 100
    assert drill.get("check_aof", "ok") == "ok"


def test_drill_detects_a_tampered_archive(server, tmp_path):
    server.populate(500)
    result = run_module(redis_aof_backup.main, server.args())
    # rewrite the archive's record to expect more keys than it holds: the drill must fail
    import zipfile
    bad = str(tmp_path / ("aof_20200101000000-%d.zip" % server.port))
    with zipfile.ZipFile(result["archive"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == aof.METADATA_NAME:
                meta = json.loads(data)
                meta["keys_before"] = meta["keys_after"] = {"db0": 501}
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    drill = aof.restore_drill(bad)
    assert drill["passed"] is False
    assert "db0 holds 500 keys" in drill["problems"][0]


def test_appendfsync_restored_after_archive_failure(server):
    """An I/O error while writing the archive (file size limit) fails the run; settings come back."""
    server.populate(20000)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        result = fail_module(redis_aof_backup.main, server.args())
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert result["failed_step"] == "archive"
    assert "File too large" in result["msg"]
    assert result["changed"] is True
    assert server.config()["appendfsync"] == "always"
    assert server.config()["auto-aof-rewrite-percentage"] == "100"
    assert server.archives() == []
    assert leftovers(server.backup_dir) == []


def test_appendfsync_restored_after_unwritable_backup_dir(server):
    # outside pytest's 0700 tmp tree, so that an unprivileged user can reach it
    server.backup_dir = pathlib.Path(tempfile.mkdtemp(prefix="aof-unwritable-"))
    os.chmod(str(server.backup_dir), 0o555)
    try:
        if os.geteuid() == 0:
            # root writes anywhere: run the module as nobody in a child process
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                try:
                    os.close(r)
                    os.setgid(65534)
                    os.setuid(65534)
                    res = fail_module(redis_aof_backup.main, server.args())
                    os.write(w, json.dumps(res).encode())
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r) as f:
                data = f.read()
            os.waitpid(pid, 0)
            result = json.loads(data)
        else:
            result = fail_module(redis_aof_backup.main, server.args())
        assert os.listdir(str(server.backup_dir)) == []
    finally:
        shutil.rmtree(str(server.backup_dir))
    assert "backup_dir" in result["msg"] and "writable" in result["msg"]
    assert server.config()["appendfsync"] == "always"
    assert server.config()["auto-aof-rewrite-percentage"] == "100"


def test_appendfsync_restored_after_timeout(server):
    server.populate(2000)
    # a slow BGSAVE child keeps our rewrite "scheduled" past the timeout
    server.client.config_set("rdb-key-save-delay", 100000)
    server.client.bgsave()
    result = fail_module(redis_aof_backup.main, server.args(timeout=1))
    assert result["failed_step"] == "wait"
    assert "still scheduled after 1s (timeout)" in result["msg"]
    assert server.config()["appendfsync"] == "always"
    assert server.config()["auto-aof-rewrite-percentage"] == "100"
    assert server.archives() == []
    assert leftovers(server.backup_dir) == []


def test_check_mode_changes_nothing(server):
    server.populate(100)
    before = server.config()
    rewrites = server.client.info("persistence")["aof_rewrites"]
    old = "aof_20000101000000-%d.zip" % server.port
    (server.backup_dir / old).write_bytes(b"x")
    result = run_module(redis_aof_backup.main, server.args(keep_last=1), check_mode=True)
    assert result["changed"] is True
    assert "CONFIG SET appendfsync no (was always)" in result["plan"]
    # The real run creates an archive first, which becomes the one keep_last keeps.
    assert result["archives_deleted"] == [old]
    assert "delete by retention: %s" % old in result["plan"]
    assert server.config() == before
    assert server.client.info("persistence")["aof_rewrites"] == rewrites
    assert os.listdir(str(server.backup_dir)) == [old]


@pytest.mark.parametrize("rules", [dict(keep_last=1), dict(keep_last=3), dict(keep_days=30),
                                   dict(keep_days=30, keep_last=2), dict()])
def test_check_mode_predicts_the_deletions_of_the_real_run(server, rules):
    names = ["aof_2000010%d000000-%d.zip" % (d, server.port) for d in range(1, 5)]
    for n in names + ["aof_20000101000000-%d.zip" % (server.port + 1), "notes.txt"]:
        (server.backup_dir / n).write_bytes(b"x")
    predicted = run_module(redis_aof_backup.main, server.args(**rules), check_mode=True)
    real = run_module(redis_aof_backup.main, server.args(**rules))
    assert predicted["archives_deleted"] == real["archives_deleted"]
    assert os.path.basename(real["archive"]) not in real["archives_deleted"]


def test_retention_keeps_exactly_what_it_should(server):
    server.populate(100)
    other = "aof_20000101000000-%d.zip" % (server.port + 1)
    names = ["aof_2000010%d000000-%d.zip" % (d, server.port) for d in range(1, 6)]
    for n in names + [other, "notes.txt"]:
        (server.backup_dir / n).write_bytes(b"x")
    result = run_module(redis_aof_backup.main, server.args(keep_last=3))
    new = os.path.basename(result["archive"])
    assert sorted(result["archives_deleted"]) == names[:3]
    assert sorted(os.listdir(str(server.backup_dir))) == sorted(
        [".aof-backup-%d.lock" % server.port, "notes.txt", other, new] + names[3:])
    # keep_days: everything from 2000 is older; keep_last 1 would keep only the newest
    result = run_module(redis_aof_backup.main, server.args(keep_days=30))
    assert sorted(result["archives_deleted"]) == names[3:]
    assert server.archives() == sorted([other, new, os.path.basename(result["archive"])])


def test_concurrent_runs_do_not_both_back_up(server, tmp_path):
    server.populate(100)
    lock = aof.BackupLock(str(server.backup_dir), server.port)
    lock.acquire(0)
    try:
        result = fail_module(redis_aof_backup.main, server.args(lock_wait=0))
    finally:
        lock.release()
    assert result["msg"].startswith("another backup of port %d is running" % server.port)
    assert server.archives() == []
    assert server.config()["appendfsync"] == "always"

    # two real runs at once, as two processes: with lock_wait 0 exactly one backs up
    server.populate(20000)
    server.client.config_set("rdb-key-save-delay", 20)  # make the rewrite last ~0.4 s
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": server.args(lock_wait=0)}))
    procs = [subprocess.Popen([sys.executable, "-m", redis_aof_backup.__name__, str(args_file)],
                              stdout=subprocess.PIPE, env=env) for _run in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(bool(r.get("failed")) for r in results) == [False, True]
    assert [r["msg"] for r in results if r.get("failed")][0].startswith("another backup of port")
    assert len(server.archives()) == 1
    assert server.config()["appendfsync"] == "always"


def test_second_run_waits_with_lock_wait(server):
    lock = aof.BackupLock(str(server.backup_dir), server.port)
    lock.acquire(0)
    timer = threading.Timer(0.5, lock.release)
    timer.start()
    t0 = time.monotonic()
    result = run_module(redis_aof_backup.main, server.args(lock_wait=10))
    timer.join()
    assert time.monotonic() - t0 >= 0.5
    assert result["steps"]["lock"] >= 0.4
    assert os.path.exists(result["archive"])


def test_appendonly_no_fails_clearly(tmp_path):
    s = Server(tmp_path, appendonly="no")
    try:
        result = fail_module(redis_aof_backup.main, s.args())
        assert "appendonly no" in result["msg"] and "no AOF to back up" in result["msg"]
        assert s.config()["appendfsync"] == "always"
        assert s.archives() == []
    finally:
        stop(s.proc)


def test_relax_fsync_false_leaves_appendfsync_alone(server):
    seen = []
    orig = aof.AofBackup._wait

    def spy(self):
        seen.append(self.client.config_get("appendfsync"))
        return orig(self)

    aof.AofBackup._wait = spy
    try:
        run_module(redis_aof_backup.main, server.args(relax_fsync=False))
        run_module(redis_aof_backup.main, server.args(relax_fsync=True))
    finally:
        aof.AofBackup._wait = orig
    assert [list(s.values())[0] for s in seen] == ["always", "no"]
    assert server.config()["appendfsync"] == "always"


def test_bad_options_fail_clearly(server):
    assert "compression_level must be 1 to 9" in fail_module(
        redis_aof_backup.main, server.args(compression_level=12))["msg"]
    assert "keep_last must be 1 or more" in fail_module(
        redis_aof_backup.main, server.args(keep_last=0))["msg"]
    assert "does not exist" in fail_module(
        redis_aof_backup.main, server.args(backup_dir="/nonexistent/x"))["msg"]
    port = free_port()
    assert "Cannot connect to Redis at 127.0.0.1:%d" % port in fail_module(
        redis_aof_backup.main, server.args(login_port=port))["msg"]


def test_missing_redis_library_is_reported(server, monkeypatch):
    monkeypatch.setattr(_redis_connection, "HAS_REDIS", False)
    result = fail_module(redis_aof_backup.main, server.args())
    assert "Failed to import the required Python library (redis)" in result["msg"]
    assert "python3-redis" in result["msg"]


def test_big_values_are_sampled_by_size_only(server):
    server.client.rpush("biglist", *range(2000))
    server.client.rpush("small", 1, 2)
    assert aof.read_value(server.client, "biglist") == ("list", ["size", 2000])
    assert aof.read_value(server.client, "small") == ("list", ["1", "2"])


def test_single_file_layout_is_archived_cut_at_a_complete_command(tmp_path):
    """Redis before 7 keeps one AOF file; a half-written last command is left out."""
    datadir = tmp_path / "old"
    datadir.mkdir()
    whole = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
    (datadir / "appendonly.aof").write_bytes(whole + b"*3\r\n$3\r\nSET\r\n$1\r\nb")
    staging = tmp_path / "staging"
    staging.mkdir()
    job = aof.AofBackup(None, {})
    members, method, layout, files = job._stage(
        dict(dir=str(datadir), appendfilename="appendonly.aof", appenddirname=None), str(staging))
    assert (method, layout, files) == ("link", "single-file", ["appendonly.aof"])
    out = tmp_path / "a.zip"
    aof.write_archive("zip", str(out), members, 1)
    dest = tmp_path / "x"
    aof.read_archive(str(out), str(dest))
    assert (dest / "appendonly.aof").read_bytes() == whole
    if CHECK_AOF:
        chk = subprocess.run([CHECK_AOF, str(dest / "appendonly.aof")], capture_output=True, text=True, check=False)
        assert chk.returncode == 0, chk.stdout


# ---- the progress file

def progress_lines(path):
    """Every line of a progress file, each of which must be a JSON object with a text."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines and all(isinstance(line["text"], str) and line["text"] for line in lines)
    return lines


@pytest.mark.parametrize("fmt", ["zip", "tar.zst"])
def test_progress_file_follows_the_rewrite_and_the_archive(server, tmp_path, fmt):
    if fmt == "tar.zst" and not shutil.which("zstd"):
        pytest.skip("zstd is not installed")
    server.populate(20000)
    progress = tmp_path / "log" / "backup.progress"
    result = run_module(redis_aof_backup.main, server.args(format=fmt, progress_file=str(progress),
                                                           progress_interval=0))
    lines = progress_lines(progress)
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]
    notes = [line["note"] for line in lines]
    assert notes[:2] == ["connecting to Redis", "starting"] and "waiting for BGREWRITEAOF" in notes
    archiving = [line for line in lines if line["note"].startswith("archiving into aof_")]
    assert archiving and archiving[0]["bytes_done"] == 0
    assert all(line["bytes_done"] <= line["bytes_total"] for line in archiving)
    assert [line["bytes_done"] for line in archiving] == sorted(line["bytes_done"] for line in archiving)
    # The base file, the incr file and the manifest, then the backup's own metadata.
    assert archiving[-1]["files_done"] == archiving[-1]["files_total"] == 4
    assert archiving[-1]["bytes_done"] == archiving[-1]["bytes_total"] > 100000
    last = lines[-1]
    assert last["outcome"] == "done" and last["what"] == "redis backup" and last["rate_unit"] == "bytes"
    assert last["bytes_done"] == last["bytes_total"] == archiving[-1]["bytes_total"]
    assert last["note"] == "%s, %d bytes" % (os.path.basename(result["archive"]), result["size"])
    assert "progress_file" not in result and "bytes_done" not in result


def test_progress_of_a_failed_backup_names_the_step(server, tmp_path):
    server.populate(2000)
    server.client.config_set("rdb-key-save-delay", 100000)
    server.client.bgsave()
    progress = tmp_path / "backup.progress"
    result = fail_module(redis_aof_backup.main, server.args(timeout=1, progress_file=str(progress),
                                                            progress_interval=0))
    lines = progress_lines(progress)
    assert lines[-2]["note"] == "waiting for BGREWRITEAOF (scheduled)"
    assert lines[-1]["final"] and lines[-1]["outcome"] == "failed at wait"
    assert lines[-1]["note"] == result["msg"]


def test_check_mode_writes_no_progress_file(server, tmp_path):
    progress = tmp_path / "backup.progress"
    run_module(redis_aof_backup.main, server.args(progress_file=str(progress)), check_mode=True)
    assert not progress.exists()


def test_scheduled_script_writes_the_progress_file_of_its_config(server, tmp_path):
    root = pathlib.Path(__file__).resolve().parents[4]
    server.populate(500)
    progress = tmp_path / "backup.progress"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(login_port=server.port, backup_dir=str(server.backup_dir), poll_interval=0.05,
                                   progress_file=str(progress), progress_interval=0)))
    proc = subprocess.run([sys.executable, str(root / "roles" / "redis_backup" / "files" / "nodowntime_redis_aof_backup.py"),
                           "backup", "--config", str(cfg)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, NODOWNTIME_LIB=LIBRARY_ROOT))
    assert proc.returncode == 0, proc.stderr
    last = progress_lines(progress)[-1]
    assert last["final"] and last["outcome"] == "done"
    assert last["note"].startswith(os.path.basename(json.loads(proc.stdout)["archive"]))


def test_progress_file_of_refused_input_says_so(server, tmp_path):
    progress = tmp_path / "backup.progress"
    progress.write_text(json.dumps(dict(text="an earlier run: done", final=True)) + "\n")
    result = fail_module(redis_aof_backup.main, server.args(keep_last=0, progress_file=str(progress)))
    lines = progress_lines(progress)
    assert len(lines) == 1 and lines[0]["final"] and lines[0]["outcome"] == "failed"
    assert lines[0]["note"] == result["msg"] and result["msg"].startswith("keep_last must be 1 or more")
