"""Agents: register with the enrollment token, heartbeat, start tasks and report outcomes.

Every route after registration authenticates the agent by its own credential and the
worker id in the path must be its own.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from control_plane.api.deps import AdminDep, ServicesDep, WorkerDep
from control_plane.services.clock import utcnow
from control_plane.store import WorkerRecord
from task_contract.api import (
    BatchAssignment,
    BatchOutcomes,
    BatchRecorded,
    BatchStart,
    Heartbeat,
    HeartbeatReply,
    OutcomeRecorded,
    TaskAssignment,
    TaskOutcome,
    WorkerRegister,
    WorkerRegistered,
    WorkerView,
)

router = APIRouter(prefix="/api/workers", tags=["workers"])

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@router.post("/register", status_code=201, response_model=WorkerRegistered)
def register(body: WorkerRegister, request: Request, services: ServicesDep) -> WorkerRegistered:
    """Exchange the enrollment token for a worker id and a credential for this agent only."""
    worker, credential = services.agents.register(body)
    return WorkerRegistered(
        worker_id=worker.id,
        credential=credential,
        heartbeat_interval=services.settings.heartbeat_interval,
        broker_url=_broker_url(request, services),
    )


@router.post("/{worker_id}/heartbeat", response_model=HeartbeatReply)
def heartbeat(
    body: Heartbeat, request: Request, worker: WorkerDep, services: ServicesDep
) -> HeartbeatReply:
    """Report state and running tasks; the answer lists the queues to consume."""
    return services.agents.heartbeat(
        worker, body, _broker_url(request, services), services.settings.visibility_timeout
    )


@router.post("/{worker_id}/tasks/{task_id}/start", response_model=TaskAssignment)
def start_task(task_id: str, worker: WorkerDep, services: ServicesDep) -> TaskAssignment:
    """Mark the task running on this agent and return what to run (409 if already finished)."""
    return services.agents.start(worker, task_id)


@router.post("/{worker_id}/tasks/{task_id}/result", response_model=OutcomeRecorded)
def report_result(
    task_id: str, outcome: TaskOutcome, worker: WorkerDep, services: ServicesDep
) -> OutcomeRecorded:
    """Record the outcome; the first outcome for a task wins, later ones are acknowledged."""
    return services.agents.record(worker, task_id, outcome)


@router.post("/{worker_id}/batches/start", response_model=BatchAssignment)
def start_batch(body: BatchStart, worker: WorkerDep, services: ServicesDep) -> BatchAssignment:
    """Mark the batch's unfinished tasks running on this agent and return them; finished or
    unknown ids come back in `skipped`."""
    return services.agents.start_batch(worker, body.task_ids)


@router.post("/{worker_id}/batches/result", response_model=BatchRecorded)
def report_batch(body: BatchOutcomes, worker: WorkerDep, services: ServicesDep) -> BatchRecorded:
    """Record many outcomes at once; for each task the first outcome wins."""
    return services.agents.record_batch(worker, body)


@router.get("", response_model=list[WorkerView], dependencies=[AdminDep])
def list_workers(services: ServicesDep) -> list[WorkerView]:
    cutoff = utcnow() - timedelta(seconds=services.settings.worker_timeout)
    return [_view(w, cutoff) for w in services.store.list_workers()]


def _broker_url(request: Request, services: ServicesDep) -> str:
    # A broker on the control plane's loopback is reached by agents at the address they
    # used for the API.
    host = services.settings.effective_redis_host
    if host in _LOOPBACK and request.url.hostname:
        host = request.url.hostname
    return services.settings.broker_url(host)


def _view(worker: WorkerRecord, cutoff: object) -> WorkerView:
    online = worker.last_heartbeat is not None and worker.last_heartbeat >= cutoff  # type: ignore[operator]
    return WorkerView(
        id=worker.id,
        name=worker.name,
        hostname=worker.hostname,
        platform=worker.platform,
        concurrency=worker.concurrency,
        cpus=worker.cpus,
        queues=worker.queues,
        state=worker.state if online else "offline",
        registered_at=worker.registered_at,
        last_heartbeat=worker.last_heartbeat,
        running_tasks=worker.running_tasks,
        load=worker.load,
        online=online,
    )
