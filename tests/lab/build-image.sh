#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the lab host image (Debian bookworm booting systemd) with debootstrap and imports it
# into Podman as localhost/nodowntime-lab:<hash of its recipe>, tagged :current
# (debootstrap-image.sh). A warm run finds the tag and does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/debootstrap-image.sh
. "$here/debootstrap-image.sh"
image_begin nodowntime-lab "$here/build-image.sh"
image_debootstrap systemd,systemd-sysv,dbus,python3,openssh-server,openssh-client,iproute2,procps,sudo,ca-certificates,rsync,lsyncd,redis-server,redis-tools,python3-redis,python-is-python3,sshfs,fuse3,cron,less,lua5.4,zstd,unzip,util-linux,iputils-ping,acl,attr

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
image_import --change 'CMD=["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3'
