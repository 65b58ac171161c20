"""Every agent default in one place, each with why."""

from __future__ import annotations

MEMORY_MB = 512
"""Container memory limit when the plugin declares none: room for a Python plugin, bounded
so one item cannot take a volunteer's desktop down."""

TIMEOUT_SECONDS = 600.0
"""Container wall-clock limit when the plugin declares none."""

RETRY_INITIAL = 1.0
RETRY_MAX = 30.0
"""Backoff bounds (seconds) while the control plane cannot be reached."""

HTTP_TIMEOUT = 30.0
"""Seconds per control-plane request."""
