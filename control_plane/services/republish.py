"""Publishing stored tasks again (agent restarts, dead agents, lost broker messages).

Tasks of a batch plugin go back as batch messages, so a requeued batch runs as one
container again instead of one container per task.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from control_plane.queue.publisher import TaskPublisher
from control_plane.store import Store


def republish(store: Store, publisher: TaskPublisher, pairs: Iterable[tuple[str, str]]) -> int:
    """Publish (task_id, queue) pairs again; returns how many tasks."""
    by_queue: dict[str, list[str]] = defaultdict(list)
    for task_id, queue in pairs:
        by_queue[queue].append(task_id)
    batch_size = _batch_sizes(store)
    total = 0
    for queue, ids in by_queue.items():
        size = batch_size.get(queue)
        if size is None:
            publisher.publish((task_id, queue) for task_id in ids)
        else:
            publisher.publish_batches((ids[i : i + size], queue) for i in range(0, len(ids), size))
        total += len(ids)
    return total


def _batch_sizes(store: Store) -> dict[str, int]:
    """Queue -> smallest max_items of the batch plugins on it (agents split mixed batches)."""
    sizes: dict[str, int] = {}
    for record in store.list_plugins():
        batch = record.manifest.batch
        if batch is not None:
            queue = record.manifest.queue
            sizes[queue] = min(sizes.get(queue, batch.max_items), batch.max_items)
    return sizes
