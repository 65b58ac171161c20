"""The broker side of the contract: the Celery task name and what a message carries.

A message carries only the task id. The agent asks the control plane, with its own
credential, for the image, input and parameters, so a forged broker message can make an
agent run nothing the control plane did not vouch for.
"""

from __future__ import annotations

RUN_TASK = "dts.run_task"
"""Celery task name that agents register and the control plane publishes."""


def agent_queue(worker_id: str) -> str:
    """A queue only one agent consumes; keeps the Celery worker alive with no plugin queues."""
    return f"dts.agent.{worker_id}"
