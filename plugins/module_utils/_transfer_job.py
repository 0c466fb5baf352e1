# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scheduled transfer between sites: one rsync run, locked, recorded, run without Ansible.

The ``transfer_job`` role installs this file (with the rest of the job library, see the
``job_library`` module) and a systemd timer or cron entry that runs::

    python3 -m ansible_collections.nodowntime.storage.plugins.module_utils._transfer_job run --config FILE

The copy itself is ``rsync_copy``'s (``_rsync_runner.copy_tree``): the same options, exit codes,
partial files and statistics. What this adds is what a job that runs every few minutes needs:

- one lock per *group* of jobs (``lock_group``), taken with ``flock -xn`` semantics before rsync
  starts and held by every rsync process: jobs that share a link (or a disk) share a group, and a
  run that finds the group busy is recorded as ``skipped`` and exits 75 at once - never queued
  behind the run in progress, so a slow link cannot pile up runs;
- one line per run in the run log (``_run_log``): outcome, rsync's exit code, files, bytes, rate,
  vanished files; a failed run exits 1, so systemd's ``OnFailure=`` can call a hook.

No Ansible import: this runs on the host with Python 3 alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time

from ansible_collections.nodowntime.storage.plugins.module_utils import _rsync_runner, _run_log

KIND = "transfer"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# rsync_copy's options a transfer takes from its config, with their defaults there.
COPY_DEFAULTS = dict(
    delete=False, archive=True, exclude=[], bwlimit="0", partial_dir=".rsync-partial", workers=1,
    compress=False, numeric_ids=True, hard_links=True, acls=True, xattrs=True, sparse=True,
    io_timeout=600, connect_timeout=30, password_file=None, rsh=None, extra_args=[],
    progress_file=None, progress_interval=5.0, max_changes=0,
)
DEFAULTS = dict(COPY_DEFAULTS, remove_source_files=False, lock_group=None, lock_dir=None, runs_log=None,
                rsync_path="rsync")


_TYPE_NAMES = dict(bool="boolean", int="whole number", float="number", str="string", list="list")


class ConfigError(ValueError):
    """A setting of the job's config is wrong; the message names it."""


def load_config(cfg):
    """The job's settings with the defaults filled in; raises ConfigError naming a bad setting."""
    unknown = sorted(set(cfg) - set(DEFAULTS) - {"name", "src", "dest"})
    if unknown:
        raise ConfigError("unknown setting(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    for required in ("name", "src", "dest"):
        if not cfg.get(required):
            raise ConfigError("%s is required" % required)
    settings = dict(DEFAULTS)
    settings.update((key, value) for key, value in cfg.items() if value is not None)
    for key, default in DEFAULTS.items():
        kind = type(default)
        if default is None or isinstance(settings[key], kind) and not (kind is int and isinstance(settings[key], bool)):
            continue
        if kind is float and isinstance(settings[key], int) and not isinstance(settings[key], bool):
            settings[key] = float(settings[key])
            continue
        raise ConfigError("%s=%r must be a %s" % (key, settings[key], _TYPE_NAMES[kind.__name__]))
    if not NAME_RE.match(settings["name"]):
        raise ConfigError("name=%r: use letters, digits, '.', '_' and '-', starting with a letter or digit"
                          % settings["name"])
    group = settings["lock_group"] or settings["name"]
    if not NAME_RE.match(group):
        raise ConfigError("lock_group=%r: use letters, digits, '.', '_' and '-'" % group)
    settings["lock_group"] = group
    if settings["workers"] != 1 and settings["remove_source_files"]:
        # rsync removes what it sent; with several processes a file could be removed by one
        # while another still lists it. One process keeps log shipping simple and exact.
        raise ConfigError("remove_source_files needs workers=1")
    if not settings["runs_log"]:
        raise ConfigError("runs_log is required (the role sets it)")
    return settings


def lock_path(settings):
    """The group's lock file: ``<lock_dir>/transfer-<group>.lock``."""
    directory = settings["lock_dir"] or _rsync_runner.default_lock_dir()
    return os.path.join(directory, "transfer-%s.lock" % settings["lock_group"])


def copy_params(settings):
    """rsync_copy's parameters for this run."""
    params = dict((key, settings[key]) for key in COPY_DEFAULTS)
    params.update(src=settings["src"], dest=settings["dest"], lock_file=None)
    if settings["remove_source_files"]:
        params["extra_args"] = list(params["extra_args"]) + ["--remove-source-files"]
    return params


def _finish(record, started, settings):
    record["end"] = _run_log.utc_stamp()
    record["elapsed"] = round(time.time() - started, 3)
    _run_log.append(settings["runs_log"], record)
    return record


def run(settings, trigger="manual", dry_run=False):
    """One transfer. Returns ``(record, exit status)``: 0 done, 1 failed, 75 skipped (group busy)."""
    started = time.time()
    record = _run_log.new_record(settings["name"], KIND, "transfer", trigger)
    record.update(src=settings["src"], dest=settings["dest"], lock_group=settings["lock_group"])
    params = copy_params(settings)
    lock_file = lock_path(settings)
    try:
        bwlimit = _rsync_runner.check_copy_params(params)
        rsync = settings["rsync_path"] if "/" in settings["rsync_path"] else shutil.which(settings["rsync_path"])
        if not rsync:
            raise ValueError("rsync_path=%s: not found on PATH" % settings["rsync_path"])
        if settings["lock_dir"]:
            os.makedirs(settings["lock_dir"], exist_ok=True)
        else:
            _rsync_runner.ensure_lock_dir(os.path.dirname(lock_file))
        lock_fd = _rsync_runner.open_lock(lock_file)
    except _rsync_runner.LockBusy as e:
        record.update(outcome="skipped", msg="lock group %s busy: %s held by PID %s; this run is skipped, not queued"
                      % (settings["lock_group"], lock_file, e.holder))
        return _finish(record, started, settings), _run_log.EXIT_SKIPPED
    except (ValueError, OSError, _rsync_runner.LockError) as e:
        record.update(outcome="failed", msg=str(e))
        return _finish(record, started, settings), 1
    outcome = _rsync_runner.copy_tree(params, rsync, bwlimit, lock_fd, lock_file, dry_run=dry_run)
    stats = outcome.result.get("stats", {})
    record.update(
        outcome="failed" if outcome.error else "ok", rsync_rc=outcome.result.get("rsync_rc"),
        files=stats.get("files_transferred", 0), bytes=stats.get("bytes_transferred", 0),
        matched_bytes=stats.get("matched_bytes", 0), rate=stats.get("rate", 0.0),
        vanished=len(outcome.result.get("vanished", [])), changes=outcome.result.get("changes_count", 0),
    )
    if outcome.error or outcome.warnings:
        record["msg"] = outcome.error or outcome.warnings[0]
    if dry_run:
        record["dry_run"] = True
    return _finish(record, started, settings), 1 if outcome.error else 0


def _pass_stop_on(signum, frame):
    """A stopped job (``systemctl stop``, a kill from cron's side) stops its rsync processes and
    still records the run: rsync exits 20, keeps its partial files, and the next run resumes."""
    for process in list(_rsync_runner.Run.active):
        try:
            process.send_signal(signum)
        except OSError:
            pass


def _say(result):
    """The one JSON object a run prints, for whoever started it (a play, a person, the journal)."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="nodowntime-transfer", description="One run of a scheduled transfer (nodowntime.storage.transfer_job).")
    parser.add_argument("command", choices=["run", "check"],
                        help="run: one transfer; check: the same with rsync --dry-run (recorded, flagged dry_run)")
    parser.add_argument("--config", required=True, help="the job's JSON config, written by the role")
    parser.add_argument("--trigger", default=os.environ.get("NODOWNTIME_TRIGGER", "manual"),
                        help="what started this run: systemd, cron, manual or ansible")
    args = parser.parse_args(argv)
    try:
        with open(args.config) as f:
            settings = load_config(json.load(f))
    except (OSError, ValueError) as e:
        _say(dict(failed=True, outcome="failed", msg="config %s: %s" % (args.config, e)))
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _pass_stop_on)
    record, status = run(settings, trigger=args.trigger, dry_run=args.command == "check")
    _say(record)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
