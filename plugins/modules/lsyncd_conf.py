#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: lsyncd_conf
short_description: Manage one sync{} block and the settings{} block of an lsyncd configuration
version_added: 0.1.0
description:
  - Adds, updates or removes one named C(sync{}) block in an lsyncd configuration file, and
    optionally the C(settings{}) block, leaving every other byte of the file alone.
  - Each managed block sits between marker comments
    C(-- BEGIN nodowntime.storage sync "NAME") and C(-- END nodowntime.storage sync "NAME")
    (C(-- BEGIN nodowntime.storage settings) for the settings). Edits made by hand inside a
    managed block are overwritten; text outside the markers is never touched.
  - Options are typed and use snake_case; the module writes lsyncd's own names
    (O(settings.status_file) becomes C(statusFile), O(exclude_from) becomes C(excludeFrom)).
    lsyncd 2.2.3 refuses keys it does not know, so unknown options fail here first, naming them.
  - Every string is written as a double-quoted Lua string with C(\\ddd) escapes for control
    and non-printable characters, so what lsyncd reads is byte for byte what was given -
    quotes, backslashes, newlines, C(]]) and non-ASCII included. No value can inject Lua.
  - The candidate file is checked with a real Lua parser on the managed host (C(luac -p) of
    Lua 5.3 or 5.4, or C(loadfile) in a Lua interpreter) before it atomically replaces the
    live file. See O(validate_lua) for hosts without Lua.
  - The module does not restart lsyncd; notify a handler when the task reports a change.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - ansible.builtin.files
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Check mode goes through the same plan as a real run, including the Lua parser's check of
        the candidate file; it stops before anything on the host changes.
options:
  path:
    description:
      - The lsyncd configuration file. Created (mode C(0600) unless O(mode) is given) when
        missing; missing parent directories are created with mode C(0755).
    type: path
    default: /etc/lsyncd/lsyncd.conf.lua
  name:
    description:
      - Identity of the managed C(sync{}) block in the file (written only into its marker
        comments; lsyncd 2.2.3 itself names syncs C(Sync1), C(Sync2), ... in file order).
      - Omit it (and give O(settings)) to manage only the settings block.
    type: str
  state:
    description:
      - V(present) writes the sync block, V(absent) removes it (and the blank line before it).
    type: str
    choices: [present, absent]
    default: present
  settings:
    description:
      - The C(settings{}) block. When given, the managed settings block is written with exactly
        these values (placed first in the file); when omitted, any settings block is left alone.
      - A C(settings{}) call outside the managed block is reported as a warning, since lsyncd
        applies both and the later one wins.
    type: dict
    suboptions:
      logfile:
        description: C(logfile), the log file lsyncd appends to.
        type: str
      status_file:
        description: C(statusFile), the status report that M(nodowntime.storage.lsyncd_info) reads.
        type: str
      status_interval:
        description:
          - C(statusInterval), minimum seconds between status file writes; fractions are allowed
            (V(0.25)). lsyncd does not rewrite the file while it is idle (lsyncd issue 461), and
            lsyncd 2.2.3 writes a report only this long after the change it reports, so a short
            interval lets M(nodowntime.storage.lsyncd_drain) see an empty queue sooner.
        type: float
      nodaemon:
        description: C(nodaemon), stay in the foreground (what a systemd C(Type=simple) unit wants).
        type: bool
      insist:
        description: C(insist), keep retrying when the target is unreachable at startup.
        type: bool
      max_processes:
        description: C(maxProcesses), global limit of rsync processes.
        type: int
      max_delays:
        description: C(maxDelays), queue length at which lsyncd stops waiting for C(delay).
        type: int
      inotify_mode:
        description: C(inotifyMode), which inotify events count as a change.
        type: str
        choices: [CloseWrite, Modify, CloseWrite or Modify]
      pidfile:
        description: C(pidfile).
        type: str
      log_facility:
        description: C(logfacility), syslog facility.
        type: str
      log_ident:
        description: C(logident), syslog identity.
        type: str
  sync_mode:
    description:
      - The lsyncd layer-1 behaviour (the C(default.*) first entry of the C(sync{}) block).
        Named O(sync_mode) because O(mode) is the file's permissions, as in every file module.
      - V(rsync) is C(default.rsync), V(rsyncssh) is
        C(default.rsyncssh) (moves and deletes over ssh, needs O(host) and O(targetdir)),
        V(direct) is C(default.direct) (local copies, O(target) is a local directory).
    type: str
    choices: [rsync, rsyncssh, direct]
    default: rsync
  source:
    description:
      - Absolute path of the directory to watch. Required with O(state=present).
    type: str
  target:
    description:
      - Where to sync to, with O(sync_mode=rsync) or O(sync_mode=direct). For V(rsync) one of
        C(host::module[/dir]) (rsync daemon), C(rsync://host[:port]/module[/dir]),
        C([user@]host:/dir) (remote shell) or an absolute C(/dir); for V(direct) an absolute local directory.
    type: str
  host:
    description: The C([user@]host) to ssh to, with O(sync_mode=rsyncssh).
    type: str
  targetdir:
    description: The directory on O(host), with O(sync_mode=rsyncssh).
    type: str
  delete:
    description:
      - C(delete). V(true) deletes on the target what is gone from the source, V(false) never
        deletes, V(startup) only in the startup sync, V(running) only for changes after startup.
      - Omitted means lsyncd's default (V(true)).
    type: raw
  exclude:
    description:
      - C(exclude), rsync exclude patterns, one per item. Items may not be empty or contain a line
        break (lsyncd passes them to rsync one per line).
    type: list
    elements: str
  exclude_from:
    description:
      - C(excludeFrom), absolute path of a file of exclude patterns, one per line. lsyncd 2.2.3
        skips blank lines and C(#) comments in it.
    type: str
  delay:
    description:
      - C(delay), seconds to collect events before syncing them (lsyncd's default is 15).
        Must be >= 0. The lag from a write to the target is about O(delay) plus the rsync run.
    type: float
  max_delays:
    description: C(maxDelays) for this sync (>= 1).
    type: int
  max_processes:
    description:
      - C(maxProcesses) for this sync (>= 1). lsyncd requires 1 with O(sync_mode=rsyncssh), and then
        also refuses a global O(settings.max_processes) other than 1.
    type: int
  init:
    description:
      - V(false) writes C(init = false), which skips lsyncd's startup sync of the whole tree.
        V(true) keeps lsyncd's startup sync.
    type: bool
    default: true
  rsync:
    description:
      - The C(rsync) table. Unset suboptions keep lsyncd's defaults (C(links), C(times) and
        C(protect_args) are on). Anything else goes in O(rsync.extra).
    type: dict
    suboptions:
      binary:
        description: Path of the rsync binary.
        type: str
      archive:
        description: C(-a).
        type: bool
      links:
        description: C(-l).
        type: bool
      copy_links:
        description: C(-L).
        type: bool
      hard_links:
        description: C(-H).
        type: bool
      perms:
        description: C(-p).
        type: bool
      owner:
        description: C(-o).
        type: bool
      group:
        description: C(-g).
        type: bool
      times:
        description: C(-t).
        type: bool
      acls:
        description: C(-A).
        type: bool
      xattrs:
        description: C(-X).
        type: bool
      sparse:
        description: C(-S).
        type: bool
      inplace:
        description: C(--inplace).
        type: bool
      whole_file:
        description: C(-W).
        type: bool
      checksum:
        description: C(-c).
        type: bool
      compress:
        description: C(-z).
        type: bool
      one_file_system:
        description: C(-x).
        type: bool
      protect_args:
        description: C(-s).
        type: bool
      verbose:
        description: C(-v).
        type: bool
      bwlimit:
        description: C(--bwlimit) in KiB/s.
        type: int
      timeout:
        description: C(--timeout) in seconds.
        type: int
      password_file:
        description: C(--password-file) for an rsync daemon with C(auth users).
        type: str
      chown:
        description: C(--chown=USER:GROUP).
        type: str
      chmod:
        description: C(--chmod=CHMOD).
        type: str
      rsh:
        description: C(--rsh=COMMAND).
        type: str
      rsync_path:
        description: C(--rsync-path=PROGRAM).
        type: str
      temp_dir:
        description: C(--temp-dir=DIR).
        type: str
      extra:
        description:
          - C(_extra), further rsync arguments, one per item, passed as given.
          - C(--sockopts=TCP_NODELAY) removes most of a TCP stall of 50-100 ms per transfer to an rsync
            daemon. Measured between two lab hosts with lsyncd 2.2.3 and O(delay=0), lag from write to
            target, median (max) - without it 52-57 ms (0.10 s); with it 10-28 ms (62 ms); with the
            daemon also setting C(socket options = TCP_NODELAY) 11-18 ms (34 ms).
        type: list
        elements: str
        aliases: [_extra]
  ssh:
    description: The C(ssh) table, with O(sync_mode=rsyncssh).
    type: dict
    suboptions:
      binary:
        description: Path of the ssh binary.
        type: str
      port:
        description: Port of the ssh server.
        type: int
      identity_file:
        description: C(identityFile), the private key.
        type: str
      options:
        description: ssh C(-o Key=Value) options as a mapping.
        type: dict
      extra:
        description: C(_extra), further ssh arguments.
        type: list
        elements: str
        aliases: [_extra]
  backup:
    description: Keep a timestamped copy of the previous file when it changes.
    type: bool
    default: false
  validate_lua:
    description:
      - Check the candidate file with a Lua parser on the managed host before replacing the live
        file. The first of C(luac5.3), C(luac5.4), C(luac), C(lua5.3), C(lua5.4), C(lua) found on
        the PATH is used (Debian's lsyncd 2.2.3 embeds Lua 5.3; either version parses what this
        module writes).
      - When V(true) and no Lua is installed the task fails; install C(lua5.4) (or C(lua5.3)), or
        set V(false). With V(false) the module's own blocks are still correct by construction,
        but syntax errors in hand-written parts of the file are not caught before lsyncd reads it.
    type: bool
    default: true
notes:
  - The parser check is syntactic. lsyncd also refuses unknown keys at startup; the typed options
    of this module only produce keys lsyncd 2.2.3 knows.
  - The inotify queue (C(fs.inotify.max_queued_events), default 16384) can overflow on large
    bursts; lsyncd then restarts with a full resync. lsyncd needs one watch per directory
    (C(fs.inotify.max_user_watches)).
seealso:
  - module: nodowntime.storage.lsyncd_info
"""

EXAMPLES = r"""
- name: Continuous sync of the media tree to the new server's rsync daemon
  nodowntime.storage.lsyncd_conf:
    name: media
    settings:
      logfile: /var/log/lsyncd/lsyncd.log
      status_file: /var/log/lsyncd/lsyncd.status
      status_interval: 1
      nodaemon: true
      insist: true
    source: /srv/media
    target: new::media
    delete: true
    exclude:
      - "*.tmp"
      - .cache/
    delay: 1
    rsync:
      archive: true
      compress: false
      whole_file: false
      password_file: /etc/lsyncd/media.secret
      extra:
        - --sockopts=TCP_NODELAY
  notify: Restart lsyncd

- name: Mirror over ssh, moves and deletes done remotely
  nodowntime.storage.lsyncd_conf:
    name: uploads
    sync_mode: rsyncssh
    source: /srv/uploads
    host: sync@new.example.org
    targetdir: /srv/uploads
    ssh:
      port: 2222
      identity_file: /root/.ssh/lsyncd_ed25519
      options:
        StrictHostKeyChecking: "yes"

- name: Only the settings block
  nodowntime.storage.lsyncd_conf:
    settings:
      status_file: /var/log/lsyncd/lsyncd.status
      status_interval: 5

- name: Stop syncing a tree
  nodowntime.storage.lsyncd_conf:
    name: media
    state: absent
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/lsyncd/lsyncd.conf.lua
syncs:
  description: Names of the managed sync blocks in the file after the task, in file order.
  returned: always
  type: list
  elements: str
  sample: [media, uploads]
backup_file:
  description: The backup copy of the previous file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/lsyncd/lsyncd.conf.lua.1234.2026-11-21@20:00:00~
diff:
  description: The file before and after, in diff mode.
  returned: diff mode
  type: dict
  contains:
    before:
      description: The previous text.
      type: str
    after:
      description: The new text.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils import _lsyncd_conf as lsyncd
from ansible_collections.nodowntime.storage.plugins.module_utils._lsyncd import (
    RSYNC_ARGSPEC,
    SETTINGS_ARGSPEC,
    SSH_ARGSPEC,
)


def argument_spec():
    return dict(
        path=dict(type="path", default="/etc/lsyncd/lsyncd.conf.lua"),
        name=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        settings=SETTINGS_ARGSPEC,
        sync_mode=dict(type="str", choices=["rsync", "rsyncssh", "direct"], default="rsync"),
        source=dict(type="str"),
        target=dict(type="str"),
        host=dict(type="str"),
        targetdir=dict(type="str"),
        delete=dict(type="raw"),
        exclude=dict(type="list", elements="str"),
        exclude_from=dict(type="str"),
        delay=dict(type="float"),
        max_delays=dict(type="int"),
        max_processes=dict(type="int"),
        init=dict(type="bool", default=True),
        rsync=RSYNC_ARGSPEC,
        ssh=SSH_ARGSPEC,
        backup=dict(type="bool", default=False),
        validate_lua=dict(type="bool", default=True),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, add_file_common_args=True,
                           required_one_of=[("name", "settings")])
    plan = lsyncd.plan_config(module)
    for warning in plan.warnings:
        module.warn(warning)
    result = dict(changed=plan.changed, path=plan.path, syncs=plan.syncs)
    if module._diff:
        result["diff"] = plan.diff()
    backup_file = lsyncd.execute(module, plan, module.check_mode, fail_extra=result)
    if backup_file:
        result["backup_file"] = backup_file
    if plan.exists or (plan.changed and not module.check_mode):
        file_args = module.load_file_common_arguments(module.params, path=plan.path)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
