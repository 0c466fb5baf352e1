#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the execution environment of ee/execution-environment.yml with ansible-builder and
# Podman, the way a user does, on the base image of build-base.sh, and tags it
# localhost/nodowntime-ee:current. The project's machines reach PyPI but not Galaxy and give
# containers no route out, so two things come from this machine instead of the network, and
# nothing else in the definition changes:
#   - the collections: this checkout's tarball and ansible.posix from the test collections,
#     listed as files in place of ee/requirements.yml;
#   - pip's packages: downloaded here, served to the build on 127.0.0.1 for its duration
#     (and bindep, which ansible-builder's builder stage installs before any build argument
#     applies there, is installed with the base from those packages).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work="$repo/.tmp/ee"
collections=${ANSIBLE_COLLECTIONS_PATH:-$repo/.tmp/collections}
exec 8>/run/lock/nodowntime-ee.lock
flock 8

bash "$repo/tests/ee/build-base.sh"

rm -rf "$work/files" "$work/context" && mkdir -p "$work/files/collections" "$work/wheels"

ansible-galaxy collection build --force --output-path "$work/files/collections" "$repo" >/dev/null
posix="$collections/ansible_collections/ansible/posix"
# The installed copy's FILES.json lists files the wheel left out, so it is built again as a
# Galaxy tarball from a galaxy.yml made of its own MANIFEST.json.
rm -rf "$work/posix-src" && cp -a "$posix" "$work/posix-src"
python3 - "$work/posix-src" <<'PY'
import json, os, sys, yaml
src = sys.argv[1]
info = json.load(open(os.path.join(src, "MANIFEST.json")))["collection_info"]
for name in ("MANIFEST.json", "FILES.json"):
    os.remove(os.path.join(src, name))
keys = ("namespace", "name", "version", "readme", "authors", "description", "license", "tags",
        "dependencies", "repository", "documentation", "homepage", "issues")
with open(os.path.join(src, "galaxy.yml"), "w") as f:
    yaml.safe_dump({k: info[k] for k in keys if info.get(k) is not None}, f)
PY
ansible-galaxy collection build --force --output-path "$work/files/collections" "$work/posix-src" >/dev/null
rm -rf "$work/posix-src"

# Everything pip installs in the build, as wheels for the image's Python (3.11, like this one).
python3 - "$repo/ee/execution-environment.yml" >"$work/pip-wanted.txt" <<'PY'
import sys, yaml
deps = yaml.safe_load(open(sys.argv[1]))["dependencies"]
print(deps["ansible_core"]["package_pip"])
print(deps["ansible_runner"]["package_pip"])
PY
# ansible-builder's own tools in the build (bindep, its YAML and version parsing) and the
# image's init, then the collection's requirements.
printf '%s\n' bindep pyyaml packaging dumb-init==1.2.5 >>"$work/pip-wanted.txt"
pip download -q --disable-pip-version-check --only-binary=:all: -d "$work/wheels" \
  -r "$work/pip-wanted.txt" -r "$repo/requirements.txt" 2>"$work/pip-download.log" \
  || { grep -v "is ignored: it is neither" "$work/pip-download.log" | tail -n 20; exit 1; }

python3 - "$repo/ee/execution-environment.yml" "$work" <<'PY'
import glob, os, sys, yaml
src, work = sys.argv[1:]
definition = yaml.safe_load(open(src))
tarballs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(work, "files/collections/*.tar.gz")))
with open(os.path.join(work, "files/requirements.yml"), "w") as f:
    yaml.safe_dump({"collections": [{"name": t, "type": "file"} for t in tarballs]}, f)
definition["dependencies"]["galaxy"] = "files/requirements.yml"
definition["additional_build_files"] = [{"src": "files/collections", "dest": "."}]
# ansible-builder's builder stage installs bindep before any build argument applies there, so
# it would ask the index: it is installed with the base, from the packages served here.
definition["additional_build_steps"]["append_base"] = ["RUN $PYCMD -m pip install --no-cache-dir bindep"]
with open(os.path.join(work, "execution-environment.yml"), "w") as f:
    yaml.safe_dump(definition, f, sort_keys=False)
PY

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/wheels" "$port" >"$work/wheel-server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

cd "$work"
ansible-builder build -f execution-environment.yml --context context --container-runtime podman \
  --tag localhost/nodowntime-ee:current -v 2 \
  --build-arg PIP_NO_INDEX=1 --build-arg "PIP_FIND_LINKS=http://127.0.0.1:$port/" \
  --build-arg ANSIBLE_GALAXY_CLI_COLLECTION_OPTS=--offline \
  --extra-build-cli-args=--network=host >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; exit 1; }
echo "execution environment localhost/nodowntime-ee:current built ($(podman image inspect --format '{{.Id}}' localhost/nodowntime-ee:current | cut -c1-12))"
