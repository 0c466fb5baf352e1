# SPDX-License-Identifier: GPL-3.0-or-later
"""The rsyncd.conf parser/writer keeps unrelated text exactly and agrees with the real daemon."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsyncd_conf as conf

RSYNC = shutil.which("rsync")
needs_rsync = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")

SAMPLE = (
    "# /etc/rsyncd.conf: written by hand\n"
    "uid = nobody\n"
    "gid = nogroup\n"
    "   use chroot = yes  \n"
    "log file = /var/log/rsyncd.log\n"
    "&merge /etc/rsyncd.d\n"
    "\n"
    "; the old backup share\n"
    "[backup]\n"
    "\tpath = /srv/backup\n"
    "\tcomment = nightly \\\n"
    "\t  backups\n"
    "\tRead Only = FALSE\n"
    "\thosts allow = 10.0.0.0/8, 192.168.1.1\n"
    "\n"
    "# migration target follows\n"
    "[Mig]\n"
    "  path=/srv/mig\n"
    "  readonly = no\n"
    "[global]\n"
    "  timeout = 600\n"
    "[tail]\n"
    "path = /srv/tail"  # no final newline
)


def daemon_list(tmp_path, text):
    """(rc, {name: comment}, complaints) from the real daemon reading ``text``."""
    cfg = tmp_path / "candidate.conf"
    cfg.write_bytes(text.encode("utf-8", "surrogateescape"))
    log = tmp_path / "daemon.log"
    if log.exists():
        log.unlink()
    env = dict(os.environ, RSYNC_CONNECT_PROG="%s --daemon --config=%s --log-file=%s" % (RSYNC, cfg, log))
    proc = subprocess.run([RSYNC, "--contimeout=20", "--timeout=20", "rsync://localhost/"],
                          env=env, capture_output=True, timeout=60, check=False)
    listing = {}
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        if "\t" in line:
            name, comment = line.split("\t", 1)
            listing[name.rstrip()] = comment
    complaints = conf.daemon_complaints(log.read_text(errors="replace")) if log.exists() else []
    return proc.returncode, listing, complaints


@pytest.mark.parametrize("text", [
    SAMPLE,
    "",
    "\n",
    "no final newline",
    "a = b\r\n[m]\r\npath = /x\r\n",
    "[m]\npath = /x \\\n",  # continuation at end of file
    "[broken\npath = /x\n",
    "junk line without equals\n",
    "[m]\n  comment = caf\u00e9 \u2603\n",
    "\x0b\x0c weird blanks\n[m]\npath=/x\x1c\n",
])
def test_parse_render_is_identity(text):
    assert conf.parse(text).render() == text


def test_parse_understands_rsync_rules():
    doc = conf.parse(SAMPLE)
    assert doc.module_names() == ["backup", "Mig", "tail"]
    backup = doc.module_params("backup")
    assert backup["comment"] == "nightly \t  backups"
    assert backup["readonly"] == "FALSE"
    assert doc.module_params("mig") == {"path": "/srv/mig", "readonly": "no"}
    glob = doc.global_params()
    assert glob["usechroot"] == "yes"
    assert glob["timeout"] == "600"  # from the later [global] section
    assert doc.effective("tail", "time out") == "600"
    assert doc.effective("tail", "uid") == "nobody"
    kinds = [line.kind for line in doc.lines]
    assert kinds.count("directive") == 1 and kinds.count("comment") == 3


def test_set_param_keeps_equivalent_values_verbatim():
    doc = conf.parse(SAMPLE)
    assert not doc.set_param("backup", "read only", "bool", False)
    assert not doc.set_param("backup", "hosts allow", "list", ["10.0.0.0/8", "192.168.1.1"])
    assert not doc.set_param("MIG", "read only", "bool", False)  # [Mig] and readonly spelling
    assert not doc.set_param("backup", "comment", "str", "nightly \t  backups")
    assert doc.render() == SAMPLE


def test_set_param_rewrites_only_the_changed_line():
    doc = conf.parse(SAMPLE)
    assert doc.set_param("backup", "read only", "bool", True)
    assert doc.set_param("backup", "comment", "str", "one line")
    expected = SAMPLE.replace("\tRead Only = FALSE\n", "\tRead Only = yes\n").replace(
        "\tcomment = nightly \\\n\t  backups\n", "\tcomment = one line\n")
    assert doc.render() == expected


def test_new_param_goes_after_the_last_parameter_of_the_module():
    doc = conf.parse(SAMPLE)
    assert doc.set_param("backup", "max connections", "int", 4)
    out = doc.render()
    assert out == SAMPLE.replace("192.168.1.1\n", "192.168.1.1\n\tmax connections = 4\n")
    # Before the blank line and the comment that introduces the next section.
    assert "max connections = 4\n\n# migration target follows\n" in out


def test_new_param_in_last_section_without_final_newline():
    doc = conf.parse(SAMPLE)
    assert doc.set_param("tail", "list", "bool", False)
    assert doc.render() == SAMPLE + "\nlist = no\n"


def test_add_and_remove_module_round_trip():
    doc = conf.parse(SAMPLE)
    doc.add_module("new one")
    doc.set_param("new one", "path", "str", "/srv/new")
    out = doc.render()
    assert out.startswith(SAMPLE + "\n\n[new one]\n    path = /srv/new\n")
    doc = conf.parse(out)
    assert doc.remove_module("new one")
    assert doc.render() == SAMPLE + "\n"  # the final newline the addition supplied stays


def test_remove_module_keeps_neighbours_and_their_comments():
    doc = conf.parse(SAMPLE)
    assert doc.remove_module("backup")
    assert doc.render() == SAMPLE.replace(
        "[backup]\n\tpath = /srv/backup\n\tcomment = nightly \\\n\t  backups\n"
        "\tRead Only = FALSE\n\thosts allow = 10.0.0.0/8, 192.168.1.1\n", "")
    assert not doc.remove_module("backup")


def test_remove_module_merged_from_several_sections():
    text = "[a]\npath = /a\n\n[b]\npath = /b\n\n[A]\ncomment = more a\n"
    doc = conf.parse(text)
    assert doc.remove_module("a")
    assert doc.render() == "[b]\npath = /b\n"


def test_remove_param_drops_every_setting():
    doc = conf.parse("[m]\npath = /m\nlist = no\n list=yes\n")
    assert doc.remove_param("m", "list")
    assert doc.render() == "[m]\npath = /m\n"


def test_crlf_file_gets_crlf_lines():
    doc = conf.parse("[m]\r\npath = /m\r\n")
    doc.set_param("m", "comment", "str", "x")
    assert doc.render() == "[m]\r\npath = /m\r\ncomment = x\r\n"


@pytest.mark.parametrize("name", ["a]b", "a\nb", "a/b", " lead", "trail ", "two  spaces", "GLOBAL", "", "tab\there", "bell\x07"])
def test_hostile_module_names_are_rejected(name):
    with pytest.raises(conf.ValueProblem):
        conf.check_module_name(name)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "nul\0", " lead", "trail ", "back\\", "tab\t"])
def test_hostile_values_are_rejected(value):
    with pytest.raises(conf.ValueProblem):
        conf.check_text(value)


def test_list_items_must_not_contain_separators():
    with pytest.raises(conf.ValueProblem):
        conf.check_item("a,b", " \t,")
    with pytest.raises(conf.ValueProblem):
        conf.check_item("a b", " \t")
    conf.check_item("10.0.0.0/8", " \t,")


def test_parameter_lookup():
    assert conf.lookup_parameter("ReadOnly") == "read only"
    assert conf.lookup_parameter("max_connections") == "max connections"
    assert conf.lookup_parameter("post-xfer exec") == "post-xfer exec"
    assert conf.lookup_parameter("no such thing") is None
    assert conf.lookup_parameter("pid file") is None and conf.is_global_parameter("pid_file")


def test_secrets_only_managed_users_change():
    text = "# rsync users\nalice:old\nbob:keep:with:colons\nalice:shadowed\ncarol:x"
    new, changed = conf.update_secrets(text, {"alice": "new", "dave": "d:1"})
    assert new == "# rsync users\nalice:new\nbob:keep:with:colons\nalice:shadowed\ncarol:x\ndave:d:1\n"
    assert changed == ["alice", "dave"]
    again, changed = conf.update_secrets(new, {"alice": "new", "dave": "d:1"})
    assert again == new and changed == []
    red = conf.redact_secrets(new, ["alice"])
    assert "new" not in red and "d:1" not in red and "keep" not in red
    assert red.splitlines()[1] == "alice:<password changed>"


@pytest.mark.parametrize("user", ["", "a:b", "#x", "@grp", " a", "a\nb"])
def test_secret_user_names_rejected(user):
    with pytest.raises(conf.ValueProblem):
        conf.check_secret_user(user)


def test_daemon_complaints_drop_noise():
    log = ("2026/01/01 10:00:00 [12] connect from localhost (127.0.0.1)\n"
           "2026/01/01 10:00:00 [12] IGNORING unknown parameter \"bogus\"\n"
           "2026/01/01 10:00:00 [12] module-list request from localhost (127.0.0.1)\n")
    assert conf.daemon_complaints(log) == ['IGNORING unknown parameter "bogus"']
    assert conf.parse_listing("Welcome\nmig            \tA comment\n@RSYNCD: EXIT\n") == ["mig"]


# -- agreement with the real rsync daemon --------------------------------------------------


@pytest.mark.functional
@needs_rsync
def test_daemon_reads_sample_as_we_do(tmp_path):
    (tmp_path / "rsyncd.d").mkdir()
    rc, listing, complaints = daemon_list(tmp_path, SAMPLE.replace("/etc/rsyncd.d", str(tmp_path / "rsyncd.d")) + "\n")
    assert rc == 0, complaints
    assert complaints == []
    assert sorted(listing) == ["Mig", "backup", "tail"]
    assert listing["backup"] == conf.parse(SAMPLE).module_params("backup")["comment"]


@pytest.mark.functional
@needs_rsync
@pytest.mark.parametrize("comment", [
    "plain",
    "inner   blanks\tand tab",
    "# not a comment after =",
    "; nor this",
    "a = b = c",
    "[brackets] and &amp",
    "trailing backslash\\ inside",
    "unicode caf\u00e9 \u2603",
    "50% and %% percent",
])
def test_hostile_comment_round_trips_through_daemon(tmp_path, comment):
    conf.check_text(comment)
    doc = conf.parse("[m]\npath = %s\n" % tmp_path)
    assert doc.set_param("m", "comment", "str", comment)
    text = doc.render()
    rc, listing, complaints = daemon_list(tmp_path, text)
    assert rc == 0 and complaints == []
    shown = listing["m"]
    assert shown.encode("utf-8") == comment.encode("utf-8")
    # And our own parser reads back what we wrote.
    assert conf.parse(text).module_params("m")["comment"] == comment


@pytest.mark.functional
@needs_rsync
@pytest.mark.parametrize("name", ["x;y#z", "with space", "a[b", "caf\u00e9", "UPPER"])
def test_unusual_but_valid_module_names_round_trip_through_daemon(tmp_path, name):
    conf.check_module_name(name)
    doc = conf.parse("")
    doc.add_module(name)
    doc.set_param(name, "path", "str", str(tmp_path))
    rc, listing, complaints = daemon_list(tmp_path, doc.render())
    assert rc == 0 and complaints == []
    assert list(listing) == [name]


@pytest.mark.functional
@needs_rsync
def test_daemon_complains_about_what_we_must_catch(tmp_path):
    rc, _listing, complaints = daemon_list(tmp_path, "[m]\npath = /tmp\nbogus parameter = 1\n")
    assert rc == 0 and any("bogus parameter" in c for c in complaints)
    rc, _listing, complaints = daemon_list(tmp_path, "[m]\npath = /tmp\nread only = maybe\n")
    assert any("maybe" in c for c in complaints)
    # Underscores are not blanks to rsync: our parser must not treat read_only as read only.
    rc, _listing, complaints = daemon_list(tmp_path, "[m]\npath = /tmp\nread_only = no\n")
    assert any("read_only" in c for c in complaints)
    assert conf.lookup_parameter("read_only") == "read only"  # YAML keys only, see lookup
    assert "read_only" not in [conf.canonical(k) for k in conf.MODULE_PARAMETERS]
    rc, _listing, complaints = daemon_list(tmp_path, "[m\npath = /tmp\n")
    assert rc != 0


def test_random_text_round_trips_and_edits_stay_local():
    """Random config-like text: parse/render is the identity, and adding a module only appends."""
    rng = random.Random(4)
    alphabet = ["[", "]", "=", "#", ";", "&", "\\", " ", "\t", "\n", "\r\n", "a", "m", "path", "[m]\n", "\u00e9"]
    for _round in range(500):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 60)))
        doc = conf.parse(text)
        assert doc.render() == text
        if doc.has_module("fresh"):
            continue
        doc.add_module("fresh")
        doc.set_param("fresh", "path", "str", "/srv/fresh")
        out = doc.render()
        assert out.startswith(text)
        assert conf.parse(out).module_params("fresh") == {"path": "/srv/fresh"}


@pytest.mark.functional
@needs_rsync
@pytest.mark.parametrize("text", ["[m]\npath = {d} \\\n", "[m]\npath = {d} \\", "[m]\npath = {d}\\ \t"])
def test_new_param_after_dangling_continuation(tmp_path, text):
    text = text.format(d=tmp_path)
    doc = conf.parse(text)
    assert doc.set_param("m", "comment", "str", "added")
    out = doc.render()
    assert out.startswith(text)
    assert conf.parse(out).module_params("m")["comment"] == "added"
    rc, listing, complaints = daemon_list(tmp_path, out)
    assert rc == 0 and complaints == [] and listing == {"m": "added"}
