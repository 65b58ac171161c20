"""Real processes for end-to-end tests: Redis, the control plane and agents on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-0123456789"
ENROLLMENT_TOKEN = "test-enrollment-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Process:
    """A child process with its output in a log file, killed for sure at the end."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would."""
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""


class RedisServer(Process):
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        super().__init__(
            f"redis-{self.port}",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            dict(os.environ),
            log_dir,
        )

    def start(self) -> None:
        super().start()
        wait_for(lambda: _port_open(self.port), 10, "redis")


class ControlPlane(Process):
    def __init__(self, redis_port: int, data_dir: Path, log_dir: Path, **extra_env: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_port),
            "DTS_DATA_DIR": str(data_dir),
            "DTS_ADMIN_TOKEN": ADMIN_TOKEN,
            "DTS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
            "DTS_HEARTBEAT_INTERVAL": "1",
            "DTS_WORKER_TIMEOUT": "6",
            "DTS_RECOVERY_INTERVAL": "1",
            "DTS_LOST_MESSAGE_GRACE": "30",
            **extra_env,
        }
        super().__init__(
            f"control-plane-{self.port}", [sys.executable, "-m", "control_plane"], env, log_dir
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_for(self._healthy, 30, f"control plane on {self.port}\n{self.log_tail()}")

    def _healthy(self) -> bool:
        if not self.alive:
            raise AssertionError(f"control plane exited:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        )


class AgentProcess(Process):
    def __init__(
        self,
        server_port: int,
        data_dir: Path,
        log_dir: Path,
        name: str = "agent",
        workers: int = 2,
        extra_args: list[str] | None = None,
    ) -> None:
        env = {**os.environ, "DTS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN}
        args = [
            sys.executable,
            "-m",
            "desktop_agent.worker",
            "--server",
            f"127.0.0.1:{server_port}",
            "--workers",
            str(workers),
            "--data-dir",
            str(data_dir),
            "--name",
            name,
            *(extra_args or []),
        ]
        super().__init__(name, args, env, log_dir)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
