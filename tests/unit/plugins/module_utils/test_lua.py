# SPDX-License-Identifier: GPL-3.0-or-later
"""The Lua string encoder, checked against a real Lua interpreter byte for byte."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils._lua import (
    LuaRenderError,
    decode_string,
    encode_key,
    encode_number,
    encode_string,
    encode_value,
)

LUA = shutil.which("lua5.4") or shutil.which("lua5.3") or shutil.which("lua")
needs_lua = pytest.mark.skipif(LUA is None, reason="no Lua interpreter (apt install lua5.4)")

HOSTILE = [
    "",
    "plain",
    'double "quote" inside',
    "single 'quote' inside",
    "back\\slash and trailing \\",
    "\\",
    "\\\"",
    "line\nbreak",
    "carriage\rreturn",
    "\r\n",
    "\n leading newline",
    "tab\tand\vvertical\fform",
    "nul\x00byte",
    "bell\x07 and del\x7f",
    "close long bracket ]] and ]=] and [[ open",
    "--[[ long comment start",
    '", os.execute("touch /tmp/pwned"), "',
    '"} os.execute("id") sync{ "',
    "\\0123 looks like an escape",
    "\\ddd \\x41 \\u{41} \\z",
    "%s %d %q format directives",
    "digits after escape \x01" + "234",
    "한국어 경로/이미지",
    "emoji \U0001F600 and accents éü",
    "line separator \u2028 paragraph \u2029",
    "bidi \u202e override and zero width \u200b joiner \u200d",
    "nbsp\u00a0here",
    "".join(chr(c) for c in range(0, 128)),
    "".join(chr(c) for c in range(128, 0x800)),
]


def lua_read(literals):
    """Have Lua evaluate each literal and write back its bytes, length-prefixed."""
    script = "local values = {\n%s\n}\nfor i = 1, #values do local v = values[i] " \
             "io.write(#v, ':', v, ';') end\n" % "\n".join("  %s," % lit for lit in literals)
    proc = subprocess.run([LUA, "-"], input=script.encode("utf-8"), capture_output=True, check=True)
    out = proc.stdout
    values = []
    while out:
        length, rest = out.split(b":", 1)
        n = int(length)
        values.append(rest[:n])
        assert rest[n:n + 1] == b";"
        out = rest[n + 1:]
    return values


@pytest.mark.functional
@needs_lua
def test_hostile_strings_round_trip_through_lua_byte_for_byte():
    literals = [encode_string(s) for s in HOSTILE]
    assert lua_read(literals) == [s.encode("utf-8") for s in HOSTILE]


@pytest.mark.functional
@needs_lua
def test_every_byte_value_round_trips_through_lua():
    raw = bytes(range(256)) * 2
    invalid_utf8 = b"\xff\xfe broken \xc3( utf-8 \xed\xa0\x80"
    assert lua_read([encode_string(raw), encode_string(invalid_utf8)]) == [raw, invalid_utf8]


def test_literal_has_no_raw_line_break_or_control_byte():
    for s in HOSTILE:
        literal = encode_string(s)
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in literal), literal
        assert "\u2028" not in literal and "\u202e" not in literal and "\u200b" not in literal
        assert literal.startswith('"') and literal.endswith('"')
        assert "[[" not in literal or "[[" in s  # never introduces long brackets itself


def test_escapes_are_three_digit_decimal_so_digits_cannot_merge():
    assert encode_string("\x01" + "23") == '"\\00123"'
    assert encode_string("a\nb") == '"a\\010b"'
    assert encode_string('q"b\\') == '"q\\"b\\\\"'


def test_printable_unicode_stays_readable():
    assert encode_string("이미지") == '"이미지"'
    # invisible/bidi characters are escaped as their UTF-8 bytes
    assert encode_string("\u202e") == '"\\226\\128\\174"'


def test_decode_is_the_inverse_of_encode():
    for s in HOSTILE:
        assert decode_string(encode_string(s)) == s


def test_decode_rejects_what_encode_never_writes():
    for bad in ['"unterminated', '"raw\nnewline"', '"bad \\q escape"', '"\\256"', "'single'", '"a"b"']:
        with pytest.raises(LuaRenderError):
            decode_string(bad)


def test_lone_surrogate_is_refused():
    with pytest.raises(LuaRenderError):
        encode_string("x\ud800y")


def test_keys_numbers_and_tables():
    assert encode_key("statusFile") == "statusFile"
    assert encode_key("_extra") == "_extra"
    assert encode_key("end") == '["end"]'
    assert encode_key("Strict-Host") == '["Strict-Host"]'
    assert encode_number(3) == "3"
    assert encode_number(2.0) == "2"
    assert encode_number(0.25) == "0.25"
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(LuaRenderError):
            encode_number(bad)
    assert encode_value({"a": [1, "x"], "b": {}}) == '{\n    a = {\n        1,\n        "x",\n    },\n    b = {},\n}'


@pytest.mark.functional
@needs_lua
def test_rendered_table_reads_back_in_lua():
    table = {"archive": True, "bwlimit": 0.5, "_extra": ["--a", 'b"]]'], "end": "k\n"}
    script = "local t = %s\nio.write(tostring(t.archive), '|', t.bwlimit, '|', t._extra[2], '|', t['end'])" % encode_value(table)
    out = subprocess.run([LUA, "-"], input=script.encode(), capture_output=True, check=True).stdout
    assert out == b'true|0.5|b"]]|k\n'
