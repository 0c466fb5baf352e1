# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan and apply one rsync daemon module (share) for nodowntime.storage.rsyncd_share.

:func:`plan_share` reads the configuration (and secrets) file, checks the options and computes
everything once: the new texts, the changed parameters, the effective settings and the list of
actions. :func:`execute` runs that plan; in check mode it goes through the same actions and
stops before anything on the host changes (the rsync daemon still proves the candidate).
"""
from __future__ import annotations

import grp
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsyncd_conf as conf
from ansible_collections.nodowntime.storage.plugins.module_utils._atomic_file import (
    StagedFile,
    ValidationError,
    read_text,
)

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
OPTION_FOR = dict((conf.canonical(p), o) for o, (p, _k) in DEDICATED.items())


def _check(module, option, value, checker, *args):
    try:
        checker(value, *args)
    except conf.ValueProblem as e:
        module.fail_json(msg="%s=%r %s." % (option, value, e))


def _option_value(module, key, value, kind):
    """A value of O(options) as rsync reads it, typed by ``kind``."""
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
        return b
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            module.fail_json(msg="options[%r]=%r is not an integer." % (key, value))
    if kind == "list":
        return conf.split_list(text)
    if kind == "words":
        return conf.split_words(text)
    return text


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
        if conf.canonical(param) in OPTION_FOR:
            module.fail_json(msg="options: %r has its own option; use %s instead." % (key, OPTION_FOR[conf.canonical(param)]))
        kind = conf.MODULE_PARAMETERS[param]
        if value is None:
            wanted.append((param, kind, None))
        else:
            wanted.append((param, "str" if kind not in ("bool", "int", "list", "words") else kind,
                           _option_value(module, key, value, kind)))
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


def effective_bool(doc, name, param):
    text = doc.effective(name, param)
    if text is None:
        return conf.DEFAULTS[param]
    value = conf.parse_bool(text)
    return conf.DEFAULTS[param] if value is None else value


def check_safety(module, doc, name):
    writable = not effective_bool(doc, name, "read only")
    hosts = conf.split_list(doc.effective(name, "hosts allow") or "")
    users = conf.split_list(doc.effective(name, "auth users") or "")
    if writable and not hosts and not users and not module.params["allow_open_write"]:
        module.fail_json(msg="refusing to make module %r writable (read_only=false) for every host (no hosts_allow) "
                             "without a login (no auth_users): anyone who can reach the daemon could write to it. "
                             "Set hosts_allow or auth_users, or allow_open_write=true if this is really wanted." % name)
    if users and not doc.effective(name, "secrets file"):
        module.fail_json(msg="auth_users=%r needs a secrets file (secrets_file), or no login can succeed." % users)


def resolve_id(module, option, value, lookup):
    """Numeric id of a user/group name (None for unset or %VAR% values); fail if unknown."""
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


def _uid(name):
    return pwd.getpwnam(name).pw_uid


def _gid(name):
    return grp.getgrnam(name).gr_gid


def check_share_path(module, doc, name):
    """Fail unless the module's directory exists (or may be created); True if it must be created."""
    p = module.params
    path = p["share_path"]
    if path is None:
        if doc.effective(name, "path") is None:
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
            with open(log, errors="replace") as f:  # a log: readable text is all that matters
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
    if state == "present" and effective_bool(doc, name, "list") and conf.module_key(name) not in listed:
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
    current = read_text(p["secrets_file"]) or ""
    new, changed = conf.update_secrets(current, clean)
    return current, new, changed


def secrets_mode_wrong(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return (st.st_mode & 0o7777) != 0o600 or st.st_uid != os.geteuid()


class SharePlan:
    """Everything one run of the module decides, computed once."""

    def __init__(self, path):
        self.path = path
        self.exists = False
        self.before = ""
        self.after = ""
        self.doc = None
        self.changed_parameters = []
        self.share = {}
        self.create_dir = None       # directory to create, or None
        self.secrets_path = None     # managed secrets file, or None
        self.secrets_file = None     # secrets file to write, or None
        self.secrets_before = None
        self.secrets_after = None
        self.secrets_users = []
        self.validate = None         # validate(candidate) for the configuration file

    @property
    def config_changed(self):
        return self.after != self.before

    @property
    def actions(self):
        """What a real run does, in order (check mode reports the same list)."""
        out = []
        if self.create_dir:
            out.append("create directory %s" % self.create_dir)
        if self.secrets_file:
            out.append("write secrets file %s" % self.secrets_file)
        if self.config_changed:
            out.append("write configuration file %s" % self.path)
        return out

    @property
    def changed(self):
        return bool(self.actions)

    def diff(self):
        diffs = [dict(before=self.before, after=self.after, before_header=self.path, after_header=self.path)]
        if self.secrets_after is not None:
            header = "%s (passwords hidden)" % self.secrets_path
            diffs.append(dict(before=conf.redact_secrets(self.secrets_before),
                              after=conf.redact_secrets(self.secrets_after, self.secrets_users),
                              before_header=header, after_header=header))
        return diffs


def plan_share(module):
    """Read the files and compute the :class:`SharePlan` for ``module.params``."""
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
    plan = SharePlan(path)
    current = read_text(path)
    plan.exists = current is not None
    plan.before = current or ""
    doc = plan.doc = conf.parse(plan.before)

    if state == "present":
        if not doc.has_module(name):
            if p["share_path"] is None:
                module.fail_json(msg="share_path is required to create module %r." % name)
            doc.add_module(name)
            plan.changed_parameters.append("[%s]" % name)
        for param, kind, value in wanted:
            if value is None:
                if doc.remove_param(name, param):
                    plan.changed_parameters.append(param)
            elif doc.set_param(name, param, kind, value):
                plan.changed_parameters.append(param)
        check_safety(module, doc, name)
        if check_share_path(module, doc, name):
            plan.create_dir = os.path.normpath(p["share_path"])
        # uid/gid must exist where the daemon will switch to them.
        resolve_id(module, "uid", p["uid"], _uid)
        resolve_id(module, "gid", p["gid"], _gid)
        plan.share = effective_settings(doc, name)
    elif doc.remove_module(name):
        plan.changed_parameters.append("[%s]" % name)
    plan.after = doc.render()

    secrets = plan_secrets(module)
    if secrets is not None:
        plan.secrets_path = p["secrets_file"]
        plan.secrets_before, plan.secrets_after, plan.secrets_users = secrets
        if plan.secrets_before != plan.secrets_after or secrets_mode_wrong(p["secrets_file"]):
            plan.secrets_file = p["secrets_file"]

    if plan.config_changed:
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            module.fail_json(msg="config_path=%r: directory %r does not exist." % (path, parent))
        current_path = path if plan.exists else None

        def validate(candidate):
            return validate_candidate(module, current_path, candidate, name, state, doc)

        plan.validate = validate
    return plan


def create_share_path(module, real):
    os.makedirs(real, mode=0o755)
    os.chmod(real, 0o755)
    uid = resolve_id(module, "uid", module.params["uid"], _uid)
    gid = resolve_id(module, "gid", module.params["gid"], _gid)
    if uid is not None or gid is not None:
        os.chown(real, -1 if uid is None else uid, -1 if gid is None else gid)


def execute(module, plan, check_mode, fail_extra=None):
    """Carry out ``plan``; return the backup file name or None.

    The candidate configuration is staged and proven by the rsync daemon first, in check mode
    too (a task that would fail for real fails in check mode as well), so a refused candidate
    changes nothing at all. Then, in a real run only: the directory, the secrets file (0600 and
    owned by the module's user before its new content lands), the configuration file.
    """
    staged = None
    try:
        if plan.config_changed:
            try:
                staged = StagedFile(module, plan.path, plan.after, validate=plan.validate, scratch=check_mode)
            except ValidationError as e:
                extra = dict(fail_extra or {}, path=plan.path)
                module.fail_json(msg="config_path=%s: refusing to replace it: %s" % (plan.path, e), **extra)
        if check_mode:
            return None
        if plan.create_dir:
            create_share_path(module, plan.create_dir)
        if plan.secrets_file:
            secrets = StagedFile(module, plan.secrets_file, plan.secrets_after)
            try:
                secrets.commit(mode=0o600, owner=str(os.geteuid()), group=str(os.getegid()))
            finally:
                secrets.discard()
        if staged is not None:
            return staged.commit(backup=module.params["backup"], mode=None if plan.exists else 0o644)
        return None
    finally:
        if staged is not None:
            staged.discard()
