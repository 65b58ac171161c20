"""The agent's REST client for the control plane (the agent's only way to reach the store)."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from desktop_agent.engine import defaults
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
)

M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    """Root of errors talking to the control plane."""


class ControlPlaneUnreachable(ClientError):
    """Connection failed, timed out, or the control plane answered 5xx: retry later."""


class AgentRejected(ClientError):
    """401/403: the credential or enrollment token is not accepted; register again."""


class TaskNotRunnable(ClientError):
    """404/409 on start: the task is gone or already finished; drop the message."""


class RequestRejected(ClientError):
    """Another 4xx: the agent sent something the control plane refuses (a bug to report)."""


class ControlPlaneClient:
    def __init__(self, base_url: str, timeout: float = defaults.HTTP_TIMEOUT) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self.worker_id: str | None = None
        self._credential: str | None = None

    def authenticate(self, worker_id: str, credential: str) -> None:
        self.worker_id = worker_id
        self._credential = credential

    def register(self, body: WorkerRegister) -> WorkerRegistered:
        return self._call("POST", "/api/workers/register", body, WorkerRegistered, auth=False)

    def heartbeat(self, body: Heartbeat) -> HeartbeatReply:
        return self._call("POST", f"{self._me}/heartbeat", body, HeartbeatReply)

    def start(self, task_id: str) -> TaskAssignment:
        return self._call("POST", f"{self._me}/tasks/{task_id}/start", None, TaskAssignment)

    def report(self, task_id: str, outcome: TaskOutcome) -> OutcomeRecorded:
        return self._call("POST", f"{self._me}/tasks/{task_id}/result", outcome, OutcomeRecorded)

    def start_batch(self, task_ids: list[str]) -> BatchAssignment:
        return self._call(
            "POST", f"{self._me}/batches/start", BatchStart(task_ids=task_ids), BatchAssignment
        )

    def report_batch(self, outcomes: dict[str, TaskOutcome]) -> BatchRecorded:
        body = BatchOutcomes(outcomes=outcomes)
        return self._call("POST", f"{self._me}/batches/result", body, BatchRecorded)

    def close(self) -> None:
        self._http.close()

    @property
    def _me(self) -> str:
        if not self.worker_id:
            raise AgentRejected("the agent is not registered yet")
        return f"/api/workers/{self.worker_id}"

    def _call(
        self, method: str, path: str, body: BaseModel | None, model: type[M], auth: bool = True
    ) -> M:
        headers = {"Authorization": f"Bearer {self._credential}"} if auth else {}
        payload: Any = body.model_dump(mode="json") if body is not None else None
        try:
            response = self._http.request(method, path, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise ControlPlaneUnreachable(f"{self.base_url}: {exc}") from exc
        if response.status_code >= 500:
            raise ControlPlaneUnreachable(f"{self.base_url}{path}: HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise AgentRejected(_detail(response))
        if response.status_code in (404, 409) and ("/tasks/" in path or "/batches/" in path):
            raise TaskNotRunnable(_detail(response))
        if response.status_code >= 400:
            raise RequestRejected(f"{path}: {_detail(response)}")
        return model.model_validate(response.json())


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]
