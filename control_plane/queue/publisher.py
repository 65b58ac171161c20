"""Publishes task ids to per-plugin Celery queues over Redis.

Messages carry only the task id (see task_contract.messages); the store holds the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from celery import Celery

from task_contract.messages import RUN_TASK


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
        """Publish (task_id, queue) pairs on one producer connection; returns how many."""
        count = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for task_id, queue in tasks:
                    self.app.send_task(
                        RUN_TASK,
                        args=[task_id],
                        task_id=task_id,
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
