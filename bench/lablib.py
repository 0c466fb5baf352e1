# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab for the benchmark cases that migrate: Podman hosts booting systemd, driven by Molecule.

The scenarios ``molecule/bench`` (one pair: old, new, client) and ``molecule/bench_pairs`` (two:
old -> new, old2 -> new2, a client each) create the hosts on the lab's own network with
``BENCH_FILES`` small files on every old server and a client writing to its old server over sshfs.
The migration itself is ``playbooks/migrate.yml`` exactly as a user runs it (through the
scenario's converge, with ``--tags`` to stop between phases), the rollback is the scenario's
side effect. Commands on the hosts go through ``podman exec``.

One lab at a time on a machine: ``Lab`` holds the lock ``make test`` takes for its scenarios
(waiting for it, and saying so) and always removes its hosts.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time

import benchlib

LOCK = "/run/lock/nodowntime-lab.lock"
REPORT = os.path.join(benchlib.ROOT, ".tmp", "bench-lab", "reports", "report.json")
LOGS = os.path.join(benchlib.ROOT, ".tmp", "bench-lab", "logs")
VENV_BIN = os.path.join(benchlib.ROOT, ".venv", "bin")
LAB_ID = os.environ.get("NODOWNTIME_LAB_ID") or "nodowntime-lab"
# One host directory every lab host mounts at /lab-shared (tests/lab/create.yml).
SHARED_HOST = os.path.join(benchlib.ROOT, ".tmp", "lab", "shared")
SHARED_LAB = "/lab-shared"
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab_probe.py")
# What the migration's prepare phase gives old in molecule/bench: new's share and its login (the
# migration playbook's defaults: share `data`, user `nodowntime`).
SHARE_PASSWORD_FILE = "/etc/nodowntime/rsync-data.password"


def share_target(new="new"):
    """The rsync daemon share on the lab host ``new`` that old pushes to, as rsync names it."""
    return "nodowntime@%s::data" % host_ip(new)


def host_ip(name):
    """A lab host's address on the lab's own network (tests/lab/vars/lab.yml)."""
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(benchlib.ROOT, "tests", "lab", "vars", "lab.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["lab_hosts"][name]["ip"]


def shared(name):
    """``(host path, lab path)`` of ``name`` in the directory the lab hosts share; made empty."""
    host_path = os.path.join(SHARED_HOST, name)
    benchlib.drop_tree(host_path)
    os.makedirs(host_path)
    return host_path, SHARED_LAB + "/" + name


def _env(files):
    path = os.environ.get("PATH", "")
    return dict(os.environ, BENCH_FILES=str(files), LC_ALL="C.UTF-8", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0",
                ANSIBLE_COLLECTIONS_PATH=benchlib.COLLECTIONS, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                PATH=VENV_BIN + os.pathsep + path if VENV_BIN not in path.split(os.pathsep) else path)


class Lab:
    """One Molecule scenario's hosts, with ``files`` files on each old server."""

    def __init__(self, ctx, scenario, files):
        self.ctx = ctx
        self.scenario = scenario
        self.files = files
        self._lock = None
        self._step = 0
        self._logs = os.path.join(LOGS, "%s-%d-%s" % (scenario, files, time.strftime("%H%M%S")))

    # -- lifetime

    def __enter__(self):
        os.makedirs(self._logs, exist_ok=True)
        self._lock = open(LOCK, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.ctx.log("waiting for the lab lock (%s): another lab is up" % LOCK)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            self.molecule("destroy")
            self.molecule("create")  # includes the scenario's prepare: the tree and the writer
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.molecule("destroy")
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    # -- commands

    def molecule(self, command, *ansible_args):
        """``molecule COMMAND -s SCENARIO [-- ARGS]``; seconds it took. Output in .tmp/bench-lab/logs."""
        self._step += 1
        log = os.path.join(self._logs, "%02d-%s.log" % (self._step, command))
        argv = ["molecule", command, "-s", self.scenario] + (["--"] + list(ansible_args) if ansible_args else [])
        start = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.run(argv, cwd=benchlib.ROOT, env=_env(self.files), stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, check=False, timeout=3600)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            with open(log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:]
            raise RuntimeError("%s exited %d after %.0f s (log %s):\n%s"
                               % (" ".join(argv), proc.returncode, seconds, os.path.relpath(log, benchlib.ROOT), tail))
        return seconds

    def migrate(self, tags):
        """The migration playbook's phases ``tags`` (a list); seconds the playbook took."""
        return self.molecule("converge", "--tags", ",".join(tags))

    def rollback(self):
        return self.molecule("side-effect")

    def exec(self, host, argv, timeout=3600):
        """``argv`` on a lab host; its stdout (raises with stderr when it fails)."""
        proc = benchlib.run_checked(["podman", "exec", "%s-%s" % (LAB_ID, host)] + list(argv), timeout=timeout)
        return proc.stdout.decode("utf-8", "replace")

    def exec_detached(self, host, argv):
        """Start ``argv`` on a lab host and return at once; it must end by itself."""
        benchlib.run_checked(["podman", "exec", "--detach", "%s-%s" % (LAB_ID, host)] + list(argv))

    def probe(self):
        """Where the lab hosts find ``bench/lab_probe.py`` (copied into the shared directory)."""
        host_dir, lab_dir = os.path.join(SHARED_HOST, "bench-probe"), SHARED_LAB + "/bench-probe"
        os.makedirs(host_dir, exist_ok=True)
        shutil.copy(PROBE, os.path.join(host_dir, "lab_probe.py"))
        return lab_dir + "/lab_probe.py"

    def timed_on(self, host, argv):
        """Wall seconds of ``argv`` measured on the host itself (no ``podman exec`` start-up in it)."""
        script = ("import subprocess, sys, time, json; t = time.perf_counter(); "
                  "p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True); "
                  "print(json.dumps([time.perf_counter() - t, p.returncode, p.stdout[-4000:], p.stderr[-2000:]]))")
        seconds, rc, out, err = json.loads(self.exec(host, ["python3", "-c", script, json.dumps(argv)]))
        if rc != 0:
            raise RuntimeError("%s on %s exited %d: %s" % (" ".join(argv), host, rc, err))
        return seconds, out

    def writer(self, client, state):
        """Stop or start the client's writer (``state``: stop | start)."""
        self.exec(client, ["systemctl", state, "lab-writer.service"])

    @staticmethod
    def report():
        with open(REPORT, encoding="utf-8") as f:
            return json.load(f)


def step_seconds(cutover, name):
    """Seconds of one named step of a cutover's record in the report (None when it has none)."""
    benchlib.import_collection()
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.nodowntime.storage.plugins.module_utils._migration_report import seconds_between
    for step in cutover.get("steps") or []:
        if step.get("name") == name:
            seconds = seconds_between(step.get("start"), step.get("end"))
            return None if seconds is None else round(seconds, 3)
    return None
