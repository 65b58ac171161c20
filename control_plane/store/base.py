"""The store interface: domain operations the control plane needs, one class per backend.

The store is the source of truth; the broker only delivers. Every backend passes the
same contract suite (tests/control_plane/store/test_contract.py).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from task_contract.api import Heartbeat, TaskOutcome, TaskStatus, TaskView
from task_contract.manifest import PluginManifest


class StoreError(Exception):
    """Root of store errors: the backend could not be reached or refused an operation."""


@dataclass(frozen=True)
class TaskFilter:
    """Equality filters; None means "any"."""

    status: TaskStatus | None = None
    plugin_id: str | None = None
    type: str | None = None
    queue: str | None = None
    worker_id: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class NewTask:
    """A task as the API creates it. Ids sort in creation order (see control_plane.ids)."""

    id: str
    type: str
    data: Any
    plugin_id: str
    plugin_version: str
    queue: str
    parameters: dict[str, Any]
    created_at: datetime
    batch_id: str | None = None


@dataclass(frozen=True)
class PluginRecord:
    manifest: PluginManifest
    created_at: datetime
    updated_at: datetime


@dataclass
class WorkerRecord:
    id: str
    name: str
    credential_hash: str
    registered_at: datetime
    hostname: str = ""
    platform: str = ""
    concurrency: int = 1
    cpus: float | None = None
    queues: list[str] | None = None  # the agent's own --queues narrowing, None = all
    state: str = "registered"
    session_id: str = ""
    last_heartbeat: datetime | None = None
    running_tasks: list[str] = field(default_factory=list)
    load: float | None = None
    revoked: bool = False


@dataclass(frozen=True)
class ThroughputBucket:
    start: datetime
    succeeded: int
    failed: int


class Store(abc.ABC):
    """All methods are safe to call from several threads at once."""

    # --- lifecycle -------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    # --- meta (install-wide values such as token hashes) ------------------------------
    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key exists; return what is stored now."""

    # --- plugins ---------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_plugin(self, manifest: PluginManifest, now: datetime) -> tuple[PluginRecord, bool]:
        """Insert or replace the plugin with this id; return (record, created)."""

    @abc.abstractmethod
    def get_plugin(self, plugin_id: str) -> PluginRecord | None: ...

    @abc.abstractmethod
    def list_plugins(self) -> list[PluginRecord]:
        """All plugins ordered by id."""

    # --- tasks -----------------------------------------------------------------------
    @abc.abstractmethod
    def insert_tasks(self, tasks: Sequence[NewTask]) -> None:
        """Insert all tasks with status queued and attempts 0, in one bulk write."""

    @abc.abstractmethod
    def get_task(self, task_id: str) -> TaskView | None: ...

    @abc.abstractmethod
    def list_tasks(self, flt: TaskFilter, offset: int, limit: int) -> list[TaskView]:
        """Tasks matching `flt`, newest first (descending id)."""

    @abc.abstractmethod
    def count_tasks(self, flt: TaskFilter) -> int: ...

    @abc.abstractmethod
    def count_by_status(self, flt: TaskFilter) -> dict[TaskStatus, int]:
        """Counts per status (every status present as a key, 0 when none); `flt.status` ignored."""

    @abc.abstractmethod
    def iter_tasks(self, flt: TaskFilter, chunk_size: int = 1000) -> Iterator[TaskView]:
        """Stream matching tasks oldest first (ascending id) without loading them all."""

    @abc.abstractmethod
    def start_task(self, task_id: str, worker_id: str, now: datetime) -> TaskView | None:
        """Mark a queued or running task running on `worker_id`: attempts + 1, started_at = now.

        Returns the updated task; returns the task unchanged if it is already finished
        (caller checks status); None if there is no such task.
        """

    @abc.abstractmethod
    def finish_task(
        self, task_id: str, worker_id: str, outcome: TaskOutcome, now: datetime
    ) -> bool:
        """Record the outcome if the task is not finished yet (first result wins).

        Sets status succeeded/failed, finished_at, worker_id, result, error, failure_kind,
        exit_code, stderr, duration_seconds. Returns True if this call recorded it.
        """

    @abc.abstractmethod
    def start_tasks(self, task_ids: Sequence[str], worker_id: str, now: datetime) -> list[TaskView]:
        """`start_task` for many ids in one write (a batch). Returns the tasks found, in the
        order given (finished ones unchanged, so callers check status); unknown ids are
        left out."""

    @abc.abstractmethod
    def finish_tasks(
        self, worker_id: str, outcomes: Mapping[str, TaskOutcome], now: datetime
    ) -> list[str]:
        """Record a batch's outcomes in one write, each only if that task is unfinished and
        was last started by `worker_id`. Returns the ids recorded."""

    @abc.abstractmethod
    def requeue_running(
        self, worker_id: str, keep: Sequence[str] = (), started_before: datetime | None = None
    ) -> list[tuple[str, str]]:
        """Set running tasks of `worker_id` back to queued, except ids in `keep` and those
        started at or after `started_before` (when given). Returns [(task_id, queue)]."""

    @abc.abstractmethod
    def queued_tasks(self, queue: str, created_before: datetime, limit: int) -> list[str]:
        """Ids of queued tasks in `queue` created before the given time, oldest first."""

    @abc.abstractmethod
    def throughput(self, since: datetime, bucket_seconds: int) -> list[ThroughputBucket]:
        """Finished tasks per time bucket since `since`, buckets with no tasks omitted."""

    # --- workers ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_worker(self, worker: WorkerRecord) -> None: ...

    @abc.abstractmethod
    def get_worker(self, worker_id: str) -> WorkerRecord | None: ...

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerRecord]:
        """All workers, most recently registered first."""

    @abc.abstractmethod
    def record_heartbeat(self, worker_id: str, now: datetime, beat: Heartbeat) -> None:
        """Update the worker's liveness fields; queues or concurrency None keep stored values."""
