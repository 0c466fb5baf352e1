# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations


class ModuleDocFragment:
    """Attribute descriptions shared by the modules of nodowntime.storage.

    Use as ``nodowntime.storage.attributes`` and then set ``support`` (and any ``details``)
    for each attribute in the module's own ``attributes:`` block.
    """

    # Standard documentation fragment
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
"""

    # For modules that only read: check mode is the same as a real run, nothing to diff.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: N/A
    details: The module never changes anything.
"""
