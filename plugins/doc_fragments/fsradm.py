# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations


class ModuleDocFragment:
    """Options and notes shared by the modules that drive FSR's C(fsradm) command."""

    DOCUMENTATION = r"""
options:
  fsradm_path:
    description:
      - The C(fsradm) command, a name looked up on E(PATH) or an absolute path.
      - When it is not there the task fails naming this option.
    type: str
    default: fsradm
requirements:
  - FSR, with its administration command C(fsradm), on the node the task runs on.
notes:
  - >-
    The modules follow the FSR operations manual. Where it is silent they assume that C(fsradm)
    prints C(done) and exits 0 on success, prints C(declined <name>: <reason>) and exits
    non-zero when it refuses, answers C(fsradm meta check <name>) with exit 0 when the meta data
    exists, prints C(fsradm result) with an empty C(summary.end_time) while verify runs, and
    keeps C(fsradm events) running until it is ended (a subscription).
  - Resource and node names are letters, digits, V(_), V(.) and V(-), starting with a letter or
    a digit, at most 128 characters; V(all) is not a resource name (C(fsradm) reads it as every
    resource). Other names are refused before anything is run or written.
"""
