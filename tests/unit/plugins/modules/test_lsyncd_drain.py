# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd_drain, the module: options, results, check mode and the drain split in two, against real
rsync processes and the stand-in lsyncd of the module_utils tests."""
from __future__ import annotations

import os
import time

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd as L
from ansible_collections.nodowntime.storage.plugins.modules import lsyncd_drain
from ansible_collections.nodowntime.storage.tests.unit.plugins.module_utils.test_lsyncd_drain import (
    RSYNC,
    FakeLsyncd,
    _markers,
    make_trees,
)
from ansible_collections.nodowntime.storage.tests.unit.plugins.modules.utils import AnsibleFailJson, run_module

# The module drains through the real rsync: functional tests.
pytestmark = [pytest.mark.functional, pytest.mark.skipif(RSYNC is None, reason="rsync not installed")]


@pytest.fixture
def trees(tmp_path):
    return make_trees(tmp_path)


def _config(tmp_path, status, log):
    conf = tmp_path / "lsyncd.conf.lua"
    conf.write_text(L.render_settings_block(dict(status_file=str(status), logfile=str(log))))
    return conf


def test_module_drains(trees, tmp_path):
    src, dst, status, log = trees
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.2)
    fake.start()
    try:
        result = run_module(lsyncd_drain.main, dict(config=str(_config(tmp_path, status, log)), source=str(src),
                                                    target=str(dst), interval=0.05, timeout=5))
    finally:
        fake.stop.set()
        fake.join(5)
    assert result["drained"] and not result["changed"]
    assert result["status_file"] == str(status)
    assert _markers(src) == [] and _markers(dst) == []


def test_module_timeout_fails_with_the_result(trees, tmp_path):
    src, dst, status, log = trees
    with pytest.raises(AnsibleFailJson) as e:
        run_module(lsyncd_drain.main, dict(config=str(_config(tmp_path, status, log)), source=str(src),
                                           target=str(dst), timeout=0.5))
    assert e.value.result["msg"].startswith("timeout: ")
    assert e.value.result["drained"] is False
    assert _markers(src) == []


def test_module_check_mode_writes_nothing(trees, tmp_path):
    src, dst, status, log = trees
    before = sorted(os.listdir(str(src))), os.stat(str(src)).st_mtime_ns
    result = run_module(lsyncd_drain.main, dict(config=str(_config(tmp_path, status, log)), source=str(src),
                                                target=str(dst)), check_mode=True)
    assert result["drained"] is False and result["changed"] is False
    assert "check mode" in result["msg"]
    assert (sorted(os.listdir(str(src))), os.stat(str(src)).st_mtime_ns) == before


def test_module_split_in_two_writes_then_waits_for_the_same_marker(trees, tmp_path):
    """wait=false returns at once with the marker in the source; the run with marker= waits for
    that marker (shipped meanwhile) and removes it from both sides."""
    src, dst, status, log = trees
    conf = str(_config(tmp_path, status, log))
    fake = FakeLsyncd(str(src), str(dst), str(status), after=0.3)
    fake.start()
    try:
        started = time.monotonic()
        first = run_module(lsyncd_drain.main, dict(config=conf, source=str(src), target=str(dst), wait=False))
        assert time.monotonic() - started < 0.3, "the first half must not wait for lsyncd"
        assert first["drained"] is False and not first["changed"]
        assert _markers(src) == [os.path.join(str(src), first["marker"])]
        time.sleep(0.5)  # the play's other steps; lsyncd ships meanwhile
        second = run_module(lsyncd_drain.main, dict(config=conf, source=str(src), target=str(dst),
                                                    marker=first["marker"], interval=0.05, timeout=5))
    finally:
        fake.stop.set()
        fake.join(5)
    assert os.path.basename(fake.seen) == first["marker"] == second["marker"]
    assert second["drained"] is True and second["pending"] == 0
    assert second["seconds"] < 0.5, "the marker had arrived already: %s" % second
    assert _markers(src) == [] and _markers(dst) == []


@pytest.mark.parametrize("marker, message", [
    ("../etc/passwd", "marker: '../etc/passwd' is not a marker name"),
    (".nodowntime-drain-0123456789abcdef", "marker: .nodowntime-drain-0123456789abcdef is not in "),
])
def test_module_refuses_a_marker_it_did_not_write(trees, tmp_path, marker, message):
    src, dst, status, log = trees
    with pytest.raises(AnsibleFailJson) as e:
        run_module(lsyncd_drain.main, dict(config=str(_config(tmp_path, status, log)), source=str(src),
                                           target=str(dst), marker=marker))
    assert e.value.result["msg"].startswith(message), e.value.result["msg"]
    assert os.path.exists("/etc/passwd") and sorted(os.listdir(str(src))) == ["a"]


def test_module_marker_and_wait_false_do_not_go_together(trees, tmp_path):
    src, dst, status, log = trees
    with pytest.raises(AnsibleFailJson) as e:
        run_module(lsyncd_drain.main, dict(status_file=str(status), source=str(src), target=str(dst),
                                           marker=".nodowntime-drain-0123456789abcdef", wait=False))
    assert e.value.result["msg"].startswith("marker: ")


@pytest.mark.parametrize("args, message", [
    (dict(source="FILE"), "source: "),
    (dict(source="MISSING"), "source: "),
    (dict(target="relative/dir"), "target: "),
    (dict(password_file="/etc/hostname"), "password_file: only an rsync daemon"),
    (dict(target="h::m", rsh="ssh"), "rsh: "),
    (dict(timeout=0), "timeout: "),
    (dict(interval=-1), "interval: "),
    (dict(status_file=None, config="/nonexistent"), "status_file: "),
])
def test_module_bad_options_fail_before_writing(trees, tmp_path, args, message):
    src, dst, status, dummy = trees
    (tmp_path / "FILE").write_text("not a directory\n")
    params = dict(status_file=str(status), source=str(src), target=str(dst))
    params.update(args)
    if params["source"] in ("FILE", "MISSING"):
        params["source"] = str(tmp_path / params["source"])
    before = sorted(os.listdir(str(tmp_path))), sorted(os.listdir(str(src)))
    with pytest.raises(AnsibleFailJson) as e:
        run_module(lsyncd_drain.main, params)
    assert e.value.result["msg"].startswith(message), e.value.result["msg"]
    assert (sorted(os.listdir(str(tmp_path))), sorted(os.listdir(str(src)))) == before
