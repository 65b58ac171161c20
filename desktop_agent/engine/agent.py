"""The headless agent: enroll, clean up after a crash, heartbeat, run the Celery worker.

No Qt here: the tray app wraps this same engine.
"""

from __future__ import annotations

import logging
import platform
import secrets
import socket
import threading

import docker
from celery.signals import worker_shutting_down

from desktop_agent.engine.celery_app import make_celery
from desktop_agent.engine.client import (
    AgentRejected,
    ControlPlaneClient,
    ControlPlaneUnreachable,
)
from desktop_agent.engine.credentials import CredentialFile, Enrollment
from desktop_agent.engine.executor import DockerExecutor
from desktop_agent.engine.heartbeat import HeartbeatLoop
from desktop_agent.engine.instance_lock import InstanceLock, InstanceLockError
from desktop_agent.engine.runner import TaskRunner
from desktop_agent.engine.settings import AgentSettings
from desktop_agent.engine.spool import ResultSpool
from task_contract.api import HeartbeatReply, WorkerRegister

log = logging.getLogger(__name__)


class AgentError(Exception):
    """Raised when the agent cannot start; the message says what to fix."""


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.client = ControlPlaneClient(settings.server_url)
        self.credentials = CredentialFile(settings.data_dir)
        self.stopping = threading.Event()
        self.session_id = secrets.token_hex(8)

    def run(self) -> None:
        lock = InstanceLock(self.settings.data_dir)
        try:
            lock.acquire()
        except InstanceLockError as exc:
            raise AgentError(str(exc)) from exc
        try:
            self._run()
        finally:
            lock.release()

    def _run(self) -> None:
        # Celery's warm shutdown waits for running tasks; tasks waiting on an unreachable
        # control plane must give up then (their messages go back to the broker).
        worker_shutting_down.connect(self._on_shutdown, weak=False)
        enrollment = self._enroll()
        executor = self._executor(enrollment.worker_id)
        removed = executor.remove_leftovers()
        if removed:
            log.info("removed %d container(s) left by an earlier run", removed)
        runner = TaskRunner(
            self.settings,
            self.client,
            executor,
            ResultSpool(self.settings.spool_dir),
            self.stopping,
        )
        heartbeat = HeartbeatLoop(self.settings, self.client, runner, self.session_id, 10.0)
        reply = self._first_heartbeat(heartbeat)
        heartbeat.interval = reply.heartbeat_interval

        app = make_celery(reply.broker_url, reply.visibility_timeout, runner)
        nodename = f"dts-{enrollment.worker_id}@{socket.gethostname()}"
        heartbeat.attach(app, nodename)
        heartbeat.start()
        log.info(
            "agent %s consuming %s with %d worker(s)",
            enrollment.worker_id,
            ", ".join(reply.queues),
            self.settings.workers,
        )
        worker = app.Worker(
            hostname=nodename,
            queues=reply.queues,
            pool="threads",
            concurrency=self.settings.workers,
            loglevel=self.settings.log_level.upper(),
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            optimization="fair",
        )
        try:
            worker.start()
        finally:
            self.stopping.set()
            heartbeat.stop()
            executor.kill_all()
            self.client.close()

    def _on_shutdown(self, **_: object) -> None:
        self.stopping.set()

    def _enroll(self) -> Enrollment:
        stored = self.credentials.load(self.settings.server_url)
        if stored is not None:
            self.client.authenticate(stored.worker_id, stored.credential)
            return stored
        token = self.settings.enrollment_token
        if token is None:
            raise AgentError(
                "this agent is not enrolled yet: set DTS_ENROLLMENT_TOKEN or pass "
                "--enrollment-token (the control plane printed it at its first start)"
            )
        try:
            registered = self.client.register(
                WorkerRegister(
                    enrollment_token=token.get_secret_value(),
                    name=self.settings.name,
                    hostname=socket.gethostname(),
                    platform=f"{platform.system()} {platform.machine()}",
                    concurrency=self.settings.workers,
                    cpus=self.settings.cpus,
                    queues=self.settings.queues,
                )
            )
        except ControlPlaneUnreachable as exc:
            raise AgentError(
                f"cannot reach the control plane to enroll ({exc}); check --server and that "
                "the control plane is running there, then start the agent again"
            ) from exc
        except AgentRejected as exc:
            raise AgentError(f"the control plane refused enrollment: {exc}") from exc
        enrollment = Enrollment(
            self.settings.server_url, registered.worker_id, registered.credential
        )
        self.credentials.save(enrollment)
        self.client.authenticate(enrollment.worker_id, enrollment.credential)
        log.info("enrolled as agent %s", enrollment.worker_id)
        return enrollment

    def _first_heartbeat(self, heartbeat: HeartbeatLoop) -> HeartbeatReply:
        """Deliver outcomes kept from an earlier run, then announce this session; the
        control plane then queues again whatever the earlier run held unfinished."""
        delay = 1.0
        while True:
            try:
                delivered = heartbeat.runner.flush_spool()
                if delivered:
                    log.info("delivered %d result(s) kept from an earlier run", delivered)
                return heartbeat.beat()
            except AgentRejected:
                # The control plane forgot us (e.g. a new store): enroll afresh once.
                self.credentials.forget()
                self._enroll()
            except ControlPlaneUnreachable as exc:
                log.warning("control plane unreachable (%s); retrying in %.0fs", exc, delay)
                if self.stopping.wait(delay):
                    raise AgentError("stopped before the control plane answered") from exc
                delay = min(delay * 2, 30.0)

    def _executor(self, worker_id: str) -> DockerExecutor:
        try:
            client = docker.from_env()
            client.ping()
        except Exception as exc:  # the SDK raises several unrelated types when no engine runs
            raise AgentError(
                f"cannot reach the Docker engine ({exc}): install and start Docker "
                "(Debian: apt-get install docker.io), then start the agent again"
            ) from exc
        return DockerExecutor(client, self.settings.run_dir, labels={"dts.agent": worker_id})
