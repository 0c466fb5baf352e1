# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the collection importable as ``ansible_collections.nodowntime.storage``.

The repository root is the collection root; ``make`` links it into
``.tmp/collections/ansible_collections/nodowntime/storage`` and that tree goes on sys.path,
so unit tests import plugins exactly the way Ansible does.
"""
from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COLLECTIONS = os.path.join(_ROOT, ".tmp", "collections")
_LINK = os.path.join(_COLLECTIONS, "ansible_collections", "nodowntime", "storage")

if not os.path.islink(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink(_ROOT, _LINK)
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
