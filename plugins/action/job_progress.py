# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the job_progress module with the async directory the connection's shell uses."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        if not module_args.get("async_dir"):
            # The same place async_status looks: the job was started through this connection.
            module_args["async_dir"] = self._remote_expand_user(
                self.get_shell_option("async_dir", default="~/.ansible_async"))
        result.update(self._execute_module(module_name="nodowntime.storage.job_progress",
                                           module_args=module_args, task_vars=task_vars))
        return result
