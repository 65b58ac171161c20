"""Shared fixtures: real services only. A missing service skips on a laptop and fails in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.processes import ControlPlane, RedisServer

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("DTS_BASE_IMAGE", "dts-python-base:bookworm")
EXAMPLE_PLUGIN_IMAGE = "example-plugin:1.0.0"


def missing_service(what: str) -> None:
    """Skip when a service is absent on a developer machine; fail under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (.ci/run should have started it)")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types when no engine runs
        missing_service(f"Docker engine ({exc})")
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        missing_service(f"base image {BASE_IMAGE} (scripts/system/ensure_base_image.sh)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def example_plugin_image(docker_client: object) -> str:
    """Build the example plugin from its Dockerfile on the local base image."""
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-t",
            EXAMPLE_PLUGIN_IMAGE,
            str(REPO / "plugins" / "example_plugin"),
        ],
        check=True,
        capture_output=True,
    )
    return EXAMPLE_PLUGIN_IMAGE


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
