#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: job_progress
short_description: Follow a long background task, one progress line per interval
version_added: 0.1.0
description:
  - Ansible shows what a task did only when it ends, and a copy of many terabytes runs for hours.
    This collection's long steps therefore run in the background (C(async), C(poll=0)) and write
    their progress to a file; this module follows such a job. Each run waits up to O(wait) seconds
    for the job to end, then returns the job's latest progress as one line in RV(msg) - done and in
    all, in bytes and files, percent, rate and time left.
  - Run it in a loop with C(loop_control.label) set to RV(msg) and C(break_when) set to
    RV(finished) (see the examples). The play then prints one line per interval that says how far
    the step is, however long it runs, with no C(FAILED - RETRYING) noise; AWX shows each line as
    the job's output as it comes.
  - When the job has ended, the module returns the job's own result (as
    M(ansible.builtin.async_status) would), fails when the job failed, and removes the job's status
    file (O(cleanup)).
  - The steps that write progress files are the C(progress_file) options of
    M(nodowntime.storage.rsync_copy), M(nodowntime.storage.tree_verify) and
    M(nodowntime.storage.redis_aof_backup). Each line of such a file is a JSON object; the module
    reads only the last one.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.attributes.INFO_MODULE
options:
  jid:
    description: The job id, RV(ansible.builtin.async_status#module:ansible_job_id) of the task started with C(poll=0).
    type: str
    required: true
  progress_file:
    description: The progress file the job writes. Without it the line says only that the job runs and for how long.
    type: path
  wait:
    description:
      - Seconds to wait for the job to end before returning its progress; the interval between two
        progress lines. The module returns as soon as the job ends.
    type: float
    default: 60
  label:
    description: What the job does, put in front of the line, for example C(old:/srv/data -> new::data).
    type: str
    default: ""
  cleanup:
    description: Remove the job's status file once the job has ended and its result was read.
    type: bool
    default: true
  async_dir:
    description:
      - The directory of Ansible's background job status files on the host. The module's action
        takes it from the connection's shell settings (C(async_dir), C(ANSIBLE_ASYNC_DIR)) as
        M(ansible.builtin.async_status) does; set it only to override that.
    type: path
    default: ~/.ansible_async
notes:
  - C(break_when) needs ansible-core 2.18 or later.
seealso:
  - module: ansible.builtin.async_status
  - module: nodowntime.storage.rsync_copy
"""

EXAMPLES = r"""
- name: Start the copy in the background
  nodowntime.storage.rsync_copy:
    src: /srv/data
    dest: nodowntime@10.213.7.12::data
    password_file: /etc/nodowntime/rsync-data.password
    progress_file: /var/log/nodowntime/copy-data.progress
  async: 172800
  poll: 0
  register: copy_job

- name: Follow the copy, one line a minute
  nodowntime.storage.job_progress:
    jid: "{{ copy_job.ansible_job_id }}"
    progress_file: /var/log/nodowntime/copy-data.progress
    wait: 60
    label: /srv/data -> new::data
  register: copy_progress
  # Enough rounds for the job's whole async time; the loop stops when the job ends.
  loop: "{{ range(172800 // 60 + 2) | list }}"
  loop_control:
    label: "{{ copy_progress.msg | default('') }}"
    break_when: copy_progress.finished

- name: Use the copy's result
  ansible.builtin.debug:
    msg: "{{ copy_progress.results[-1].stats.bytes_transferred }} bytes copied"
"""

RETURN = r"""
finished:
  description: Whether the job has ended. When it has, the job's own return values are returned too.
  returned: always
  type: bool
msg:
  description:
    - The progress line, prefixed with O(label) - or, when the job failed, the job's error message.
  returned: always
  type: str
  sample: "/srv/data -> new::data: 1.2 GiB of 3.4 GiB, 12,345 of 40,000 files (35%); 48.0 MiB/s; ETA 47s"
progress:
  description:
    - The last line of O(progress_file) as written by the job - C(bytes_done), C(bytes_total),
      C(files_done), C(files_total), C(percent), C(rate) (per second, in C(rate_unit)), C(eta) and
      C(elapsed) (seconds), C(final), C(text). Values not known yet are null; empty when the job
      has written nothing yet.
  returned: always
  type: dict
  sample: {bytes_done: 1288490188, bytes_total: 3650722201, files_done: 12345, files_total: 40000,
           percent: 35, rate: 50331648.0, rate_unit: bytes, eta: 47.2, elapsed: 26.0, final: false}
ansible_job_id:
  description: The job id.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress

# Keys of the async wrapper's own bookkeeping, not the job's result.
_JOB_KEYS = ("started", "finished", "results_file", "ansible_job_id", "invocation", "_ansible_suppress_tmpdir_delete",
             "warnings", "deprecations")


def _messages(items):
    """The texts of a job's warnings or deprecations: strings before ansible-core 2.19, summaries since."""
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict):
            item = (item.get("event") or {}).get("msg") or item.get("msg")
        if item:
            yield str(item)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            jid=dict(type="str", required=True),
            progress_file=dict(type="path"),
            wait=dict(type="float", default=60),
            label=dict(type="str", default=""),
            cleanup=dict(type="bool", default=True),
            async_dir=dict(type="path", default="~/.ansible_async"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["wait"] < 0:
        module.fail_json(msg="wait: must not be negative, got %s" % p["wait"])
    try:
        finished, data, snap = _progress.follow_job(p["async_dir"],
                                                    p["jid"], p["progress_file"], p["wait"])
    except _progress.JobError as e:
        module.fail_json(msg=str(e), finished=True, ansible_job_id=p["jid"])
    line = snap["text"] if snap else "running, no progress reported yet"
    msg = "%s: %s" % (p["label"], line) if p["label"] else line
    result = dict(changed=False, finished=finished, progress=snap or {}, msg=msg, ansible_job_id=p["jid"])
    if not finished:
        module.exit_json(**result)

    job = dict((k, v) for k, v in data.items() if k not in _JOB_KEYS)
    # The job's warnings become this module's own: exit_json takes texts, not the job's summaries.
    for text in _messages(data.get("warnings", [])):
        module.warn(text)
    for text in _messages(data.get("deprecations", [])):
        module.warn("deprecated: %s" % text)
    if p["cleanup"]:
        try:
            _progress.remove_job(p["async_dir"], p["jid"])
        except OSError as e:
            module.warn("could not remove the status file of job %s: %s" % (p["jid"], e))
    result.update(job)
    result["finished"] = True
    result["progress"] = snap or {}
    if job.get("failed"):
        result["msg"] = "%s%s" % ("%s: " % p["label"] if p["label"] else "", job.get("msg", "the job failed"))
        module.fail_json(**result)
    result["msg"] = msg
    module.exit_json(**result)


if __name__ == "__main__":
    main()
