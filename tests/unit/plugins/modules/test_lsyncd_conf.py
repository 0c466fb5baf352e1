# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd_conf driven in-process against files in a temporary directory (real Lua parser)."""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd_conf
from ansible_collections.nodowntime.storage.plugins.modules import lsyncd_conf
from .utils import captured_warnings, fail_module, run_module

HAS_LUA = any(shutil.which(n) for n in _lsyncd_conf.LUAC + _lsyncd_conf.LUA)
needs_lua = pytest.mark.skipif(not HAS_LUA, reason="no Lua parser (apt install lua5.4)")
# The module proves every candidate with the real Lua parser (luac): functional tests.
pytestmark = pytest.mark.functional

HAND = "-- mine\nsync { default.rsync, source = '/srv/keep', target = 'backup::keep' }\n"


def args(tmp_path, **kw):
    base = dict(path=str(tmp_path / "lsyncd.conf.lua"), name="media", source="/srv/media",
                target="new::media", delete=True, exclude=["*.tmp", 'we"ird ]] \\ name'], delay=1,
                rsync=dict(archive=True, compress=False, extra=["--sockopts=TCP_NODELAY"]),
                settings=dict(status_file="/var/log/lsyncd/lsyncd.status", status_interval=1, nodaemon=True))
    base.update(kw)
    return base


@needs_lua
def test_check_real_again_check(tmp_path):
    a = args(tmp_path)
    path = a["path"]
    r = run_module(lsyncd_conf.main, a, check_mode=True, diff=True)
    assert r["changed"] and not os.path.exists(path)
    assert r["diff"]["before"] == "" and "sync {" in r["diff"]["after"]
    r = run_module(lsyncd_conf.main, a, diff=True)
    assert r["changed"] and r["syncs"] == ["media"] and r["path"] == path
    with open(path) as f:
        content = f.read()
    assert content == r["diff"]["after"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    r = run_module(lsyncd_conf.main, a)
    assert not r["changed"]
    r = run_module(lsyncd_conf.main, a, check_mode=True, diff=True)
    assert not r["changed"] and r["diff"]["before"] == r["diff"]["after"]


@needs_lua
def test_other_blocks_are_left_byte_for_byte(tmp_path):
    path = tmp_path / "lsyncd.conf.lua"
    path.write_bytes(HAND.encode())
    r = run_module(lsyncd_conf.main, args(tmp_path, settings=None))
    assert r["changed"]
    assert path.read_bytes().startswith(HAND.encode() + b"\n-- BEGIN nodowntime.storage sync \"media\"\n")
    r = run_module(lsyncd_conf.main, dict(path=str(path), name="media", state="absent"), diff=True)
    assert r["changed"] and r["syncs"] == []
    assert path.read_bytes() == HAND.encode()
    r = run_module(lsyncd_conf.main, dict(path=str(path), name="media", state="absent"))
    assert not r["changed"]


def test_absent_on_missing_file_creates_nothing(tmp_path):
    r = run_module(lsyncd_conf.main, dict(path=str(tmp_path / "none.lua"), name="x", state="absent"))
    assert not r["changed"] and not (tmp_path / "none.lua").exists()


@needs_lua
def test_change_is_detected_and_backup_mode_owner(tmp_path):
    a = args(tmp_path, mode="0640")
    run_module(lsyncd_conf.main, a)
    assert stat.S_IMODE(os.stat(a["path"]).st_mode) == 0o640
    r = run_module(lsyncd_conf.main, dict(a, delay=2, backup=True), diff=True)
    assert r["changed"] and os.path.exists(r["backup_file"])
    assert "delay = 1," in r["diff"]["before"] and "delay = 2," in r["diff"]["after"]
    assert stat.S_IMODE(os.stat(a["path"]).st_mode) == 0o640
    r = run_module(lsyncd_conf.main, dict(a, delay=2, mode="0600"))
    assert r["changed"] and stat.S_IMODE(os.stat(a["path"]).st_mode) == 0o600


@needs_lua
def test_creates_parent_directory(tmp_path):
    a = args(tmp_path, path=str(tmp_path / "etc" / "lsyncd" / "lsyncd.conf.lua"))
    assert run_module(lsyncd_conf.main, a)["changed"]
    assert os.path.isfile(a["path"])


@needs_lua
def test_hand_written_syntax_error_is_caught_before_replacing(tmp_path):
    path = tmp_path / "lsyncd.conf.lua"
    broken = "sync { default.rsync, source = '/a' target = 'b' }\n"
    path.write_text(broken)
    r = fail_module(lsyncd_conf.main, args(tmp_path))
    assert r["msg"].startswith("path=%s: refusing to replace it" % path) and "syntax error" in r["msg"]
    assert r["option"] == "path"
    assert path.read_text() == broken
    assert [p for p in os.listdir(tmp_path) if p != "lsyncd.conf.lua"] == []  # no temp file left
    r = fail_module(lsyncd_conf.main, args(tmp_path), check_mode=True)
    assert "refusing to replace" in r["msg"]


def test_validate_lua_without_lua_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(lsyncd_conf.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    r = fail_module(lsyncd_conf.main, args(tmp_path))
    assert r["msg"].startswith("validate_lua: no Lua parser")
    r = run_module(lsyncd_conf.main, args(tmp_path, validate_lua=False))
    assert r["changed"]


@pytest.mark.parametrize("overrides, option", [
    (dict(source="srv/media"), "source"),
    (dict(target="new:"), "target"),
    (dict(delay=-1), "delay"),
    (dict(delete="maybe"), "delete"),
    (dict(exclude=["a\nb"]), "exclude"),
    (dict(settings=dict(status_interval=-2)), "settings.status_interval"),
    (dict(sync_mode="rsyncssh", target=None, host="new", targetdir="/x", settings=dict(max_processes=4)),
     "settings.max_processes"),
])
def test_bad_values_name_the_option(tmp_path, overrides, option):
    r = fail_module(lsyncd_conf.main, args(tmp_path, **overrides))
    assert r["option"] == option and r["msg"].startswith(option)
    assert not os.path.exists(args(tmp_path)["path"])


@pytest.mark.parametrize("overrides, word", [
    (dict(dealy=1), "dealy"),
    (dict(rsync=dict(archve=True)), "archve"),
    (dict(settings=dict(statusFile="/x")), "statusFile"),
    (dict(sync_mode="ftp"), "sync_mode"),
])
def test_unknown_options_are_refused(tmp_path, overrides, word):
    r = fail_module(lsyncd_conf.main, args(tmp_path, **overrides))
    assert word in r["msg"]


@needs_lua
def test_broken_markers_fail_without_touching_the_file(tmp_path):
    path = tmp_path / "lsyncd.conf.lua"
    text = '-- BEGIN nodowntime.storage sync "media"\nsync{}\n'
    path.write_text(text)
    r = fail_module(lsyncd_conf.main, args(tmp_path))
    assert "no END marker" in r["msg"]
    assert path.read_text() == text


@needs_lua
def test_unmanaged_settings_warns(tmp_path):
    path = tmp_path / "lsyncd.conf.lua"
    path.write_text("settings {\n  logfile = '/x',\n}\n")
    with captured_warnings() as warnings:
        r = run_module(lsyncd_conf.main, args(tmp_path))
    assert r["changed"]
    assert len(warnings) == 1 and "a settings call outside the managed block" in warnings[0], warnings


@needs_lua
def test_two_blocks_and_rsyncssh(tmp_path):
    run_module(lsyncd_conf.main, args(tmp_path))
    ssh_table = dict(port=2222, identity_file="/root/.ssh/k", options=dict(StrictHostKeyChecking="yes"))
    ssh = dict(path=args(tmp_path)["path"], name="uploads", sync_mode="rsyncssh", source="/srv/up",
               host="sync@new", targetdir="/srv/up", ssh=ssh_table)
    r = run_module(lsyncd_conf.main, ssh)
    assert r["changed"] and r["syncs"] == ["media", "uploads"]
    with open(ssh["path"]) as f:
        text = f.read()
    assert "    default.rsyncssh,\n" in text and "identityFile = \"/root/.ssh/k\"," in text
    assert not run_module(lsyncd_conf.main, ssh)["changed"]


@needs_lua
def test_settings_only_and_name_or_settings_required(tmp_path):
    path = str(tmp_path / "lsyncd.conf.lua")
    r = run_module(lsyncd_conf.main, dict(path=path, settings=dict(status_interval=5)))
    assert r["changed"] and r["syncs"] == []
    with open(path) as f:
        assert "statusInterval = 5," in f.read()
    assert not run_module(lsyncd_conf.main, dict(path=path, settings=dict(status_interval=5)))["changed"]
    r = fail_module(lsyncd_conf.main, dict(path=path))
    assert "name" in r["msg"] and "settings" in r["msg"]


# -- one plan for check mode and the real run -----------------------------------------------

@needs_lua
def test_check_mode_and_real_run_execute_the_same_plan(tmp_path, monkeypatch):
    plans, checked = [], []
    real_plan = _lsyncd_conf.plan_config

    def plan_config(module):
        plans.append(real_plan(module))
        real_validate = plans[-1].validate

        def validate(candidate):
            with open(candidate) as f:
                checked.append(f.read())
            return real_validate(candidate)

        plans[-1].validate = validate
        return plans[-1]

    monkeypatch.setattr(_lsyncd_conf, "plan_config", plan_config)
    a = args(tmp_path, path=str(tmp_path / "etc" / "lsyncd.conf.lua"))
    r_check = run_module(lsyncd_conf.main, a, check_mode=True)
    assert not os.path.exists(str(tmp_path / "etc"))
    r_real = run_module(lsyncd_conf.main, a)
    check_plan, real_plan_ = plans
    assert check_plan.actions == real_plan_.actions == [
        "create directory %s" % (tmp_path / "etc"), "write configuration file %s" % a["path"]]
    with open(a["path"]) as f:
        written = f.read()
    assert checked == [written, written]  # the Lua parser saw the same candidate both times
    assert check_plan.after == written and r_check == r_real
    assert run_module(lsyncd_conf.main, a, check_mode=True)["changed"] is False and plans[-1].actions == []


def test_diff_only_in_diff_mode(tmp_path):
    a = args(tmp_path, validate_lua=False)
    assert "diff" not in run_module(lsyncd_conf.main, a, check_mode=True)
    assert "diff" in run_module(lsyncd_conf.main, a, check_mode=True, diff=True)
    assert "diff" not in run_module(lsyncd_conf.main, a)
    assert "diff" not in run_module(lsyncd_conf.main, dict(a, delay=3))


def test_mode_and_owner_of_the_existing_file_are_kept(tmp_path):
    a = args(tmp_path, validate_lua=False)
    run_module(lsyncd_conf.main, a)
    os.chmod(a["path"], 0o640)
    os.chown(a["path"], 65534, 65534)
    assert run_module(lsyncd_conf.main, dict(a, delay=3))["changed"]
    st = os.stat(a["path"])
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (65534, 65534)
