"""REST payloads shared by the control plane, the agent and the `dts` CLI."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from task_contract.json_values import check_json_value
from task_contract.manifest import PluginBatch, PluginLimits

STDERR_LIMIT = 8192
"""Bytes of stderr/stdout kept per task: enough for a traceback, bounded for 100k tasks."""


def check_task_type(value: str) -> str:
    """Task types end up in container environments and file names: printable text only."""
    if not value.isprintable():
        raise ValueError("type must be printable text (no control characters)")
    return value


class TaskStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.succeeded, TaskStatus.failed)


class FailureKind(StrEnum):
    """Why a task failed; shown with a human message in `error`."""

    exit_nonzero = "exit_nonzero"
    no_result = "no_result"
    invalid_result = "invalid_result"
    timeout = "timeout"
    out_of_memory = "out_of_memory"
    image_missing = "image_missing"
    agent_error = "agent_error"
    item_error = "item_error"
    """Batch mode: the plugin reported an error for this item only."""


class TaskCreate(BaseModel):
    """`POST /api/tasks` body, the seed README's JSON verbatim."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    data: Any
    plugin_id: str = Field(min_length=1, max_length=100)
    plugin_parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _plain_type(cls, value: str) -> str:
        return check_task_type(value)

    @field_validator("data", "plugin_parameters")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        check_json_value(value, info.field_name or "value")
        return value


class TaskCreated(BaseModel):
    task_id: str
    status: TaskStatus
    queue: str


class BulkAccepted(BaseModel):
    accepted: int
    plugin_id: str
    queue: str
    first_task_id: str | None = None
    batch_id: str


class TaskView(BaseModel):
    id: str
    type: str
    data: Any
    plugin_id: str
    plugin_version: str
    queue: str
    parameters: dict[str, Any]
    status: TaskStatus
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    result: Any = None
    error: str | None = None
    failure_kind: FailureKind | None = None
    exit_code: int | None = None
    stderr: str | None = None
    duration_seconds: float | None = None
    batch_id: str | None = None


class TaskPage(BaseModel):
    items: list[TaskView]
    total: int
    offset: int
    limit: int


class WorkerRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enrollment_token: str
    name: str = Field(min_length=1, max_length=200)
    hostname: str = Field(default="", max_length=255)
    platform: str = Field(default="", max_length=100)
    concurrency: int = Field(default=1, ge=1, le=256)
    cpus: float | None = Field(default=None, gt=0)
    queues: list[str] | None = None


class WorkerRegistered(BaseModel):
    worker_id: str
    credential: str
    heartbeat_interval: float
    broker_url: str


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str = Field(default="running", max_length=50)
    session_id: str = Field(default="", max_length=100)
    running_tasks: list[str] = Field(default_factory=list)
    load: float | None = None
    concurrency: int | None = None
    queues: list[str] | None = None


class HeartbeatReply(BaseModel):
    queues: list[str]
    heartbeat_interval: float
    broker_url: str
    """Where to consume; only in memory on the agent (it may hold the broker password)."""
    visibility_timeout: int


class TaskAssignment(BaseModel):
    """What the control plane vouches for when an agent starts a task."""

    task_id: str
    plugin_id: str
    plugin_version: str
    docker_image: str
    type: str
    data: Any
    parameters: dict[str, Any]
    limits: PluginLimits
    attempt: int
    batch: PluginBatch | None = None


class TaskOutcome(BaseModel):
    """An agent's report of one run."""

    model_config = ConfigDict(extra="forbid")

    succeeded: bool
    result: Any = None
    error: str | None = Field(default=None, max_length=4000)
    failure_kind: FailureKind | None = None
    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**31)
    stderr: str | None = Field(default=None, max_length=STDERR_LIMIT * 2)
    duration_seconds: float | None = Field(default=None, ge=0, le=10**7)
    attempt: int | None = Field(default=None, ge=0, le=10**6)

    @field_validator("result")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        check_json_value(value, "result")
        return value


class OutcomeRecorded(BaseModel):
    recorded: bool
    status: TaskStatus


class BulkCreate(BaseModel):
    """`POST /api/tasks/bulk`: many items for one plugin, each item a task's `data`."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    plugin_id: str = Field(min_length=1, max_length=100)
    plugin_parameters: dict[str, Any] = Field(default_factory=dict)
    items: list[Any] = Field(min_length=1)

    @field_validator("type")
    @classmethod
    def _plain_type(cls, value: str) -> str:
        return check_task_type(value)

    @field_validator("plugin_parameters", "items")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        check_json_value(value, info.field_name or "value")
        return value


class WorkerView(BaseModel):
    id: str
    name: str
    hostname: str
    platform: str
    concurrency: int
    cpus: float | None
    queues: list[str] | None
    state: str
    registered_at: datetime
    last_heartbeat: datetime | None
    running_tasks: list[str]
    load: float | None
    online: bool


class BatchStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_ids: list[str] = Field(min_length=1, max_length=10_000)


class BatchAssignment(BaseModel):
    """The tasks of a batch message the control plane vouches for; finished or unknown ids
    are left out (listed in `skipped`)."""

    tasks: list[TaskAssignment]
    skipped: list[str]


class BatchOutcomes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcomes: dict[str, TaskOutcome] = Field(min_length=1, max_length=10_000)


class BatchRecorded(BaseModel):
    recorded: list[str]
    """Ids whose outcome this report recorded; others were already finished."""
