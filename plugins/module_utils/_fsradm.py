# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive ``fsradm``, the FSR administration command: build command lines, run them, parse output.

Three separate layers, as the house style asks:

* ``build_command`` turns an action and its flags into an argv list, in the forms the FSR
  operations manual shows (``fsradm secondary -l r0``, ``fsradm primary r0 -f``);
* ``Fsradm`` runs command lines through ``module.run_command``, keeps the list of commands run
  that change something and turns a non-zero exit into ``FsradmError``;
  ``read_for`` runs a command that never exits by itself (``fsradm events``, a subscription) for a
  bounded time and then ends it;
* ``parse_status``, ``parse_result``, ``parse_events`` and ``parse_events_json`` are pure functions
  over the text ``fsradm`` prints, tested on the manual's sample outputs.

``wait_until`` is the bounded poll loop (deadline and interval) used for ``wait_for`` and verify.
"""
from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import subprocess
import time

FSRADM_ARGUMENT_SPEC = dict(
    fsradm_path=dict(type="str", default="fsradm"),
)

FILE_STATES = ("unknown", "fileless", "attaching", "detaching", "failed", "inconsistent",
               "consistent", "outdated", "up_to_date")
CONNECTION_STATES = ("standalone", "disconnecting", "connecting", "connected", "established",
                     "sync_source", "sync_source_paused", "sync_target", "sync_target_paused",
                     "repl_source", "repl_source_paused", "repl_target", "repl_target_paused")
# Connection states in which the two nodes are connected and authenticated.
LINKED_STATES = frozenset(CONNECTION_STATES[4:])
TOTAL_KEYS = ("diff_dir", "diff_file", "diff_bytes", "orphaned_dir", "orphaned_file", "orphaned_bytes",
              "missing_dir", "missing_file", "missing_bytes", "synced_bytes")

# Seconds a subscription gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE_SECONDS = 2.0

# Resource and node names: they end up in file names (``<config_dir>/<name>.json``), on fsradm's
# command line and in its whitespace-separated status output. Letters, digits, ``_``, ``.`` and
# ``-``, starting with a letter or digit: no ``/``, no ``..`` escape, no option-like ``-x``.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# fsradm reads ``all`` as every resource (``status all``, ``verify all``).
RESERVED_NAMES = ("all",)

_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}


class FsradmError(Exception):
    """``fsradm`` exited non-zero; ``message`` is what it printed (e.g. ``declined r0: not up to date``)."""

    def __init__(self, argv, rc, out, err):
        self.argv = argv
        self.rc = rc
        self.stdout = out
        self.stderr = err
        self.message = (err or "").strip() or (out or "").strip() or "exit status %s" % rc
        super().__init__(self.message)

    @property
    def declined(self):
        return self.message.startswith("declined")


def check_name(option, value, allow_all=False):
    """None if ``value`` is a usable resource or node name, else a message naming ``option``."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        return ("%s=%s: expected a name of letters, digits, '_', '.' and '-' starting with a letter or digit "
                "(at most 128 characters, no '/'), such as r0" % (option, value))
    if value in RESERVED_NAMES and not allow_all:
        return "%s=%s: fsradm reads %s as every resource; choose another name" % (option, value, value)
    return None


# --------------------------------------------------------------------------- building

def build_command(binary, action, resource=None, peer=None, force=False, lock=False, unlock=False,
                  verbose=False, json_output=False):
    """The argv of one ``fsradm`` call, in the manual's word order."""
    argv = [binary] + action.split()
    if verbose:
        argv.append("-v")
    if json_output:
        argv.append("--json")
    if lock:
        argv.append("-l")
    if unlock:
        argv.append("-u")
    if resource:
        argv.append(resource)
    if peer:
        argv.append(peer)
    if force:
        argv.append("-f")
    return argv


def display_command(argv):
    """``argv`` as a shell line with the binary shown by its base name (``fsradm primary r0 -f``)."""
    return " ".join(shlex.quote(a) for a in [os.path.basename(argv[0])] + list(argv[1:]))


def find_fsradm(module, path):
    """The absolute path of the ``fsradm`` binary, or fail_json naming the option."""
    if os.sep in path:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        module.fail_json(msg="fsradm_path=%s: no executable file there; install FSR or point fsradm_path "
                             "at the fsradm binary" % path)
    found = module.get_bin_path(path, required=False)
    if not found:
        module.fail_json(msg="fsradm_path=%s: %s was not found on PATH; install FSR or set fsradm_path to "
                             "the full path of the fsradm binary" % (path, path))
    return found


# --------------------------------------------------------------------------- running

class Fsradm:
    """Runs ``fsradm`` for one module invocation and remembers the changing commands."""

    def __init__(self, module, binary):
        self.module = module
        self.binary = binary
        self.commands = []

    def command(self, action, resource=None, **kwargs):
        return build_command(self.binary, action, resource, **kwargs)

    def query(self, argv, check_rc=True):
        """Run a read-only command (also in check mode); return (rc, stdout, stderr)."""
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if check_rc and rc != 0:
            raise FsradmError(argv, rc, out, err)
        return rc, out, err

    def change(self, argv):
        """Run a command that changes FSR state; in check mode only record it."""
        self.commands.append(display_command(argv))
        if self.module.check_mode:
            return ""
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise FsradmError(argv, rc, out, err)
        return out

    def status(self):
        """All resources that are up on this node, parsed from ``fsradm status -v all``."""
        return parse_status(self.query(self.command("status", "all", verbose=True))[1])

    def resource(self, name):
        for res in self.status():
            if res["name"] == name:
                return res
        return None

    def meta_exists(self, name):
        """Whether ``fsradm meta check`` reports meta data (an assumption; see the module notes)."""
        rc = self.query(self.command("meta check", name), check_rc=False)[0]
        return rc == 0

    def result(self, name):
        rc, out, err = self.query(self.command("result", name), check_rc=False)
        if rc != 0:
            return None
        return parse_result(out)

    def events(self, names, seconds, grace=TERMINATE_GRACE_SECONDS):
        """Subscribe to ``fsradm events --json`` of each of ``names`` for ``seconds``; {name: events}.

        The manual describes ``fsradm events`` as a subscription that streams events as they
        happen, so it is read for a bounded time and then ended (see ``read_for``).
        """
        argvs = [self.command("events", name, json_output=True) for name in names]
        out = {}
        for name, argv, (rc, text, err) in zip(names, argvs, read_for(argvs, seconds, grace)):
            if rc is not None and rc != 0:
                raise FsradmError(argv, rc, text, err)
            if rc is None:  # ended by us: an event cut off half-way is dropped
                text = text[:text.rfind("\n") + 1]
            out[name] = parse_events_json(text)
        return out


def read_for(argvs, seconds, grace=TERMINATE_GRACE_SECONDS, clock=time.monotonic):
    """Run each command of ``argvs`` at once and read its output for at most ``seconds``.

    A command still running at the deadline is ended: SIGTERM, then SIGKILL if it has not
    exited ``grace`` seconds later. Only the processes started here are signalled, by their
    own PID. Returns [(rc, stdout, stderr)] in the order of ``argvs``; ``rc`` is None for a
    command that was ended, its exit status when it exited by itself.
    """
    env = dict(os.environ, LC_ALL="C")
    procs = []
    selector = selectors.DefaultSelector()
    chunks = {}
    try:
        for argv in argvs:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, close_fds=True)
            procs.append(proc)
            for stream in (proc.stdout, proc.stderr):
                chunks[stream] = []
                selector.register(stream, selectors.EVENT_READ)
        deadline = clock() + max(seconds, 0)
        _drain(selector, chunks, deadline, clock)
        reading = set(key.fileobj for key in selector.get_map().values())
        for proc in procs:
            # Both pipes closed: the process is exiting by itself, let it.
            if proc.poll() is None and proc.stdout not in reading and proc.stderr not in reading:
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        ended = []
        for proc in procs:
            if proc.poll() is None:
                ended.append(proc)
                proc.terminate()
        for proc in ended:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The processes are gone: read what they wrote before they ended (bounded, in case a
        # grandchild still holds a pipe open).
        _drain(selector, chunks, clock() + grace, clock)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        selector.close()
        for stream in chunks:
            stream.close()
    results = []
    for proc in procs:
        out = b"".join(chunks[proc.stdout]).decode("utf-8", "replace")
        err = b"".join(chunks[proc.stderr]).decode("utf-8", "replace")
        results.append((None if proc in ended else proc.returncode, out, err))
    return results


def _drain(selector, chunks, deadline, clock):
    """Read from every registered stream until all reach end of file or ``deadline`` passes."""
    while selector.get_map():
        remaining = deadline - clock()
        if remaining <= 0:
            return
        for key, _events in selector.select(remaining):
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fileobj].append(data)
            else:
                selector.unregister(key.fileobj)


# --------------------------------------------------------------------------- parsing

def _value(key, raw):
    if raw == "none":
        return None
    if key == "locked":
        return raw.lower() == "true"
    if key == "pending":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


def parse_status(text):
    """Parse ``fsradm status [-v]`` output into a list of resources with their peers.

    Tolerant by design: the output is read as whitespace-separated tokens, so the manual's
    multi-line layout and its flattened one-line rendering parse the same way. A token followed
    by ``role:...`` starts a resource (``r0`` or, with ``-v``, ``r0:node1``); a token followed by
    ``state:...`` starts a peer of the last resource; ``key:value`` tokens fill the current item
    (keys with ``-`` become ``_``); anything else (the ``--watch`` footer) is ignored.
    """
    tokens = text.split()
    resources = []
    current = None
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt.startswith("role:") and not tok.startswith(("role:", "state:")) and _header(tok):
            name, _sep, node = tok.partition(":")
            current = {"name": name, "node": node or None, "role": None, "file": None, "pending": None,
                       "locked": None, "peers": {}}
            resources.append(current)
            item = current
            continue
        if nxt.startswith("state:") and current is not None and ":" not in tok:
            item = {"name": tok, "state": None, "peer_state": None, "role": None, "file": None,
                    "last_synced": None}
            current["peers"][tok] = item
            continue
        key, sep, raw = tok.partition(":")
        if current is None or not sep or not raw or not _KEY_RE.match(key):
            continue
        key = key.replace("-", "_")
        item[key] = _value(key, raw)
    return resources


# Keys fsradm prints in status lines; a ``key:value`` token with one of them is never a header.
STATUS_KEYS = frozenset(["role", "file", "pending", "locked", "last-promoted", "state", "peer-state",
                         "repl-started", "last-synced"])


def _header(tok):
    key, sep, rest = tok.partition(":")
    if not key or key in STATUS_KEYS:
        return False
    return not sep or bool(rest and ":" not in rest)


def parse_result(text):
    """Parse ``fsradm result <res>`` JSON: summary, integer totals and the file list.

    ``finished`` is true once ``summary.end_time`` is set; ``differences`` is the number of
    differing entries (the ``*_dir`` and ``*_file`` counters); ``clean`` is true when every
    counter but ``synced_bytes`` is zero.
    """
    data = json.loads(text)
    result = data.get("result") or {}
    summary = result.get("summary") or {}
    totals = {}
    for key, raw in (result.get("totals") or {}).items():
        try:
            totals[key] = int(raw)
        except (TypeError, ValueError):
            totals[key] = raw
    return {
        "id": data.get("id"),
        "peer_node": summary.get("peer_node"),
        "start_time": summary.get("start_time"),
        "end_time": summary.get("end_time") or None,
        "finished": bool(summary.get("end_time")),
        "canceled": bool(summary.get("canceled")),
        "totals": totals,
        "differences": sum(v for k, v in totals.items() if k.endswith(("_dir", "_file")) and isinstance(v, int)),
        "clean": not any(v for k, v in totals.items() if k != "synced_bytes"),
        "files": result.get("files") or [],
        "file_count": result.get("file_count", len(result.get("files") or [])),
    }


def parse_events_json(text):
    """Parse ``fsradm events --json``: one JSON object per event, newline-separated or not."""
    decoder = json.JSONDecoder()
    events = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        events.append({"type": obj.get("type"), "timestamp": obj.get("timestamp"),
                       "data": obj.get("datas") or {}})
    return events


_EVENT_START = re.compile(r"(?=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\s+type=)")


def parse_events(text):
    """Parse plain ``fsradm events``: ``<timestamp> type=<t> key=value ...`` per event."""
    events = []
    for chunk in _EVENT_START.split(text):
        fields = chunk.split()
        if not fields:
            continue
        data = {}
        etype = None
        for f in fields[1:]:
            key, sep, value = f.partition("=")
            if not sep:
                continue
            if key == "type":
                etype = value
            else:
                data[key] = value
        events.append({"type": etype, "timestamp": fields[0], "data": data})
    return events


def parse_size(value):
    """Bytes from an FSR size such as ``100M``, ``1G`` or ``4096`` (binary units); ValueError if not."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(value)
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(value)
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


# --------------------------------------------------------------------------- waiting

def wait_until(probe, timeout, interval=0.5, clock=time.monotonic, sleep=time.sleep):
    """Call ``probe()`` -> (done, value) until done or ``timeout`` seconds pass.

    Returns (done, last value, elapsed seconds). Always probes at least once and once more at
    the deadline, so a condition met at the last moment is not reported as a timeout.
    """
    start = clock()
    deadline = start + max(timeout, 0)
    while True:
        done, value = probe()
        now = clock()
        if done or now >= deadline:
            return done, value, now - start
        sleep(min(interval, max(deadline - now, 0)))


def describe(resource):
    """One line naming the state seen, for failure messages."""
    if not resource:
        return "resource not up"
    parts = ["role %s" % resource.get("role"), "file %s" % resource.get("file"),
             "locked %s" % str(resource.get("locked")).lower()]
    for name, peer in sorted((resource.get("peers") or {}).items()):
        parts.append("peer %s: %s/%s role %s file %s"
                     % (name, peer.get("state"), peer.get("peer_state"), peer.get("role"), peer.get("file")))
    return ", ".join(parts)
