"""Every control-plane default in one place, each with why."""

from __future__ import annotations

HEARTBEAT_INTERVAL = 10.0
"""Seconds between agent heartbeats: a new plugin's queue reaches agents within this."""

WORKER_TIMEOUT = 45.0
"""Seconds without a heartbeat after which an agent counts as gone and its tasks are requeued."""

VISIBILITY_TIMEOUT = 3 * 3600
"""Redis visibility timeout: must exceed the longest plugin timeout plus a paused agent's hold,
or Redis hands a task still running to a second agent."""

RECOVERY_INTERVAL = 5.0
"""Seconds between passes of the recovery loop (dead agents, lost broker messages)."""

LOST_MESSAGE_GRACE = 120.0
"""Queued tasks older than this, with their broker queue empty, are published again."""

PUBLISH_CHUNK = 2000
"""Tasks written to the store and published per batch during bulk submission: bounds memory."""

MAX_PAGE = 1000
"""Largest page size for task listings."""

STDERR_KEEP = 8192
"""Bytes of captured stderr stored per task."""

MAX_BODY_BYTES = 128 * 1024 * 1024
"""Largest JSON request body: room for a 100,000-item bulk request, not for a memory bomb."""

MAX_UPLOAD_BYTES = 4 * 1024 * 1024 * 1024
"""Largest item file upload; it is streamed to disk, so only disk space bounds it."""
