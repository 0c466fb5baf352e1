# SPDX-License-Identifier: GPL-3.0-or-later
"""The host-side file helpers shared by the Redis and tree backups: the tar stream through zstd."""
from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _host_io as H

ZSTD = shutil.which("zstd")
pytestmark = [pytest.mark.functional,  # runs zstd
              pytest.mark.skipif(ZSTD is None, reason="zstd is not installed")]


def _members(path):
    data = subprocess.run([ZSTD, "-q", "-d", "-c", str(path)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def test_zstd_tar_writer_round_trip(tmp_path):
    out = tmp_path / "a.tar.zst"
    with open(out, "wb") as f, H.zstd_tar_writer(f, 3, ZSTD) as tar:
        _add(tar, "one", b"1" * 100_000)
        _add(tar, "two/ü", b"")
    assert _members(out) == {"one": b"1" * 100_000, "two/ü": b""}


def test_zstd_tar_writer_reports_zstd_failure(tmp_path):
    # A compressor that reads the whole stream and then fails, as zstd does on a full disk.
    failing = tmp_path / "zstd"
    failing.write_text("#!/bin/sh\ncat >/dev/null\necho 'write error: no space left' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(H.ZstdError) as failed:
        with open(tmp_path / "b.tar.zst", "wb") as f, H.zstd_tar_writer(f, 3, str(failing)) as tar:
            _add(tar, "one", b"x")
    assert failed.value.rc == 3 and str(failed.value) == "zstd failed (rc 3): write error: no space left"


def test_zstd_tar_writer_error_in_the_body_goes_on_and_ends_zstd(tmp_path, monkeypatch):
    seen = {}

    class Boom(Exception):
        pass

    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        seen["proc"] = real_popen(*args, **kwargs)
        return seen["proc"]

    monkeypatch.setattr(H.subprocess, "Popen", recording_popen)
    with pytest.raises(Boom):
        with open(tmp_path / "c.tar.zst", "wb") as f, H.zstd_tar_writer(f, 3, ZSTD) as tar:
            _add(tar, "one", b"x")
            raise Boom()
    assert seen["proc"].poll() is not None
