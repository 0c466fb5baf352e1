# SPDX-License-Identifier: GPL-3.0-or-later
"""nodowntime.storage.rsyncd_share driven in-process against files in a temporary directory.

The module proves each candidate with the rsync daemon installed here, so these tests need
``rsync``; the last tests push files through the written configuration with the real daemon.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsyncd_share as share
from ansible_collections.nodowntime.storage.plugins.modules import rsyncd_share

from .utils import fail_module, run_module

RSYNC = shutil.which("rsync")
# The module runs the real rsync: functional tests.
pytestmark = [pytest.mark.functional, pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")]

EXISTING = (
    "# managed by hand; keep this comment\n"
    "pid file = /run/rsyncd.pid\n"
    "   log file = /var/log/rsyncd.log   \n"
    "\n"
    "[public]\n"
    "\tpath = /srv/public\n"
    "\tcomment = read-only \\\n"
    "\t  mirror\n"
    "\n"
    "; trailing comment about nothing\n"
)


@pytest.fixture
def env(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    cfg = tmp_path / "rsyncd.conf"
    cfg.write_text(EXISTING)
    return dict(tmp=tmp_path, share=str(share), cfg=str(cfg), secrets=str(tmp_path / "rsyncd.secrets"))


def args(env, **kw):
    a = dict(name="migration", config_path=env["cfg"], share_path=env["share"], read_only=False,
             uid="root", gid="root", use_chroot=False, hosts_allow=["127.0.0.1"])
    a.update(kw)
    return a


def read(path):
    with open(path) as f:
        return f.read()


def test_check_real_idempotent(env):
    a = args(env, comment="migration target", max_connections=4, exclude=["*.tmp", "lost+found/"])
    r = run_module(rsyncd_share.main, a, check_mode=True, diff=True)
    assert r["changed"] is True
    assert read(env["cfg"]) == EXISTING  # check mode wrote nothing
    assert r["share"]["read_only"] is False and r["share"]["max_connections"] == 4
    assert r["diff"][0]["before"] == EXISTING and r["diff"][0]["after"].startswith(EXISTING)

    r = run_module(rsyncd_share.main, a, diff=True)
    assert r["changed"] is True
    text = read(env["cfg"])
    assert text.startswith(EXISTING)  # everything before the new section untouched
    assert text[len(EXISTING):] == (
        "\n[migration]\n"
        "    path = %s\n"
        "    comment = migration target\n"
        "    read only = no\n"
        "    use chroot = no\n"
        "    uid = root\n"
        "    gid = root\n"
        "    hosts allow = 127.0.0.1\n"
        "    max connections = 4\n"
        "    exclude = *.tmp lost+found/\n" % env["share"])
    assert r["diff"][0]["after"] == text

    r = run_module(rsyncd_share.main, a)
    assert r["changed"] is False and r["changed_parameters"] == []
    r = run_module(rsyncd_share.main, a, check_mode=True)
    assert r["changed"] is False
    assert read(env["cfg"]) == text
    assert r["share"] == dict(
        name="migration", path=env["share"], comment="migration target", read_only=False,
        use_chroot=False, uid="root", gid="root", hosts_allow=["127.0.0.1"], max_connections=4,
        exclude=["*.tmp", "lost+found/"], log_file="/var/log/rsyncd.log",  # inherited
    )
    assert "pid_file" not in r["share"] and r["share"]["log_file"] == "/var/log/rsyncd.log"


def test_equivalent_existing_values_are_not_rewritten(env):
    text = EXISTING + "[migration]\n  Path=%s\n  READONLY = false\n  hosts allow = 127.0.0.1,\n  UID = 0\n" % env["share"]
    with open(env["cfg"], "w") as f:
        f.write(text)
    r = run_module(rsyncd_share.main, args(env, uid="0", gid=None, use_chroot=None))
    assert r["changed"] is False, r["changed_parameters"]
    assert read(env["cfg"]) == text


def test_changed_value_rewrites_one_line(env):
    run_module(rsyncd_share.main, args(env))
    before = read(env["cfg"])
    r = run_module(rsyncd_share.main, args(env, hosts_allow=["127.0.0.1", "10.213.7.11"]), diff=True)
    assert r["changed"] is True and r["changed_parameters"] == ["hosts allow"]
    assert read(env["cfg"]) == before.replace("hosts allow = 127.0.0.1\n", "hosts allow = 127.0.0.1, 10.213.7.11\n")


def test_absent_removes_only_the_module(env):
    run_module(rsyncd_share.main, args(env))
    r = run_module(rsyncd_share.main, dict(name="migration", config_path=env["cfg"], state="absent"), check_mode=True)
    assert r["changed"] is True and "[migration]" in read(env["cfg"])
    r = run_module(rsyncd_share.main, dict(name="migration", config_path=env["cfg"], state="absent"))
    assert r["changed"] is True
    assert read(env["cfg"]) == EXISTING
    r = run_module(rsyncd_share.main, dict(name="migration", config_path=env["cfg"], state="absent"))
    assert r["changed"] is False and r["share"] == {}


def test_new_config_file_is_created(env):
    os.unlink(env["cfg"])
    r = run_module(rsyncd_share.main, args(env))
    assert r["changed"] is True
    assert read(env["cfg"]).startswith("[migration]\n    path = ")
    assert stat.S_IMODE(os.stat(env["cfg"]).st_mode) == 0o644


def test_open_writable_module_is_refused(env):
    r = fail_module(rsyncd_share.main, args(env, hosts_allow=None))
    assert "allow_open_write" in r["msg"] and "hosts_allow" in r["msg"]
    assert read(env["cfg"]) == EXISTING
    # Read-only is fine, and so is an explicit allow_open_write.
    run_module(rsyncd_share.main, args(env, name="ro", hosts_allow=None, read_only=True))
    r = run_module(rsyncd_share.main, args(env, hosts_allow=None, allow_open_write=True))
    assert r["changed"] is True


def test_writable_by_global_default_is_refused(env):
    with open(env["cfg"], "w") as f:
        f.write("read only = no\n" + EXISTING)
    r = fail_module(rsyncd_share.main, dict(name="m", config_path=env["cfg"], share_path=env["share"]))
    assert "allow_open_write" in r["msg"]


@pytest.mark.parametrize("option,value,word", [
    ("name", "bad]name", "name="),
    ("name", "two\nlines", "name="),
    ("name", "a/b", "name="),
    ("name", "global", "name="),
    ("comment", "line1\nline2", "comment="),
    ("comment", "ends with backslash\\", "comment="),
    ("share_path", "relative/dir", "share_path="),
    ("hosts_allow", ["10.0.0.1,10.0.0.2"], "hosts_allow="),
    ("auth_users", ["bob\n"], "auth_users="),
    ("incoming_chmod", " Dg+s", "incoming_chmod="),
    ("max_connections", -1, "max_connections="),
    ("uid", "no-such-user-here", "uid="),
    ("gid", "no-such-group-here", "gid="),
])
def test_hostile_values_fail_naming_the_option(env, option, value, word):
    r = fail_module(rsyncd_share.main, args(env, **{option: value}))
    assert word in r["msg"], r["msg"]
    assert read(env["cfg"]) == EXISTING


def test_missing_share_path_and_create(env):
    missing = os.path.join(str(env["tmp"]), "new", "dir")
    r = fail_module(rsyncd_share.main, args(env, share_path=missing))
    assert "share_path=" in r["msg"] and "create=true" in r["msg"]
    r = run_module(rsyncd_share.main, args(env, share_path=missing, create=True), check_mode=True)
    assert r["changed"] is True and not os.path.exists(missing)
    r = run_module(rsyncd_share.main, args(env, share_path=missing, create=True, uid="65534", gid="65534"))
    assert os.path.isdir(missing)
    st = os.stat(missing)
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    r = run_module(rsyncd_share.main, args(env, share_path=missing, create=True, uid="65534", gid="65534"))
    assert r["changed"] is False


def test_share_path_required_for_new_module(env):
    a = args(env)
    del a["share_path"]
    r = fail_module(rsyncd_share.main, a)
    assert "share_path is required" in r["msg"]


def test_options_dict(env):
    a = args(env, options={"numeric ids": True, "transfer_logging": "yes", "max verbosity": 2,
                           "outgoing chmod": None})
    r = run_module(rsyncd_share.main, a)
    text = read(env["cfg"])
    assert "    numeric ids = yes\n    transfer logging = yes\n    max verbosity = 2\n" in text
    assert r["share"]["numeric_ids"] is True
    assert run_module(rsyncd_share.main, a)["changed"] is False
    r = run_module(rsyncd_share.main, args(env, options={"numeric_ids": None}))
    assert r["changed"] is True and "numeric ids" not in read(env["cfg"])


@pytest.mark.parametrize("options,word", [
    ({"no such param": 1}, "not a module parameter"),
    ({"pid file": "/tmp/x"}, "global"),
    ({"read only": False}, "read_only"),
    ({"numeric ids": "maybe"}, "boolean"),
    ({"max verbosity": "lots"}, "integer"),
    ({"log format": "%o\n%f"}, "newline"),
])
def test_bad_options_fail(env, options, word):
    r = fail_module(rsyncd_share.main, args(env, options=options))
    assert word in r["msg"], r["msg"]


def test_daemon_check_agrees_with_the_daemon(env):
    """``use pam`` is in rsync's newer parameter table; whether the installed daemon knows it
    decides whether the module must refuse it."""
    probe = env["tmp"] / "probe.conf"
    log = env["tmp"] / "probe.log"
    probe.write_text("[m]\npath = %s\nuse pam = yes\n" % env["share"])
    subprocess.run([RSYNC, "rsync://localhost/"], capture_output=True, check=False, timeout=60,
                   env=dict(os.environ, RSYNC_CONNECT_PROG="%s --daemon --config=%s --log-file=%s" % (RSYNC, probe, log)))
    daemon_knows = "use pam" not in log.read_text()
    a = args(env, options={"use pam": True})
    if daemon_knows:
        assert run_module(rsyncd_share.main, a)["changed"] is True
    else:
        r = fail_module(rsyncd_share.main, a)
        assert "use pam" in r["msg"] and "rsync daemon" in r["msg"]
        assert read(env["cfg"]) == EXISTING
        assert [n for n in os.listdir(str(env["tmp"])) if n.startswith(".rsyncd.conf.")] == []
        r = fail_module(rsyncd_share.main, a, check_mode=True)
        assert "use pam" in r["msg"]


def test_existing_complaints_do_not_block(env):
    """A complaint the live file already causes is not the module's doing."""
    text = "bogus global = 1\n" + EXISTING
    with open(env["cfg"], "w") as f:
        f.write(text)
    r = run_module(rsyncd_share.main, args(env))
    assert r["changed"] is True and read(env["cfg"]).startswith(text)


def test_secrets_file(env):
    with open(env["secrets"], "w") as f:
        f.write("# users\nother:untouched\nbob:old\n")
    os.chmod(env["secrets"], 0o644)
    a = args(env, auth_users=["bob", "carol"], secrets_file=env["secrets"],
             secrets={"bob": "S3cret-bob", "carol": "pa:ss word"})
    r = run_module(rsyncd_share.main, a, check_mode=True, diff=True)
    assert r["changed"] is True and read(env["secrets"]) == "# users\nother:untouched\nbob:old\n"
    r = run_module(rsyncd_share.main, a, diff=True)
    assert r["changed"] is True and r["secrets_changed_users"] == ["bob", "carol"]
    assert read(env["secrets"]) == "# users\nother:untouched\nbob:S3cret-bob\ncarol:pa:ss word\n"
    assert stat.S_IMODE(os.stat(env["secrets"]).st_mode) == 0o600
    dumped = json.dumps(r)
    for secret in ("S3cret-bob", "pa:ss word", "untouched", "old"):
        assert secret not in dumped
    assert "bob:<password changed>" in r["diff"][1]["after"]
    r = run_module(rsyncd_share.main, a)
    assert r["changed"] is False
    # Only the mode wrong: changed, content the same.
    os.chmod(env["secrets"], 0o640)
    assert run_module(rsyncd_share.main, a)["changed"] is True
    assert stat.S_IMODE(os.stat(env["secrets"]).st_mode) == 0o600


def test_secrets_need_a_file_and_clean_names(env):
    r = fail_module(rsyncd_share.main, args(env, auth_users=["bob"], secrets={"bob": "x"}))
    assert "secrets_file" in r["msg"]
    r = fail_module(rsyncd_share.main, args(env, auth_users=["bob"], secrets_file=env["secrets"],
                                            secrets={"bo:b": "x"}))
    assert "user name" in r["msg"]
    r = fail_module(rsyncd_share.main, args(env, auth_users=["bob"], secrets_file=env["secrets"],
                                            secrets={"bob": "two\nlines"}))
    assert "password of user 'bob'" in r["msg"] and "two" not in r["msg"]
    r = fail_module(rsyncd_share.main, args(env, auth_users=["bob"]))
    assert "secrets file" in r["msg"]


def _push(env, url, password=None):
    """Push a file through the daemon reading env['cfg'] (no port: RSYNC_CONNECT_PROG)."""
    src = env["tmp"] / "payload.txt"
    src.write_text("payload\n")
    e = dict(os.environ, RSYNC_CONNECT_PROG="%s --daemon --config=%s --log-file=%s" % (
        RSYNC, env["cfg"], env["tmp"] / "daemon.log"))
    e.pop("RSYNC_PASSWORD", None)
    if password is not None:
        e["RSYNC_PASSWORD"] = password
    return subprocess.run([RSYNC, str(src), url], env=e, capture_output=True, timeout=60, check=False)


def test_written_config_serves_with_auth(env):
    a = args(env, auth_users=["bob"], secrets_file=env["secrets"], secrets={"bob": "right"})
    run_module(rsyncd_share.main, a)
    assert _push(env, "rsync://bob@localhost/migration/", "wrong").returncode != 0
    assert not os.path.exists(os.path.join(env["share"], "payload.txt"))
    p = _push(env, "rsync://bob@localhost/migration/", "right")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(env["share"], "payload.txt")) == "payload\n"


def test_written_config_enforces_hosts_allow(env):
    run_module(rsyncd_share.main, args(env, hosts_allow=["10.213.7.11"]))
    p = _push(env, "rsync://localhost/migration/")
    assert p.returncode != 0 and b"access denied" in p.stderr.lower(), p.stderr
    run_module(rsyncd_share.main, args(env, hosts_allow=["127.0.0.1"]))
    assert _push(env, "rsync://localhost/migration/").returncode == 0


# -- one plan for check mode and the real run -----------------------------------------------

def _recording_plans(monkeypatch):
    """Record every plan the module computes and every action the executor really carries out."""
    plans, done = [], []
    real_plan, real_create = share.plan_share, share.create_share_path
    real_commit = share.StagedFile.commit

    def plan_share(module):
        plans.append(real_plan(module))
        return plans[-1]

    def create(module, path):
        done.append("create directory %s" % path)
        return real_create(module, path)

    def commit(self, *a, **kw):
        kind = "secrets file" if self.path.endswith(".secrets") else "configuration file"
        done.append("write %s %s" % (kind, self.path))
        return real_commit(self, *a, **kw)

    monkeypatch.setattr(share, "plan_share", plan_share)
    monkeypatch.setattr(share, "create_share_path", create)
    monkeypatch.setattr(share.StagedFile, "commit", commit)
    return plans, done


def test_check_mode_and_real_run_execute_the_same_plan(env, monkeypatch):
    plans, done = _recording_plans(monkeypatch)
    missing = os.path.join(str(env["tmp"]), "new", "share")
    a = args(env, share_path=missing, create=True, auth_users=["bob"], secrets_file=env["secrets"],
             secrets={"bob": "pw-one"})
    checked = run_module(rsyncd_share.main, a, check_mode=True)
    assert done == [] and read(env["cfg"]) == EXISTING and not os.path.exists(missing)
    real = run_module(rsyncd_share.main, a)
    check_plan, real_plan = plans
    assert check_plan.actions == real_plan.actions == done == [
        "create directory %s" % missing,
        "write secrets file %s" % env["secrets"],
        "write configuration file %s" % env["cfg"],
    ]
    assert check_plan.after == real_plan.after == read(env["cfg"])  # what check mode showed is what landed
    assert checked == real
    done[:] = []
    again = run_module(rsyncd_share.main, a, check_mode=True)
    assert plans[-1].actions == [] and done == [] and again["changed"] is False


def test_daemon_proves_the_candidate_in_both_modes(env, monkeypatch):
    calls = []

    def refuse(module, current, candidate, name, state, doc):
        with open(candidate) as f:
            calls.append(f.read())
        return "the rsync daemon complains about the new configuration: unknown parameter \"frob\""

    monkeypatch.setattr(share, "validate_candidate", refuse)
    missing = os.path.join(str(env["tmp"]), "new")
    a = args(env, share_path=missing, create=True, auth_users=["bob"], secrets_file=env["secrets"],
             secrets={"bob": "pw-one"})
    for check in (True, False):
        r = fail_module(rsyncd_share.main, a, check_mode=check)
        assert r["msg"].startswith("config_path=%s: refusing to replace it" % env["cfg"]) and "frob" in r["msg"]
        assert "pw-one" not in json.dumps(r)
    assert len(calls) == 2 and calls[0] == calls[1]
    # refused before anything happened: no directory, no secrets file, the old configuration
    assert read(env["cfg"]) == EXISTING
    assert not os.path.exists(missing) and not os.path.exists(env["secrets"])
    assert sorted(os.listdir(str(env["tmp"]))) == ["rsyncd.conf", "share"]


def test_diff_only_in_diff_mode(env):
    a = args(env, auth_users=["bob"], secrets_file=env["secrets"], secrets={"bob": "pw-one"})
    assert "diff" not in run_module(rsyncd_share.main, a, check_mode=True)
    r = run_module(rsyncd_share.main, a, check_mode=True, diff=True)
    assert [d["before_header"] for d in r["diff"]] == [env["cfg"], "%s (passwords hidden)" % env["secrets"]]
    assert "diff" not in run_module(rsyncd_share.main, a)
    assert "pw-one" not in json.dumps(run_module(rsyncd_share.main, dict(a, comment="x"), diff=True))


def test_config_mode_and_owner_are_kept(env):
    os.chmod(env["cfg"], 0o640)
    os.chown(env["cfg"], 65534, 65534)
    assert run_module(rsyncd_share.main, args(env))["changed"] is True
    st = os.stat(env["cfg"])
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (65534, 65534)
    assert read(env["cfg"]).startswith(EXISTING)


def test_new_config_file_gets_0644(env):
    os.unlink(env["cfg"])
    run_module(rsyncd_share.main, args(env))
    assert stat.S_IMODE(os.stat(env["cfg"]).st_mode) == 0o644


def test_secrets_file_is_0600_before_its_new_content_lands(env, monkeypatch):
    with open(env["secrets"], "w") as f:
        f.write("bob:old\n")
    os.chmod(env["secrets"], 0o644)
    seen = []
    real_move = rsyncd_share.AnsibleModule.atomic_move

    def move(self, src, dest, **kw):
        if dest == env["secrets"]:
            seen.append((stat.S_IMODE(os.stat(src).st_mode), stat.S_IMODE(os.stat(dest).st_mode)))
        return real_move(self, src, dest, **kw)

    monkeypatch.setattr(rsyncd_share.AnsibleModule, "atomic_move", move)
    run_module(rsyncd_share.main, args(env, auth_users=["bob"], secrets_file=env["secrets"], secrets={"bob": "new"}))
    assert seen == [(0o600, 0o600)]
    assert stat.S_IMODE(os.stat(env["secrets"]).st_mode) == 0o600 and read(env["secrets"]) == "bob:new\n"
