"""The agent protocol: registration, heartbeats, starting a task and recording its outcome."""

from __future__ import annotations

import logging
from datetime import datetime

from control_plane.auth.tokens import matches, new_token, token_hash
from control_plane.errors import Conflict, Forbidden, NotFound, Unauthorized
from control_plane.ids import new_worker_id
from control_plane.queue.publisher import BrokerError, TaskPublisher
from control_plane.services.clock import utcnow
from control_plane.services.republish import republish
from control_plane.store import Store, WorkerRecord
from task_contract.api import (
    BatchAssignment,
    BatchOutcomes,
    BatchRecorded,
    Heartbeat,
    HeartbeatReply,
    OutcomeRecorded,
    TaskAssignment,
    TaskOutcome,
    TaskView,
    WorkerRegister,
)
from task_contract.manifest import PluginManifest
from task_contract.messages import agent_queue

log = logging.getLogger(__name__)


class AgentService:
    def __init__(
        self,
        store: Store,
        publisher: TaskPublisher,
        enrollment_hash: str,
        heartbeat_interval: float,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.enrollment_hash = enrollment_hash
        self.heartbeat_interval = heartbeat_interval

    def register(self, body: WorkerRegister) -> tuple[WorkerRecord, str]:
        if not matches(body.enrollment_token, self.enrollment_hash):
            raise Unauthorized("enrollment token is not valid for this control plane")
        credential = new_token("dtswkr")
        worker = WorkerRecord(
            id=new_worker_id(),
            name=body.name,
            credential_hash=token_hash(credential),
            registered_at=utcnow(),
            hostname=body.hostname,
            platform=body.platform,
            concurrency=body.concurrency,
            cpus=body.cpus,
            queues=body.queues,
        )
        self.store.create_worker(worker)
        log.info("registered agent %s (%s)", worker.id, worker.name)
        return worker, credential

    def authenticate(self, worker_id: str, credential: str) -> WorkerRecord:
        worker = self.store.get_worker(worker_id)
        if worker is None or worker.revoked:
            raise Unauthorized(f"unknown or revoked agent '{worker_id}'; register it again")
        if not matches(credential, worker.credential_hash):
            raise Forbidden(f"this credential does not belong to agent '{worker_id}'")
        return worker

    def heartbeat(
        self, worker: WorkerRecord, body: Heartbeat, broker_url: str, visibility_timeout: int
    ) -> HeartbeatReply:
        now = utcnow()
        if body.session_id and body.session_id != worker.session_id and worker.session_id:
            # The agent restarted: whatever it held before is not running any more.
            self._requeue(worker.id, keep=body.running_tasks, started_before=now)
        self.store.record_heartbeat(worker.id, now, body)
        narrowing = body.queues if body.queues is not None else worker.queues
        return HeartbeatReply(
            queues=self.queues_for(worker.id, narrowing),
            heartbeat_interval=self.heartbeat_interval,
            broker_url=broker_url,
            visibility_timeout=visibility_timeout,
        )

    def queues_for(self, worker_id: str, narrowing: list[str] | None) -> list[str]:
        enabled = sorted(
            {p.manifest.queue for p in self.store.list_plugins() if p.manifest.enabled}
        )
        if narrowing:
            enabled = [q for q in enabled if q in set(narrowing)]
        return [agent_queue(worker_id), *enabled]

    def start_batch(self, worker: WorkerRecord, task_ids: list[str]) -> BatchAssignment:
        started = {t.id: t for t in self.store.start_tasks(task_ids, worker.id, utcnow())}
        plugins = {p.manifest.id: p.manifest for p in self.store.list_plugins()}
        tasks: list[TaskAssignment] = []
        skipped: list[str] = []
        for task_id in dict.fromkeys(task_ids):  # a duplicated id runs once
            task = started.get(task_id)
            plugin = plugins.get(task.plugin_id) if task else None
            if task is None or task.status.finished or plugin is None:
                skipped.append(task_id)
                continue
            tasks.append(_assignment(task, plugin))
        return BatchAssignment(tasks=tasks, skipped=skipped)

    def record_batch(self, worker: WorkerRecord, body: BatchOutcomes) -> BatchRecorded:
        # Only the agent that last started a task may finish it (see record()).
        return BatchRecorded(recorded=self.store.finish_tasks(worker.id, body.outcomes, utcnow()))

    def start(self, worker: WorkerRecord, task_id: str) -> TaskAssignment:
        task = self.store.start_task(task_id, worker.id, utcnow())
        if task is None:
            raise NotFound(f"no task '{task_id}'", field="task_id")
        if task.status.finished:
            raise Conflict(f"task '{task_id}' already {task.status.value}; nothing to run")
        plugin = self.store.get_plugin(task.plugin_id)
        if plugin is None:
            raise NotFound(
                f"plugin '{task.plugin_id}' of task '{task_id}' is gone", field="plugin_id"
            )
        return _assignment(task, plugin.manifest)

    def record(self, worker: WorkerRecord, task_id: str, outcome: TaskOutcome) -> OutcomeRecorded:
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"no task '{task_id}'", field="task_id")
        if not task.status.finished and task.worker_id != worker.id:
            raise Conflict(f"task '{task_id}' was not started by agent '{worker.id}'")
        # The owner is checked again inside the write: another agent may start it meanwhile.
        recorded = bool(self.store.finish_tasks(worker.id, {task_id: outcome}, utcnow()))
        status = self.store.get_task(task_id)
        return OutcomeRecorded(recorded=recorded, status=status.status if status else task.status)

    def _requeue(self, worker_id: str, keep: list[str], started_before: datetime) -> None:
        pairs = self.store.requeue_running(worker_id, keep=keep, started_before=started_before)
        if pairs:
            log.info("agent %s restarted: requeueing %d task(s)", worker_id, len(pairs))
            try:
                republish(self.store, self.publisher, pairs)
            except BrokerError as exc:
                log.warning("%s; recovery will publish them", exc)


def _assignment(task: TaskView, manifest: PluginManifest) -> TaskAssignment:
    return TaskAssignment(
        task_id=task.id,
        plugin_id=task.plugin_id,
        plugin_version=manifest.version,
        docker_image=manifest.docker_image,
        type=task.type,
        data=task.data,
        parameters=task.parameters,
        limits=manifest.limits,
        attempt=task.attempts,
        batch=manifest.batch,
    )
