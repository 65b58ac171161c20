#!/usr/bin/env bash
# The main job on real input: set up, start the control plane and an agent on embedded
# defaults, build and register the example plugin, submit real domain names, wait,
# summarise and export. Options: see `scripts/main_job.sh --help`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup.sh"
cd "$REPO"
exec "${DTS_VENV:-$REPO/.venv}/bin/python" "$REPO/scripts/main_job.py" "$@"
