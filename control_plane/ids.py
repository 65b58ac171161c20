"""Task ids that sort in creation order, so the store can page and export by id alone."""

from __future__ import annotations

import os
import secrets
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_task_id() -> str:
    """32 hex chars: 12 of milliseconds, 8 of a per-millisecond sequence, 12 random.

    Monotonic within a process; across processes ids still sort by millisecond.
    """
    global _last_ms, _seq
    with _lock:
        now = max(time.time_ns() // 1_000_000, _last_ms)
        if now == _last_ms:
            _seq += 1
        else:
            _last_ms, _seq = now, 0
        return f"{now:012x}{_seq:08x}{secrets.token_hex(6)}"


def new_batch_id() -> str:
    return "b" + new_task_id()[:20] + os.urandom(2).hex()


def new_worker_id() -> str:
    return "w" + secrets.token_hex(8)
