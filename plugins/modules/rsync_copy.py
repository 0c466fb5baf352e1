#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rsync_copy
short_description: Copy a live directory tree with rsync, resumable, locked, in parallel, with statistics
version_added: 0.1.0
description:
  - Runs rsync on the managed host to copy the directory O(src) to O(dest), typically the
    source server pushing to the new server's rsync daemon (C(new::module)). The copy runs
    where the data is, so nothing passes through the controller and no remote-to-remote
    ssh hop can hang a task.
  - B(One copy per destination at a time.) The module takes an exclusive, non-blocking lock
    (C(flock -xn) semantics, C(fcntl.flock) with C(LOCK_EX|LOCK_NB)) on O(lock_file) before
    starting rsync. A second run against the same destination fails at once with
    C(already running (lock PATH held by PID N)) and RV(already_running=true). The rsync
    processes inherit the lock, so it stays held as long as any of them runs, and is released
    by the kernel when they end, also when they are killed.
  - B(Fidelity.) C(--archive) copies permissions, times, owners, symlinks and devices, but not
    hard links, ACLs, extended attributes or holes in sparse files; O(hard_links), O(acls),
    O(xattrs) and O(sparse) add them. A migration should carry all of them (the
    C(nodowntime.storage.initial_sync) role turns them on); each has a cost, described with the
    option.
  - B(Resumable.) O(partial_dir) keeps partly transferred files on the receiver when a copy is
    interrupted; the next run continues from them (rsync's delta transfer uses the partial file
    as its basis) instead of starting those files again.
  - B(Exit codes.) rsync exit 0 is success. Exit 24 (source files vanished during the copy,
    normal on a tree applications keep writing) is success with a warning that lists the
    vanished files (RV(vanished)). Exit 23 (some files or attributes were not transferred)
    fails and lists the files and errors (RV(failed_files)). Every other code fails with rsync's
    own error lines and the meaning of the code.
  - B(Parallel workers.) With O(workers) greater than 1 the top-level directories of O(src)
    are split into that many groups, balanced by their number of entries, and one rsync per
    group runs at the same time (C(--relative SRC/./dir ...)). A short first pass copies the
    top level alone (C(--dirs)) - top-level files, directory entries and, with O(delete), the
    removal of top-level entries that are gone from the source. Copying many small files is
    CPU-bound per rsync process, so several workers can help up to about the number of CPU cores
    on both ends, and no further (the collection's C(docs/performance.md) has measurements).
    Measure on your own hardware before raising O(workers). A tree with one dominant top-level
    directory gains nothing from workers.
  - B(Progress.) With O(progress_file), the module appends one line every O(progress_interval)
    seconds for the whole copy, all rsync processes summed - bytes transferred and files checked,
    against the totals of a scan of the source made beside the copy (the totals, the percent and
    the time left appear once the scan is done), the rate over the last minute - and a last line
    when done. Each line is a JSON object whose C(text) a person reads; follow a copy started with
    C(async) with M(nodowntime.storage.job_progress), or C(tail -f) the file on the host.
  - B(Changes and statistics.) rsync runs with C(--itemize-changes --stats); RV(changed) is true
    when rsync created, updated, deleted or changed the attributes of anything, and RV(stats)
    carries the file and byte counts and the rate, summed over all rsync processes.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs rsync with C(--dry-run) (and still takes the lock and writes O(progress_file));
        RV(changes) and RV(stats) describe what would be copied.
  diff_mode:
    support: none
options:
  src:
    description:
      - The directory to copy, on the managed host. Its contents are copied into O(dest)
        (as C(rsync SRC/ DEST/)).
    type: path
    required: true
  dest:
    description:
      - Where to copy to, in rsync syntax. C(host::module[/dir]) or C(rsync://host[:port]/module[/dir])
        for an rsync daemon (the recommended way, no ssh keys between servers), C([user@]host:/dir)
        for rsync over ssh (see O(rsh)), or an absolute local path.
    type: str
    required: true
  delete:
    description:
      - Delete files in O(dest) that do not exist in O(src) (C(--delete)). Excluded files and
        the O(partial_dir) are not deleted.
      - Off by default because it removes data on the destination.
    type: bool
    default: false
  archive:
    description: C(--archive) (recursion, symlinks, permissions, times, group, owner, devices).
    type: bool
    default: true
  exclude:
    description: rsync exclude patterns (C(--exclude)), one per item.
    type: list
    elements: str
    default: []
  bwlimit:
    description:
      - Bandwidth limit for the whole copy, as rsync's C(--bwlimit) understands it - a number is
        KiB/s, or add a unit - C(K)/C(KiB) (1024), C(KB) (1000), C(M)/C(MiB), C(MB), C(G), C(B) for
        bytes. C(0) means no limit. Examples - C(4096), C(512K), C(40MiB), C(1.5G).
      - With several O(workers) the limit is divided evenly between them (each gets
        limit/workers), so the total stays within O(bwlimit); the top-level first pass alone gets
        all of it.
    type: str
    default: "0"
  partial_dir:
    description:
      - C(--partial-dir), relative to each destination directory. Interrupted files are kept
        there and resumed by the next run. An empty string disables it (interrupted files are
        then discarded).
    type: str
    default: .rsync-partial
  workers:
    description:
      - Number of rsync processes that copy at the same time, each taking a group of top-level
        directories. C(1) runs a single rsync over the whole tree.
    type: int
    default: 1
  compress:
    description: C(--compress). Rarely useful on a LAN and costs CPU.
    type: bool
    default: false
  numeric_ids:
    description: C(--numeric-ids), keep user and group ids instead of mapping names.
    type: bool
    default: false
  hard_links:
    description:
      - C(--hard-links) - names that share an inode in O(src) share one inode in O(dest). Without
        it each name becomes a separate file (and the data is sent and stored once per name).
      - Costs memory - rsync keeps every inode with more than one link in memory for the whole
        run. With O(workers) greater than 1 the module also reads the link count of every file
        while planning, and keeps top-level directories that share an inode in one worker
        (rsync only links names that one process sees); when a file at the top level of O(src)
        shares an inode with a file inside a directory, one rsync copies the whole tree, with a
        warning.
    type: bool
    default: false
  acls:
    description:
      - C(--acls) - copy POSIX ACLs (implies keeping permissions).
      - Needs ACL support in rsync on both ends (and the rsync daemon of a C(host::module)
        destination), and a target file system that holds ACLs; otherwise rsync fails (exit 23
        or 4). Costs one ACL read per file on the source and a write per changed ACL.
    type: bool
    default: false
  xattrs:
    description:
      - C(--xattrs) - copy extended attributes (C(user.*), and as root the other namespaces too).
      - Needs xattr support in rsync on both ends and a target file system that holds the
        attributes (otherwise rsync fails with exit 23). Costs a listing and read of the
        attributes of every file on both ends, on every run.
    type: bool
    default: false
  sparse:
    description:
      - C(--sparse) - write runs of zeros as holes on the destination, so a sparse file (disk
        images, database files) does not take its full size there.
      - The zeros are still read on the source and compared by rsync; a file that was not sparse
        but contains long runs of zeros becomes sparse on the destination.
    type: bool
    default: false
  io_timeout:
    description:
      - C(--timeout) in seconds - rsync fails (exit 30) when no data moves for this long, instead
        of hanging. C(0) disables it.
    type: int
    default: 600
  connect_timeout:
    description: C(--contimeout) in seconds for an rsync daemon destination (exit 35 when exceeded).
    type: int
    default: 30
  password_file:
    description: C(--password-file) for a daemon module with C(auth users).
    type: path
  rsh:
    description: C(--rsh), the remote shell for a C(host:/dir) destination, for example C(ssh -o BatchMode=yes).
    type: str
  extra_args:
    description: Further rsync arguments, one per item, passed as given.
    type: list
    elements: str
    default: []
  lock_file:
    description:
      - The lock file. Defaults to C(/run/lock/nodowntime/rsync-copy-DEST.lock), named after
        O(dest), so two copies to the same destination never overlap while copies to different
        destinations can run (C(/tmp/nodowntime) when C(/run/lock) does not exist).
      - The default directory is created (mode 0755, owned by root) when missing. The module
        refuses to run when it exists but is not a directory owned by root that only root can
        write to, because anyone could then plant a file or a symlink at the lock path.
      - The lock file is never followed through a symlink and never truncated. A missing file is
        created; an existing one is used only when it is a regular file of the module's user with
        one link that holds nothing but a PID (a lock file of an earlier run); anything else is
        refused with a message starting C(lock_file:), and left unchanged.
    type: path
  progress_file:
    description:
      - File to append progress lines to while rsync runs (emptied when a run starts), one JSON
        object a line, as M(nodowntime.storage.job_progress) reads them. Not written when unset.
      - Its totals come from a scan of O(src) (file names and sizes only) beside the copy; the scan
        skips excluded names, but not O(exclude) patterns that contain a C(/), so the totals are
        an estimate when those are used.
    type: path
  progress_interval:
    description: Seconds between two lines in O(progress_file).
    type: float
    default: 5
  max_changes:
    description: How many itemized changes to return in RV(changes) (all are counted in RV(changes_count)).
    type: int
    default: 200
  rsync_path:
    description: The rsync binary on the managed host.
    type: path
    default: rsync
notes:
  - Needs rsync 3.1 or later on the managed host (C(--info=progress2)); tested with 3.2.7.
  - A daemon destination needs a writable module, see M(nodowntime.storage.rsyncd_share).
  - Ansible shows a module's output only when it ends. For a long copy run the task with C(async)
    and C(poll=0), then follow it with M(nodowntime.storage.job_progress); the
    C(nodowntime.storage.initial_sync) role does this.
seealso:
  - module: nodowntime.storage.rsyncd_share
  - module: nodowntime.storage.tree_verify
  - module: nodowntime.storage.job_progress
"""

EXAMPLES = r"""
- name: First full copy of /srv/data to the new server's rsync daemon, 4 workers, 40 MiB/s in total
  nodowntime.storage.rsync_copy:
    src: /srv/data
    dest: new::data
    delete: true
    workers: 4
    bwlimit: 40MiB
    exclude:
      - "*.tmp"
    progress_file: /var/log/nodowntime/initial-sync-data.progress
  register: copy

- name: Copy everything, hard links, ACLs, extended attributes and holes of sparse files included
  nodowntime.storage.rsync_copy:
    src: /srv/data
    dest: new::data
    numeric_ids: true
    hard_links: true
    acls: true
    xattrs: true
    sparse: true
    workers: 2

- name: Show what moved
  ansible.builtin.debug:
    msg: "{{ copy.stats.files_transferred }} files, {{ copy.stats.bytes_transferred }} bytes at {{ copy.stats.rate }} B/s"

- name: Long copy without a hanging-looking task - start it in the background
  nodowntime.storage.rsync_copy:
    src: /srv/data
    dest: new::data
    progress_file: /var/log/nodowntime/initial-sync-data.progress
  async: 86400
  poll: 0
  register: copy_job

- name: Follow it, one line a minute (done/total, rate, time left)
  nodowntime.storage.job_progress:
    jid: "{{ copy_job.ansible_job_id }}"
    progress_file: /var/log/nodowntime/initial-sync-data.progress
    wait: 60
  register: copy_progress
  loop: "{{ range(86400 // 60 + 2) | list }}"
  loop_control:
    label: "{{ copy_progress.msg | default('') }}"
    break_when: copy_progress.finished
"""

RETURN = r"""
changed:
  description: Whether rsync created, updated, deleted or changed anything (would have, in check mode).
  returned: always
  type: bool
rsync_rc:
  description:
    - The most significant rsync exit code over all processes (0, or 24 when files vanished;
      other codes fail the task). Negative when a process was killed by a signal.
    - Not called C(rc) because Ansible fails any result whose C(rc) is not 0, and 24 is a success here.
  returned: always
  type: int
  sample: 24
already_running:
  description: True when another copy to the same destination holds the lock.
  returned: on failure because of the lock
  type: bool
lock_file:
  description: The lock file used.
  returned: always
  type: str
  sample: /run/lock/nodowntime/rsync-copy-new_data.lock
changes_count:
  description: Number of itemized changes (created, updated, deleted entries; directories included).
  returned: always
  type: int
  sample: 3021
changes:
  description: The first O(max_changes) itemized changes.
  returned: always
  type: list
  elements: dict
  contains:
    change:
      description: rsync's 11-character itemize string (for example C(>f+++++++++)), or C(deleted).
      type: str
    path:
      description: Path relative to O(src).
      type: str
deleted:
  description: Number of entries deleted on the destination (counted from C(*deleting) lines).
  returned: always
  type: int
vanished:
  description: Source files that vanished while rsync was copying them (exit 24); at most 1000.
  returned: always
  type: list
  elements: str
failed_files:
  description: Files rsync reported errors for (exit 23 and others), with the error.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file as rsync named it.
      type: str
    error:
      description: rsync's error text.
      type: str
stats:
  description: Statistics summed over all rsync processes of the run.
  returned: always
  type: dict
  contains:
    files:
      description: Entries rsync considered (C(Number of files)), summed over processes.
      type: int
    files_transferred:
      description: Regular files whose data was sent.
      type: int
    files_created:
      description: Entries created on the destination.
      type: int
    total_size:
      description: Total size of the files considered, in bytes.
      type: int
    bytes_transferred:
      description: Size of the files sent (C(Total transferred file size)), in bytes.
      type: int
    literal_bytes:
      description: Bytes sent as literal data (less than RV(stats.bytes_transferred) when partial files were resumed).
      type: int
    matched_bytes:
      description: Bytes the receiver already had (delta transfer, resumed partial files).
      type: int
    bytes_sent:
      description: Bytes sent over the wire.
      type: int
    bytes_received:
      description: Bytes received over the wire.
      type: int
    elapsed:
      description: Wall-clock seconds of the run.
      type: float
    rate:
      description: RV(stats.bytes_transferred) divided by RV(stats.elapsed), bytes per second.
      type: float
  sample:
    files: 3042
    files_transferred: 3000
    bytes_transferred: 6144000
    bytes_sent: 6321456
    elapsed: 2.31
    rate: 2659740.3
workers:
  description: One entry per rsync process.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(all) (single rsync), C(top) (first pass) or C(workerN).
      type: str
    dirs:
      description: Top-level directories this process copied (empty for C(all) and C(top)).
      type: list
      elements: str
    cmd:
      description: The command line.
      type: list
      elements: str
    rc:
      description: Its exit code (negative when killed by a signal).
      type: int
    elapsed:
      description: Its wall-clock seconds.
      type: float
    stats:
      description: Its statistics (keys as in RV(stats)).
      type: dict
bwlimit_per_worker:
  description: The C(--bwlimit) each parallel rsync got, in KiB/s (0 means none).
  returned: always
  type: int
stderr_lines:
  description: rsync's error and warning lines (at most 200).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync, _rsync_runner


def take_lock(module, path, default):
    """The locked descriptor of ``path``; fails the module when it is busy or unsafe."""
    try:
        if default:
            _rsync_runner.ensure_lock_dir(os.path.dirname(path))
        else:
            directory = os.path.dirname(path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, exist_ok=True)
        return _rsync_runner.open_lock(path)
    except _rsync_runner.LockBusy as e:
        module.fail_json(
            msg="already running (lock %s held by PID %s): another copy to %s has not finished; "
                "wait for it or stop it, then run again" % (path, e.holder, module.params["dest"]),
            already_running=True, lock_file=path, rsync_rc=None, changed=False)
    except _rsync_runner.LockError as e:
        module.fail_json(msg=str(e), lock_file=path, rsync_rc=None, changed=False)
    except OSError as e:
        module.fail_json(msg="lock_file: cannot use %s: %s" % (path, e), lock_file=path, rsync_rc=None,
                         changed=False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="str", required=True),
            delete=dict(type="bool", default=False),
            archive=dict(type="bool", default=True),
            exclude=dict(type="list", elements="str", default=[]),
            bwlimit=dict(type="str", default="0"),
            partial_dir=dict(type="str", default=".rsync-partial"),
            workers=dict(type="int", default=1),
            compress=dict(type="bool", default=False),
            numeric_ids=dict(type="bool", default=False),
            hard_links=dict(type="bool", default=False),
            acls=dict(type="bool", default=False),
            xattrs=dict(type="bool", default=False),
            sparse=dict(type="bool", default=False),
            io_timeout=dict(type="int", default=600),
            connect_timeout=dict(type="int", default=30),
            password_file=dict(type="path", no_log=False),
            rsh=dict(type="str"),
            extra_args=dict(type="list", elements="str", default=[]),
            lock_file=dict(type="path"),
            progress_file=dict(type="path"),
            progress_interval=dict(type="float", default=5),
            max_changes=dict(type="int", default=200),
            rsync_path=dict(type="path", default="rsync"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        bwlimit = _rsync_runner.check_copy_params(p)
    except ValueError as e:
        module.fail_json(msg=str(e))
    rsync = module.get_bin_path(p["rsync_path"], required=True) if "/" not in p["rsync_path"] else p["rsync_path"]

    lock_file = p["lock_file"] or os.path.join(_rsync_runner.default_lock_dir(), _rsync.lock_name(p["dest"]))
    lock_fd = take_lock(module, lock_file, default=not p["lock_file"])

    outcome = _rsync_runner.copy_tree(p, rsync, bwlimit, lock_fd, lock_file, dry_run=module.check_mode)
    for warning in outcome.warnings:
        module.warn(warning)
    if outcome.error:
        module.fail_json(msg=outcome.error, **outcome.result)
    module.exit_json(**outcome.result)


if __name__ == "__main__":
    main()
