# SPDX-License-Identifier: GPL-3.0-or-later
"""_tree_verify on output recorded from real rsync 3.2.7 (fixtures/tree-verify-rsync-3.2.7, made by
capture.sh there in a container of the lab image: a crafted source/target pair with every kind of
difference, run through the exact command lines tree_verify builds)."""
from __future__ import annotations

import gzip
import os
import random
import time
from pathlib import Path

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_verify
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_report import TOTAL_KEYS
from ansible_collections.nodowntime.storage.plugins.module_utils._tree_verify import Item

FIX = Path(__file__).parent / "fixtures" / "tree-verify-rsync-3.2.7"
# Where capture.sh built the trees inside the container.
SRC, DST, LISTS = "/cap-t/src", "/cap-t/dst", "/cap-t/lists"
DAEMON = "rsync://127.0.0.1:8873/dst"
RSYNC = "rsync"


def recorded(name):
    """``(argv, stdout lines, stderr, rc)`` of one recorded run."""
    argv = (FIX / (name + ".argv")).read_text(encoding="utf-8").splitlines()
    stdout = (FIX / (name + ".stdout")).read_bytes().split(b"\n")
    if stdout and stdout[-1] == b"":
        stdout.pop()
    stderr = (FIX / (name + ".stderr")).read_text(encoding="utf-8")
    return argv, stdout, stderr, int((FIX / (name + ".rc")).read_text())


def recorded_list(name):
    """The raw names a recorded --files-from list held."""
    return gzip.decompress((FIX / (name + ".list.gz")).read_bytes()).split(b"\0")[:-1]


def connection(daemon=False, password_file=None):
    # The module's defaults: io_timeout 600, connect_timeout 30 (daemon only).
    return _tree_verify.connection_options(password_file, None, 600, 30, daemon=daemon)


# -- the script runs exactly what the module builds -----------------------------------------------

ATTRS = _tree_verify.compare_options("attributes", [])
CHECKSUM = _tree_verify.compare_options("checksum", [])
EXPECTED_ARGV = {
    "clean": _tree_verify.tree_argv(RSYNC, CHECKSUM, connection(), [], SRC, "/cap-t/clean-dst"),
    "tree-attributes": _tree_verify.tree_argv(RSYNC, ATTRS, connection(), [], SRC, DST),
    "tree-checksum": _tree_verify.tree_argv(RSYNC, CHECKSUM, connection(), [], SRC, DST),
    "tree-ignore-times": _tree_verify.tree_argv(
        RSYNC, _tree_verify.compare_options("attributes", ["times"]), connection(), [], SRC, DST),
    "recheck-attributes": _tree_verify.list_argv(
        RSYNC, ATTRS, connection(), [], LISTS + "/recheck-attributes.list", SRC, DST),
    "recheck-checksum": _tree_verify.list_argv(
        RSYNC, CHECKSUM, connection(), [], LISTS + "/recheck-checksum.list", SRC, DST),
    "recheck-settled": _tree_verify.list_argv(
        RSYNC, ATTRS, connection(), [], LISTS + "/recheck-attributes.list", SRC, DST),
    "orphans-attributes": _tree_verify.list_argv(
        RSYNC, ATTRS, connection(), [], LISTS + "/orphans-attributes.list", DST, SRC),
    "orphans-checksum": _tree_verify.list_argv(
        RSYNC, CHECKSUM, connection(), [], LISTS + "/orphans-checksum.list", DST, SRC),
    "orphans-settled": _tree_verify.list_argv(
        RSYNC, ATTRS, connection(), [], LISTS + "/orphans-attributes.list", DST, SRC),
    "missing-arg": _tree_verify.list_argv(
        RSYNC, ATTRS, connection(), [], LISTS + "/missing-arg.list", SRC, DST),
    "daemon-attributes": _tree_verify.tree_argv(RSYNC, ATTRS, connection(daemon=True), [], SRC, DAEMON),
    "daemon-unknown-module": _tree_verify.tree_argv(
        RSYNC, ATTRS, connection(daemon=True), [], SRC, "rsync://127.0.0.1:8873/nope"),
    "daemon-refused": _tree_verify.tree_argv(
        RSYNC, ATTRS, connection(daemon=True), [], SRC, "rsync://127.0.0.1:8874/dst"),
    "daemon-auth-failed": _tree_verify.tree_argv(
        RSYNC, ATTRS, connection(daemon=True, password_file="/etc/verify.password"), [], SRC,
        "rsync://verifier@127.0.0.1:8873/locked"),
    "no-source": _tree_verify.tree_argv(RSYNC, ATTRS, connection(), [], "/cap-t/none", DST),
    "no-target": _tree_verify.tree_argv(RSYNC, ATTRS, connection(), [], SRC, "/cap-t/none"),
    "unreadable-file": _tree_verify.tree_argv(
        RSYNC, CHECKSUM, connection(), [], "/cap-t/locked-src", "/cap-t/locked-dst"),
    "unreadable-file-attributes": _tree_verify.tree_argv(
        RSYNC, ATTRS, connection(), [], "/cap-t/locked-src", "/cap-t/locked-dst"),
    "unreadable-dir": _tree_verify.tree_argv(
        RSYNC, ATTRS, connection(), [], "/cap-t/locked-src", "/cap-t/locked-dst"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGV))
def test_capture_script_ran_the_command_lines_the_module_builds(name):
    assert recorded(name)[0] == EXPECTED_ARGV[name]


def test_every_recorded_run_is_checked_against_the_module():
    # tree-no-times-quick-check is the one exception: the options before the --size-only fix,
    # kept as evidence of rsync's T flag.
    runs = {path.name[:-len(".argv")] for path in FIX.glob("*.argv")}
    assert runs - set(EXPECTED_ARGV) == {"tree-no-times-quick-check"}


# -- parse_line on every recorded line ------------------------------------------------------------

# What each itemized change means (by hand, from rsync(1) "--itemize-changes").
CODES = {
    b"*deleting  ": ("orphaned", None, ()),
    b".d..t......": ("different", "dir", ("mtime",)),
    b".f........x": ("different", "file", ("xattr",)),
    b".f.......a.": ("different", "file", ("acl",)),
    b".f.....g...": ("different", "file", ("group",)),
    b".f....o....": ("different", "file", ("owner",)),
    b".f...p.....": ("different", "file", ("perms",)),
    b".f..t......": ("different", "file", ("mtime",)),
    b"<f+++++++++": ("missing", "file", ()),
    b"<f..t......": ("different", "file", ("mtime",)),
    b"<f.s.......": ("different", "file", ("size",)),
    b">f+++++++++": ("missing", "file", ()),
    # T: no --times, so the time would be set to "now"; the file is sent for its mtime alone.
    b">f..T......": ("different", "file", ("content",)),
    b">f..t......": ("different", "file", ("mtime",)),
    b">f.s.......": ("different", "file", ("size",)),
    b">f.sT......": ("different", "file", ("size",)),
    b">fc........": ("different", "file", ("checksum",)),
    b">fcs.......": ("different", "file", ("checksum", "size")),
    b"cL+++++++++": ("missing", "symlink", ()),
    b"cLc........": ("different", "symlink", ("target",)),
    b"cLc.T......": ("different", "symlink", ("target",)),
    b"cS+++++++++": ("missing", "special", ()),
    b"cd+++++++++": ("missing", "dir", ()),
    b"hf         ": ("different", "file", ("hard_links",)),
    b"hf+++++++++": ("missing", "file", ()),
    b"hf..T......": ("different", "file", ("hard_links",)),
}
# Every name rsync printed, with the raw name it stands for.
NAMES = {
    b"./": b".",
    b"acl.txt": b"acl.txt", b"closed/": b"closed", b"content.txt": b"content.txt",
    b"dirtime/": b"dirtime", b"group.txt": b"group.txt", b"hard-a": b"hard-a", b"hard-b": b"hard-b",
    b"kind-a": b"kind-a", b"kind-a/": b"kind-a", b"kind-a/inner.txt": b"kind-a/inner.txt",
    b"kind-b/": b"kind-b", b"kind-b/inner.txt": b"kind-b/inner.txt", b"link": b"link",
    b"missing-dir/": b"missing-dir", b"missing-dir/deeper/": b"missing-dir/deeper",
    b"missing-dir/deeper/inner.txt": b"missing-dir/deeper/inner.txt", b"missing-empty/": b"missing-empty",
    b"missing-fifo": b"missing-fifo", b"missing.txt": b"missing.txt", b"mtime.txt": b"mtime.txt",
    b"names/": b"names", b"names/ with  spaces ": b"names/ with  spaces ",
    b"names/-leading-dash": b"names/-leading-dash",
    b"names/\\#355\\#225\\#234\\#352\\#265\\#255\\#354\\#226\\#264.txt": "names/한국어.txt".encode(),
    b"names/arrow -> here": b"names/arrow -> here",
    b"names/back\\#134#123slash": b"names/back\\#123slash",
    b"names/bad\\#377byte": b"names/bad\xffbyte",
    b"names/dir\twith tab/": b"names/dir\twith tab", b"names/dir\twith tab/inner": b"names/dir\twith tab/inner",
    b"names/new\\#012line": b"names/new\nline",
    b"names/orphan\\#012newline": b"names/orphan\nnewline", b"names/orphan\\#377": b"names/orphan\xff",
    b"names/tab\there": b"names/tab\there",
    b"orphan-dir/": b"orphan-dir", b"orphan-dir/deeper/": b"orphan-dir/deeper",
    b"orphan-dir/deeper/inner.txt": b"orphan-dir/deeper/inner.txt", b"orphan.txt": b"orphan.txt",
    b"owner.txt": b"owner.txt", b"perms.txt": b"perms.txt", b"same.txt": b"same.txt",
    b"secret.txt": b"secret.txt", b"size.txt": b"size.txt", b"xattr.txt": b"xattr.txt",
}
# Lines that are not entries: --stats, and what rsync says about the run itself.
NOT_ENTRIES = (b"Number of ", b"Total ", b"Literal data: ", b"Matched data: ", b"File list ", b"sent ",
               b"total size is ", b"created directory ")


def expected_item(line):
    code, size, name = line[:11], int(line[12:].split(b" ", 1)[0]), line[12:].split(b" ", 1)[1]
    kind, entry, differs = CODES[code]
    if entry is None:
        entry = "dir" if name.endswith(b"/") else "file"
    return Item(kind, entry, size if entry == "file" and kind != "orphaned" else 0, NAMES[name], differs)


def recorded_lines():
    for path in sorted(FIX.glob("*.stdout")):
        for line in recorded(path.name[:-len(".stdout")])[1]:
            yield path.name, line


def test_parse_line_on_every_recorded_line():
    entries = 0
    for source, line in recorded_lines():
        if not line or line.startswith(NOT_ENTRIES):
            assert _tree_verify.parse_line(line) is None, (source, line)
            continue
        entries += 1
        assert _tree_verify.parse_line(line) == expected_item(line), (source, line)
    assert entries == 326  # every recorded entry line was compared (none skipped as unknown)


def test_every_code_and_name_in_the_tables_was_recorded():
    # The tables hold nothing invented: each code and name comes from a real run.
    lines = [line for dummy, line in recorded_lines() if line and not line.startswith(NOT_ENTRIES)]
    assert {line[:11] for line in lines} == set(CODES)
    assert {line[12:].split(b" ", 1)[1] for line in lines} == set(NAMES)


@pytest.mark.parametrize("line", [
    b"", b"cannot delete non-empty directory: kind-a", b">f+++++++++ x", b">f+++++++++  name",
    b">f+++++++++ 12", b"?f+++++++++ 1 name", b">q+++++++++ 1 name", b".f......... 3 unchanged",
])
def test_parse_line_refuses_what_is_not_an_entry(line):
    assert _tree_verify.parse_line(line) is None


# -- unescape and display -------------------------------------------------------------------------

def undisplay(text):
    """The inverse of display, to prove no two raw names share one displayed text."""
    out, index = bytearray(), 0
    while index < len(text):
        if text[index] != "\\":
            out += text[index].encode("utf-8")
            index += 1
            continue
        marker = text[index + 1]
        if marker == "\\":
            out += b"\\"
            index += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}[marker]
        code = int(text[index + 2:index + 2 + width], 16)
        out += bytes([code]) if marker == "x" else chr(code).encode("utf-8", "surrogatepass")
        index += 2 + width
    return bytes(out)


@pytest.mark.parametrize("printed,raw", [
    (b"plain.txt", b"plain.txt"),
    (b"new\\#012line", b"new\nline"),
    (b"back\\#134#123slash", b"back\\#123slash"),
    (b"bad\\#377", b"bad\xff"),
    (b"a\\#12b", b"a\\#12b"),  # not three octal digits: rsync left it alone, so must we
    (b"\\#134\\#134", b"\\\\"),
])
def test_unescape_undoes_rsyncs_escapes(printed, raw):
    assert _tree_verify.unescape(printed) == raw


def test_display_of_recorded_names():
    assert _tree_verify.display(b"names/new\nline") == "names/new\\x0aline"
    assert _tree_verify.display(b"names/tab\there") == "names/tab\\x09here"
    assert _tree_verify.display(b"names/bad\xffbyte") == "names/bad\\xffbyte"
    assert _tree_verify.display(b"names/back\\#123slash") == "names/back\\\\#123slash"
    assert _tree_verify.display("names/한국어.txt".encode()) == "names/한국어.txt"
    assert _tree_verify.display(b"names/arrow -> here") == "names/arrow -> here"


def test_every_byte_displays_unambiguously():
    raw_names = [bytes([byte]) for byte in range(256)]
    raw_names += [b"a" + bytes([first, second]) for first in range(256) for second in (0x80, 0x85, 0xa0, 0xbf)]
    # Non-printable characters that are valid UTF-8 must not look like raw bytes that are not.
    raw_names += [chr(code).encode() for code in range(0x80, 0x100)]
    raw_names += ["\U000e0001".encode(), "\ue000".encode() + b"1", "\U0010ffff".encode(), "\U00010fff".encode() + b"f"]
    shown = {}
    for raw in raw_names:
        text = _tree_verify.display(raw)
        assert text.isprintable(), raw
        assert undisplay(text) == raw
        assert shown.setdefault(text, raw) == raw, "%r and %r both display as %r" % (shown[text], raw, text)


def test_display_round_trips_random_names():
    rng = random.Random(20240102)
    for dummy in range(2000):
        raw = bytes(rng.randrange(256) for dummy in range(rng.randrange(1, 12)))
        assert undisplay(_tree_verify.display(raw)) == raw


# -- compare_options ------------------------------------------------------------------------------

def test_compare_options_by_depth():
    assert ATTRS == ["--links", "--numeric-ids", "--perms", "--times", "--owner", "--group", "--devices",
                     "--specials", "--hard-links", "--acls", "--xattrs"]
    assert CHECKSUM == ATTRS + ["--checksum"]


@pytest.mark.parametrize("name,option", _tree_verify.ATTRIBUTES)
def test_each_ignore_removes_its_option(name, option):
    ignore = [name, "acls"] if name == "perms" else [name]
    argv = _tree_verify.compare_options("attributes", ignore)
    assert option not in argv
    assert set(ATTRS) - set(argv) == {opt for key, opt in _tree_verify.ATTRIBUTES if key in ignore}


def test_ignore_dir_times_and_times():
    assert _tree_verify.compare_options("attributes", ["dir_times"]) == ATTRS + ["--omit-dir-times"]
    # Without --times rsync still sends (and lists) every file whose mtime differs, see the recorded
    # tree-no-times-quick-check: --size-only keeps mtimes out of the quick check.
    assert "--size-only" in _tree_verify.compare_options("attributes", ["times"])
    assert "--size-only" not in _tree_verify.compare_options("checksum", ["times"])


def test_ignore_times_recorded_run_lists_no_mtime_difference():
    dummy, stdout, dummy, rc = recorded("tree-ignore-times")
    items = [_tree_verify.parse_line(line) for line in stdout]
    items = {item.name: item for item in items if item}
    assert rc == 0 and b"mtime.txt" not in items and b"dirtime" not in items
    assert not [item for item in items.values() if "mtime" in item.differs]
    assert items[b"size.txt"].differs == ("size",)


def test_perms_without_acls_is_refused_naming_ignore():
    with pytest.raises(ValueError) as e:
        _tree_verify.compare_options("attributes", ["perms"])
    assert str(e.value).startswith("ignore:") and "acls" in str(e.value)


# -- TreeVerify replayed on the recorded runs -----------------------------------------------------

class Replay:
    """A runner that checks each pass's command line against the recorded one and replays its
    recorded stdout, stderr and exit code. The lists given to --files-from must hold the names
    capture.sh gave rsync (order aside: rsync sorts them)."""

    def __init__(self, source, target, *runs):
        self.paths = [(SRC + "/", source.rstrip("/") + "/"), (DST + "/", target.rstrip("/") + "/")]
        self.runs = list(runs)
        self.seen = []
        self.unrecorded = ()  # options the module adds that the recorded run did not have

    def __call__(self, argv, on_line):
        name = self.runs[len(self.seen)]
        self.seen.append(name)
        want, stdout, stderr, rc = recorded(name)
        want = [dict(self.paths).get(arg, arg) for arg in want]
        lists = [(i, arg) for i, arg in enumerate(argv) if arg.startswith("--files-from=")]
        if lists:
            index, arg = lists[0]
            with open(arg[len("--files-from="):], "rb") as handle:
                written = handle.read().split(b"\0")[:-1]
            list_name = os.path.basename(want[index])[:-len(".list")]
            assert sorted(written) == sorted(recorded_list(list_name)), name
            want[index] = arg
        assert [arg for arg in argv if arg in want or arg not in self.unrecorded] == want, name
        for line in stdout:
            on_line(line)
        return rc, stderr


def verify(replay, depth="attributes", source=SRC, target=DST, daemon=False, **kwargs):
    compare = _tree_verify.compare_options(depth, [])
    runner = Replay(source, target, *replay)
    tree = _tree_verify.TreeVerify(RSYNC, source, target, compare, connection(daemon=daemon), runner=runner,
                                   **kwargs)
    return tree, runner


def totals(**counts):
    return dict(dict.fromkeys(TOTAL_KEYS, 0), **counts)


HOSTILE = ["names/ with  spaces ", "names/-leading-dash", "names/한국어.txt", "names/arrow -> here",
           "names/back\\\\#123slash", "names/bad\\xffbyte", "names/new\\x0aline", "names/tab\\x09here"]
# What capture.sh made different, as the report shows it (path, entry, size, differs).
DIFFERENT = [("acl.txt", "file", 9, ["acl"]), ("group.txt", "file", 11, ["group"]),
             ("hard-b", "file", 7, ["hard_links"]), ("link", "symlink", 0, ["target"]),
             ("mtime.txt", "file", 11, ["mtime"]), ("owner.txt", "file", 11, ["owner"]),
             ("perms.txt", "file", 11, ["perms"]), ("size.txt", "file", 10, ["size"]),
             ("xattr.txt", "file", 11, ["xattr"]), ("dirtime", "dir", 0, ["mtime"])]
DIFFERENT += [(name, "file", 6, ["size"]) for name in HOSTILE]
MISSING = [("kind-a", "file", 2), ("missing-fifo", "special", 0), ("missing.txt", "file", 8),
           ("kind-b", "dir", 0), ("kind-b/inner.txt", "file", 2), ("missing-dir", "dir", 0),
           ("missing-dir/deeper", "dir", 0), ("missing-dir/deeper/inner.txt", "file", 2),
           ("missing-empty", "dir", 0), ("names/dir\\x09with tab", "dir", 0),
           ("names/dir\\x09with tab/inner", "file", 2)]
# Sizes from the target: kind-a/inner.txt is 3 bytes there (the source's kind-a is a 2-byte file).
ORPHANED = [("orphan.txt", "file", 7), ("kind-a/inner.txt", "file", 3), ("names/orphan\\x0anewline", "file", 7),
            ("names/orphan\\xff", "file", 7), ("orphan-dir", "dir", 0), ("orphan-dir/deeper", "dir", 0),
            ("orphan-dir/deeper/inner.txt", "file", 2)]
ATTRIBUTES_TOTALS = totals(diff_dir=1, diff_file=17, diff_bytes=129, missing_dir=5, missing_file=6,
                           missing_bytes=16, orphaned_dir=2, orphaned_file=5, orphaned_bytes=26)


def as_set(differences):
    return {(d["type"], d["path"], d["entry"], d["size"], tuple(d["differs"])) for d in differences}


def expected_set(different=None, missing=None, orphaned=None):
    different = DIFFERENT if different is None else different
    missing = MISSING if missing is None else missing
    orphaned = ORPHANED if orphaned is None else orphaned
    return ({("different", p, e, s, tuple(d)) for p, e, s, d in different}
            | {("missing", p, e, s, ()) for p, e, s in missing}
            | {("orphaned", p, e, s, ()) for p, e, s in orphaned})


def test_attributes_settle_0():
    tree, runner = verify(["tree-attributes", "orphans-attributes"])
    report = tree.run()
    assert runner.seen == ["tree-attributes", "orphans-attributes"]
    assert [p["label"] for p in report["passes"]] == ["tree", "orphans"]
    assert report["totals"] == ATTRIBUTES_TOTALS and not report["clean"]
    assert as_set(report["differences"]) == expected_set()
    assert len(report["differences"]) == len(expected_set())
    assert report["in_flight"] == dict(totals=totals(), differences=[], differences_truncated=False, differs_counts={})
    counted = {}
    for entry in report["differences"]:
        for name in entry["differs"]:
            counted[name] = counted.get(name, 0) + 1
    assert report["differs_counts"] == counted and report["differs_counts"]["hard_links"] == 1
    # 34 = the 33 entries capture.sh made in the source tree, plus the tree's top directory.
    assert report["entries_checked"] == 34 and report["vanished"] == 0


def test_checksum_settle_0_sees_content():
    tree, dummy = verify(["tree-checksum", "orphans-checksum"], depth="checksum")
    report = tree.run()
    different = [d for d in DIFFERENT if d[3] != ["size"]] + [("content.txt", "file", 13, ["checksum"])]
    different += [(p, e, s, ["checksum", "size"]) for p, e, s, d in DIFFERENT if d == ["size"]]
    assert as_set(report["differences"]) == expected_set(different=different)
    assert report["totals"] == dict(ATTRIBUTES_TOTALS, diff_file=18, diff_bytes=142)


def test_daemon_target_same_report():
    tree, dummy = verify(["daemon-attributes", "orphans-attributes"], target=DAEMON, daemon=True)
    # The orphans pass runs target -> source; replay it against the recorded local one.
    tree.runner.paths[1] = (DST + "/", DAEMON + "/")
    tree.runner.unrecorded = ("--contimeout=30",)  # the orphans pass was recorded locally only
    report = tree.run()
    assert report["totals"] == ATTRIBUTES_TOTALS
    assert as_set(report["differences"]) == expected_set()


def test_clean_pair():
    tree, runner = verify(["clean"], depth="checksum", target="/cap-t/clean-dst")
    runner.paths[1] = ("/cap-t/clean-dst/", "/cap-t/clean-dst/")
    report = tree.run()
    assert report["clean"] and report["totals"] == totals() and report["differences"] == []
    assert report["entries_checked"] == 34 and [p["label"] for p in report["passes"]] == ["tree"]


def test_limit_keeps_the_first_of_each_kind_and_counts_all():
    tree, dummy = verify(["tree-attributes", "orphans-attributes"], limit=1)
    report = tree.run()
    assert report["totals"] == ATTRIBUTES_TOTALS and report["differences_truncated"]
    assert [(d["type"], d["path"]) for d in report["differences"]] == [
        ("different", "acl.txt"), ("missing", "kind-a"), ("orphaned", "orphan.txt")]
    tree, dummy = verify(["tree-attributes", "orphans-attributes"], limit=0)
    report = tree.run()
    assert report["differences"] == [] and report["differences_truncated"]


def source_like_the_recorded_one(root):
    """The source entries of the recorded tree (names only: the ctime rule needs them to exist)."""
    dirs = {b"dirtime", b"kind-b", b"missing-dir", b"missing-dir/deeper", b"missing-empty", b"names",
            b"names/dir\twith tab"}
    for name in sorted(recorded_list("recheck-attributes") + [b"names"], key=lambda n: n.count(b"/")):
        path = os.path.join(os.fsencode(root), name)
        if name in dirs:
            os.makedirs(path, exist_ok=True)
        else:
            open(path, "wb").close()
    # hard-a and hard-b are one hard-link group on the source, as in the recording.
    root = os.fsencode(root)
    os.unlink(os.path.join(root, b"hard-b"))
    os.link(os.path.join(root, b"hard-a"), os.path.join(root, b"hard-b"))


def touch_ctime(path):
    """Change the inode (chmod), waiting until the kernel's clock moved the ctime on."""
    before = os.lstat(path).st_ctime_ns
    deadline = time.time() + 5
    while os.lstat(path).st_ctime_ns == before and time.time() < deadline:
        time.sleep(0.005)
        os.chmod(path, 0o600 if os.lstat(path).st_mode & 0o077 else 0o644)
    assert os.lstat(path).st_ctime_ns != before


def settle_verify(tmp_path, recheck, orphans, changed=()):
    source = str(tmp_path)
    source_like_the_recorded_one(source)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        for name in changed:  # written on the source while the verify waits
            touch_ctime(os.path.join(source, name))

    tree, runner = verify(["tree-attributes", recheck, orphans], source=source, settle=2.5, sleep=sleep,
                          workdir=str(tmp_path.parent))
    report = tree.run()
    assert slept == [2.5] and runner.seen == ["tree-attributes", recheck, orphans]
    assert [p["label"] for p in report["passes"]] == ["tree", "recheck", "orphans"]
    return report


def split(entries, paths):
    return [e for e in entries if e[0] not in paths], [e for e in entries if e[0] in paths]


def test_settle_source_changed_meanwhile_is_in_flight(tmp_path):
    report = settle_verify(tmp_path, "recheck-attributes", "orphans-attributes", changed=["size.txt"])
    persistent, in_flight = split(DIFFERENT, {"size.txt"})
    assert as_set(report["differences"]) == expected_set(different=persistent)
    assert as_set(report["in_flight"]["differences"]) == expected_set(different=in_flight, missing=[], orphaned=[])
    assert report["totals"] == dict(ATTRIBUTES_TOTALS, diff_file=16, diff_bytes=119)
    assert report["in_flight"]["totals"] == totals(diff_file=1, diff_bytes=10)


def test_settle_fixed_on_the_target_meanwhile_is_in_flight(tmp_path):
    # recheck-settled: mtime.txt and perms.txt were put right on the target, orphan.txt removed.
    report = settle_verify(tmp_path, "recheck-settled", "orphans-settled")
    persistent, in_flight = split(DIFFERENT, {"mtime.txt", "perms.txt"})
    still_orphaned, gone = split(ORPHANED, {"orphan.txt"})
    assert as_set(report["differences"]) == expected_set(different=persistent, orphaned=still_orphaned)
    # A vanished orphan's size is no longer known: 0.
    assert as_set(report["in_flight"]["differences"]) == expected_set(
        different=in_flight, missing=[], orphaned=[("orphan.txt", "file", 0)])
    assert report["in_flight"]["totals"] == totals(diff_file=2, diff_bytes=22, orphaned_file=1)


def test_orphan_whose_source_directory_changed_meanwhile_is_in_flight(tmp_path):
    # A writer creating and deleting names in names/ while the verify waits: what is only on the
    # target there may be a deletion lsyncd has not shipped yet. Elsewhere orphans still count.
    report = settle_verify(tmp_path, "recheck-attributes", "orphans-attributes", changed=["names"])
    kept, churned = split(ORPHANED, {"names/orphan\\x0anewline", "names/orphan\\xff"})
    assert len(churned) == 2
    assert as_set(report["differences"]) == expected_set(orphaned=kept)
    assert as_set(report["in_flight"]["differences"]) == expected_set(different=[], missing=[], orphaned=churned)
    assert report["in_flight"]["totals"] == totals(orphaned_file=2, orphaned_bytes=14)


def test_hard_link_survives_settle(tmp_path):
    # The recheck lists hard-b without its group's other name, so rsync 3.2.7 prints nothing for
    # it; the group lasts because its source entry did not change.
    report = settle_verify(tmp_path, "recheck-attributes", "orphans-attributes")
    assert "hard-b" in {d["path"] for d in report["differences"]}
    assert "hard-b" not in {d["path"] for d in report["in_flight"]["differences"]}


def test_hard_link_whose_source_changed_is_in_flight(tmp_path):
    report = settle_verify(tmp_path, "recheck-attributes", "orphans-attributes", changed=["hard-b"])
    assert "hard-b" in {d["path"] for d in report["in_flight"]["differences"]}


def test_settle_without_differences_does_not_wait():
    slept = []
    tree, runner = verify(["clean"], depth="checksum", target="/cap-t/clean-dst", settle=5, sleep=slept.append)
    runner.paths[1] = ("/cap-t/clean-dst/", "/cap-t/clean-dst/")
    assert tree.run()["clean"] and slept == []


# -- failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("run,source,target,daemon,option,words", [
    ("daemon-unknown-module", SRC, "rsync://127.0.0.1:8873/nope", True, "target", "Unknown module 'nope'"),
    ("daemon-refused", SRC, "rsync://127.0.0.1:8874/dst", True, "target", "Connection refused"),
    ("daemon-auth-failed", SRC, "rsync://verifier@127.0.0.1:8873/locked", True, "password_file", "auth failed"),
    ("no-source", "/cap-t/none", DST, False, "path", 'change_dir "/cap-t/none" failed'),
    ("unreadable-dir", "/cap-t/locked-src", "/cap-t/locked-dst", False, "path", "Permission denied"),
    ("no-target", SRC, "/cap-t/none", False, "target", "does not exist"),
])
def test_failures_name_the_option(run, source, target, daemon, option, words):
    compare = _tree_verify.compare_options("attributes", [])
    password = "/etc/verify.password" if option == "password_file" else None
    runner = Replay(source, target, run)
    runner.paths[0] = (source + "/", source + "/")
    tree = _tree_verify.TreeVerify(RSYNC, source, target, compare,
                                   _tree_verify.connection_options(password, None, 600, 30, daemon=daemon),
                                   runner=runner)
    with pytest.raises(_tree_verify.VerifyError) as e:
        tree.run()
    assert e.value.option == option
    assert str(e.value).startswith(option + ": ") and words in str(e.value)
    assert e.value.rc == (None if run == "no-target" else recorded(run)[3])


def test_recorded_quirks(tmp_path):
    # A source name gone before a list pass: --ignore-missing-args keeps rsync quiet and at 0, so
    # the pass reports nothing and fails nothing.
    tree, runner = verify(["missing-arg"])
    list_file = tmp_path / "missing-arg.list"
    list_file.write_bytes(b"".join(name + b"\0" for name in recorded_list("missing-arg")))
    items = []
    argv = _tree_verify.list_argv(RSYNC, ATTRS, connection(), [], str(list_file), SRC, DST)
    assert tree._run("recheck", argv, items.append) == "" and items == []
    # An unreadable source file is no error in a dry run: with --checksum rsync 3.2.7 reports it as
    # different content (it could not read it), without it not at all.
    dummy, stdout, dummy, dummy = recorded("unreadable-file")
    assert [_tree_verify.parse_line(line) for line in stdout if _tree_verify.parse_line(line)] == [
        Item("different", "file", 7, b"secret.txt", ("checksum",))]
    tree, runner = verify(["unreadable-file-attributes"], source="/cap-t/locked-src", target="/cap-t/locked-dst")
    runner.paths[0] = ("/cap-t/locked-src/", "/cap-t/locked-src/")
    report = tree.run()
    assert report["clean"] and [p["label"] for p in report["passes"]] == ["tree"]


# -- progress -------------------------------------------------------------------------------------

def test_progress_option_only_with_a_progress_file():
    compare = _tree_verify.compare_options("attributes", [])
    plain = _tree_verify.tree_argv(RSYNC, compare, connection(), [], SRC, DST)
    watched = _tree_verify.tree_argv(RSYNC, compare, connection(), [], SRC, DST, progress=True)
    assert "--info=progress2" not in plain
    # Right after the output options, before the connection's.
    at = plain.index("--no-human-readable") + 1
    assert watched == plain[:at] + ["--info=progress2"] + plain[at:]
    plain = _tree_verify.list_argv(RSYNC, compare, connection(), [], "/l", SRC, DST)
    watched = _tree_verify.list_argv(RSYNC, compare, connection(), [], "/l", SRC, DST, progress=True)
    at = plain.index("--no-human-readable") + 1
    assert "--info=progress2" not in plain and watched == plain[:at] + ["--info=progress2"] + plain[at:]


def test_split_lines_ends_a_line_at_a_carriage_return_too():
    # rsync 3.2.7's output with --info=progress2: each update ends with \r, an entry line
    # follows a \n; the chunks end anywhere.
    stream = (b".d..t...... 4096 ./\n\r          0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1001/1012)\r"
              b"          0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=271/312)\n>f+++++++++ 2 d1/tab\there\n"
              b"\r        202   0%  197.27kB/s    0:00:00 (xfr#2, to-chk=0/312)\n\nNumber of files: 312")
    lines = []
    _tree_verify.split_lines([stream[i:i + 7] for i in range(0, len(stream), 7)], lines.append)
    assert lines == [b".d..t...... 4096 ./",
                     b"          0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1001/1012)",
                     b"          0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=271/312)",
                     b">f+++++++++ 2 d1/tab\there",
                     b"        202   0%  197.27kB/s    0:00:00 (xfr#2, to-chk=0/312)",
                     b"Number of files: 312"]


@pytest.mark.parametrize("detail,expected", [
    ("xfr#0, to-chk=271/312", (41, 312, True)),
    ("xfr#12, ir-chk=1001/1012", (11, 1012, False)),
    ("", None),
])
def test_parse_checked(detail, expected):
    assert _tree_verify.parse_checked(detail) == expected


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def progress_line(text):
    from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync
    return _rsync.parse_progress(text)


def test_progress_total_from_the_scan_until_rsync_has_listed_the_tree(tmp_path):
    import json

    clock = Clock()
    path = tmp_path / "verify.progress"
    progress = _tree_verify.VerifyProgress(str(path), 0, clock=clock)
    progress.begin("tree", "pass 1: the whole tree")
    clock.now += 10
    progress.rsync_line(progress_line("0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1000/2000)"))
    progress.scanned = 10001  # the scan has counted the source
    clock.now += 10
    progress.rsync_line(progress_line("0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=3000/5000)"))
    clock.now += 10
    progress.rsync_line(progress_line("0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=4000/10000)"))
    progress.begin("orphans", "pass 3: the 4 entries only on the target", expected=4)
    clock.now += 1
    progress.finish("4 lasting differences", entries=10000)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["files_done"], line["files_total"], line["percent"]) for line in lines] == [
        (0, None, None),                 # nothing counted yet
        (1000, None, None),              # rsync's list still grows: not a total
        (2000, 10001, 19),               # the scan's count
        (6000, 10000, 60),               # rsync has listed the whole tree
        (0, 4, 0),                       # a list pass counts against its list
        (10000, 10000, 100),
    ]
    assert lines[1]["note"] == "pass 1: the whole tree, counting the source"
    assert lines[3]["rate"] == 200.0 and lines[3]["eta"] == 20.0  # 6000 entries in 30 s, 4000 to go
    assert lines[4]["rate"] is None  # a new pass measures its own rate
    assert lines[-1]["final"] and lines[-1]["outcome"] == "4 lasting differences"


def test_settle_writes_a_line_per_interval_without_a_rate(tmp_path):
    import json

    slept = []
    path = tmp_path / "verify.progress"
    progress = _tree_verify.VerifyProgress(str(path), 2)
    tree = _tree_verify.TreeVerify(RSYNC, SRC, DST, [], [], settle=5, sleep=slept.append, progress=progress)
    tree._settle(3)
    progress.file.close()
    assert slept == [2, 2, 1]
    notes = [(json.loads(line)["note"], json.loads(line)["rate"]) for line in path.read_text().splitlines()]
    assert notes == [("settling: 3 differences checked again in 5s", None),
                     ("settling: 3 differences checked again in 3s", None),
                     ("settling: 3 differences checked again in 1s", None)]
