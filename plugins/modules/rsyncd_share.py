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
      - C(present) adds the module or brings its parameters to the given values.
      - C(absent) removes every section of the module. Comments and blank lines after its last
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
      - rsync's C(read only). rsync's default is C(true); set C(false) to accept uploads.
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
  returned: success
  type: list
  elements: dict
"""

import grp
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsyncd_conf as conf
from ansible_collections.nodowntime.storage.plugins.module_utils._atomic_file import write_atomically

# Dedicated option -> (parameter as spelt in rsyncd.conf(5), kind).
DEDICATED = {
    "share_path": ("path", "str"),
    "comment": ("comment", "str"),
    "read_only": ("read only", "bool"),
    "write_only": ("write only", "bool"),
    "list": ("list", "bool"),
    "use_chroot": ("use chroot", "bool"),
    "uid": ("uid", "str"),
    "gid": ("gid", "str"),
    "hosts_allow": ("hosts allow", "list"),
    "hosts_deny": ("hosts deny", "list"),
    "auth_users": ("auth users", "list"),
    "secrets_file": ("secrets file", "str"),
    "max_connections": ("max connections", "int"),
    "timeout": ("timeout", "int"),
    "exclude": ("exclude", "words"),
    "refuse_options": ("refuse options", "words"),
    "incoming_chmod": ("incoming chmod", "str"),
    "dont_compress": ("dont compress", "words"),
}
_OPTION_FOR = dict((conf.canonical(p), o) for o, (p, _k) in DEDICATED.items())


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


def _check(module, option, value, checker, *args):
    try:
        checker(value, *args)
    except conf.ValueProblem as e:
        module.fail_json(msg="%s=%r %s." % (option, value, e))


def desired_parameters(module):
    """[(parameter, kind, value or None to remove)] from the options, validated."""
    p = module.params
    wanted = []
    for option, (param, kind) in DEDICATED.items():
        value = p[option]
        if value is None:
            continue
        if kind == "str":
            _check(module, option, value, conf.check_text)
        elif kind in ("list", "words"):
            seps = " \t," if kind == "list" else " \t"
            for item in value:
                _check(module, option, item, conf.check_item, seps)
            if not value:
                value = None  # an empty list removes the parameter
        elif kind == "int" and value < 0:
            module.fail_json(msg="%s=%r must be 0 or more." % (option, value))
        wanted.append((param, kind, value))
    for key, value in p["options"].items():
        param = conf.lookup_parameter(key)
        if param is None:
            if conf.is_global_parameter(key):
                module.fail_json(msg="options: %r is a global rsyncd.conf parameter, not a module parameter; "
                                     "this module manages one module section only." % key)
            module.fail_json(msg="options: %r is not a module parameter of rsyncd.conf(5). Known parameters: %s."
                             % (key, ", ".join(sorted(conf.MODULE_PARAMETERS))))
        if conf.canonical(param) in _OPTION_FOR:
            module.fail_json(msg="options: %r has its own option; use %s instead." % (key, _OPTION_FOR[conf.canonical(param)]))
        kind = conf.MODULE_PARAMETERS[param]
        if value is None:
            wanted.append((param, kind, None))
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                _check(module, "options[%r]" % key, to_text(item), conf.check_item, " \t")
            text = " ".join(to_text(v) for v in value)
        elif isinstance(value, str):
            text = value
        else:
            module.fail_json(msg="options[%r]=%r must be a string, number, boolean, list or null." % (key, value))
        _check(module, "options[%r]" % key, text, conf.check_text)
        if kind == "bool":
            b = conf.parse_bool(text)
            if b is None:
                module.fail_json(msg="options[%r]=%r is not a boolean rsync accepts (yes/no, true/false, 1/0)." % (key, value))
            wanted.append((param, kind, b))
        elif kind == "int":
            try:
                wanted.append((param, kind, int(text)))
            except ValueError:
                module.fail_json(msg="options[%r]=%r is not an integer." % (key, value))
        elif kind in ("list", "words"):
            wanted.append((param, kind, conf.split_list(text) if kind == "list" else conf.split_words(text)))
        else:
            wanted.append((param, "str", text))
    return wanted


def effective_settings(doc, name):
    """The module's settings (own, else inherited from the global context), typed."""
    if not doc.has_module(name):
        return {}
    merged = dict(doc.global_params())
    merged.update(doc.module_params(name))
    out = {"name": doc.header_name(name)}
    for key, text in sorted(merged.items()):
        param = conf.lookup_parameter(key)
        if param is None:
            continue  # global-only or unknown to us: not a setting of the module
        out[param.replace(" ", "_").replace("-", "_")] = conf.typed_value(conf.MODULE_PARAMETERS[param], text)
    return out


def _effective_bool(doc, name, param):
    text = doc.effective(name, param)
    if text is None:
        return conf.DEFAULTS[param]
    value = conf.parse_bool(text)
    return conf.DEFAULTS[param] if value is None else value


def check_safety(module, doc, name):
    writable = not _effective_bool(doc, name, "read only")
    hosts = conf.split_list(doc.effective(name, "hosts allow") or "")
    users = conf.split_list(doc.effective(name, "auth users") or "")
    if writable and not hosts and not users and not module.params["allow_open_write"]:
        module.fail_json(msg="refusing to make module %r writable (read_only=false) for every host (no hosts_allow) "
                             "without a login (no auth_users): anyone who can reach the daemon could write to it. "
                             "Set hosts_allow or auth_users, or allow_open_write=true if this is really wanted." % name)
    if users and not doc.effective(name, "secrets file"):
        module.fail_json(msg="auth_users=%r needs a secrets file (secrets_file), or no login can succeed." % users)


def _resolve(module, option, value, lookup):
    if value is None or "%" in value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return lookup(value)
    except KeyError:
        module.fail_json(msg="%s=%r does not exist on this host." % (option, value))


def check_share_path(module, doc, name):
    """Fail unless the module's directory exists (or create it); return True if it must be created."""
    p = module.params
    path = p["share_path"]
    if path is None:
        text = doc.effective(name, "path")
        if text is None:
            module.fail_json(msg="share_path is required to create module %r." % name)
        return False
    if not os.path.isabs(path):
        module.fail_json(msg="share_path=%r must be an absolute path." % path)
    if "%" in path:
        return False
    real = os.path.normpath(path)
    if os.path.isdir(real):
        return False
    if os.path.exists(real):
        module.fail_json(msg="share_path=%r exists but is not a directory." % path)
    if not p["create"]:
        module.fail_json(msg="share_path=%r does not exist; create it first or set create=true." % path)
    return True


def create_share_path(module, path):
    real = os.path.normpath(path)
    os.makedirs(real, mode=0o755)
    os.chmod(real, 0o755)
    uid = _resolve(module, "uid", module.params["uid"], lambda n: pwd.getpwnam(n).pw_uid)
    gid = _resolve(module, "gid", module.params["gid"], lambda n: grp.getgrnam(n).gr_gid)
    if uid is not None or gid is not None:
        os.chown(real, -1 if uid is None else uid, -1 if gid is None else gid)


class DaemonCheck:
    """Let the installed rsync daemon read a config file and list its modules."""

    def __init__(self, module):
        self.module = module
        self.rsync = module.get_bin_path("rsync", required=True)

    def run(self, config_file):
        """(rc, module names, complaints) for ``config_file``."""
        fd, log = tempfile.mkstemp(prefix="rsyncd-check.", suffix=".log", dir=self.module.tmpdir)
        os.close(fd)
        try:
            prog = "%s --daemon --config=%s --log-file=%s" % (
                shlex.quote(self.rsync), shlex.quote(config_file), shlex.quote(log))
            # rsync substitutes %H in the connect program with the host name: escape our %.
            prog = prog.replace("%", "%%")
            rc, out, err = self.module.run_command(
                [self.rsync, "--contimeout=30", "--timeout=30", "rsync://localhost/"],
                environ_update={"RSYNC_CONNECT_PROG": prog})
            with open(log, errors="replace") as f:
                complaints = conf.daemon_complaints(f.read())
            if rc != 0 and err.strip():
                complaints.append(err.strip())
            return rc, conf.parse_listing(out), complaints
        finally:
            os.unlink(log)


def validate_candidate(module, current_path, candidate_path, name, state, doc):
    """Message saying why the daemon would not accept the candidate, or None."""
    checker = DaemonCheck(module)
    before = []
    if current_path is not None and os.path.exists(current_path):
        before = checker.run(current_path)[2]
    rc, names, complaints = checker.run(candidate_path)
    new = [c for c in complaints if c not in before]
    if rc != 0:
        return "the rsync daemon cannot use the new configuration (exit %d): %s" % (rc, "; ".join(complaints) or "no message")
    if new:
        return "the rsync daemon complains about the new configuration: %s" % "; ".join(new)
    listed = [n.lower() for n in names]
    if state == "present" and _effective_bool(doc, name, "list") and conf.module_key(name) not in listed:
        return "the rsync daemon does not list module %r from the new configuration (it lists: %s)" % (name, ", ".join(names))
    if state == "absent" and conf.module_key(name) in listed:
        return "the rsync daemon still lists module %r from the new configuration" % name
    return None


def plan_secrets(module):
    """(current text, new text, changed users) for the secrets file, or None if not managed."""
    p = module.params
    secrets = p["secrets"]
    if secrets is None or p["state"] != "present":
        return None
    if not p["secrets_file"]:
        module.fail_json(msg="secrets needs secrets_file, the file to write them to.")
    if not os.path.isabs(p["secrets_file"]):
        module.fail_json(msg="secrets_file=%r must be an absolute path." % p["secrets_file"])
    clean = {}
    for user, password in secrets.items():
        user = to_text(user)
        try:
            conf.check_secret_user(user)
        except conf.ValueProblem as e:
            module.fail_json(msg="secrets: user name %r %s." % (user, e))
        if password is None:
            module.fail_json(msg="secrets: the password of user %r is empty." % user)
        password = to_text(password)
        try:
            conf.check_secret_password(password)
        except conf.ValueProblem as e:
            module.fail_json(msg="secrets: the password of user %r %s." % (user, e))
        clean[user] = password
    current = ""
    if os.path.exists(p["secrets_file"]):
        with open(p["secrets_file"], "rb") as f:
            current = f.read().decode("utf-8", "surrogateescape")
    new, changed = conf.update_secrets(current, clean)
    return current, new, changed


def secrets_mode_wrong(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return (st.st_mode & 0o7777) != 0o600 or st.st_uid != os.geteuid()


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    name = p["name"]
    state = p["state"]
    path = p["config_path"]

    _check(module, "name", name, conf.check_module_name)
    if p["secrets_file"] is not None and not os.path.isabs(p["secrets_file"]):
        module.fail_json(msg="secrets_file=%r must be an absolute path." % p["secrets_file"])
    wanted = desired_parameters(module) if state == "present" else []

    if os.path.isdir(path):
        module.fail_json(msg="config_path=%r is a directory; give the configuration file." % path)
    exists = os.path.exists(path)
    before = ""
    if exists:
        with open(path, "rb") as f:
            before = f.read().decode("utf-8", "surrogateescape")
    doc = conf.parse(before)

    changed_parameters = []
    create_dir = False
    if state == "present":
        if not doc.has_module(name):
            if p["share_path"] is None:
                module.fail_json(msg="share_path is required to create module %r." % name)
            doc.add_module(name)
            changed_parameters.append("[%s]" % name)
        for param, kind, value in wanted:
            if value is None:
                if doc.remove_param(name, param):
                    changed_parameters.append(param)
            elif doc.set_param(name, param, kind, value):
                changed_parameters.append(param)
        check_safety(module, doc, name)
        create_dir = check_share_path(module, doc, name)
        # uid/gid must exist where the daemon will switch to them.
        _resolve(module, "uid", p["uid"], lambda n: pwd.getpwnam(n).pw_uid)
        _resolve(module, "gid", p["gid"], lambda n: grp.getgrnam(n).gr_gid)
    else:
        if doc.remove_module(name):
            changed_parameters.append("[%s]" % name)
    after = doc.render()
    config_changed = after != before

    secrets_plan = plan_secrets(module)
    secrets_changed = False
    changed_users = []
    if secrets_plan is not None:
        changed_users = secrets_plan[2]
        secrets_changed = secrets_plan[0] != secrets_plan[1] or secrets_mode_wrong(p["secrets_file"])

    result = dict(
        changed=config_changed or secrets_changed or create_dir,
        share=effective_settings(doc, name) if state == "present" else {},
        changed_parameters=changed_parameters,
        secrets_changed_users=changed_users,
    )
    diffs = [dict(before=before, after=after, before_header=path, after_header=path)]
    if secrets_plan is not None:
        sf = p["secrets_file"]
        diffs.append(dict(before=conf.redact_secrets(secrets_plan[0]),
                          after=conf.redact_secrets(secrets_plan[1], changed_users),
                          before_header="%s (passwords hidden)" % sf, after_header="%s (passwords hidden)" % sf))
    result["diff"] = diffs

    if config_changed:
        # The daemon proves the candidate in check mode too: a task that would fail for real
        # fails in check mode as well. The candidate lives beside the live file so relative
        # &include paths resolve the same way; in check mode it goes to a private directory.
        def validate(candidate):
            return validate_candidate(module, path if exists else None, candidate, name, state, doc)

        if module.check_mode:
            fd, candidate = tempfile.mkstemp(prefix="rsyncd.", suffix=".conf", dir=module.tmpdir)
            try:
                os.write(fd, after.encode("utf-8", "surrogateescape"))
                os.close(fd)
                problem = validate(candidate)
                if problem:
                    module.fail_json(msg="refusing to replace %s: %s" % (path, problem), path=path, **result)
            finally:
                os.unlink(candidate)

    if module.check_mode:
        module.exit_json(**result)

    if create_dir:
        create_share_path(module, p["share_path"])
    if secrets_changed:
        write_atomically(module, p["secrets_file"], secrets_plan[1], mode=0o600)
        os.chown(p["secrets_file"], os.geteuid(), os.getegid())
    if config_changed:
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            module.fail_json(msg="config_path=%r: directory %r does not exist." % (path, parent))
        backup_file = write_atomically(module, path, after, validate=validate, backup=p["backup"],
                                       mode=None if exists else 0o644)
        if backup_file:
            result["backup_file"] = backup_file
    module.exit_json(**result)


if __name__ == "__main__":
    main()
