#!/usr/bin/env bash
# Set up what the tests need (scripts/setup.sh), then run the whole suite.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup.sh"
cd "$REPO"
exec "${DTS_VENV:-$REPO/.venv}/bin/python" -m pytest "$@"
