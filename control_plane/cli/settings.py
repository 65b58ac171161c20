"""CLI settings: where the control plane is and the admin token, from env or `.env`."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    server: str = Field(default="localhost:8000", alias="DTS_SERVER")
    admin_token: SecretStr | None = Field(default=None, alias="DTS_ADMIN_TOKEN")

    @property
    def server_url(self) -> str:
        if self.server.startswith(("http://", "https://")):
            return self.server.rstrip("/")
        return f"http://{self.server}"
