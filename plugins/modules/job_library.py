#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: job_library
short_description: Install the collection's job code on a host, for scheduled jobs run without Ansible
version_added: 0.1.0
description:
  - Scheduled jobs of this collection run on the host from a systemd timer or cron, with no Ansible
    and no controller - the Redis AOF backup (C(nodowntime.storage.redis_backup) role), the transfer
    between sites (C(nodowntime.storage.transfer_job)) and the tree backup
    (C(nodowntime.storage.tree_backup)). They run the same code as the modules do - rsync's
    options, locking and statistics as M(nodowntime.storage.rsync_copy), the backup steps as
    M(nodowntime.storage.redis_aof_backup) - because this module writes that code onto the host.
  - Writes the collection's host-side Python files, unchanged, into O(dest) as the package tree
    C(ansible_collections/nodowntime/storage/plugins/module_utils/), so that a program run with
    C(PYTHONPATH=DEST) imports them under their own names. The files import no Ansible; Python 3
    is all the host needs (and the redis library for Redis backups).
  - The files are taken from the module's payload, so the host always gets the code of the
    collection that runs the play, whatever the collection's installed layout.
  - Each file is replaced atomically (written to a temporary file beside it, then renamed), and
    only when its content differs; other files under O(dest) are left alone.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
    details:
      - Compares the files and reports which would be written; writes nothing. A O(dest) that does
        not exist yet (a task before creates it) means every file would be written.
  diff_mode:
    support: full
    details:
      - One line per file, its path and the start of its SHA-256, before and after; not the content.
options:
  dest:
    description:
      - Existing directory the package tree is written under, for example C(/usr/local/lib/nodowntime).
      - Run the jobs with C(PYTHONPATH) set to it.
    type: path
    required: true
  mode:
    description:
      - Mode of the files written, and of files in place whose mode differs. Directories the
        module creates are C(0755).
    type: raw
    default: "0644"
seealso:
  - module: nodowntime.storage.redis_aof_backup
  - module: nodowntime.storage.rsync_copy
"""

EXAMPLES = r"""
- name: Install the job code for the scheduled jobs
  nodowntime.storage.job_library:
    dest: /usr/local/lib/nodowntime

- name: A transfer job runs it without Ansible
  ansible.builtin.command:
    argv: [/usr/bin/python3, -m, ansible_collections.nodowntime.storage.plugins.module_utils._transfer_job,
           run, --config, /etc/nodowntime/transfer-logs.json]
  environment:
    PYTHONPATH: /usr/local/lib/nodowntime
  changed_when: true
"""

RETURN = r"""
files:
  description: Paths, relative to O(dest), of the files this module manages.
  returned: always
  type: list
  elements: str
  sample: [ansible_collections/nodowntime/storage/plugins/module_utils/_progress.py]
written:
  description: Paths, relative to O(dest), of the files written (in check mode, that would be written) because their content or mode differed.
  returned: always
  type: list
  elements: str
  sample: [ansible_collections/nodowntime/storage/plugins/module_utils/_rsync.py]
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import (
    _host_io, _progress, _redis_aof, _redis_connection, _rsync, _rsync_runner, _run_log, _transfer_job, _tree_backup,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._atomic_file import StagedFile

# Every file a host-side job imports; none of them imports Ansible at import time.
LIBRARY = (_host_io, _progress, _redis_aof, _redis_connection, _rsync, _rsync_runner, _run_log, _transfer_job,
           _tree_backup)
PACKAGE = "ansible_collections/nodowntime/storage/plugins/module_utils"


def library_files():
    """``{relative path: bytes}``, read through each module's loader (a zip inside a payload)."""
    return {"%s/%s" % (PACKAGE, os.path.basename(mod.__file__)): mod.__loader__.get_data(mod.__file__)
            for mod in LIBRARY}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _listing(contents):
    """Diff text: ``path sha256[:12]`` per file present."""
    return "".join("%s %s\n" % (name, hashlib.sha256(data).hexdigest()[:12])
                   for name, data in sorted(contents.items()) if data is not None)


def _write(module, path, content, mode):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    staged = StagedFile(module, path, content)
    try:
        staged.commit(mode=mode)
    finally:
        staged.discard()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    files = library_files()
    if not os.path.isdir(dest):
        if module.check_mode and not os.path.exists(dest):
            # In check mode, the task that creates dest has not created it: every file would be written.
            module.exit_json(changed=True, files=sorted(files), written=sorted(files),
                             diff=dict(before="", after=_listing(files)))
        module.fail_json(msg="dest=%s is not an existing directory; create it first" % dest)
    before = {name: _read(os.path.join(dest, name)) for name in files}
    written = []
    for name, content in sorted(files.items()):
        path = os.path.join(dest, name)
        if before[name] == content:
            # same content: the mode may still need fixing
            file_args = module.load_file_common_arguments(dict(path=path, mode=module.params["mode"]))
            if module.set_fs_attributes_if_different(file_args, False, diff=None):
                written.append(name)
            continue
        written.append(name)
        if module.check_mode:
            continue
        try:
            _write(module, path, content, module.params["mode"])
        except OSError as e:
            module.fail_json(msg="cannot write %s: %s" % (path, to_native(e)), written=written)
    result = dict(changed=bool(written), files=sorted(files), written=written)
    if module._diff:
        result["diff"] = dict(before=_listing(before), after=_listing(files))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
