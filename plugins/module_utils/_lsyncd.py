# SPDX-License-Identifier: GPL-3.0-or-later
"""lsyncd configuration rendering, managed-block editing and status/log parsing.

Pure functions (no Ansible import) shared by ``lsyncd_conf`` and ``lsyncd_info``:

* ``*_ARGSPEC`` describe the typed options; ``check_sync``/``check_settings`` reject what
  lsyncd 2.2.3 would refuse or silently misread, naming the option;
* ``render_sync_block``/``render_settings_block`` write Lua through ``_lua`` so every string
  reaches lsyncd exactly as given;
* ``find_blocks``/``apply_changes`` find the blocks this collection manages by their marker
  comments and leave every other byte of the file alone;
* ``parse_status``/``parse_log`` read lsyncd's status file and log.

Option names are checked against lsyncd 2.2.3's own ``checkgauge`` tables (settings,
default.rsync, default.rsyncssh, default.direct).
"""
from __future__ import annotations

import math
import os
import re

from ansible_collections.nodowntime.storage.plugins.module_utils._lua import (
    LuaRenderError,
    decode_string,
    encode_key,
    encode_string,
    encode_value,
)

MARKER_TAG = "nodowntime.storage"
SETTINGS_BEGIN = "-- BEGIN %s settings" % MARKER_TAG
SETTINGS_END = "-- END %s settings" % MARKER_TAG
MANAGED_NOTE = "-- Managed by nodowntime.storage.lsyncd_conf: edits inside this block are overwritten."
_SYNC_MARKER = re.compile(r'^-- (BEGIN|END) nodowntime\.storage sync ("(?:[^"\\\n]|\\.)*")$')
_SETTINGS_MARKER = re.compile(r"^-- (BEGIN|END) nodowntime\.storage settings$")
_ANY_MARKER = re.compile(r"^-- (BEGIN|END) nodowntime\.storage\b")
_UNMANAGED_SETTINGS = re.compile(r"^\s*settings\s*(\{|\(|=)")

MODES = {"rsync": "default.rsync", "rsyncssh": "default.rsyncssh", "direct": "default.direct"}

# (option, lsyncd name, kind); kinds: str, path (a str, never expanded: it reaches lsyncd as given), bool, int0 (>= 0),
# int1 (>= 1), float0 (a number >= 0, fractions allowed), choice.
SETTINGS_OPTIONS = (
    ("logfile", "logfile", "path"),
    ("status_file", "statusFile", "path"),
    ("status_interval", "statusInterval", "float0"),
    ("nodaemon", "nodaemon", "bool"),
    ("insist", "insist", "bool"),
    ("max_processes", "maxProcesses", "int1"),
    ("max_delays", "maxDelays", "int1"),
    ("inotify_mode", "inotifyMode", "choice"),
    ("pidfile", "pidfile", "path"),
    ("log_facility", "logfacility", "str"),
    ("log_ident", "logident", "str"),
)
INOTIFY_MODES = ("CloseWrite", "Modify", "CloseWrite or Modify")

RSYNC_OPTIONS = (
    ("binary", "binary", "path"),
    ("archive", "archive", "bool"),
    ("links", "links", "bool"),
    ("copy_links", "copy_links", "bool"),
    ("hard_links", "hard_links", "bool"),
    ("perms", "perms", "bool"),
    ("owner", "owner", "bool"),
    ("group", "group", "bool"),
    ("times", "times", "bool"),
    ("acls", "acls", "bool"),
    ("xattrs", "xattrs", "bool"),
    ("sparse", "sparse", "bool"),
    ("inplace", "inplace", "bool"),
    ("whole_file", "whole_file", "bool"),
    ("checksum", "checksum", "bool"),
    ("compress", "compress", "bool"),
    ("one_file_system", "one_file_system", "bool"),
    ("protect_args", "protect_args", "bool"),
    ("verbose", "verbose", "bool"),
    ("bwlimit", "bwlimit", "int0"),
    ("timeout", "timeout", "int0"),
    ("password_file", "password_file", "path"),
    ("chown", "chown", "str"),
    ("chmod", "chmod", "str"),
    ("rsh", "rsh", "str"),
    ("rsync_path", "rsync_path", "str"),
    ("temp_dir", "temp_dir", "path"),
    ("extra", "_extra", "list"),
)
SSH_OPTIONS = (
    ("binary", "binary", "path"),
    ("port", "port", "port"),
    ("identity_file", "identityFile", "path"),
    ("options", "options", "dict"),
    ("extra", "_extra", "list"),
)

_SPEC_TYPES = {"str": "str", "path": "str", "bool": "bool", "int0": "int", "int1": "int", "float0": "float",
               "choice": "str", "port": "int", "list": "list", "dict": "dict"}


def _suboptions(table):
    spec = {}
    for option, _lua_name, kind in table:
        entry = dict(type=_SPEC_TYPES[kind])
        if kind == "list":
            entry["elements"] = "str"
        if option == "inotify_mode":
            entry["choices"] = list(INOTIFY_MODES)
        if option == "extra":
            entry["aliases"] = ["_extra"]
        spec[option] = entry
    return spec


SETTINGS_ARGSPEC = dict(type="dict", options=_suboptions(SETTINGS_OPTIONS))
RSYNC_ARGSPEC = dict(type="dict", options=_suboptions(RSYNC_OPTIONS))
SSH_ARGSPEC = dict(type="dict", options=_suboptions(SSH_OPTIONS))

_BOOL_TRUE = ("true", "yes", "on", "1")
_BOOL_FALSE = ("false", "no", "off", "0")
DELETE_CHOICES = (True, False, "startup", "running")


class LsyncdConfigError(ValueError):
    """A value lsyncd would refuse or misread. ``option`` names it."""

    def __init__(self, option, message):
        super().__init__("%s: %s" % (option, message))
        self.option = option


class ConfigFileError(ValueError):
    """The config file's marker comments are inconsistent; refuse to guess."""


# ---------------------------------------------------------------- checking


def _no_nul(option, value):
    if isinstance(value, str) and "\x00" in value:
        raise LsyncdConfigError(option, "contains a NUL byte, which no path or argument can carry: %r" % value)


def _check_absolute(option, value):
    _no_nul(option, value)
    if not value.startswith("/"):
        raise LsyncdConfigError(option, "must be an absolute path, got %r" % value)


_HOST = r"(?:\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
_USER = r"(?:[^@:/\s\x00-\x1f\x7f]+@)?"
_DAEMON_TARGET = re.compile(r"^%s%s::[^/:\x00-\x1f\x7f][^/\x00-\x1f\x7f]*(?:/.*)?$" % (_USER, _HOST), re.DOTALL)
_URL_TARGET = re.compile(r"^rsync://%s%s(?::[0-9]{1,5})?/[^/\x00-\x1f\x7f]+(?:/.*)?$" % (_USER, _HOST), re.DOTALL)
_SHELL_TARGET = re.compile(r"^%s%s:(?!:).+$" % (_USER, _HOST), re.DOTALL)
_SSH_HOST = re.compile(r"^%s%s$" % (_USER, _HOST))
_SSH_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def check_target(mode, target):
    """Raise LsyncdConfigError unless ``target`` is a target ``mode`` accepts."""
    _no_nul("target", target)
    if mode == "direct":
        if not target.startswith("/"):
            raise LsyncdConfigError("target", "sync_mode=direct copies locally, target must be an absolute directory, got %r" % target)
        return
    if target.startswith("/"):
        return
    if _DAEMON_TARGET.match(target) or _URL_TARGET.match(target) or _SHELL_TARGET.match(target):
        return
    raise LsyncdConfigError(
        "target",
        "%r is not a valid rsync target; use host::module[/dir] (rsync daemon), "
        "rsync://host[:port]/module[/dir], [user@]host:/dir (remote shell) or an absolute /dir" % target)


def normalize_delete(value):
    """lsyncd's ``delete``: true, false, 'startup' or 'running' (YAML booleans accepted)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("startup", "running"):
            return low
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise LsyncdConfigError("delete", "must be true, false, 'startup' or 'running', got %r" % (value,))


def _check_number(option, value, minimum=0):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LsyncdConfigError(option, "must be a number, got %r" % (value,))
    if isinstance(value, float) and not math.isfinite(value):
        raise LsyncdConfigError(option, "must be a finite number, got %r" % (value,))
    if value < minimum:
        raise LsyncdConfigError(option, "must be >= %s, got %r" % (minimum, value))


def _check_table(prefix, table, values):
    for option, _lua_name, kind in table:
        value = values.get(option)
        name = "%s.%s" % (prefix, option)
        if value is None:
            continue
        if kind in ("str", "path"):
            _no_nul(name, value)
            if kind == "path" and not value:
                raise LsyncdConfigError(name, "must not be empty")
        elif kind in ("int0", "float0"):
            _check_number(name, value, 0)
        elif kind == "int1":
            _check_number(name, value, 1)
        elif kind == "port":
            if not 1 <= value <= 65535:
                raise LsyncdConfigError(name, "must be a TCP port 1-65535, got %r" % value)
        elif kind == "list":
            for item in value:
                if not isinstance(item, str) or item == "":
                    raise LsyncdConfigError(name, "items must be non-empty strings, got %r" % (item,))
                _no_nul(name, item)
        elif kind == "dict":
            for key, item in value.items():
                if not _SSH_OPTION_KEY.match(str(key)):
                    raise LsyncdConfigError(name, "key %r is not an ssh option name (letters and digits)" % (key,))
                if not isinstance(item, (str, int)) or isinstance(item, bool):
                    raise LsyncdConfigError(name, "value of %r must be a string or number, got %r" % (key, item))
                _no_nul(name, str(item))
                if "\n" in str(item) or "\r" in str(item):
                    raise LsyncdConfigError(name, "value of %r must be one line, got %r" % (key, item))


def check_settings(settings):
    """Validate the ``settings`` dict (None means: leave the settings block alone)."""
    if settings is None:
        return
    _check_table("settings", SETTINGS_OPTIONS, settings)
    if settings.get("inotify_mode") is not None and settings["inotify_mode"] not in INOTIFY_MODES:
        raise LsyncdConfigError("settings.inotify_mode", "must be one of %s" % ", ".join(INOTIFY_MODES))


def check_sync(params):
    """Validate a sync's options (a dict shaped like the module params); returns a normalized copy.

    Raises LsyncdConfigError naming the first offending option.
    """
    p = dict(params)
    mode = p.get("mode") or "rsync"
    if mode not in MODES:
        raise LsyncdConfigError("sync_mode", "must be one of %s, got %r" % (", ".join(MODES), mode))
    p["mode"] = mode
    if not p.get("source"):
        raise LsyncdConfigError("source", "is required with state=present")
    _check_absolute("source", p["source"])
    if mode == "rsyncssh":
        for option in ("host", "targetdir"):
            if not p.get(option):
                raise LsyncdConfigError(option, "is required with sync_mode=rsyncssh")
        if p.get("target"):
            raise LsyncdConfigError("target", "is not used with sync_mode=rsyncssh; set host and targetdir")
        if not _SSH_HOST.match(p["host"]):
            raise LsyncdConfigError("host", "%r is not [user@]hostname or [user@][ipv6]" % p["host"])
        _no_nul("targetdir", p["targetdir"])
    else:
        for option in ("host", "targetdir", "ssh"):
            if p.get(option):
                raise LsyncdConfigError(option, "is only used with sync_mode=rsyncssh (sync_mode is %s)" % mode)
        if not p.get("target"):
            raise LsyncdConfigError("target", "is required with sync_mode=%s" % mode)
        check_target(mode, p["target"])
    p["delete"] = normalize_delete(p.get("delete"))
    for item in p.get("exclude") or []:
        if not isinstance(item, str) or item.strip() == "":
            raise LsyncdConfigError("exclude", "patterns must be non-empty strings, got %r" % (item,))
        _no_nul("exclude", item)
        if "\n" in item or "\r" in item:
            # lsyncd hands excludes to rsync as one pattern per line: a newline would split it.
            raise LsyncdConfigError("exclude", "a pattern cannot contain a line break (lsyncd passes one pattern per line): %r" % item)
    if p.get("exclude_from") is not None:
        _check_absolute("exclude_from", p["exclude_from"])
    _check_number("delay", p.get("delay"), 0)
    _check_number("max_delays", p.get("max_delays"), 1)
    _check_number("max_processes", p.get("max_processes"), 1)
    if mode == "rsyncssh" and p.get("max_processes") not in (None, 1):
        raise LsyncdConfigError("max_processes", "lsyncd requires 1 with sync_mode=rsyncssh, got %r" % p["max_processes"])
    if p.get("rsync") is not None:
        _check_table("rsync", RSYNC_OPTIONS, p["rsync"])
    if p.get("ssh") is not None:
        _check_table("ssh", SSH_OPTIONS, p["ssh"])
    return p


def check_combination(settings, params):
    """Cross-checks between the settings block and a sync given in the same task."""
    if settings and params and params.get("mode") == "rsyncssh" and settings.get("max_processes") not in (None, 1):
        # lsyncd 2.2.3 applies settings.maxProcesses to every sync and default.rsyncssh refuses > 1.
        raise LsyncdConfigError("settings.max_processes",
                                "lsyncd refuses a sync_mode=rsyncssh sync unless this is 1 (or unset), got %r"
                                % settings["max_processes"])


# ---------------------------------------------------------------- rendering


def sync_begin(name):
    return "-- BEGIN %s sync %s" % (MARKER_TAG, encode_string(name))


def sync_end(name):
    return "-- END %s sync %s" % (MARKER_TAG, encode_string(name))


def _table_values(table, values):
    out = {}
    for option, lua_name, _kind in table:
        value = (values or {}).get(option)
        if value is None:
            continue
        if option == "options":
            value = dict((str(k), str(v)) for k, v in value.items())
        out[lua_name] = value
    return out


def _field(key, value, indent="    "):
    return "%s%s = %s," % (indent, encode_key(key), encode_value(value, indent))


def render_sync_block(name, params):
    """The complete managed block (markers included) for one sync, ending in a newline.

    ``params`` must have been through ``check_sync``.
    """
    p = params
    lines = [sync_begin(name), MANAGED_NOTE, "sync {", "    %s," % MODES[p["mode"]]]
    lines.append(_field("source", p["source"]))
    if p["mode"] == "rsyncssh":
        lines.append(_field("host", p["host"]))
        lines.append(_field("targetdir", p["targetdir"]))
    else:
        lines.append(_field("target", p["target"]))
    if p.get("delete") is not None:
        lines.append(_field("delete", p["delete"]))
    if p.get("exclude"):
        lines.append(_field("exclude", list(p["exclude"])))
    if p.get("exclude_from") is not None:
        lines.append(_field("excludeFrom", p["exclude_from"]))
    for option, lua_name in (("delay", "delay"), ("max_delays", "maxDelays"), ("max_processes", "maxProcesses")):
        if p.get(option) is not None:
            lines.append(_field(lua_name, p[option]))
    if p.get("init") is False:
        # lsyncd's init is the startup-sync function; false skips it, true keeps the default.
        lines.append(_field("init", False))
    rsync = _table_values(RSYNC_OPTIONS, p.get("rsync"))
    if rsync:
        lines.append(_field("rsync", rsync))
    ssh = _table_values(SSH_OPTIONS, p.get("ssh"))
    if ssh:
        lines.append(_field("ssh", ssh))
    lines.append("}")
    lines.append(sync_end(name))
    return "\n".join(lines) + "\n"


def render_settings_block(settings):
    """The managed ``settings {}`` block (markers included), ending in a newline."""
    values = _table_values(SETTINGS_OPTIONS, settings)
    lines = [SETTINGS_BEGIN, MANAGED_NOTE, "settings {"]
    for key, value in values.items():
        lines.append(_field(key, value))
    lines.append("}")
    lines.append(SETTINGS_END)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the file


def split_lines(text):
    """Split on LF only (keeping it), so other control bytes never create line breaks."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def find_blocks(text):
    """Return ``{('sync', name) | ('settings', None): (first_line, last_line)}`` (inclusive).

    Raises ConfigFileError on a BEGIN without END, an END without BEGIN, nesting or a
    duplicate block, rather than guessing which lines are ours.
    """
    blocks = {}
    order = []
    open_key = None
    open_line = None
    for index, raw in enumerate(split_lines(text)):
        line = raw[:-1] if raw.endswith("\n") else raw
        if not _ANY_MARKER.match(line):
            continue
        m = _SYNC_MARKER.match(line)
        if m:
            try:
                key = ("sync", decode_string(m.group(2)))
            except LuaRenderError as e:
                raise ConfigFileError("line %d: unreadable marker %r (%s)" % (index + 1, line, e))
            kind = m.group(1)
        else:
            m = _SETTINGS_MARKER.match(line)
            if not m:
                raise ConfigFileError("line %d: unrecognised nodowntime.storage marker %r" % (index + 1, line))
            key = ("settings", None)
            kind = m.group(1)
        if kind == "BEGIN":
            if open_key is not None:
                raise ConfigFileError("line %d: %r starts inside the block opened on line %d" % (index + 1, line, open_line + 1))
            if key in blocks:
                raise ConfigFileError("line %d: a second managed block %r (first on line %d)" % (index + 1, line, blocks[key][0] + 1))
            open_key, open_line = key, index
        else:
            if open_key != key:
                raise ConfigFileError("line %d: %r does not close an open block" % (index + 1, line))
            blocks[key] = (open_line, index)
            order.append(key)
            open_key = None
    if open_key is not None:
        raise ConfigFileError("line %d: managed block has no END marker" % (open_line + 1))
    return dict((k, blocks[k]) for k in order)


def managed_syncs(text):
    """Names of the managed sync blocks, in file order."""
    return [key[1] for key in find_blocks(text) if key[0] == "sync"]


def unmanaged_settings_lines(text):
    """1-based numbers of lines outside managed blocks that look like a settings call."""
    blocks = find_blocks(text)
    inside = set()
    for first, last in blocks.values():
        inside.update(range(first, last + 1))
    return [i + 1 for i, line in enumerate(split_lines(text))
            if i not in inside and _UNMANAGED_SETTINGS.match(line)]


def _replace(lines, span, new_block):
    first, last = span
    return lines[:first] + split_lines(new_block) + lines[last + 1:]


def apply_changes(text, name, state, sync_block=None, settings_block=None):
    """Return the new file text.

    ``sync_block`` is the rendered block for ``name`` (state=present); ``settings_block`` the
    rendered settings block or None to leave settings alone. A new sync block is appended
    after a blank line; a new settings block goes first. Removing a block also removes the
    blank line that separated it, so add-then-remove gives back the original bytes.
    """
    blocks = find_blocks(text)
    lines = split_lines(text)
    if settings_block is not None:
        span = blocks.get(("settings", None))
        if span is not None:
            lines = _replace(lines, span, settings_block)
        elif lines:
            lines = split_lines(settings_block) + ["\n"] + lines
        else:
            lines = split_lines(settings_block)
        blocks = find_blocks("".join(lines))
    key = ("sync", name)
    span = blocks.get(key)
    if state == "present":
        if span is not None:
            lines = _replace(lines, span, sync_block)
        else:
            if lines:
                if not lines[-1].endswith("\n"):
                    lines[-1] += "\n"
                lines.append("\n")
            lines.extend(split_lines(sync_block))
    elif span is not None:
        first, last = span
        if first > 0 and lines[first - 1] == "\n":
            first -= 1
        elif first == 0 and last + 1 < len(lines) and lines[last + 1] == "\n":
            last += 1
        lines = lines[:first] + lines[last + 1:]
    return "".join(lines)


def read_setting(text, lua_name):
    """The string value of ``lua_name`` in the managed settings block, or None."""
    span = find_blocks(text).get(("settings", None))
    if span is None:
        return None
    pattern = re.compile(r'^\s*%s\s*=\s*("(?:[^"\\\n]|\\.)*")\s*,?\s*$' % re.escape(lua_name))
    for raw in split_lines(text)[span[0]:span[1] + 1]:
        m = pattern.match(raw.rstrip("\n"))
        if m:
            return decode_string(m.group(1))
    return None


def managed_sources(text):
    """``[(name, source)]`` of the managed sync blocks in file order (source as written)."""
    lines = split_lines(text)
    pattern = re.compile(r'^\s*source\s*=\s*("(?:[^"\\\n]|\\.)*")\s*,\s*$')
    result = []
    for key, (first, last) in find_blocks(text).items():
        if key[0] != "sync":
            continue
        source = None
        for raw in lines[first:last + 1]:
            m = pattern.match(raw.rstrip("\n"))
            if m:
                source = decode_string(m.group(1))
                break
        result.append((key[1], source))
    return result


# ---------------------------------------------------------------- status file and log

_STATUS_HEADER = re.compile(r"^Lsyncd status report at (.*)$")
_SYNC_HEADER = re.compile(r"^(\S+) source=(.*)$")
_DELAYS = re.compile(r"^There are (\d+) delays$")
_DELAY_ENTRY = re.compile(r"^(wait|active|block)\s+(Init|Blanket|Create|Modify|Attrib|Delete|Move)\b ?(.*)$")
_WATCHES = re.compile(r"^Inotify watching (\d+) directories$")


def parse_status(text):
    """Parse lsyncd 2.2.x's status file.

    Returns ``dict(report_time=str|None, syncs=[...], watches=int|None)``; each sync is
    ``dict(name, source, delays, waiting, active, blocked, startup_done, idle)``. ``delays``
    is lsyncd's own count; the per-status counts come from the listed entries. ``startup_done``
    is false while the Init delay (the startup rsync) is still queued or running.
    """
    result = dict(report_time=None, syncs=[], watches=None)
    current = None
    expect_delays = False
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if result["report_time"] is None:
            m = _STATUS_HEADER.match(line)
            if m:
                result["report_time"] = m.group(1).strip()
                continue
        if expect_delays:
            expect_delays = False
            m = _DELAYS.match(line)
            if m:
                current["delays"] = int(m.group(1))
                continue
        m = _SYNC_HEADER.match(line)
        if m and not line.startswith(("wait", "active", "block")):
            current = dict(name=m.group(1), source=m.group(2), delays=None,
                           waiting=0, active=0, blocked=0, startup_done=True)
            result["syncs"].append(current)
            expect_delays = True
            continue
        m = _WATCHES.match(line)
        if m:
            result["watches"] = int(m.group(1))
            current = None
            continue
        if current is not None:
            m = _DELAY_ENTRY.match(line)
            if m:
                field = {"wait": "waiting", "active": "active", "block": "blocked"}[m.group(1)]
                current[field] += 1
                if m.group(2) == "Init":
                    current["startup_done"] = False
    for sync in result["syncs"]:
        if sync["delays"] is None:
            sync["delays"] = sync["waiting"] + sync["active"] + sync["blocked"]
        sync["idle"] = sync["delays"] == 0 and sync["startup_done"]
    return result


_LOG_STARTUP = " --- Startup"
_LOG_OVERFLOW = "OVERFLOW in event queue"
# default.direct logs 'Startup of "SRC" finished: 0', default.rsync(ssh) 'Startup of SRC -> TARGET finished.'
_LOG_FINISHED = re.compile(r'Startup of (?:"(.*)" finished|(/.*?) -> .* finished\.$)')
_LOG_ERROR = re.compile(r"\b(Error|Fail|Failure)\b|Terminating")


def parse_log(text, max_errors=10):
    """Summarise the part of lsyncd's log since its last ``--- Startup ---`` line.

    Returns ``dict(startups, overflows, overflows_since_start, started_sources, errors)``:
    overflows are counted over the whole text given (an overflow makes lsyncd restart with a
    full resync), ``started_sources`` lists sources whose startup sync finished since the last
    start, ``errors`` the last ``max_errors`` error lines since then.
    """
    lines = text.split("\n")
    startups = [i for i, line in enumerate(lines) if _LOG_STARTUP in line]
    last = startups[-1] if startups else 0
    overflows = [i for i, line in enumerate(lines) if _LOG_OVERFLOW in line]
    since = lines[last:]
    started = []
    for line in since:
        m = _LOG_FINISHED.search(line)
        if m:
            source = m.group(1) if m.group(1) is not None else m.group(2)
            if source not in started:
                started.append(source)
    errors = [line for line in since if _LOG_ERROR.search(line)]
    return dict(
        startups=len(startups),
        overflows=len(overflows),
        overflows_since_start=len([i for i in overflows if i >= last]),
        started_sources=started,
        errors=errors[-max_errors:] if max_errors else [],
    )


class LsyncdFilesError(ValueError):
    """lsyncd's files cannot be worked out; the message starts with the option to fix."""


def lsyncd_files(config_path, status_file=None, log_file=None):
    """``(status_file, log_file, config_text)``: the files given, else those of the managed
    settings block of ``config_path`` (config_text is None when that file is missing)."""
    config_text = None
    if os.path.isfile(config_path):
        try:
            with open(config_path, "rb") as f:
                config_text = f.read().decode("utf-8", "replace")
            status_file = status_file or read_setting(config_text, "statusFile")
            log_file = log_file or read_setting(config_text, "logfile")
        except (OSError, ConfigFileError, LuaRenderError) as e:
            raise LsyncdFilesError("config: cannot read %s: %s" % (config_path, e))
    if not status_file:
        raise LsyncdFilesError("status_file: not given and no statusFile in the managed settings block of %s"
                               % config_path)
    return status_file, log_file, config_text
