"""Fixtures that start real processes: a Redis server, the control plane, agents."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import BASE_IMAGE, REPO, missing_service
from tests.support.processes import AgentProcess, ControlPlane, RedisServer

BEHAVIOUR_IMAGE = "dts-behaviour-plugin:1"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> RedisServer:
    redis.Redis(port=redis_server.port).flushall()
    return redis_server


@pytest.fixture
def control_plane(clean_redis: RedisServer, tmp_path: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(clean_redis.port, tmp_path / "control-plane", tmp_path)
    plane.start()
    yield plane
    plane.stop()


@pytest.fixture
def start_agent(
    control_plane: ControlPlane, tmp_path: Path, docker_client: object
) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(name: str = "agent", workers: int = 2, extra_args: list[str] | None = None) -> AgentProcess:
        agent = AgentProcess(
            control_plane.port, tmp_path / name, tmp_path, name=name, workers=workers,
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
        ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", BEHAVIOUR_IMAGE,
         str(REPO / "tests" / "support" / "behaviour_plugin")],
        check=True, capture_output=True,
    )
    return BEHAVIOUR_IMAGE
