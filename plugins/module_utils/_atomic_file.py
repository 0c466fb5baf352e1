# SPDX-License-Identifier: GPL-3.0-or-later
"""Replace a file atomically, after proving the new content acceptable; read files as text.

A new content goes through two steps, the same in check mode and in a real run:

1. :class:`StagedFile` writes the candidate to a temporary file (mode 0600 from its creation),
   fsyncs it and hands its path to ``validate``. A real run stages beside the destination (same
   file system, and relative includes resolve the same way); check mode stages in the module's
   private temporary directory and never touches the destination's directory.
2. :meth:`StagedFile.commit` renames it over the destination with ``module.atomic_move``, which
   keeps the existing file's owner, group, mode, SELinux context and extended attributes.

A reader therefore sees the old file or the complete new one, never a half-written or rejected
one; a rejected candidate leaves the old file untouched. :func:`write_atomically` does both.
"""
from __future__ import annotations

import os
import tempfile

from ansible.module_utils.common.text.converters import to_native


class ValidationError(Exception):
    """Raised by a ``validate`` callable (or by :class:`StagedFile`) to refuse the candidate."""


def read_text(path):
    """The text of ``path`` (UTF-8, undecodable bytes kept as surrogates), or None if missing."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def to_bytes_keep(content):
    """``content`` as bytes; str is encoded back exactly as :func:`read_text` decoded it."""
    if isinstance(content, str):
        return content.encode("utf-8", "surrogateescape")
    return content


def fsync_dir(directory):
    """Flush a directory entry change (a rename) to disk; best effort."""
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


_fsync_dir = fsync_dir  # former private name


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


class StagedFile:
    """A complete candidate for ``path``, validated, not yet in place.

    ``validate(candidate_path)`` may return a message (or raise :class:`ValidationError`) to
    refuse the candidate: the temporary file is removed and :class:`ValidationError` is raised
    with that message. ``scratch=True`` (check mode) stages in ``module.tmpdir``.
    """

    def __init__(self, module, path, content, validate=None, scratch=False):
        self.module = module
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path)) or "."
        where = module.tmpdir if scratch else self.directory
        fd, self.tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=where)
        try:
            try:
                _write_fd(fd, to_bytes_keep(content))
            finally:
                os.close(fd)
            if validate is not None:
                try:
                    problem = validate(self.tmp)
                except ValidationError as e:
                    problem = str(e)
                if problem:
                    raise ValidationError(problem)
        except BaseException:
            self.discard()
            raise

    def discard(self):
        """Remove the candidate if it was not committed."""
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None

    def commit(self, backup=False, mode=None, owner=None, group=None):
        """Put the candidate in place; return the backup file name (``backup=True``) or None.

        Without ``mode``/``owner``/``group`` the existing file's are kept (a new file gets 0600
        and the module's user). When given, they are applied to the existing file *before* the
        rename, so the new content is never readable by more users than asked, even briefly.
        """
        module = self.module
        existing = os.path.lexists(self.path)
        asked = mode is not None or owner is not None or group is not None
        file_args = dict(path=self.path, mode=mode, owner=owner, group=group,
                         secontext=[None, None, None], attributes=None)
        backup_file = None
        if backup and existing:
            backup_file = module.backup_local(self.path)
        if existing and asked:
            module.set_fs_attributes_if_different(dict(file_args), False)
        # atomic_move gives a file it creates mode 0666 & ~umask: keep it 0600 until asked otherwise.
        old_umask = None if existing else os.umask(0o177)
        try:
            module.atomic_move(self.tmp, self.path)
            self.tmp = None
        except Exception as e:  # atomic_move raises plain Exception
            self.discard()
            module.fail_json(msg="cannot replace %s: %s" % (self.path, to_native(e)), path=self.path)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        fsync_dir(self.directory)
        if asked:
            module.set_fs_attributes_if_different(dict(file_args), False)
        return backup_file


def write_atomically(module, path, content, validate=None, backup=False, mode=None, owner=None, group=None,
                     check_mode=False, fail_extra=None, option=None):
    """Replace ``path`` with ``content`` (bytes or str, str is written as UTF-8).

    Validation runs in check mode too (on a scratch copy), so a task that would fail for real
    fails in check mode as well. A refused candidate fails the module with
    ``OPTION=PATH: refusing to replace it: MESSAGE`` (``option`` is the module option that names
    the file; without it ``refusing to replace PATH: MESSAGE``), plus ``fail_extra``, and leaves
    ``path`` untouched.

    Returns the backup file name when ``backup`` is true and a previous file existed, else None.
    """
    try:
        staged = StagedFile(module, path, content, validate=validate, scratch=check_mode)
    except ValidationError as e:
        extra = dict(fail_extra or {}, path=path)
        if option:
            module.fail_json(msg="%s=%s: refusing to replace it: %s" % (option, path, e), option=option, **extra)
        module.fail_json(msg="refusing to replace %s: %s" % (path, e), **extra)
    try:
        if check_mode:
            return None
        return staged.commit(backup=backup, mode=mode, owner=owner, group=group)
    finally:
        staged.discard()
