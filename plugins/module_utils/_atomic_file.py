# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a file atomically, optionally after proving the new content acceptable.

``write_atomically`` writes to a temporary file in the destination directory (so the final
``os.replace`` never crosses a file system), fsyncs it, hands its path to ``validate`` and
only then renames it over the destination. A reader therefore sees either the old file or
the complete new one, never a half-written or rejected one.
"""
from __future__ import annotations

import os
import tempfile


class ValidationError(Exception):
    """Raised by a ``validate`` callable to refuse the candidate file."""


def write_atomically(module, path, content, validate=None, backup=False, mode=None, owner=None, group=None):
    """Replace ``path`` with ``content`` (bytes or str, str is written as UTF-8).

    ``validate(candidate_path)`` runs against the fully written temporary file and may raise
    ``ValidationError`` (or return a message string) to refuse it; the temporary file is
    removed and ``fail_json`` reports the message. ``mode``/``owner``/``group`` default to
    those of the existing file, so replacing a file keeps its permissions; they are set on the
    temporary file before the rename so the new content is never briefly exposed.

    Returns the backup file name when ``backup`` is true and a previous file existed, else None.
    """
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogateescape")
    directory = os.path.dirname(os.path.abspath(path)) or "."
    existing = None
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        try:
            if mode is None and existing is not None:
                os.fchmod(fd, existing.st_mode & 0o7777)
            elif mode is not None and not isinstance(mode, str):
                os.fchmod(fd, mode)
            if existing is not None and os.geteuid() == 0:
                os.fchown(fd, existing.st_uid, existing.st_gid)
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None or owner is not None or group is not None:
            file_args = dict(path=tmp, mode=mode, owner=owner, group=group,
                             secontext=[None, None, None], attributes=None)
            module.set_fs_attributes_if_different(file_args, False)
        if validate is not None:
            try:
                problem = validate(tmp)
            except ValidationError as e:
                problem = str(e)
            if problem:
                module.fail_json(msg="refusing to replace %s: %s" % (path, problem), path=path)
        backup_file = None
        if backup and existing is not None:
            backup_file = module.backup_local(path)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(directory)
        return backup_file
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(directory):
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
