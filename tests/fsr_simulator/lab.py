# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated FSR nodes for module tests, driven through the fsradm SIMULATOR next to this file.

``fsradm`` here is a simulator of FSR, a commercial product that cannot be installed in the test
environment; it follows the FSR operations manual (see README.md). It keeps every node's state
in one shared directory; ``Lab.on(node)`` switches which node the next module run (and its
fsradm calls) acts as, by setting ``FSRSIM_NODE`` and that node's configuration directory in
the environment.

``Lab.fsradm`` is a wrapper that logs every call (``Lab.calls()``) and then runs the simulator,
so a test can prove that a refused task ran no fsradm command at all.
"""
from __future__ import annotations

import os
import signal

SIMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fsradm")


class Lab:
    def __init__(self, tmp_path, monkeypatch, nodes=("a", "b")):
        self.root = tmp_path
        self.monkeypatch = monkeypatch
        self.nodes = nodes
        self.state_dir = str(tmp_path / "state")
        monkeypatch.setenv("FSRSIM_STATE_DIR", self.state_dir)
        # Long enough that a test can still see a sync in progress on a loaded 2-core machine.
        monkeypatch.setenv("FSRSIM_SYNC_SECONDS", "2.5")
        for n in nodes:
            (tmp_path / "etc" / n).mkdir(parents=True)
            (tmp_path / "data" / n).mkdir(parents=True)
        self.log = tmp_path / "fsradm-calls.log"
        self.fsradm = str(tmp_path / "bin" / "fsradm")
        (tmp_path / "bin").mkdir()
        with open(self.fsradm, "w", encoding="utf-8") as f:
            f.write('#!/bin/sh\necho "$FSRSIM_NODE $*" >> "%s"\nexec "%s" "$@"\n' % (self.log, SIMULATOR))
        os.chmod(self.fsradm, 0o755)
        self.current = None

    def hold_syncs(self):
        """From now on a synchronisation does not end by itself, however slow the machine: a test
        that must see a sync in progress holds it, looks, then calls ``release_syncs``."""
        self.monkeypatch.setenv("FSRSIM_SYNC_SECONDS", "86400")

    def release_syncs(self):
        """Let every synchronisation, held or not, end at the next fsradm call."""
        self.monkeypatch.setenv("FSRSIM_SYNC_SECONDS", "0")

    def on(self, node):
        self.current = node
        self.monkeypatch.setenv("FSRSIM_NODE", node)
        self.monkeypatch.setenv("FSRSIM_CONFIG_DIR", self.config_dir(node))
        return self

    def config_dir(self, node):
        return str(self.root / "etc" / node)

    def data(self, node):
        return self.root / "data" / node

    def calls(self):
        """Every fsradm call so far, as ``<node> <args>``."""
        try:
            with open(self.log, encoding="utf-8") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def node_list(self, **extra):
        out = []
        for i, n in enumerate(self.nodes):
            item = dict(name=n, url="127.0.0.1:%d" % (9830 + i), files=[str(self.data(n))])
            item.update(extra.get(n, {}))
            out.append(item)
        return out

    def args(self, **kwargs):
        """Module arguments for the current node; ``nodes`` defaults to the lab's nodes."""
        args = dict(name="r0", fsradm_path=self.fsradm, config_dir=self.config_dir(self.current),
                    wait_interval=0.1, wait_timeout=20)
        args.update(kwargs)
        return args

    def running(self):
        """PIDs of simulator processes of this lab that are still running (by their environment)."""
        marker = ("FSRSIM_STATE_DIR=%s" % self.state_dir).encode()
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmdline = f.read()
                with open("/proc/%s/environ" % pid, "rb") as f:
                    environ = f.read().split(b"\0")
                with open("/proc/%s/stat" % pid, "rb") as f:
                    zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
            except OSError:
                continue
            if SIMULATOR.encode() in cmdline and marker in environ and not zombie:
                pids.append(int(pid))
        return pids

    def kill_leftovers(self):
        """End simulator processes this lab's tests started and left running, by PID."""
        for pid in self.running():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
