"""Conversions between the store's models and the plain field dicts both backends persist.

Each backend only encodes values its own way (SQLite: JSON text and epoch milliseconds;
MongoDB: BSON documents and dates); which fields exist and what they mean lives here,
so the two backends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from control_plane.store.base import NewTask, TaskFilter, WorkerRecord
from task_contract.api import Heartbeat, TaskOutcome, TaskStatus, TaskView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

FINISHED = (TaskStatus.succeeded.value, TaskStatus.failed.value)
UNFINISHED = (TaskStatus.queued.value, TaskStatus.running.value)

TASK_FIELDS = tuple(TaskView.model_fields)
TASK_DATETIME_FIELDS = ("created_at", "started_at", "finished_at")
TASK_JSON_FIELDS = ("data", "parameters", "result")
WORKER_DATETIME_FIELDS = ("registered_at", "last_heartbeat")
WORKER_JSON_FIELDS = ("queues", "running_tasks")


# --- time ------------------------------------------------------------------------------
# BSON dates carry milliseconds, so both backends keep exactly that: a value read back
# equals the stored one truncated to the millisecond, and range comparisons (started_before,
# created_before, since) behave identically on every backend.


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_millis(value: datetime) -> int:
    """Whole milliseconds since the epoch (floored, so sub-millisecond parts are dropped)."""
    return (utc(value) - EPOCH) // _MILLISECOND


def from_millis(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def truncate_millis(value: datetime) -> datetime:
    """Aware UTC `value` at the precision the store keeps."""
    return from_millis(to_millis(value))


# --- tasks -----------------------------------------------------------------------------


def filter_fields(flt: TaskFilter, *, with_status: bool = True) -> dict[str, str]:
    """The equality conditions of `flt` as {field: value}, skipping the "any" ones."""
    fields: dict[str, str | None] = {
        "status": flt.status.value if with_status and flt.status is not None else None,
        "plugin_id": flt.plugin_id,
        "type": flt.type,
        "queue": flt.queue,
        "worker_id": flt.worker_id,
        "batch_id": flt.batch_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def new_task_fields(task: NewTask) -> dict[str, Any]:
    """Every task field for a freshly inserted task (queued, never attempted)."""
    return {
        "id": task.id,
        "type": task.type,
        "data": task.data,
        "plugin_id": task.plugin_id,
        "plugin_version": task.plugin_version,
        "queue": task.queue,
        "parameters": task.parameters,
        "status": TaskStatus.queued.value,
        "attempts": 0,
        "created_at": truncate_millis(task.created_at),
        "started_at": None,
        "finished_at": None,
        "worker_id": None,
        "result": None,
        "error": None,
        "failure_kind": None,
        "exit_code": None,
        "stderr": None,
        "duration_seconds": None,
        "batch_id": task.batch_id,
    }


def outcome_fields(worker_id: str, outcome: TaskOutcome, now: datetime) -> dict[str, Any]:
    """The fields `finish_task` overwrites."""
    status = TaskStatus.succeeded if outcome.succeeded else TaskStatus.failed
    return {
        "status": status.value,
        "finished_at": truncate_millis(now),
        "worker_id": worker_id,
        "result": outcome.result,
        "error": outcome.error,
        "failure_kind": outcome.failure_kind.value if outcome.failure_kind else None,
        "exit_code": outcome.exit_code,
        "stderr": outcome.stderr,
        "duration_seconds": outcome.duration_seconds,
    }


def task_view(fields: Mapping[str, Any]) -> TaskView:
    """A TaskView from decoded fields (aware datetimes, Python JSON values)."""
    return TaskView.model_validate(fields)


def empty_status_counts() -> dict[TaskStatus, int]:
    return dict.fromkeys(TaskStatus, 0)


# --- workers ---------------------------------------------------------------------------


def worker_fields(worker: WorkerRecord) -> dict[str, Any]:
    fields = asdict(worker)
    for name in WORKER_DATETIME_FIELDS:
        if fields[name] is not None:
            fields[name] = truncate_millis(fields[name])
    return fields


def worker_record(fields: Mapping[str, Any]) -> WorkerRecord:
    return WorkerRecord(**fields)


def heartbeat_fields(now: datetime, beat: Heartbeat) -> dict[str, Any]:
    """The fields `record_heartbeat` overwrites; None concurrency/queues keep the stored value."""
    fields: dict[str, Any] = {
        "last_heartbeat": truncate_millis(now),
        "state": beat.state,
        "session_id": beat.session_id,
        "running_tasks": list(beat.running_tasks),
        "load": beat.load,
    }
    if beat.concurrency is not None:
        fields["concurrency"] = beat.concurrency
    if beat.queues is not None:
        fields["queues"] = list(beat.queues)
    return fields
