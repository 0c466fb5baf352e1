#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: redis_aof_backup
short_description: Take a consistent, restorable backup of a Redis append-only file
version_added: 0.1.0
description:
  - Backs up the AOF of a Redis server running on the managed host, in five steps
    (relax C(appendfsync), C(BGREWRITEAOF), wait for the rewrite, archive, put C(appendfsync) back).
  - Redis 7 keeps the AOF as a directory (C(appenddirname)) of a base file, incr files and a
    manifest; older Redis keeps one file. The module archives the complete set of one generation.
    While it hard-links the files it holds off automatic rewrites
    (C(auto-aof-rewrite-percentage 0)), re-reads the manifest to make sure no rewrite replaced
    them, and cuts incr files at the size they had at that moment, at the last complete command.
  - The archive is written to a temporary name, synced and renamed to
    C(backup_dir/aof_YYYYmmddHHMMSS-PORT.zip) (or C(.tar.zst)); the time is UTC. It carries a
    small C(nodowntime-aof-backup.json) with key counts and sampled value digests, which the
    C(nodowntime.storage.redis_backup) role's restore drill compares with a restored server.
  - Every setting the module changes is put back, also when a step fails or times out.
  - Two backups of one instance never run at once; a lock file C(.aof-backup-PORT.lock) in
    O(backup_dir) serialises them.
  - The module must run on the Redis host, because it reads the AOF files directly.
  - B(Progress.) With O(progress_file), the module appends one line every O(progress_interval)
    seconds - while it waits for the rewrite (the time elapsed and, from Redis 7, the percent of
    the keys the rewrite has written), then while it archives (bytes and files done of all, the
    rate and the time left) - and a last line when done (C(done) with the archive, or
    C(failed at STEP) with the reason). Each line is a JSON object whose C(text) a person reads;
    follow a backup started with C(async) with M(nodowntime.storage.job_progress), or C(tail -f)
    the file on the host.
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.redis_connection
attributes:
  check_mode:
    support: full
    details:
      - Reads the configuration and reports the plan and the archives retention would delete
        (counting in the archive the run would create, as the run does); runs no C(CONFIG SET), no rewrite and writes nothing, not even the lock file or
        O(progress_file).
  diff_mode:
    support: none
options:
  backup_dir:
    description:
      - Existing directory that receives the archives, the lock file and temporary files.
      - On the same file system as the Redis data directory the AOF is hard-linked (milliseconds);
        on another one it is copied while automatic rewrites stay held off.
    type: path
    required: true
  relax_fsync:
    description:
      - Set C(appendfsync no) for the duration of the backup, as in the original procedure, so the
        rewrite and the archive I/O do not stall Redis on fsync. The previous value is put back.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the AOF rewrite to finish. On timeout the module fails and puts
        every setting back; the rewrite itself keeps running in Redis.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two C(INFO persistence) polls while waiting for the rewrite.
    type: float
    default: 0.5
  format:
    description:
      - Archive format. V(zip) is the format of the original procedure (Python's zipfile, deflate).
      - V(tar.zst) pipes a tar stream through C(zstd -T0); it needs the C(zstd) program. It is much
        faster than V(zip) at a similar size (the collection's C(docs/performance.md) has measurements).
    type: str
    choices: [zip, tar.zst]
    default: zip
  compression_level:
    description:
      - Compression level. Defaults to V(1) for V(zip) (deflate level 6 took 4.9 s for a 109 MB
        base file, level 1 1.5 s at a slightly lower ratio; the backup window matters more than a
        few per cent) and V(3) (zstd's default) for V(tar.zst).
      - 1 to 9 for V(zip), 1 to 19 for V(tar.zst).
    type: int
  lock_wait:
    description:
      - Seconds to wait when another backup of the same port holds the lock. V(0) fails at once.
    type: int
    default: 0
  keep_days:
    description:
      - Delete this port's archives whose time (in their name) is older than this many days,
        unless O(keep_last) keeps them.
    type: int
  keep_last:
    description:
      - Keep at least this many of this port's newest archives. With O(keep_days) an archive is kept
        when either rule keeps it. Without either option nothing is deleted.
    type: int
  sample_size:
    description:
      - How many random keys of db 0 to record (as digests of their values) for the restore drill.
    type: int
    default: 100
  progress_file:
    description:
      - File to append progress lines to while the backup runs (emptied when a run starts), one
        JSON object a line, as M(nodowntime.storage.job_progress) reads them. Not written when
        unset, nor in check mode.
    type: path
  progress_interval:
    description: Seconds between two lines in O(progress_file).
    type: float
    default: 5
requirements:
  - The C(zstd) program for O(format=tar.zst).
notes:
  - Ansible shows a module's result only when it ends. For the backup of a large AOF run the task
    with C(async) and C(poll=0), then follow it with M(nodowntime.storage.job_progress) (see the
    examples).
  - The archive contains C(<appenddirname>/) with the manifest, base and incr files (Redis 7), or
    the single AOF file (older Redis), plus C(nodowntime-aof-backup.json).
seealso:
  - module: nodowntime.storage.job_progress
  - name: Redis persistence, backing up AOF persistence
    description: Why automatic rewrites are held off while the files are hard-linked.
    link: https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/
  - name: Role nodowntime.storage.redis_backup
    description: Schedules this backup, restores it and runs restore drills.
    link: https://github.com/nodowntime/storage/tree/main/roles/redis_backup
"""

EXAMPLES = r"""
- name: Back up the AOF of the Redis on port 6379, keep two weeks
  nodowntime.storage.redis_aof_backup:
    login_port: 6379
    backup_dir: /var/backups/redis
    keep_days: 14
    keep_last: 3

- name: Back up through the unix socket with an ACL user, zstd-compressed, wait for a running backup
  nodowntime.storage.redis_aof_backup:
    login_unix_socket: /run/redis/redis-server.sock
    login_port: 6379
    login_user: backup
    login_password: "{{ redis_backup_password }}"
    backup_dir: /var/backups/redis
    format: tar.zst
    lock_wait: 600

- name: Start the backup of a large AOF in the background
  nodowntime.storage.redis_aof_backup:
    login_port: 6379
    backup_dir: /var/backups/redis
    progress_file: /var/log/nodowntime/redis-aof-backup-6379.progress
  async: 3600
  poll: 0
  register: backup_job

- name: Follow it, one line every 10 seconds (the rewrite, then bytes archived of all)
  nodowntime.storage.job_progress:
    jid: "{{ backup_job.ansible_job_id }}"
    progress_file: /var/log/nodowntime/redis-aof-backup-6379.progress
    wait: 10
    label: redis 6379
  register: backup_progress
  loop: "{{ range(3600 // 10 + 2) | list }}"
  loop_control:
    label: "{{ backup_progress.msg | default('starting') }}"
    break_when: backup_progress.finished | default(false)

- name: Use the backup's result
  ansible.builtin.debug:
    msg: "{{ (backup_progress.results | last).archive }}"
"""

RETURN = r"""
archive:
  description: Path of the archive written.
  returned: success, not in check mode
  type: str
  sample: /var/backups/redis/aof_20261121193012-6379.zip
size:
  description: Size of the archive in bytes.
  returned: success, not in check mode
  type: int
  sample: 10512734
sha256:
  description: SHA-256 of the archive.
  returned: success, not in check mode
  type: str
  sample: 6c1e...e2
start:
  description: UTC time the run started.
  returned: always
  type: str
  sample: "2026-11-21T19:30:10Z"
end:
  description: UTC time the run ended.
  returned: success, not in check mode
  type: str
  sample: "2026-11-21T19:30:12Z"
elapsed:
  description: Seconds the run took.
  returned: success, not in check mode
  type: float
  sample: 2.31
steps:
  description: Seconds each step took (lock, relax_fsync, rewrite, wait, link, archive, sha256, retention).
  returned: always
  type: dict
  sample: {lock: 0.0, rewrite: 0.001, wait: 2.004, link: 0.017, archive: 1.5, sha256: 0.05, retention: 0.0}
redis_version:
  description: Version of the Redis server.
  returned: success
  type: str
  sample: 7.0.15
aof_layout:
  description: V(multi-part) (Redis 7 directory) or V(single-file) (older Redis).
  returned: success, not in check mode
  type: str
  sample: multi-part
staging:
  description: V(link) when the AOF files were hard-linked, V(copy) when copied across file systems.
  returned: success, not in check mode
  type: str
  sample: link
files:
  description: AOF files in the archive.
  returned: success, not in check mode
  type: list
  elements: str
  sample: [appendonly.aof.3.base.rdb, appendonly.aof.3.incr.aof]
appendfsync:
  description: The C(appendfsync) value found before the run, and put back after it.
  returned: success
  type: str
  sample: everysec
rewrite:
  description: The reply to C(BGREWRITEAOF), or that a running rewrite was joined.
  returned: success, not in check mode
  type: str
  sample: Background append only file rewriting started
keys:
  description: Keys per database right after the files were linked.
  returned: success, not in check mode
  type: dict
  sample: {db0: 100000}
archives_deleted:
  description: Archives of this port deleted by retention (in check mode, that would be deleted).
  returned: success
  type: list
  elements: str
  sample: [aof_20261001020000-6379.zip]
plan:
  description: What the run would do.
  returned: check mode
  type: list
  elements: str
  sample: [CONFIG SET appendfsync no (was everysec), BGREWRITEAOF and wait up to 600s]
failed_step:
  description: Step that failed.
  returned: failure
  type: str
  sample: wait
"""


from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress
from ansible_collections.nodowntime.storage.plugins.module_utils._redis_aof import (
    ARCHIVE_FORMATS,
    DEFAULTS,
    AofBackup,
    BackupError,
    backup_options,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._redis_connection import (
    REDIS_CONNECTION_ARGSPEC,
    connect,
)


def main():
    argument_spec = dict(REDIS_CONNECTION_ARGSPEC)
    argument_spec.update(
        backup_dir=dict(type="path", required=True),
        relax_fsync=dict(type="bool", default=DEFAULTS["relax_fsync"]),
        timeout=dict(type="int", default=DEFAULTS["timeout"]),
        poll_interval=dict(type="float", default=DEFAULTS["poll_interval"]),
        format=dict(type="str", choices=list(ARCHIVE_FORMATS), default=DEFAULTS["format"]),
        compression_level=dict(type="int"),
        lock_wait=dict(type="int", default=DEFAULTS["lock_wait"]),
        keep_days=dict(type="int"),
        keep_last=dict(type="int"),
        sample_size=dict(type="int", default=DEFAULTS["sample_size"]),
        progress_file=dict(type="path"),
        progress_interval=dict(type="float", default=DEFAULTS["progress_interval"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    if p["progress_interval"] < 0:
        module.fail_json(msg="progress_interval must be 0 or more seconds, not %s" % p["progress_interval"])
    progress = None
    if p["progress_file"] and not module.check_mode:
        # Opened first: whoever follows the file must not take an earlier run's last line for this one's.
        try:
            progress = _progress.ProgressFile(p["progress_file"], p["progress_interval"], what="redis backup")
        except OSError as e:
            module.fail_json(msg="progress_file: cannot write %s: %s" % (p["progress_file"], to_native(e)))

    def fail(msg):
        if progress is not None:
            progress.finish(outcome="failed", note=msg)
        module.fail_json(msg=msg)

    zstd_bin = module.get_bin_path("zstd") if p["format"] == "tar.zst" else None
    try:
        opts = backup_options(p, zstd_bin=zstd_bin, check_mode=module.check_mode)
    except BackupError as e:
        fail(str(e))

    if progress is not None:
        progress.update(note="connecting to Redis", force=True)
    client = connect(module)
    job = AofBackup(client, opts, progress=progress)
    try:
        result = job.run()
    except BackupError as e:
        partial = dict(getattr(e, "partial", None) or {})
        partial.pop("changed", None)
        module.fail_json(msg=str(e), failed_step=e.step, changed=job.changed, **partial)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
