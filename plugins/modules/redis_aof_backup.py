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
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
  - nodowntime.storage.redis_connection
attributes:
  check_mode:
    support: full
    details:
      - Reads the configuration and reports the plan and the archives retention would delete;
        runs no C(CONFIG SET), no rewrite and writes nothing, not even the lock file.
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
      - V(tar.zst) pipes a tar stream through C(zstd -T0); it needs the C(zstd) program. Measured on
        2 cores with a 112 MiB AOF (C(bench/redis_archive_formats.py)) it took 0.4 s against 0.9 s for
        deflate level 1 and 2.5 s for level 6, at the size of level 6.
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
requirements:
  - The C(zstd) program for O(format=tar.zst).
notes:
  - The archive contains C(<appenddirname>/) with the manifest, base and incr files (Redis 7), or
    the single AOF file (older Redis), plus C(nodowntime-aof-backup.json).
seealso:
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

from ansible_collections.nodowntime.storage.plugins.module_utils._redis_aof import (
    AofBackup,
    BackupError,
)
from ansible_collections.nodowntime.storage.plugins.module_utils._redis_connection import (
    REDIS_CONNECTION_ARGSPEC,
    connect,
)


def main():
    argument_spec = dict(REDIS_CONNECTION_ARGSPEC)
    argument_spec.update(
        backup_dir=dict(type="path", required=True),
        relax_fsync=dict(type="bool", default=True),
        timeout=dict(type="int", default=600),
        poll_interval=dict(type="float", default=0.5),
        format=dict(type="str", choices=["zip", "tar.zst"], default="zip"),
        compression_level=dict(type="int"),
        lock_wait=dict(type="int", default=0),
        keep_days=dict(type="int"),
        keep_last=dict(type="int"),
        sample_size=dict(type="int", default=100),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    level = p["compression_level"]
    if level is None:
        level = 1 if p["format"] == "zip" else 3
    limit = 9 if p["format"] == "zip" else 19
    if not 1 <= level <= limit:
        module.fail_json(msg="compression_level must be 1 to %d for format %s, not %d" % (limit, p["format"], level))
    if p["keep_last"] is not None and p["keep_last"] < 1:
        module.fail_json(msg="keep_last must be 1 or more (the newest archive is always kept), not %d"
                         % p["keep_last"])
    if p["keep_days"] is not None and p["keep_days"] < 0:
        module.fail_json(msg="keep_days must be 0 or more, not %d" % p["keep_days"])
    if p["timeout"] < 1:
        module.fail_json(msg="timeout must be 1 second or more, not %d" % p["timeout"])
    zstd_bin = None
    if p["format"] == "tar.zst":
        zstd_bin = module.get_bin_path("zstd")
        if not zstd_bin:
            module.fail_json(msg="format tar.zst needs the zstd program, which is not in PATH on this "
                                 "host; install zstd or use format zip")

    client = connect(module)
    job = AofBackup(client, dict(
        backup_dir=p["backup_dir"], port=p["login_port"], relax_fsync=p["relax_fsync"],
        timeout=p["timeout"], poll_interval=p["poll_interval"], format=p["format"],
        compression_level=level, lock_wait=p["lock_wait"], keep_days=p["keep_days"],
        keep_last=p["keep_last"], sample_size=p["sample_size"], zstd_bin=zstd_bin,
        check_mode=module.check_mode))
    try:
        result = job.run()
    except BackupError as e:
        partial = dict(getattr(e, "partial", None) or {})
        partial.pop("changed", None)
        module.fail_json(msg=str(e), failed_step=e.step, changed=job.changed, **partial)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
