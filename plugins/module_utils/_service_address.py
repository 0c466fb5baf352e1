# SPDX-License-Identifier: GPL-3.0-or-later
"""Put a service address on a network device, or take it off, and announce it.

Three separate steps, each testable on its own:

* reading: ``parse_links`` turns the JSON of ``ip -j addr show`` (iproute2) into plain dicts;
* planning: ``plan`` compares that with the wanted address and state and says what to run,
  refusing what would leave the host in a state nobody asked for (the address on two devices,
  or on the device with another prefix length);
* acting: ``ServiceAddress.run`` runs ``ip addr add|del`` through a ``run_command`` callable
  (argv lists, never a shell), reads the device again, and sends gratuitous ARP for a new
  IPv4 address from a raw ``AF_PACKET`` socket (``arp_frame`` builds the frames as bytes), so
  no ``arping`` is needed on the host.

A gratuitous ARP frame carries the service address as both sender and target protocol address
and the device's MAC as sender hardware address; a Linux neighbour that already has an entry
for the address replaces the MAC in it on receipt (``arp_is_garp`` in net/ipv4/arp.c), so
clients follow the address to its new server without waiting for their cache entry to expire.
Each round sends the request form (target hardware address zero, as the kernel sends it) and
the reply form (target hardware address = sender's, which Linux requires to treat a reply as
gratuitous).
"""
from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_HTYPE_ETHERNET = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
# Shortest Ethernet frame without its checksum; shorter frames are padded with zeros.
ETH_ZLEN = 60
# Seconds between announcement rounds (arping's default interval).
ANNOUNCE_INTERVAL = 1.0

STATES = ("present", "absent")

# Scope rank of an IPv6 address as the kernel orders a device's addresses (ipv6_link_dev_addr):
# a new address goes before the first one of the same or a narrower scope.
_SCOPE_HOST, _SCOPE_LINK, _SCOPE_GLOBAL = 1, 2, 14


class ServiceAddressError(Exception):
    """A failure to report with ``fail_json``; ``result`` holds what is known so far."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}


# -- reading -------------------------------------------------------------------------------

def normalize_address(text):
    """Return ``text`` (``ADDRESS/PREFIX``) as an ``ipaddress`` interface; raise ValueError.

    The messages name the option, for ``fail_json``.
    """
    value = (text or "").strip()
    example = "give it as ADDRESS/PREFIX, for example 10.213.7.20/24 or fd00::20/64"
    if "/" not in value:
        raise ValueError("address: %r has no prefix length; %s" % (text, example))
    if "%" in value:
        raise ValueError("address: %r has a zone index (%%...); name the device in device instead" % (text,))
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError as e:
        raise ValueError("address: %r is not an IPv4 or IPv6 address with a prefix length (%s); %s"
                         % (text, e, example))
    if iface.ip.is_unspecified or iface.ip.is_multicast:
        raise ValueError("address: %r is %s address, which cannot be a service address; give a unicast address"
                         % (text, "an unspecified" if iface.ip.is_unspecified else "a multicast"))
    return iface


def format_address(iface):
    """``ADDRESS/PREFIX`` the way iproute2 prints it (compressed IPv6, prefix length as a number)."""
    return "%s/%d" % (iface.ip.compressed, iface.network.prefixlen)


def parse_links(text):
    """Parse ``ip -j addr show`` output into a list of link dicts.

    Each link: ``ifname``, ``altnames`` (list), ``mac`` (the link-layer ``address`` or None),
    ``link_type``, ``flags`` and ``addresses``, a list of dicts with ``family``, ``local``,
    ``prefixlen`` and ``text`` (``local/prefixlen``) in the order iproute2 lists them. Entries
    without an interface name or address (iproute2 prints ``{}`` for links a filter left out)
    are skipped. Raise ValueError when the text is not that JSON.
    """
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError("not JSON (%s)" % e)
    if not isinstance(data, list):
        raise ValueError("a JSON %s, not the list of links `ip -j addr show` prints" % type(data).__name__)
    links = []
    for item in data:
        if not isinstance(item, dict) or not item.get("ifname"):
            continue
        addresses = []
        for info in item.get("addr_info") or []:
            if not isinstance(info, dict) or "local" not in info or "prefixlen" not in info:
                continue
            addresses.append(dict(
                family=info.get("family"),
                local=info["local"],
                prefixlen=int(info["prefixlen"]),
                text="%s/%s" % (info["local"], info["prefixlen"]),
            ))
        links.append(dict(
            ifname=item["ifname"],
            altnames=list(item.get("altnames") or []),
            mac=item.get("address"),
            link_type=item.get("link_type"),
            flags=list(item.get("flags") or []),
            addresses=addresses,
        ))
    return links


def find_link(links, device):
    """The link named ``device`` (its name or one of its alternative names), or None."""
    for link in links:
        if link["ifname"] == device:
            return link
    for link in links:
        if device in link["altnames"]:
            return link
    return None


def _same_ip(entry, ip):
    try:
        return ipaddress.ip_address(entry["local"]) == ip
    except ValueError:
        return False


def link_address_texts(link):
    """The device's addresses as ``local/prefixlen`` strings, as iproute2 lists them."""
    return [a["text"] for a in link["addresses"]]


def mac_bytes(text):
    """``aa:bb:cc:dd:ee:ff`` as 6 bytes; raise ValueError for anything else."""
    parts = (text or "").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError("%r is not an Ethernet (6 octet) address" % (text,))
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("%r is not an Ethernet (6 octet) address" % (text,))


# -- planning ------------------------------------------------------------------------------

def _ipv6_scope(ip):
    if ip.is_loopback:
        return _SCOPE_HOST
    if ip.is_link_local:
        return _SCOPE_LINK
    return _SCOPE_GLOBAL


def predict_after_add(before, iface):
    """The device's address list after ``ip addr add`` of ``iface``, in the kernel's order.

    IPv4 addresses come before IPv6 ones; a new IPv4 address is listed after the device's other
    IPv4 addresses (where the kernel puts a secondary address), a new IPv6 address before the
    first one of the same or a narrower scope.
    """
    text = format_address(iface)
    parsed = [ipaddress.ip_interface(t) for t in before]
    if iface.version == 4:
        pos = max([i + 1 for i, p in enumerate(parsed) if p.version == 4] or [0])
    else:
        scope = _ipv6_scope(iface.ip)
        pos = len(before)
        for i, p in enumerate(parsed):
            if p.version == 6 and scope >= _ipv6_scope(p.ip):
                pos = i
                break
    return before[:pos] + [text] + before[pos:]


def plan(links, device, iface, state):
    """Decide what to do; return a dict or raise ServiceAddressError.

    Keys: ``action`` (``add``, ``del`` or None; the ``ip addr`` verb), ``before`` and ``after`` (the device's
    addresses as text), ``warnings`` (list of str).
    """
    link = find_link(links, device)
    if link is None:
        names = ", ".join(sorted(link["ifname"] for link in links)) or "none"
        raise ServiceAddressError("device: %s does not exist on this host; its devices are: %s" % (device, names))
    wanted = format_address(iface)
    before = link_address_texts(link)
    here = [a for a in link["addresses"] if _same_ip(a, iface.ip)]
    exact = [a for a in here if a["prefixlen"] == iface.network.prefixlen]
    # An IPv6 link-local address may legitimately be on several links at once.
    elsewhere = []
    if not (iface.version == 6 and iface.ip.is_link_local):
        elsewhere = [(other["ifname"], a["text"]) for other in links if other is not link
                     for a in other["addresses"] if _same_ip(a, iface.ip)]
    where = ", ".join("%s on %s" % (text, name) for name, text in elsewhere)
    result = dict(action=None, before=before, after=list(before), warnings=[])

    if here and not exact:
        raise ServiceAddressError(
            "address: %s is on %s as %s, with another prefix length than the %s asked for; give address: %s"
            " or remove that address first" % (iface.ip.compressed, link["ifname"],
                                               ", ".join(a["text"] for a in here), wanted, here[0]["text"]))
    if state == "present":
        if elsewhere:
            raise ServiceAddressError(
                "address: %s is already on another device of this host (%s); a host must not hold the service"
                " address twice. Remove it there first, or set device: %s"
                % (iface.ip.compressed, where, elsewhere[0][0]))
        if not exact:
            result.update(action="add", after=predict_after_add(before, iface))
    else:
        if exact:
            result.update(action="del", after=[t for t in before if t != exact[0]["text"]])
        elif elsewhere:
            result["warnings"].append("address %s is not on %s but still on this host: %s; left there"
                                      % (iface.ip.compressed, link["ifname"], where))
    return result


# -- gratuitous ARP ------------------------------------------------------------------------

def arp_frame(mac, ip, opcode):
    """One broadcast Ethernet frame carrying a gratuitous ARP for IPv4 ``ip`` from ``mac``.

    ``mac`` is 6 bytes, ``ip`` an ``ipaddress.IPv4Address``, ``opcode`` ARPOP_REQUEST (target
    hardware address zero) or ARPOP_REPLY (target hardware address = ``mac``). Sender and target
    protocol addresses are both ``ip``. Padded with zeros to the 60 byte Ethernet minimum.
    """
    if len(mac) != 6:
        raise ValueError("a MAC address is 6 bytes, not %d" % len(mac))
    if opcode not in (ARPOP_REQUEST, ARPOP_REPLY):
        raise ValueError("ARP opcode %r is neither request (1) nor reply (2)" % (opcode,))
    ip4 = ipaddress.IPv4Address(ip).packed
    target_mac = ZERO_MAC if opcode == ARPOP_REQUEST else mac
    frame = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    frame += struct.pack("!HHBBH6s4s6s4s", ARP_HTYPE_ETHERNET, ETH_P_IP, 6, 4, opcode,
                         mac, ip4, target_mac, ip4)
    return frame.ljust(ETH_ZLEN, b"\x00")


def garp_frames(mac, ip):
    """The frames of one announcement round: the request form, then the reply form."""
    return [arp_frame(mac, ip, ARPOP_REQUEST), arp_frame(mac, ip, ARPOP_REPLY)]


def send_frames(device, frames, rounds, interval=ANNOUNCE_INTERVAL, sleep=time.sleep):
    """Send ``frames`` ``rounds`` times on ``device`` from a raw packet socket; return the count.

    Needs CAP_NET_RAW (PermissionError otherwise); other OSErrors (device down, gone) propagate.
    """
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((device, 0))
        for n in range(rounds):
            if n:
                sleep(interval)
            for frame in frames:
                sock.send(frame)
                sent += 1
    return sent


# -- acting --------------------------------------------------------------------------------

class ServiceAddress:
    """Read, plan and apply one service address with the ``ip`` command.

    ``run_command(argv)`` returns ``(rc, stdout, stderr)``; ``warn(msg)`` records a warning;
    ``sender(device, frames, rounds)`` sends ARP frames and returns how many it sent.
    """

    def __init__(self, run_command, ip_bin="ip", check_mode=False, warn=None, sender=None):
        self.run_command = run_command
        self.ip_bin = ip_bin
        self.check_mode = check_mode
        self.warn = warn or (lambda msg: None)
        self.sender = sender or send_frames

    def read(self):
        argv = [self.ip_bin, "-j", "addr", "show"]
        rc, out, err = self.run_command(argv)
        if rc != 0:
            raise ServiceAddressError("`%s` failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip()))
        try:
            return parse_links(out)
        except ValueError as e:
            raise ServiceAddressError("cannot read the output of `%s` (iproute2 4.13 or later is needed for -j): %s"
                                      % (" ".join(argv), e))

    def _change(self, verb, address, device, result):
        argv = [self.ip_bin, "addr", verb, address, "dev", device]
        rc, out, err = self.run_command(argv)
        if rc != 0:
            msg = (err or out).strip()
            hint = " (changing addresses needs CAP_NET_ADMIN)" if "not permitted" in msg else ""
            raise ServiceAddressError("`%s` failed (rc=%d): %s%s" % (" ".join(argv), rc, msg, hint), result)

    def run(self, address, device, state="present", announce=3, announce_always=False):
        """Bring ``address`` on ``device`` to ``state``; return the result dict.

        Result keys: changed, address, device, addresses, announced, before, after (the
        module turns the last two into ``diff`` when diff mode is on).
        """
        if state not in STATES:
            raise ServiceAddressError("state: %r is not one of %s" % (state, ", ".join(STATES)))
        if not isinstance(announce, int) or isinstance(announce, bool) or announce < 0:
            raise ServiceAddressError("announce: %r is not a number of rounds; give 0 or more" % (announce,))
        try:
            iface = normalize_address(address)
        except ValueError as e:
            raise ServiceAddressError(str(e), dict(device=device))
        wanted = format_address(iface)
        result = dict(changed=False, address=wanted, device=device, addresses=[], announced=0)

        links = self.read()
        try:
            p = plan(links, device, iface, state)
        except ServiceAddressError as e:
            raise ServiceAddressError(e.msg, result)
        for w in p["warnings"]:
            self.warn(w)
        result.update(changed=p["action"] is not None, addresses=p["before"], before=p["before"], after=p["after"])
        wants_announce = state == "present" and announce > 0 and (p["action"] == "add" or announce_always)

        if self.check_mode:
            result["addresses"] = p["after"]
            return result

        if p["action"]:
            result["changed"] = False
            self._change(p["action"], wanted, device, result)
            result["changed"] = True
            link = find_link(self.read(), device)
            if link is None:
                raise ServiceAddressError("device: %s disappeared while its address changed" % device, result)
            after = link_address_texts(link)
            result.update(addresses=after, after=after)
            present = any(_same_ip(a, iface.ip) and a["prefixlen"] == iface.network.prefixlen
                          for a in link["addresses"])
            if present != (state == "present"):
                raise ServiceAddressError("`ip addr %s %s dev %s` succeeded but %s is %s on %s afterwards"
                                          % (p["action"], wanted, device, wanted,
                                             "not" if state == "present" else "still", device), result)
        else:
            link = find_link(links, device)

        if wants_announce:
            result["announced"] = self._announce(iface, device, link, announce, result)
        return result

    def _announce(self, iface, device, link, rounds, result):
        if iface.version == 6:
            self.warn("announce: nothing sent for IPv6 %s; neighbours learn it on their next solicitation"
                      % iface.ip.compressed)
            return 0
        if link is None or link["link_type"] != "ether" or not link["mac"]:
            self.warn("announce: nothing sent; %s has no Ethernet address (link type %s)"
                      % (device, link and link["link_type"]))
            return 0
        frames = garp_frames(mac_bytes(link["mac"]), iface.ip)
        stays = "%s stays on %s" % (format_address(iface), device)
        try:
            return self.sender(link["ifname"], frames, rounds)
        except PermissionError as e:
            raise ServiceAddressError(
                "announce: cannot send gratuitous ARP on %s: %s; sending it needs CAP_NET_RAW (run as root with"
                " that capability, or set announce: 0). %s, but clients may keep the old MAC in their ARP cache"
                " until it expires" % (device, e, stays), result)
        except OSError as e:
            raise ServiceAddressError("announce: cannot send gratuitous ARP on %s: %s. %s" % (device, e, stays), result)
