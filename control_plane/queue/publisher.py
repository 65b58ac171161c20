"""Publishes task ids to per-plugin Celery queues over Redis.

Messages carry only the task id (see task_contract.messages); the store holds the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import redis
from celery import Celery

from task_contract.messages import RUN_BATCH, RUN_TASK

PIPELINE = 1000
"""Messages buffered per Redis round trip when kombu can pipeline publishes."""


class BrokerError(Exception):
    """Raised when the broker cannot be reached or refuses a publish."""


class TaskPublisher:
    def __init__(self, broker_url: str, visibility_timeout: int) -> None:
        self.broker_url = broker_url
        self.app = Celery("dts-control-plane", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            broker_transport_options={"visibility_timeout": visibility_timeout},
            broker_connection_retry_on_startup=True,
            task_serializer="json",
            accept_content=["json"],
            task_ignore_result=True,
        )
        self._redis = redis.Redis.from_url(broker_url, socket_timeout=10)

    def publish(self, tasks: Iterable[tuple[str, str]]) -> int:
        """Publish one `run_task` message per (task_id, queue); returns how many."""
        return self._send(RUN_TASK, ((task_id, queue, task_id) for task_id, queue in tasks))

    def publish_batches(self, batches: Iterable[tuple[list[str], str]]) -> int:
        """Publish one `run_batch` message per (task_ids, queue); returns how many messages."""
        return self._send(RUN_BATCH, ((ids, queue, ids[0]) for ids, queue in batches if ids))

    def _send(self, name: str, messages: Iterable[tuple[object, str, str]]) -> int:
        count = 0
        try:
            with self.app.producer_or_acquire() as producer, _pipelined(producer):
                for arg, queue, message_id in messages:
                    self.app.send_task(
                        name,
                        args=[arg],
                        task_id=message_id,
                        queue=queue,
                        routing_key=queue,
                        producer=producer,
                        ignore_result=True,
                    )
                    count += 1
        except Exception as exc:  # kombu raises transport-specific types
            raise BrokerError(f"cannot publish to the broker at {self.safe_url}: {exc}") from exc
        return count

    def queue_length(self, queue: str) -> int:
        try:
            return int(self._redis.llen(queue))
        except redis.RedisError as exc:
            raise BrokerError(f"cannot read queue '{queue}' at {self.safe_url}: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    @property
    def safe_url(self) -> str:
        """The broker URL without its password, for messages and logs."""
        if "@" not in self.broker_url:
            return self.broker_url
        scheme, rest = self.broker_url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"

    def close(self) -> None:
        self._redis.close()
        self.app.close()


def _pipelined(producer: Any) -> AbstractContextManager[Any]:
    # kombu >= 5.7 groups publishes into one pipelined round trip per PIPELINE messages;
    # older kombu publishes each message on its own, which is slower but the same.
    batch = getattr(producer, "batch", None)
    return batch(PIPELINE) if batch is not None else nullcontext()
