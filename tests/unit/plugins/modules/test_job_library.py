# SPDX-License-Identifier: GPL-3.0-or-later
"""job_library: the host-side job code, written from the module's payload as a package tree."""
from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys

from ansible_collections.nodowntime.storage.plugins.modules import job_library

from .utils import fail_module, run_module

ROOT = pathlib.Path(__file__).resolve().parents[4]
LIB = ROOT / "plugins" / "module_utils"
SCRIPT = ROOT / "roles" / "redis_backup" / "files" / "nodowntime_redis_aof_backup.py"
PACKAGE = "ansible_collections/nodowntime/storage/plugins/module_utils"
FILES = ["_host_io.py", "_progress.py", "_redis_aof.py", "_redis_connection.py", "_rsync.py", "_rsync_runner.py", "_run_log.py",
         "_transfer_job.py", "_tree_backup.py"]
NAMES = ["%s/%s" % (PACKAGE, name) for name in FILES]


def test_check_real_again_check(tmp_path):
    """check mode -> real -> real again (unchanged) -> check mode again (unchanged)."""
    dest = tmp_path / "lib"
    dest.mkdir()
    check = run_module(job_library.main, dict(dest=str(dest)), check_mode=True, diff=True)
    assert check["changed"] and check["written"] == NAMES and os.listdir(str(dest)) == []
    assert check["diff"]["before"] == "" and [line.split()[0] for line in check["diff"]["after"].splitlines()] == NAMES
    real = run_module(job_library.main, dict(dest=str(dest)), diff=True)
    assert real["changed"] and real["written"] == NAMES and real["diff"] == check["diff"]
    for name in FILES:  # the collection's own files, byte for byte, 0644
        assert (dest / PACKAGE / name).read_bytes() == (LIB / name).read_bytes()
        assert stat.S_IMODE((dest / PACKAGE / name).stat().st_mode) == 0o644
    assert sorted(os.listdir(str(dest / PACKAGE))) == FILES  # no temporary file left
    again = run_module(job_library.main, dict(dest=str(dest)), diff=True)
    assert not again["changed"] and again["written"] == [] and again["diff"]["before"] == again["diff"]["after"]
    check = run_module(job_library.main, dict(dest=str(dest)), check_mode=True)
    assert not check["changed"]


def test_only_what_differs_is_written(tmp_path):
    run_module(job_library.main, dict(dest=str(tmp_path)))
    pkg = tmp_path / PACKAGE
    (pkg / "_redis_aof.py").write_text("# an older version\n")
    os.chmod(str(pkg / "_progress.py"), 0o600)
    (pkg / "mine.py").write_text("# not the module's\n")
    check = run_module(job_library.main, dict(dest=str(tmp_path)), check_mode=True, diff=True)
    assert check["written"] == [PACKAGE + "/_progress.py", PACKAGE + "/_redis_aof.py"]
    assert (pkg / "_redis_aof.py").read_text() == "# an older version\n"
    assert check["diff"]["before"] != check["diff"]["after"]
    real = run_module(job_library.main, dict(dest=str(tmp_path)))
    assert real["written"] == [PACKAGE + "/_progress.py", PACKAGE + "/_redis_aof.py"]
    assert (pkg / "_redis_aof.py").read_bytes() == (LIB / "_redis_aof.py").read_bytes()
    assert stat.S_IMODE((pkg / "_progress.py").stat().st_mode) == 0o644
    assert (pkg / "mine.py").read_text() == "# not the module's\n"


def test_missing_dest_fails_clearly(tmp_path):
    result = fail_module(job_library.main, dict(dest=str(tmp_path / "nope")))
    assert result["msg"] == "dest=%s is not an existing directory; create it first" % (tmp_path / "nope")
    # in check mode the task that would create it has not run: every file would be written
    check = run_module(job_library.main, dict(dest=str(tmp_path / "nope")), check_mode=True)
    assert check["changed"] and check["written"] == NAMES and not (tmp_path / "nope").exists()


def test_the_script_runs_on_the_installed_library_without_ansible(tmp_path):
    """What the timer runs: the script beside the installed files, with no site-packages at all."""
    lib = tmp_path / "lib"
    lib.mkdir()
    run_module(job_library.main, dict(dest=str(lib)))
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "backup-runs.jsonl").write_text(json.dumps(dict(start="2026-01-01T00:00:00Z", outcome="ok")) + "\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(login_port=6390, backup_dir=str(backups))))
    # -I -S: no PYTHONPATH, no site-packages (so neither Ansible nor redis); fail if Ansible got imported
    probe = ("import runpy, sys; sys.argv = [%r, 'report', '--config', %r]\n"
             "try:\n    runpy.run_path(%r, run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code\n"
             "assert not [m for m in sys.modules if m.split('.')[0] == 'ansible']\n"
             "assert all(m.__file__.startswith(%r) for n, m in list(sys.modules.items())\n"
             "           if n.startswith('ansible_collections.') and getattr(m, '__file__', None))\n"
             "sys.exit(rc)\n") % (str(SCRIPT), str(cfg), str(SCRIPT), str(lib))
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False,
                          env=dict(NODOWNTIME_LIB=str(lib), PATH=os.environ.get("PATH", "")))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["runs"], report["ok"], report["percent"]) == (1, 1, 100.0)


def test_a_transfer_runs_on_the_installed_library_without_ansible(tmp_path):
    """What the transfer timer runs: ``python3 -m ..._transfer_job`` on the package tree, nothing else."""
    lib = tmp_path / "lib"
    lib.mkdir()
    run_module(job_library.main, dict(dest=str(lib)))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.log").write_text("one line\n")
    log = tmp_path / "runs.jsonl"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(name="t", src=str(src), dest=str(tmp_path / "dest"), runs_log=str(log),
                                   lock_dir=str(tmp_path / "locks"), acls=False, xattrs=False)))
    probe = ("import runpy, sys; sys.path.insert(0, %r); sys.argv = ['x', 'run', '--config', %r]\n"
             "try:\n    runpy.run_module('ansible_collections.nodowntime.storage.plugins.module_utils._transfer_job',"
             " run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code\n"
             "assert not [m for m in sys.modules if m.split('.')[0] == 'ansible']\n"
             "sys.exit(rc)\n") % (str(lib), str(cfg))
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False,
                          env=dict(PATH=os.environ.get("PATH", "")))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["outcome"] == "ok" and record["files"] == 1
    assert (tmp_path / "dest" / "a.log").read_text() == "one line\n"
    assert json.loads(log.read_text().splitlines()[-1]) == record
