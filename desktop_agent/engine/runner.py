"""One task from message to recorded outcome: start, run the container, deliver the result.

Called from a Celery task (acks_late): returning means "ack"; raising RunInterruptedError
means the agent is shutting down and the message must go back to the broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from desktop_agent.engine import defaults
from desktop_agent.engine.client import (
    ControlPlaneClient,
    ControlPlaneUnreachable,
    TaskNotRunnable,
)
from desktop_agent.engine.errors import RunInterruptedError
from desktop_agent.engine.executor import DockerExecutor, RunLimits
from desktop_agent.engine.settings import AgentSettings
from desktop_agent.engine.spool import ResultSpool
from task_contract.api import FailureKind, TaskOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskRunner:
    def __init__(
        self,
        settings: AgentSettings,
        client: ControlPlaneClient,
        executor: DockerExecutor,
        spool: ResultSpool,
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.client = client
        self.executor = executor
        self.spool = spool
        self.stopping = stopping
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def run(self, task_id: str) -> str:
        """Returns what happened, for the worker log: 'succeeded', 'failed' or 'skipped'."""
        try:
            assignment = self._retry(lambda: self.client.start(task_id), f"start {task_id}")
        except TaskNotRunnable as exc:
            log.info("task %s skipped: %s", task_id, exc)
            return "skipped"
        with self._lock:
            self._running.add(task_id)
        try:
            limits = RunLimits.from_plugin(
                assignment.limits,
                default_memory_mb=self.settings.memory_mb,
                default_timeout_seconds=self.settings.timeout_seconds,
                cpus=self.settings.cpus,
            )
            try:
                outcome = self.executor.run(assignment, limits)
            except RunInterruptedError:
                raise
            except Exception as exc:  # the agent itself failed; record it, don't lose the task
                log.exception("task %s: agent error", task_id)
                outcome = TaskOutcome(
                    succeeded=False,
                    error=f"agent error while running the plugin: {exc}"[:4000],
                    failure_kind=FailureKind.agent_error,
                    attempt=assignment.attempt,
                )
            self.spool.put(task_id, outcome)
            self.deliver(task_id, outcome)
        finally:
            with self._lock:
                self._running.discard(task_id)
        return "succeeded" if outcome.succeeded else "failed"

    def deliver(self, task_id: str, outcome: TaskOutcome) -> None:
        """Deliver a spooled outcome, waiting out control-plane outages; then unspool it."""
        try:
            self._retry(lambda: self.client.report(task_id, outcome), f"report {task_id}")
        except TaskNotRunnable:
            log.warning(
                "task %s no longer exists on the control plane; dropping its result", task_id
            )
        self.spool.remove(task_id)

    def flush_spool(self) -> int:
        """Deliver outcomes left by an earlier run of the agent; returns how many."""
        delivered = 0
        for task_id, outcome in self.spool.pending():
            self.deliver(task_id, outcome)
            delivered += 1
        return delivered

    def _retry(self, call: Callable[[], T], what: str) -> T:
        delay = defaults.RETRY_INITIAL
        while True:
            try:
                return call()
            except ControlPlaneUnreachable as exc:
                log.warning(
                    "%s: control plane unreachable (%s); retrying in %.0fs", what, exc, delay
                )
            if self.stopping.wait(delay):
                raise RunInterruptedError(f"agent stopping before '{what}' went through")
            delay = min(delay * 2, defaults.RETRY_MAX)
