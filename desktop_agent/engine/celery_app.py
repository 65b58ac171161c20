"""The agent's embedded Celery worker: one task type, late ack, one message per thread."""

from __future__ import annotations

from celery import Celery
from celery.exceptions import Reject

from desktop_agent.engine.errors import RunInterruptedError
from desktop_agent.engine.runner import TaskRunner
from task_contract.messages import RUN_BATCH, RUN_TASK


def make_celery(broker_url: str, visibility_timeout: int, runner: TaskRunner) -> Celery:
    app = Celery("dts-agent", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=True,
    )

    @app.task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_task(task_id: str) -> str:
        try:
            return runner.run(task_id)
        except RunInterruptedError as exc:
            # Not the plugin's fault and nothing recorded: hand the message back.
            raise Reject(str(exc), requeue=True) from exc

    @app.task(name=RUN_BATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_batch(task_ids: list[str]) -> str:
        try:
            return runner.run_batch(task_ids)
        except RunInterruptedError as exc:
            raise Reject(str(exc), requeue=True) from exc

    return app
