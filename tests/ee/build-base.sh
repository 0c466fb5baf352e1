#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the execution environment's base image (Debian bookworm with python3 and pip, nothing
# else) with debootstrap and imports it into Podman as localhost/nodowntime-ee-base:<hash of its
# recipe>, tagged :current (tests/lab/debootstrap-image.sh). A warm run does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/debootstrap-image.sh
. "$here/../lab/debootstrap-image.sh"
image_begin nodowntime-ee-base "$here/build-base.sh"
# python3-venv: ansible-builder's assemble step makes a virtualenv; openssh-client: Ansible's
# connection to the storage hosts (also in the collection's bindep.txt).
image_debootstrap python3,python3-pip,python3-venv,openssh-client,ca-certificates,bash
image_import --change 'CMD=["/bin/bash"]'
