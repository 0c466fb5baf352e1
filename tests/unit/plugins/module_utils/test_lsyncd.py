# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd rendering, managed-block editing and status/log parsing.

Rendered configs are read back by a real Lua interpreter (structure and bytes) and, where
lsyncd is installed, loaded by lsyncd 2.2.3 itself, which refuses keys it does not know.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd as L

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
LUA = shutil.which("lua5.4") or shutil.which("lua5.3") or shutil.which("lua")
LSYNCD = shutil.which("lsyncd")
needs_lua = pytest.mark.skipif(LUA is None, reason="no Lua interpreter (apt install lua5.4)")
needs_lsyncd = pytest.mark.skipif(LSYNCD is None, reason="lsyncd not installed")

HOSTILE = 'q"uote \\back ]] [[ \n newline\r\t 이미지 \u202e --[['

# Loads a config with settings()/sync() replaced by recorders and prints every call as JSON,
# strings hex-encoded so no byte is lost or reinterpreted on the way back.
DUMPER = r"""
local calls = {}
default = { rsync = "default.rsync", rsyncssh = "default.rsyncssh", direct = "default.direct" }
function settings(t) calls[#calls + 1] = { "settings", t } end
function sync(t) calls[#calls + 1] = { "sync", t } end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local ser
function ser(v)
  local t = type(v)
  if t == "string" then return '{"s":"' .. hex(v) .. '"}' end
  if t == "number" then
    if math.type and math.type(v) == "integer" then return '{"i":' .. string.format("%d", v) .. '}' end
    return '{"f":' .. string.format("%.17g", v) .. '}'
  end
  if t == "boolean" then return '{"b":' .. tostring(v) .. '}' end
  if t == "table" then
    local items = {}
    for k, x in pairs(v) do items[#items + 1] = '[' .. ser(k) .. ',' .. ser(x) .. ']' end
    return '{"t":[' .. table.concat(items, ",") .. ']}'
  end
  error("unexpected " .. t)
end
dofile(arg[1])
local out = {}
for i, c in ipairs(calls) do out[i] = '["' .. c[1] .. '",' .. ser(c[2]) .. ']' end
io.write("[" .. table.concat(out, ",") .. "]")
"""


def _from_dump(node):
    kind, value = next(iter(node.items()))
    if kind == "s":
        return bytes.fromhex(value).decode("utf-8", "surrogateescape")
    if kind in ("i", "f", "b"):
        return value
    return dict((_from_dump(k), _from_dump(v)) for k, v in value)


def lua_load(tmp_path, text):
    conf = tmp_path / "dump.lua"
    conf.write_bytes(text.encode("utf-8", "surrogateescape"))
    proc = subprocess.run([LUA, "-", str(conf)], input=DUMPER.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return [(name, _from_dump(table)) for name, table in json.loads(proc.stdout)]


def sync_params(**overrides):
    params = dict(mode="rsync", source="/srv/data", target="new::data", host=None, targetdir=None,
                  delete=None, exclude=None, exclude_from=None, delay=None, max_delays=None,
                  max_processes=None, init=True, rsync=None, ssh=None)
    params.update(overrides)
    return L.check_sync(params)


def full_rsync():
    return dict(binary="/usr/bin/rsync", archive=True, compress=False, whole_file=False, hard_links=True,
                acls=True, xattrs=True, sparse=True, checksum=False, bwlimit=4096, timeout=30,
                password_file="/etc/lsyncd/secret", chown="www:www", chmod="D2775,F664",
                temp_dir="/srv/tmp", rsync_path="/usr/bin/rsync", verbose=False, protect_args=True,
                links=True, copy_links=False, perms=True, owner=True, group=True, times=True,
                inplace=False, one_file_system=True, rsh=None, extra=["--sockopts=TCP_NODELAY", HOSTILE])


# ---------------------------------------------------------------- checking


@pytest.mark.parametrize("overrides, option", [
    (dict(source="relative/dir"), "source"),
    (dict(source=""), "source"),
    (dict(source="/a\x00b"), "source"),
    (dict(target="justaword"), "target"),
    (dict(target="host:"), "target"),
    (dict(target="::module"), "target"),
    (dict(target="host:::x"), "target"),
    (dict(target="bad host::mod"), "target"),
    (dict(target=None), "target"),
    (dict(mode="direct", target="new::data"), "target"),
    (dict(delay=-1), "delay"),
    (dict(delay=float("nan")), "delay"),
    (dict(max_delays=0), "max_delays"),
    (dict(max_processes=0), "max_processes"),
    (dict(delete="sometimes"), "delete"),
    (dict(exclude=["ok", ""]), "exclude"),
    (dict(exclude=["two\nlines"]), "exclude"),
    (dict(exclude_from="excludes.txt"), "exclude_from"),
    (dict(host="new"), "host"),
    (dict(ssh=dict(port=22)), "ssh"),
    (dict(mode="rsyncssh", target=None, host="new"), "targetdir"),
    (dict(mode="rsyncssh", target=None, host="a b", targetdir="/x"), "host"),
    (dict(mode="rsyncssh", host="new", targetdir="/x"), "target"),
    (dict(mode="rsyncssh", target=None, host="new", targetdir="/x", ssh=dict(port=0)), "ssh.port"),
    (dict(mode="rsyncssh", target=None, host="new", targetdir="/x", ssh=dict(options={"a b": "x"})), "ssh.options"),
    (dict(rsync=dict(bwlimit=-5)), "rsync.bwlimit"),
    (dict(rsync=dict(extra=[""])), "rsync.extra"),
    (dict(mode="bogus"), "sync_mode"),
    (dict(mode="rsyncssh", target=None, host="new", targetdir="/x", max_processes=2), "max_processes"),
])
def test_check_sync_names_the_bad_option(overrides, option):
    with pytest.raises(L.LsyncdConfigError) as e:
        sync_params(**overrides)
    assert e.value.option == option
    assert option in str(e.value)


@pytest.mark.parametrize("target", [
    "/srv/backup", "new::data", "new::data/sub dir", "user@new::data", "10.213.7.12::data",
    "[fe80::1]::data", "new:/srv/data", "user@new:/srv/data", "new:relative", "rsync://new/data",
    "rsync://user@new:8873/data/sub", 'new::mod/with "quote" and \\ and \n',
])
def test_valid_targets(target):
    assert sync_params(target=target)["target"] == target


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("startup", "startup"), ("Running", "running"),
    ("yes", True), ("false", False), (None, None),
])
def test_delete_values(value, expected):
    assert sync_params(delete=value)["delete"] is expected or sync_params(delete=value)["delete"] == expected


def test_rsyncssh_needs_global_max_processes_1():
    params = sync_params(mode="rsyncssh", target=None, host="new", targetdir="/x")
    L.check_combination(dict(max_processes=1), params)
    L.check_combination(None, params)
    with pytest.raises(L.LsyncdConfigError) as e:
        L.check_combination(dict(max_processes=2), params)
    assert e.value.option == "settings.max_processes"


def test_settings_checks():
    L.check_settings(None)
    L.check_settings(dict(status_interval=0, max_delays=1, inotify_mode="Modify"))
    with pytest.raises(L.LsyncdConfigError) as e:
        L.check_settings(dict(status_interval=-1))
    assert e.value.option == "settings.status_interval"
    with pytest.raises(L.LsyncdConfigError) as e:
        L.check_settings(dict(max_processes=0))
    assert e.value.option == "settings.max_processes"


# ---------------------------------------------------------------- rendering, read back by Lua


@pytest.mark.functional
@needs_lua
def test_sync_block_reads_back_exactly_in_lua(tmp_path):
    params = sync_params(source="/srv/" + HOSTILE, target="new::data/" + HOSTILE, delete="running",
                         exclude=["*.tmp", 'a"b]]\\c', "이미지/"], exclude_from="/etc/lsyncd/" + HOSTILE,
                         delay=0.5, max_delays=1000, max_processes=4, init=False, rsync=full_rsync())
    text = L.render_sync_block(HOSTILE, params)
    calls = lua_load(tmp_path, text)
    rsync = full_rsync()
    expected_rsync = dict((k, v) for k, v in rsync.items() if v is not None and k != "extra")
    expected_rsync["_extra"] = {1: "--sockopts=TCP_NODELAY", 2: HOSTILE}
    assert calls == [("sync", {
        1: "default.rsync",
        "source": "/srv/" + HOSTILE,
        "target": "new::data/" + HOSTILE,
        "delete": "running",
        "exclude": {1: "*.tmp", 2: 'a"b]]\\c', 3: "이미지/"},
        "excludeFrom": "/etc/lsyncd/" + HOSTILE,
        "delay": 0.5,
        "maxDelays": 1000,
        "maxProcesses": 4,
        "init": False,
        "rsync": expected_rsync,
    })]


@pytest.mark.functional
@needs_lua
def test_rsyncssh_and_settings_read_back_in_lua(tmp_path):
    params = sync_params(mode="rsyncssh", target=None, host="sync@new", targetdir="/srv/" + HOSTILE, delete=False,
                         ssh=dict(port=2222, identity_file="/root/.ssh/id", binary="/usr/bin/ssh",
                                  options={"StrictHostKeyChecking": "no", "ConnectTimeout": 5}, extra=["-4"]))
    settings = dict(logfile="/var/log/" + HOSTILE, status_file="/run/s", status_interval=1, nodaemon=True,
                    insist=False, max_processes=2, max_delays=100, inotify_mode="CloseWrite or Modify",
                    pidfile="/run/lsyncd.pid", log_facility="daemon", log_ident="lsyncd")
    text = L.apply_changes("", "ssh", "present", L.render_sync_block("ssh", params), L.render_settings_block(settings))
    calls = lua_load(tmp_path, text)
    assert calls[0] == ("settings", {
        "logfile": "/var/log/" + HOSTILE, "statusFile": "/run/s", "statusInterval": 1, "nodaemon": True,
        "insist": False, "maxProcesses": 2, "maxDelays": 100, "inotifyMode": "CloseWrite or Modify",
        "pidfile": "/run/lsyncd.pid", "logfacility": "daemon", "logident": "lsyncd"})
    assert calls[1] == ("sync", {
        1: "default.rsyncssh", "source": "/srv/data", "host": "sync@new", "targetdir": "/srv/" + HOSTILE,
        "delete": False,
        "ssh": {"port": 2222, "identityFile": "/root/.ssh/id", "binary": "/usr/bin/ssh",
                "options": {"StrictHostKeyChecking": "no", "ConnectTimeout": "5"}, "_extra": {1: "-4"}}})


def test_injection_attempts_stay_inside_strings():
    evil = '"}\nos.execute("touch /tmp/pwned")\nsync{"'
    text = L.render_sync_block(evil, sync_params(source="/" + evil, exclude=[evil.replace("\n", " ")]))
    # one line per field: the value never starts a new Lua line
    assert "os.execute" not in "".join(line for line in text.split("\n") if not ('"' in line))
    for line in text.split("\n"):
        if "os.execute" in line:
            assert line.lstrip().startswith(("source =", '"', "-- BEGIN", "-- END"))


def test_init_true_and_unset_options_are_not_written():
    text = L.render_sync_block("x", sync_params())
    assert "init" not in text and "delete" not in text and "rsync =" not in text
    assert text.splitlines()[2:] == ["sync {", "    default.rsync,", '    source = "/srv/data",',
                                     '    target = "new::data",', "}", '-- END nodowntime.storage sync "x"']


# ---------------------------------------------------------------- editing the file

HAND_WRITTEN = """-- hand-written config
settings {
   logfile = "/var/log/lsyncd.log",
}

sync {
   default.rsync,
   delete=true,
   source="/srv/old",
   target="backup::old",
   exclude={"skip"},
   delay=0
}
"""


def test_add_update_remove_leave_other_bytes_alone():
    block1 = L.render_sync_block("media", sync_params(source="/srv/media"))
    added = L.apply_changes(HAND_WRITTEN, "media", "present", block1)
    assert added.startswith(HAND_WRITTEN)
    assert L.managed_syncs(added) == ["media"]
    assert L.apply_changes(added, "media", "present", block1) == added  # idempotent
    block2 = L.render_sync_block("media", sync_params(source="/srv/media", delay=1))
    updated = L.apply_changes(added, "media", "present", block2)
    assert updated.startswith(HAND_WRITTEN) and "delay = 1," in updated
    other = L.apply_changes(updated, "other", "present", L.render_sync_block("other", sync_params(source="/srv/o")))
    assert L.managed_syncs(other) == ["media", "other"]
    assert L.apply_changes(L.apply_changes(other, "other", "absent"), "media", "absent") == HAND_WRITTEN
    assert L.apply_changes(HAND_WRITTEN, "missing", "absent") == HAND_WRITTEN


def test_settings_block_goes_first_and_is_replaced_in_place():
    block = L.render_settings_block(dict(status_file="/run/a"))
    first = L.apply_changes(HAND_WRITTEN, "x", "absent", settings_block=block)
    assert first == block + "\n" + HAND_WRITTEN
    second = L.apply_changes(first, "x", "absent", settings_block=L.render_settings_block(dict(status_file="/run/b")))
    assert second.endswith("\n" + HAND_WRITTEN) and '"/run/b"' in second and '"/run/a"' not in second
    assert L.unmanaged_settings_lines(second) == [second.split("\n").index("settings {", 5) + 1]
    assert L.read_setting(second, "statusFile") == "/run/b"


def test_file_without_final_newline_and_odd_bytes_elsewhere():
    text = "sync{default.rsync, source='/a', target='/b'} -- \x0c form feed \u2028 kept\r"
    out = L.apply_changes(text, "n", "present", L.render_sync_block("n", sync_params()))
    assert out.startswith(text + "\n\n-- BEGIN")
    assert L.managed_syncs(out) == ["n"]


@pytest.mark.parametrize("text, message", [
    ('-- BEGIN nodowntime.storage sync "a"\n', "no END"),
    ('-- END nodowntime.storage sync "a"\n', "does not close"),
    ('-- BEGIN nodowntime.storage sync "a"\n-- BEGIN nodowntime.storage sync "b"\n', "starts inside"),
    ('-- BEGIN nodowntime.storage sync "a"\n-- END nodowntime.storage sync "b"\n', "does not close"),
    ('-- BEGIN nodowntime.storage sync "a"\n-- END nodowntime.storage sync "a"\n' * 2, "second managed block"),
    ("-- BEGIN nodowntime.storage something\n", "unrecognised"),
])
def test_broken_markers_are_refused(text, message):
    with pytest.raises(L.ConfigFileError) as e:
        L.apply_changes(text, "a", "present", L.render_sync_block("a", sync_params()))
    assert message in str(e.value)


def test_names_with_newlines_and_quotes_are_found_again():
    name = 'we"ird\nname -- END nodowntime.storage sync "x"'
    text = L.apply_changes("", name, "present", L.render_sync_block(name, sync_params()))
    assert L.managed_syncs(text) == [name]
    assert L.managed_sources(text) == [(name, "/srv/data")]
    assert L.apply_changes(text, name, "absent") == ""


# ---------------------------------------------------------------- real lsyncd accepts the keys


def _lsyncd_accepts(tmp_path, text):
    conf = tmp_path / "lsyncd.conf.lua"
    conf.write_bytes(text.encode("utf-8", "surrogateescape"))
    proc = subprocess.Popen([LSYNCD, "-nodaemon", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out = proc.communicate(timeout=1.5)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=10)[0]
    return out.decode("utf-8", "replace")


@pytest.mark.functional
@needs_lsyncd
@pytest.mark.parametrize("mode", ["rsync", "direct", "rsyncssh"])
def test_lsyncd_2_2_3_accepts_every_rendered_key(tmp_path, mode):
    src = tmp_path / ("src " + HOSTILE.replace("\n", "").replace("\r", "").replace("\t", ""))
    src.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    exclude_file = tmp_path / "excludes"
    exclude_file.write_text("*.bak\n")
    rsync = full_rsync()
    rsync["password_file"] = None  # rsync itself refuses it without a daemon target
    common = dict(source=str(src), delete="startup", exclude=["*.tmp"], exclude_from=str(exclude_file),
                  delay=1, max_delays=100, max_processes=1, init=True, rsync=rsync)
    if mode == "rsyncssh":
        # port 1 on loopback: refused at once, after lsyncd has accepted the configuration
        params = sync_params(mode=mode, target=None, host="127.0.0.1", targetdir="/x",
                             ssh=dict(port=1, identity_file="/nonexistent", options={"BatchMode": "yes"},
                                      extra=["-4"]), **common)
    else:
        params = sync_params(mode=mode, target=str(dst), **common)
    settings = dict(logfile=str(tmp_path / "log"), status_file=str(tmp_path / "status"), status_interval=1,
                    nodaemon=True, insist=False, max_processes=1 if mode == "rsyncssh" else 2, max_delays=100,
                    inotify_mode="CloseWrite", pidfile=str(tmp_path / "pid"), log_facility="daemon",
                    log_ident="lsyncd-test")
    text = L.apply_changes("", "t", "present", L.render_sync_block("t", params), L.render_settings_block(settings))
    out = _lsyncd_accepts(tmp_path, text)
    # lsyncd checks every key while preparing the config; the startup rsync it then spawns may
    # refuse run-time values (no user www, no /srv/tmp), which is beside the point here.
    assert "unknown" not in out and "error preparing" not in out.lower(), out
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    assert "--- Startup ---" in log, out + log


@pytest.mark.functional
@needs_lsyncd
def test_lsyncd_refuses_an_unknown_key_so_the_check_above_means_something(tmp_path):
    text = 'sync { default.rsync, source = "%s", target = "%s", dealy = 1 }\n' % (tmp_path, tmp_path / "d")
    out = _lsyncd_accepts(tmp_path, text)
    assert 'Parameter "dealy" unknown' in out


# ---------------------------------------------------------------- status file and log


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def test_parse_status_startup_running():
    report = L.parse_status(fixture("lsyncd-2.2.3-status-init.txt"))
    assert report["report_time"] == "Sat Nov 21 19:51:37 2026"
    assert report["watches"] == 2
    s1, s2 = report["syncs"]
    assert (s1["name"], s1["source"], s1["delays"], s1["active"], s1["startup_done"], s1["idle"]) == \
        ("Sync1", "/tmp/lsy/src/", 1, 1, False, False)
    assert (s2["name"], s2["source"], s2["delays"], s2["startup_done"], s2["idle"]) == \
        ("Sync2", "/tmp/lsy/src/a/", 0, True, True)


def test_parse_status_busy_and_idle():
    busy = L.parse_status(fixture("lsyncd-2.2.3-status-busy.txt"))["syncs"]
    assert [(s["delays"], s["active"], s["waiting"], s["blocked"], s["idle"]) for s in busy] == \
        [(10, 10, 0, 0, False), (2, 0, 2, 0, False)]
    idle = L.parse_status(fixture("lsyncd-2.2.3-status-idle.txt"))["syncs"]
    assert [(s["delays"], s["idle"], s["startup_done"]) for s in idle] == [(0, True, True), (0, True, True)]


def test_parse_status_garbage():
    report = L.parse_status("not a status file\n")
    assert report == dict(report_time=None, syncs=[], watches=None)


def test_parse_log():
    log = L.parse_log(fixture("lsyncd-2.2.3.log"))
    assert log["startups"] == 1
    assert log["started_sources"] == ["/tmp/lsy/src/a/", "/tmp/lsy/src/"]
    assert log["overflows"] == 0 and log["errors"] == []
    text = fixture("lsyncd-2.2.3.log") + (
        "Sat Nov 21 20:00:00 2026 Error: Temporary or permanent failure on startup of \"/x/\". Terminating since \"insist\" is not set.\n"
        "Sat Nov 21 20:01:00 2026 Normal: --- OVERFLOW in event queue ---\n"
        "Sat Nov 21 20:01:00 2026 Normal: --- Startup ---\n"
        "Sat Nov 21 20:01:00 2026 Normal: recursive startup rsync: /srv/ -> new::data/\n")
    log = L.parse_log(text)
    assert log["startups"] == 2 and log["overflows"] == 1 and log["overflows_since_start"] == 0
    assert log["started_sources"] == [] and log["errors"] == []


def test_report_time_is_lsyncd_os_date_in_c_locale():
    assert time.strptime(L.parse_status(fixture("lsyncd-2.2.3-status-idle.txt"))["report_time"],
                         "%a %b %d %H:%M:%S %Y")


def test_lsyncd_files_come_from_the_options_then_the_managed_settings_block(tmp_path):
    config = tmp_path / "lsyncd.conf.lua"
    with pytest.raises(L.LsyncdFilesError, match="^status_file: not given and no statusFile"):
        L.lsyncd_files(str(config))
    assert L.lsyncd_files(str(config), "/s", None) == ("/s", None, None)
    text = L.apply_changes("", "x", "absent", settings_block=L.render_settings_block(
        dict(status_file="/var/st", logfile="/var/lg")))
    config.write_text(text)
    assert L.lsyncd_files(str(config)) == ("/var/st", "/var/lg", text)
    assert L.lsyncd_files(str(config), "/given", None)[:2] == ("/given", "/var/lg")
    config.write_text("\n".join(text.splitlines()[:-1]) + "\n")  # its end marker lost
    with pytest.raises(L.LsyncdFilesError, match="^config: cannot read "):
        L.lsyncd_files(str(config))
