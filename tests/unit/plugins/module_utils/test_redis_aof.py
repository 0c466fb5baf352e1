# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure functions of _redis_aof: manifest, INFO, RESP cut, archive names, retention, drill compare."""
from __future__ import annotations

import datetime
import itertools
import pathlib

import pytest
import yaml

from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof as aof
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_connection
from ansible_collections.nodowntime.storage.plugins.module_utils._redis_connection import client_kwargs

# Recorded from redis-server 7.0.15 after one BGREWRITEAOF
MANIFEST_7 = b"file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"


def test_parse_manifest_recorded():
    entries = aof.parse_manifest(MANIFEST_7)
    assert entries == [
        dict(name="appendonly.aof.2.base.rdb", seq=2, type="b"),
        dict(name="appendonly.aof.2.incr.aof", seq=2, type="i"),
    ]


def test_manifest_data_files_skip_history_and_keep_order():
    text = ('file appendonly.aof.1.base.rdb seq 1 type h\n'
            'file "my aof.2.base.aof" seq 2 type b\n'
            'file appendonly.aof.1.incr.aof seq 1 type h\n'
            'file appendonly.aof.3.incr.aof seq 3 type i\n'
            'file appendonly.aof.4.incr.aof seq 4 type i\n')
    names = [e["name"] for e in aof.manifest_data_files(aof.parse_manifest(text))]
    assert names == ["my aof.2.base.aof", "appendonly.aof.3.incr.aof", "appendonly.aof.4.incr.aof"]


@pytest.mark.parametrize("text", [
    "file ../etc/passwd seq 1 type b\n",
    "file a seq 1 type\n",
    "seq 1 type b\n",
])
def test_parse_manifest_rejects_bad_lines(text):
    with pytest.raises(aof.BackupError):
        aof.parse_manifest(text)


def test_manifest_two_bases_rejected():
    with pytest.raises(aof.BackupError, match="2 base"):
        aof.manifest_data_files(aof.parse_manifest("file a seq 1 type b\nfile b seq 2 type b\n"))


def _cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def test_resp_complete_length_cuts_half_written_command():
    whole = _cmd(b"SELECT", b"0") + _cmd(b"SET", b"a", b"1")
    tail = _cmd(b"SET", b"b", b"2")
    for cut in range(1, len(tail)):
        assert aof.resp_complete_length(whole + tail[:cut]) == len(whole)
    assert aof.resp_complete_length(whole + tail) == len(whole + tail)


def test_resp_complete_length_drops_open_multi():
    head = _cmd(b"SET", b"a", b"1")
    multi = _cmd(b"MULTI") + _cmd(b"SET", b"b", b"2") + _cmd(b"INCR", b"c")
    assert aof.resp_complete_length(head + multi) == len(head)
    closed = head + multi + _cmd(b"EXEC")
    assert aof.resp_complete_length(closed) == len(closed)


def test_resp_complete_length_binary_values_with_crlf():
    data = _cmd(b"SET", b"k", b"x\r\n*1\r\n$4\r\nEXEC")
    assert aof.resp_complete_length(data) == len(data)
    assert aof.resp_complete_length(b"") == 0


def test_rewrite_state():
    assert aof.rewrite_state(aof.parse_info(
        "# Persistence\r\naof_rewrite_in_progress:1\r\naof_rewrite_scheduled:0\r\n")) == "running"
    assert aof.rewrite_state({"aof_rewrite_in_progress": 0, "aof_rewrite_scheduled": 1}) == "scheduled"
    assert aof.rewrite_state({"aof_rewrite_in_progress": 0, "aof_rewrite_scheduled": 0,
                              "aof_last_bgrewrite_status": "err"}) == "failed"
    assert aof.rewrite_state({"aof_rewrite_in_progress": 0, "aof_rewrite_scheduled": 0,
                              "aof_last_bgrewrite_status": "ok"}) == "done"


def test_archive_names():
    when = datetime.datetime(2016, 10, 8, 12, 8, 21)
    assert aof.archive_name(when, 7000, "zip") == "aof_20161008120821-7000.zip"  # the seed's name
    assert aof.archive_name(when, 7000, "tar.zst") == "aof_20161008120821-7000.tar.zst"
    assert aof.parse_archive_name("aof_20161008120821-7000.zip", 7000) == when
    assert aof.parse_archive_name("aof_20161008120821-7000.zip", 6379) is None
    assert aof.parse_archive_name(".tmp-aof_20161008120821-7000.zip-x", 7000) is None
    assert aof.parse_archive_name("aof_20161308120821-7000.zip", 7000) is None  # month 13
    with pytest.raises(aof.BackupError):
        aof.archive_name(when, 7000, "rar")


def _names(port, days_ago, now):
    return [aof.archive_name(now - datetime.timedelta(days=d), port, "zip") for d in days_ago]


NOW = datetime.datetime(2026, 11, 21, 12, 0, 0)


def test_retention_keep_last_only():
    names = _names(6379, [0, 1, 2, 3, 4], NOW) + _names(6380, [9, 10], NOW) + ["notes.txt", "backup-runs.jsonl"]
    expired = aof.select_expired(names, 6379, NOW, keep_last=2)
    assert expired == _names(6379, [4, 3, 2], NOW)


def test_retention_keep_days_only():
    names = _names(6379, [0, 1, 2.5, 3, 40], NOW)
    assert aof.select_expired(names, 6379, NOW, keep_days=2) == _names(6379, [40, 3, 2.5], NOW)


def test_retention_both_rules_keep_union():
    names = _names(6379, [10, 20, 30, 40], NOW)
    # keep_days keeps nothing, keep_last keeps the two newest
    assert aof.select_expired(names, 6379, NOW, keep_days=5, keep_last=2) == _names(6379, [40, 30], NOW)
    # keep_days keeps three, more than keep_last
    assert aof.select_expired(names, 6379, NOW, keep_days=35, keep_last=1) == _names(6379, [40], NOW)


def test_retention_never_deletes_newest_and_no_rule_deletes_nothing():
    names = _names(6379, [50, 60], NOW)
    assert aof.select_expired(names, 6379, NOW, keep_days=1) == _names(6379, [60], NOW)
    assert aof.select_expired(names, 6379, NOW) == []
    with pytest.raises(aof.BackupError, match="keep_last"):
        aof.select_expired(names, 6379, NOW, keep_last=0)


def test_retention_plan_counts_the_archive_the_run_creates():
    """Check mode and the real run plan retention alike: with the new archive counted in."""
    names = _names(6379, [1, 2, 3], NOW) + ["notes.txt"]
    new = aof.archive_name(NOW, 6379, "zip")
    assert aof.retention_plan(names, new, 6379, NOW, keep_last=1) == _names(6379, [3, 2, 1], NOW)
    assert aof.retention_plan(names, new, 6379, NOW, keep_last=3) == _names(6379, [3], NOW)
    # the real run lists the directory after the archive is written: the same plan
    assert aof.retention_plan(names + [new], new, 6379, NOW, keep_last=1) == _names(6379, [3, 2, 1], NOW)
    assert aof.retention_plan(names, new, 6379, NOW) == []


def test_newest_archive():
    names = _names(6379, [3, 1, 2], NOW) + _names(6380, [0], NOW) + ["x.zip"]
    assert aof.newest_archive(names, 6379) == _names(6379, [1], NOW)[0]
    assert aof.newest_archive(["x"], 6379) is None


def test_keyspace_counts_raw_and_parsed():
    assert aof.keyspace_counts(aof.parse_info("# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=7,expires=1\r\n")) \
        == {"db0": 3, "db2": 7}
    assert aof.keyspace_counts({"db0": {"keys": 5, "expires": 0}}) == {"db0": 5}


def test_compare_drill():
    d = aof.value_digest("string", "v")
    meta = dict(keys_before={"db0": 10}, keys_after={"db0": 12},
                sample={"a": [d, d], "b": [d, aof.value_digest("string", "w")], "c": [None, d]})
    assert aof.compare_drill(meta, {"db0": 11}, {"a": d}) == (True, [], 1)
    ok, problems = aof.compare_drill(meta, {"db0": 9}, {"a": d})[:2]
    assert not ok and "db0 holds 9 keys" in problems[0]
    ok, problems = aof.compare_drill(meta, {"db0": 10, "db1": 1}, {"a": aof.value_digest("string", "x")})[:2]
    assert not ok and len(problems) == 2


def test_compliance():
    rows = [dict(outcome="ok", start="2026-11-01"), dict(outcome="failed", start="2026-11-02"),
            dict(outcome="skipped", start="2026-11-03"), dict(outcome="ok", start="2026-11-04")]
    assert aof.compliance(rows) == dict(runs=4, ok=2, failed=2, percent=50.0)
    assert aof.compliance(rows, since="2026-11-03") == dict(runs=2, ok=1, failed=1, percent=50.0)
    assert aof.compliance([])["percent"] is None


def test_client_kwargs():
    kw = client_kwargs(dict(login_host="h", login_port=7000, login_user="u", login_password="p",
                            tls=True, validate_certs=False, ca_certs="/ca"))
    assert kw["host"] == "h" and kw["port"] == 7000 and kw["ssl"] is True
    assert kw["ssl_cert_reqs"] == "none" and kw["ssl_ca_certs"] == "/ca" and kw["username"] == "u"
    kw = client_kwargs(dict(login_unix_socket="/run/redis.sock", login_port=7000))
    assert kw["unix_socket_path"] == "/run/redis.sock" and "host" not in kw


class RecordedProgress:
    """Takes the place of a _progress.ProgressFile: keeps what it is told."""

    def __init__(self):
        self.updates = []

    def update(self, **kwargs):
        self.updates.append(kwargs)


@pytest.mark.parametrize("fmt", ["zip", pytest.param("tar.zst", marks=pytest.mark.functional)])  # runs zstd
def test_write_archive_reports_every_byte_and_member(tmp_path, fmt):
    import shutil

    if fmt == "tar.zst" and not shutil.which("zstd"):
        pytest.skip("zstd is not installed")
    base = tmp_path / "base.rdb"
    base.write_bytes(b"B" * (3 * 1024 * 1024 + 5))  # streamed in 1 MiB chunks
    incr = tmp_path / "incr.aof"
    incr.write_bytes(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI")  # cut at the last complete command
    members = [("dir/manifest", None, b"manifest text", False), ("dir/base.rdb", str(base), base.stat().st_size, False),
               ("dir/incr.aof", str(incr), incr.stat().st_size, True)]
    recorded = RecordedProgress()
    clock = itertools.count().__next__  # a second passes between two chunks: every chunk is reported
    progress = aof.ArchiveProgress(recorded, members, "archiving", every=1, clock=clock)
    assert progress.total == 13 + base.stat().st_size + incr.stat().st_size
    aof.write_archive(fmt, str(tmp_path / "out"), members, 1, shutil.which("zstd"), progress)
    done = [(u["bytes_done"], u["files_done"]) for u in recorded.updates]
    assert done[-1] == (progress.total, 3) and recorded.updates[-1]["force"]
    assert done == sorted(done) and all(u["bytes_total"] == progress.total for u in recorded.updates)
    if fmt == "zip":  # the manifest, then the base file in _copy_limited's chunks
        chunks = [13 + n * 1048576 for n in range(4)] + [13 + base.stat().st_size]
        assert [d for d, f in done if f == 1] == chunks


def test_archive_progress_is_handed_on_at_most_every_interval():
    recorded = RecordedProgress()
    now = [0.0]
    progress = aof.ArchiveProgress(recorded, [("a", "/a", 1000, False)], "archiving", every=0.5,
                                   clock=lambda: now[0])
    for dummy in range(10):
        progress.counted(50)
        now[0] += 0.2
    progress.member_done()
    # at 0.0, 0.6, 1.2 and 1.8 s, then the member's end
    assert [u["bytes_done"] for u in recorded.updates] == [50, 200, 350, 500, 500]
    assert recorded.updates[-1]["force"] and recorded.updates[-1]["files_done"] == 1


# ---- the backup's defaults: one source (_redis_aof.DEFAULTS), the copies that must stay compared with it

ROOT = pathlib.Path(__file__).resolve().parents[4]
ROLE = ROOT / "roles" / "redis_backup"
# role variable -> module option, for the options the role passes on to every backup
ROLE_OPTIONS = dict(redis_backup_format="format", redis_backup_relax_fsync="relax_fsync",
                    redis_backup_timeout="timeout")


def _module_doc_options():
    from ansible_collections.nodowntime.storage.plugins.modules import redis_aof_backup
    return yaml.safe_load(redis_aof_backup.DOCUMENTATION)["options"]


def test_module_documents_the_defaults_it_uses():
    options = _module_doc_options()
    for name, value in aof.DEFAULTS.items():
        assert options[name]["default"] == value, name
    assert options["format"]["choices"] == list(aof.ARCHIVE_FORMATS)


def test_role_defaults_and_argument_specs_match_the_module():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for var, option in ROLE_OPTIONS.items():
        assert defaults[var] == aof.DEFAULTS[option], var
        assert specs["main"]["options"][var]["default"] == aof.DEFAULTS[option], var
    # every entry point documents each variable it takes with the default the role really has
    for entry, spec in specs.items():
        for var, opt in spec["options"].items():
            if var in defaults and "default" in opt:
                assert opt["default"] == defaults[var], (entry, var)
    assert defaults["redis_backup_port"] == _redis_connection.DEFAULT_PORT
    assert defaults["redis_backup_host"] == _redis_connection.DEFAULT_HOST


def test_backup_options_fill_defaults_and_name_what_is_wrong():
    opts = aof.backup_options(dict(backup_dir="/b", login_port=6380, keep_last=None))
    assert opts["compression_level"] == aof.DEFAULT_COMPRESSION_LEVEL["zip"]
    assert {k: opts[k] for k in aof.DEFAULTS if k != "progress_interval"} == {
        k: v for k, v in aof.DEFAULTS.items() if k != "progress_interval"}
    assert aof.backup_options(dict(backup_dir="/b", login_port=1, format="tar.zst"), zstd_bin="/usr/bin/zstd")[
        "compression_level"] == 3
    for params, msg in [(dict(compression_level=12), "compression_level must be 1 to 9 for format zip, not 12"),
                        (dict(keep_last=0), "keep_last must be 1 or more"),
                        (dict(keep_days=-1), "keep_days must be 0 or more, not -1"),
                        (dict(timeout=0), "timeout must be 1 second or more, not 0"),
                        (dict(format="tar.zst"), "format tar.zst needs the zstd program")]:
        with pytest.raises(aof.BackupError, match=msg) as e:
            aof.backup_options(dict(dict(backup_dir="/b", login_port=1), **params))
        assert e.value.step == "config"
