#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fs_capabilities
short_description: Find out whether a file system can hold ACLs, xattrs, hard links, sparse files, devices and fifos
version_added: 0.1.0
description:
  - Tries, in the directory O(path), each thing an C(rsync -aHAXS --devices --specials) copy may need
    to write, and reports which of them the file system there can hold. A migration can then stop
    before copying, naming what the target cannot keep, instead of finishing a copy that silently
    lost ACLs or extended attributes.
  - Each feature is a real attempt, not a guess from the file system type, so mount options
    (C(noacl), C(nouser_xattr)), an overlay's upper layer, the kernel's build options and missing
    capabilities in a container all count. C(acls) sets an access ACL with a named user and a named
    group entry (the binary C(system.posix_acl_access) attribute) on a file and reads it back;
    C(xattrs) sets and reads back a C(user.*) attribute; C(hard_links) links a second name to a
    file; C(sparse) writes one byte 4 MiB into a new file and checks the hole takes no blocks;
    C(devices) makes a character device node (needs root, or C(CAP_MKNOD)); C(specials) makes a
    fifo.
  - The attempts happen on temporary entries in a private temporary directory made inside O(path)
    (so on the same file system, not on one mounted below it), named C(.nodowntime-fs-capabilities-*).
    That directory is removed afterwards, also when an attempt fails; the module fails, naming what
    is left, if it cannot remove it.
  - Changes nothing that outlives the task, so it runs in check mode too (the same attempts).
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.attributes.info_module
options:
  path:
    description:
      - An existing directory on the file system to probe. The user running the module must be
        able to create a directory in it.
    type: path
    required: true
  require:
    description:
      - Features the file system must hold. The module fails, naming each missing feature and why
        its attempt failed, when one of them is missing. The attempts and RV(capabilities) cover
        every feature whatever this says.
    type: list
    elements: str
    choices: [acls, xattrs, hard_links, sparse, devices, specials]
    default: []
notes:
  - The probe directory appears in O(path) for the duration of the task. A tool that watches the
    tree (lsyncd on a migration's source) may pick it up and copy it; probe the target, or a tree
    nothing watches.
  - C(devices) is false for an unprivileged user and in a container without C(CAP_MKNOD) even when
    the file system itself could hold device files; that is also what an rsync run by that user
    there would meet.
seealso:
  - module: nodowntime.storage.tree_verify
  - module: nodowntime.storage.rsyncd_share
"""

EXAMPLES = r"""
- name: Stop unless the target can hold what an rsync -aHAX copy carries
  nodowntime.storage.fs_capabilities:
    path: /srv
    require: [acls, xattrs, hard_links]

- name: Find out what the file system under /srv/data can hold
  nodowntime.storage.fs_capabilities:
    path: /srv/data
  register: srv_caps

- name: Show it
  ansible.builtin.debug:
    msg: "{{ srv_caps.fs_type }}: {{ srv_caps.capabilities }}"
"""

RETURN = r"""
capabilities:
  description: Each feature and whether the file system at O(path) can hold it.
  returned: success
  type: dict
  sample: {acls: true, xattrs: true, hard_links: true, sparse: true, devices: false, specials: true}
reasons:
  description: Why each missing feature's attempt failed.
  returned: success
  type: dict
  sample: {devices: "mknod() of a character device failed: Operation not permitted"}
missing:
  description: The features of O(require) the file system cannot hold (empty on success).
  returned: always
  type: list
  elements: str
  sample: []
fs_type:
  description:
    - The file system type at O(path) from C(/proc/self/mountinfo) (for example C(ext4), C(xfs),
      C(overlay), C(tmpfs), C(nfs4)), or null when it cannot be read.
  returned: always
  type: str
  sample: overlay
mount_point:
  description: The mount point O(path) is under, or null when C(/proc/self/mountinfo) cannot be read.
  returned: always
  type: str
  sample: /
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils._fs_capabilities import (
    DESCRIPTIONS,
    FEATURES,
    ProbeError,
    mount_of,
    probe,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            require=dict(type="list", elements="str", choices=list(FEATURES), default=[]),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    require = module.params["require"]
    result = dict(changed=False, missing=[], fs_type=None, mount_point=None)
    if not os.path.exists(path):
        module.fail_json(msg="path: %s does not exist; give an existing directory on the file system to probe" % path,
                         **result)
    if not os.path.isdir(path):
        module.fail_json(msg="path: %s is not a directory; give a directory on the file system to probe" % path,
                         **result)
    try:
        mount = mount_of(path)
    except OSError as e:
        module.fail_json(msg="path: cannot stat %s: %s" % (path, to_native(e)), **result)
    if mount is not None:
        result.update(fs_type=mount["fs_type"], mount_point=mount["mount_point"])

    try:
        capabilities, reasons = probe(path)
    except ProbeError as e:
        module.fail_json(msg="path: %s" % to_native(e), **result)
    missing = [f for f in dict.fromkeys(require) if not capabilities[f]]
    result.update(capabilities=capabilities, reasons=reasons, missing=missing)
    if missing:
        where = "%s (%s)" % (path, result["fs_type"]) if result["fs_type"] else path
        module.fail_json(
            msg="require: the file system at %s cannot hold %s" % (
                where, "; nor ".join("%s (%s)" % (DESCRIPTIONS[f], reasons[f]) for f in missing)),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
