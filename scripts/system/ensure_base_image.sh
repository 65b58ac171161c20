#!/usr/bin/env bash
# Make sure the local Python base image for plugins exists (default dts-python-base:bookworm).
#
# Idempotent: an existing image is kept. Otherwise python:3.12-slim is pulled and
# tagged (machines with registry access); failing that, a minimal Debian bookworm
# with python3 is built with debootstrap and imported (about a minute, needs root
# and a Debian mirror).
set -euo pipefail

IMAGE="${1:-dts-python-base:bookworm}"
PUBLIC_IMAGE=python:3.12-slim
SUITE=bookworm

say() { echo "ensure_base_image: $*"; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "image $IMAGE is present"
    exit 0
fi

say "image $IMAGE is missing; trying docker pull $PUBLIC_IMAGE"
if docker pull "$PUBLIC_IMAGE" >/dev/null 2>&1; then
    docker tag "$PUBLIC_IMAGE" "$IMAGE"
    say "tagged $PUBLIC_IMAGE as $IMAGE"
    exit 0
fi

say "pull failed (no registry reachable); building $IMAGE with debootstrap"
if [[ "$(id -u)" != 0 ]]; then
    echo "ensure_base_image: building needs root (debootstrap); re-run as root, or" \
        "run 'docker pull $PUBLIC_IMAGE && docker tag $PUBLIC_IMAGE $IMAGE' where a" \
        "registry is reachable" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y debootstrap
fi

ROOTFS="$(mktemp -d /tmp/dts-base-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

say "debootstrap --variant=minbase --include=python3 $SUITE $ROOTFS (about a minute)"
debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" >/dev/null
# apt caches only make the image bigger; nothing in it runs apt.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

say "importing $ROOTFS as $IMAGE"
tar -C "$ROOTFS" -c . | docker import - "$IMAGE" >/dev/null
say "image $IMAGE is ready"
