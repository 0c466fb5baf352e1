# SPDX-License-Identifier: GPL-3.0-or-later
"""Scheduled Redis AOF backups, restore drills and compliance reports (nodowntime.storage).

Installed by the nodowntime.storage.redis_backup role into /usr/local/lib/nodowntime-redis-backup/
(run through the /usr/local/sbin/nodowntime-redis-aof-backup wrapper). The backup logic is the
collection's module_utils _redis_aof.py (with _redis_connection.py and _progress.py), which the
role's install step writes unchanged under this script's directory (the module job_library, as
the package tree ansible_collections/nodowntime/storage/plugins/module_utils), so a scheduled run
does exactly what the redis_aof_backup module does, with the same defaults. With
``progress_file`` in the config, a backup writes its progress there as the module does, so a play
that starts the service can follow it with job_progress. Needs Python 3 and the redis library, not
Ansible.

  nodowntime-redis-aof-backup backup      --config FILE   one backup, recorded in backup-runs.jsonl
  nodowntime-redis-aof-backup record-skip --config FILE   record a run skipped because one was running
  nodowntime-redis-aof-backup drill       --config FILE [--archive PATH]
  nodowntime-redis-aof-backup extract     --config FILE --archive PATH --dest DIR
  nodowntime-redis-aof-backup status      --config FILE [--wait SECONDS]   loading, aof_enabled, keys
  nodowntime-redis-aof-backup report      --config FILE [--days N]   backup compliance
Every command prints one JSON object; the exit status is 0 on success.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time

LIB = os.environ.get("NODOWNTIME_LIB", os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, LIB)

from ansible_collections.nodowntime.storage.plugins.module_utils import _progress  # noqa: E402
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_aof as aof  # noqa: E402
from ansible_collections.nodowntime.storage.plugins.module_utils import _redis_connection as conn  # noqa: E402
from ansible_collections.nodowntime.storage.plugins.module_utils import _run_log  # noqa: E402


def client(cfg):
    if not conn.HAS_REDIS:
        raise aof.BackupError("the Python library redis is missing (Debian: apt install python3-redis)")
    import redis
    return redis.Redis(**conn.client_kwargs(cfg))


def archives(cfg):
    names = os.listdir(cfg["backup_dir"])
    return [n for n in names if aof.parse_archive_name(n, cfg["login_port"])]


def run_record(cfg, action, trigger):
    """The fields every job's run record has (see _run_log), for the instance's port."""
    record = _run_log.new_record("redis-%s" % cfg["login_port"], "redis_backup", action, trigger)
    record["port"] = cfg["login_port"]
    return record


def cmd_backup(cfg, args):
    record = run_record(cfg, "backup", args.trigger)
    progress = None
    if cfg.get("progress_file"):
        try:
            interval = cfg.get("progress_interval")
            progress = _progress.ProgressFile(cfg["progress_file"],
                                              aof.DEFAULTS["progress_interval"] if interval is None else interval,
                                              what="redis backup")
        except OSError as e:  # the backup matters more than its progress report
            sys.stderr.write("cannot write the progress file %s: %s\n" % (cfg["progress_file"], e))
    try:
        # The module's defaults and checks: a setting missing from the config means the module's default.
        opts = aof.backup_options(cfg, zstd_bin=shutil.which("zstd"))
        result = aof.AofBackup(client(cfg), opts, progress=progress).run()
        record.update(outcome="ok", archive=result["archive"], sha256=result["sha256"], size=result["size"],
                      elapsed=result["elapsed"], steps=result["steps"], deleted=result["archives_deleted"])
        rc = 0
    except Exception as e:  # every failure is recorded: compliance counts it
        result = dict(failed=True, msg=str(e), failed_step=getattr(e, "step", None))
        record.update(outcome="failed", msg=str(e), failed_step=getattr(e, "step", None))
        rc = 1
        if progress is not None:  # a failure before the backup began (no Redis library, no server)
            progress.finish(outcome="failed", note=(str(e).splitlines() or [""])[0][:300])
    record["end"] = _run_log.utc_stamp()
    aof.append_run_record(cfg["backup_dir"], record)
    print(json.dumps(result, sort_keys=True))
    return rc


def cmd_record_skip(cfg, args):
    record = run_record(cfg, "backup", args.trigger)
    record.update(end=record["start"], outcome="skipped", msg="the previous run still held the lock (flock -xn)")
    aof.append_run_record(cfg["backup_dir"], record)
    print(json.dumps(record, sort_keys=True))
    return 1


def cmd_drill(cfg, args):
    archive = args.archive
    if not archive:
        newest = aof.newest_archive(os.listdir(cfg["backup_dir"]), cfg["login_port"])
        if not newest:
            print(json.dumps(dict(passed=False, problems=["no archive of port %s in %s"
                                                          % (cfg["login_port"], cfg["backup_dir"])])))
            return 1
        archive = os.path.join(cfg["backup_dir"], newest)
    result = aof.restore_drill(archive, redis_server=cfg.get("redis_server", "redis-server"),
                               port=args.port or None, workdir=args.workdir or cfg["backup_dir"],
                               zstd_bin=shutil.which("zstd") or "zstd")
    result["start"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(os.path.join(cfg["backup_dir"], "drill-runs.jsonl"), "a") as f:
        f.write(json.dumps(result, sort_keys=True) + "\n")
    print(json.dumps(result, sort_keys=True))
    return 0 if result["passed"] else 1


def cmd_extract(cfg, args):
    os.makedirs(args.dest, mode=0o700, exist_ok=True)
    meta = aof.read_archive(args.archive, args.dest, zstd_bin=shutil.which("zstd") or "zstd")
    meta["sha256"] = aof.sha256_file(args.archive)
    meta["archive"] = args.archive
    print(json.dumps(meta, sort_keys=True))
    return 0


def server_status(cfg):
    """``up``, ``loading`` (with Redis' percent and time left), ``aof_enabled``, keys and AOF settings."""
    try:
        c = client(cfg)
        persistence = c.info("persistence")
        keys = aof.keyspace_counts(c.info("keyspace"))
        out = dict(up=True, loading=int(persistence.get("loading", 0)), aof_enabled=int(persistence.get("aof_enabled", 0)),
                   keys=keys, total_keys=sum(keys.values()))
        if out["loading"]:
            out.update(loading_percent=float(persistence.get("loading_loaded_perc", 0) or 0),
                       loading_eta_seconds=int(persistence.get("loading_eta_seconds", 0) or 0))
        for name in ("dir", "appendonly", "appendfilename", "appenddirname"):
            try:
                out[name] = aof.config_get(c, name)
            except aof.BackupError:
                out[name] = None
    except Exception as e:
        out = dict(up=False, msg=str(e))
    out["loaded"] = bool(out["up"] and not out["loading"])
    return out


def cmd_status(cfg, args):
    """The server's state; with --wait N, wait up to N seconds for it to be up and loaded first.

    A bounded wait on the host: the play calls it once per interval and prints one line each time
    (``msg``), instead of retrying a task.
    """
    deadline = time.monotonic() + (args.wait or 0)
    while True:
        out = server_status(cfg)
        if out["loaded"] or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if out["loaded"]:
        out["msg"] = "Redis on port %s is up, AOF loaded: %d keys" % (cfg["login_port"], out["total_keys"])
    elif out["up"]:
        out["msg"] = "Redis on port %s is loading: %.1f%% done, %ds left" % (
            cfg["login_port"], out["loading_percent"], out["loading_eta_seconds"])
    else:
        out["msg"] = "Redis on port %s is not answering yet: %s" % (cfg["login_port"], out["msg"])
    print(json.dumps(out, sort_keys=True))
    return 0


def cmd_report(cfg, args):
    path = os.path.join(cfg["backup_dir"], aof.RUNS_LOG)
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    since = None
    if args.days:
        since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=args.days)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    out = aof.compliance(rows, since=since)
    out.update(port=cfg["login_port"], since=since, last=rows[-1] if rows else None)
    print(json.dumps(out, sort_keys=True))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["backup", "record-skip", "drill", "extract", "status", "report"])
    ap.add_argument("--config", required=True, help="JSON file written by the redis_backup role")
    ap.add_argument("--archive")
    ap.add_argument("--dest")
    ap.add_argument("--port", type=int, help="loopback port of the drill's scratch redis-server")
    ap.add_argument("--workdir")
    ap.add_argument("--days", type=int)
    ap.add_argument("--wait", type=float, help="status: seconds to wait for the server to be up and loaded")
    ap.add_argument("--trigger", default=os.environ.get("NODOWNTIME_TRIGGER", "manual"))
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    func = globals()["cmd_" + args.command.replace("-", "_")]
    try:
        return func(cfg, args)
    except aof.BackupError as e:
        print(json.dumps(dict(failed=True, msg=str(e))))
        return 1


if __name__ == "__main__":
    sys.exit(main())
