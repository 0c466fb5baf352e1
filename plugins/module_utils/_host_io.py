# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers of the jobs that run on a host without Ansible (backups, their drills).

No Ansible import: ``job_library`` installs this file with the jobs that use it. Modules use
``_atomic_file`` instead, which works through ``module.atomic_move``.
"""

from __future__ import annotations

import hashlib
import os

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
