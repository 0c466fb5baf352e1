#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the lab host image (Debian bookworm booting systemd) with debootstrap and imports it
# into Podman as localhost/nodowntime-lab:<hash of this file>. A warm run finds the tag and
# does nothing, so the image is rebuilt only when this recipe changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# Two runs building at once would both debootstrap and race on the `current` tag.
exec 8>/run/lock/nodowntime-lab-image.lock
flock 8
recipe_hash=$(sha256sum "$here/build-image.sh" | cut -c1-12)
image="localhost/nodowntime-lab:$recipe_hash"

if podman image exists "$image"; then
  echo "lab image $image is up to date"
  podman tag "$image" localhost/nodowntime-lab:current
  exit 0
fi

mirror=${LAB_DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -n1 | awk '{print $2}' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/nodowntime-lab.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

packages=systemd,systemd-sysv,dbus,python3,openssh-server,openssh-client,iproute2,procps,sudo,ca-certificates,rsync,lsyncd,redis-server,redis-tools,python3-redis,python-is-python3,sshfs,fuse3,cron,less,lua5.4,zstd,unzip,util-linux,iputils-ping,acl,attr
echo "lab image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log"; exit 1; }

# A container has no consoles, udev or logins to manage; these units only slow boot or fail.
for unit in getty@tty1.service console-getty.service systemd-logind.service systemd-udevd.service \
            systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-firstboot.service \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
            systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
            sys-kernel-tracing.mount dev-hugepages.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Services start only when a test or role asks for them, so each scenario begins clean.
for unit in redis-server.service lsyncd.service rsync.service cron.service; do
  rm -f "$rootfs/etc/systemd/system/multi-user.target.wants/$unit"
done
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
cat >"$rootfs/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
# Debian's own ExecStartPre (sshd -t) fails without host keys, so the list is reset and
# the keys, unique to each container, are made first.
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
cat >"$rootfs/etc/ssh/sshd_config.d/lab.conf" <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 50:30:100
MaxSessions 50
SSHD
mkdir -p "$rootfs/root/.ssh" && chmod 700 "$rootfs/root/.ssh"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -cf "$work/rootfs.tar" .
podman import --change 'CMD=["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' \
  "$work/rootfs.tar" "$image" >/dev/null 2>&1
podman tag "$image" localhost/nodowntime-lab:current
# Keep only the current recipe's image.
podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/nodowntime-lab:' \
  | grep -v -e ":$recipe_hash\$" -e ":current\$" | xargs -r podman rmi >/dev/null 2>&1 || true
echo "lab image $image built"
