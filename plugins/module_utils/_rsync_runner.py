# SPDX-License-Identifier: GPL-3.0-or-later
"""Run several rsync processes at once and follow their output while they run.

``AnsibleModule.run_command`` runs one process and returns its output when it has ended. The
copy needs N rsync processes at the same time, each one's output read while it runs (to write
progress lines an operator and the playbook can follow), and the copy's lock handed down to them
(``pass_fds``) so it stays held while any of them lives. Hence ``subprocess.Popen`` here, with
what run_command would otherwise provide done explicitly: no stdin, ``LC_ALL=C`` for parseable
output, both pipes drained by threads so no process blocks on a full pipe.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync


class Progress:
    """Appends rate-limited progress lines of several rsync processes to one file."""

    def __init__(self, path, interval):
        self.path = path
        self.interval = interval
        self.last = {}
        self.lock = threading.Lock()
        self.handle = None
        if path:
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self.handle = open(path, "w", encoding="utf-8")

    def write(self, label, text, force=False):
        if self.handle is None:
            return
        now = time.time()
        with self.lock:
            if not force and now - self.last.get(label, 0) < self.interval:
                return
            self.last[label] = now
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            self.handle.write("%s %s %s\n" % (stamp, label, text))
            self.handle.flush()

    def close(self):
        if self.handle is not None:
            self.handle.close()


class Run:
    """One rsync process: its output is read by threads while it runs."""

    def __init__(self, name, dirs, argv, progress, lock_fd):
        self.name = name
        self.dirs = dirs
        self.argv = argv
        self.progress = progress
        self.stdout = []
        self.stderr = []
        self.started = time.time()
        self.elapsed = 0.0
        self.rc = None
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(lock_fd,), env=dict(os.environ, LC_ALL="C"))
        self.threads = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout, True)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, False)),
        ]
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    def _read(self, stream, sink, watch_progress):
        rest = b""
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            sink.append(chunk)
            if watch_progress and self.progress.handle is not None:
                parts = re.split(rb"[\r\n]", rest + chunk)
                rest = parts.pop()
                for part in reversed(parts):
                    line = part.decode("utf-8", "replace")
                    if _rsync.parse_progress(line):
                        self.progress.write(self.name, line.strip())
                        break

    def wait(self):
        self.rc = self.process.wait()
        for thread in self.threads:
            thread.join()
        self.elapsed = time.time() - self.started
        return self.rc

    def text(self, which):
        return b"".join(self.stdout if which == "stdout" else self.stderr).decode("utf-8", "surrogateescape")
