# shellcheck shell=bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Sourced by the scripts that build the project's own images (tests/lab/build-image.sh, the lab
# hosts; tests/ee/build-base.sh, the execution environment's base): a Debian bookworm root file
# system made with debootstrap, imported into Podman as localhost/NAME:<hash of the recipe>, and
# tagged NAME:current. The hash covers the calling script and this file, so an image is rebuilt
# only when its recipe changes; a warm run finds the tag and does nothing.

# image_begin NAME RECIPE: takes NAME's build lock, sets image_name, recipe_hash and image; exits
# the calling script (0) when that image exists already.
image_begin() {
  image_name=$1
  exec 8>"/run/lock/$image_name-image.lock"
  flock 8
  recipe_hash=$(cat "$2" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
  image="localhost/$image_name:$recipe_hash"
  if podman image exists "$image"; then
    podman tag "$image" "localhost/$image_name:current"
    echo "$image_name: $image is up to date"
    exit 0
  fi
  image_work=$(mktemp -d "/var/tmp/$image_name.XXXXXX")
  trap 'rm -rf "$image_work"' EXIT
  rootfs="$image_work/rootfs"
}

# image_debootstrap PACKAGES: debootstrap bookworm (minbase plus PACKAGES, comma-separated) into
# $rootfs, from the machine's own Debian mirror (or LAB_DEBIAN_MIRROR).
image_debootstrap() {
  local mirror
  mirror=${LAB_DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -v security | head -n1 | awk '{print $2}' || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "$image_name: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include="$1" bookworm "$rootfs" "$mirror" >"$image_work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$image_work/debootstrap.log"; exit 1; }
}

# image_import [--change ...]: imports $rootfs (without apt's caches) as $image, tags it current
# and removes the images of older recipes.
image_import() {
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$image_work/rootfs.tar" .
  podman import "$@" "$image_work/rootfs.tar" "$image" >/dev/null
  podman tag "$image" "localhost/$image_name:current"
  podman images --format '{{.Repository}}:{{.Tag}}' | grep "^localhost/$image_name:" \
    | grep -v -e ":$recipe_hash\$" -e ":current\$" | xargs -r podman rmi >/dev/null 2>&1 || true
  echo "$image_name: $image built"
}
