"""Control-plane settings: read once at startup from the environment and `.env`."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane import defaults

APP_NAME = "distributed-task-system"


class Settings(BaseSettings):
    """The seed's configuration names and defaults, plus DTS_* extensions."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_host: str | None = Field(default=None, alias="REDIS_HOST")
    redis_port: int = Field(default=6379, alias="REDIS_PORT")
    redis_db: int = Field(default=0, alias="REDIS_DB")
    redis_password: SecretStr | None = Field(default=None, alias="REDIS_PASSWORD")
    mongo_uri: str | None = Field(default=None, alias="MONGO_URI")
    mongo_db_name: str = Field(default="task_processing_system", alias="MONGO_DB_NAME")
    api_host: str = Field(default="0.0.0.0", alias="API_HOST")
    api_port: int = Field(default=8000, alias="API_PORT")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)), alias="DTS_DATA_DIR"
    )
    sqlite_path: Path | None = Field(default=None, alias="DTS_SQLITE_PATH")
    admin_token: SecretStr | None = Field(default=None, alias="DTS_ADMIN_TOKEN")
    enrollment_token: SecretStr | None = Field(default=None, alias="DTS_ENROLLMENT_TOKEN")
    embedded_redis: bool = Field(default=True, alias="DTS_EMBEDDED_REDIS")
    heartbeat_interval: float = Field(
        default=defaults.HEARTBEAT_INTERVAL, alias="DTS_HEARTBEAT_INTERVAL"
    )
    worker_timeout: float = Field(default=defaults.WORKER_TIMEOUT, alias="DTS_WORKER_TIMEOUT")
    visibility_timeout: int = Field(
        default=defaults.VISIBILITY_TIMEOUT, alias="DTS_VISIBILITY_TIMEOUT"
    )
    recovery_interval: float = Field(
        default=defaults.RECOVERY_INTERVAL, alias="DTS_RECOVERY_INTERVAL"
    )
    lost_message_grace: float = Field(
        default=defaults.LOST_MESSAGE_GRACE, alias="DTS_LOST_MESSAGE_GRACE"
    )
    log_level: str = Field(default="info", alias="DTS_LOG_LEVEL")

    @property
    def resolved_sqlite_path(self) -> Path:
        return self.sqlite_path or self.data_dir / "control_plane.sqlite3"

    @property
    def redis_configured(self) -> bool:
        """True when the operator named a Redis host; otherwise all-in-one mode may start one."""
        return self.redis_host is not None

    @property
    def effective_redis_host(self) -> str:
        return self.redis_host or "localhost"

    def broker_url(self, host: str | None = None) -> str:
        password = self.redis_password.get_secret_value() if self.redis_password else ""
        auth = f":{password}@" if password else ""
        return (
            f"redis://{auth}{host or self.effective_redis_host}:{self.redis_port}/{self.redis_db}"
        )
