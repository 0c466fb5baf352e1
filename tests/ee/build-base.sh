#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the execution environment's base image (Debian bookworm with python3 and pip, nothing
# else) with debootstrap and imports it into Podman as localhost/nodowntime-ee-base:<hash of this
# file>, tagged :current. A warm run finds the tag and does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
exec 8>/run/lock/nodowntime-ee-base.lock
flock 8
recipe_hash=$(sha256sum "$here/build-base.sh" | cut -c1-12)
image="localhost/nodowntime-ee-base:$recipe_hash"

if podman image exists "$image"; then
  podman tag "$image" localhost/nodowntime-ee-base:current
  echo "execution environment base $image is up to date"
  exit 0
fi

mirror=${LAB_DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -n1 | awk '{print $2}' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/nodowntime-ee-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# python3-venv: ansible-builder's assemble step makes a virtualenv; openssh-client: Ansible's
# connection to the storage hosts (also in the collection's bindep.txt).
packages=python3,python3-pip,python3-venv,openssh-client,ca-certificates,bash
echo "execution environment base: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log"; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -cf "$work/rootfs.tar" .
podman import --change 'CMD=["/bin/bash"]' "$work/rootfs.tar" "$image" >/dev/null
podman tag "$image" localhost/nodowntime-ee-base:current
podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/nodowntime-ee-base:' \
  | grep -v -e ":$recipe_hash\$" -e ":current\$" | xargs -r podman rmi >/dev/null 2>&1 || true
echo "execution environment base $image built"
