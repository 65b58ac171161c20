"""Health (no auth, for load balancers and scripts) and stats (admin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from control_plane import __version__
from control_plane.api.deps import AdminDep, ServicesDep
from control_plane.queue.publisher import BrokerError
from control_plane.services.clock import utcnow
from control_plane.store import TaskFilter
from task_contract.api import TaskStatus

router = APIRouter(prefix="/api", tags=["system"])


@router.get("/health")
def health(services: ServicesDep) -> dict[str, Any]:
    broker = services.publisher.ping()
    return {"status": "ok" if broker else "degraded", "version": __version__, "broker": broker}


@router.get("/stats", dependencies=[AdminDep])
def stats(services: ServicesDep) -> dict[str, Any]:
    """Counts per status, finished tasks per minute over the last hour, queue depths."""
    counts = services.store.count_by_status(TaskFilter())
    since = utcnow() - timedelta(hours=1)
    queues: dict[str, int | None] = {}
    for plugin in services.store.list_plugins():
        try:
            queues[plugin.manifest.queue] = services.publisher.queue_length(plugin.manifest.queue)
        except BrokerError:
            queues[plugin.manifest.queue] = None
    return {
        "tasks": {status.value: counts.get(status, 0) for status in TaskStatus},
        "throughput_per_minute": [
            {"start": b.start.isoformat(), "succeeded": b.succeeded, "failed": b.failed}
            for b in services.store.throughput(since, 60)
        ],
        "queues": queues,
    }
