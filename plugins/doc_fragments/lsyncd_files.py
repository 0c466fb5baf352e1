# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """Where a module that reads lsyncd's state finds lsyncd's files (``nodowntime.storage.lsyncd_files``)."""

    DOCUMENTATION = r"""
options:
  config:
    description:
      - lsyncd configuration file written by M(nodowntime.storage.lsyncd_conf). Used to find
        O(status_file) and O(log_file) when they are not given (C(statusFile) and C(logfile) of
        the managed settings block). Ignored when missing.
    type: path
    default: /etc/lsyncd/lsyncd.conf.lua
  status_file:
    description: lsyncd's status file. Defaults to C(statusFile) of the managed settings block in O(config).
    type: path
  log_file:
    description:
      - lsyncd's log file. Defaults to C(logfile) of the managed settings block in O(config); the
        log is not read when neither is set.
    type: path
"""
