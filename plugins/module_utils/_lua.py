# SPDX-License-Identifier: GPL-3.0-or-later
"""Render Python values as Lua literals that Lua reads back byte for byte.

Pure functions, no Ansible import, so unit tests can round-trip them through a real Lua.

Strings are always double-quoted short strings, never long brackets (``[[...]]`` cannot
express every input: ``]]`` ends them and a leading newline is dropped). Inside the quotes:

* ``\\`` and ``"`` are escaped with a backslash;
* every character that is not printable (ASCII control bytes, DEL, and non-printable Unicode
  such as line/paragraph separators, bidi controls and zero-width characters) is written as
  decimal escapes ``\\ddd`` of its UTF-8 bytes, always three digits so a following digit is
  never swallowed;
* printable non-ASCII characters stay as their raw UTF-8 bytes, so a Korean path stays
  readable in the file. Lua short strings take any byte literally except ``\\``, the quote,
  CR and LF.

The rendered text therefore never contains a raw newline, CR or NUL inside a string, so no
input can end a string, a comment or a line early and inject Lua.
"""
from __future__ import annotations

import math
import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Lua 5.3/5.4 reserved words cannot be bare table keys.
LUA_KEYWORDS = frozenset((
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
))


class LuaRenderError(ValueError):
    """A value has no faithful Lua literal (e.g. NaN, a lone surrogate)."""


def encode_string(value):
    """Return ``value`` (str or bytes) as a double-quoted Lua string literal (str).

    A str is encoded as UTF-8; a str that cannot be (a lone surrogate) raises LuaRenderError.
    Bytes that are not valid UTF-8 are escaped byte by byte.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return '"' + "".join(_escape_byte(b) for b in value) + '"'
    if not isinstance(value, str):
        raise LuaRenderError("not a string: %r" % (value,))
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) > 0x7F and ch.isprintable():
            _utf8(ch)  # raises on a lone surrogate
            out.append(ch)
        else:
            out.extend(_escape_byte(b) for b in _utf8(ch))
    out.append('"')
    return "".join(out)


def _utf8(ch):
    try:
        return ch.encode("utf-8")
    except UnicodeEncodeError:
        raise LuaRenderError("string contains U+%04X, which is not valid UTF-8 text" % ord(ch))


def _escape_byte(b):
    if 0x20 <= b <= 0x7E and b not in (0x22, 0x5C):
        return chr(b)
    return "\\%03d" % b


_ESCAPE = re.compile(r'\\(\d{1,3}|.)', re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                   "\\": "\\", '"': '"', "'": "'"}


def decode_string(literal):
    """Inverse of ``encode_string`` for the escapes it produces (plus Lua's simple escapes).

    Takes the literal including its quotes and returns str (undecodable bytes become
    surrogate escapes). Raises LuaRenderError on anything else.
    """
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise LuaRenderError("not a double-quoted Lua string: %r" % (literal,))
    body = literal[1:-1]
    out = bytearray()
    pos = 0
    while pos < len(body):
        ch = body[pos]
        if ch == '"' or ch == "\n" or ch == "\r":
            raise LuaRenderError("unescaped %r in Lua string %r" % (ch, literal))
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            pos += 1
            continue
        m = _ESCAPE.match(body, pos)
        if not m:
            raise LuaRenderError("dangling backslash in Lua string %r" % (literal,))
        esc = m.group(1)
        if esc.isdigit():
            code = int(esc)
            if code > 255:
                raise LuaRenderError("escape \\%s out of range in %r" % (esc, literal))
            out.append(code)
        elif esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc].encode("ascii")
        else:
            raise LuaRenderError("unsupported escape \\%s in Lua string %r" % (esc, literal))
        pos = m.end()
    return bytes(out).decode("utf-8", "surrogateescape")


def is_identifier(name):
    """True if ``name`` can be a bare Lua table key (``name = value``)."""
    return isinstance(name, str) and bool(_IDENTIFIER.match(name)) and name not in LUA_KEYWORDS


def encode_key(name):
    """A table key: bare when it is an identifier, ``["..."]`` otherwise."""
    if is_identifier(name):
        return name
    return "[%s]" % encode_string(name)


def encode_number(value):
    """An int or finite float as a Lua numeral (ints stay integers)."""
    if isinstance(value, bool):
        raise LuaRenderError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LuaRenderError("%r has no Lua numeral" % value)
        if value.is_integer() and abs(value) < 2 ** 53:
            return str(int(value))
        return repr(value)
    raise LuaRenderError("not a number: %r" % (value,))


def encode_value(value, indent="", step="    "):
    """Render None-free scalars, lists (as sequences) and dicts (as records) as Lua.

    Dicts keep their insertion order so rendering is deterministic; nested tables are
    written one entry per line with a trailing comma.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return encode_number(value)
    if isinstance(value, (str, bytes)):
        return encode_string(value)
    inner = indent + step
    if isinstance(value, (list, tuple)):
        if not value:
            return "{}"
        lines = ["{"]
        for item in value:
            lines.append("%s%s," % (inner, encode_value(item, inner, step)))
        lines.append(indent + "}")
        return "\n".join(lines)
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = ["{"]
        for key, item in value.items():
            lines.append("%s%s = %s," % (inner, encode_key(key), encode_value(item, inner, step)))
        lines.append(indent + "}")
        return "\n".join(lines)
    raise LuaRenderError("cannot render %r as Lua" % (value,))
