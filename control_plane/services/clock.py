"""One source of 'now' (UTC, tz-aware) for everything the control plane stores."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
