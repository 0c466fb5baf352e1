# SPDX-License-Identifier: GPL-3.0-or-later
"""Two simulated FSR nodes for module tests, driven through the real fsradm simulator.

The simulator (tests/fsr_simulator/fsradm) keeps every node's state in one shared directory;
``Lab.on(node)`` switches which node the next module run (and its fsradm calls) acts as, by
setting ``FSRSIM_NODE`` and that node's configuration directory in the environment.
"""
from __future__ import annotations

import os

SIMULATOR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "fsr_simulator", "fsradm"))


class Lab:
    def __init__(self, tmp_path, monkeypatch, nodes=("a", "b")):
        self.root = tmp_path
        self.monkeypatch = monkeypatch
        self.nodes = nodes
        monkeypatch.setenv("FSRSIM_STATE_DIR", str(tmp_path / "state"))
        # Long enough that a test can still see a sync in progress on a loaded 2-core machine.
        monkeypatch.setenv("FSRSIM_SYNC_SECONDS", "2.5")
        for n in nodes:
            (tmp_path / "etc" / n).mkdir(parents=True)
            (tmp_path / "data" / n).mkdir(parents=True)
        self.current = None

    def on(self, node):
        self.current = node
        self.monkeypatch.setenv("FSRSIM_NODE", node)
        self.monkeypatch.setenv("FSRSIM_CONFIG_DIR", self.config_dir(node))
        return self

    def config_dir(self, node):
        return str(self.root / "etc" / node)

    def data(self, node):
        return self.root / "data" / node

    def node_list(self, **extra):
        out = []
        for i, n in enumerate(self.nodes):
            item = dict(name=n, url="127.0.0.1:%d" % (9830 + i), files=[str(self.data(n))])
            item.update(extra.get(n, {}))
            out.append(item)
        return out

    def args(self, **kwargs):
        """Module arguments for the current node; ``nodes`` defaults to the lab's nodes."""
        args = dict(name="r0", fsradm_path=SIMULATOR, config_dir=self.config_dir(self.current),
                    wait_interval=0.1, wait_timeout=20)
        args.update(kwargs)
        return args
