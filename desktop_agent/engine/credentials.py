"""Where the agent keeps its worker id and credential between runs.

For now a file readable only by the agent's user in its data directory; the tray app
moves the credential into the OS keyring.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Enrollment:
    server_url: str
    worker_id: str
    credential: str


class CredentialFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "enrollment.json"

    def load(self, server_url: str) -> Enrollment | None:
        """The enrollment for this server, or None (never enrolled, or enrolled elsewhere)."""
        try:
            raw = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if raw.get("server_url") != server_url:
            return None
        return Enrollment(raw["server_url"], raw["worker_id"], raw["credential"])

    def save(self, enrollment: Enrollment) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(enrollment.__dict__, handle)
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
