"""Task submission: validate against the plugin, write to the store, publish to its queue.

Bulk submission works in chunks (store bulk write, then publish), so memory stays flat
however many items arrive; the store is written before the broker so a crash between
the two leaves queued tasks that recovery publishes again, never a message without a task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from control_plane import defaults
from control_plane.errors import InvalidInput
from control_plane.ids import new_batch_id, new_task_id
from control_plane.queue.publisher import BrokerError, TaskPublisher
from control_plane.services.clock import utcnow
from control_plane.store import NewTask, Store
from task_contract.api import BulkAccepted, TaskCreate, TaskCreated, TaskStatus
from task_contract.errors import ParameterError
from task_contract.manifest import PluginManifest

log = logging.getLogger(__name__)


class Submission:
    def __init__(self, store: Store, publisher: TaskPublisher) -> None:
        self.store = store
        self.publisher = publisher

    def plugin(self, plugin_id: str) -> PluginManifest:
        record = self.store.get_plugin(plugin_id)
        if record is None:
            known = ", ".join(p.manifest.id for p in self.store.list_plugins()) or "none registered"
            raise InvalidInput(
                f"unknown plugin '{plugin_id}' (known: {known}); "
                "register it with POST /api/plugins",
                field="plugin_id",
            )
        if not record.manifest.enabled:
            raise InvalidInput(f"plugin '{plugin_id}' is disabled", field="plugin_id")
        return record.manifest

    def resolve_parameters(self, manifest: PluginManifest, given: dict[str, Any]) -> dict[str, Any]:
        try:
            return manifest.resolve_parameters(given)
        except ParameterError as exc:
            raise InvalidInput(exc.message, field=exc.field) from exc

    def submit_one(self, body: TaskCreate) -> TaskCreated:
        manifest = self.plugin(body.plugin_id)
        params = self.resolve_parameters(manifest, body.plugin_parameters)
        task = self._new_task(manifest, body.type, body.data, params, batch_id=None)
        self.store.insert_tasks([task])
        self._publish(manifest, [task])
        return TaskCreated(task_id=task.id, status=TaskStatus.queued, queue=task.queue)

    def submit_many(
        self,
        plugin_id: str,
        task_type: str,
        items: Iterable[Any],
        parameters: dict[str, Any],
        chunk_size: int = defaults.PUBLISH_CHUNK,
    ) -> BulkAccepted:
        """Items must already be validated (see the routes): a failure here is the store's or
        broker's, and what was accepted before it stays accepted and is reported."""
        manifest = self.plugin(plugin_id)
        params = self.resolve_parameters(manifest, parameters)
        batch_id = new_batch_id()
        accepted = 0
        first: str | None = None
        if manifest.batch is not None:
            # Whole plugin batches per chunk, so no message is split across two chunks.
            per = manifest.batch.max_items
            chunk_size = max(chunk_size // per, 1) * per
        for chunk in _chunks(items, chunk_size):
            tasks = [self._new_task(manifest, task_type, data, params, batch_id) for data in chunk]
            self.store.insert_tasks(tasks)
            self._publish(manifest, tasks)
            accepted += len(tasks)
            first = first or tasks[0].id
        return BulkAccepted(
            accepted=accepted,
            plugin_id=plugin_id,
            queue=manifest.queue,
            first_task_id=first,
            batch_id=batch_id,
        )

    def _new_task(
        self,
        manifest: PluginManifest,
        task_type: str,
        data: Any,
        params: dict[str, Any],
        batch_id: str | None,
    ) -> NewTask:
        return NewTask(
            id=new_task_id(),
            type=task_type,
            data=data,
            plugin_id=manifest.id,
            plugin_version=manifest.version,
            queue=manifest.queue,
            parameters=params,
            created_at=utcnow(),
            batch_id=batch_id,
        )

    def _publish(self, manifest: PluginManifest, tasks: list[NewTask]) -> None:
        try:
            if manifest.batch is None:
                self.publisher.publish((t.id, t.queue) for t in tasks)
            else:
                ids = [t.id for t in tasks]
                per = manifest.batch.max_items
                self.publisher.publish_batches(
                    (ids[i : i + per], manifest.queue) for i in range(0, len(ids), per)
                )
        except BrokerError as exc:
            # The tasks are stored as queued: answering an error would make clients submit
            # them twice. Recovery publishes them once the broker is back.
            log.warning("%s; %d stored tasks will be published by recovery", exc, len(tasks))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
