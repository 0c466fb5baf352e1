#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: tree_verify
short_description: Prove that a directory tree and its copy hold the same entries, attributes and content
version_added: 0.1.0
description:
  - Compares the directory O(path) on the managed host with its copy O(target) - a local directory,
    an rsync daemon share (C(host::share)) or a directory over ssh (C(host:/dir)) - and reports
    every entry that differs, is missing on the target, or is on the target only, in the same
    shape as FSR's C(fsradm result) (see M(nodowntime.storage.fsr_resource)), so one report format
    serves a migration done with rsync and lsyncd and one done with FSR.
  - B(What is compared.) With O(depth=attributes), the type of each entry, the size and
    modification time of files, permissions, owner and group (by number), symlink targets,
    hard-link groups, device numbers, POSIX ACLs and extended attributes - everything a
    migration with this collection carries. O(depth=checksum) compares the content of every
    file as well (it reads every file on both sides). O(ignore) leaves out what a copy does not
    carry on purpose.
  - B(How.) rsync itself compares the trees, in dry-run mode (C(--dry-run --delete
    --itemize-changes)); its output is read while it runs, so memory does not grow with the
    size of the tree. Nothing is written into either tree, not even a probe file.
  - B(A tree still being written.) With O(settle) greater than 0, every difference found is
    checked again after that many seconds. One that is still there while its source entry did
    not change in the meantime is I(persistent) and counted in RV(totals); the others were
    I(in flight) (for example, written on the source and not yet shipped by lsyncd) and are
    counted apart in RV(in_flight). An entry only on the target counts as in flight when its
    directory on the source changed in the meantime, since a writer that keeps creating and deleting
    names there leaves deletions lsyncd has not shipped yet. Choose O(settle) longer than
    lsyncd's C(delay) plus the time it needs to ship a change.
  - B(Progress.) With O(progress_file), the module appends one line every O(progress_interval)
    seconds while it compares - the entries compared so far of how many there are, the rate
    and the time left - and a last line when done, whose outcome is C(clean) or C(N lasting
    differences). Each line is a JSON object whose C(text) a person reads; follow a verify
    started with C(async) with M(nodowntime.storage.job_progress) (the C(nodowntime.storage.verify)
    role does), or C(tail -f) the file on the host.
  - The task fails only when the comparison cannot be made (a side missing or unreadable, a
    refused connection), naming the option at fault. Differences are a result, not a failure -
    test RV(clean) or RV(totals).
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.attributes.info_module
options:
  path:
    description: The source directory, on the managed host.
    type: path
    required: true
  target:
    description:
      - The copy to compare with, in rsync syntax - an absolute local path, C(host::share[/dir])
        or C(rsync://host[:port]/share[/dir]) for an rsync daemon share, or C([user@]host:/dir) over ssh.
      - A daemon share must allow the managed host to connect (C(hosts allow)) and to write
        (C(read only = false)), because rsync asks for a push even in dry-run mode.
    type: str
    required: true
  password_file:
    description: A file holding the password of a daemon share with C(auth users) (rsync's C(--password-file)).
    type: path
  rsh:
    description: The remote shell for a C(host:/dir) target, for example C(ssh -o BatchMode=yes).
    type: str
  excludes:
    description:
      - rsync exclude patterns; matching entries are left out on both sides.
    type: list
    elements: str
    default: []
    aliases: [exclude]
  depth:
    description:
      - V(attributes) compares types, sizes, times, permissions, owners, groups, symlink
        targets, hard links, devices, ACLs and extended attributes.
      - V(checksum) also reads and compares the content of every file.
    type: str
    choices: [attributes, checksum]
    default: attributes
  ignore:
    description:
      - Attributes to leave out of the comparison. V(dir_times) ignores the modification time
        of directories only. V(perms) can only be left out together with V(acls).
    type: list
    elements: str
    choices: [perms, times, owner, group, devices, specials, hard_links, acls, xattrs, dir_times]
    default: []
  limit:
    description: How many entries of each kind (different, missing, orphaned) to list in RV(differences); all are counted in RV(totals).
    type: int
    default: 100
  settle:
    description:
      - Seconds to wait before checking every difference again; V(0) checks once.
    type: float
    default: 0
  report:
    description:
      - A file on the managed host to write the result to as JSON (replaced atomically). Not
        written in check mode.
    type: path
  io_timeout:
    description: rsync's C(--timeout) in seconds; V(0) disables it.
    type: int
    default: 600
  connect_timeout:
    description: rsync's C(--contimeout) in seconds, for a daemon share.
    type: int
    default: 30
  rsync_path:
    description: The rsync binary on the managed host.
    type: str
    default: rsync
  progress_file:
    description:
      - File to append progress lines to while the trees are compared (emptied when a run starts),
        one JSON object a line, as M(nodowntime.storage.job_progress) reads them. Not written when
        unset. Written in check mode too - it tells how far the run is and holds no result.
      - The counts are rsync's own (C(--info=progress2)). rsync knows how many entries the tree
        holds only once it has listed all of it, on a large tree near the end; until then the
        total comes from a count of O(path) made beside the comparison (a walk of its directories;
        it skips excluded names, but not O(excludes) patterns that contain a C(/), so the total is
        an estimate when those are used). The passes over the differences (after O(settle), and
        over the entries only on the target) count against their own lists.
    type: path
  progress_interval:
    description: Seconds between two lines in O(progress_file).
    type: float
    default: 5
notes:
  - Needs rsync 3.1 or later on the managed host and on the target host; tested with 3.2.7.
    Comparing ACLs and extended attributes needs rsync built with them on both sides (Debian's is)
    and a file system on the target that holds them.
  - RV(totals) use the names of C(fsradm result) - I(missing) is on the source only, I(orphaned) is on
    the target only, I(diff) is on both but not alike. Byte counts are the sizes of the files concerned
    (the source's for I(diff) and I(missing), the target's for I(orphaned)).
  - With O(settle), a path removed from the source between the two checks counts as in flight.
  - Ansible shows a module's result only when it ends. For a long verify run the task with C(async)
    and C(poll=0), then follow it with M(nodowntime.storage.job_progress); the
    C(nodowntime.storage.verify) role does this.
seealso:
  - module: nodowntime.storage.rsync_copy
  - module: nodowntime.storage.fsr_resource
  - module: nodowntime.storage.job_progress
"""

EXAMPLES = r"""
- name: Prove that new holds what old holds while lsyncd keeps it in step (delay 1 s)
  nodowntime.storage.tree_verify:
    path: /srv/data
    target: new.example.com::data
    settle: 5
    report: /var/lib/nodowntime/verify/data.json
  register: verify

- name: Stop here unless the trees agree
  ansible.builtin.assert:
    that: verify.clean
    fail_msg: "{{ verify.totals }} - first differences: {{ verify.differences[:10] }}"

- name: Compare the content too, against a local copy, leaving out ACLs and directory times
  nodowntime.storage.tree_verify:
    path: /srv/data
    target: /mnt/copy
    depth: checksum
    ignore: [acls, dir_times]

- name: Start a verify of a large tree in the background
  nodowntime.storage.tree_verify:
    path: /srv/data
    target: new.example.com::data
    settle: 6
    progress_file: /var/log/nodowntime/verify-data.progress
  async: 86400
  poll: 0
  register: verify_job

- name: Follow it, one line a minute (entries compared of all, rate, time left)
  nodowntime.storage.job_progress:
    jid: "{{ verify_job.ansible_job_id }}"
    progress_file: /var/log/nodowntime/verify-data.progress
    wait: 60
    label: /srv/data -> new::data
  register: verify_progress
  loop: "{{ range(86400 // 60 + 2) | list }}"
  loop_control:
    label: "{{ verify_progress.msg | default('starting') }}"
    break_when: verify_progress.finished | default(false)

- name: Use the verify's result
  ansible.builtin.debug:
    msg: "{{ (verify_progress.results | last).summary }}"
"""

RETURN = r"""
clean:
  description: True when RV(totals) are all zero - the trees agree, apart from what was in flight.
  returned: always
  type: bool
totals:
  description: Persistent differences, counted as C(fsradm result) counts them.
  returned: always
  type: dict
  contains:
    diff_dir:
      description: Directories on both sides whose attributes differ.
      type: int
    diff_file:
      description: Other entries (files, symlinks, devices) on both sides that differ.
      type: int
    diff_bytes:
      description: Size of the differing files on the source.
      type: int
    missing_dir:
      description: Directories on the source only.
      type: int
    missing_file:
      description: Other entries on the source only.
      type: int
    missing_bytes:
      description: Size of the files on the source only.
      type: int
    orphaned_dir:
      description: Directories on the target only.
      type: int
    orphaned_file:
      description: Other entries on the target only.
      type: int
    orphaned_bytes:
      description: Size of the files on the target only.
      type: int
  sample: {diff_dir: 0, diff_file: 1, diff_bytes: 14, missing_dir: 0, missing_file: 0, missing_bytes: 0,
           orphaned_dir: 0, orphaned_file: 0, orphaned_bytes: 0}
differences:
  description:
    - The first O(limit) persistent differences of each kind. C(path) is relative to O(path). Every
      name is shown exactly - printable UTF-8 as it is, a backslash doubled, a byte that is not UTF-8
      or an ASCII control character (a newline, a tab) as C(\xNN), any other character that is not
      printable as C(\uNNNN) or C(\UNNNNNNNN).
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: C(different), C(missing) (source only) or C(orphaned) (target only).
      type: str
    path:
      description: The entry, relative to O(path).
      type: str
    entry:
      description: C(file), C(dir), C(symlink), C(device) or C(special).
      type: str
    size:
      description: Size in bytes of a file (0 for other entries).
      type: int
    differs:
      description: What differs for a C(different) entry - C(size), C(mtime), C(perms), C(owner),
        C(group), C(acl), C(xattr), C(hard_links), C(checksum) (content), C(target) (symlink),
        C(device).
      type: list
      elements: str
  sample:
    - {type: different, path: conf/app.ini, entry: file, size: 812, differs: [checksum]}
differences_truncated:
  description: True when more differences were counted than listed.
  returned: always
  type: bool
differs_counts:
  description:
    - How many lasting C(different) entries differ in each attribute, counted over all of them (not only
      the listed ones) - for example C(hard_links) counts hard-link groups split on the target.
  returned: always
  type: dict
  sample: {mtime: 2, hard_links: 1}
in_flight:
  description:
    - The differences that did not survive O(settle) (or, for entries only on the target, that were
      gone by the time their size was read or whose directory on the source changed meanwhile) -
      C(totals), C(differences) and C(differences_truncated) as above.
  returned: always
  type: dict
entries_checked:
  description: Entries of the source tree that rsync compared (directories included).
  returned: always
  type: int
started_at:
  description:
    - When the comparison started (ISO 8601, UTC).
    - Not C(started), which Ansible's C(async_status) uses for a job of its own.
  returned: always
  type: str
finished_at:
  description: When the comparison ended (ISO 8601, UTC).
  returned: always
  type: str
elapsed:
  description: Seconds the comparison took, O(settle) included.
  returned: always
  type: float
vanished:
  description: Source files that vanished while rsync read the tree (normal on a live tree).
  returned: always
  type: int
passes:
  description: The rsync runs made - C(tree), then C(recheck) (with O(settle)) and C(orphans) - with exit code and seconds.
  returned: always
  type: list
  elements: dict
summary:
  description: One line for a person - whether the trees agree, the lasting and the in-flight differences.
  returned: always
  type: str
  sample: "lasting differences: 1 different (0 dirs, 1 file, 3328 bytes) - 2159 entries compared at attributes depth in 3.5 s"
first_differences:
  description: The first ten RV(differences), one line each (type, path, entry and what differs).
  returned: always
  type: list
  elements: str
  sample: ["different  tree/t2/s5/f020 (file: size, mtime)"]
report_written:
  description: Whether O(report) was written.
  returned: always
  type: bool
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import _tree_report, _tree_verify


def _check_params(module, fail):
    p = module.params
    if not os.path.isdir(p["path"]):
        fail("path: %s is not a directory on this host" % p["path"])
    if not os.access(p["path"], os.R_OK | os.X_OK):
        fail("path: %s cannot be read" % p["path"])
    kind = _tree_verify.target_kind(p["target"])
    if kind is None:
        fail("target: %r is neither an absolute path, host::share, rsync://host/share nor host:/dir" % p["target"])
    if kind == "local" and not os.path.isdir(p["target"]):
        fail("target: %s is not a directory on this host" % p["target"])
    if p["password_file"] and kind != "daemon":
        fail("password_file: only a daemon share (host::share) takes a password, target is %s" % p["target"])
    if p["password_file"] and not os.access(p["password_file"], os.R_OK):
        fail("password_file: %s cannot be read" % p["password_file"])
    if p["rsh"] and kind != "ssh":
        fail("rsh: only a host:/dir target goes over a remote shell, target is %s" % p["target"])
    for name in ("limit", "io_timeout", "connect_timeout"):
        if p[name] < 0:
            fail("%s: must be 0 or more, got %d" % (name, p[name]))
    if p["settle"] < 0:
        fail("settle: must be 0 or more seconds, got %s" % p["settle"])
    return kind


def _write_report(module, path, report):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            target=dict(type="str", required=True),
            password_file=dict(type="path", no_log=False),
            rsh=dict(type="str"),
            excludes=dict(type="list", elements="str", default=[], aliases=["exclude"]),
            depth=dict(type="str", choices=list(_tree_verify.DEPTHS), default="attributes"),
            ignore=dict(type="list", elements="str", choices=list(_tree_verify.IGNORABLE), default=[]),
            limit=dict(type="int", default=100),
            settle=dict(type="float", default=0),
            report=dict(type="path"),
            io_timeout=dict(type="int", default=600),
            connect_timeout=dict(type="int", default=30),
            rsync_path=dict(type="str", default="rsync"),
            progress_file=dict(type="path"),
            progress_interval=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["progress_interval"] < 0:
        module.fail_json(msg="progress_interval: must be 0 or more seconds, got %s" % p["progress_interval"])
    # Opened first: whoever follows the file must not take an earlier run's last line for this one's.
    try:
        progress = _tree_verify.VerifyProgress(p["progress_file"], p["progress_interval"])
    except OSError as e:
        module.fail_json(msg="progress_file: cannot write %s: %s" % (p["progress_file"], to_native(e)))

    def fail(msg, **kwargs):
        progress.finish("failed", note=msg)
        module.fail_json(msg=msg, **kwargs)

    kind = _check_params(module, fail)
    try:
        compare = _tree_verify.compare_options(p["depth"], p["ignore"])
    except ValueError as e:
        fail(to_native(e))
    rsync = module.get_bin_path(p["rsync_path"])
    if rsync is None:
        fail("rsync_path: %s is not found on this host; install rsync 3.1 or later, or set rsync_path to its path"
             % p["rsync_path"])
    progress.count(p["path"], p["excludes"])
    verify = _tree_verify.TreeVerify(
        rsync, p["path"], p["target"], compare,
        _tree_verify.connection_options(p["password_file"], p["rsh"], p["io_timeout"], p["connect_timeout"],
                                        daemon=kind == "daemon"),
        excludes=p["excludes"], limit=p["limit"], settle=p["settle"], workdir=module.tmpdir, progress=progress)
    try:
        report = verify.run()
    except _tree_verify.VerifyError as e:
        module.fail_json(msg=to_native(e), rc=e.rc, stderr=e.stderr, passes=verify.passes)
    report["depth"] = p["depth"]
    report["ignore"] = p["ignore"]
    report["summary"] = _tree_report.summary(report)
    report["first_differences"] = _tree_report.difference_lines(report["differences"])
    written = False
    if p["report"] and not module.check_mode:
        try:
            _write_report(module, p["report"], report)
        except OSError as e:
            module.fail_json(msg="report: cannot write %s: %s" % (p["report"], to_native(e)), **report)
        written = True
    module.exit_json(changed=False, report_written=written, **report)


if __name__ == "__main__":
    main()
