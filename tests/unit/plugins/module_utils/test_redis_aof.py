# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure functions of _redis_aof: manifest, INFO, RESP cut, archive names, retention, drill compare."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof as aof
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
