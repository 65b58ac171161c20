"""Agent settings: built once from flags, environment and `.env`, then passed in."""

from __future__ import annotations

import socket
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from desktop_agent.engine import defaults

APP_NAME = "distributed-task-system-agent"


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_prefix="DTS_AGENT_")

    server: str = "localhost:8000"
    workers: int = Field(default=1, ge=1, le=64)
    queues: list[str] | None = None
    cpus: float | None = Field(default=None, gt=0)
    memory_mb: int = Field(default=defaults.MEMORY_MB, ge=16)
    timeout_seconds: float = Field(default=defaults.TIMEOUT_SECONDS, gt=0)
    name: str = Field(default_factory=socket.gethostname)
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    enrollment_token: SecretStr | None = Field(default=None, alias="DTS_ENROLLMENT_TOKEN")
    log_level: str = "info"

    @property
    def server_url(self) -> str:
        if self.server.startswith(("http://", "https://")):
            return self.server.rstrip("/")
        return f"http://{self.server}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "runs"
