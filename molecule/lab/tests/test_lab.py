# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab is real: systemd runs the rsync daemon on new, and old's push arrived intact."""
from __future__ import annotations

import pytest

# Each test names the hosts it looks at itself, so it runs once (from new), not once per host.
testinfra_hosts = ["ansible://new"]

FILES = ["a.txt", "dir1/b.txt", "dir1/dir2/c.txt"]


@pytest.fixture(scope="module")
def old(host):
    return host.get_host("ansible://old", ansible_inventory=host.backend.ansible_inventory)


@pytest.fixture(scope="module")
def new(host):
    return host.get_host("ansible://new", ansible_inventory=host.backend.ansible_inventory)


def test_systemd_is_pid_1(new):
    assert new.file("/proc/1/comm").content_string.strip() == "systemd"


def test_rsync_daemon_is_a_running_systemd_service(new):
    service = new.service("rsync")
    assert service.is_running
    assert service.is_enabled
    assert new.socket("tcp://0.0.0.0:873").is_listening


@pytest.mark.parametrize("name", FILES)
def test_pushed_file_arrived_unchanged(old, new, name):
    pushed = new.file(f"/srv/lab/{name}")
    assert pushed.is_file
    assert pushed.sha256sum == old.file(f"/srv/tree/{name}").sha256sum
    assert pushed.content_string == f"{name} written on old\n"


def test_daemon_refuses_a_host_not_allowed(host):
    client = host.get_host("ansible://client", ansible_inventory=host.backend.ansible_inventory)
    listing = client.run("rsync rsync://new/lab/")
    assert listing.rc != 0
    assert "access denied" in listing.stderr.lower() or "@ERROR" in listing.stderr
