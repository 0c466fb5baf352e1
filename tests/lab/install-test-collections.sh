#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs the collections the tests need (containers.podman, ansible.posix, and awx.awx whose
# module argument specs check the AWX definitions in awx/) from the `ansible` community wheel on
# PyPI, and links this repository in as nodowntime.storage.
set -euo pipefail
version=$1
dest=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pip download -q --disable-pip-version-check --no-deps "ansible==$version" -d "$work"
python3 - "$work"/ansible-*.whl "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
wanted = ("ansible_collections/containers/podman/", "ansible_collections/ansible/posix/",
          "ansible_collections/awx/awx/")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(wanted):
            z.extract(name, dest)
PY
link="$dest/ansible_collections/nodowntime/storage"
mkdir -p "$(dirname "$link")"
ln -sfn "$repo" "$link"
echo "test collections from ansible $version: containers.podman, ansible.posix, awx.awx"
