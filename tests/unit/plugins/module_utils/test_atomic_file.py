# SPDX-License-Identifier: GPL-3.0-or-later
"""_atomic_file: staged candidates, validation, module.atomic_move, kept attributes."""
from __future__ import annotations

import os
import stat
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nodowntime.storage.plugins.module_utils import _atomic_file as af

from ..modules.utils import AnsibleFailJson, _fail_json


@pytest.fixture
def module(tmp_path):
    with patch_module_args({"_ansible_remote_tmp": str(tmp_path / "remote_tmp"), "_ansible_keep_remote_files": False}), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json):
        m = basic.AnsibleModule(argument_spec={}, supports_check_mode=True)
        yield m


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def others(tmp_path, keep):
    return sorted(n for n in os.listdir(str(tmp_path)) if n not in keep)


def test_read_text_round_trips_undecodable_bytes(tmp_path):
    p = tmp_path / "f"
    raw = b"caf\xc3\xa9 \xff\xfe end\n"
    p.write_bytes(raw)
    text = af.read_text(str(p))
    assert text.startswith("caf\u00e9") and af.to_bytes_keep(text) == raw
    assert af.read_text(str(tmp_path / "missing")) is None


def test_fsync_dir_is_public_and_harmless(tmp_path):
    af.fsync_dir(str(tmp_path))
    af.fsync_dir(str(tmp_path / "missing"))  # best effort, no exception
    assert af._fsync_dir is af.fsync_dir


def test_replacement_goes_through_module_atomic_move(module, tmp_path):
    p = tmp_path / "conf"
    p.write_text("old\n")
    with mock.patch.object(module, "atomic_move", wraps=module.atomic_move) as move:
        af.write_atomically(module, str(p), "new\n")
    assert p.read_text() == "new\n"
    (src, dest), _kw = move.call_args
    assert dest == str(p) and os.path.dirname(src) == str(tmp_path)  # staged beside the destination
    assert others(tmp_path, ["conf", "remote_tmp"]) == []


def test_rejected_candidate_leaves_the_old_file(module, tmp_path):
    p = tmp_path / "conf"
    p.write_text("old\n")
    os.chmod(str(p), 0o640)
    seen = []

    def validate(candidate):
        with open(candidate) as f:
            seen.append(f.read())
        return "option frob: not allowed"

    with mock.patch.object(module, "atomic_move") as move:
        with pytest.raises(AnsibleFailJson) as e:
            af.write_atomically(module, str(p), "new\n", validate=validate)
    assert not move.called
    assert seen == ["new\n"]  # the validator saw the complete candidate
    assert "refusing to replace" in e.value.result["msg"] and "option frob" in e.value.result["msg"]
    assert p.read_text() == "old\n" and mode_of(p) == 0o640
    assert others(tmp_path, ["conf", "remote_tmp"]) == []  # no candidate left behind


def test_validation_error_exception_is_a_refusal_too(module, tmp_path):
    def validate(candidate):
        raise af.ValidationError("bad line 3")

    with pytest.raises(af.ValidationError, match="bad line 3"):
        af.StagedFile(module, str(tmp_path / "conf"), "x", validate=validate)
    assert others(tmp_path, ["remote_tmp"]) == []


def test_check_mode_validates_a_scratch_copy_and_writes_nothing(module, tmp_path):
    p = tmp_path / "conf"
    p.write_text("old\n")
    where = []
    result = af.write_atomically(module, str(p), "new\n", check_mode=True,
                                 validate=lambda c: where.append(os.path.dirname(c)))
    assert result is None and p.read_text() == "old\n"
    assert where == [module.tmpdir]  # staged in the module's private directory
    assert others(tmp_path, ["conf", "remote_tmp"]) == []
    assert os.listdir(module.tmpdir) == []


def test_mode_and_owner_of_the_existing_file_are_kept(module, tmp_path):
    p = tmp_path / "conf"
    p.write_text("old\n")
    os.chmod(str(p), 0o640)
    if os.geteuid() == 0:
        os.chown(str(p), 65534, 65534)
    af.write_atomically(module, str(p), "new\n")
    st = os.stat(str(p))
    assert p.read_text() == "new\n" and stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_new_file_is_private_unless_a_mode_is_asked(module, tmp_path):
    old_umask = os.umask(0o022)
    try:
        af.write_atomically(module, str(tmp_path / "a"), "x")
        af.write_atomically(module, str(tmp_path / "b"), "x", mode=0o644)
        assert os.umask(0o022) == 0o022  # the umask is restored
    finally:
        os.umask(old_umask)
    assert mode_of(tmp_path / "a") == 0o600
    assert mode_of(tmp_path / "b") == 0o644


def test_private_content_is_never_readable_by_others(module, tmp_path):
    """A secrets file that is 0644 now: the old file is tightened first, so at the moment of the
    rename both the old file and the candidate are 0600; the candidate never had another mode."""
    p = tmp_path / "secrets"
    p.write_text("bob:old\n")
    os.chmod(str(p), 0o644)
    seen = {}
    real_move = module.atomic_move

    def move(src, dest, **kw):
        seen["src"], seen["dest"] = mode_of(src), mode_of(dest)
        return real_move(src, dest, **kw)

    with mock.patch.object(module, "atomic_move", side_effect=move):
        af.write_atomically(module, str(p), "bob:new\n", mode=0o600, owner=str(os.geteuid()))
    assert seen == {"src": 0o600, "dest": 0o600}
    assert mode_of(p) == 0o600 and p.read_text() == "bob:new\n"


def test_backup_keeps_the_previous_content(module, tmp_path):
    p = tmp_path / "conf"
    p.write_text("old\n")
    backup = af.write_atomically(module, str(p), "new\n", backup=True)
    with open(backup) as f:
        assert f.read() == "old\n"
    assert af.write_atomically(module, str(tmp_path / "fresh"), "x", backup=True) is None
