"""The broker side of the contract: the Celery task name and what a message carries.

A message carries only task ids. The agent asks the control plane, with its own
credential, for the image, input and parameters, so a forged broker message can make an
agent run nothing the control plane did not vouch for.
"""

from __future__ import annotations

RUN_TASK = "dts.run_task"
"""Celery task for one task id: `run_task(task_id)`."""

RUN_BATCH = "dts.run_batch"
"""Celery task for several task ids of one batch plugin: `run_batch([task_id, ...])`.

One message per batch keeps publishing cheap at scale; the ids are still checked one by
one with the control plane before anything runs."""


def agent_queue(worker_id: str) -> str:
    """A queue only one agent consumes; keeps the Celery worker alive with no plugin queues."""
    return f"dts.agent.{worker_id}"
