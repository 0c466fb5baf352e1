#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rsyncd_share
short_description: Manage one module (share) of an rsync daemon configuration file
version_added: 0.1.0
description:
  - Adds, changes or removes one C([module]) section of an rsyncd.conf(5) file, the share
    that clients reach as C(rsync://host/module/) or C(host::module).
  - Only the lines of that section that must change are rewritten. The global section,
    other modules, comments, blank lines, C(&include)/C(&merge) directives and the spelling of
    parameters that already have the wanted value are kept byte for byte. A parameter already
    set to an equivalent value (for example C(read only = false) when O(read_only=false)) is
    not rewritten.
  - Parameters are compared the way rsync reads them. Names ignore case and blanks
    (C(read only) is C(readonly)). Booleans accept C(yes/no), C(true/false) and C(1/0). If a
    module name appears in several sections (rsync merges them), the module edits all of them.
  - Before the live file is replaced, the complete candidate file is handed to the installed
    rsync daemon on the managed host (C(rsync --daemon) run for a single module listing through
    C(RSYNC_CONNECT_PROG), so no port is opened and nothing keeps running). The module fails
    and leaves the live file untouched if the daemon cannot parse the candidate, reports a
    complaint about it (unknown parameter, badly formed boolean or line) that the current file
    did not already cause, or does not list the module. The new file then replaces the old one
    with an atomic rename.
  - The rsync daemon reads its configuration again for every client connection, so a change
    is live for the next connection. The module never restarts or reloads the daemon, and a
    playbook does not need to.
  - Options left unset leave the corresponding parameter as it is in the file.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The secrets file appears in the diff with every password replaced by a marker.
      - Check mode goes through the same plan as a real run, including the rsync daemon's check
        of the candidate configuration; it stops before anything on the host changes.
options:
  name:
    description:
      - Name of the rsync module, the C([name]) section header.
      - rsync matches module names case-insensitively; an existing section spelt differently
        is managed under its existing spelling.
      - It must not contain C(]), C(/), control characters (such as a newline), leading,
        trailing or repeated blanks, and it must not be C(global).
    type: str
    required: true
  state:
    description:
      - V(present) adds the module or brings its parameters to the given values.
      - V(absent) removes every section of the module. Comments and blank lines after its last
        parameter are kept, because they usually belong to the next section. The secrets file
        is not changed.
    type: str
    choices: [present, absent]
    default: present
  config_path:
    description:
      - The rsync daemon configuration file to edit. It is created if it does not exist.
      - Only this file is edited. The module does not follow C(&include) or C(&merge)
        directives; to manage a module kept in an included file, point O(config_path) at that
        file.
    type: path
    default: /etc/rsyncd.conf
  share_path:
    description:
      - The directory the module exports, rsync's C(path) parameter. Must be absolute.
      - Required when the module does not exist yet.
      - The directory must exist unless O(create=true). A C(/./) element (chroot split) is
        allowed. A path that contains C(%) (environment variable references) is not checked.
    type: path
  create:
    description:
      - Create O(share_path) (and missing parents, mode 0755) when it does not exist.
      - The new directory itself is owned by O(uid) and O(gid) when they are given, so that a
        writable module can accept files straight away. An existing directory is never
        changed.
    type: bool
    default: false
  comment:
    description:
      - The C(comment) shown next to the module name in module listings.
    type: str
  read_only:
    description:
      - rsync's C(read only). rsync's default is V(true); set V(false) to accept uploads.
    type: bool
  write_only:
    description:
      - rsync's C(write only) - clients may upload but not download.
    type: bool
  list:
    description:
      - rsync's C(list) - whether the module is shown in module listings.
    type: bool
  use_chroot:
    description:
      - rsync's C(use chroot).
    type: bool
  uid:
    description:
      - User name or id the daemon uses for transfers in this module (rsync's C(uid)).
      - A name must exist on the managed host.
    type: str
  gid:
    description:
      - Group name or id the daemon uses for transfers in this module (rsync's C(gid)).
      - A name must exist on the managed host.
    type: str
  hosts_allow:
    description:
      - rsync's C(hosts allow) lists the addresses, networks or host name patterns allowed to connect.
        An empty list removes the parameter, which allows every host.
      - Items must not contain blanks or commas (rsync's separators).
    type: list
    elements: str
  hosts_deny:
    description:
      - rsync's C(hosts deny). An empty list removes the parameter.
    type: list
    elements: str
  auth_users:
    description:
      - rsync's C(auth users) lists users (or C(@group), with optional C(:ro)/C(:rw)/C(:deny)) who
        must authenticate against O(secrets_file). An empty list removes the parameter.
    type: list
    elements: str
  secrets_file:
    description:
      - rsync's C(secrets file) for this module. Must be absolute.
      - With O(secrets), this file is also written. See O(secrets).
    type: path
  secrets:
    description:
      - User name to password mapping to keep in O(secrets_file).
      - Only the lines of these users change; other users' lines and comments are kept. The
        file is replaced atomically, owned by the user running the module, with mode 0600
        (rsync refuses a secrets file other users can read).
      - Passwords are never returned or shown in a diff.
    type: dict
  max_connections:
    description:
      - rsync's C(max connections); C(0) means no limit.
    type: int
  timeout:
    description:
      - rsync's C(timeout) in seconds; C(0) means none.
    type: int
  exclude:
    description:
      - rsync's C(exclude) lists patterns the daemon hides from clients. Items must not contain
        blanks; use O(options) with C(exclude from) or C(filter) for those.
    type: list
    elements: str
  refuse_options:
    description:
      - rsync's C(refuse options) lists client options the daemon refuses, such as C(delete).
    type: list
    elements: str
  incoming_chmod:
    description:
      - rsync's C(incoming chmod), for example C(Dg+s,ug+w,Fo-w,+X).
    type: str
  dont_compress:
    description:
      - rsync's C(dont compress) lists patterns of files not to compress.
    type: list
    elements: str
  options:
    description:
      - Any other module parameter of rsyncd.conf(5), for example C(numeric ids),
        C(fake super), C(transfer logging), C(log file) or C(auth digest).
      - Keys can be written as in the manual (C(numeric ids)) or with underscores
        (C(numeric_ids)). A key must be a module parameter of rsyncd.conf(5). A parameter that
        has its own option (such as C(read only)) and a global-only parameter (such as C(pid file))
        are refused.
      - A boolean value is written as C(yes)/C(no), a list is joined with blanks, and V(null)
        removes the parameter from the module.
    type: dict
    default: {}
  allow_open_write:
    description:
      - Allow a module that is writable (C(read only) false, given here or inherited from the
        global section), allows every host (no C(hosts allow)) and requires no login (no
        C(auth users)). Such a module lets anyone who can reach the port write to
        O(share_path). Without this option the module refuses to create it.
    type: bool
    default: false
  backup:
    description:
      - Keep a time-stamped copy of the previous configuration file when it changes.
    type: bool
    default: false
notes:
  - Needs C(rsync) on the managed host to check the candidate configuration.
  - Environment variable references (C(%VAR%)) in values are expanded by rsync when it reads
    the file. Write C(%%) for a literal C(%).
seealso:
  - name: rsyncd.conf(5)
    description: The rsync daemon configuration manual.
    link: https://download.samba.org/pub/rsync/rsyncd.conf.5
"""

EXAMPLES = r"""
- name: Receive the migration from the old server through an rsync module
  nodowntime.storage.rsyncd_share:
    name: migration
    share_path: /srv/storage
    comment: storage migration target
    read_only: false
    use_chroot: true
    uid: root
    gid: root
    hosts_allow:
      - 10.213.7.11
    auth_users:
      - lsyncd
    secrets_file: /etc/rsyncd.secrets
    secrets:
      lsyncd: "{{ vault_rsyncd_lsyncd_password }}"

- name: A read-only public mirror, kept out of listings, with extra parameters
  nodowntime.storage.rsyncd_share:
    name: mirror
    share_path: /srv/mirror
    create: true
    list: false
    max_connections: 10
    refuse_options: [delete]
    options:
      numeric ids: true
      transfer logging: true

- name: Remove the migration module after the cutover
  nodowntime.storage.rsyncd_share:
    name: migration
    state: absent
"""

RETURN = r"""
share:
  description:
    - The module's effective settings after the task (what it would be in check mode).
      It lists the parameters the module sets itself and those it inherits from the global section.
      Booleans and integers are typed; list parameters are lists. Empty when O(state=absent).
  returned: success
  type: dict
  sample:
    name: migration
    path: /srv/storage
    read_only: false
    use_chroot: true
    uid: root
    gid: root
    hosts_allow: [10.213.7.11]
    auth_users: [lsyncd]
    secrets_file: /etc/rsyncd.secrets
changed_parameters:
  description: Parameters (as spelt in the manual) added, changed or removed in the module.
  returned: success
  type: list
  elements: str
  sample: [read only, hosts allow]
secrets_changed_users:
  description: Users whose line in O(secrets_file) was added or changed (never the passwords).
  returned: success
  type: list
  elements: str
  sample: [lsyncd]
backup_file:
  description: Name of the backup of the previous configuration file.
  returned: changed and O(backup=true)
  type: str
diff:
  description:
    - Before and after text of the configuration file; with O(secrets), a second entry shows
      the secrets file with the passwords replaced.
  returned: diff mode
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsyncd_share as share


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        config_path=dict(type="path", default="/etc/rsyncd.conf"),
        share_path=dict(type="path"),
        create=dict(type="bool", default=False),
        comment=dict(type="str"),
        read_only=dict(type="bool"),
        write_only=dict(type="bool"),
        list=dict(type="bool"),
        use_chroot=dict(type="bool"),
        uid=dict(type="str"),
        gid=dict(type="str"),
        hosts_allow=dict(type="list", elements="str"),
        hosts_deny=dict(type="list", elements="str"),
        auth_users=dict(type="list", elements="str"),
        secrets_file=dict(type="path"),
        secrets=dict(type="dict", no_log=True),
        max_connections=dict(type="int"),
        timeout=dict(type="int"),
        exclude=dict(type="list", elements="str"),
        refuse_options=dict(type="list", elements="str"),
        incoming_chmod=dict(type="str"),
        dont_compress=dict(type="list", elements="str"),
        options=dict(type="dict", default={}),
        allow_open_write=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    plan = share.plan_share(module)
    result = dict(
        changed=plan.changed,
        share=plan.share,
        changed_parameters=plan.changed_parameters,
        secrets_changed_users=plan.secrets_users,
    )
    if module._diff:
        result["diff"] = plan.diff()
    backup_file = share.execute(module, plan, module.check_mode, fail_extra=result)
    if backup_file:
        result["backup_file"] = backup_file
    module.exit_json(**result)


if __name__ == "__main__":
    main()
