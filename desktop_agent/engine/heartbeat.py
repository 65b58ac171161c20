"""Heartbeats: tell the control plane we are alive, and consume the queues it answers with.

Queue changes go to the embedded worker through Celery's own remote control
(add_consumer / cancel_consumer), checked against what the worker reports it consumes.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from desktop_agent.engine.client import ClientError, ControlPlaneClient
from desktop_agent.engine.runner import TaskRunner
from desktop_agent.engine.settings import AgentSettings
from task_contract.api import Heartbeat, HeartbeatReply

log = logging.getLogger(__name__)


class HeartbeatLoop(threading.Thread):
    def __init__(
        self,
        settings: AgentSettings,
        client: ControlPlaneClient,
        runner: TaskRunner,
        session_id: str,
        interval: float,
    ) -> None:
        super().__init__(name="dts-heartbeat", daemon=True)
        self.settings = settings
        self.client = client
        self.runner = runner
        self.session_id = session_id
        self.interval = interval
        self.app: Celery | None = None
        self.nodename: str | None = None
        self.state = "running"
        self._stop_event = threading.Event()

    def beat(self) -> HeartbeatReply:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return self.client.heartbeat(
            Heartbeat(
                state=self.state,
                session_id=self.session_id,
                running_tasks=self.runner.running,
                load=load,
                concurrency=self.settings.workers,
                queues=self.settings.queues,
            )
        )

    def attach(self, app: Celery, nodename: str) -> None:
        self.app = app
        self.nodename = nodename

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                reply = self.beat()
            except ClientError as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            self.interval = reply.heartbeat_interval
            try:
                if len(self.runner.spool):
                    self.runner.flush_spool()
                self.reconcile(reply.queues)
            except (ClientError, OSError, KombuError, RedisError) as exc:
                # The broker is down or restarting: Celery reconnects; try again next beat.
                log.warning("could not update consumed queues: %s", exc)
            except Exception:
                log.exception("could not update consumed queues")

    def reconcile(self, wanted: list[str]) -> None:
        if self.app is None or self.nodename is None:
            return
        replies = self.app.control.inspect([self.nodename], timeout=2.0).active_queues() or {}
        if self.nodename not in replies:
            return  # worker not up yet; next beat tries again
        current = {q["name"] for q in replies[self.nodename]}
        for queue in sorted(set(wanted) - current):
            log.info("consuming new queue '%s'", queue)
            self.app.control.add_consumer(
                queue, destination=[self.nodename], reply=True, timeout=2.0
            )
        for queue in sorted(current - set(wanted)):
            log.info("no longer consuming queue '%s'", queue)
            self.app.control.cancel_consumer(
                queue, destination=[self.nodename], reply=True, timeout=2.0
            )

    def stop(self) -> None:
        self._stop_event.set()
