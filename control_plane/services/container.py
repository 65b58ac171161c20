"""The services one control-plane process holds, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.config import Settings
from control_plane.queue.publisher import TaskPublisher
from control_plane.services.agents import AgentService
from control_plane.services.submission import Submission
from control_plane.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    publisher: TaskPublisher
    submission: Submission
    agents: AgentService
    admin_hash: str
