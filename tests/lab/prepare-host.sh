#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Makes a fresh Debian 12 machine able to run the lab: Debian packages and the Podman
# settings this VM kind needs (see shared/docs/test-lab.md for why each one exists).
set -euo pipefail

packages=(podman runc netavark aardvark-dns conmon uidmap iptables debootstrap zstd
          python3-venv lua5.4 rsync redis-server redis-tools lsyncd make git openssh-client shellcheck)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "prepare-host: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -q 'nodowntime-lab' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  cat >"$conf" <<'CONF'
# nodowntime-lab: this VM cannot raise RLIMIT_NOFILE/NPROC to Podman's defaults, and its
# cgroup v1 hybrid layout is not supported by crun.
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
events_logger = "file"
cgroup_manager = "cgroupfs"
CONF
fi
# Debian leaves a CNI bridge config behind; netavark is the backend and the file only warns.
rm -f /etc/cni/net.d/87-podman-bridge.conflist
