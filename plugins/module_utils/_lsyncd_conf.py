# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan and apply an lsyncd configuration change for nodowntime.storage.lsyncd_conf.

:func:`plan_config` checks the options, reads the file and computes the new text once;
:func:`execute` writes it through the same staged candidate in check mode and in a real run
(the Lua parser checks the candidate both times; only a real run renames it into place).
"""
from __future__ import annotations

import os

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils._atomic_file import read_text, write_atomically
from ansible_collections.nodowntime.storage.plugins.module_utils._lsyncd import (
    ConfigFileError,
    LsyncdConfigError,
    apply_changes,
    check_combination,
    check_settings,
    check_sync,
    managed_syncs,
    render_settings_block,
    render_sync_block,
    unmanaged_settings_lines,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._lua import LuaRenderError

LUAC = ("luac5.3", "luac5.4", "luac")
LUA = ("lua5.3", "lua5.4", "lua")
_LOADFILE = 'local f, err = loadfile(arg[1], "t") if not f then io.stderr:write(err, "\\n") os.exit(1) end\n'

SYNC_OPTIONS = ("sync_mode", "source", "target", "host", "targetdir", "delete", "exclude", "exclude_from",
                "delay", "max_delays", "max_processes", "init", "rsync", "ssh")


def find_lua(module):
    """``(kind, binary)`` of the Lua parser to use, or None."""
    for kind, names in (("luac", LUAC), ("lua", LUA)):
        for name in names:
            found = module.get_bin_path(name)
            if found:
                return kind, found
    return None


def lua_checker(module, parser, shown_path):
    """A ``validate(candidate)`` callable returning an error message or None."""
    kind, binary = parser

    def validate(candidate):
        if kind == "luac":
            rc, out, err = module.run_command([binary, "-p", candidate])
        else:
            rc, out, err = module.run_command([binary, "-", candidate], data=_LOADFILE, binary_data=True)
        if rc != 0:
            text = (err or out or "").strip().replace(candidate, shown_path + " (candidate)")
            return "%s found a Lua syntax error: %s" % (os.path.basename(binary), text)
        return None

    return validate


class ConfigPlan:
    """What one run decides: the texts before and after, and how to check the candidate."""

    def __init__(self, path, exists, before, after, syncs, warnings):
        self.path = path
        self.exists = exists
        self.before = before
        self.after = after
        self.syncs = syncs
        self.warnings = warnings
        self.validate = None
        # "absent" on a missing file creates no empty file
        self.changed = after != before and (exists or after != "")
        parent = os.path.dirname(path)
        self.create_parent = parent if self.changed and parent and not os.path.isdir(parent) else None
        # What a real run does, in order (check mode goes through the same list).
        self.actions = []
        if self.create_parent:
            self.actions.append("create directory %s" % self.create_parent)
        if self.changed:
            self.actions.append("write configuration file %s" % path)

    def diff(self):
        return dict(before=self.before, after=self.after,
                    before_header=self.path if self.exists else "/dev/null", after_header=self.path)


def plan_config(module):
    """Check the options, read the file and compute the :class:`ConfigPlan`."""
    p = module.params
    path = p["path"]
    name = p["name"]
    state = p["state"]

    if name == "":
        module.fail_json(msg="name: must not be empty", option="name")
    try:
        check_settings(p["settings"])
        sync_params = None
        if state == "present" and name is not None:
            sync_params = dict((k, p[k]) for k in SYNC_OPTIONS)
            sync_params["mode"] = sync_params.pop("sync_mode")
            sync_params = check_sync(sync_params)
            check_combination(p["settings"], sync_params)
        settings_block = render_settings_block(p["settings"]) if p["settings"] is not None else None
        sync_block = render_sync_block(name, sync_params) if sync_params is not None else None
    except LsyncdConfigError as e:
        module.fail_json(msg=to_native(e), option=e.option)
    except LuaRenderError as e:
        module.fail_json(msg="cannot write a value as Lua: %s" % to_native(e))

    if os.path.isdir(path):
        module.fail_json(msg="path: %s is a directory, expected the lsyncd configuration file" % path, path=path)
    current = read_text(path)
    before = current or ""
    warnings = []
    try:
        # without a name only the settings block is managed ("absent" of no block changes nothing)
        after = apply_changes(before, name, state if name is not None else "absent",
                              sync_block=sync_block, settings_block=settings_block)
        syncs = managed_syncs(after)
        if settings_block is not None:
            for line in unmanaged_settings_lines(after):
                warnings.append("%s line %d: a settings call outside the managed block; lsyncd applies "
                                "both, the later one wins" % (path, line))
    except ConfigFileError as e:
        module.fail_json(msg="%s: %s; fix or remove the nodowntime.storage markers by hand" % (path, to_native(e)), path=path)
    plan = ConfigPlan(path, current is not None, before, after, syncs, warnings)

    if plan.changed and p["validate_lua"]:
        parser = find_lua(module)
        if parser is None:
            module.fail_json(
                msg="validate_lua: no Lua parser on this host (looked for %s); install lua5.4 or lua5.3, "
                    "or set validate_lua=false to skip the syntax check" % ", ".join(LUAC + LUA),
                changed=plan.changed, path=path, syncs=syncs)
        plan.validate = lua_checker(module, parser, path)
    return plan


def execute(module, plan, check_mode, fail_extra=None):
    """Carry out ``plan``; return the backup file name or None.

    The candidate is staged and checked by the Lua parser in check mode too; only a real run
    creates the parent directory and renames the candidate into place. The file's mode, owner
    and group are those asked for, else the existing file's (a new file is 0600).
    """
    if not plan.changed:
        return None
    p = module.params
    if plan.create_parent and not check_mode:
        os.makedirs(plan.create_parent, 0o755)
    return write_atomically(module, plan.path, plan.after, validate=plan.validate, backup=p["backup"],
                            mode=p["mode"], owner=p["owner"], group=p["group"],
                            check_mode=check_mode, fail_extra=fail_extra, option="path")
