# SPDX-License-Identifier: GPL-3.0-or-later
"""Small helpers shared by the unit and functional tests (import as ``from ..helpers import ...``)."""
from __future__ import annotations

import socket


def free_port(host="127.0.0.1"):
    """A TCP port on ``host`` that nothing listens on right now.

    The kernel picks it (bind to port 0) and the socket is closed again, so the caller can start a
    daemon there, or expect a refused connection. Another process could take the port in between;
    on a test machine that does not happen in practice.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
