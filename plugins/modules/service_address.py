#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: service_address
short_description: Put the address clients use on a network device, or take it off, and announce it
version_added: 0.1.0
description:
  - Adds the IP address O(address) to the network device O(device) of the host, or removes it, with
    C(ip addr add) and C(ip addr del) (iproute2). This is how a cutover moves the service address,
    the address the clients mount from, from the old storage server to the new one, so clients
    change nothing.
  - After adding an IPv4 address the module announces it with gratuitous ARP on O(device), so the
    other hosts on the network replace the old server's MAC address in their ARP cache at once,
    instead of sending to the old server until the cache entry expires. The frames are sent from
    the module itself; no C(arping) is needed.
  - The address must already be gone from the old server when the new one takes it (the cutover
    removes it there first with O(state=absent)); two servers answering for one address would
    split the clients between them.
  - The module reads the host's addresses with C(ip -j addr show) and changes only what differs.
    It refuses to add an address that is already on another device of the same host, and to add
    or remove an address that is on O(device) with another prefix length.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the addresses and reports what would change; nothing is added, removed or sent.
  diff_mode:
    support: full
    details:
      - Shows the addresses of O(device) before and after, one per line.
options:
  address:
    description:
      - The service address with its prefix length, as C(ADDRESS/PREFIX), for example
        C(10.213.7.20/24) or C(fd00::20/64). The prefix length is required, because C(ip addr add)
        would otherwise add a /32 (/128) host address that has no on-link route.
    type: str
    required: true
  device:
    description:
      - The network device, for example C(eth0). It must exist on the host.
    type: str
    required: true
  state:
    description:
      - V(present) adds O(address) to O(device) unless it is there already.
      - V(absent) removes it from O(device) if it is there.
    type: str
    choices: [present, absent]
    default: present
  announce:
    description:
      - How many rounds of gratuitous ARP to send after adding an IPv4 address, one second apart.
        Each round is two frames, the request form and the reply form, because some hosts and
        switches heed only one of them. V(0) sends nothing.
      - Nothing is sent for an IPv6 address (the module warns); IPv6 neighbours find the new server
        at their next neighbour solicitation.
    type: int
    default: 3
  announce_always:
    description:
      - Also announce when O(address) was already on O(device), for example to announce it again
        after a switch was replaced. Announcing alone does not report a change.
    type: bool
    default: false
notes:
  - Adding and removing an address needs C(CAP_NET_ADMIN) (root, or a container started with that
    capability); announcing needs C(CAP_NET_RAW). When the address was added but could not be
    announced the module fails and says so; the address stays on O(device).
  - A Linux host updates an ARP cache entry it already has when the announcement arrives, and by
    default does not create one it does not have (C(net.ipv4.conf.*.arp_accept)). That is what a
    cutover needs, as the clients that matter have talked to the service address before.
requirements:
  - iproute2 4.13 or later (C(ip -j)) on the host.
seealso:
  - name: ip-address(8)
    description: The iproute2 command the module runs.
    link: https://man7.org/linux/man-pages/man8/ip-address.8.html
  - name: RFC 5227, IPv4 Address Conflict Detection
    description: Describes ARP announcements, the gratuitous ARP the module sends.
    link: https://www.rfc-editor.org/rfc/rfc5227
"""

EXAMPLES = r"""
- name: Take the service address off the old server
  nodowntime.storage.service_address:
    address: 10.213.7.20/24
    device: eth0
    state: absent
  delegate_to: old

- name: Put it on the new server and tell the clients
  nodowntime.storage.service_address:
    address: 10.213.7.20/24
    device: eth0
    announce: 3
  register: takeover

- name: Announce it again, for example after a switch was replaced
  nodowntime.storage.service_address:
    address: 10.213.7.20/24
    device: eth0
    announce_always: true
"""

RETURN = r"""
address:
  description: O(address) in the form iproute2 prints it (compressed IPv6, prefix length as a number).
  returned: when O(address) is valid
  type: str
  sample: 10.213.7.20/24
device:
  description: O(device) as given.
  returned: always
  type: str
  sample: eth0
addresses:
  description:
    - The addresses of O(device) after the run, as C(ADDRESS/PREFIX) in the order iproute2 lists
      them. In check mode, the addresses the device would have.
  returned: success
  type: list
  elements: str
  sample: [10.213.7.12/24, 10.213.7.20/24, fe80::a8c1:abff:fe2e:3b1d/64]
announced:
  description:
    - How many gratuitous ARP frames were sent, two per round of O(announce). V(0) when nothing was
      sent, also in check mode and for IPv6.
  returned: success
  type: int
  sample: 6
diff:
  description: The addresses of O(device) before and after, one per line. Only in diff mode.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The addresses before the run.
      type: str
    after:
      description: The addresses after the run (in check mode, what they would be).
      type: str
  sample: {before: "10.213.7.12/24\nfe80::a8c1:abff:fe2e:3b1d/64\n",
           after: "10.213.7.12/24\n10.213.7.20/24\nfe80::a8c1:abff:fe2e:3b1d/64\n"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils._service_address import (
    STATES,
    ServiceAddress,
    ServiceAddressError,
)


def _lines(addresses):
    return "".join("%s\n" % a for a in addresses)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", required=True),
            device=dict(type="str", required=True),
            state=dict(type="str", choices=list(STATES), default="present"),
            announce=dict(type="int", default=3),
            announce_always=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    worker = ServiceAddress(
        run_command=lambda argv: module.run_command(argv, environ_update=dict(LC_ALL="C")),
        ip_bin=module.get_bin_path("ip", required=True),
        check_mode=module.check_mode,
        warn=module.warn,
    )
    try:
        result = worker.run(p["address"], p["device"], p["state"], p["announce"], p["announce_always"])
    except ServiceAddressError as e:
        failed = dict(e.result)
        failed.pop("before", None)
        failed.pop("after", None)
        failed.setdefault("changed", False)
        module.fail_json(msg=e.msg, **failed)
    before = result.pop("before")
    after = result.pop("after")
    if module._diff:
        result["diff"] = dict(before=_lines(before), after=_lines(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
