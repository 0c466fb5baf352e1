# SPDX-License-Identifier: GPL-3.0-or-later
"""Read and edit rsyncd.conf(5) files without disturbing what is not being changed.

The parser follows rsync's own ``params.c`` rules, checked against the real daemon:

- the file is line based; a line whose last non-blank character is ``\\`` continues on the
  next line (the backslash and the blanks after it are dropped, the next line's leading
  blanks are kept); comment lines never continue;
- a line whose first non-blank character is ``#`` or ``;`` is a comment;
- ``[name]`` starts a module (anything after ``]`` is ignored); ``[global]`` (any case) switches
  back to the global context; module names are matched case-insensitively with internal
  runs of blanks collapsed, and a name that appears twice continues the same module;
- ``&include`` and ``&merge`` are directives (kept verbatim, not followed);
- ``name = value``: only the first ``=`` counts, blanks around name and value are dropped,
  parameter names ignore case and blanks (``read only`` == ``readonly``; underscores are
  *not* ignored: rsync rejects ``read_only``).

A :class:`Document` is a list of :class:`Line` objects whose ``raw`` texts concatenate back
to the original bytes; edits replace, insert or delete whole lines and touch nothing else.
"""
from __future__ import annotations

import re

# Module (per-share) parameters of rsyncd.conf(5), spelt as the manual spells them, with the
# kind of value each takes. The union of rsync 3.2.x and later releases; the daemon check run
# by the module rejects a name the installed rsync does not know.
MODULE_PARAMETERS = {
    "auth digest": "str",
    "auth users": "list",
    "charset": "str",
    "comment": "str",
    "dont compress": "words",
    "early exec": "str",
    "exclude": "words",
    "exclude from": "str",
    "fake super": "bool",
    "filter": "str",
    "forward lookup": "bool",
    "gid": "str",
    "hosts allow": "list",
    "hosts deny": "list",
    "ignore errors": "bool",
    "ignore nonreadable": "bool",
    "include": "words",
    "include from": "str",
    "incoming chmod": "str",
    "insecure links": "bool",
    "list": "bool",
    "lock file": "str",
    "log file": "str",
    "log format": "str",
    "max connections": "int",
    "max verbosity": "int",
    "munge symlinks": "bool",
    "name converter": "str",
    "numeric ids": "bool",
    "open noatime": "bool",
    "outgoing chmod": "str",
    "path": "str",
    "post-xfer exec": "str",
    "pre-xfer exec": "str",
    "read only": "bool",
    "refuse options": "words",
    "reverse lookup": "bool",
    "secrets file": "str",
    "strict modes": "bool",
    "syslog facility": "str",
    "syslog tag": "str",
    "temp dir": "str",
    "timeout": "int",
    "transfer logging": "bool",
    "uid": "str",
    "use chroot": "bool",
    "use pam": "bool",
    "write only": "bool",
}

# Parameters that only make sense before the first module (rsyncd.conf(5) GLOBAL PARAMETERS).
GLOBAL_PARAMETERS = (
    "address", "bind address", "daemon chroot", "daemon gid", "daemon uid", "listen backlog",
    "motd file", "pid file", "port", "rsync port", "proxy protocol", "proxy protocol hosts",
    "socket options",
)

# Defaults rsync uses when neither the module nor the global context sets a parameter.
DEFAULTS = {
    "read only": True,
    "write only": False,
    "list": True,
}

_TRUE = ("yes", "true", "1")
_FALSE = ("no", "false", "0")


def canonical(name):
    """rsync's comparison key for a parameter name: case and blanks do not count."""
    return "".join(name.split()).lower()


_BY_CANONICAL = dict((canonical(n), n) for n in MODULE_PARAMETERS)
_GLOBAL_CANONICAL = set(canonical(n) for n in GLOBAL_PARAMETERS)


def lookup_parameter(name):
    """Manual spelling of a module parameter given in any spelling, or None.

    Accepts what rsync accepts (any case, any blanks) and, for the convenience of YAML keys,
    underscores in place of blanks (``max_connections``).
    """
    key = canonical(name)
    if key in _BY_CANONICAL:
        return _BY_CANONICAL[key]
    key = canonical(name.replace("_", " "))
    return _BY_CANONICAL.get(key)


def is_global_parameter(name):
    return canonical(name) in _GLOBAL_CANONICAL or canonical(name.replace("_", " ")) in _GLOBAL_CANONICAL


def normalize_module_name(name):
    """Module name as rsync stores it: internal blanks collapsed, ends stripped."""
    return " ".join(name.split())


def module_key(name):
    """Key under which rsync matches a module section ([Mig] continues [mig])."""
    return normalize_module_name(name).lower()


def parse_bool(value):
    """True/False for an rsync boolean string, None when rsync would reject it."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def split_list(value):
    """Items of a list value (rsync separates them by blanks and/or commas)."""
    return [item for item in re.split(r"[\s,]+", value) if item]


def split_words(value):
    """Items of a pattern list value (rsync separates them by blanks only)."""
    return value.split()


def same_value(kind, current, desired):
    """Whether the value ``current`` (text from the file) already means ``desired``."""
    if current is None:
        return False
    if kind == "bool":
        return parse_bool(current) is not None and parse_bool(current) == desired
    if kind == "int":
        try:
            return int(current.strip()) == desired
        except ValueError:
            return False
    if kind == "list":
        return split_list(current) == list(desired)
    if kind == "words":
        return split_words(current) == list(desired)
    return current == desired


def typed_value(kind, text):
    """The value of ``text`` in Python terms, for returning to the user."""
    if kind == "bool":
        b = parse_bool(text)
        return text if b is None else b
    if kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            return text
    if kind == "list":
        return split_list(text)
    if kind == "words":
        return split_words(text)
    return text


def render_value(kind, value):
    """Text written after ``=`` for ``value`` of the given kind."""
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "int":
        return str(int(value))
    if kind == "list":
        return ", ".join(value)
    if kind == "words":
        return " ".join(value)
    return value


class ValueProblem(ValueError):
    """A value rsync would read back differently from what was asked for."""


def check_text(value):
    """Raise ValueProblem unless rsync reads ``value`` back exactly as given after ``=``."""
    if any(c in value for c in "\n\r\0"):
        raise ValueProblem("contains a newline, carriage return or NUL byte")
    if value != value.strip():
        raise ValueProblem("has leading or trailing whitespace, which rsync strips")
    if value.endswith("\\"):
        raise ValueProblem("ends with a backslash, which rsync reads as a line continuation")


def check_item(value, separators):
    """Raise ValueProblem unless ``value`` survives as one item of a list value."""
    check_text(value)
    if not value:
        raise ValueProblem("is empty")
    if any(c in value for c in separators):
        raise ValueProblem("contains a list separator (%s)" % ("blank or comma" if "," in separators else "blank"))


def check_module_name(name):
    """Raise ValueProblem unless rsync parses ``[name]`` back as exactly ``name``."""
    if not name:
        raise ValueProblem("is empty")
    for c in name:
        if ord(c) < 32 or ord(c) == 127:
            raise ValueProblem("contains a control character (%r)" % c)
    if "]" in name:
        raise ValueProblem("contains ']', which ends the section header")
    if "/" in name:
        raise ValueProblem("contains '/', which rsync does not allow in a module name")
    if name != normalize_module_name(name):
        raise ValueProblem("has leading, trailing or repeated blanks, which rsync collapses")
    if name.lower() == "global":
        raise ValueProblem("'global' is rsync's name for the global section, not a module")


class Line:
    """One logical line: ``raw`` is its exact text (several physical lines if continued)."""

    __slots__ = ("raw", "kind", "name", "value")

    def __init__(self, raw, kind, name=None, value=None):
        self.raw = raw
        self.kind = kind  # blank, comment, directive, section, param, junk
        self.name = name
        self.value = value

    def __repr__(self):
        return "Line(%r, %r, %r, %r)" % (self.raw, self.kind, self.name, self.value)


_LEADING_BLANKS = " \t\f\v"


def _physical_lines(text):
    """Split keeping each line's newline; a last line without one is kept as is."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _content(physical):
    """A physical line without its newline (and without a CR before it)."""
    if physical.endswith("\n"):
        physical = physical[:-1]
    return physical


def _continues(physical):
    stripped = _content(physical).rstrip()
    return stripped.endswith("\\")


def parse(text):
    """Parse rsyncd.conf text into a Document (``render(parse(t)) == t`` for any ``t``)."""
    phys = _physical_lines(text)
    lines = []
    i = 0
    while i < len(phys):
        raw = phys[i]
        body = _content(raw).lstrip(_LEADING_BLANKS)
        if not body.strip():
            lines.append(Line(raw, "blank"))
            i += 1
            continue
        if body[0] in "#;":
            lines.append(Line(raw, "comment"))
            i += 1
            continue
        if body[0] == "[":
            end = body.find("]")
            if end < 0:
                lines.append(Line(raw, "junk"))
            else:
                lines.append(Line(raw, "section", normalize_module_name(body[1:end])))
            i += 1
            continue
        if body[0] == "&":
            lines.append(Line(raw, "directive"))
            i += 1
            continue
        # A parameter, possibly continued over several physical lines.
        joined = _content(raw).lstrip(_LEADING_BLANKS)
        while _continues(phys[i]) and i + 1 < len(phys):
            joined = joined.rstrip()[:-1]
            i += 1
            raw += phys[i]
            joined += _content(phys[i])
        i += 1
        if joined.rstrip().endswith("\\"):
            joined = joined.rstrip()[:-1]
        if "=" not in joined:
            lines.append(Line(raw, "junk"))
            continue
        name, value = joined.split("=", 1)
        lines.append(Line(raw, "param", name.strip(), value.strip()))
    return Document(lines)


class Document:
    def __init__(self, lines):
        self.lines = lines

    def render(self):
        return "".join(line.raw for line in self.lines)

    # -- reading -------------------------------------------------------------------------

    def _sections(self):
        """(start, end, name) of every section; start is the header index, end exclusive.

        The global part before the first header is reported with start -1 and name None.
        """
        out = []
        start, name = -1, None
        for idx, line in enumerate(self.lines):
            if line.kind == "section":
                out.append((start, idx, name))
                start, name = idx, line.name
        out.append((start, len(self.lines), name))
        return out

    def module_sections(self, module):
        key = module_key(module)
        return [(s, e) for s, e, n in self._sections() if n is not None and n.lower() == key]

    def global_sections(self):
        return [(s, e) for s, e, n in self._sections() if n is None or n.lower() == "global"]

    def has_module(self, module):
        return bool(self.module_sections(module))

    def module_names(self):
        seen = []
        for _s, _e, n in self._sections():
            if n is not None and n.lower() != "global" and n.lower() not in [x.lower() for x in seen]:
                seen.append(n)
        return seen

    def header_name(self, module):
        """The module's name as written in its first header."""
        sections = self.module_sections(module)
        return self.lines[sections[0][0]].name if sections else None

    def _param_indices(self, ranges):
        """canonical name -> list of line indices, in file order, within ``ranges``."""
        found = {}
        for s, e in ranges:
            for idx in range(s + 1, e):
                line = self.lines[idx]
                if line.kind == "param":
                    found.setdefault(canonical(line.name), []).append(idx)
        return found

    def module_params(self, module):
        """canonical name -> value the module sets itself (the last setting wins)."""
        found = self._param_indices(self.module_sections(module))
        return dict((k, self.lines[v[-1]].value) for k, v in found.items())

    def global_params(self):
        found = self._param_indices(self.global_sections())
        return dict((k, self.lines[v[-1]].value) for k, v in found.items())

    def effective(self, module, name):
        """Value text the module gets for parameter ``name`` (own, else global), or None."""
        key = canonical(name)
        own = self.module_params(module)
        if key in own:
            return own[key]
        return self.global_params().get(key)

    # -- editing -------------------------------------------------------------------------

    def _newline(self):
        for line in self.lines:
            if line.raw.endswith("\r\n"):
                return "\r\n"
        return "\n"

    def _indent(self, ranges):
        for s, e in ranges:
            for idx in range(s + 1, e):
                line = self.lines[idx]
                if line.kind == "param":
                    body = line.raw
                    return body[:len(body) - len(body.lstrip(_LEADING_BLANKS))]
        return "    "

    def _ensure_final_newline(self):
        if self.lines and not self.lines[-1].raw.endswith("\n"):
            self.lines[-1].raw += self._newline()

    def set_param(self, module, name, kind, value):
        """Make the module set ``name`` to ``value``; return True if the text changed.

        An existing setting that already means ``value`` is left exactly as written; one that
        does not is rewritten in place (keeping its indentation and spelling of the name).
        A new setting goes after the module's last parameter.
        """
        ranges = self.module_sections(module)
        if not ranges:
            raise KeyError(module)
        key = canonical(name)
        indices = self._param_indices(ranges).get(key, [])
        if indices and same_value(kind, self.lines[indices[-1]].value, value):
            return False
        text = render_value(kind, value)
        nl = self._newline()
        if indices:
            old = self.lines[indices[-1]]
            indent = old.raw[:len(old.raw) - len(old.raw.lstrip(_LEADING_BLANKS))]
            ending = "\r\n" if old.raw.endswith("\r\n") else ("\n" if old.raw.endswith("\n") else "")
            self.lines[indices[-1]] = Line(_param_line(indent, old.name, text, ending), "param", old.name, text)
            return True
        indent = self._indent(ranges)
        s, e = ranges[-1]
        at = s
        for idx in range(s + 1, e):
            if self.lines[idx].kind not in ("blank", "comment"):
                at = idx
        if at == len(self.lines) - 1:
            self._ensure_final_newline()
        if self.lines[at].kind == "param" and _continues(_physical_lines(self.lines[at].raw)[-1]):
            # A dangling continuation at the end of the file would swallow the new line:
            # give it the empty line it is waiting for.
            at += 1
            self.lines.insert(at, Line(nl, "blank"))
        self.lines.insert(at + 1, Line(_param_line(indent, name, text, nl), "param", name, text))
        return True

    def remove_param(self, module, name):
        """Drop every setting of ``name`` from the module; return True if any was there."""
        ranges = self.module_sections(module)
        indices = self._param_indices(ranges).get(canonical(name), [])
        for idx in reversed(indices):
            del self.lines[idx]
        return bool(indices)

    def add_module(self, module):
        """Append an empty ``[module]`` section at the end of the file."""
        nl = self._newline()
        self._ensure_final_newline()
        if self.lines and self.lines[-1].kind != "blank":
            self.lines.append(Line(nl, "blank"))
        self.lines.append(Line("[%s]%s" % (module, nl), "section", module))

    def remove_module(self, module):
        """Delete every section of the module; return True if there was one.

        A section ends after its last parameter: comments and blank lines that follow it
        usually introduce the next section and are kept.
        """
        ranges = self.module_sections(module)
        for s, e in reversed(ranges):
            last = s
            for idx in range(s + 1, e):
                if self.lines[idx].kind not in ("blank", "comment"):
                    last = idx
            del self.lines[s:last + 1]
            # Do not leave two blank lines where the section was.
            if s < len(self.lines) and self.lines[s].kind == "blank" and (s == 0 or self.lines[s - 1].kind == "blank"):
                del self.lines[s]
            elif s == len(self.lines) and s > 0 and self.lines[s - 1].kind == "blank":
                del self.lines[s - 1]
        return bool(ranges)


def _param_line(indent, name, text, ending):
    if text:
        return "%s%s = %s%s" % (indent, name, text, ending)
    return "%s%s =%s" % (indent, name, ending)


# -- secrets file ------------------------------------------------------------------------


def check_secret_user(user):
    if not user:
        raise ValueProblem("is empty")
    if any(c in user for c in ":\n\r\0") or user != user.strip() or user[0] in "#@":
        raise ValueProblem("must not contain ':' or a newline, start with '#' or '@', or have blanks around it")


def check_secret_password(password):
    if not password:
        raise ValueProblem("is empty")
    if any(c in password for c in "\n\r\0"):
        raise ValueProblem("contains a newline, carriage return or NUL byte")


def update_secrets(text, secrets):
    """Return ``(new_text, changed_users)`` setting ``user:password`` for each managed user.

    rsync uses the first line for a user; that line is rewritten if its password differs,
    a missing user is appended, and every other line is kept exactly.
    """
    phys = _physical_lines(text)
    changed = []
    pending = dict(secrets)
    for idx, raw in enumerate(phys):
        body = _content(raw)
        if not body or body.startswith("#") or ":" not in body:
            continue
        user, password = body.split(":", 1)
        if user in pending:
            want = pending.pop(user)
            if password != want:
                ending = "\n" if raw.endswith("\n") else ""
                phys[idx] = "%s:%s%s" % (user, want, ending)
                changed.append(user)
    if pending:
        if phys and not phys[-1].endswith("\n"):
            phys[-1] += "\n"
        for user in sorted(pending):
            phys.append("%s:%s\n" % (user, pending[user]))
            changed.append(user)
    return "".join(phys), sorted(changed)


def redact_secrets(text, changed_users=()):
    """The secrets file with every password replaced, for diffs and logs."""
    out = []
    for raw in _physical_lines(text):
        body = _content(raw)
        ending = raw[len(body):]
        if body and not body.startswith("#") and ":" in body:
            user = body.split(":", 1)[0]
            mark = "<password changed>" if user in changed_users else "<password hidden>"
            out.append("%s:%s%s" % (user, mark, ending))
        else:
            out.append(raw)
    return "".join(out)


# -- the real daemon as a parser ---------------------------------------------------------

_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\d+\] ")
_BENIGN = re.compile(r"^(connect from |module-list request from )")


def daemon_complaints(log_text):
    """What the daemon logged about a config, without time stamps, pids and connection noise."""
    out = []
    for line in log_text.splitlines():
        line = _LOG_PREFIX.sub("", line).strip()
        if line and not _BENIGN.match(line):
            out.append(line)
    return out


def parse_listing(stdout):
    """Module names from ``rsync rsync://host/`` output (one ``name<TAB>comment`` per line)."""
    names = []
    for line in stdout.splitlines():
        if "\t" not in line or line.startswith("@"):
            continue  # a motd line or a protocol message
        names.append(line.split("\t", 1)[0].rstrip())
    return names
