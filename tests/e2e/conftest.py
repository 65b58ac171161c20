"""Fixtures for agents as real processes and the test plugin image."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BASE_IMAGE, REPO
from tests.support.processes import AgentProcess, ControlPlane

BEHAVIOUR_IMAGE = "dts-behaviour-plugin:1"


@pytest.fixture
def start_agent(
    control_plane: ControlPlane, tmp_path: Path, docker_client: object
) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(
        name: str = "agent", workers: int = 2, extra_args: list[str] | None = None
    ) -> AgentProcess:
        agent = AgentProcess(
            control_plane.port,
            tmp_path / name,
            tmp_path,
            name=name,
            workers=workers,
            extra_args=extra_args,
        )
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


@pytest.fixture(scope="session")
def behaviour_image(docker_client: object) -> str:
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-t",
            BEHAVIOUR_IMAGE,
            str(REPO / "tests" / "support" / "behaviour_plugin"),
        ],
        check=True,
        capture_output=True,
    )
    return BEHAVIOUR_IMAGE
