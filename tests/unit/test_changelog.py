# SPDX-License-Identifier: GPL-3.0-or-later
"""The changelog: fragments antsibull-changelog accepts, and a CHANGELOG.rst that is not stale.

CHANGELOG.rst at the repository root is what `make changelog` generates from
changelogs/fragments for the upcoming release (galaxy.yml's version). A fragment added, changed
or removed, or a module's short description changed, without `make changelog` fails here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.functional  # runs antsibull-changelog and make

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def _tool(name):
    path = os.path.join(BIN, name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found is None:
        pytest.skip("%s is not installed (requirements-dev.txt; make venv)" % name)
    return found


def test_fragments_pass_antsibull_changelog_lint():
    run = subprocess.run([_tool("antsibull-changelog"), "lint"], cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout + run.stderr


def test_committed_changelog_is_what_make_changelog_generates(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    generated = tmp_path / "CHANGELOG.rst"
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    # -o venv: the virtualenv these tests run in is the one the target would set up.
    run = subprocess.run(["make", "-s", "-o", "venv", "changelog", "CHANGELOG_OUT=%s" % generated],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    with open(os.path.join(REPO, "CHANGELOG.rst")) as f:
        committed = f.read()
    assert committed == generated.read_text(), "CHANGELOG.rst is stale: run `make changelog` and commit it"
