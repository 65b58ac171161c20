"""One task from message to recorded outcome: start, run the container, deliver the result.

Called from a Celery task (acks_late): returning means "ack"; raising RunInterruptedError
means the agent is shutting down and the message must go back to the broker.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from task_contract.api import FailureKind, TaskAssignment, TaskOutcome

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
        if assignment.batch is not None:
            # A batch plugin only speaks the batch contract, even for one task.
            return self._run_batch([assignment])
        return self._run_single(assignment)

    def _run_single(self, assignment: TaskAssignment) -> str:
        task_id = assignment.task_id
        with self._tracking([task_id]):
            try:
                outcome = self.executor.run(assignment, self._limits(assignment))
            except RunInterruptedError:
                raise
            except Exception as exc:  # the agent itself failed; record it, don't lose the task
                log.exception("task %s: agent error", task_id)
                outcome = _agent_failure(assignment.attempt, exc)
            self.spool.put(task_id, outcome)
            self.deliver(task_id, outcome)
        return "succeeded" if outcome.succeeded else "failed"

    def run_batch(self, task_ids: list[str]) -> str:
        """Run a batch message; returns a summary like '498 succeeded, 2 failed, 0 skipped'."""
        what = f"start batch of {len(task_ids)} from {task_ids[0]}"
        try:
            batch = self._retry(lambda: self.client.start_batch(task_ids), what)
        except TaskNotRunnable as exc:
            log.info("batch from %s skipped: %s", task_ids[0], exc)
            return f"0 succeeded, 0 failed, {len(task_ids)} skipped"
        # A requeued batch may mix plugins; v1 plugins' tasks run one container each.
        singles = [a for a in batch.tasks if a.batch is None]
        batched = [a for a in batch.tasks if a.batch is not None]
        results = [self._run_single(a) for a in singles]
        summary = self._run_batch(batched) if batched else "0 succeeded, 0 failed"
        if singles:
            ok = results.count("succeeded")
            summary += f" (+{ok} succeeded, {len(singles) - ok} failed one by one)"
        return f"{summary}, {len(batch.skipped)} skipped"

    def _run_batch(self, assignments: list[TaskAssignment]) -> str:
        outcomes: dict[str, TaskOutcome] = {}
        with self._tracking([a.task_id for a in assignments]):
            for group in _same_run(assignments):
                try:
                    outcomes.update(self.executor.run_batch(group, self._limits(group[0])))
                except RunInterruptedError:
                    raise
                except Exception as exc:
                    log.exception("batch from %s: agent error", group[0].task_id)
                    outcomes.update({a.task_id: _agent_failure(a.attempt, exc) for a in group})
            for task_id, outcome in outcomes.items():
                self.spool.put(task_id, outcome)
            self.deliver_many(outcomes)
        ok = sum(1 for o in outcomes.values() if o.succeeded)
        return f"{ok} succeeded, {len(outcomes) - ok} failed"

    def _limits(self, assignment: TaskAssignment) -> RunLimits:
        plugin_limits = assignment.limits
        if assignment.batch is not None:
            # A batch run has its own wall-clock limit; limits.timeout_seconds is per item.
            plugin_limits = plugin_limits.model_copy(
                update={"timeout_seconds": assignment.batch.timeout_seconds}
            )
        return RunLimits.from_plugin(
            plugin_limits,
            default_memory_mb=self.settings.memory_mb,
            default_timeout_seconds=self.settings.timeout_seconds,
            cpus=self.settings.cpus,
        )

    @contextmanager
    def _tracking(self, task_ids: list[str]) -> Iterator[None]:
        with self._lock:
            self._running.update(task_ids)
        try:
            yield
        finally:
            with self._lock:
                self._running.difference_update(task_ids)

    def deliver(self, task_id: str, outcome: TaskOutcome) -> None:
        """Deliver a spooled outcome, waiting out control-plane outages; then unspool it."""
        try:
            self._retry(lambda: self.client.report(task_id, outcome), f"report {task_id}")
        except TaskNotRunnable as exc:
            # Another agent restarted it (we were cut off too long) or it is gone.
            log.warning("result of task %s not recorded: %s", task_id, exc)
        self.spool.remove(task_id)

    def deliver_many(self, outcomes: dict[str, TaskOutcome]) -> None:
        """Deliver a batch's spooled outcomes in one report, then unspool them."""
        try:
            reply = self._retry(lambda: self.client.report_batch(outcomes), "report batch")
            refused = len(outcomes) - len(reply.recorded)
            if refused:
                log.warning(
                    "%d of %d result(s) not recorded: finished already or restarted by "
                    "another agent",
                    refused,
                    len(outcomes),
                )
        except TaskNotRunnable as exc:
            log.warning("results of %d task(s) not recorded: %s", len(outcomes), exc)
        for task_id in outcomes:
            self.spool.remove(task_id)

    def flush_spool(self) -> int:
        """Deliver spooled outcomes no worker thread is delivering itself (left by an earlier
        run of the agent, or by a run that gave up); returns how many."""
        in_flight = set(self.running)
        pending = {t: o for t, o in self.spool.pending() if t not in in_flight}
        if pending:
            self.deliver_many(pending)
        return len(pending)

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


def _agent_failure(attempt: int, exc: Exception) -> TaskOutcome:
    return TaskOutcome(
        succeeded=False,
        error=f"agent error while running the plugin: {exc}"[:4000],
        failure_kind=FailureKind.agent_error,
        attempt=attempt,
    )


def _same_run(assignments: list[TaskAssignment]) -> list[list[TaskAssignment]]:
    """Split a batch into groups one container can run: same image and parameters."""
    groups: dict[str, list[TaskAssignment]] = {}
    for a in assignments:
        key = json.dumps([a.docker_image, a.parameters], sort_keys=True)
        groups.setdefault(key, []).append(a)
    return list(groups.values())
