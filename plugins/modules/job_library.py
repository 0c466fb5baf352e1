#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: redis_aof_backup_lib
short_description: Install the code of redis_aof_backup on the host, for backups run without Ansible
version_added: 0.1.0
description:
  - Writes the Python code that M(nodowntime.storage.redis_aof_backup) runs - the backup steps
    (C(_redis_aof.py)), the Redis connection options (C(_redis_connection.py)) and the progress file
    (C(_progress.py)) - into O(dest), unchanged, so that a program on the host can import it with
    no Ansible installed. The C(nodowntime.storage.redis_backup) role installs it this way for its
    scheduled backup script (systemd timer or cron), which therefore does exactly what the module
    does.
  - The files are the collection's own, taken from the module's payload, so the host always gets
    the code of the collection that runs the play, whatever the collection's installed layout.
  - Each file is replaced atomically (written to a temporary file in O(dest), then renamed), and
    only when its content differs.
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
      - One line per file, its name and the start of its SHA-256, before and after; not the content.
options:
  dest:
    description:
      - Existing directory the files are written to, for example C(/usr/local/lib/nodowntime-redis-backup).
      - Other files in it are left alone.
    type: path
    required: true
  mode:
    description:
      - Mode of the files written, and of files in place whose mode differs.
    type: raw
    default: "0644"
seealso:
  - module: nodowntime.storage.redis_aof_backup
  - name: Role nodowntime.storage.redis_backup
    description: Schedules the backup with the code this module installs.
    link: https://github.com/nodowntime/storage/tree/main/roles/redis_backup
"""

EXAMPLES = r"""
- name: Install the backup code for the scheduled script
  nodowntime.storage.redis_aof_backup_lib:
    dest: /usr/local/lib/nodowntime-redis-backup
"""

RETURN = r"""
files:
  description: Names of the files this module manages in O(dest).
  returned: always
  type: list
  elements: str
  sample: [_progress.py, _redis_aof.py, _redis_connection.py]
written:
  description: Names of the files written (in check mode, that would be written) because their content or mode differed.
  returned: always
  type: list
  elements: str
  sample: [_redis_aof.py]
"""

import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

# Imported so that Ansible puts them into this module's payload, where their source is read from.
from ansible_collections.nodowntime.storage.plugins.module_utils import _progress
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_connection

# What the host needs: none of these imports Ansible or another of the collection's files.
LIBRARY = (_progress, _redis_aof, _redis_connection)


def library_files():
    """``{file name: bytes}`` of the library, read through each module's loader (a zip in a payload)."""
    return {os.path.basename(mod.__file__): mod.__loader__.get_data(mod.__file__) for mod in LIBRARY}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _listing(contents):
    """Diff text: ``name sha256[:12]`` per file present."""
    return "".join("%s %s\n" % (name, hashlib.sha256(data).hexdigest()[:12])
                   for name, data in sorted(contents.items()) if data is not None)


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
        file_args = module.load_file_common_arguments(dict(path=path, mode=module.params["mode"]))
        if before[name] == content:
            # same content: the mode may still need fixing
            if module.set_fs_attributes_if_different(file_args, False, diff=None):
                written.append(name)
            continue
        written.append(name)
        if module.check_mode:
            continue
        fd, tmp = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=dest)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            module.atomic_move(tmp, path)
        except Exception as e:  # atomic_move raises plain Exception
            if os.path.exists(tmp):
                os.unlink(tmp)
            module.fail_json(msg="cannot write %s: %s" % (path, to_native(e)), written=written)
        module.set_fs_attributes_if_different(file_args, False)
    result = dict(changed=bool(written), files=sorted(files), written=written)
    if module._diff:
        result["diff"] = dict(before=_listing(before), after=_listing(files))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
