# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of nodowntime.storage.service_address: parsing, planning, ARP frames.

``LO_JSON`` is ``ip -j addr show dev lo`` recorded on a Debian 12 host (iproute2 6.1);
``ETH0_JSON`` is the same command's output for a container's eth0 on the lab network with an
IPv4 and IPv6 addresses, and ``HOST_JSON`` a whole host (``ip -j addr show``) with a second
Ethernet device and a link iproute2 printed without addresses.
"""
from __future__ import annotations

import ipaddress
import socket

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _service_address as sa

LO_JSON = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue",'
    '"operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback",'
    '"address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet",'
    '"local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,'
    '"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]}]\n'
)

ETH0_JSON = (
    '[{"ifindex":2,"link_index":9,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","link_type":"ether",'
    '"address":"a6:3c:1e:07:5b:d2","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":['
    '{"family":"inet","local":"10.213.7.12","prefixlen":24,"broadcast":"10.213.7.255","scope":"global",'
    '"label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},'
    '{"family":"inet6","local":"fd00:213:7::12","prefixlen":64,"scope":"global",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295},'
    '{"family":"inet6","local":"fe80::a43c:1eff:fe07:5bd2","prefixlen":64,"scope":"link",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]}]\n'
)

ETH1_JSON = (
    '{"ifindex":3,"ifname":"eth1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,'
    '"qdisc":"noqueue","operstate":"UP","group":"default","link_type":"ether",'
    '"address":"a6:3c:1e:07:5b:d3","broadcast":"ff:ff:ff:ff:ff:ff","altnames":["enp0s4"],"addr_info":['
    '{"family":"inet","local":"10.213.7.50","prefixlen":24,"scope":"global","label":"eth1",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]}'
)

HOST_JSON = "[%s,%s,%s,{}]\n" % (LO_JSON.strip()[1:-1], ETH0_JSON.strip()[1:-1], ETH1_JSON)


def iface(text):
    return sa.normalize_address(text)


# -- parsing -------------------------------------------------------------------------------

def test_parse_lo():
    (lo,) = sa.parse_links(LO_JSON)
    assert lo["ifname"] == "lo"
    assert lo["link_type"] == "loopback"
    assert lo["mac"] == "00:00:00:00:00:00"
    assert [(a["family"], a["local"], a["prefixlen"]) for a in lo["addresses"]] == [
        ("inet", "127.0.0.1", 8), ("inet6", "::1", 128)]
    assert sa.link_address_texts(lo) == ["127.0.0.1/8", "::1/128"]


def test_parse_eth0_keeps_iproute2_order_and_mac():
    (eth0,) = sa.parse_links(ETH0_JSON)
    assert eth0["mac"] == "a6:3c:1e:07:5b:d2"
    assert eth0["link_type"] == "ether"
    assert "UP" in eth0["flags"]
    assert sa.link_address_texts(eth0) == ["10.213.7.12/24", "fd00:213:7::12/64", "fe80::a43c:1eff:fe07:5bd2/64"]


def test_parse_host_skips_empty_entries_and_reads_altnames():
    links = sa.parse_links(HOST_JSON)
    assert [link["ifname"] for link in links] == ["lo", "eth0", "eth1"]
    assert sa.find_link(links, "enp0s4")["ifname"] == "eth1"
    assert sa.find_link(links, "eth0")["ifname"] == "eth0"
    assert sa.find_link(links, "eth9") is None


def test_parse_links_without_addr_info():
    links = sa.parse_links('[{"ifindex":4,"ifname":"dummy0","flags":["BROADCAST","NOARP"],'
                           '"link_type":"ether","address":"ee:11:22:33:44:55"}]')
    assert links[0]["addresses"] == []


@pytest.mark.functional
def test_parse_this_hosts_lo():
    """The recorded output has the shape of what the installed iproute2 prints now."""
    import shutil
    import subprocess
    ip = shutil.which("ip")
    if ip is None:
        pytest.skip("ip (iproute2) is not installed")
    out = subprocess.run([ip, "-j", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True).stdout
    (lo,) = sa.parse_links(out)
    assert lo["ifname"] == "lo"
    assert "127.0.0.1/8" in sa.link_address_texts(lo)


@pytest.mark.parametrize("text", ["", "Device \"eth9\" does not exist.", '{"ifname": "lo"}', "[1, 2"])
def test_parse_rejects_other_output(text):
    with pytest.raises(ValueError):
        sa.parse_links(text)


# -- normalization -------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("10.213.7.20/24", "10.213.7.20/24"),
    (" 10.213.7.20/24 ", "10.213.7.20/24"),
    ("10.213.7.20/255.255.255.0", "10.213.7.20/24"),
    ("FD00:0213:0007:0000::0050/64", "fd00:213:7::50/64"),
    ("fe80::1/64", "fe80::1/64"),
])
def test_normalize(text, expected):
    assert sa.format_address(sa.normalize_address(text)) == expected


@pytest.mark.parametrize("text,fragment", [
    ("10.213.7.20", "has no prefix length"),
    ("fd00::20", "has no prefix length"),
    ("", "has no prefix length"),
    ("10.213.7.20/33", "is not an IPv4 or IPv6 address"),
    ("10.213.7.300/24", "is not an IPv4 or IPv6 address"),
    ("server.example/24", "is not an IPv4 or IPv6 address"),
    ("fe80::1%eth0/64", "zone index"),
    ("0.0.0.0/0", "unspecified"),
    ("224.0.0.5/24", "multicast"),
])
def test_normalize_rejects(text, fragment):
    with pytest.raises(ValueError) as e:
        sa.normalize_address(text)
    assert str(e.value).startswith("address: ")
    assert fragment in str(e.value)


# -- planning ------------------------------------------------------------------------------

def test_plan_present_adds_after_the_ipv4_addresses():
    p = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("10.213.7.50/24"), "present")
    assert p["action"] == "add"
    assert p["before"] == ["10.213.7.12/24", "fd00:213:7::12/64", "fe80::a43c:1eff:fe07:5bd2/64"]
    assert p["after"] == ["10.213.7.12/24", "10.213.7.50/24", "fd00:213:7::12/64", "fe80::a43c:1eff:fe07:5bd2/64"]


def test_plan_present_ipv6_global_goes_first_among_ipv6():
    p = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("fd00:213:7::50/64"), "present")
    assert p["action"] == "add"
    assert p["after"] == ["10.213.7.12/24", "fd00:213:7::50/64", "fd00:213:7::12/64", "fe80::a43c:1eff:fe07:5bd2/64"]


def test_plan_present_on_a_device_without_addresses():
    links = sa.parse_links('[{"ifname":"dummy0","link_type":"ether","address":"ee:11:22:33:44:55","addr_info":[]}]')
    p = sa.plan(links, "dummy0", iface("10.0.0.1/8"), "present")
    assert (p["action"], p["after"]) == ("add", ["10.0.0.1/8"])


def test_plan_present_already_there():
    p = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("10.213.7.12/24"), "present")
    assert p["action"] is None
    assert p["after"] == p["before"]
    # The same address written differently is the same address.
    p6 = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("FD00:213:7:0::12/64"), "present")
    assert p6["action"] is None


def test_plan_absent_removes():
    p = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("fd00:213:7::12/64"), "absent")
    assert p["action"] == "del"
    assert p["after"] == ["10.213.7.12/24", "fe80::a43c:1eff:fe07:5bd2/64"]


def test_plan_absent_not_there():
    p = sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("10.213.7.50/24"), "absent")
    assert p["action"] is None and p["warnings"] == []


def test_plan_present_on_another_device_is_refused():
    with pytest.raises(sa.ServiceAddressError) as e:
        sa.plan(sa.parse_links(HOST_JSON), "eth0", iface("10.213.7.50/24"), "present")
    assert e.value.msg.startswith("address: 10.213.7.50 is already on another device of this host (10.213.7.50/24 on eth1)")
    assert "device: eth1" in e.value.msg


def test_plan_absent_on_another_device_warns_and_leaves_it():
    p = sa.plan(sa.parse_links(HOST_JSON), "eth0", iface("10.213.7.50/24"), "absent")
    assert p["action"] is None
    assert p["warnings"] == ["address 10.213.7.50 is not on eth0 but still on this host: 10.213.7.50/24 on eth1; left there"]


def test_plan_ipv6_link_local_may_be_on_several_devices():
    links = sa.parse_links(HOST_JSON)
    p = sa.plan(links, "eth1", iface("fe80::a43c:1eff:fe07:5bd2/64"), "present")
    assert p["action"] == "add"


@pytest.mark.parametrize("state", ["present", "absent"])
def test_plan_other_prefix_on_the_device_is_refused(state):
    with pytest.raises(sa.ServiceAddressError) as e:
        sa.plan(sa.parse_links(ETH0_JSON), "eth0", iface("10.213.7.12/16"), state)
    assert e.value.msg.startswith("address: 10.213.7.12 is on eth0 as 10.213.7.12/24")
    assert "give address: 10.213.7.12/24" in e.value.msg


def test_plan_unknown_device():
    with pytest.raises(sa.ServiceAddressError) as e:
        sa.plan(sa.parse_links(HOST_JSON), "eth9", iface("10.213.7.50/24"), "present")
    assert e.value.msg == "device: eth9 does not exist on this host; its devices are: eth0, eth1, lo"


# -- ARP frames ----------------------------------------------------------------------------

MAC = bytes.fromhex("a63c1e075bd2")
IP = ipaddress.IPv4Address("10.213.7.50")


def fields(frame):
    """Split a frame at the offsets of RFC 826 / IEEE 802.3, independently of arp_frame's packing."""
    return dict(
        dst=frame[0:6], src=frame[6:12], ethertype=int.from_bytes(frame[12:14], "big"),
        htype=int.from_bytes(frame[14:16], "big"), ptype=int.from_bytes(frame[16:18], "big"),
        hlen=frame[18], plen=frame[19], op=int.from_bytes(frame[20:22], "big"),
        sha=frame[22:28], spa=socket.inet_ntoa(frame[28:32]), tha=frame[32:38], tpa=socket.inet_ntoa(frame[38:42]),
        pad=frame[42:],
    )


def test_arp_request_frame():
    f = fields(sa.arp_frame(MAC, IP, sa.ARPOP_REQUEST))
    assert f["dst"] == b"\xff\xff\xff\xff\xff\xff"
    assert f["src"] == MAC
    assert f["ethertype"] == 0x0806
    assert (f["htype"], f["ptype"], f["hlen"], f["plen"]) == (1, 0x0800, 6, 4)
    assert f["op"] == 1
    assert f["sha"] == MAC
    assert f["spa"] == f["tpa"] == "10.213.7.50"
    assert f["tha"] == bytes(6)
    assert f["pad"] == bytes(18)


def test_arp_reply_frame_repeats_the_sender_mac_as_target():
    frame = sa.arp_frame(MAC, IP, sa.ARPOP_REPLY)
    assert len(frame) == 60
    f = fields(frame)
    assert f["ethertype"] == 0x0806 and f["op"] == 2
    assert f["sha"] == f["tha"] == f["src"] == MAC
    assert f["spa"] == f["tpa"] == "10.213.7.50"


def test_garp_frames_one_round():
    request, reply = sa.garp_frames(MAC, IP)
    assert [fields(request)["op"], fields(reply)["op"]] == [1, 2]


@pytest.mark.parametrize("mac,ip,op", [
    (b"\x00" * 5, IP, 1),
    (MAC, ipaddress.IPv6Address("fd00::50"), 1),
    (MAC, IP, 3),
])
def test_arp_frame_rejects(mac, ip, op):
    with pytest.raises(ValueError):
        sa.arp_frame(mac, ip, op)


@pytest.mark.parametrize("text,ok", [
    ("a6:3c:1e:07:5b:d2", True), ("A6:3C:1E:07:5B:D2", True), ("a6:3c:1e:07:5b", False),
    ("a6-3c-1e-07-5b-d2", False), ("zz:3c:1e:07:5b:d2", False), (None, False),
])
def test_mac_bytes(text, ok):
    if ok:
        assert sa.mac_bytes(text) == MAC
    else:
        with pytest.raises(ValueError):
            sa.mac_bytes(text)


@pytest.mark.functional
def test_send_frames_reach_a_packet_socket_on_lo():
    """Send two rounds on lo and read them back from a second raw socket (needs CAP_NET_RAW)."""
    try:
        # ETH_P_ALL: only such sockets see the frames a host sends (PACKET_OUTGOING).
        listener = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        pytest.skip("no CAP_NET_RAW here")
    # An address no one uses, so frames of other ARP traffic on lo are told apart.
    ip = ipaddress.IPv4Address("127.213.7.50")
    mac = bytes.fromhex("02000000d1d2")
    frames = sa.garp_frames(mac, ip)
    slept = []
    with listener:
        listener.bind(("lo", 0))
        listener.settimeout(2)
        sent = sa.send_frames("lo", frames, 2, sleep=slept.append)
        seen = []
        try:
            while len(seen) < 4:
                data, addr = listener.recvfrom(2048)
                if addr[2] == socket.PACKET_OUTGOING and data[12:14] == b"\x08\x06" and data[28:32] == ip.packed:
                    seen.append(data)
        except socket.timeout:
            pass
    assert sent == 4
    assert slept == [sa.ANNOUNCE_INTERVAL]
    assert [fields(d)["op"] for d in seen] == [1, 2, 1, 2]
    assert all(d == frames[i % 2] for i, d in enumerate(seen))


def test_the_arp_packet_ends_at_byte_42_and_zeros_pad_it_to_60():
    # 14 bytes Ethernet header + 28 bytes ARP for Ethernet/IPv4, then the Ethernet minimum.
    frame = sa.arp_frame(MAC, IP, sa.ARPOP_REQUEST)
    assert len(frame) == sa.ETH_ZLEN == 60
    assert frame[38:42] == IP.packed and frame[42:] == bytes(60 - 42)
