# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by the Redis modules of nodowntime.storage."""

    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the Redis server.
      - Ignored when O(login_unix_socket) is set.
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description:
      - TCP port of the Redis server. Also names the instance in archive and lock file names,
        so set it to the instance's port even when connecting through O(login_unix_socket).
    type: int
    default: 6379
    aliases: [port]
  login_unix_socket:
    description:
      - Path of the Redis server's unix socket; used instead of O(login_host).
    type: path
    aliases: [unix_socket]
  login_user:
    description:
      - ACL user name (Redis 6 or later). Leave unset for the C(default) user.
    type: str
    aliases: [username]
  login_password:
    description:
      - Password of O(login_user), or the C(requirepass) password when O(login_user) is unset.
    type: str
    aliases: [password]
  tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server certificate and host name when O(tls=true).
    type: bool
    default: true
  ca_certs:
    description:
      - CA bundle used to verify the server certificate when O(tls=true).
    type: path
  client_cert_file:
    description:
      - Client certificate for TLS client authentication.
    type: path
  client_key_file:
    description:
      - Private key of O(client_cert_file).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to Redis.
    type: float
    default: 10.0
requirements:
  - redis (Python library; Debian package C(python3-redis)) on the host that runs the module.
"""
