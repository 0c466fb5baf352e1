# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers of the jobs that run on a host without Ansible (backups, their drills).

No Ansible import: ``job_library`` installs this file with the jobs that use it. Modules use
``_atomic_file`` instead, which works through ``module.atomic_move``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tarfile

CHUNK = 1024 * 1024


def sha256_file(path):
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path):
    """Make a rename in ``path`` durable: a crash after it leaves the new name, not the old."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ZstdError(Exception):
    """zstd ended with an error; ``rc`` and its own message."""

    def __init__(self, rc, message):
        super().__init__("zstd failed (rc %d): %s" % (rc, message))
        self.rc = rc


@contextlib.contextmanager
def zstd_tar_writer(out, level, zstd_bin="zstd"):
    """A tar stream (``tarfile`` in ``w|`` mode, PAX) through ``zstd -T0`` (all cores) into the
    open file ``out``. An error in the body kills zstd and goes on; zstd's own failure is a
    ``ZstdError`` once the stream is closed."""
    proc = subprocess.Popen([zstd_bin, "-q", "-T0", "-%d" % int(level), "-c"], stdin=subprocess.PIPE,
                            stdout=out, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            yield tar
        proc.stdin.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise ZstdError(proc.returncode, err.decode("utf-8", "replace").strip())
