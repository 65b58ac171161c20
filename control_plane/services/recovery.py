"""Recovery: the store is the truth, the broker only delivers.

One pass (run every few seconds in a background thread):
- tasks running on an agent that stopped heartbeating go back to queued and are published;
- queued tasks older than a grace period whose broker queue is empty (Redis restarted
  without its data, a flushed queue) are published again.
Duplicates are harmless: an agent asks the control plane before running a task, and a
finished task is never run or recorded twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from control_plane.queue.publisher import BrokerError, TaskPublisher
from control_plane.services.clock import utcnow
from control_plane.services.republish import republish
from control_plane.store import Store, StoreError

log = logging.getLogger(__name__)

REPUBLISH_LIMIT = 5000
"""Most lost messages published again per queue and pass; the next pass takes the rest."""


class Recovery:
    def __init__(
        self,
        store: Store,
        publisher: TaskPublisher,
        worker_timeout: float,
        lost_message_grace: float,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.worker_timeout = worker_timeout
        self.lost_message_grace = lost_message_grace

    def run_once(self) -> int:
        """Returns how many tasks were published again."""
        return self._requeue_dead_agents() + self._republish_lost()

    def _requeue_dead_agents(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.worker_timeout)
        total = 0
        for worker in self.store.list_workers():
            if worker.last_heartbeat is None or worker.last_heartbeat >= cutoff:
                continue
            pairs = self.store.requeue_running(worker.id)
            if pairs:
                log.warning(
                    "agent %s silent since %s: requeueing %d task(s)",
                    worker.id,
                    worker.last_heartbeat.isoformat(),
                    len(pairs),
                )
                total += republish(self.store, self.publisher, pairs)
        return total

    def _republish_lost(self) -> int:
        created_before = utcnow() - timedelta(seconds=self.lost_message_grace)
        total = 0
        for queue in sorted({p.manifest.queue for p in self.store.list_plugins()}):
            if self.publisher.queue_length(queue) > 0:
                continue
            ids = self.store.queued_tasks(queue, created_before, REPUBLISH_LIMIT)
            if ids:
                log.warning(
                    "queue '%s' is empty but %d task(s) wait: publishing again", queue, len(ids)
                )
                total += republish(self.store, self.publisher, ((i, queue) for i in ids))
        return total


class RecoveryLoop(threading.Thread):
    def __init__(self, recovery: Recovery, interval: float) -> None:
        super().__init__(name="dts-recovery", daemon=True)
        self.recovery = recovery
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.recovery.run_once()
            except (BrokerError, StoreError) as exc:
                log.warning("recovery pass skipped: %s", exc)
            except Exception:
                log.exception("recovery pass failed")

    def stop(self) -> None:
        self._stop_event.set()
