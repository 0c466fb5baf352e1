# SPDX-License-Identifier: GPL-3.0-or-later
"""nodowntime.storage.service_address driven in-process against a simulated ``ip`` command.

``FakeIp`` keeps a host's links and answers ``ip -j addr show`` in iproute2's JSON and
``ip addr add|del ADDR dev DEV`` with the kernel's answers (``File exists``, ``Cannot assign
requested address``, ``Cannot find device``). The raw-socket sender is replaced by a recorder,
so the tests see the frames the module would put on the wire.
"""
from __future__ import annotations

import copy
import ipaddress
import json
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.nodowntime.storage.plugins.module_utils import _service_address as sa
from ansible_collections.nodowntime.storage.plugins.modules import service_address

from .utils import fail_module, run_module

IP = "/usr/sbin/ip"
NEW_MAC = "a6:3c:1e:07:5b:d2"

HOST = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "link_type": "loopback",
     "address": "00:00:00:00:00:00", "broadcast": "00:00:00:00:00:00",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host", "label": "lo"},
                   {"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}]},
    {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "link_type": "ether",
     "address": NEW_MAC, "broadcast": "ff:ff:ff:ff:ff:ff",
     "addr_info": [{"family": "inet", "local": "10.213.7.12", "prefixlen": 24, "broadcast": "10.213.7.255",
                    "scope": "global", "label": "eth0"},
                   {"family": "inet6", "local": "fe80::a43c:1eff:fe07:5bd2", "prefixlen": 64, "scope": "link"}]},
    {"ifindex": 3, "ifname": "eth1", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "link_type": "ether",
     "address": "a6:3c:1e:07:5b:d3", "broadcast": "ff:ff:ff:ff:ff:ff", "addr_info": []},
]


class FakeIp:
    def __init__(self, links=None, add_error=None):
        self.links = copy.deepcopy(links or HOST)
        self.add_error = add_error
        self.calls = []

    def link(self, name):
        return next((link for link in self.links if link["ifname"] == name), None)

    def __call__(self, argv, **kwargs):
        assert isinstance(argv, list), "argv must be a list, never a shell string"
        assert argv[0] == IP
        self.calls.append(argv[1:])
        if argv[1:] == ["-j", "addr", "show"]:
            return 0, json.dumps(self.links) + "\n", ""
        verb, addr, dev_kw, dev = argv[2:]
        assert argv[1] == "addr" and dev_kw == "dev" and verb in ("add", "del")
        link = self.link(dev)
        if link is None:
            return 1, "", 'Cannot find device "%s"\n' % dev
        iface = ipaddress.ip_interface(addr)
        local, plen = iface.ip.compressed, iface.network.prefixlen
        entries = link["addr_info"]
        found = [a for a in entries if a["local"] == local and a["prefixlen"] == plen]
        if verb == "add":
            if self.add_error:
                return 2, "", self.add_error
            if found:
                return 2, "", "RTNETLINK answers: File exists\n"
            entry = {"family": "inet" if iface.version == 4 else "inet6", "local": local, "prefixlen": plen,
                     "scope": "global"}
            # After the IPv4 addresses: where the kernel lists a new IPv4 secondary address and a
            # new global IPv6 address (before the link-local one).
            entries.insert(len([a for a in entries if a["family"] == "inet"]), entry)
        else:
            if not found:
                return 2, "", "RTNETLINK answers: Cannot assign requested address\n"
            entries.remove(found[0])
        return 0, "", ""

    def texts(self, dev="eth0"):
        return ["%s/%s" % (a["local"], a["prefixlen"]) for a in self.link(dev)["addr_info"]]

    def changes(self):
        return [c for c in self.calls if c[0] == "addr"]


class Sender:
    def __init__(self, error=None):
        self.error = error
        self.sent = []

    def __call__(self, device, frames, rounds):
        if self.error:
            raise self.error
        for dummy in range(rounds):
            for frame in frames:
                self.sent.append((device, frame))
        return len(frames) * rounds


@pytest.fixture
def host():
    ip = FakeIp()
    sender = Sender()
    warnings = []
    with mock.patch.object(basic.AnsibleModule, "run_command", lambda self, argv, **kw: ip(argv, **kw)), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: IP), \
            mock.patch.object(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg)), \
            mock.patch.object(sa, "send_frames", sender):
        yield dict(ip=ip, sender=sender, warnings=warnings)


def args(**kw):
    a = dict(address="10.213.7.50/24", device="eth0")
    a.update(kw)
    return a


def test_present_check_real_idempotent(host):
    ip, sender = host["ip"], host["sender"]
    before = ip.texts()

    check = run_module(service_address.main, args(), check_mode=True, diff=True)
    assert check["changed"] is True
    assert ip.changes() == [] and sender.sent == []
    assert ip.texts() == before
    assert check["addresses"] == ["10.213.7.12/24", "10.213.7.50/24", "fe80::a43c:1eff:fe07:5bd2/64"]
    assert check["announced"] == 0
    assert check["diff"] == {"before": "10.213.7.12/24\nfe80::a43c:1eff:fe07:5bd2/64\n",
                             "after": "10.213.7.12/24\n10.213.7.50/24\nfe80::a43c:1eff:fe07:5bd2/64\n"}

    real = run_module(service_address.main, args(), diff=True)
    assert real["changed"] is True
    assert ip.changes() == [["addr", "add", "10.213.7.50/24", "dev", "eth0"]]
    assert real["address"] == "10.213.7.50/24" and real["device"] == "eth0"
    assert real["addresses"] == ip.texts() == check["addresses"]
    assert real["diff"] == check["diff"]
    # Three rounds (the default) of request + reply, from eth0's MAC, for 10.213.7.50.
    assert real["announced"] == 6 == len(sender.sent)
    assert {dev for dev, dummy in sender.sent} == {"eth0"}
    assert [int.from_bytes(f[20:22], "big") for dummy, f in sender.sent] == [1, 2] * 3
    assert all(f[6:12] == f[22:28] == bytes.fromhex(NEW_MAC.replace(":", "")) for dummy, f in sender.sent)
    assert all(f[28:32] == f[38:42] == bytes([10, 213, 7, 50]) for dummy, f in sender.sent)

    again = run_module(service_address.main, args(), diff=True)
    assert again["changed"] is False and again["announced"] == 0
    assert again["diff"]["before"] == again["diff"]["after"]
    again_check = run_module(service_address.main, args(), check_mode=True)
    assert again_check["changed"] is False
    assert "diff" not in again_check
    assert len(ip.changes()) == 1 and len(sender.sent) == 6


def test_absent_check_real_idempotent(host):
    ip = host["ip"]
    run_module(service_address.main, args(announce=0))
    assert host["sender"].sent == []

    check = run_module(service_address.main, args(state="absent"), check_mode=True)
    assert check["changed"] is True and "10.213.7.50/24" in ip.texts()
    assert check["addresses"] == ["10.213.7.12/24", "fe80::a43c:1eff:fe07:5bd2/64"]
    real = run_module(service_address.main, args(state="absent"))
    assert real["changed"] is True
    assert ip.changes()[-1] == ["addr", "del", "10.213.7.50/24", "dev", "eth0"]
    assert real["addresses"] == ip.texts() == check["addresses"]
    assert real["announced"] == 0
    assert run_module(service_address.main, args(state="absent"))["changed"] is False
    assert run_module(service_address.main, args(state="absent"), check_mode=True)["changed"] is False
    assert len(ip.changes()) == 2


def test_announce_always_re_announces_without_change(host):
    run_module(service_address.main, args(announce=0))
    result = run_module(service_address.main, args(announce=2, announce_always=True))
    assert result["changed"] is False
    assert result["announced"] == 4 == len(host["sender"].sent)
    # Not in check mode.
    check = run_module(service_address.main, args(announce_always=True), check_mode=True)
    assert check["announced"] == 0 and len(host["sender"].sent) == 4


def test_ipv6_is_added_and_not_announced(host):
    result = run_module(service_address.main, args(address="FD00:213:7::0050/64"))
    assert result["changed"] is True and result["address"] == "fd00:213:7::50/64"
    assert "fd00:213:7::50/64" in result["addresses"]
    assert result["announced"] == 0 and host["sender"].sent == []
    assert host["warnings"] == ["announce: nothing sent for IPv6 fd00:213:7::50; neighbours learn it on their next solicitation"]


def test_missing_prefix_names_address(host):
    result = fail_module(service_address.main, args(address="10.213.7.50"))
    assert result["msg"].startswith("address: '10.213.7.50' has no prefix length")
    assert host["ip"].calls == []


def test_unknown_device_names_device(host):
    result = fail_module(service_address.main, args(device="eth9"))
    assert result["msg"] == "device: eth9 does not exist on this host; its devices are: eth0, eth1, lo"
    assert result["changed"] is False
    assert host["ip"].changes() == []


def test_negative_announce(host):
    result = fail_module(service_address.main, args(announce=-1))
    assert result["msg"].startswith("announce: -1 ")


def test_present_on_another_device_is_refused(host):
    host["ip"].link("eth1")["addr_info"].append(
        {"family": "inet", "local": "10.213.7.50", "prefixlen": 24, "scope": "global", "label": "eth1"})
    for check_mode in (True, False):
        result = fail_module(service_address.main, args(), check_mode=check_mode)
        assert "10.213.7.50/24 on eth1" in result["msg"]
    assert host["ip"].changes() == []
    # Removing it from eth0, where it is not, changes nothing and says where it is.
    absent = run_module(service_address.main, args(state="absent"))
    assert absent["changed"] is False
    assert host["warnings"] == ["address 10.213.7.50 is not on eth0 but still on this host: 10.213.7.50/24 on eth1; left there"]


def test_no_cap_net_raw_fails_after_adding_and_says_so(host):
    host["sender"].error = PermissionError(1, "Operation not permitted")
    result = fail_module(service_address.main, args())
    assert result["changed"] is True
    assert "10.213.7.50/24" in result["addresses"]
    assert "needs CAP_NET_RAW" in result["msg"]
    assert "10.213.7.50/24 stays on eth0" in result["msg"]
    assert "10.213.7.50/24" in host["ip"].texts()


def test_no_cap_net_admin(host):
    host["ip"].add_error = "RTNETLINK answers: Operation not permitted\n"
    result = fail_module(service_address.main, args())
    assert result["msg"] == ("`/usr/sbin/ip addr add 10.213.7.50/24 dev eth0` failed (rc=2): RTNETLINK answers:"
                             " Operation not permitted (changing addresses needs CAP_NET_ADMIN)")
    assert result["changed"] is False


def test_loopback_has_nothing_to_announce(host):
    result = run_module(service_address.main, args(address="127.0.0.53/8", device="lo"))
    assert result["changed"] is True and result["announced"] == 0
    assert host["warnings"] == ["announce: nothing sent; lo has no Ethernet address (link type loopback)"]
