# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive a module's ``main()`` in-process and capture what it returns."""
from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class AnsibleExitJson(Exception):
    """Raised in place of exit_json; ``.result`` holds what the module returned."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    """Raised in place of fail_json; ``.result`` holds msg and the other keys."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


def run_module(main, args, check_mode=False, diff=False):
    """Run ``main`` with ``args``; return the exit_json result or raise AnsibleFailJson.

    The result is passed through JSON the way Ansible would, so a value the controller
    could not receive fails the test here.
    """
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json):
        try:
            main()
        except AnsibleExitJson as e:
            return json.loads(json.dumps(e.result))
    pytest.fail("module returned without exit_json or fail_json")


def fail_module(main, args, check_mode=False):
    """Run ``main`` expecting fail_json; return its result."""
    with pytest.raises(AnsibleFailJson) as e:
        run_module(main, args, check_mode=check_mode)
    return e.value.result


@contextlib.contextmanager
def captured_warnings():
    """Collect what the module passes to ``module.warn`` inside the ``with`` block.

    ``with captured_warnings() as warnings: run_module(...)`` gives the warnings of that run
    only, in order; Ansible's own list (``get_warning_messages()``) is process-wide and keeps
    the warnings of earlier tests.
    """
    warnings = []
    with mock.patch.object(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg)):
        yield warnings
